"""Slack through slack-bolt: the only module that imports it.

Direct messages, @mentions (answered in the thread), ``/ndr``, the "Ask the NDR helpdesk" message
shortcut, ``.eml`` files, button clicks and the App Home tab all become one neutral ``Message`` for
the conversation service; its replies go back as Block Kit (``bot/render/slack.py``).

Tickets: ``SlackTicketNotifier`` posts and updates the ticket cards in the admins' channel for the
tickets service (``bot/tickets/``) and brings the requesters their news; the cards' buttons
and modals become the service's ``act`` calls, and ``@bot register admins`` in a channel makes it
the admins' channel. These platform commands never reach the dialogs.

Every listener acknowledges first and does the work afterwards on the app's background tasks,
so Slack hears back within its 3 seconds whatever a turn costs. A delivery Slack retries is
answered once: the event ids live in the store, so a retry that lands on another instance is
dropped too. HTTP mode serves ``/slack/events``; with ``SLACK_APP_TOKEN`` set, Socket Mode
connects out instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.appkeys import BACKGROUND, METRICS, RUNTIME
from bot.background import BackgroundTasks
from bot.config import Settings
from bot.metrics import Metrics
from bot.outbound import Downloaded, DownloadProblem, download, retry_after
from bot.render.slack import (
    ANSWER_ACTION,
    MODAL_ACTIONS,
    TICKET_ACTION,
    TICKET_INPUT_BLOCK,
    TICKET_MODAL,
    SlackMessage,
    answered_blocks,
    escape,
    home_view,
    parse_ticket_value,
    render_replies,
    ticket_card,
    ticket_modal,
    ticket_modal_input,
)
from bot.store import Requester, Store
from bot.tickets import (
    Action,
    ActionRequest,
    ActionResult,
    Actor,
    CardRef,
    PermanentFailure,
    TicketCard,
    Tickets,
)
from bot.turns import Turns
from dialogs.intent import is_register_admins
from dialogs.messages import Attachment, Message, Platform
from dialogs.replies import Reply, Text
from knowledge.kb import KnowledgeBase
from knowledge.ndr import slack_to_text

log = logging.getLogger(__name__)

EVENTS_PATH: Final = "/slack/events"
SLASH_COMMAND: Final = "/ndr"
SHORTCUT_CALLBACK_ID: Final = "ask_ndr_helpdesk"
#: The texts of conversation.yaml this module looks up; checked when the bot starts.
TEXTS: Final = frozenset({"slack_modal_required"})

_API_TIMEOUT_SECONDS = 15
# auth.test failed at start: tried again after these pauses (doubling), until Slack answers.
_AUTH_RETRY_FIRST_SECONDS = 5.0
_AUTH_RETRY_MAX_SECONDS = 300.0
# What auth.test answers when the bot token itself is wrong: retrying will not cure it.
_TOKEN_REFUSED = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
_RATE_LIMIT_RETRIES = 3
_SERVER_ERROR_RETRIES = 2
_DOWNLOAD_TIMEOUT_SECONDS = 30.0
_MAX_FILES_PER_MESSAGE = 3
_DM_CACHE_SIZE = 10_000
_CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded")
# A message from a person: plain, with files, or a thread reply also sent to the channel.
_PERSON_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")
_USER_CACHE_SIZE = 10_000
_MEMBERS_TTL_SECONDS = 60.0
_MEMBERS_PAGE = 200
# Web API errors that another try may cure (after slack_sdk's own retries gave up), or that an
# operator fixes without the job being lost (a token or a scope); any other error is permanent.
_TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "not_authed",
        "invalid_auth",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "team_access_not_granted",
        "ekm_access_denied",
    }
)


# ---- mounting ---------------------------------------------------------------------------------


def mount(app: web.Application, settings: Settings) -> None:
    """Add /slack/events (or a Socket Mode connection) to the app. Slack says it is on only once
    auth.test has answered (``SlackChannel.start``); a partial configuration names what is
    missing."""
    missing = settings.slack_missing
    if missing is not None:
        log.warning("Slack is off: %s", missing)
        return
    # bot.app imports this module; its app keys exist by the time create_app calls mount().

    socket_mode = _secret(settings.slack_app_token) is not None
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
            await app[BACKGROUND].wait(_API_TIMEOUT_SECONDS)

    app.cleanup_ctx.append(lifetime)


async def _events(request: web.Request) -> web.StreamResponse:
    """POST /slack/events: Slack's signed events, commands and interactions, into bolt."""
    channel = request.app[SLACK]
    raw = await request.read()  # over the app's client_max_size: 413, as for any route
    try:
        bolt_request = await to_bolt_request(request)
        problem = _malformed(bolt_request.body, request.content_type)
    except Exception:  # bolt could not even parse it: not UTF-8, not JSON, not a form
        problem = "the body is not Slack's JSON or form data"
    if problem is not None:
        if not channel.signed(raw, request.headers):
            channel.metrics.errors.labels(Platform.SLACK, "signature").inc()
            return web.json_response({"error": "invalid signature"}, status=401)
        channel.metrics.errors.labels(Platform.SLACK, "bad_request").inc()
        log.warning("refused a malformed Slack request", extra={"reason": problem})
        return web.json_response({"error": problem}, status=400)
    response = await to_aiohttp_response(await channel.bolt.async_dispatch(bolt_request))
    if response.status == 401:
        channel.metrics.errors.labels(Platform.SLACK, "signature").inc()
    return response


