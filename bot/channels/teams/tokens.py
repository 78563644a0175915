"""The bot's own bearer token for the Bot Connector (:class:`BotTokens`), and the msrest policy
that puts it on each connector call (:class:`BotTokenPolicy`).

Apart from the authentication of requests (``auth.py``): that checks the tokens others send us;
this fetches ours, from botbuilder's credentials (MSAL or a managed identity) off the event loop,
and keeps it until shortly before it expires. The sender drops it after a 401.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

import jwt
from botbuilder.integration.aiohttp import ConfigurationServiceClientCredentialFactory
from botframework.connector.auth import AuthenticationConstants
from msrest.pipeline import Request, Response
from msrest.pipeline.async_abc import AsyncHTTPPolicy
from msrest.universal_http import ClientRequest
from msrest.universal_http.async_abc import AsyncClientResponse

from bot.channels.teams.failures import SendFailed
from bot.channels.teams.options import TeamsOptions
from bot.config import Settings

_TOKEN_EARLY_SECONDS: Final = 300
_DEFAULT_TOKEN_SECONDS: Final = 1800

Call = Request[ClientRequest]
Answer = Response[ClientRequest, AsyncClientResponse]


class BotTokens:
    """The bot's own bearer token for the Bot Connector, from botbuilder's credentials factory
    (MSAL, or a managed identity). Fetched off the event loop and kept until shortly before it
    expires; none in local mode (no ``credentials_factory``)."""

    def __init__(
        self,
        settings: Settings,
        options: TeamsOptions,
        credentials_factory: ConfigurationServiceClientCredentialFactory | None,
        login_url: str,
    ) -> None:
        self._app_id = settings.microsoft_app_id
        self._factory = credentials_factory
        self._login_url = login_url
        self._source = options.token_source
        self._tokens: dict[str, tuple[str, float]] = {}
        self._credentials: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def header(self, audience: str | None) -> dict[str, str]:
        if self._factory is None:
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
                factory = self._factory
                if factory is None:
                    raise SendFailed("no credentials in local mode")
                credentials = await factory.create_credentials(
                    self._app_id, scope, self._login_url, True
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


class BotTokenPolicy(AsyncHTTPPolicy[ClientRequest, AsyncClientResponse]):
    """Puts the bot's own token (cached; fetched off the event loop) on each connector call;
    none in local mode."""

    def __init__(self, tokens: BotTokens, audience: str | None) -> None:
        super().__init__()
        self._tokens = tokens
        self._audience = audience

    async def send(self, request: Call, **config: Any) -> Answer:
        request.http_request.headers.update(await self._tokens.header(self._audience))
        assert self.next is not None  # noqa: S101 - msrest links every policy to the next
        return await self.next.send(request, **config)


__all__ = ["Answer", "BotTokenPolicy", "BotTokens", "Call"]
