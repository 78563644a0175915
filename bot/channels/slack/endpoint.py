"""Slack on the server: ``mount`` adds ``/slack/events`` (or a Socket Mode connection) and the
channel's lifetime to the aiohttp app.

HTTP mode serves ``/slack/events``: Slack's signed events, commands and interactions go into
bolt; a body that is not one Slack would send is refused with a 4xx that says why (401 when it
is not signed either), never handed to bolt. With ``SLACK_APP_TOKEN`` set, Socket Mode connects
out instead. The lifetime starts the channel, adds its ticket notifier to the tickets service,
and at shutdown lets the turns still running answer before the session closes. Its own room
because it is the one place the server and Slack meet.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Final

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
            try:
                yield
            finally:
                runtime.tickets.remove_notifier(Platform.SLACK)
                await channel.close()
            # Turns still running need the session to answer: let them end before it closes.
            await app[BACKGROUND].wait(API_TIMEOUT_SECONDS)

    app.cleanup_ctx.append(lifetime)


async def _events(request: web.Request) -> web.StreamResponse:
    """POST /slack/events: Slack's signed events, commands and interactions, into bolt."""
    channel = request.app[SLACK]
    raw = await request.read()  # over the app's client_max_size: 413, as for any route
    try:
        bolt_request = await to_bolt_request(request)
        problem = malformed(bolt_request.body, request.content_type)
    except Exception:  # bolt could not even parse it: not UTF-8, not JSON, not a form
        problem = "the body is not Slack's JSON or form data"
    if problem is not None:
        if not channel.connection.signed(raw, request.headers):
            channel.metrics.errors.labels(Platform.SLACK, "signature").inc()
            return web.json_response({"error": "invalid signature"}, status=401)
        channel.metrics.errors.labels(Platform.SLACK, "bad_request").inc()
        log.warning("refused a malformed Slack request", extra={"reason": problem})
        return web.json_response({"error": problem}, status=400)
    dispatched = await channel.connection.bolt.async_dispatch(bolt_request)
    response = await to_aiohttp_response(dispatched)
    if response.status == 401:
        channel.metrics.errors.labels(Platform.SLACK, "signature").inc()
    return response


def malformed(body: Any, content_type: str) -> str | None:
    """Why a (parsed) request is not one Slack would send; None when it looks right."""
    if content_type not in _CONTENT_TYPES:
        return f"expected {' or '.join(_CONTENT_TYPES)}, not {content_type or 'no content type'}"
    if not isinstance(body, dict) or not body:
        return "the body is empty or not an object"
    if "command" in body:
        missing = [key for key in ("command", "user_id", "channel_id") if not body.get(key)]
        return f"the command lacks {', '.join(missing)}" if missing else None
    kind = body.get("type")
    if not isinstance(kind, str):
        return "the body has no type"
    if kind == "event_callback":
        event = body.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return "the event callback has no event"
        if not isinstance(body.get("event_id"), str):
            return "the event callback has no event_id"
    elif kind in ("block_actions", "message_action", "view_submission"):
        user = body.get("user")
        if not isinstance(user, dict) or not isinstance(user.get("id"), str):
            return f"the {kind} payload has no user"
        if kind == "block_actions" and not isinstance(body.get("actions"), list):
            return "the block_actions payload has no actions"
        if kind == "message_action" and not isinstance(body.get("message"), dict):
            return "the message_action payload has no message"
        if kind == "view_submission" and not isinstance(body.get("view"), dict):
            return "the view_submission payload has no view"
    return None
