"""``POST /api/messages``: the Teams endpoint's HTTP contract. ``mount`` adds the route and builds
the channel when the app starts; each request is checked (in local mode: from loopback, addressed
to a loopback ``Host``, replying to a loopback ``serviceUrl``; a token when one is needed and
none in local mode, JSON not nested too deeply, the shape of an activity), handed to
botbuilder's ``CloudAdapter`` (``process_activity``: it authenticates the request and runs our
:class:`~bot.channels.teams.turn.Turn`), and answered with the status the adapter returns, or
with a 4xx/5xx and a JSON reason (:class:`Refused`).

Its own room because it is the only part of the channel that sees HTTP: everything behind it
works on activities.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import aiohttp
from aiohttp import web
from azure.core.exceptions import DeserializationError  # what msrest raises (and re-exports)
from botbuilder.core import InvokeResponse
from botbuilder.schema import Activity

from bot.appkeys import METRICS, RUNTIME
from bot.channels.teams.channel import TeamsChannel
from bot.channels.teams.failures import Refused
from bot.channels.teams.options import TeamsOptions
from bot.channels.teams.turn import Turn
from bot.config import Settings
from bot.hosts import is_loopback_authority
from bot.outbound import is_loopback_url
from dialogs.messages import Platform

log = logging.getLogger("bot.channels.teams")

_JSON: Final = "application/json"
_CARD_ACTION: Final = "adaptiveCard/action"
_RETRY_AFTER: Final = {"Retry-After": "5"}

OPTIONS: Final = web.AppKey("teams_options", TeamsOptions)
TEAMS: Final = web.AppKey("teams", TeamsChannel)


def mount(app: web.Application, settings: Settings) -> None:
    """Add /api/messages to the app; its parts are built when the app starts."""
    app[OPTIONS] = TeamsOptions()
    app.router.add_post("/api/messages", _messages)
    app.cleanup_ctx.append(_channel_context(settings))


def _channel_context(
    settings: Settings,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            channel = TeamsChannel(
                settings,
                app[OPTIONS],
                app[RUNTIME],
                app[METRICS],
                session,
            )
            app[TEAMS] = channel
            escalations = app[RUNTIME].tickets
            escalations.add_notifier(channel.tickets)
            escalations.add_late_replies(channel.late)
            try:
                yield
            finally:
                escalations.remove_notifier(Platform.TEAMS)

    return context


async def _messages(request: web.Request) -> web.StreamResponse:
    """Answer one POST /api/messages."""
    channel = request.app[TEAMS]
    try:
        loopback_only = channel.local and not channel.settings.teams_local_allow_remote
        if loopback_only:
            _require_loopback(request)
            _require_loopback_host(request)
        header = request.headers.get("Authorization") or ""
        channel.auth.check_header(header)  # no token where one is needed: 401, body unread
        body = await _read_activity(request)
        if loopback_only:
            _require_loopback_service_url(body)
        try:
            activity = Activity().deserialize(body)
        except (DeserializationError, TypeError, ValueError, RecursionError):
            reason = "not an activity: a field has the wrong type"
            raise Refused(400, reason, "bad_request") from None
        turn = Turn(channel, body)
        answer = await channel.adapter.process_activity(header, activity, turn.run)
        if turn.unavailable and not turn.expects_replies:
            # Told in the chat to try again; the status says the activity was not handled.
            # (expectReplies carries that text in the answer itself: it stays a 200.)
            raise Refused(503, "the bot's database is unavailable; try again", "unavailable")
        return _response(answer)
    except Refused as refused:
        if refused.kind == "unavailable":  # counted and logged once, by the turn
            return web.json_response(
                {"error": refused.reason}, status=refused.status, headers=_RETRY_AFTER
            )
        channel.metrics.errors.labels(Platform.TEAMS, refused.kind).inc()
        log.warning(
            "request refused",
            extra={
                "channel": Platform.TEAMS,
                "status": refused.status,
                "reason": refused.reason,
            },
        )
        return web.json_response({"error": refused.reason}, status=refused.status)


def _require_loopback(request: web.Request) -> None:
    remote = request.remote
    if not remote:
        return  # a Unix socket: local by definition
    try:
        loopback = ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise Refused(
            403,
            "local mode (no MICROSOFT_APP_ID) serves loopback addresses only; "
            "set TEAMS_LOCAL_ALLOW_REMOTE=true to allow others",
            "refused",
        )


def _require_loopback_host(request: web.Request) -> None:
    """In local mode, only requests addressed to this machine by name: a web page whose DNS
    name is rebound to 127.0.0.1 reaches the bot from loopback, but with its own ``Host``."""
    if not is_loopback_authority(request.headers.get("Host")):
        raise Refused(
            421,
            "local mode (no MICROSOFT_APP_ID) answers requests addressed to localhost, "
            "127.0.0.1 or [::1] only (the Host header); set TEAMS_LOCAL_ALLOW_REMOTE=true "
            "to allow others",
            "refused",
        )


def _require_loopback_service_url(activity: dict[str, Any]) -> None:
    """In local mode, replies go to this machine only: without a token nothing vouches for the
    ``serviceUrl``, and whoever wrote it would have the bot post to any address it names."""
    service_url = activity.get("serviceUrl")
    if isinstance(service_url, str) and service_url and not is_loopback_url(service_url):
        raise Refused(
            403,
            "local mode (no MICROSOFT_APP_ID) replies to loopback service URLs only "
            "(localhost, 127.0.0.0/8, [::1]); set TEAMS_LOCAL_ALLOW_REMOTE=true to allow others",
            "refused",
        )


async def _read_activity(request: web.Request) -> dict[str, Any]:
    if request.content_type != _JSON:
        raise Refused(415, "send the activity as application/json", "bad_request")
    body = await request.read()
    try:
        activity = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "the body is not valid JSON", "bad_request") from None
    except RecursionError:  # Python's json recurses once per level: 5,000 "[" exhaust it
        raise Refused(400, "the body is JSON nested too deeply", "bad_request") from None
    problem = shape_problem(activity)
    if problem:
        raise Refused(400, f"not an activity: {problem}", "bad_request")
    return activity  # type: ignore[no-any-return]


def shape_problem(activity: Any) -> str | None:
    """What makes the body not an activity the bot can work with (a 400), or None."""
    if not isinstance(activity, dict):
        return "the body is not a JSON object"
    if not isinstance(activity.get("type"), str) or not activity["type"]:
        return "no type"
    if activity["type"] not in ("message", "invoke", "conversationUpdate", "installationUpdate"):
        return None  # read no further: nothing is done with it
    service_url = activity.get("serviceUrl")
    if not isinstance(service_url, str) or not service_url.startswith(("https://", "http://")):
        return "no serviceUrl"
    # An empty id is no id: every reply to it would be refused by the Bot Connector.
    conversation = activity.get("conversation")
    if not isinstance(conversation, dict) or not _text(conversation.get("id")):
        return "no conversation.id"
    sender = activity.get("from")
    if not isinstance(sender, dict) or not _text(sender.get("id")):
        return "no from.id"
    for name in ("recipient", "channelData"):
        if activity.get(name) is not None and not isinstance(activity[name], dict):
            return f"{name} is not an object"
    for name in ("text", "id", "channelId", "name"):
        if activity.get(name) is not None and not isinstance(activity[name], str):
            return f"{name} is not a string"
    for name in ("entities", "attachments", "membersAdded"):
        if activity.get(name) is not None and not isinstance(activity[name], list):
            return f"{name} is not a list"
    if activity["type"] == "invoke" and activity.get("name") == _CARD_ACTION:
        # botbuilder's own handler of this invoke answers such a value 400 (BadRequest).
        value = activity.get("value")
        if not isinstance(value, dict) or not isinstance(value.get("action"), dict):
            return "the card action has no value.action"
    return None


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _response(answer: InvokeResponse | None) -> web.Response:
    """The HTTP answer for what the adapter returns: 201 for a plain turn, the invoke response
    (or expectReplies' activities, 200) otherwise."""
    if answer is None:
        return web.Response(status=201)
    body = answer.body if answer.body is not None else {}
    return web.json_response(body, status=int(answer.status or 200))


__all__ = ["OPTIONS", "TEAMS", "mount", "shape_problem"]
