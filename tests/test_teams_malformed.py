"""Malformed requests to /api/messages over real HTTP, in local mode and with tokens from the
fake issuer: JSON nested deeper than Python's json can read is a 400 with that reason (with
tokens on, a request without one is refused first, its body unread: 401; with a valid token the
body is read: 400); an empty id or a card action without its action is a 400; nothing logs an
ERROR."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.teams_harness import APP_ID, TeamsBot, teams_bot, words
from tests.transcripts import ASK_ROLE


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[TeamsBot]:
    async with teams_bot(tmp_path) as running:
        yield running


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[TeamsBot]:
    async with teams_bot(tmp_path, app_id=APP_ID) as running:
        yield running


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [each.getMessage() for each in caplog.records if each.levelno >= logging.ERROR]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_value(bot: TeamsBot) -> bytes:
    """A real activity whose ``value`` is nested 5,000 deep."""
    text = json.dumps(bot.activity(text="help"))
    return f'{text[:-1]}, "value": {nested(5000)}}}'.encode()


DEEP = [
    pytest.param(lambda bot: nested(5000).encode(), id="array"),
    pytest.param(lambda bot: ('{"a": ' * 5000 + "1" + "}" * 5000).encode(), id="object"),
    pytest.param(deep_value, id="activity-value"),
]


@pytest.mark.parametrize("make", DEEP)
async def test_deep_json_gets_400_in_local_mode(
    local: TeamsBot, caplog: pytest.LogCaptureFixture, make: Any
) -> None:
    response = await local.post(None, raw=make(local))
    assert response.status == 400
    assert "nested too deeply" in (await response.json())["error"]
    assert errors(caplog) == []
    assert local.connector.take() == []
    assert ASK_ROLE in words(await local.say("how do I fix 5.7.12"))


@pytest.mark.parametrize("make", DEEP)
async def test_deep_json_with_a_valid_token_gets_400(
    secured: TeamsBot, caplog: pytest.LogCaptureFixture, make: Any
) -> None:
    # The token is checked after the body is read: botbuilder checks it against the activity.
    activity = secured.activity(text="help")
    response = await secured.post(activity, raw=make(secured))
    assert response.status == 400
    assert "nested too deeply" in (await response.json())["error"]
    assert errors(caplog) == []
    assert secured.connector.take() == []


@pytest.mark.parametrize("make", DEEP)
async def test_deep_json_without_a_token_gets_401_before_it_is_read(
    secured: TeamsBot, caplog: pytest.LogCaptureFixture, make: Any
) -> None:
    response = await secured.post(None, raw=make(secured), signed=False)
    assert response.status == 401
    assert "no Authorization" in (await response.json())["error"]
    assert errors(caplog) == []
    assert 'ndrbot_errors_total{channel="msteams",kind="auth"} 1.0' in secured.metrics_text
    assert ASK_ROLE in words(await secured.say("how do I fix 5.7.12"))


async def test_a_token_in_local_mode_is_refused_before_the_body_is_read(local: TeamsBot) -> None:
    response = await local.post(None, raw=nested(5000).encode(), authorization="Bearer x")
    assert response.status == 401
    assert "local mode" in (await response.json())["error"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param({"conversation": {"id": ""}}, "no conversation.id", id="conversation-id"),
        pytest.param({"from": {"id": ""}}, "no from.id", id="from-id"),
    ],
)
async def test_an_empty_id_gets_400(
    local: TeamsBot, caplog: pytest.LogCaptureFixture, changes: dict[str, Any], reason: str
) -> None:
    response = await local.post(local.activity(text="help", **changes))
    assert response.status == 400
    assert reason in (await response.json())["error"]
    assert errors(caplog) == []
    assert local.connector.take() == []


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"value": [1]}, id="value-list"),
        pytest.param({"value": "x"}, id="value-string"),
        pytest.param({"value": {"action": "answer"}}, id="action-string"),
        pytest.param({"name": 5}, id="name-int"),
    ],
)
async def test_a_card_action_of_the_wrong_shape_gets_400(
    local: TeamsBot, caplog: pytest.LogCaptureFixture, changes: dict[str, Any]
) -> None:
    response = await local.post(local.activity("invoke_card_action", **changes))
    assert response.status == 400
    assert "not an activity" in (await response.json())["error"]
    assert errors(caplog) == []
    assert local.connector.take() == []
