"""The bolt app and the bot's connection to Slack: who the bot is, signatures, Socket Mode.

``Connection`` builds bolt's ``AsyncApp`` (its listeners are ``listeners.py``'s), learns the
bot's identity with ``auth.test`` at start and keeps asking in the background, pausing longer
each time, until Slack answers; only then does it say that Slack is on and connect Socket Mode
when ``SLACK_APP_TOKEN`` is set. Bolt's ``authorize`` hands out that identity, never an API call
in a request. Its own room because it is the app's lifetime against Slack, whatever a turn does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels.slack.events import EVENTS_PATH
from bot.channels.slack.web_api import API_ERRORS, reason

log = logging.getLogger("bot.channels.slack")

# auth.test failed at start: tried again after these pauses (doubling), until Slack answers.
_AUTH_RETRY_FIRST_SECONDS = 5.0
_AUTH_RETRY_MAX_SECONDS = 300.0
# What auth.test answers when the bot token itself is wrong: retrying will not cure it.
_TOKEN_REFUSED: Final = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)


def secret(value: Any) -> str | None:
    """A secret setting's text; None when it is unset or empty."""
    text = value.get_secret_value() if value is not None else None
    return text or None


@dataclass(frozen=True)
class Identity:
    """The bot as Slack knows it (auth.test), so its own messages are told apart."""

    user_id: str | None
    bot_id: str | None
    team_id: str | None
    enterprise_id: str | None


class Connection:
    """The bolt app, the bot's identity, and Socket Mode when it is configured."""

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        bolt_client: AsyncWebClient,
        token: str,
        signing_secret: str,
        app_token: str | None,
        on_identity: Callable[[Identity], None] | None = None,
    ) -> None:
        """``client`` (with the bot token) asks auth.test and serves Socket Mode; bolt gets
        ``bolt_client`` (no token: the token comes from ``authorize``; a client with a token
        next to an authorize function makes bolt warn at every start). ``on_identity`` hears
        who the bot is once auth.test answers (its team is the app's own tenant)."""
        self._on_identity = on_identity
        self._client = client
        self._token = token
        self._signing_secret = signing_secret
        self._app_token = app_token
        # Socket Mode needs no signing secret: nothing comes in over HTTP then.
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self._identity: Identity | None = None
        self._identity_lookup: asyncio.Task[None] | None = None
        self._socket_mode: AsyncSocketModeHandler | None = None
        self._socket_connect: asyncio.Task[None] | None = None
        _quiet_bolt_notices(log.getChild("bolt"))
        self.bolt = AsyncApp(
            name="ndrbot",
            client=bolt_client,
            signing_secret=signing_secret,
            authorize=self._authorize_function(),
            request_verification_enabled=self._verifier is not None,
            # Each listener acks, then hands its work to the background tasks: Slack hears back
            # at once, and a shutdown waits for the work (bolt's own futures it would not).
            process_before_response=True,
            logger=log.getChild("bolt"),
        )

    @property
    def mode(self) -> str:
        """How Slack reaches the bot, as the start-up log says it."""
        if self._app_token is None:
            return f"HTTP at {EVENTS_PATH}"
        if self._signing_secret:
            return "Socket Mode (SLACK_SIGNING_SECRET is not used in Socket Mode)"
        return "Socket Mode"

    @property
    def team_id(self) -> str | None:
        """The bot's own team (workspace), once auth.test has answered."""
        return self._identity.team_id if self._identity else None

    @property
    def bot_user_id(self) -> str | None:
        """The bot's own user id, once auth.test has answered."""
        return self._identity.user_id if self._identity else None

    async def start(self) -> None:
        """Learn who the bot is (auth.test); then say that Slack is on and connect Socket Mode
        when it is configured. If auth.test fails, say that Slack is not on yet and try again in
        the background, pausing longer each time, until Slack answers: the server starts
        either way."""
        failed = await self._look_up_identity()
        if failed is None:
            self._switch_on()
            return
        log.error(
            "Slack is not on yet: auth.test failed (%s%s); trying again in %g s%s",
            failed,
            ": SLACK_BOT_TOKEN is wrong or revoked" if failed in _TOKEN_REFUSED else "",
            _AUTH_RETRY_FIRST_SECONDS,
            ", then Socket Mode connects" if self._app_token is not None else "",
            extra={"reason": failed},
        )
        self._retry_identity_lookup(_AUTH_RETRY_FIRST_SECONDS)

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
        except (ValueError, OverflowError):  # a timestamp not a number (or too big), not UTF-8
            return False

    def _switch_on(self) -> None:
        log.info("Slack is on: %s", self.mode)
        if self._app_token is not None and self._socket_mode is None:
            self._socket_mode = AsyncSocketModeHandler(
                self.bolt, app_token=self._app_token, web_client=self._client, logger=log
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
                failed = await self._look_up_identity()
                if failed is None:
                    self._switch_on()
                    return
                pause = min(max(pause * 2, _AUTH_RETRY_FIRST_SECONDS), _AUTH_RETRY_MAX_SECONDS)
                log.warning(
                    "Slack auth.test failed (%s); trying again in %g s",
                    failed,
                    pause,
                    extra={"reason": failed},
                )

        self._identity_lookup = asyncio.create_task(retry(pause), name="slack-auth-test")

    async def _look_up_identity(self) -> str | None:
        """auth.test: who the bot is. None when Slack answered, else the reason it failed."""
        try:
            found = await self._client.auth_test()
        except API_ERRORS as error:
            return reason(error)
        self._identity = Identity(
            user_id=found.get("user_id"),
            bot_id=found.get("bot_id"),
            team_id=found.get("team_id"),
            enterprise_id=found.get("enterprise_id"),
        )
        if self._on_identity is not None:
            self._on_identity(self._identity)
        return None

    def _authorize_function(self) -> Callable[[], Awaitable[AuthorizeResult]]:
        """Bolt's authorize: the identity learnt at start, never an API call in a request. A
        plain function: bolt passes its arguments by name, and would take a method's self."""

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
