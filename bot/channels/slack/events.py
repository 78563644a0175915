"""What Slack sends, read: events, commands, shortcuts and button clicks into ``Message``\\ s.

Pure functions over the payload dicts bolt hands the listeners: where the replies go (a DM, or
the thread of a mention), whether an event is a person's, the mention of the bot taken out of
the text, the name a payload gives its user, what an answer button or a ticket button carries.
Its own room so that all of it is tested on payload dicts (``tests/test_slack_events.py``),
without HTTP, bolt or the Web API; the files a message shares are downloaded by ``files.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bot.channels.slack.ticket_blocks import parse_ticket_value
from bot.tickets import Action
from dialogs.messages import Attachment, Message, Platform
from knowledge.ndr import slack_to_text

EVENTS_PATH: Final = "/slack/events"
"""Where Slack posts its events, commands and interactions in HTTP mode."""
SLASH_COMMAND: Final = "/ndr"
SHORTCUT_CALLBACK_ID: Final = "ask_ndr_helpdesk"
"""The message shortcut "Ask the NDR helpdesk" (``manifest/slack/manifest.yml`` names it)."""
# A message from a person: plain, with files, or a thread reply also sent to the channel.
PERSON_SUBTYPES: Final = frozenset({None, "file_share", "thread_broadcast"})
MENTION: Final = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")


@dataclass(frozen=True)
class Target:
    """Where replies go: a channel (a DM's id for direct messages), and a thread in it."""

    channel: str
    thread_ts: str | None = None


def conversation_target(conversation_id: str) -> Target:
    """Where a conversation id points: "D123" (a DM), or "C123:<thread ts>" (a thread)."""
    channel, _, thread = conversation_id.partition(":")
    return Target(channel, thread or None)


# ---- events -----------------------------------------------------------------------------------


def team_of(body: Mapping[str, Any], event: Mapping[str, Any] | None = None) -> str:
    """The Slack team (workspace) the person behind a payload belongs to: theirs as the event
    or the interaction says it (``user_team``, ``team``, ``user.team_id``: in a channel shared
    with another organisation it is that one), else the payload's (``team_id``, ``team.id``,
    ``authorizations[].team_id``); "" when it says none."""
    user = body.get("user")
    team = body.get("team")
    authorizations = body.get("authorizations")
    first = authorizations[0] if isinstance(authorizations, list) and authorizations else None
    for value in (
        (event or {}).get("user_team"),
        (event or {}).get("team"),
        user.get("team_id") if isinstance(user, dict) else None,
        body.get("user_team_id"),
        body.get("team_id"),
        team.get("id") if isinstance(team, dict) else team,
        first.get("team_id") if isinstance(first, dict) else None,
    ):
        if isinstance(value, str) and value:
            return value
    return ""


def from_a_person(event: Mapping[str, Any], me: str | None) -> bool:
    """Not the bot itself (user id ``me``), not another bot, not an edit or a deletion."""
    user = event.get("user")
    return (
        not event.get("bot_id")
        and event.get("subtype") in PERSON_SUBTYPES
        and isinstance(user, str)
        and user != me
    )


def without_mentions_of(text: str, me: str | None) -> str:
    """The text without the mentions of the bot (user id ``me``); other mentions stay."""

    def drop(match: re.Match[str]) -> str:
        return "" if me is None or match.group(1) == me else match.group(0)

    # Without a known bot user id, the leading mention is the one that called the bot.
    if me is None:
        return MENTION.sub("", text, count=1).strip()
    return MENTION.sub(drop, text).strip()


def direct_message(event: Mapping[str, Any], me: str | None) -> tuple[str, Target] | None:
    """A person's direct message to the bot: its text (as a bounce reader reads it) and where the
    answer goes; None for anything else (a channel message, the bot's own, an edit)."""
    if event.get("channel_type") != "im" or not from_a_person(event, me):
        return None
    return slack_to_text(str(event.get("text") or "")), Target(str(event["channel"]))


@dataclass(frozen=True)
class Mention:
    """An @mention of the bot: what it says (the bot's name taken out), and the thread."""

    text: str
    target: Target
    conversation_id: str


def mention(event: Mapping[str, Any], me: str | None) -> Mention | None:
    """A person's @mention of the bot, answered in its thread; None when it is not a person's."""
    if not from_a_person(event, me) or not event.get("channel"):
        return None
    thread = str(event.get("thread_ts") or event.get("ts") or "")
    target = Target(str(event["channel"]), thread or None)
    text = slack_to_text(without_mentions_of(str(event.get("text") or ""), me))
    return Mention(text, target, f"{target.channel}:{thread}")


def event_message(
    body: dict[str, Any],
    event: dict[str, Any],
    text: str,
    conversation_id: str,
    files: tuple[Attachment, ...] = (),
) -> Message:
    """A DM's or a mention's turn (``body``: the event callback that carries it)."""
    return Message(
        text=text,
        files=files,
        user_id=str(event["user"]),
        user_name=profile_name(event),
        conversation_id=conversation_id,
        platform=Platform.SLACK,
        tenant=team_of(body, event),
        raw=event,
    )


def profile_name(event: Mapping[str, Any]) -> str:
    """The name an event's ``user_profile`` gives its author; "" without one."""
    profile = event.get("user_profile")
    if isinstance(profile, dict):
        return str(
            profile.get("real_name") or profile.get("display_name") or profile.get("name") or ""
        )
    return ""


def home_opened_by(event: Mapping[str, Any]) -> str | None:
    """Who opened the App Home's Home tab (not its Messages tab); None otherwise."""
    user = event.get("user")
    return user if event.get("tab", "home") == "home" and isinstance(user, str) else None


# ---- commands and shortcuts -------------------------------------------------------------------


def command_message(body: dict[str, Any], dm: str) -> Message:
    """``/ndr <text>`` (``help`` without one), answered in the user's DM ``dm``."""
    return Message(
        text=slack_to_text(str(body.get("text") or "")).strip() or "help",
        user_id=str(body["user_id"]),
        user_name=str(body.get("user_name") or ""),
        conversation_id=dm,
        platform=Platform.SLACK,
        tenant=team_of(body),
        raw=body,
    )


def shortcut_message(body: dict[str, Any], dm: str, files: tuple[Attachment, ...]) -> Message:
    """The message shortcut "Ask the NDR helpdesk": the shared message's text and ``files``,
    answered in the user's DM ``dm``."""
    user = body["user"]
    shared = body.get("message") or {}
    return Message(
        text=slack_to_text(str(shared.get("text") or "")),
        files=files,
        user_id=str(user["id"]),
        user_name=str(user.get("name") or user.get("username") or ""),
        conversation_id=dm,
        platform=Platform.SLACK,
        tenant=team_of(body),
        raw=body,
    )


def shared_files(body: Mapping[str, Any]) -> Any:
    """The files of the message a shortcut was used on (as Slack lists them)."""
    return (body.get("message") or {}).get("files")


# ---- buttons ----------------------------------------------------------------------------------


def user_name(user: Mapping[str, Any]) -> str:
    """The name an interaction payload gives its user (the handle), else the id."""
    return str(user.get("name") or user.get("username") or user.get("id") or "")


def interaction_channel(body: Mapping[str, Any]) -> str:
    """The channel a button was clicked in; "" when the payload does not say."""
    container = body.get("container") or {}
    channel = body.get("channel") or {}
    if isinstance(channel, str):  # Slack writes a channel as an id or as an object
        channel = {"id": channel}
    return str(container.get("channel_id") or channel.get("id") or "")


def clicked_button(body: Mapping[str, Any]) -> Any:
    """The first action of a block_actions payload (the button clicked), or None."""
    return next(iter(body.get("actions") or ()), None)


def answer_value(action: Any) -> dict[str, Any] | None:
    """The ``{"slot", "answer"}`` an answer button carries; None if it is not one of ours."""
    if not isinstance(action, dict):
        return None
    try:
        value = json.loads(str(action.get("value") or ""))
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    slot, answer = value.get("slot"), value.get("answer")
    if isinstance(slot, str) and isinstance(answer, str):
        return {"slot": slot, "answer": answer}
    return None


@dataclass(frozen=True)
class AnswerClick:
    """An answer button clicked: the turn it is, and what showing the choice needs."""

    message: Message
    target: Target
    delivery_id: object  # tells a repeated delivery apart
    channel: str
    clicked: dict[str, Any]  # the message whose button it was
    block_id: str
    label: str


def answer_click(body: dict[str, Any]) -> AnswerClick | None:
    """A click on one of a question's buttons; None if the button is not one of ours."""
    action = clicked_button(body)
    value = answer_value(action)
    if action is None or value is None:
        return None
    user = body["user"]
    clicked = body.get("message") or {}
    channel = interaction_channel(body)
    thread = clicked.get("thread_ts") or (body.get("container") or {}).get("thread_ts")
    label = str((action.get("text") or {}).get("text") or value["answer"])
    message = Message(
        text=label,
        user_id=str(user["id"]),
        user_name=str(user.get("name") or user.get("username") or ""),
        conversation_id=f"{channel}:{thread}" if thread else channel,
        platform=Platform.SLACK,
        value=value,
        tenant=team_of(body),
        raw=body,
    )
    return AnswerClick(
        message=message,
        target=Target(channel, str(thread) if thread else None),
        delivery_id=body.get("trigger_id") or action.get("action_ts"),
        channel=channel,
        clicked=clicked,
        block_id=str(action.get("block_id")),
        label=label,
    )


@dataclass(frozen=True)
class TicketButton:
    """A ticket card's button: which action, on which ticket (its public reference), at the
    version the card shows."""

    action: Action
    ref: str
    version: int | None


def ticket_button(button: Mapping[str, Any]) -> TicketButton | None:
    """What a card's button asks; None if it is not one of ours."""
    parsed = parse_ticket_value(button.get("value"))
    try:
        action = Action(str(button.get("action_id") or "").partition(":")[2])
    except ValueError:
        return None
    if parsed is None:
        return None
    return TicketButton(action, *parsed)
