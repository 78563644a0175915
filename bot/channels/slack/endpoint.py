"""Slack on the server: ``mount`` adds ``/slack/events`` (or a Socket Mode connection) and the
channel's lifetime to the aiohttp app.

HTTP mode serves ``/slack/events``: Slack's signed events, commands and interactions go into
bolt. Every request's signature is checked first (401 when Slack did not sign it); a signed body
that is not one Slack would send (a field of a type bolt or the listeners cannot read) is
refused with a 400 that says why, never handed to bolt. With ``SLACK_APP_TOKEN`` set, Socket
Mode connects out instead. The lifetime starts the channel, adds its ticket notifier to the
tickets service, and at shutdown lets the turns still running answer before the session
closes. Its own room because it is the one place the server and Slack meet.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Final
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from bot.appkeys import BACKGROUND, METRICS, RUNTIME
from bot.channels.slack.channel import SlackChannel
from bot.channels.slack.connection import secret
from bot.channels.slack.events import EVENTS_PATH
from bot.channels.slack.ticket_notifier import SlackTicketNotifier
from bot.channels.slack.web_api import API_TIMEOUT_SECONDS
from bot.config import Settings
from dialogs.messages import Platform

log = logging.getLogger("bot.channels.slack")

SLACK = web.AppKey("slack_channel", SlackChannel)
_CONTENT_TYPES: Final = ("application/json", "application/x-www-form-urlencoded")


def mount(app: web.Application, settings: Settings) -> None:
    """Add /slack/events (or a Socket Mode connection) to the app. Slack says it is on only once
    auth.test has answered (``SlackChannel.start``); a partial configuration names what is
    missing."""
    missing = settings.slack_missing
    if missing is not None:
        log.warning("Slack is off: %s", missing)
        return
    # bot.app imports this package; its app keys exist by the time create_app calls mount().

    socket_mode = secret(settings.slack_app_token) is not None
    if not socket_mode:
        app.router.add_post(EVENTS_PATH, _events)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        runtime = app[RUNTIME]
        async with aiohttp.ClientSession() as session:
            channel = SlackChannel(
                settings,
                session=session,
                turns=runtime.turns,
                store=runtime.store,
                knowledge=runtime.knowledge,
                metrics=app[METRICS],
                background=app[BACKGROUND],
                tickets=runtime.tickets,
            )
            app[SLACK] = channel
            await channel.start()
            # The tickets' worker delivers Slack's jobs (cards, notes, news) through this channel.
            runtime.tickets.add_notifier(SlackTicketNotifier(channel))
            runtime.tickets.add_late_replies(channel.late)  # and the replies Slack did not take
            try:
                yield
            finally:
                runtime.tickets.remove_notifier(Platform.SLACK)
                await channel.close()
            # Turns still running need the session to answer: let them end before it closes.
            await app[BACKGROUND].wait(API_TIMEOUT_SECONDS)

    app.cleanup_ctx.append(lifetime)


async def _events(request: web.Request) -> web.StreamResponse:
    """POST /slack/events: Slack's signed events, commands and interactions, into bolt. The
    signature is checked first, on the raw body: whatever is not signed by Slack (a forged or
    stale signature, a timestamp that is not a number) is a 401 whatever it holds; then a signed
    body bolt or the listeners could not read is a 400 with the reason."""
    channel = request.app[SLACK]
    raw = await request.read()  # over the app's client_max_size: 413, as for any route
    if ssl_check(raw, request.content_type):
        return web.Response(status=200)
    if not channel.connection.signed(raw, request.headers):
        channel.metrics.errors.labels(Platform.SLACK, "signature").inc()
        return web.json_response({"error": "invalid signature"}, status=401)
    try:
        bolt_request = await to_bolt_request(request)
        problem = malformed(bolt_request.body, request.content_type)
    except RecursionError:  # Python's json recurses once per level: 5,000 "[" exhaust it
        problem = "the body is JSON nested too deeply"
    except Exception:  # bolt could not even parse it: not UTF-8, not JSON, not a form
        problem = "the body is not Slack's JSON or form data"
    if problem is not None:
        channel.metrics.errors.labels(Platform.SLACK, "bad_request").inc()
        log.warning("refused a malformed Slack request", extra={"reason": problem})
        return web.json_response({"error": problem}, status=400)
    dispatched = await channel.connection.bolt.async_dispatch(bolt_request)
    response = await to_aiohttp_response(dispatched)
    if response.status == 401:
        channel.metrics.errors.labels(Platform.SLACK, "signature").inc()
    return response


def ssl_check(raw: bytes, content_type: str) -> bool:
    """Whether the body is Slack's ``ssl_check``: a form with ``ssl_check=1`` (and a token)
    that Slack sends to a slash command's Request URL to check its certificate. It wants a 200
    and nothing else; bolt answers it before the signature check too (``SslCheck``), since
    nothing is read or done."""
    if content_type != "application/x-www-form-urlencoded" or b"ssl_check" not in raw:
        return False
    try:
        form = parse_qs(raw.decode("utf-8"), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return False
    return form.get("ssl_check") == ["1"] and "payload" not in form and "command" not in form


# ---- the shapes bolt and the listeners read ---------------------------------------------------
# Bolt indexes payloads as Slack documents them (``body["actions"][0]["action_id"]``,
# ``body["view"]["type"]``, a ``re`` match on each callback id): a signed body of another shape
# made it raise, a 500 with a traceback. Each field read is checked here, so such a body is a
# 400 that names the field; a field Slack may leave out stays optional.

_ID_FIELDS: Final = ("user", "channel", "team")
"""An id (a string) or an object with one: bolt and Slack write both."""
_OBJECT_FIELDS: Final = ("container", "message", "view", "state", "enterprise", "event")
_STRING_FIELDS: Final = (
    "type",
    "callback_id",
    "action_id",
    "trigger_id",
    "response_url",
    "event_id",
    "command",
    "text",
    "user_id",
    "user_name",
    "channel_id",
    "team_id",
    "action_ts",
)
_ID_STRINGS: Final = (
    "user_id",
    "channel_id",
    "team_id",
    "event_id",
    "trigger_id",
    "callback_id",
    "action_id",
)
_MAX_ID: Final = 255
"""Slack's ids are a dozen characters; the bot sends them back (a DM opened for a user id)."""
_OBJECT_LISTS: Final = ("authorizations", "response_urls", "actions")
_ACTION_STRINGS: Final = ("action_id", "block_id", "value", "action_ts", "type")
_INTERACTIONS: Final = (
    "block_actions",
    "message_action",
    "shortcut",
    "view_submission",
    "view_closed",
    "interactive_message",
    "block_suggestion",
    "dialog_submission",
    "dialog_cancellation",
)
_VIEWS: Final = ("view_submission", "view_closed")
_EVENTS_READ: Final = ("message", "app_mention", "app_home_opened")
"""The events the listeners read; the fields of any other are not looked at."""
_EVENT_STRINGS: Final = (
    "user",
    "channel",
    "channel_type",
    "text",
    "subtype",
    "ts",
    "thread_ts",
    "bot_id",
    "tab",
)


