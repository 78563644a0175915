"""Microsoft Teams through the Bot Framework (botbuilder): the only module that imports it.

``POST /api/messages`` takes an activity and hands it to botbuilder's ``CloudAdapter``
(``process_activity``): the adapter authenticates it, builds the turn's ``TurnContext`` and runs
our handler, which turns the activity into a neutral :class:`~dialogs.messages.Message`, runs the
turn, and sends the rendered replies through the TurnContext (the adapter's ``ConnectorClient``),
or, for ``expectReplies``, lets the adapter return them in the response.

What we give the adapter is a ``BotFrameworkAuthentication`` of our own (:class:`_Authentication`).
It delegates token validation to botbuilder's ``ConfigurationBotFrameworkAuthentication`` (issuer,
signature, endorsements, audience, service URL), with the signing keys fetched without blocking the
event loop, and maps any refusal to 401 (botbuilder would answer 500 for a garbled token). It
returns cached connector factories, ``ConnectorClient``s (one per service URL and audience) and
``UserTokenClient``s, where the stock one builds two msrest clients, and their retry policies, per
turn. The connector clients send over the app's one aiohttp session (not ``requests`` in a thread),
with the bot's own token (botbuilder's credentials: MSAL or a managed identity) fetched off the
event loop and cached; failed sends (429, 5xx, network) are retried here, honouring Retry-After.

Tickets (:class:`TeamsTicketNotifier`, added to the tickets service at startup): ``register
admins`` said in a channel makes it the admins' channel; each ticket's card is posted there (a new
post), updated in place, with notes in its thread; the admins act through its Universal Actions
(``adaptiveCard/action``), and the requester hears back in their own chat (proactive messages).

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
from typing import Any, Final, TypeVar

import aiohttp
import jwt
from aiohttp import web
from azure.core.exceptions import DeserializationError  # what msrest raises (and re-exports)
from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    ConversationReference,
    DeliveryModes,
)
from botbuilder.schema import (
    Attachment as CardAttachment,
)
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    CallerIdConstants,
    ClaimsIdentity,
    ConnectorFactory,
    JwtTokenExtractor,
    MicrosoftAppCredentials,
    UserTokenClient,
)
from jwt.algorithms import RSAAlgorithm
from msrest.exceptions import HttpOperationError
from msrest.pipeline import Request, Response
from msrest.pipeline.async_abc import AsyncHTTPPolicy, AsyncHTTPSender, AsyncPipeline
from msrest.pipeline.universal import RawDeserializer
from msrest.universal_http import ClientRequest
from msrest.universal_http.async_abc import AsyncClientResponse

from bot.appkeys import METRICS, RUNTIME
from bot.config import ADMIN_PLATFORMS, Settings
from bot.metrics import Metrics
from bot.outbound import DownloadFailed, DownloadProblem, download, retry_after
from bot.render.teams import (
    CARD_CONTENT_TYPE,
    INPUT_ASSIGNEE,
    INPUT_REPLY,
    INPUT_RESOLUTION,
    MAX_REFRESH_USERS,
    TICKET_REFRESH_VERB,
    Labels,
    TicketCardView,
    TicketLabels,
    read_assignee,
    render_replies,
    text_activity,
    ticket_activity,
    ticket_card,
    ticket_summary,
    typing_activity,
    welcome_activity,
)
from bot.runtime import Runtime
from bot.store import Requester
from bot.tickets import Action, ActionRequest, Actor, CardRef, PermanentFailure, TicketCard
from bot.turns import TurnOutcome, conversation_key
from dialogs.intent import is_register_admins
from dialogs.messages import Attachment, Message, Platform
from dialogs.replies import Reply, Text
from knowledge.ndr import html_to_text

log = logging.getLogger(__name__)

FILE_DOWNLOAD_INFO: Final = "application/vnd.microsoft.teams.file.download.info"
_JSON: Final = "application/json"
_INVOKE_MESSAGE: Final = "application/vnd.microsoft.activity.message"
_GROUP_CONVERSATIONS: Final = frozenset({"channel", "groupChat"})
#: The texts of conversation.yaml this module looks up; checked when the bot starts.
TEXTS: Final = frozenset({"teams_register_in_channel"})
# Attachments other clients (the Emulator) send by URL, read when their name says it is a bounce.
_READABLE_FILE = re.compile(r"\.(?:eml|txt|html?|mht)$", re.IGNORECASE)
_HTML = re.compile(
    r"</?(?:p|div|br|span|at|b|i|u|strong|em|a|ol|ul|li|table|tr|td|th|pre|code|blockquote"
    r"|h[1-6]|img|hr|font)(?:\s[^<>@]{0,2048})?/?>",
    re.IGNORECASE,
)
_SLOW_TEXT_CHARS: Final = 2000  # a pasted bounce: show "typing..." at once
_REMEMBERED_CONVERSATIONS: Final = 10_000
_CONNECTOR_CLIENTS: Final = 256  # one per service URL and audience; Teams uses a handful
_KEY_REFRESH_SECONDS: Final = 24 * 3600
_UNKNOWN_KEY_REFRESH_SECONDS: Final = 300
_TOKEN_EARLY_SECONDS: Final = 300
_DEFAULT_TOKEN_SECONDS: Final = 1800
_ERROR_BODY_CHARS: Final = 300
_USER_AGENT: Final = "Microsoft-BotFramework/3.1 (BotBuilder Python/4.17)"
_T = TypeVar("_T")


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
    # One ticket job's call (a card, a note, a requester's news): throttling is waited out
    # here rather than by the job worker, so that the cards keep their order.
    job_retry_budget_seconds: float = 60.0
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
            try:
                yield
            finally:
                escalations.remove_notifier(Platform.TEAMS)

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
    """The Bot Connector did not take a call, retries included. ``status`` is its last answer
    (0: no answer), ``after`` the wait it asked for, if any."""

    def __init__(self, reason: str, *, status: int = 0, after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.after = after

    @property
    def permanent(self) -> bool:
        """Whether trying again cannot help: a 4xx other than 401 (our token), 408 and 429."""
        return 400 <= self.status < 500 and self.status not in (401, 408, 429)


class TeamsChannel:
    """The Teams endpoint of one running app: botbuilder's CloudAdapter with our authentication
    and cached clients, the turn handler, retries, files, proactive messages."""

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
        self.labels = Labels.of(runtime.knowledge.conversation)
        self._auth = _Authentication(settings, options, session)
        self.adapter = CloudAdapter(self._auth)
        self._referenced: OrderedDict[str, None] = OrderedDict()
        self.tickets = TeamsTicketNotifier(self)

    # -- inbound ------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one POST /api/messages."""
        try:
            if self.local and not self.settings.teams_local_allow_remote:
                _require_loopback(request)
            body = await _read_activity(request)
            try:
                activity = Activity().deserialize(body)
            except (DeserializationError, TypeError, ValueError):
                reason = "not an activity: a field has the wrong type"
                raise _Refused(400, reason, "bad_request") from None
            turn = _Turn(self, body)
            header = request.headers.get("Authorization") or ""
            answer = await self.adapter.process_activity(header, activity, turn.run)
            return _response(answer)
        except _Refused as refused:
            self.metrics.errors.labels(Platform.TEAMS, refused.kind).inc()
            log.warning(
                "request refused",
                extra={
                    "channel": Platform.TEAMS,
                    "status": refused.status,
                    "reason": refused.reason,
                },
            )
            return web.json_response({"error": refused.reason}, status=refused.status)

    async def _seen_before(self, activity: dict[str, Any]) -> bool:
        """True for a second delivery of the same activity (the Bot Framework retries); asked
        before any work, so that a redelivery downloads nothing."""
        activity_id = activity.get("id")
        if not activity_id:
            return False
        platform = str(activity.get("channelId") or Platform.TEAMS)
        event = f"{platform}:{activity['conversation']['id']}:{activity_id}"
        if await self.runtime.store.seen.first_time_seen(event):
            return False
        log.info("activity delivered twice; answered once", extra={"channel": platform})
        return True

    # -- files --------------------------------------------------------------------------------

    async def _files(
        self, activity: dict[str, Any], notices: list[Reply]
    ) -> tuple[Attachment, ...]:
        files = []
        for name, url, content_type in _file_links(activity):
            got = await download(
                self.session,
                url,
                max_bytes=self.settings.file_max_bytes,
                timeout_seconds=self.options.download_timeout_seconds,
            )
            if isinstance(got, DownloadFailed):
                self.metrics.errors.labels(Platform.TEAMS, "download").inc()
                log.warning(
                    "file not read",
                    extra={"channel": Platform.TEAMS, "reason": got.problem, "detail": got.detail},
                )
                notices.append(Text(self._file_refusal(got, name)))
                continue
            files.append(Attachment(name, got.content, content_type))
        return tuple(files)

    def _file_refusal(self, failure: DownloadFailed, name: str) -> str:
        texts = self.runtime.knowledge.conversation
        if failure.problem is DownloadProblem.TOO_LARGE:
            limit = _megabytes(self.settings.file_max_bytes)
            return texts.text("file_too_large", name=name, limit=limit)
        return texts.text("file_download_failed", name=name)

    # -- outbound -----------------------------------------------------------------------------

    async def retrying(
        self,
        call: Callable[[], Awaitable[_T]],
        *,
        what: str,
        audience: str | None,
        deadline: float,
        turn_id: str = "",
    ) -> _T:
        """Run one Bot Connector call (through the ConnectorClient); retry it on 429, 5xx and
        network errors with exponential backoff and jitter, waiting what ``Retry-After`` asks,
        within the deadline. Raises SendFailed."""
        for attempt in range(1, self.options.max_attempts + 1):
            wait: float | None
            try:
                return await call()
            except _ConnectorRefused as refused:
                status, detail, wait = refused.status, refused.detail, refused.retry_after
            except HttpOperationError as error:  # a success status msrest does not expect
                status, detail, wait = _connector_error(error)
            except (aiohttp.ClientError, TimeoutError) as error:
                status, detail, wait = 0, type(error).__name__, None
            if status == 401 and attempt == 1 and self._auth.tokens.forget(audience):
                continue  # the bot's token may have been revoked early: fetch a new one
            if status and status != 429 and status < 500:
                raise SendFailed(f"{what} {status}: {detail}", status=status)
            if wait is None:
                wait = self.options.retry_base_seconds * 2 ** (attempt - 1)
                wait *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret
            if attempt == self.options.max_attempts or time.monotonic() + wait > deadline:
                raise SendFailed(
                    f"{what} {status or detail} after {attempt} attempts", status=status, after=wait
                )
            self.metrics.outbound_retries.labels(Platform.TEAMS).inc()
            log.info(
                "Bot Connector busy; retrying",
                extra={"turn_id": turn_id, "status": status, "wait": round(wait, 2)},
            )
            await asyncio.sleep(wait)
        raise SendFailed(f"{what} gave up")  # pragma: no cover - the loop raises first

    def _failed(self, failure: SendFailed, *, turn_id: str, intent: str) -> None:
        self.metrics.errors.labels(Platform.TEAMS, "send").inc()
        log.error(
            "reply not delivered",
            extra={
                "turn_id": turn_id,
                "channel": Platform.TEAMS,
                "intent": intent,
                "reason": str(failure),
            },
        )

    # -- proactive ----------------------------------------------------------------------------

    async def send_proactive(self, reference: Mapping[str, Any], replies: Sequence[Reply]) -> int:
        """Send replies into a conversation saved with :func:`reference_of` (as new messages,
        not replies); return how many went out. For telling a requester about their ticket."""
        activities = render_replies(replies, self.labels)
        deadline = time.monotonic() + self.options.retry_budget_seconds
        sent = 0

        async def logic(context: TurnContext) -> None:
            nonlocal sent
            for each in activities:
                try:
                    outgoing = _outgoing(each)
                    await self.retrying(
                        lambda: _post(context, outgoing, reply=False),  # noqa: B023 - awaited now
                        what="POST",
                        audience=None,
                        deadline=deadline,
                    )
                    sent += 1
                except SendFailed as failure:
                    self._failed(failure, turn_id="", intent="proactive")

        await self._continue(reference, logic)
        return sent

    async def update(
        self,
        reference: Mapping[str, Any],
        activity_id: str,
        activity: dict[str, Any],
        *,
        budget: float | None = None,
    ) -> None:
        """Replace an activity the bot sent earlier into that conversation (a ticket card, say).
        Raises SendFailed."""
        deadline = time.monotonic() + (budget or self.options.retry_budget_seconds)

        async def logic(context: TurnContext) -> None:
            replacement = TurnContext.apply_conversation_reference(
                _outgoing(activity), TurnContext.get_conversation_reference(context.activity)
            )
            replacement.id = activity_id
            replacement.reply_to_id = None
            await self.retrying(
                lambda: context.adapter.update_activity(context, replacement),
                what="PUT",
                audience=None,
                deadline=deadline,
            )

        await self._continue(reference, logic)

    async def post(
        self,
        reference: Mapping[str, Any],
        activity: Mapping[str, Any],
        *,
        budget: float | None = None,
    ) -> str | None:
        """Send one activity into a saved conversation as a new message (in a channel: a new
        post; with ``;messageid=`` in the conversation id: a reply in that thread); return the
        id the Bot Connector gave it. Retried like replies (within ``budget`` seconds, by default
        a turn's); raises SendFailed."""
        deadline = time.monotonic() + (budget or self.options.retry_budget_seconds)
        ids: list[str | None] = []

        async def logic(context: TurnContext) -> None:
            outgoing = _outgoing(activity)
            ids.append(
                await self.retrying(
                    lambda: _post(context, outgoing, reply=False),
                    what="POST",
                    audience=None,
                    deadline=deadline,
                )
            )

        await self._continue(reference, logic)
        return ids[0] if ids else None

    async def is_member(
        self, reference: Mapping[str, Any], conversation_id: str, user_id: str
    ) -> bool:
        """Whether the user is a member of the conversation (a team, a channel, a group chat):
        the Bot Connector's ``GET /v3/conversations/{id}/members/{user}``, 403/404 meaning no.
        Raises SendFailed when it cannot tell."""
        deadline = time.monotonic() + self.options.retry_budget_seconds

        async def logic(context: TurnContext) -> None:
            client = _connector_client(context)
            await self.retrying(
                lambda: client.conversations.get_conversation_member(conversation_id, user_id),
                what="GET member",
                audience=None,
                deadline=deadline,
            )

        try:
            await self._continue(reference, logic)
        except SendFailed as failure:
            if failure.status in (403, 404):
                return False
            raise
        return True

    async def members(
        self, reference: Mapping[str, Any], conversation_id: str, *, page_size: int
    ) -> list[dict[str, str]]:
        """The first page of a conversation's members (``GET .../pagedmembers``), each as
        ``{"id", "name", "aadObjectId"}``. Raises SendFailed."""
        deadline = time.monotonic() + self.options.retry_budget_seconds
        found: list[dict[str, str]] = []

        async def logic(context: TurnContext) -> None:
            client = _connector_client(context)
            page = await self.retrying(
                lambda: client.conversations.get_conversation_paged_members(
                    conversation_id, page_size=page_size
                ),
                what="GET members",
                audience=None,
                deadline=deadline,
            )
            for member in getattr(page, "members", None) or []:
                found.append(
                    {
                        "id": str(member.id or ""),
                        "name": str(member.name or ""),
                        "aadObjectId": str(member.aad_object_id or ""),
                    }
                )

        await self._continue(reference, logic)
        return found

    async def _continue(
        self, reference: Mapping[str, Any], logic: Callable[[TurnContext], Awaitable[None]]
    ) -> None:
        await self.adapter.continue_conversation(
            ConversationReference().deserialize(dict(reference)),
            logic,
            bot_app_id=self.settings.microsoft_app_id or "",
        )

    # -- conversation references --------------------------------------------------------------

    async def _remember(self, activity: dict[str, Any], *, force: bool) -> None:
        """Keep where this conversation lives, for proactive messages: once per process, and
        again when it matters (an install, a ticket)."""
        channel = str(activity.get("channelId") or Platform.TEAMS)
        key = conversation_key(
            Message(platform=channel, conversation_id=str(activity["conversation"]["id"]))
        )
        if not force and key in self._referenced:
            return
        await self.runtime.store.conversations.save_reference(key, reference_of(activity))
        self._referenced[key] = None
        self._referenced.move_to_end(key)
        while len(self._referenced) > _REMEMBERED_CONVERSATIONS:
            self._referenced.popitem(last=False)


