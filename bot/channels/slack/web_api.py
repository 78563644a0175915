"""Sending through Slack's Web API: the client on the shared session, posting replies, the DMs,
people's names, slack_sdk's retries counted, and what a job does when Slack is busy.

Every Web API call of the bot goes through an ``AsyncWebClient`` built here, whose handlers
retry what Slack rate limits (after its ``Retry-After``) or fails with a 5xx, each retry counted
in ``ndrbot_outbound_retries_total``. ``WebAPI`` posts a turn's replies (rendered by
``blocks.py``), opens and remembers the DMs, and looks people's names up; ``call_for_job`` sorts
what still fails for the tickets' worker into permanent and ``SlackBusy`` (tried again after
Slack's ``Retry-After``). Its own room because it is the one way out to Slack: receiving is
``events.py`` and ``listeners.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import Any, Final

import aiohttp
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
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels.slack.blocks import SlackMessage, render_replies
from bot.channels.slack.events import Target, conversation_target
from bot.config import Settings
from bot.metrics import Metrics
from bot.outbound import retry_after
from bot.tickets import PermanentFailure
from dialogs.messages import Platform
from dialogs.replies import Reply
from knowledge.kb import ConversationText

log = logging.getLogger("bot.channels.slack")

API_TIMEOUT_SECONDS: Final = 15
_RATE_LIMIT_RETRIES = 3
_SERVER_ERROR_RETRIES = 2
_DM_CACHE_SIZE = 10_000
_USER_CACHE_SIZE = 10_000
#: What a Web API call may raise once slack_sdk's retries are done.
API_ERRORS: Final = (SlackApiError, aiohttp.ClientError, TimeoutError)
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


def web_client(
    settings: Settings, session: aiohttp.ClientSession, metrics: Metrics, token: str | None
) -> AsyncWebClient:
    """A Web API client on the shared session; slack_sdk's handlers retry 429 and 5xx."""
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        session=session,
        timeout=API_TIMEOUT_SECONDS,
        logger=log.getChild("web"),
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            _Counted(AsyncRateLimitErrorRetryHandler(max_retry_count=_RATE_LIMIT_RETRIES), metrics),
            _Counted(AsyncServerErrorRetryHandler(max_retry_count=_SERVER_ERROR_RETRIES), metrics),
        ],
    )


def reason(error: object) -> str:
    """What a failed call says went wrong: Slack's error code, else the exception."""
    if isinstance(error, SlackApiError):
        return _error_code(error) or str(error)
    return str(error) or type(error).__name__


def worth_retrying(error: BaseException) -> bool:
    """Whether a Web API call that still failed after slack_sdk's retries may succeed later: a
    429, a 5xx, a transient error code, or no answer at all (the network, a timeout)."""
    if isinstance(error, SlackApiError):
        status = error.response.status_code
        return status == 429 or status >= 500 or _error_code(error) in _TRANSIENT_ERRORS
    return isinstance(error, aiohttp.ClientError | TimeoutError)


def _error_code(error: SlackApiError) -> str:
    """Slack's error code ("channel_not_found"); "" when the answer was not Slack's JSON (a
    proxy's or a refusing server's page: its data is text, which has no code)."""
    data = error.response.data
    return str(data.get("error") or "") if isinstance(data, dict) else ""


