"""What Slack sends, read without HTTP (bot/channels/slack/events.py): where replies go, whether
an event is a person's, the bot's mention taken out, the names payloads give, what the answer
and ticket buttons carry; on the recorded payloads of tests/payloads/slack/."""

from __future__ import annotations

import json

import pytest

from bot.channels.slack.endpoint import malformed
from bot.channels.slack.events import (
    Target,
    answer_click,
    answer_value,
    command_message,
    conversation_target,
    direct_message,
    event_message,
    from_a_person,
    home_opened_by,
    interaction_channel,
    mention,
    profile_name,
    shared_files,
    shortcut_message,
    ticket_button,
    user_name,
    without_mentions_of,
)
from bot.tickets import Action
from dialogs.messages import Attachment
from tests.fakes_slack.harness import payload

BOT = "U0BOT0001"


def test_a_conversation_id_points_at_a_dm_or_a_thread() -> None:
    assert conversation_target("D0ADMIN01") == Target("D0ADMIN01")
    assert conversation_target("C0HELP0001:1700002000.000001") == Target(
        "C0HELP0001", "1700002000.000001"
    )


@pytest.mark.parametrize(
    ("change", "person"),
    [
        ({}, True),
        ({"subtype": "file_share"}, True),
        ({"subtype": "thread_broadcast"}, True),
        ({"bot_id": "B0BOT0001", "user": BOT}, False),  # the bot itself
        ({"bot_id": "B0OTHER01", "subtype": "bot_message"}, False),  # another bot
        ({"user": BOT}, False),  # the bot's user, without a bot id
        ({"subtype": "message_changed"}, False),  # an edit
        ({"subtype": "message_deleted"}, False),
        ({"user": None}, False),
    ],
)
def test_only_a_persons_message_is_from_a_person(change: dict[str, object], person: bool) -> None:
    event = {**payload("message_im")["event"], **change}
    assert from_a_person(event, BOT) is person


def test_a_dm_is_read_and_answered_in_the_dm() -> None:
    event = payload("message_im")["event"]
    assert direct_message(event, BOT) == ("hello", Target("D0ADMIN01"))
    message = event_message(payload("message_im"), event, "hello", "D0ADMIN01")
    assert (message.user_id, message.user_name, message.conversation_id) == (
        "U0ADMIN01",
        "Robin Admin",
        "D0ADMIN01",
    )
    assert message.platform == "slack"
    assert message.raw is event
    assert message.tenant == "T0TEAM001"  # the admin check of a directory look-up needs it
    assert direct_message({**event, "channel_type": "channel"}, BOT) is None
    assert direct_message({**event, "user": BOT}, BOT) is None


def test_a_mention_is_answered_in_its_thread_without_the_bots_name() -> None:
    event = payload("app_mention")["event"]
    found = mention(event, BOT)
    assert found is not None
    assert found.text == "can you read this bounce?"
    assert found.target == Target("C0HELP0001", "1700000200.000200")
    assert found.conversation_id == "C0HELP0001:1700000200.000200"
    in_a_thread = mention({**event, "thread_ts": "1700000100.000001"}, BOT)
    assert in_a_thread is not None
    assert in_a_thread.target == Target("C0HELP0001", "1700000100.000001")
    assert mention({**event, "bot_id": "B0OTHER01"}, BOT) is None
    assert mention({**event, "channel": ""}, BOT) is None


def test_only_the_bots_mentions_are_taken_out() -> None:
    text = "<@U0BOT0001> ask <@U0ADMIN01|robin> about it <@U0BOT0001>"
    assert without_mentions_of(text, BOT) == "ask <@U0ADMIN01|robin> about it"
    # Without the bot's id known yet, the leading mention is the one that called it.
    assert without_mentions_of("<@U0BOT0001> ask <@U0ADMIN01>", None) == "ask <@U0ADMIN01>"


def test_the_names_payloads_give() -> None:
    assert profile_name(payload("message_im")["event"]) == "Robin Admin"
    assert profile_name({"user_profile": {"display_name": "robin"}}) == "robin"
    assert profile_name({}) == ""
    assert user_name(payload("block_actions")["user"]) == "robin.admin"
    assert user_name({"id": "U1"}) == "U1"


def test_only_the_home_tab_is_published() -> None:
    event = payload("app_home_opened")["event"]
    assert home_opened_by(event) == "U0ADMIN01"
    assert home_opened_by({**event, "tab": "messages"}) is None
    assert home_opened_by({"tab": "home"}) is None