def _malformed(body: Any, content_type: str) -> str | None:
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


# ---- the channel ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where replies go: a channel (a DM's id for direct messages), and a thread in it."""

    channel: str
    thread_ts: str | None = None


@dataclass(frozen=True)
class _Identity:
    """The bot as Slack knows it (auth.test), so its own messages are told apart."""

    user_id: str | None
    bot_id: str | None
    team_id: str | None
    enterprise_id: str | None


class _FileRefused(Exception):
    """A file cannot be handed on; ``str()`` is the sentence to show (from conversation.yaml)."""


class SlackChannel:
    """The bolt app, the Web API client, and the translation of Slack payloads into turns."""

    def __init__(
        self,
        settings: Settings,
        *,
        session: aiohttp.ClientSession,
        turns: Turns,
        store: Store,
        knowledge: KnowledgeBase,
        metrics: Metrics,
        background: BackgroundTasks,
        tickets: Tickets | None = None,
    ) -> None:
        """Build the Web API client on the shared session, and the bolt app with its listeners.
        With ``tickets``, admins work tickets from their cards and ``register admins``."""
        self.settings = settings
        self.session = session
        self.turns = turns
        self.store = store
        self.knowledge = knowledge
        self._words = knowledge.conversation
        self.metrics = metrics
        self.background = background
        self.tickets = tickets
        self._token = _secret(settings.slack_bot_token) or ""
        self._signing_secret = _secret(settings.slack_signing_secret) or ""
        self._app_token = _secret(settings.slack_app_token)
        # Socket Mode needs no signing secret: nothing comes in over HTTP then.
        self._verifier = SignatureVerifier(self._signing_secret) if self._signing_secret else None
        self.client = self._web_client(self._token)
        _quiet_bolt_notices(log.getChild("bolt"))
        self.bolt = AsyncApp(
            name="ndrbot",
            # Bolt's own client has no token: the token comes from authorize below (a client
            # with a token next to an authorize function makes bolt warn at every start).
            client=self._web_client(None),
            signing_secret=self._signing_secret,
            authorize=self._authorize_function(),
            request_verification_enabled=self._verifier is not None,
            # Each listener acks, then hands its work to the background tasks: Slack hears back
            # at once, and a shutdown waits for the work (bolt's own futures it would not).
            process_before_response=True,
            logger=log.getChild("bolt"),
        )
        self._identity: _Identity | None = None
        self._identity_lookup: asyncio.Task[None] | None = None
        self._dm_channels: dict[str, str] = {}
        self._user_names: dict[str, str] = {}
        self._conversations_busy: dict[str, tuple[asyncio.Lock, int]] = {}
        self._file_hosts = {"slack.com", urlsplit(settings.slack_api_url).hostname or ""}
        self._socket_mode: AsyncSocketModeHandler | None = None
        self._socket_connect: asyncio.Task[None] | None = None
        self._listen()

    # -- lifetime -------------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """How Slack reaches the bot, as the start-up log says it."""
        if self._app_token is None:
            return f"HTTP at {EVENTS_PATH}"
        if self._signing_secret:
            return "Socket Mode (SLACK_SIGNING_SECRET is not used in Socket Mode)"
        return "Socket Mode"

    async def start(self) -> None:
        """Learn who the bot is (auth.test); then say that Slack is on and connect Socket Mode
        when it is configured. If auth.test fails, say that Slack is not on yet and try again in
        the background, pausing longer each time, until Slack answers: the server starts
        either way."""
        reason = await self._look_up_identity()
        if reason is None:
            self._switch_on()
            return
        log.error(
            "Slack is not on yet: auth.test failed (%s%s); trying again in %g s%s",
            reason,
            ": SLACK_BOT_TOKEN is wrong or revoked" if reason in _TOKEN_REFUSED else "",
            _AUTH_RETRY_FIRST_SECONDS,
            ", then Socket Mode connects" if self._app_token is not None else "",
            extra={"reason": reason},
        )
        self._retry_identity_lookup(_AUTH_RETRY_FIRST_SECONDS)

    def _switch_on(self) -> None:
        log.info("Slack is on: %s", self.mode)
        if self._app_token is not None and self._socket_mode is None:
            self._socket_mode = AsyncSocketModeHandler(
                self.bolt, app_token=self._app_token, web_client=self.client, logger=log
            )
            # Connecting retries until Slack answers; the server must not wait for that.
            self._socket_connect = asyncio.create_task(
                self._socket_mode.connect_async(),  # type: ignore[no-untyped-call]
                name="slack-socket-mode",
            )

    def _retry_identity_lookup(self, pause: float) -> None:
        """auth.test again in the background after ``pause`` s, and again until it answers."""

        async def retry(pause: float) -> None:
            while True:
                await asyncio.sleep(pause)
                reason = await self._look_up_identity()
                if reason is None:
                    self._switch_on()
                    return
                pause = min(max(pause * 2, _AUTH_RETRY_FIRST_SECONDS), _AUTH_RETRY_MAX_SECONDS)
                log.warning(
                    "Slack auth.test failed (%s); trying again in %g s",
                    reason,
                    pause,
                    extra={"reason": reason},
                )

        self._identity_lookup = asyncio.create_task(retry(pause), name="slack-auth-test")

    async def close(self) -> None:
        """Stop Socket Mode and the background identity look-up."""
        for task in (self._socket_connect, self._identity_lookup):
            if task is not None and not task.done():
                task.cancel()
        if self._socket_mode is not None:
            await self._socket_mode.close_async()  # type: ignore[no-untyped-call]

    def signed(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Whether Slack signed this body (and recently)."""
        if self._verifier is None:
            return False
        try:
            return self._verifier.is_valid_request(body, dict(headers))
        except ValueError:  # a timestamp that is not a number, a body that is not UTF-8
            return False

    async def _look_up_identity(self) -> str | None:
        """auth.test: who the bot is. None when Slack answered, else the reason it failed."""
        try:
            found = await self.client.auth_test()
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as error:
            return _reason(error)
        self._identity = _Identity(
            user_id=found.get("user_id"),
            bot_id=found.get("bot_id"),
            team_id=found.get("team_id"),
            enterprise_id=found.get("enterprise_id"),
        )
        return None

    def _web_client(self, token: str | None) -> AsyncWebClient:
        """A Web API client on the shared session; slack_sdk's handlers retry 429 and 5xx."""
        return AsyncWebClient(
            token=token,
            base_url=self.settings.slack_api_url,
            session=self.session,
            timeout=_API_TIMEOUT_SECONDS,
            logger=log.getChild("web"),
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(max_retry_count=1),
                _Counted(
                    AsyncRateLimitErrorRetryHandler(max_retry_count=_RATE_LIMIT_RETRIES),
                    self.metrics,
                ),
                _Counted(
                    AsyncServerErrorRetryHandler(max_retry_count=_SERVER_ERROR_RETRIES),
                    self.metrics,
                ),
            ],
        )

    def _authorize_function(self) -> Callable[[], Awaitable[AuthorizeResult]]:
        """Bolt's authorize: the identity learnt at start, never an API call in a request."""

        async def authorize() -> AuthorizeResult:
            identity = self._identity
            lookup = self._identity_lookup
            if identity is None and (lookup is None or lookup.done()):
                self._retry_identity_lookup(0.0)  # start() did not run, or was cancelled
            return AuthorizeResult(
                enterprise_id=identity.enterprise_id if identity else None,
                team_id=identity.team_id if identity else None,
                bot_user_id=identity.user_id if identity else None,
                bot_id=identity.bot_id if identity else None,
                bot_token=self._token,
            )

        return authorize

    # -- listeners: ack, then work in the background -------------------------------------------

    def _listen(self) -> None:
        # Bolt passes arguments by parameter name (and would take a method's self for one), so
        # each listener is a plain function over the methods below.
        bolt = self.bolt

        async def on_message(ack: AsyncAck, body: dict[str, Any], event: dict[str, Any]) -> None:
            await self._on_message(ack, body, event)

        async def on_mention(ack: AsyncAck, body: dict[str, Any], event: dict[str, Any]) -> None:
            await self._on_mention(ack, body, event)

        async def on_home_opened(ack: AsyncAck, event: dict[str, Any]) -> None:
            await self._on_home_opened(ack, event)

        async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
            await self._on_command(ack, body)

        async def on_shortcut(ack: AsyncAck, body: dict[str, Any]) -> None:
            await self._on_shortcut(ack, body)

        async def on_answer(ack: AsyncAck, body: dict[str, Any]) -> None:
            await self._on_answer(ack, body)

        async def on_ticket_action(ack: AsyncAck, body: dict[str, Any]) -> None:
            await self._on_ticket_action(ack, body)

        async def on_ticket_modal(
            ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
        ) -> None:
            await self._on_ticket_modal(ack, body, view)

        async def ignore(ack: AsyncAck) -> None:
            await ack()

        bolt.event("message")(on_message)
        bolt.event("app_mention")(on_mention)
        bolt.event("app_home_opened")(on_home_opened)
        bolt.command(SLASH_COMMAND)(on_command)
        bolt.shortcut(SHORTCUT_CALLBACK_ID)(on_shortcut)
        bolt.action(re.compile(f"^{re.escape(ANSWER_ACTION)}(?::|$)"))(on_answer)
        bolt.action(re.compile(f"^{re.escape(TICKET_ACTION)}:"))(on_ticket_action)
        bolt.view(TICKET_MODAL)(on_ticket_modal)
        # Anything else Slack sends is acknowledged and ignored (an unhandled one gets 404,
        # which Slack would retry, and bolt would log the payload).
        anything = re.compile(".*")
        for register in (bolt.event, bolt.command, bolt.shortcut, bolt.action, bolt.view):
            register(anything)(ignore)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self.background.spawn(work, name=f"slack-{name}")

    async def _on_message(self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any]) -> None:
        await ack()
        if event.get("channel_type") != "im" or not self._from_a_person(event):
            return
        target = Target(str(event["channel"]))
        text = slack_to_text(str(event.get("text") or ""))
        self._spawn(self._event_turn(body, event, text, target, target.channel), "dm")

    async def _on_mention(self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any]) -> None:
        await ack()
        if not self._from_a_person(event) or not event.get("channel"):
            return
        thread = str(event.get("thread_ts") or event.get("ts") or "")
        target = Target(str(event["channel"]), thread or None)
        text = slack_to_text(self._without_mentions_of_me(str(event.get("text") or "")))
        if self.tickets is not None and is_register_admins(text):
            # A platform command, not a conversation: the dialogs never see it.
            self._spawn(self._register_admins(body, event, target), "register")
            return
        conversation_id = f"{target.channel}:{thread}"
        self._spawn(self._event_turn(body, event, text, target, conversation_id), "mention")

    async def _on_home_opened(self, ack: AsyncAck, event: dict[str, Any]) -> None:
        await ack()
        user = event.get("user")
        if event.get("tab", "home") == "home" and isinstance(user, str):
            self._spawn(self._publish_home(user), "home")

    async def _on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        user, channel = str(body.get("user_id", "")), str(body.get("channel_id", ""))
        if self._dm_channels.get(user) == channel:
            await ack()
        else:
            await ack(text=self._words.text("answer_in_dm"), response_type="ephemeral")
        self._spawn(self._command_turn(body), "command")

    async def _on_shortcut(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        self._spawn(self._shortcut_turn(body), "shortcut")

    async def _on_answer(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        self._spawn(self._answer_turn(body), "answer")

    async def _on_ticket_action(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        self._spawn(self._ticket_action(body), "ticket-action")

    async def _on_ticket_modal(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        """A ticket modal submitted: refuse a blank field in the modal itself, else close it
        and act in the background."""
        submitted = ticket_modal_input(view)
        if submitted is None:
            await ack()
            return
        if not submitted.value:
            errors = {TICKET_INPUT_BLOCK: self._words.text("slack_modal_required")}
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        self._spawn(self._ticket_submission(body, view), "ticket-modal")

    # -- the work -------------------------------------------------------------------------------

    async def _event_turn(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        text: str,
        target: Target,
        conversation_id: str,
    ) -> None:
        if not await self._first_time("event", body.get("event_id")):
            return
        try:
            files = await self._download(event.get("files"))
        except _FileRefused as refused:
            await self._post(target, [self._refusal(str(refused))])
            return
        message = Message(
            text=text,
            files=files,
            user_id=str(event["user"]),
            user_name=_profile_name(event),
            conversation_id=conversation_id,
            platform=Platform.SLACK,
            raw=event,
        )
        await self._turn(message, target)

    async def _command_turn(self, body: dict[str, Any]) -> None:
        if not await self._first_time("trigger", body.get("trigger_id")):
            return
        user = str(body["user_id"])
        dm = await self._dm(user)
        if dm is None:
            return
        target = Target(dm)
        text = slack_to_text(str(body.get("text") or "")).strip() or "help"
        message = Message(
            text=text,
            user_id=user,
            user_name=str(body.get("user_name") or ""),
            conversation_id=target.channel,
            platform=Platform.SLACK,
            raw=body,
        )
        await self._turn(message, target)

    async def _shortcut_turn(self, body: dict[str, Any]) -> None:
        if not await self._first_time("trigger", body.get("trigger_id")):
            return
        user = body["user"]
        dm = await self._dm(str(user["id"]))
        if dm is None:
            return
        target = Target(dm)
        shared = body.get("message") or {}
        try:
            files = await self._download(shared.get("files"))
        except _FileRefused as refused:
            await self._post(target, [self._refusal(str(refused))])
            return
        message = Message(
            text=slack_to_text(str(shared.get("text") or "")),
            files=files,
            user_id=str(user["id"]),
            user_name=str(user.get("name") or user.get("username") or ""),
            conversation_id=target.channel,
            platform=Platform.SLACK,
            raw=body,
        )
        await self._turn(message, target)

    async def _answer_turn(self, body: dict[str, Any]) -> None:
        action = next(iter(body.get("actions") or ()), None)
        value = _answer_value(action)
        if action is None or value is None:
            log.warning("ignored a button click without an answer")
            return
        if not await self._first_time("action", body.get("trigger_id") or action.get("action_ts")):
            return
        user = body["user"]
        container = body.get("container") or {}
        clicked = body.get("message") or {}
        channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id") or "")
        thread = clicked.get("thread_ts") or container.get("thread_ts")
        target = Target(channel, str(thread) if thread else None)
        label = str((action.get("text") or {}).get("text") or value["answer"])
        await self._show_choice(channel, clicked, str(action.get("block_id")), label, user["id"])
        message = Message(
            text=label,
            user_id=str(user["id"]),
            user_name=str(user.get("name") or user.get("username") or ""),
            conversation_id=f"{channel}:{thread}" if thread else channel,
            platform=Platform.SLACK,
            value=value,
            raw=body,
        )
        await self._turn(message, target)

    # -- tickets: the admins' channel and the cards' buttons -----------------------------------

    async def _register_admins(
        self, body: dict[str, Any], event: dict[str, Any], target: Target
    ) -> None:
        """``@bot register admins`` in a channel: the service decides; its answer goes in the
        thread."""
        assert self.tickets is not None  # noqa: S101 - only listened to with the service
        if not await self._first_time("event", body.get("event_id")):
            return
        user = str(event["user"])
        actor = Actor(
            Platform.SLACK, user, await self.user_name(user, _profile_name(event) or user)
        )
        try:
            answer = await self.tickets.register_admin_channel(
                Platform.SLACK, {"channel": target.channel}, actor
            )
        except Exception:
            log.exception("registering the admins' channel failed")
            answer = self._words.text("turn_error")
        await self._post(target, [Text(answer)])

    async def _ticket_action(self, body: dict[str, Any]) -> None:
        """A card's button: Assign to me and Reopen act at once; Assign to someone, Reply and
        Resolve open their modal first (an admin's only: anyone else is told so)."""
        tickets = self.tickets
        button = next(iter(body.get("actions") or ()), None)
        if tickets is None or not isinstance(button, dict):
            return
        parsed = parse_ticket_value(button.get("value"))
        try:
            action = Action(str(button.get("action_id") or "").partition(":")[2])
        except ValueError:
            parsed = None
        if parsed is None:
            log.warning("ignored a ticket button that is not one of ours")
            return
        trigger = body.get("trigger_id")
        if not await self._first_time("action", trigger or button.get("action_ts")):
            return
        ticket_id, version = parsed
        user = body["user"]
        user_id = str(user["id"])
        container = body.get("container") or {}
        channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id") or "")
        if action.value in MODAL_ACTIONS:
            # The trigger lasts 3 seconds: no look-up of the name before the modal is open.
            if not await tickets.is_admin(Actor(Platform.SLACK, user_id, user_id)):
                refused = self._words.text("ticket_refused_not_admin")
                await self._tell_admin(channel, user_id, refused)
                return
            view = ticket_modal(action.value, ticket_id, version, channel, self._words)
            await self._call("views.open", self.client.views_open(trigger_id=trigger, view=view))
            return
        actor = Actor(Platform.SLACK, user_id, await self.user_name(user_id, _user_name(user)))
        result = await tickets.act(ActionRequest(ticket_id, action, actor, version))
        await self._after_action(channel, user_id, result)

    async def _ticket_submission(self, body: dict[str, Any], view: dict[str, Any]) -> None:
        """A ticket modal, filled in and closed: act on the ticket with what it says."""
        submitted = ticket_modal_input(view)
        if self.tickets is None or submitted is None:
            return
        if not await self._first_time("view", view.get("id")):
            return
        user = body["user"]
        user_id = str(user["id"])
        actor = Actor(Platform.SLACK, user_id, await self.user_name(user_id, _user_name(user)))
        assignee, text = None, None
        if submitted.action == "assign":
            picked = submitted.value
            assignee = Actor(Platform.SLACK, picked, await self.user_name(picked, picked))
        else:
            text = submitted.value
        request = ActionRequest(
            submitted.ticket_id,
            Action(submitted.action),
            actor,
            submitted.version,
            assignee=assignee,
            text=text,
        )
        result = await self.tickets.act(request)
        await self._after_action(submitted.channel, user_id, result)

    async def _after_action(self, channel: str, user: str, result: ActionResult) -> None:
        """The card and its thread show what was done (the service's jobs update them); the
        admin alone hears of a refusal, or of an out-of-date card."""
        if not result.applied or result.stale:
            await self._tell_admin(channel, user, result.message)

    async def _tell_admin(self, channel: str, user: str, text: str) -> None:
        """An ephemeral message for one person in the card's channel (or in a DM)."""
        if channel and await self._call(
            "chat.postEphemeral",
            self.client.chat_postEphemeral(channel=channel, user=user, text=escape(text)),
        ):
            return
        # No channel, or not a member of it (an ADMIN_USERS admin): in a DM then.
        dm = await self._dm(user)
        if dm is not None:
            await self._post(Target(dm), [Text(text)])

    async def user_name(self, user_id: str, fallback: str) -> str:
        """A person's name as Slack shows it (users.info, remembered), else ``fallback``."""
        known = self._user_names.get(user_id)
        if known is not None:
            return known
        try:
            found = await self.client.users_info(user=user_id)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as error:
            log.warning("Slack users.info failed", extra={"reason": _reason(error)})
            return fallback or user_id
        person = found.get("user") or {}
        profile = person.get("profile") or {}
        name = str(
            profile.get("display_name")
            or profile.get("real_name")
            or person.get("real_name")
            or person.get("name")
            or fallback
            or user_id
        )
        if len(self._user_names) >= _USER_CACHE_SIZE:
            self._user_names.clear()
        self._user_names[user_id] = name
        return name

    async def _turn(self, message: Message, target: Target) -> None:
        # One turn at a time per conversation in this process, so replies come out in order
        # (across processes the store's versioned state keeps the conversation right).
        key = message.conversation_id
        lock, waiting = self._conversations_busy.get(key, (asyncio.Lock(), 0))
        self._conversations_busy[key] = (lock, waiting + 1)
        try:
            async with lock:
                outcome = await self.turns.handle(message)
                self.metrics.observe_turn(Platform.SLACK, outcome)
                await self._post(target, outcome.replies)
        finally:
            lock, waiting = self._conversations_busy[key]
            if waiting == 1:
                del self._conversations_busy[key]
            else:
                self._conversations_busy[key] = (lock, waiting - 1)

    async def send(self, conversation_id: str, replies: Sequence[Reply]) -> bool:
        """Post replies into a conversation the bot had ("D123", or "C123:<thread ts>"), e.g. a
        ticket's news for its requester. False if Slack refused."""
        return await self._post(_conversation_target(conversation_id), replies)

    async def deliver(self, conversation_id: str, replies: Sequence[Reply]) -> None:
        """As ``send``, but Slack's refusal is raised (``SlackApiError``, ``aiohttp.ClientError``,
        ``TimeoutError``), for a caller that retries: the ticket notifier."""
        target = _conversation_target(conversation_id)
        for message in render_replies(replies, self._words):
            await self._post_message(target, message)

    async def _publish_home(self, user: str) -> None:
        tickets = await self.store.tickets.list_tickets(requester_key=f"{Platform.SLACK}:{user}")
        still_open = [ticket for ticket in tickets if ticket.status != "resolved"]
        cards = [TicketCard.of(ticket, (), self.knowledge) for ticket in still_open]
        view = home_view(self.knowledge.help_text.help, cards, self._words)
        await self._call("views.publish", self.client.views_publish(user_id=user, view=view))

    async def _show_choice(
        self, channel: str, clicked: dict[str, Any], block_id: str, label: str, user: str
    ) -> None:
        """Replace the clicked buttons by the choice, so an old question is not answered twice."""
        blocks = clicked.get("blocks")
        ts = clicked.get("ts")
        if not isinstance(blocks, list) or not ts or not channel:
            return
        updated = answered_blocks(blocks, block_id, label, user, self._words)
        if updated is not None:
            text = str(clicked.get("text") or label)
            await self._call(
                "chat.update",
                self.client.chat_update(channel=channel, ts=str(ts), text=text, blocks=updated),
            )

    # -- sending --------------------------------------------------------------------------------

    async def _post(self, target: Target, replies: Sequence[Reply]) -> bool:
        for message in render_replies(replies, self._words):
            if not await self._post_one(target, message):
                return False  # the rest would read oddly without this part
        return True

    async def _post_one(self, target: Target, message: SlackMessage) -> bool:
        return await self._call("chat.postMessage", self._post_message(target, message))

    async def _post_message(self, target: Target, message: SlackMessage) -> Any:
        return await self.client.chat_postMessage(
            channel=target.channel,
            thread_ts=target.thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            **message.payload(),
        )

    async def _call(self, method: str, call: Awaitable[Any]) -> bool:
        """Await a Web API call (retried by the client's handlers); log and count a failure."""
        try:
            await call
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as error:
            self.metrics.errors.labels(Platform.SLACK, "send").inc()
            log.error("Slack API call failed", extra={"method": method, "reason": _reason(error)})
            return False
        return True

    async def _dm(self, user: str) -> str | None:
        """The bot's direct-message channel with a user (opened once, then remembered)."""
        known = self._dm_channels.get(user)
        if known is not None:
            return known
        try:
            opened = await self.client.conversations_open(users=user)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as error:
            self.metrics.errors.labels(Platform.SLACK, "send").inc()
            log.error("Slack conversations.open failed", extra={"reason": _reason(error)})
            return None
        channel = str(opened["channel"]["id"])
        if len(self._dm_channels) >= _DM_CACHE_SIZE:
            self._dm_channels.clear()
        self._dm_channels[user] = channel
        return channel

    # -- receiving ------------------------------------------------------------------------------

    async def _first_time(self, kind: str, event_id: object) -> bool:
        """True the first time Slack delivers this, across every instance sharing the store
        (and for a delivery without an id, which cannot be told apart from another)."""
        if not isinstance(event_id, str) or not event_id:
            return True
        if await self.store.seen.first_time_seen(f"{Platform.SLACK}:{kind}:{event_id}"):
            return True
        log.info("dropped a repeated Slack delivery", extra={"event_id": event_id})
        return False

    def _from_a_person(self, event: Mapping[str, Any]) -> bool:
        """Not the bot itself, not another bot, not an edit or a deletion."""
        user = event.get("user")
        me = self._identity.user_id if self._identity else None
        return (
            not event.get("bot_id")
            and event.get("subtype") in _PERSON_SUBTYPES
            and isinstance(user, str)
            and user != me
        )

    def _without_mentions_of_me(self, text: str) -> str:
        me = self._identity.user_id if self._identity else None

        def drop(match: re.Match[str]) -> str:
            return "" if me is None or match.group(1) == me else match.group(0)

        # Without a known bot user id, the leading mention is the one that called the bot.
        if me is None:
            return _MENTION.sub("", text, count=1).strip()
        return _MENTION.sub(drop, text).strip()

    async def _download(self, files: Any) -> tuple[Attachment, ...]:
        """The files shared with a message, downloaded with the bot token, each size-capped."""
        if not isinstance(files, list):
            return ()
        found = []
        for shared in files[:_MAX_FILES_PER_MESSAGE]:
            if isinstance(shared, dict):
                found.append(await self._download_one(shared))
        return tuple(found)

    async def _download_one(self, shared: dict[str, Any]) -> Attachment:
        name = str(shared.get("name") or shared.get("title") or "file")
        cap = self.settings.file_max_bytes
        size = shared.get("size")
        if isinstance(size, int) and size > cap:
            raise self._too_large(name, cap)
        url = shared.get("url_private_download") or shared.get("url_private")
        if not url and shared.get("id"):  # some events carry only the id: ask for the rest
            try:
                info = await self.client.files_info(file=str(shared["id"]))
            except (SlackApiError, aiohttp.ClientError, TimeoutError) as error:
                raise self._download_failed(name, error) from None
            url = (info.get("file") or {}).get("url_private_download")
        if not url:
            raise self._download_failed(name, "no download address")
        mimetype = str(shared.get("mimetype") or "application/octet-stream")
        content = await self._fetch(str(url), name, cap, html_expected="html" in mimetype)
        return Attachment(name, content, mimetype)

    async def _fetch(self, url: str, name: str, cap: int, *, html_expected: bool) -> bytes:
        host = (urlsplit(url).hostname or "").lower()
        if not (host in self._file_hosts or host.endswith(".slack.com")):
            # The bot token goes to Slack's own file servers only.
            raise self._download_failed(name, f"not a Slack file address ({host})")
        got = await download(
            self.session,
            url,
            max_bytes=cap,
            timeout_seconds=_DOWNLOAD_TIMEOUT_SECONDS,
            headers={"Authorization": f"Bearer {self._token}"},
            refuse_web_page=not html_expected,
        )
        if isinstance(got, Downloaded):
            return got.content
        if got.problem is DownloadProblem.TOO_LARGE:
            raise self._too_large(name, cap)
        if got.problem is DownloadProblem.WEB_PAGE:
            # Slack answers a token without files:read with its sign-in page.
            raise self._download_failed(name, "got a web page: is files:read granted?")
        raise self._download_failed(name, got.detail)

    def _too_large(self, name: str, cap: int) -> _FileRefused:
        return _FileRefused(self._words.text("file_too_large", name=name, limit=_size(cap)))

    def _download_failed(self, name: str, reason: object) -> _FileRefused:
        self.metrics.errors.labels(Platform.SLACK, "file").inc()
        log.error("Slack file download failed", extra={"file": name, "reason": _reason(reason)})
        return _FileRefused(self._words.text("file_download_failed", name=name))

    def _refusal(self, reason: str) -> Reply:
        return Text(reason)  # file_too_large and file_download_failed are whole sentences


SLACK = web.AppKey("slack_channel", SlackChannel)


# ---- tickets: what the tickets service asks of Slack --------------------------------------


class _SlackBusy(Exception):
    """Slack is rate limiting or failing even after slack_sdk's retries: the job waits
    ``after`` seconds (Slack's Retry-After when it said) and is tried again."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


class SlackTicketNotifier:
    """``bot.tickets.TicketNotifier`` for Slack: the cards in the admins' channel, the notes in
    their threads, the requesters' news in their own conversations, and who is in the admins'
    channel. Every call goes through the channel's Web API client (429 and 5xx retried after
    Retry-After by its handlers); what still fails raises ``PermanentFailure`` when trying
    again cannot help, or another exception so that the job is retried later."""

    platform: str = Platform.SLACK

    def __init__(self, channel: SlackChannel, *, members_ttl: float = _MEMBERS_TTL_SECONDS) -> None:
        """Deliver through ``channel``; remember channel members for ``members_ttl`` seconds."""
        self.channel = channel
        self._members_ttl = members_ttl
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._members_lock = asyncio.Lock()

    async def post_card(self, admin_channel: dict[str, Any], ticket: TicketCard) -> CardRef:
        """chat.postMessage of the card in the admins' channel; where it went."""
        channel_id = str(admin_channel.get("channel") or "")
        if not channel_id:
            raise PermanentFailure(f"no Slack channel id in the admins' channel {admin_channel}")
        card = ticket_card(ticket, self.channel.knowledge.conversation)
        posted = await self._api(
            "chat.postMessage",
            self.channel.client.chat_postMessage(
                channel=channel_id, unfurl_links=False, unfurl_media=False, **card.payload()
            ),
        )
        return CardRef(
            Platform.SLACK,
            {"channel": str(posted.get("channel") or channel_id), "ts": str(posted["ts"])},
        )

    async def update_card(self, card: CardRef, ticket: TicketCard) -> None:
        """chat.update of the card, in place."""
        channel_id, ts = _card_place(card)
        message = ticket_card(ticket, self.channel.knowledge.conversation)
        await self._api(
            "chat.update",
            self.channel.client.chat_update(channel=channel_id, ts=ts, **message.payload()),
        )

    async def post_note(self, card: CardRef, text: str) -> None:
        """A line in the card's thread."""
        await self._thread_line(card, text, broadcast=False)

    async def remind(self, card: CardRef, ticket: TicketCard, text: str) -> None:
        """A line in the card's thread, also sent to the channel so that it is seen."""
        await self._thread_line(card, text, broadcast=True)

    def channel_identity(self, channel: dict[str, Any]) -> str:
        """A Slack channel is its channel id."""
        if channel.get("channel"):
            return str(channel["channel"])
        return json.dumps(channel, sort_keys=True)

    async def tell_requester(self, requester: Requester, replies: Sequence[Reply]) -> None:
        """The replies in the requester's own conversation (a DM, or the thread they asked in)."""
        platform, _, conversation_id = requester.conversation_key.partition(":")
        if platform != Platform.SLACK or not conversation_id:
            raise PermanentFailure(f"not a Slack conversation: {requester.conversation_key}")
        await self._api("chat.postMessage", self.channel.deliver(conversation_id, replies))

    async def is_admin_channel_member(self, admin_channel: dict[str, Any], user_id: str) -> bool:
        """Whether the user is in the admins' channel (conversations.members, every page;
        remembered for a minute)."""
        channel_id = str(admin_channel.get("channel") or "")
        if not channel_id:
            return False
        return user_id in await self._channel_members(channel_id)

    async def _channel_members(self, channel_id: str) -> frozenset[str]:
        async with self._members_lock:
            now = time.monotonic()
            cached = self._members.get(channel_id)
            if cached is not None and cached[0] > now:
                return cached[1]
            members: set[str] = set()
            cursor: str | None = None
            while True:
                page = await self._api(
                    "conversations.members",
                    self.channel.client.conversations_members(
                        channel=channel_id, cursor=cursor, limit=_MEMBERS_PAGE
                    ),
                )
                members.update(str(member) for member in page.get("members") or ())
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
            found = frozenset(members)
            self._members[channel_id] = (time.monotonic() + self._members_ttl, found)
            return found

    async def _thread_line(self, card: CardRef, text: str, *, broadcast: bool) -> None:
        channel_id, ts = _card_place(card)
        await self._api(
            "chat.postMessage",
            self.channel.client.chat_postMessage(
                channel=channel_id,
                thread_ts=ts,
                text=escape(text),
                reply_broadcast=broadcast,
                unfurl_links=False,
                unfurl_media=False,
            ),
        )

    async def _api(self, method: str, call: Awaitable[Any]) -> Any:
        """Await a Web API call; sort what still fails into permanent and retry-later."""
        try:
            return await call
        except SlackApiError as error:
            self.channel.metrics.errors.labels(Platform.SLACK, "send").inc()
            status = error.response.status_code
            code = str(error.response.get("error") or f"HTTP {status}")
            reason = f"Slack {method}: {code}"
            log.warning("Slack API call failed", extra={"method": method, "reason": code})
            if status == 429 or status >= 500 or code in _TRANSIENT_ERRORS:
                header = error.response.headers.get("Retry-After")
                raise _SlackBusy(reason, retry_after(header)) from None
            raise PermanentFailure(reason) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            self.channel.metrics.errors.labels(Platform.SLACK, "send").inc()
            raise _SlackBusy(f"Slack {method}: {_reason(error)}") from None


# ---- retries, counted -------------------------------------------------------------------------


class _Counted(AsyncRetryHandler):
    """One of slack_sdk's retry handlers, counting each retry in ndrbot_outbound_retries_total."""

    def __init__(self, inner: AsyncRetryHandler, metrics: Metrics) -> None:
        super().__init__(inner.max_retry_count, inner.interval_calculator)
        self._inner = inner
        self._metrics = metrics

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return await self._inner.can_retry_async(
            state=state, request=request, response=response, error=error
        )

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        self._metrics.outbound_retries.labels(Platform.SLACK).inc()
        log.info(
            "retrying a Slack API call",
            extra={"status": response.status_code if response else None, "url": request.url},
        )
        await self._inner.prepare_for_next_attempt_async(
            state=state, request=request, response=response, error=error
        )


# ---- helpers ----------------------------------------------------------------------------------


def _conversation_target(conversation_id: str) -> Target:
    """Where a conversation id points: "D123" (a DM), or "C123:<thread ts>" (a thread)."""
    channel, _, thread = conversation_id.partition(":")
    return Target(channel, thread or None)


def _card_place(card: CardRef) -> tuple[str, str]:
    channel, ts = card.ref.get("channel"), card.ref.get("ts")
    if not channel or not ts:
        raise PermanentFailure(f"not a Slack card: {card.ref}")
    return str(channel), str(ts)


def _user_name(user: Mapping[str, Any]) -> str:
    """The name an interaction payload gives its user (the handle), else the id."""
    return str(user.get("name") or user.get("username") or user.get("id") or "")


class _BoltNotice(logging.Filter):
    """Lowers to DEBUG bolt's warnings that do not apply to how this module builds the app."""

    def __init__(self, messages: frozenset[str]) -> None:
        super().__init__()
        self.messages = messages

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG and record.getMessage() in self.messages:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def _quiet_bolt_notices(bolt_logger: logging.Logger) -> None:
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns that the client
    given (which gets its token from ``authorize``) wins over it: true, and meant."""
    if not any(isinstance(known, _BoltNotice) for known in bolt_logger.filters):
        bolt_logger.addFilter(
            _BoltNotice(frozenset({warning_client_prioritized_and_token_skipped()}))
        )


def _secret(value: Any) -> str | None:
    text = value.get_secret_value() if value is not None else None
    return text or None


def _reason(error: object) -> str:
    if isinstance(error, SlackApiError):
        return str(error.response.get("error") or error)
    return str(error) or type(error).__name__


def _profile_name(event: Mapping[str, Any]) -> str:
    profile = event.get("user_profile")
    if isinstance(profile, dict):
        return str(
            profile.get("real_name") or profile.get("display_name") or profile.get("name") or ""
        )
    return ""


def _answer_value(action: Any) -> dict[str, Any] | None:
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


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):g} MB"
    if count >= 1024:
        return f"{count / 1024:g} KB"
    return f"{count} bytes"


__all__ = [
    "EVENTS_PATH",
    "SHORTCUT_CALLBACK_ID",
    "SLASH_COMMAND",
    "SlackChannel",
    "SlackTicketNotifier",
    "mount",
]
