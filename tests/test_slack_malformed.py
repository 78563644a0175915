"""Malformed requests to /slack/events over real HTTP, signed with the real signing secret: a
timestamp that is not a number is unsigned (401); a signed body of a shape Slack never sends (a
field of the wrong type, an action that is not an object, a view without its type, an id longer
than any of Slack's) is a 400 that names the field; nothing logs an ERROR, nothing is posted."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fakes_slack import FakeSlackWebAPI
from tests.fakes_slack.harness import SlackBot, payload, settle


@pytest.fixture
async def bot(api: FakeSlackWebAPI, database_url: str) -> AsyncIterator[SlackBot]:
    running = SlackBot(api, database_url)
    await running.start()
    yield running
    await running.close()


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [each.getMessage() for each in caplog.records if each.levelno >= logging.ERROR]


def block_actions(**changes: Any) -> dict[str, Any]:
    click = payload("block_actions")
    click.update(changes)
    return click


def view_submission(**view: Any) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "user": {"id": "U0ADMIN01", "name": "robin.admin"},
        "trigger_id": "1.2.submit",
        "view": {"type": "modal", "callback_id": "ticket_modal", "id": "V0MODAL0001", **view},
    }


def shortcut(**changes: Any) -> dict[str, Any]:
    shared = payload("message_action")
    shared.update(changes)
    return shared


def envelope(**event: Any) -> dict[str, Any]:
    found = payload("message_im")
    found["event"].update(event)
    return found


_METADATA = json.dumps({"action": "reply", "ticket": "NDR-1001", "channel": "C0ADMINS01"})


@pytest.mark.parametrize("timestamp", ["yesterday", "1.5e3", "9" * 400])
async def test_a_timestamp_that_is_not_a_number_is_unsigned(
    bot: SlackBot, caplog: pytest.LogCaptureFixture, timestamp: str
) -> None:
    body = json.dumps(bot.dm("hello"))
    headers = bot.headers(body, "application/json")
    headers["X-Slack-Request-Timestamp"] = timestamp
    response = await bot.client.post("/slack/events", data=body, headers=headers)
    assert response.status == 401
    assert (await response.json())["error"] == "invalid signature"
    await settle(bot)
    assert errors(caplog) == []
    assert not bot.api.of("chat.postMessage")


@pytest.mark.parametrize(
    ("interaction", "reason"),
    [
        pytest.param(block_actions(actions=[None, 5]), "actions", id="actions-null-5"),
        pytest.param(block_actions(actions=[{"value": "x"}]), "action_id", id="no-action-id"),
        pytest.param(block_actions(actions=[{"action_id": 5}]), "action_id", id="action-id-int"),
        pytest.param(
            block_actions(actions=[{**payload("block_actions")["actions"][0], "text": "x"}]),
            "text",
            id="action-text-string",
        ),
        pytest.param(block_actions(container="x"), "container", id="container-string"),
        pytest.param(block_actions(message="x"), "message", id="message-string"),
        pytest.param(block_actions(trigger_id=[1]), "trigger_id", id="trigger-list"),
        pytest.param(block_actions(user={"id": "U" * 5000}), "user.id", id="user-id-huge"),
        pytest.param(view_submission(private_metadata=5), "private_metadata", id="metadata-int"),
        pytest.param(view_submission(type=None), "type", id="view-without-type"),
        pytest.param(view_submission(callback_id=5), "callback_id", id="callback-int"),
        pytest.param(view_submission(callback_id=None), "callback_id", id="no-callback"),
        pytest.param(
            view_submission(private_metadata=_METADATA, state="x"), "state", id="state-string"
        ),
        pytest.param(
            view_submission(private_metadata=_METADATA, state={"values": []}),
            "state",
            id="values-list",
        ),
        pytest.param(
            view_submission(
                private_metadata=_METADATA,
                state={"values": {"ndr_ticket_input": {"ndr_ticket_input": "x"}}},
            ),
            "values",
            id="field-string",
        ),
        pytest.param(shortcut(callback_id=5), "callback_id", id="shortcut-callback-int"),
        pytest.param(shortcut(message={"files": "x"}), "files", id="shortcut-files-string"),
        pytest.param({"type": "shortcut", "callback_id": 5}, "callback_id", id="global-shortcut"),
    ],
)
async def test_a_signed_interaction_of_the_wrong_shape_gets_400(
    bot: SlackBot, caplog: pytest.LogCaptureFixture, interaction: dict[str, Any], reason: str
) -> None:
    response = await bot.interaction(interaction)
    assert response.status == 400
    assert reason in (await response.json())["error"]
    await settle(bot)
    assert errors(caplog) == []
    assert not bot.api.of("chat.postMessage")
    assert not bot.api.of("views.open")


@pytest.mark.parametrize("metadata", ["[]", "{not json", '{"action": "reply"}'])
async def test_a_modal_whose_metadata_is_not_ours_is_acknowledged_and_nothing_is_done(
    bot: SlackBot, caplog: pytest.LogCaptureFixture, metadata: str
) -> None:
    # Slack's contract for view_submission: the acknowledgement is the answer (it closes the
    # modal); an error status would only show the person a connection error.
    response = await bot.interaction(view_submission(private_metadata=metadata))
    assert response.status == 200
    assert not await response.text()
    await settle(bot)
    assert errors(caplog) == []
    assert [call.method for call in bot.api.calls if call.method != "auth.test"] == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(envelope(text={"a": 1}), "event.text", id="text-object"),
        pytest.param(envelope(user={"id": "U1"}), "event.user", id="user-object"),
        pytest.param(envelope(channel=["D1"]), "event.channel", id="channel-list"),
        pytest.param(envelope(ts={"a": 1}), "event.ts", id="ts-object"),
        pytest.param(envelope(files="x", subtype="file_share"), "event.files", id="files-string"),
        pytest.param(envelope(user_profile=[1]), "event.user_profile", id="profile-list"),
        pytest.param({"type": "url_verification", "challenge": {"a": 1}}, "challenge", id="url"),
        pytest.param({"type": "url_verification"}, "challenge", id="url-without-challenge"),
    ],
)
async def test_a_signed_event_of_the_wrong_shape_gets_400(
    bot: SlackBot, caplog: pytest.LogCaptureFixture, body: dict[str, Any], reason: str
) -> None:
    response = await bot.post(json.dumps(body), "application/json")
    assert response.status == 400
    assert reason in (await response.json())["error"]
    await settle(bot)
    assert errors(caplog) == []
    assert not bot.api.of("chat.postMessage")


async def test_a_command_from_a_user_id_longer_than_any_id_gets_400(
    bot: SlackBot, caplog: pytest.LogCaptureFixture
) -> None:
    form = payload("slash_command")
    form["user_id"] = "U" * 100_000
    response = await bot.command(form)
    assert response.status == 400
    assert "user_id" in (await response.json())["error"]
    await settle(bot)
    assert errors(caplog) == []
    assert not bot.api.of("conversations.open")


async def test_json_nested_too_deeply_gets_400_with_that_reason(bot: SlackBot) -> None:
    response = await bot.post("[" * 5000 + "]" * 5000, "application/json")
    assert response.status == 400
    assert "nested too deeply" in (await response.json())["error"]
    unsigned = await bot.client.post(
        "/slack/events", data="[" * 5000, headers={"Content-Type": "application/json"}
    )
    assert unsigned.status == 401
    assert (await bot.client.get("/healthz")).status == 200


async def test_an_answer_of_slack_that_is_not_json_is_a_reason_not_a_traceback(
    bot: SlackBot, caplog: pytest.LogCaptureFixture
) -> None:
    # A proxy in the way answers conversations.open with its own page: the DM cannot be opened,
    # and the log says why (before, reading Slack's error code from the page raised).
    bot.api.answer_page("conversations.open")
    response = await bot.command(payload("slash_command"))
    assert response.status == 200
    await settle(bot)
    failed = [each for each in caplog.records if each.levelno >= logging.ERROR]
    assert [each.getMessage() for each in failed] == ["Slack conversations.open failed"]
    assert not any(each.exc_info for each in failed)
    assert "status: 400" in str(failed[0].__dict__["reason"])
    assert not bot.api.of("chat.postMessage")