def malformed(body: Any, content_type: str) -> str | None:
    """Why a (parsed, signed) request is not one Slack would send; None when it looks right."""
    if content_type not in _CONTENT_TYPES:
        return f"expected {' or '.join(_CONTENT_TYPES)}, not {content_type or 'no content type'}"
    if not isinstance(body, dict) or not body:
        return "the body is empty or not an object"
    problem = _field_types(body, "")
    if problem is not None:
        return problem
    if "command" in body:
        missing = [key for key in ("command", "user_id", "channel_id") if not body.get(key)]
        return f"the command lacks {', '.join(missing)}" if missing else None
    kind = body.get("type")
    if not isinstance(kind, str):
        return "the body has no type"
    if kind == "url_verification" and not isinstance(body.get("challenge"), str):
        return "the url_verification has no challenge"
    if kind == "event_callback":
        return _event_problem(body)
    if kind in _INTERACTIONS:
        return _interaction_problem(kind, body)
    return None


def _field_types(fields: dict[str, Any], where: str) -> str | None:
    """The first top-level field (of ``where``) that has a type Slack never sends."""
    for name in _ID_FIELDS:
        value = fields.get(name)
        if value is not None and not isinstance(value, str | dict):
            return f"{where}{name} is neither an id nor an object"
    for name in _OBJECT_FIELDS:
        if fields.get(name) is not None and not isinstance(fields[name], dict):
            return f"{where}{name} is not an object"
    for name in _STRING_FIELDS:
        if fields.get(name) is not None and not isinstance(fields[name], str):
            return f"{where}{name} is not a string"
    for name, value in _ids(fields):
        if len(value) > _MAX_ID:
            return f"{where}{name} is longer than an id ({_MAX_ID} characters)"
    for name in _OBJECT_LISTS:
        items = fields.get(name)
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            return f"{where}{name} is not a list of objects"
    return None