def test_a_command_is_a_turn_in_the_dm_and_help_without_text() -> None:
    body = payload("slash_command")
    message = command_message(body, "D0SENDER1")
    assert (message.text, message.user_id, message.user_name) == (
        "how do I fix 5.7.12?",
        "U0SENDER1",
        "sam.sender",
    )
    assert message.conversation_id == "D0SENDER1"
    assert command_message({**body, "text": "  "}, "D0SENDER1").text == "help"


def test_a_shortcut_brings_the_message_it_was_used_on() -> None:
    body = payload("message_action")
    files = (Attachment("bounce.eml", b"...", "message/rfc822"),)
    message = shortcut_message(body, "D0SENDER1", files)
    assert message.text == "anyone know what this means?"
    assert (message.user_id, message.user_name) == ("U0SENDER1", "sam.sender")
    assert message.conversation_id == "D0SENDER1"
    assert message.files == files
    assert shared_files(body) is None
    shared = payload("message_file_share")["event"]["files"]
    assert shared_files({**body, "message": {"files": shared}}) == shared


def test_an_answer_button_carries_its_slot_and_answer() -> None:
    click = answer_click(payload("block_actions"))
    assert click is not None
    assert click.message.text == "I'm an email admin"
    assert click.message.value == {"slot": "role", "answer": "admin"}
    assert click.message.conversation_id == "D0ADMIN01"
    assert click.target == Target("D0ADMIN01")
    assert click.delivery_id == "1000000003.1000000003.scrubbed0003"
    assert click.block_id == "ndr_answer:role:1:0"
    assert click.label == "I'm an email admin"


def test_an_answer_in_a_thread_stays_in_the_thread() -> None:
    body = payload("block_actions")
    body["container"].update(channel_id="C0HELP0001", thread_ts="1700002000.000001")
    click = answer_click(body)
    assert click is not None
    assert click.target == Target("C0HELP0001", "1700002000.000001")
    assert click.message.conversation_id == "C0HELP0001:1700002000.000001"
    assert interaction_channel(body) == "C0HELP0001"
    assert interaction_channel({"channel": {"id": "C1"}}) == "C1"
    assert interaction_channel({}) == ""


@pytest.mark.parametrize(
    "value", ["", "not json", "[1]", json.dumps({"slot": "role"}), json.dumps({"answer": 1})]
)
def test_a_button_that_is_not_an_answer_is_none(value: str) -> None:
    body = payload("block_actions")
    body["actions"][0]["value"] = value
    assert answer_value(body["actions"][0]) is None
    assert answer_click(body) is None
    assert answer_click({**body, "actions": []}) is None


def test_a_ticket_button_says_its_action_ticket_and_version() -> None:
    ref = "k3Jd9_x-Qm2LpA7z"
    value = json.dumps({"ref": ref, "version": 3})
    found = ticket_button({"action_id": "ticket:assign_me", "value": value})
    assert found is not None
    assert (found.action, found.ref, found.version) == (Action.ASSIGN_ME, ref, 3)
    unversioned = ticket_button({"action_id": "ticket:reopen", "value": json.dumps({"ref": ref})})
    assert unversioned is not None
    assert unversioned.version is None
    assert ticket_button({"action_id": "ticket:explode", "value": value}) is None
    assert ticket_button({"action_id": "ticket:assign_me", "value": "{}"}) is None
    number = json.dumps({"ticket": "NDR-1001", "version": 3})  # an older card's, or a forged one
    assert ticket_button({"action_id": "ticket:assign_me", "value": number}) is None


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (payload("message_im"), "application/json", None),
        (payload("slash_command"), "application/x-www-form-urlencoded", None),
        (payload("message_im"), "text/plain", "expected application/json or "),
        ({}, "application/json", "the body is empty or not an object"),
        ({"command": "/ndr"}, "application/x-www-form-urlencoded", "the command lacks user_id"),
        ({"type": "event_callback", "event_id": "Ev1"}, "application/json", "the event callback "),
        ({"type": "block_actions", "user": {}}, "application/json", "the block_actions payload"),
    ],
)
def test_a_body_slack_would_not_send_is_named(
    body: dict[str, object], content_type: str, reason: str | None
) -> None:
    said = malformed(body, content_type)
    if reason is None:
        assert said is None
    else:
        assert said is not None
        assert said.startswith(reason)