TEAMS: Final = web.AppKey("teams", TeamsChannel)


# ---- tickets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Roster:
    members: list[dict[str, str]]
    until: float


class TeamsTicketNotifier:
    """The Teams side of tickets: bot/tickets/'s ``TicketNotifier`` for "msteams" (the ticket
    card posted in the admins' channel and updated in place, notes in its thread, the
    requester's news as proactive messages, channel membership), and the admins' side of the
    card: ``register admins``, the card's Universal Actions (``adaptiveCard/action``).

    The card in the channel is the base view (no buttons) with a ``refresh`` for the admins
    known (ADMIN_USERS, the channel's members, whoever acted): Teams asks each of them for
    their own view (``ticketRefresh``), which has the buttons. Sends go through the channel's
    retrying sender; a 4xx other than 401/408/429 raises PermanentFailure, anything else is
    left to the tickets' job worker to retry.
    """

    platform: str = Platform.TEAMS

    def __init__(self, channel: TeamsChannel) -> None:
        self.channel = channel
        self.runtime = channel.runtime
        self.labels = TicketLabels(channel.runtime.knowledge.conversation)
        self._membership: dict[tuple[str, str], tuple[bool, float]] = {}
        self._rosters: dict[str, _Roster] = {}
        self._mris: OrderedDict[str, str] = OrderedDict()  # AAD object id -> Teams user MRI

    # -- TicketNotifier -----------------------------------------------------------------------

    async def post_card(self, admin_channel: dict[str, Any], ticket: TicketCard) -> CardRef:
        """Post the ticket's card as a new post in the admins' channel."""
        reference = _channel_reference(admin_channel)
        roster = _roster_id(admin_channel)
        card = await self.card(ticket, actions=False, roster=(reference, roster))
        activity = ticket_activity(card, ticket_summary(ticket, self.labels))
        activity_id = await _job(self.channel.post(reference, activity, budget=self._budget))
        if not activity_id:
            raise PermanentFailure("the Bot Connector gave the ticket card no id")
        return CardRef(
            Platform.TEAMS, {"reference": reference, "activity_id": activity_id, "roster": roster}
        )

    async def update_card(self, card: CardRef, ticket: TicketCard) -> None:
        """Put the ticket as it is now in place of its card."""
        reference, activity_id = _card_place(card)
        roster = (reference, str(card.ref.get("roster") or ""))
        content = await self.card(ticket, actions=False, roster=roster)
        activity = ticket_activity(content, ticket_summary(ticket, self.labels))
        await _job(self.channel.update(reference, activity_id, activity, budget=self._budget))

    async def post_note(self, card: CardRef, text: str) -> None:
        """A reply in the card's thread."""
        reference, activity_id = _card_place(card)
        conversation = dict(reference.get("conversation") or {})
        conversation["id"] = f"{_base_conversation_id(conversation)};messageid={activity_id}"
        thread = {**reference, "conversation": conversation}
        await _job(self.channel.post(thread, text_activity(text), budget=self._budget))

    async def tell_requester(self, requester: Requester, replies: Sequence[Reply]) -> None:
        """The replies as new messages in the requester's own conversation with the bot."""
        reference = await self.runtime.store.conversations.load_reference(
            requester.conversation_key
        )
        if reference is None:
            raise PermanentFailure(f"no conversation reference for {requester.conversation_key}")
        for activity in render_replies(replies, self.channel.labels):
            await _job(self.channel.post(reference, activity, budget=self._budget))

    async def is_admin_channel_member(self, admin_channel: dict[str, Any], user_id: str) -> bool:
        """The Bot Connector's members API, the answer kept for a minute."""
        roster = _roster_id(admin_channel)
        key = (roster, user_id)
        now = time.monotonic()
        cached = self._membership.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        reference = _channel_reference(admin_channel)
        member = await self.channel.is_member(reference, roster, user_id)
        if len(self._membership) > _REMEMBERED_CONVERSATIONS:
            self._membership.clear()
        self._membership[key] = (member, now + _MEMBERSHIP_SECONDS)
        return member

    async def remind(self, card: CardRef, ticket: TicketCard, text: str) -> None:
        """A reminder is a note in the card's thread (Teams bumps the thread)."""
        await self.post_note(card, text)

    def channel_identity(self, channel: dict[str, Any]) -> str:
        """A Teams channel is its conversation id, without the thread's ``;messageid=``."""
        conversation = channel.get("conversation")
        if isinstance(conversation, dict) and conversation.get("id"):
            return _base_conversation_id(conversation)
        return json.dumps(channel, sort_keys=True)

    # -- the card -----------------------------------------------------------------------------

    async def card(
        self,
        ticket: TicketCard,
        *,
        actions: bool,
        notice: str | None = None,
        roster: tuple[Mapping[str, Any], str] | None = None,
    ) -> dict[str, Any]:
        """The ticket's card: the base view, or the admins' view with ``actions``."""
        admins = await self._admins(ticket, roster)
        view = TicketCardView(
            actions=actions,
            refresh_users=tuple(self._mri(user_id) for user_id, _ in admins),
            assignees=tuple((user_id, name) for user_id, name in admins if name),
            notice=notice,
        )
        return ticket_card(ticket, view, self.labels)

    async def _admins(
        self, ticket: TicketCard, roster: tuple[Mapping[str, Any], str] | None
    ) -> list[tuple[str, str]]:
        """The admins known, as (user id, name or ""): whoever acted on the ticket, its
        assignee, ADMIN_USERS' Teams entries, the members of the admins' channel."""
        found: dict[str, str] = {}

        def add(user_id: str, name: str = "") -> None:
            if user_id and (name or user_id not in found):
                found[user_id] = name

        for event in await self.runtime.store.tickets.ticket_events(ticket.id):
            platform, _, user_id = event.actor.partition(":")
            by_admin = event.kind in _ADMIN_EVENTS and not event.detail.get("requester")
            if platform == Platform.TEAMS and by_admin:
                add(user_id, str(event.detail.get("by") or ""))
        assignee = ticket.assignee
        if assignee is not None and assignee.platform == Platform.TEAMS:
            add(assignee.user_id, assignee.name)
        for entry in self.runtime.settings.admin_users:
            platform, colon, rest = entry.partition(":")
            if colon and platform == Platform.TEAMS:
                add(rest)
            elif platform not in ADMIN_PLATFORMS and _TEAMS_USER_ID.fullmatch(entry):
                add(entry)  # a bare id that is a Teams one (an MRI or an AAD object id)
        if roster is not None and roster[1]:
            for member in await self._roster(*roster):
                self.learn(member)
                add(member["aadObjectId"] or member["id"], member["name"])
        return list(found.items())

    async def _roster(
        self, reference: Mapping[str, Any], conversation_id: str
    ) -> list[dict[str, str]]:
        """The first page of the admins' channel's members, kept for a minute; [] when the
        Bot Connector will not say (the card is drawn without them)."""
        now = time.monotonic()
        cached = self._rosters.get(conversation_id)
        if cached is not None and cached.until > now:
            return cached.members
        try:
            members = await self.channel.members(
                reference, conversation_id, page_size=MAX_REFRESH_USERS
            )
        except SendFailed as failure:
            log.info("admins' channel members unknown", extra={"reason": str(failure)})
            members = []
        self._rosters[conversation_id] = _Roster(members, now + _MEMBERSHIP_SECONDS)
        return members

    def learn(self, account: Mapping[str, Any]) -> None:
        """Remember a user's Teams id (MRI) by their AAD object id: ``refresh.userIds`` wants
        MRIs, and the bot knows admins by their AAD object id."""
        aad, mri = str(account.get("aadObjectId") or ""), str(account.get("id") or "")
        if aad and mri and self._mris.get(aad) != mri:
            self._mris[aad] = mri
            while len(self._mris) > _REMEMBERED_CONVERSATIONS:
                self._mris.popitem(last=False)

    @property
    def _budget(self) -> float:
        return self.channel.options.job_retry_budget_seconds

    def _mri(self, user_id: str) -> str:
        return self._mris.get(user_id, user_id)

    # -- the admins' side ---------------------------------------------------------------------

    async def register_admins(self, activity: Mapping[str, Any]) -> str:
        """``register admins`` said in a channel or group chat: make it the admins' channel."""
        conversation = activity["conversation"]
        if conversation.get("conversationType") not in _GROUP_CONVERSATIONS:
            return self.runtime.knowledge.conversation.text("teams_register_in_channel")
        base = _base_conversation_id(conversation)
        reference = reference_of(activity)
        reference["conversation"] = {**conversation, "id": base}
        reference["activityId"] = None
        data = activity.get("channelData") or {}
        team = (data.get("team") or {}).get("id") if isinstance(data, dict) else None
        name = (data.get("channel") or {}).get("name") if isinstance(data, dict) else None
        channel = {
            "reference": reference,
            "conversation": {"id": base},
            "team": team,
            "name": name,
        }
        return await self.runtime.tickets.register_admin_channel(
            Platform.TEAMS, channel, _actor(activity)
        )

    async def answer_action(
        self, activity: Mapping[str, Any], verb: str, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The invoke response to a ticket card's Universal Action: the card as the user
        should see it now (``ticketRefresh``), or the action applied by the tickets service
        and the card with what came of it; a refusal to a non-admin as a message."""
        actor = _actor(activity)
        ticket_id = str(data.get("ticket") or "")
        if verb != TICKET_REFRESH_VERB:
            event = f"{Platform.TEAMS}:{activity['conversation']['id']}:{activity.get('id')}"
            if not activity.get("id") or await self.runtime.store.seen.first_time_seen(event):
                return await self._act(actor, Action(verb), ticket_id, data)
            log.info("card action delivered twice; applied once", extra={"channel": Platform.TEAMS})
        return await self._view(actor, ticket_id)

    async def _view(self, actor: Actor, ticket_id: str) -> dict[str, Any]:
        texts = self.runtime.knowledge.conversation
        ticket = await self.runtime.store.tickets.get_ticket(ticket_id)
        if ticket is None:
            return _invoke_message(texts.text("ticket_refused_unknown", ticket=ticket_id))
        admin = await self.runtime.tickets.is_admin(actor)
        card = await self.runtime.tickets.card(ticket)
        return _invoke_card(
            await self.card(card, actions=admin, roster=await self._roster_of(card))
        )

    async def _act(
        self, actor: Actor, action: Action, ticket_id: str, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        assignee = None
        if action is Action.ASSIGN:
            chosen = read_assignee(str(data.get(INPUT_ASSIGNEE) or ""))
            if chosen is not None:
                assignee = Actor(Platform.TEAMS, *chosen)
        field = {Action.REPLY: INPUT_REPLY, Action.RESOLVE: INPUT_RESOLUTION}.get(action)
        text = str(data.get(field) or "") if field else None
        request = ActionRequest(
            ticket_id=ticket_id,
            action=action,
            actor=actor,
            seen_version=_version(data.get("version")),
            assignee=assignee,
            text=text,
        )
        result = await self.runtime.tickets.act(request)
        if result.ticket is None:
            return _invoke_message(result.message)
        ticket = await self.runtime.tickets.card(result.ticket)
        roster = await self._roster_of(ticket)
        card = await self.card(ticket, actions=True, notice=result.message, roster=roster)
        return _invoke_card(card)

    async def _roster_of(self, ticket: TicketCard) -> tuple[Mapping[str, Any], str] | None:
        """Where the members of the admins' channel are asked: where the card is, else the
        admins' channel now."""
        card = (await self.runtime.store.channels.ticket_cards(ticket.id)).get(Platform.TEAMS)
        if card is not None and card.get("reference") and card.get("roster"):
            return card["reference"], str(card["roster"])
        channel = (await self.runtime.tickets.admin_channels()).get(Platform.TEAMS)
        if channel is None:
            return None
        try:
            return _channel_reference(channel), _roster_id(channel)
        except PermanentFailure:
            return None


_TICKET_VERBS: Final = frozenset(action.value for action in Action) | {TICKET_REFRESH_VERB}
_ADMIN_EVENTS: Final = frozenset({"assigned", "replied", "resolved", "reopened"})
_MEMBERSHIP_SECONDS: Final = 60.0
_TEAMS_USER_ID = re.compile(r"29:\S+|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


async def _job(call: Awaitable[_T]) -> _T:
    """A Bot Connector call for the tickets' job worker: PermanentFailure when trying again
    cannot help; SendFailed (with the wait asked for, as ``after``) when it can."""
    try:
        return await call
    except SendFailed as failure:
        if failure.permanent:
            raise PermanentFailure(str(failure)) from None
        raise


def _actor(activity: Mapping[str, Any]) -> Actor:
    user = activity["from"]
    user_id = str(user.get("aadObjectId") or user["id"])
    return Actor(Platform.TEAMS, user_id, str(user.get("name") or user_id))


def _version(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _base_conversation_id(conversation: Mapping[str, Any]) -> str:
    """A channel's conversation id without the thread's ``;messageid=``."""
    return str(conversation.get("id") or "").split(";", 1)[0]


def _channel_reference(admin_channel: Mapping[str, Any]) -> dict[str, Any]:
    """The conversation reference of a registered admins' channel (``{"reference": ...}``, or
    a bare reference), addressed to the channel itself: posts there start new threads."""
    reference = admin_channel.get("reference", admin_channel)
    if not isinstance(reference, dict) or not isinstance(reference.get("conversation"), dict):
        raise PermanentFailure("the Teams admins' channel has no conversation reference")
    if not reference.get("serviceUrl"):
        raise PermanentFailure("the Teams admins' channel has no service URL")
    conversation = {
        **reference["conversation"],
        "id": _base_conversation_id(reference["conversation"]),
    }
    return {**reference, "conversation": conversation, "activityId": None}


def _roster_id(admin_channel: Mapping[str, Any]) -> str:
    """Where the members of the admins' channel are asked for: its team, else the chat."""
    team = admin_channel.get("team")
    if team:
        return str(team)
    reference = admin_channel.get("reference", admin_channel)
    conversation = reference.get("conversation") if isinstance(reference, dict) else None
    return _base_conversation_id(conversation if isinstance(conversation, dict) else {})


def _card_place(card: CardRef) -> tuple[dict[str, Any], str]:
    reference, activity_id = card.ref.get("reference"), card.ref.get("activity_id")
    if not isinstance(reference, dict) or not activity_id:
        raise PermanentFailure("the ticket card's place is unknown")
    return reference, str(activity_id)


def _invoke_card(card: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": card}


def _invoke_message(text: str) -> dict[str, Any]:
    return {"statusCode": 200, "type": _INVOKE_MESSAGE, "value": text}


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


def _response(answer: InvokeResponse | None) -> web.Response:
    """The HTTP answer for what the adapter returns: 201 for a plain turn, the invoke response
    (or expectReplies' activities, 200) otherwise."""
    if answer is None:
        return web.Response(status=201)
    body = answer.body if answer.body is not None else {}
    return web.json_response(body, status=int(answer.status or 200))


# ---- the turn ---------------------------------------------------------------------------------


class _Turn:
    """The bot the adapter runs for one activity: reads the TurnContext's activity (the JSON it
    arrived as, ``body``) into a Message, runs the turn, sends the replies through the
    TurnContext."""

    def __init__(self, channel: TeamsChannel, body: dict[str, Any]) -> None:
        self.channel = channel
        self.body = body
        self.context: TurnContext | None = None
        self.audience: str | None = None
        self.turn_id = ""
        self.deadline = 0.0

    async def run(self, context: TurnContext) -> None:
        self.context = context
        self.audience = context.turn_state.get(context.adapter.BOT_OAUTH_SCOPE_KEY)
        self.deadline = time.monotonic() + self.channel.options.retry_budget_seconds
        kind = self.body["type"]
        if kind == "message":
            await self._on_message(self.body.get("value"))
        elif kind == "invoke":
            await self._on_invoke()
        elif kind == "conversationUpdate":
            await self._on_conversation_update()
        elif kind == "installationUpdate" and self.body.get("action") in ("add", "add-upgrade"):
            await self.channel._remember(self.body, force=True)

    async def _on_invoke(self) -> None:
        value = self.body.get("value")
        action = value.get("action") if isinstance(value, dict) else None
        if self.body.get("name") != "adaptiveCard/action" or not isinstance(action, dict):
            return  # no invoke response: the adapter answers 501
        data, verb = action.get("data"), action.get("verb")
        answer: dict[str, Any]
        if isinstance(data, dict) and data.get("ticket") and verb in _TICKET_VERBS:
            self.channel.tickets.learn(self.body["from"])
            answer = await self.channel.tickets.answer_action(self.body, str(verb), data)
        else:
            await self._on_message(data)
            answer = {"statusCode": 200, "type": _INVOKE_MESSAGE, "value": ""}
        await self._context.send_activity(
            Activity(
                type=ActivityTypes.invoke_response, value=InvokeResponse(status=200, body=answer)
            )
        )

    async def _on_message(self, value: Any) -> None:
        channel, activity = self.channel, self.body
        conversation = activity["conversation"]
        clicked = _button_value(value)
        in_group = conversation.get("conversationType") in _GROUP_CONVERSATIONS
        if in_group and clicked is None and not _mentions_bot(activity):
            return  # channel chatter not meant for the bot
        if await channel._seen_before(activity):
            return
        typing = _Typing(self, enabled=not self._expect_replies)
        text = _readable_text(activity)
        notices: list[Reply] = []
        if _has_files(activity) or len(text) > _SLOW_TEXT_CHARS:
            typing.now()
        files = await channel._files(activity, notices)
        user = activity["from"]
        message = Message(
            text=text,
            files=files,
            user_id=str(user.get("aadObjectId") or user["id"]),
            user_name=str(user.get("name") or ""),
            conversation_id=str(conversation["id"]),
            platform=str(activity.get("channelId") or Platform.TEAMS),
            value=clicked,
            raw=activity,
        )
        channel.tickets.learn(user)
        if clicked is None and not files and is_register_admins(text):
            # A platform command, not a conversation: the dialogs never see it.
            answer = await channel.tickets.register_admins(activity)
            await typing.settle()
            await channel._remember(activity, force=False)
            await self.deliver([text_activity(answer)], intent="register_admins")
            return
        outcome: TurnOutcome | None = None
        if text or files or clicked is not None or not notices:
            typing.after(channel.options.typing_after_seconds)
            try:
                outcome = await channel.runtime.turns.handle(message)
            finally:
                typing.cancel_timer()
            channel.metrics.observe_turn(message.platform, outcome)
            self.turn_id = outcome.turn_id
        await typing.settle()
        replies = [*notices, *(outcome.replies if outcome else ())]
        await channel._remember(activity, force=bool(outcome and outcome.escalated))
        activities = render_replies(replies, channel.labels)
        await self.deliver(activities, intent=outcome.intent if outcome else "file")

    async def _on_conversation_update(self) -> None:
        activity = self.body
        bot_id = (activity.get("recipient") or {}).get("id")
        added = activity.get("membersAdded") or []
        if not any(isinstance(m, dict) and m.get("id") == bot_id for m in added):
            return
        channel = self.channel
        await channel._remember(activity, force=True)
        help_text = channel.runtime.knowledge.help_text
        welcome = welcome_activity(help_text.greeting, help_text.capabilities, channel.labels)
        await self.deliver([welcome], intent="welcome", reply=False)

    @property
    def _expect_replies(self) -> bool:
        return bool(self.body.get("deliveryMode") == DeliveryModes.expect_replies)

    @property
    def _context(self) -> TurnContext:
        if self.context is None:
            raise RuntimeError("the adapter has not started this turn")
        return self.context

    async def deliver(
        self, activities: Sequence[dict[str, Any]], *, intent: str, reply: bool = True
    ) -> int:
        """Send the activities in order; log (with the turn id) and count any that fail."""
        sent = 0
        for activity in activities:
            try:
                await self.send(activity, reply=reply)
                sent += 1
            except SendFailed as failure:
                self.channel._failed(failure, turn_id=self.turn_id, intent=intent)
        return sent

    async def send(self, activity: dict[str, Any], *, reply: bool = True) -> None:
        """One activity through the TurnContext (buffered there for expectReplies)."""
        context = self._context
        outgoing = _outgoing(activity)
        if self._expect_replies:
            await context.send_activity(outgoing)
            return
        await self.channel.retrying(
            lambda: _post(context, outgoing, reply=reply),
            what="POST",
            audience=self.audience,
            deadline=self.deadline,
            turn_id=self.turn_id,
        )

    async def send_typing(self) -> None:
        try:
            await self.send(typing_activity())
        except SendFailed as failure:
            log.debug("typing indicator not sent", extra={"reason": str(failure)})


async def _post(context: TurnContext, activity: Activity, *, reply: bool) -> str | None:
    """Send one activity through the adapter: as a reply to the turn's activity (what
    ``TurnContext.send_activity`` does), or as a new message in its conversation. Returns the
    id the Bot Connector gave it, if it said."""
    if reply:
        answer = await context.send_activity(activity)
        return getattr(answer, "id", None)
    addressed = TurnContext.apply_conversation_reference(
        activity, TurnContext.get_conversation_reference(context.activity)
    )
    addressed.reply_to_id = None
    answers = await context.adapter.send_activities(context, [addressed])
    return getattr(answers[0], "id", None) if answers else None


def _connector_client(context: TurnContext) -> ConnectorClient:
    client = context.turn_state.get(context.adapter.BOT_CONNECTOR_CLIENT_KEY)
    if client is None:
        raise SendFailed("no Bot Connector client for this conversation")
    return client


def _outgoing(activity: Mapping[str, Any]) -> Activity:
    """A rendered activity (plain JSON) as botbuilder's Activity, for the TurnContext."""
    return Activity(
        type=activity.get("type"),
        text=activity.get("text"),
        text_format=activity.get("textFormat"),
        summary=activity.get("summary"),
        attachments=[
            CardAttachment(content_type=each.get("contentType"), content=each.get("content"))
            for each in activity.get("attachments") or []
        ]
        or None,
    )


def _connector_error(error: HttpOperationError) -> tuple[int, str, float | None]:
    """Status, a short detail and the Retry-After wait of a refused Bot Connector call."""
    response = error.response
    status = int(getattr(response, "status_code", 0) or 0)
    headers = getattr(response, "headers", None) or {}
    detail = ""
    with contextlib.suppress(Exception):
        detail = response.text()[:_ERROR_BODY_CHARS]
    return status, detail, retry_after(headers.get("Retry-After"))


class _Typing:
    """The "typing..." indicator of one turn: sent at once for known slow work, or when the turn
    takes longer than a moment; always before the replies."""

    def __init__(self, turn: _Turn, *, enabled: bool) -> None:
        self._turn = turn
        self._enabled = enabled
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def now(self) -> None:
        if self._enabled and self._task is None:
            self._task = asyncio.create_task(self._turn.send_typing())

    def after(self, seconds: float) -> None:
        if self._enabled and self._task is None:
            self._timer = asyncio.get_running_loop().call_later(seconds, self.now)

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    async def settle(self) -> None:
        if self._task is not None:
            await self._task


# ---- authentication and the adapter's clients --------------------------------------------------


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


class _Authentication(BotFrameworkAuthentication):  # type: ignore[misc]
    """The adapter's authentication: botbuilder's own validation of each request (its signing
    keys fetched without blocking), refusals as 401, and clients built once, not per turn."""

    def __init__(
        self, settings: Settings, options: TeamsOptions, session: aiohttp.ClientSession
    ) -> None:
        self.local = not settings.teams_credentials
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
        self.tokens = _BotTokens(settings, options, None if self.local else self)
        self._connectors = _ConnectorFactory(self.tokens, session, options)
        self._user_token_clients: dict[str | None, UserTokenClient] = {}
        for url in (
            overrides.get("TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL"),
            overrides.get("TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL"),
            AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL,
            AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL,
        ):
            if url and not isinstance(JwtTokenExtractor.metadataCache.get(url), _SigningKeys):
                # botbuilder's own cache fetches with a blocking `requests` call; ours awaits.
                JwtTokenExtractor.metadataCache[url] = _SigningKeys(url)

    async def authenticate_request(
        self, activity: Activity, auth_header: str
    ) -> AuthenticateRequestResult:
        """Validate the request's token (botbuilder's validation); refusals are 401s."""
        if self.local:
            if auth_header:
                raise _Refused(
                    401,
                    "this bot runs in local mode (no MICROSOFT_APP_ID) and takes no tokens",
                    "auth",
                )
        elif not auth_header:
            raise _Refused(401, "the request carries no Authorization token", "auth")
        try:
            result = await self._botbuilder.authenticate_request(activity, auth_header)
        except _KeysUnavailable as error:
            raise _Refused(503, f"cannot check tokens now: {error}", "auth_keys") from None
        except Exception as error:  # any failure to validate means: not authorised
            raise _Refused(401, f"the token was refused ({_why(error)})", "auth") from None
        identity = result.claims_identity
        if identity is None or not identity.is_authenticated:
            raise _Refused(401, "the token was refused", "auth")
        result.connector_factory = self._connectors
        return result

    async def authenticate_streaming_request(
        self, auth_header: str, channel_id_header: str
    ) -> AuthenticateRequestResult:
        raise _Refused(405, "streaming is not served", "bad_request")

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return self._connectors

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        app_id = claims_identity.get_claim_value(AuthenticationConstants.AUDIENCE_CLAIM)
        client = self._user_token_clients.get(app_id)
        if client is None:
            client = await self._botbuilder.create_user_token_client(claims_identity)
            self._user_token_clients[app_id] = client
        return client

    def get_originating_audience(self) -> str:
        return str(self._botbuilder.get_originating_audience())


class _ConnectorFactory(ConnectorFactory):  # type: ignore[misc]
    """One ConnectorClient per service URL and audience, kept: each sends over the app's aiohttp
    session with the bot's cached token."""

    def __init__(
        self, tokens: _BotTokens, session: aiohttp.ClientSession, options: TeamsOptions
    ) -> None:
        self._tokens = tokens
        self._session = session
        self._options = options
        self._clients: OrderedDict[tuple[str, str | None], ConnectorClient] = OrderedDict()

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        key = (str(service_url or ""), audience)
        client = self._clients.get(key)
        if client is None:
            client = ConnectorClient(MicrosoftAppCredentials.empty(), base_url=key[0])
            client.config.add_user_agent(_USER_AGENT)
            # The pipeline AsyncBfPipeline builds, with our token policy and transport. Built
            # here, after the client: msrest links a policy object into each pipeline made
            # with it, and the client makes its default (`requests`) pipeline last.
            client.config.pipeline = AsyncPipeline(
                [
                    client.config.user_agent_policy,
                    _BotToken(self._tokens, audience),
                    RawDeserializer(),
                    client.config.http_logger_policy,
                ],
                _SessionSender(self._session, self._options.request_timeout_seconds),
            )
            self._clients[key] = client
            while len(self._clients) > _CONNECTOR_CLIENTS:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(key)
        return client


_Call = Request[ClientRequest]
_Answer = Response[ClientRequest, AsyncClientResponse]


class _BotToken(AsyncHTTPPolicy[ClientRequest, AsyncClientResponse]):
    """Puts the bot's own token (cached; fetched off the event loop) on each connector call;
    none in local mode."""

    def __init__(self, tokens: _BotTokens, audience: str | None) -> None:
        super().__init__()
        self._tokens = tokens
        self._audience = audience

    async def send(self, request: _Call, **config: Any) -> _Answer:
        request.http_request.headers.update(await self._tokens.header(self._audience))
        assert self.next is not None  # noqa: S101 - msrest links every policy to the next
        return await self.next.send(request, **config)


class _SessionSender(AsyncHTTPSender[ClientRequest, AsyncClientResponse]):
    """msrest's transport over the app's aiohttp session (instead of ``requests`` in a thread)."""

    def __init__(self, session: aiohttp.ClientSession, timeout: float) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def __aenter__(self) -> _SessionSender:
        return self

    async def __aexit__(self, *exc_details: object) -> None:
        return None

    async def send(self, request: _Call, **config: Any) -> _Answer:
        http = request.http_request
        async with self._session.request(
            http.method, http.url, data=http.data, headers=http.headers, timeout=self._timeout
        ) as got:
            body = await got.read()
            if got.status >= 300:
                # Raised here, before msrest reads the body (which fails on a gateway's
                # text/html page): the status and Retry-After are what the retries need.
                raise _ConnectorRefused(
                    got.status,
                    body[:_ERROR_BODY_CHARS].decode(errors="replace"),
                    retry_after(got.headers.get("Retry-After")),
                )
            headers = dict(got.headers)
            if not body.strip() or "json" not in got.content_type:
                # Taken, but with no JSON to read (a proxy's empty 201, say): the activity
                # went out, and its id is unknown; msrest would fail on it, and a retry repeat it.
                body, headers["Content-Type"] = b"{}", _JSON
            answer = _ConnectorAnswer(http, got.status, headers, got.reason, body)
        return Response(request, answer)


class _ConnectorRefused(Exception):
    """The Bot Connector answered a call with an error status."""

    def __init__(self, status: int, detail: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


class _ConnectorAnswer(AsyncClientResponse):
    def __init__(
        self,
        request: ClientRequest,
        status: int,
        headers: dict[str, str],
        reason: str | None,
        body: bytes,
    ) -> None:
        super().__init__(request, None)
        self.internal_response = self  # what msrest's errors hand back as `.response`
        self.status_code = status
        self.headers = headers
        self.reason = reason
        self._body = body

    def body(self) -> bytes:
        return self._body

    def raise_for_status(self) -> None:
        return None  # error statuses never get this far: see _SessionSender


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


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"