def _ids(fields: dict[str, Any]) -> list[tuple[str, str]]:
    """The ids among ``fields`` (strings by then): a long one goes back to Slack in a URL."""
    found = [(name, fields[name]) for name in _ID_STRINGS if isinstance(fields.get(name), str)]
    for name in _ID_FIELDS:
        value = fields.get(name)
        if isinstance(value, str):
            found.append((name, value))
        elif isinstance(value, dict) and isinstance(value.get("id"), str):
            found.append((f"{name}.id", value["id"]))
    return found


def _event_problem(body: dict[str, Any]) -> str | None:
    event = body.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return "the event callback has no event"
    if not isinstance(body.get("event_id"), str):
        return "the event callback has no event_id"
    if event["type"] not in _EVENTS_READ:
        return None
    for name in _EVENT_STRINGS:
        if event.get(name) is not None and not isinstance(event[name], str):
            return f"event.{name} is not a string"
    if event.get("files") is not None and not isinstance(event["files"], list):
        return "event.files is not a list"
    if event.get("user_profile") is not None and not isinstance(event["user_profile"], dict):
        return "event.user_profile is not an object"
    return None


def _interaction_problem(kind: str, body: dict[str, Any]) -> str | None:
    user = body.get("user")
    if kind != "block_suggestion" and (
        not isinstance(user, dict) or not isinstance(user.get("id"), str)
    ):
        return f"the {kind} payload has no user"
    if kind in ("block_actions", "interactive_message"):
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return f"the {kind} payload has no actions"
        for action in actions:
            if kind == "block_actions" and not isinstance(action.get("action_id"), str):
                return "an action has no action_id"
            for name in _ACTION_STRINGS:
                if action.get(name) is not None and not isinstance(action[name], str):
                    return f"an action's {name} is not a string"
            if action.get("text") is not None and not isinstance(action["text"], dict):
                return "an action's text is not an object"
    if kind == "message_action":
        message = body.get("message")
        if not isinstance(message, dict):
            return "the message_action payload has no message"
        if message.get("files") is not None and not isinstance(message["files"], list):
            return "the message's files are not a list"
    if kind in ("message_action", "shortcut") and not isinstance(body.get("callback_id"), str):
        return f"the {kind} payload has no callback_id"
    if kind in _VIEWS:
        return _view_problem(kind, body.get("view"))
    return None


def _view_problem(kind: str, view: Any) -> str | None:
    if not isinstance(view, dict):
        return f"the {kind} payload has no view"
    for name in ("type", "callback_id"):
        if not isinstance(view.get(name), str):
            return f"the view has no {name}"
    for name in ("id", "private_metadata", "hash"):
        if view.get(name) is not None and not isinstance(view[name], str):
            return f"view.{name} is not a string"
    state = view.get("state")
    if state is None:
        return None
    values = state.get("values") if isinstance(state, dict) else None
    if not isinstance(state, dict) or (values is not None and not isinstance(values, dict)):
        return "view.state is not an object of values"
    for block in (values or {}).values():
        if not isinstance(block, dict) or not all(isinstance(f, dict) for f in block.values()):
            return "view.state.values holds something other than fields"
    return None