class WebAPI:
    """The bot's Web API client, and what the channel sends with it: replies, DMs, names."""

    def __init__(
        self,
        settings: Settings,
        *,
        session: aiohttp.ClientSession,
        metrics: Metrics,
        words: ConversationText,
        token: str,
    ) -> None:
        """One client with the bot token on ``session``; failures counted in ``metrics``."""
        self.client = web_client(settings, session, metrics, token)
        self._metrics = metrics
        self._words = words
        self._dm_channels: dict[str, str] = {}
        self._user_names: dict[str, str] = {}

    async def post(self, target: Target, replies: Sequence[Reply]) -> bool:
        """A turn's replies, as few messages as Slack's limits allow; False (logged and counted)
        once Slack refused one: the rest would read oddly without this part."""
        for message in render_replies(replies, self._words):
            if not await self.call("chat.postMessage", self.post_message(target, message)):
                return False
        return True

    async def post_message(self, target: Target, message: SlackMessage) -> Any:
        """chat.postMessage of one message (links not unfurled); Slack's refusal is raised."""
        return await self.client.chat_postMessage(
            channel=target.channel,
            thread_ts=target.thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            **message.payload(),
        )

    async def send(self, conversation_id: str, replies: Sequence[Reply]) -> bool:
        """Post replies into a conversation the bot had ("D123", or "C123:<thread ts>"), e.g. a
        ticket's news for its requester. False if Slack refused."""
        return await self.post(conversation_target(conversation_id), replies)

    async def deliver(self, conversation_id: str, replies: Sequence[Reply]) -> None:
        """As ``send``, but Slack's refusal is raised (``SlackApiError``, ``aiohttp.ClientError``,
        ``TimeoutError``), for a caller that retries: the ticket notifier."""
        target = conversation_target(conversation_id)
        for message in render_replies(replies, self._words):
            await self.post_message(target, message)

    async def call(self, method: str, call: Awaitable[Any]) -> bool:
        """Await a Web API call (retried by the client's handlers); log and count a failure."""
        try:
            await call
        except API_ERRORS as error:
            self._metrics.errors.labels(Platform.SLACK, "send").inc()
            log.error("Slack API call failed", extra={"method": method, "reason": reason(error)})
            return False
        return True

    def known_dm(self, user: str) -> str | None:
        """The DM channel with ``user`` if the bot opened it already (no API call)."""
        return self._dm_channels.get(user)

    async def dm(self, user: str) -> str | None:
        """The bot's direct-message channel with a user (opened once, then remembered)."""
        known = self._dm_channels.get(user)
        if known is not None:
            return known
        try:
            opened = await self.client.conversations_open(users=user)
        except API_ERRORS as error:
            self._metrics.errors.labels(Platform.SLACK, "send").inc()
            log.error("Slack conversations.open failed", extra={"reason": reason(error)})
            return None
        channel = str(opened["channel"]["id"])
        if len(self._dm_channels) >= _DM_CACHE_SIZE:
            self._dm_channels.clear()
        self._dm_channels[user] = channel
        return channel

    async def user_name(self, user_id: str, fallback: str) -> str:
        """A person's name as Slack shows it (users.info, remembered), else ``fallback``."""
        known = self._user_names.get(user_id)
        if known is not None:
            return known
        try:
            found = await self.client.users_info(user=user_id)
        except API_ERRORS as error:
            log.warning("Slack users.info failed", extra={"reason": reason(error)})
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


class SlackBusy(Exception):
    """Slack is rate limiting or failing even after slack_sdk's retries: the job waits
    ``after`` seconds (Slack's Retry-After when it said) and is tried again."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


async def call_for_job(method: str, call: Awaitable[Any], metrics: Metrics) -> Any:
    """Await a Web API call of a job; what still fails raises ``PermanentFailure`` when trying
    again cannot help, else ``SlackBusy`` so that the job is retried later."""
    try:
        return await call
    except SlackApiError as error:
        metrics.errors.labels(Platform.SLACK, "send").inc()
        status = error.response.status_code
        code = _error_code(error) or f"HTTP {status}"
        said = f"Slack {method}: {code}"
        log.warning("Slack API call failed", extra={"method": method, "reason": code})
        if worth_retrying(error):
            header = error.response.headers.get("Retry-After")
            raise SlackBusy(said, retry_after(header)) from None
        raise PermanentFailure(said) from None
    except (aiohttp.ClientError, TimeoutError) as error:
        metrics.errors.labels(Platform.SLACK, "send").inc()
        raise SlackBusy(f"Slack {method}: {reason(error)}") from None


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
