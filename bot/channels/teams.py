"""Microsoft Teams through the Bot Framework (botbuilder): the only module that imports it.

``POST /api/messages`` takes an activity, checks who sent it, turns it into a neutral
:class:`~dialogs.messages.Message`, runs the turn, and posts the rendered replies back to the Bot
Connector at the activity's ``serviceUrl``.

botbuilder does what it is trusted for: ``ConfigurationBotFrameworkAuthentication`` validates each
request's JWT (issuer, signature, endorsements, audience, service URL), and its credentials factory
gets the bot's own token (MSAL, or a managed identity) for outbound calls. What made the stock
``CloudAdapter`` slow is kept off the hot path: no msrest ``Activity`` (de)serialisation (the body
stays the dict it arrived as), no new ``ConnectorClient`` and ``UserTokenClient`` per turn (each
builds an msrest retry policy that costs ~5 ms of CPU), no blocking ``requests`` call for the
signing keys or the bot's token on the event loop. Replies go over one aiohttp session as the
Bot Connector's REST JSON, retried on 429 and 5xx with backoff that honours ``Retry-After``.

With no MICROSOFT_APP_ID the endpoint runs in local mode for the Agents Playground and the Bot
Framework Emulator: no token is checked, and only loopback addresses are served (unless
TEAMS_LOCAL_ALLOW_REMOTE). A request that carries a token anyway is refused, as is a bad one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import random
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import quote

import aiohttp
import jwt
from aiohttp import web
from botbuilder.integration.aiohttp import (
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity, ChannelAccount
from botframework.connector.auth import (
    AuthenticationConstants,
    CallerIdConstants,
    JwtTokenExtractor,
)
from jwt.algorithms import RSAAlgorithm

from bot.appkeys import METRICS, RUNTIME
from bot.config import Settings
from bot.conversation import TurnOutcome
from bot.escalation import conversation_key
from bot.metrics import Metrics
from bot.render.teams import render_replies, typing_activity, welcome_activity
from bot.runtime import Runtime
from dialogs.messages import Attachment, Message
from dialogs.replies import Reply, Text
from knowledge.ndr import html_to_text

log = logging.getLogger(__name__)

CHANNEL: Final = "msteams"
FILE_DOWNLOAD_INFO: Final = "application/vnd.microsoft.teams.file.download.info"
_JSON: Final = "application/json"
_INVOKE_MESSAGE: Final = "application/vnd.microsoft.activity.message"
_GROUP_CONVERSATIONS: Final = frozenset({"channel", "groupChat"})
# Attachments other clients (the Emulator) send by URL, read when their name says it is a bounce.
_READABLE_FILE = re.compile(r"\.(?:eml|txt|html?|mht)$", re.IGNORECASE)
_HTML = re.compile(
    r"</?(?:p|div|br|span|at|b|i|u|strong|em|a|ol|ul|li|table|tr|td|th|pre|code|blockquote"
    r"|h[1-6]|img|hr|font)(?:\s[^<>@]{0,2048})?/?>",
    re.IGNORECASE,
)
_SLOW_TEXT_CHARS: Final = 2000  # a pasted bounce: show "typing..." at once
_REMEMBERED_CONVERSATIONS: Final = 10_000
_KEY_REFRESH_SECONDS: Final = 24 * 3600
_UNKNOWN_KEY_REFRESH_SECONDS: Final = 300
_TOKEN_EARLY_SECONDS: Final = 300
_DEFAULT_TOKEN_SECONDS: Final = 1800
_ERROR_BODY_CHARS: Final = 300


@dataclass(frozen=True)
class TeamsOptions:
    """What is not a setting: where Bot Framework tokens are checked and the bot's own token
    comes from (tests point these at fakes), and the timings of retries and "typing...".

    Replace ``app[OPTIONS]`` after ``create_app`` and before the app starts to change them.
    """

    channel_openid_metadata_url: str | None = None  # None: the public cloud's
    emulator_openid_metadata_url: str | None = None
    token_source: Callable[[], Awaitable[str]] | None = None  # None: botbuilder's credentials
    retry_budget_seconds: float = 10.0  # all retries of one turn's replies together
    retry_base_seconds: float = 0.5
    max_attempts: int = 5
    typing_after_seconds: float = 1.0
    request_timeout_seconds: float = 20.0
    download_timeout_seconds: float = 30.0


OPTIONS: Final = web.AppKey("teams_options", TeamsOptions)


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
            app[TEAMS] = TeamsChannel(
                settings,
                app[OPTIONS],
                app[RUNTIME],
                app[METRICS],
                session,
            )
            yield

    return context


async def _messages(request: web.Request) -> web.StreamResponse:
    return await request.app[TEAMS].handle(request)


# ---- the channel ------------------------------------------------------------------------------


class _Refused(Exception):
    """A request the endpoint answers with an error status and a JSON reason."""

    def __init__(self, status: int, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.kind = kind


class SendFailed(Exception):
    """The Bot Connector did not take an activity, retries included."""


@dataclass
class _Target:
    """Where replies of one turn go, and how they are addressed."""

    service_url: str
    conversation: dict[str, Any]
    bot: dict[str, Any]
    user: dict[str, Any]
    channel_id: str
    reply_to_id: str | None
    audience: str | None
    turn_id: str = ""
    deadline: float = 0.0

    def address(self, activity: dict[str, Any]) -> dict[str, Any]:
        """The activity with its conversation, sender and recipient filled in."""
        addressed = dict(activity)
        addressed.update(
            {
                "channelId": self.channel_id,
                "serviceUrl": self.service_url,
                "conversation": self.conversation,
                "from": self.bot,
                "recipient": self.user,
            }
        )
        if self.reply_to_id:
            addressed["replyToId"] = self.reply_to_id
        return addressed


class TeamsChannel:
    """The Teams endpoint of one running app: authentication, turns, replies, files."""

    def __init__(
        self,
        settings: Settings,
        options: TeamsOptions,
        runtime: Runtime,
        metrics: Metrics,
        session: aiohttp.ClientSession,
    ) -> None:
        self.settings = settings
        self.options = options
        self.runtime = runtime
        self.metrics = metrics
        self.session = session
        self.local = not settings.teams_credentials
        self._auth = None if self.local else _Authentication(settings, options)
        self._tokens = _BotTokens(settings, options, self._auth)
        self._referenced: OrderedDict[str, None] = OrderedDict()

    # -- inbound ------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one POST /api/messages."""
        try:
            if self.local and not self.settings.teams_local_allow_remote:
                _require_loopback(request)
            activity = await _read_activity(request)
            audience = await self._authenticate(activity, request.headers.get("Authorization"))
            return await self._dispatch(activity, audience)
        except _Refused as refused:
            self.metrics.errors.labels(CHANNEL, refused.kind).inc()
            log.warning(
                "request refused",
                extra={"channel": CHANNEL, "status": refused.status, "reason": refused.reason},
            )
            return web.json_response({"error": refused.reason}, status=refused.status)

    async def _authenticate(self, activity: dict[str, Any], header: str | None) -> str | None:
        """Check the request's token; return the audience for outbound calls."""
        if self._auth is None:
            if header:
                raise _Refused(
                    401,
                    "this bot runs in local mode (no MICROSOFT_APP_ID) and takes no tokens",
                    "auth",
                )
            return None
        return await self._auth.authenticate(activity, header)

    async def _dispatch(self, activity: dict[str, Any], audience: str | None) -> web.Response:
        kind = activity["type"]
        if kind == "message":
            return await self._on_message(activity, audience, activity.get("value"))
        if kind == "invoke":
            return await self._on_invoke(activity, audience)
        if kind == "conversationUpdate":
            await self._on_conversation_update(activity, audience)
        elif kind == "installationUpdate" and activity.get("action") in ("add", "add-upgrade"):
            await self._remember(activity, force=True)
        return web.Response(status=201)

    async def _on_invoke(self, activity: dict[str, Any], audience: str | None) -> web.Response:
        value = activity.get("value")
        action = value.get("action") if isinstance(value, dict) else None
        if activity.get("name") != "adaptiveCard/action" or not isinstance(action, dict):
            return web.json_response({}, status=501)
        await self._on_message(activity, audience, action.get("data"))
        return web.json_response({"statusCode": 200, "type": _INVOKE_MESSAGE, "value": ""})

    async def _on_message(
        self, activity: dict[str, Any], audience: str | None, value: Any
    ) -> web.Response:
        conversation = activity["conversation"]
        clicked = _button_value(value)
        in_group = conversation.get("conversationType") in _GROUP_CONVERSATIONS
        if in_group and clicked is None and not _mentions_bot(activity):
            return web.Response(status=201)  # channel chatter not meant for the bot
        expect_replies = activity.get("deliveryMode") == "expectReplies"
        target = self._target(activity, audience)
        typing = _Typing(self, target, enabled=not expect_replies)
        text = _readable_text(activity)
        notices: list[Reply] = []
        if _has_files(activity) or len(text) > _SLOW_TEXT_CHARS:
            typing.now()
        files = await self._files(activity, notices)
        user = activity["from"]
        message = Message(
            text=text,
            files=files,
            user_id=str(user.get("aadObjectId") or user["id"]),
            user_name=str(user.get("name") or ""),
            conversation_id=str(conversation["id"]),
            channel=str(activity.get("channelId") or CHANNEL),
            value=clicked,
            raw=activity,
        )
        if await self._seen_before(activity, message):
            return web.Response(status=201)
        outcome: TurnOutcome | None = None
        if text or files or clicked is not None or not notices:
            typing.after(self.options.typing_after_seconds)
            try:
                outcome = await self.runtime.conversations.handle(message)
            finally:
                typing.cancel_timer()
            self.metrics.observe_turn(message.channel, outcome)
            target.turn_id = outcome.turn_id
        await typing.settle()
        replies = [*notices, *(outcome.replies if outcome else ())]
        await self._remember(activity, force=bool(outcome and outcome.escalated))
        activities = render_replies(replies)
        if expect_replies:
            return web.json_response(
                {"activities": [target.address(each) for each in activities]}, status=200
            )
        await self._deliver(target, activities, intent=outcome.intent if outcome else "file")
        return web.Response(status=201)

    async def _on_conversation_update(self, activity: dict[str, Any], audience: str | None) -> None:
        bot_id = (activity.get("recipient") or {}).get("id")
        added = activity.get("membersAdded") or []
        if not any(isinstance(m, dict) and m.get("id") == bot_id for m in added):
            return
        await self._remember(activity, force=True)
        help_text = self.runtime.knowledge.help_text
        welcome = welcome_activity(help_text.greeting, help_text.capabilities)
        target = self._target(activity, audience)
        target.reply_to_id = None
        target.deadline = time.monotonic() + self.options.retry_budget_seconds
        await self._deliver(target, [welcome], intent="welcome")

    async def _seen_before(self, activity: dict[str, Any], message: Message) -> bool:
        """True for a second delivery of the same activity (the Bot Framework retries)."""
        activity_id = activity.get("id")
        if not activity_id:
            return False
        event = f"{message.channel}:{message.conversation_id}:{activity_id}"
        if await self.runtime.store.first_time_seen(event):
            return False
        log.info("activity delivered twice; answered once", extra={"channel": message.channel})
        return True

    # -- files --------------------------------------------------------------------------------

    async def _files(
        self, activity: dict[str, Any], notices: list[Reply]
    ) -> tuple[Attachment, ...]:
        files = []
        for name, url, content_type in _file_links(activity):
            try:
                content = await self._download(url)
            except _FileProblem as problem:
                self.metrics.errors.labels(CHANNEL, "download").inc()
                log.warning("file not read", extra={"channel": CHANNEL, "reason": problem.kind})
                refused = self.runtime.knowledge.conversation.text(
                    "file_refused", reason=problem.reason(name, self.settings.file_max_bytes)
                )
                notices.append(Text(refused))
                continue
            files.append(Attachment(name, content, content_type))
        return tuple(files)

    async def _download(self, url: str) -> bytes:
        limit = self.settings.file_max_bytes
        timeout = aiohttp.ClientTimeout(total=self.options.download_timeout_seconds)
        try:
            async with self.session.get(url, timeout=timeout) as response:
                if response.status != 200:
                    raise _FileProblem("unavailable")
                if response.content_length is not None and response.content_length > limit:
                    raise _FileProblem("too_large")
                data = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    data += chunk
                    if len(data) > limit:
                        raise _FileProblem("too_large")
                return bytes(data)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise _FileProblem("unavailable") from error

    # -- outbound -----------------------------------------------------------------------------

    def _target(self, activity: dict[str, Any], audience: str | None) -> _Target:
        return _Target(
            service_url=str(activity["serviceUrl"]).rstrip("/"),
            conversation=activity["conversation"],
            bot=activity.get("recipient") or {},
            user=activity.get("from") or {},
            channel_id=str(activity.get("channelId") or CHANNEL),
            reply_to_id=activity.get("id"),
            audience=audience,
            deadline=time.monotonic() + self.options.retry_budget_seconds,
        )

    async def _deliver(
        self, target: _Target, activities: Sequence[dict[str, Any]], *, intent: str
    ) -> int:
        """Post the activities in order; log (with the turn id) and count any that fail."""
        sent = 0
        for activity in activities:
            try:
                await self.post(target, activity)
                sent += 1
            except SendFailed as failure:
                self.metrics.errors.labels(CHANNEL, "send").inc()
                log.error(
                    "reply not delivered",
                    extra={
                        "turn_id": target.turn_id,
                        "channel": target.channel_id,
                        "intent": intent,
                        "reason": str(failure),
                    },
                )
        return sent

    async def post(self, target: _Target, activity: dict[str, Any]) -> str | None:
        """Send one activity (a reply when the target has a replyToId); return its id.

        429 and 5xx answers and network errors are retried with exponential backoff and jitter,
        waiting what ``Retry-After`` asks, within the target's deadline. Raises SendFailed.
        """
        conversation_id = quote(str(target.conversation.get("id", "")), safe="")
        url = f"{target.service_url}/v3/conversations/{conversation_id}/activities"
        if target.reply_to_id:
            url += "/" + quote(str(target.reply_to_id), safe="")
        body = json.dumps(target.address(activity), ensure_ascii=False).encode()
        return await self._call("POST", url, body, target)

    async def update(self, target: _Target, activity_id: str, activity: dict[str, Any]) -> None:
        """Replace an activity the bot sent earlier (a ticket card, say)."""
        conversation_id = quote(str(target.conversation.get("id", "")), safe="")
        url = f"{target.service_url}/v3/conversations/{conversation_id}/activities/" + quote(
            activity_id, safe=""
        )
        addressed = {**target.address(activity), "id": activity_id}
        addressed.pop("replyToId", None)
        await self._call("PUT", url, json.dumps(addressed, ensure_ascii=False).encode(), target)

    async def send_proactive(self, reference: Mapping[str, Any], replies: Sequence[Reply]) -> int:
        """Send replies into a conversation saved with :func:`reference_of`; return how many
        went out. For telling a requester about their ticket."""
        target = _Target(
            service_url=str(reference["serviceUrl"]).rstrip("/"),
            conversation=dict(reference["conversation"]),
            bot=dict(reference.get("bot") or {}),
            user=dict(reference.get("user") or {}),
            channel_id=str(reference.get("channelId") or CHANNEL),
            reply_to_id=None,
            audience=None,
            deadline=time.monotonic() + self.options.retry_budget_seconds,
        )
        return await self._deliver(target, render_replies(replies), intent="proactive")

    async def _call(self, method: str, url: str, body: bytes, target: _Target) -> str | None:
        timeout = aiohttp.ClientTimeout(total=self.options.request_timeout_seconds)
        for attempt in range(1, self.options.max_attempts + 1):
            headers = {"Content-Type": _JSON, **await self._tokens.header(target.audience)}
            wait: float | None
            try:
                async with self.session.request(
                    method, url, data=body, headers=headers, timeout=timeout
                ) as response:
                    if response.status < 300:
                        return await _resource_id(response)
                    detail = (await response.text())[:_ERROR_BODY_CHARS]
                    status = response.status
                    wait = _retry_after(response.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as error:
                status, detail, wait = 0, type(error).__name__, None
            if status == 401 and attempt == 1 and self._tokens.forget(target.audience):
                continue  # the bot's token may have been revoked early: fetch a new one
            if status and status != 429 and status < 500:
                raise SendFailed(f"{method} {status}: {detail}")
            if wait is None:
                wait = self.options.retry_base_seconds * 2 ** (attempt - 1)
                wait *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret
            if attempt == self.options.max_attempts or time.monotonic() + wait > target.deadline:
                raise SendFailed(f"{method} {status or detail} after {attempt} attempts")
            self.metrics.outbound_retries.labels(CHANNEL).inc()
            log.info(
                "Bot Connector busy; retrying",
                extra={"turn_id": target.turn_id, "status": status, "wait": round(wait, 2)},
            )
            await asyncio.sleep(wait)
        raise SendFailed(f"{method} gave up")  # pragma: no cover - the loop raises first

    async def _send_typing(self, target: _Target) -> None:
        try:
            await self.post(target, typing_activity())
        except SendFailed as failure:
            log.debug("typing indicator not sent", extra={"reason": str(failure)})

    # -- conversation references --------------------------------------------------------------

    async def _remember(self, activity: dict[str, Any], *, force: bool) -> None:
        """Keep where this conversation lives, for proactive messages: once per process, and
        again when it matters (an install, a ticket)."""
        channel = str(activity.get("channelId") or CHANNEL)
        key = conversation_key(
            Message(channel=channel, conversation_id=str(activity["conversation"]["id"]))
        )
        if not force and key in self._referenced:
            return
        await self.runtime.store.save_reference(key, reference_of(activity))
        self._referenced[key] = None
        self._referenced.move_to_end(key)
        while len(self._referenced) > _REMEMBERED_CONVERSATIONS:
            self._referenced.popitem(last=False)


TEAMS: Final = web.AppKey("teams", TeamsChannel)


def reference_of(activity: Mapping[str, Any]) -> dict[str, Any]:
    """The conversation reference of an activity, as the Bot Framework writes one."""
    return {
        "activityId": activity.get("id"),
        "user": activity.get("from"),
        "bot": activity.get("recipient"),
        "conversation": activity.get("conversation"),
        "channelId": activity.get("channelId"),
        "serviceUrl": activity.get("serviceUrl"),
        "locale": activity.get("locale"),
    }


class _Typing:
    """The "typing..." indicator of one turn: sent at once for known slow work, or when the turn
    takes longer than a moment; always before the replies."""

    def __init__(self, channel: TeamsChannel, target: _Target, *, enabled: bool) -> None:
        self._channel = channel
        self._target = target
        self._enabled = enabled
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def now(self) -> None:
        if self._enabled and self._task is None:
            self._task = asyncio.create_task(self._channel._send_typing(self._target))

    def after(self, seconds: float) -> None:
        if self._enabled and self._task is None:
            self._timer = asyncio.get_running_loop().call_later(seconds, self.now)

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    async def settle(self) -> None:
        if self._task is not None:
            await self._task


class _FileProblem(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind

    def reason(self, name: str, limit: int) -> str:
        if self.kind == "too_large":
            return f"{name} is over {_megabytes(limit)}, the largest file I download."
        return f"I could not download {name}. Please try again, or paste the bounce's text."


# ---- authentication ---------------------------------------------------------------------------


@dataclass
class _BotFrameworkConfig:
    """The configuration object botbuilder's Configuration* classes read (by attribute)."""

    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str | None
    extra: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> str:
        try:
            return self.extra[name]
        except KeyError:
            raise AttributeError(name) from None


class _Authentication:
    """botbuilder's request authentication, with its signing keys fetched without blocking."""

    def __init__(self, settings: Settings, options: TeamsOptions) -> None:
        password = settings.microsoft_app_password
        overrides: dict[str, str] = {}
        if options.channel_openid_metadata_url or options.emulator_openid_metadata_url:
            # Any endpoint given switches botbuilder to its parameterized cloud: give them all.
            overrides = {
                "TO_CHANNEL_FROM_BOT_LOGIN_URL": (
                    AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL
                ),
                "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE": (
                    AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
                ),
                "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER": (
                    AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
                ),
                "OAUTH_URL": AuthenticationConstants.OAUTH_URL,
                "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL": options.channel_openid_metadata_url
                or AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL,
                "TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL": options.emulator_openid_metadata_url
                or AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL,
                "CALLER_ID": CallerIdConstants.public_azure_channel,
            }
        config = _BotFrameworkConfig(
            APP_ID=settings.microsoft_app_id or "",
            APP_PASSWORD=password.get_secret_value() if password else "",
            APP_TYPE=settings.microsoft_app_type,
            APP_TENANTID=settings.microsoft_app_tenant_id,
            extra=overrides,
        )
        self.credentials_factory = ConfigurationServiceClientCredentialFactory(config)
        self.login_url = AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL
        self._botbuilder = ConfigurationBotFrameworkAuthentication(
            config, credentials_factory=self.credentials_factory
        )
        for url in (
            overrides.get("TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL"),
            overrides.get("TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL"),
            AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL,
            AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL,
        ):
            if url and not isinstance(JwtTokenExtractor.metadataCache.get(url), _SigningKeys):
                # botbuilder's own cache fetches with a blocking `requests` call; ours awaits.
                JwtTokenExtractor.metadataCache[url] = _SigningKeys(url)

    async def authenticate(self, activity: dict[str, Any], header: str | None) -> str | None:
        """Validate the request's token for this activity; return the outbound audience."""
        if not header:
            raise _Refused(401, "the request carries no Authorization token", "auth")
        recipient = activity.get("recipient") or {}
        # Only what validation reads: no msrest deserialisation of the whole activity.
        stub = Activity(
            channel_id=activity.get("channelId"),
            service_url=activity.get("serviceUrl"),
            recipient=ChannelAccount(id=recipient.get("id"), role=recipient.get("role")),
        )
        try:
            result = await self._botbuilder.authenticate_request(stub, header)
        except _KeysUnavailable as error:
            raise _Refused(503, f"cannot check tokens now: {error}", "auth_keys") from None
        except Exception as error:  # any failure to validate means: not authorised
            raise _Refused(401, f"the token was refused ({_why(error)})", "auth") from None
        identity = result.claims_identity
        if identity is None or not identity.is_authenticated:
            raise _Refused(401, "the token was refused", "auth")
        audience = result.audience
        return str(audience) if audience else None


def _why(error: Exception) -> str:
    """A short reason for a refused token, without the token."""
    if isinstance(error, PermissionError | jwt.InvalidTokenError):
        return str(error)[:120] or type(error).__name__
    return type(error).__name__


class _KeysUnavailable(Exception):
    """The signing keys could not be fetched."""


@dataclass(frozen=True)
class _SigningKey:
    public_key: Any
    endorsements: list[str]


class _SigningKeys:
    """Stands in for botbuilder's ``_OpenIdMetadata``: the same contract (``get(key_id)``), but
    fetched with aiohttp, parsed once, refreshed daily, and refetched (at most every five minutes)
    when a token names a key it does not know. An unknown key is refused, not a crash."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._keys: dict[str, _SigningKey] = {}
        self._fetched = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, key_id: str | None) -> _SigningKey:
        now = time.monotonic()
        if now - self._fetched > _KEY_REFRESH_SECONDS or (
            key_id not in self._keys and now - self._fetched > _UNKNOWN_KEY_REFRESH_SECONDS
        ):
            await self._refresh()
        key = self._keys.get(key_id or "")
        if key is None:
            raise PermissionError("the token is signed with an unknown key")
        return key

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched < 1:
                return  # another request just refreshed them
            timeout = aiohttp.ClientTimeout(total=10)
            try:
                async with aiohttp.ClientSession(timeout=timeout) as session:
                    async with session.get(self.url) as response:
                        response.raise_for_status()
                        keys_url = (await response.json(content_type=None))["jwks_uri"]
                    async with session.get(keys_url) as response:
                        response.raise_for_status()
                        listed = (await response.json(content_type=None))["keys"]
            except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError) as error:
                raise _KeysUnavailable(f"{self.url}: {type(error).__name__}") from None
            keys = {}
            for entry in listed:
                if isinstance(entry, dict) and entry.get("kid") and entry.get("kty") == "RSA":
                    public_key = RSAAlgorithm.from_jwk(json.dumps(entry))
                    keys[str(entry["kid"])] = _SigningKey(
                        public_key, list(entry.get("endorsements") or [])
                    )
            self._keys = keys
            self._fetched = time.monotonic()
            log.info("Bot Framework signing keys fetched", extra={"keys": len(keys)})


class _BotTokens:
    """The bot's own bearer token for the Bot Connector, from botbuilder's credentials factory
    (MSAL, or a managed identity). Fetched off the event loop and kept until shortly before it
    expires; none in local mode."""

    def __init__(
        self, settings: Settings, options: TeamsOptions, auth: _Authentication | None
    ) -> None:
        self._app_id = settings.microsoft_app_id
        self._auth = auth
        self._source = options.token_source
        self._tokens: dict[str, tuple[str, float]] = {}
        self._credentials: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def header(self, audience: str | None) -> dict[str, str]:
        if self._auth is None:
            return {}
        scope = audience or AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
        cached = self._tokens.get(scope)
        if cached is None or time.monotonic() > cached[1]:
            async with self._lock:
                cached = self._tokens.get(scope)
                if cached is None or time.monotonic() > cached[1]:
                    cached = await self._fetch(scope)
                    self._tokens[scope] = cached
        return {"Authorization": f"Bearer {cached[0]}"}

    def forget(self, audience: str | None) -> bool:
        """Drop the cached token (after a 401); True if there was one."""
        scope = audience or AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
        return self._tokens.pop(scope, None) is not None

    async def _fetch(self, scope: str) -> tuple[str, float]:
        if self._source is not None:
            token = await self._source()
        else:
            credentials = self._credentials.get(scope)
            if credentials is None:
                auth = self._auth
                if auth is None:
                    raise SendFailed("no credentials in local mode")
                credentials = await auth.credentials_factory.create_credentials(
                    self._app_id, scope, auth.login_url, True
                )
                self._credentials[scope] = credentials
            # MSAL answers synchronously (and over the network when its cache is cold).
            token = await asyncio.to_thread(credentials.get_access_token)
        return token, time.monotonic() + _token_lifetime(token) - _TOKEN_EARLY_SECONDS


def _token_lifetime(token: str) -> float:
    """Seconds the token has left, read from its ``exp`` (not verified: it is our own)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        return max(float(claims["exp"]) - time.time(), _TOKEN_EARLY_SECONDS + 1)
    except (jwt.InvalidTokenError, KeyError, TypeError, ValueError):
        return _DEFAULT_TOKEN_SECONDS


# ---- reading activities -----------------------------------------------------------------------


def _require_loopback(request: web.Request) -> None:
    remote = request.remote
    if not remote:
        return  # a Unix socket: local by definition
    try:
        loopback = ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise _Refused(
            403,
            "local mode (no MICROSOFT_APP_ID) serves loopback addresses only; "
            "set TEAMS_LOCAL_ALLOW_REMOTE=true to allow others",
            "refused",
        )


async def _read_activity(request: web.Request) -> dict[str, Any]:
    if request.content_type != _JSON:
        raise _Refused(415, "send the activity as application/json", "bad_request")
    body = await request.read()
    try:
        activity = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _Refused(400, "the body is not valid JSON", "bad_request") from None
    problem = _shape_problem(activity)
    if problem:
        raise _Refused(400, f"not an activity: {problem}", "bad_request")
    return activity  # type: ignore[no-any-return]


def _shape_problem(activity: Any) -> str | None:
    if not isinstance(activity, dict):
        return "the body is not a JSON object"
    if not isinstance(activity.get("type"), str) or not activity["type"]:
        return "no type"
    if activity["type"] not in ("message", "invoke", "conversationUpdate", "installationUpdate"):
        return None  # read no further: nothing is done with it
    service_url = activity.get("serviceUrl")
    if not isinstance(service_url, str) or not service_url.startswith(("https://", "http://")):
        return "no serviceUrl"
    conversation = activity.get("conversation")
    if not isinstance(conversation, dict) or not isinstance(conversation.get("id"), str):
        return "no conversation.id"
    sender = activity.get("from")
    if not isinstance(sender, dict) or not isinstance(sender.get("id"), str):
        return "no from.id"
    for name in ("recipient", "channelData"):
        if activity.get(name) is not None and not isinstance(activity[name], dict):
            return f"{name} is not an object"
    for name in ("text", "id", "channelId"):
        if activity.get(name) is not None and not isinstance(activity[name], str):
            return f"{name} is not a string"
    for name in ("entities", "attachments", "membersAdded"):
        if activity.get(name) is not None and not isinstance(activity[name], list):
            return f"{name} is not a list"
    return None


def _button_value(value: Any) -> dict[str, Any] | None:
    """A card click's data, without the keys Teams adds."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict):
        return None
    clicked = {key: item for key, item in value.items() if key != "msteams"}
    return clicked or None


def _mentions_bot(activity: Mapping[str, Any]) -> bool:
    return bool(_bot_mentions(activity))


def _bot_mentions(activity: Mapping[str, Any]) -> list[str]:
    """The texts (``<at>Name</at>``) of the mentions of the bot in this activity."""
    bot_id = (activity.get("recipient") or {}).get("id")
    found = []
    for entity in activity.get("entities") or []:
        if not isinstance(entity, dict) or entity.get("type") != "mention":
            continue
        mentioned = entity.get("mentioned")
        if isinstance(mentioned, dict) and bot_id and mentioned.get("id") == bot_id:
            found.append(str(entity.get("text") or ""))
    return found


def _readable_text(activity: Mapping[str, Any]) -> str:
    """The message's text: the bot's @mention taken out, Teams' HTML turned into text."""
    text = str(activity.get("text") or "")
    for mention in _bot_mentions(activity):
        if mention:
            text = text.replace(mention, " ")
    if not text.strip():
        for attachment in activity.get("attachments") or []:
            if isinstance(attachment, dict) and attachment.get("contentType") == "text/html":
                text = str(attachment.get("content") or "")
                break
    if "<" in text and _HTML.search(text):
        text = html_to_text(re.sub(r"<at\b[^<>]*>(.*?)</at>", r"\1", text, flags=re.I | re.S))
        text = re.sub(r"[ \t\u00a0]+\n", "\n", text.replace("\u00a0", " "))
    return text.strip()


def _has_files(activity: Mapping[str, Any]) -> bool:
    return any(True for _ in _file_links(activity))


def _file_links(activity: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(name, download URL, content type) of the files sent with the message."""
    links = []
    for attachment in activity.get("attachments") or []:
        if not isinstance(attachment, dict):
            continue
        name = str(attachment.get("name") or "file")
        content = attachment.get("content")
        if attachment.get("contentType") == FILE_DOWNLOAD_INFO and isinstance(content, dict):
            url = content.get("downloadUrl")
            file_type = str(content.get("fileType") or "")
            kind = "message/rfc822" if file_type.lower() == "eml" else "application/octet-stream"
        else:
            url = attachment.get("contentUrl")
            kind = str(attachment.get("contentType") or "application/octet-stream")
            if not _READABLE_FILE.search(name):
                continue
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            links.append((name, url, kind))
    return links


async def _resource_id(response: aiohttp.ClientResponse) -> str | None:
    with contextlib.suppress(aiohttp.ContentTypeError, ValueError):
        body = await response.json(content_type=None)
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            return str(body["id"])
    return None


def _retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After header asks to wait (a number or an HTTP date); None if absent."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"
