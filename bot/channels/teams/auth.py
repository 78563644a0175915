"""The Bot Framework authentication we give botbuilder's ``CloudAdapter``
(:class:`Authentication`), and the signing keys it checks tokens with (:class:`SigningKeys`).

Token validation is botbuilder's own (``ConfigurationBotFrameworkAuthentication``: issuer,
signature, endorsements, audience, service URL), with the signing keys fetched without blocking
the event loop, and a token it validated trusted again for the same channel and service URL for
a few minutes (never past its expiry); any refusal is a 401 (botbuilder would answer 500 for a
garbled token). It hands the adapter cached clients (the connector factory of ``connector.py``,
``UserTokenClient``s) where the stock one builds two msrest clients, and their retry policies,
per turn. In local mode (no MICROSOFT_APP_ID) no token is checked, and a request that carries one
is refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import jwt
from botbuilder.integration.aiohttp import (
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    CallerIdConstants,
    ClaimsIdentity,
    ConnectorFactory,
    JwtTokenExtractor,
    UserTokenClient,
)
from jwt.algorithms import RSAAlgorithm

from bot.channels.teams.connector import ConnectorFactory as SessionConnectorFactory
from bot.channels.teams.failures import Refused
from bot.channels.teams.options import TeamsOptions
from bot.channels.teams.tokens import BotTokens
from bot.config import Settings

log = logging.getLogger("bot.channels.teams")

_KEY_REFRESH_SECONDS: Final = 24 * 3600
_UNKNOWN_KEY_REFRESH_SECONDS: Final = 300
# A validated token is trusted again for this long (a key withdrawn from the signing keys stops
# being trusted within it); the Bot Connector's tokens live an hour.
_VALIDATED_SECONDS: Final = 300
_VALIDATED_TOKENS: Final = 1024


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


class Authentication(BotFrameworkAuthentication):  # type: ignore[misc]
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
        self.tokens = BotTokens(
            settings, options, None if self.local else self.credentials_factory, self.login_url
        )
        self.connectors = SessionConnectorFactory(
            self.tokens,
            session,
            options,
            loopback_only=self.local and not settings.teams_local_allow_remote,
        )
        self._user_token_clients: dict[str | None, UserTokenClient] = {}
        self._validated: OrderedDict[tuple[str, str | None, str | None], _Validated] = OrderedDict()
        for url in (
            overrides.get("TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL"),
            overrides.get("TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL"),
            AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL,
            AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL,
        ):
            if url and not isinstance(JwtTokenExtractor.metadataCache.get(url), SigningKeys):
                # botbuilder's own cache fetches with a blocking `requests` call; ours awaits.
                JwtTokenExtractor.metadataCache[url] = SigningKeys(url)

    def check_header(self, auth_header: str) -> None:
        """Refuse (401) a request without a token when tokens are required, or with one in
        local mode. It needs no activity, so the endpoint asks it before reading the body: a
        caller with no token learns nothing about how a body is read."""
        if self.local:
            if auth_header:
                raise Refused(
                    401,
                    "this bot runs in local mode (no MICROSOFT_APP_ID) and takes no tokens",
                    "auth",
                )
        elif not auth_header:
            raise Refused(401, "the request carries no Authorization token", "auth")

    async def authenticate_request(
        self, activity: Activity, auth_header: str
    ) -> AuthenticateRequestResult:
        """Validate the request's token (botbuilder's validation); refusals are 401s. A token
        validated for this channel and service URL is trusted again, without its signature
        checked again, for a few minutes and never past its expiry: the Bot Connector sends the
        same token with every activity for as long as it lives."""
        self.check_header(auth_header)
        # botbuilder reads nothing else of the activity when there is a token.
        key = (auth_header, activity.channel_id, activity.service_url)
        known = self._validated.get(key) if auth_header else None
        if known is not None and time.time() < known.until:
            return known.result()
        try:
            result = await self._botbuilder.authenticate_request(activity, auth_header)
        except KeysUnavailable as error:
            raise Refused(503, f"cannot check tokens now: {error}", "auth_keys") from None
        except Exception as error:  # any failure to validate means: not authorised
            raise Refused(401, f"the token was refused ({_why(error)})", "auth") from None
        identity = result.claims_identity
        if identity is None or not identity.is_authenticated:
            raise Refused(401, "the token was refused", "auth")
        result.connector_factory = self.connectors
        if auth_header:
            self._remember(key, result)
        return result

    def _remember(
        self, key: tuple[str, str | None, str | None], result: AuthenticateRequestResult
    ) -> None:
        expires = result.claims_identity.claims.get("exp")
        if not isinstance(expires, int | float) or isinstance(expires, bool):
            return  # botbuilder requires an exp: nothing to bound the trust by
        until = min(time.time() + _VALIDATED_SECONDS, float(expires))
        self._validated[key] = _Validated(until, result)
        self._validated.move_to_end(key)
        while len(self._validated) > _VALIDATED_TOKENS:
            self._validated.popitem(last=False)

    async def authenticate_streaming_request(
        self, auth_header: str, channel_id_header: str
    ) -> AuthenticateRequestResult:
        raise Refused(405, "streaming is not served", "bad_request")

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return self.connectors

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        app_id = claims_identity.get_claim_value(AuthenticationConstants.AUDIENCE_CLAIM)
        client = self._user_token_clients.get(app_id)
        if client is None:
            client = await self._botbuilder.create_user_token_client(claims_identity)
            self._user_token_clients[app_id] = client
        return client

    def get_originating_audience(self) -> str:
        return str(self._botbuilder.get_originating_audience())


def _why(error: Exception) -> str:
    """A short reason for a refused token, without the token."""
    if isinstance(error, PermissionError | jwt.InvalidTokenError):
        return str(error)[:120] or type(error).__name__
    return type(error).__name__


@dataclass(frozen=True)
class _Validated:
    """A request's validation, and until when it holds for the same token, channel and URL."""

    until: float
    validated: AuthenticateRequestResult

    def result(self) -> AuthenticateRequestResult:
        """A copy for one more request (the adapter reads it; nothing of ours changes it)."""
        result = AuthenticateRequestResult()
        result.claims_identity = self.validated.claims_identity
        result.audience = self.validated.audience
        result.caller_id = self.validated.caller_id
        result.connector_factory = self.validated.connector_factory
        return result


class KeysUnavailable(Exception):
    """The signing keys could not be fetched."""


@dataclass(frozen=True)
class _SigningKey:
    public_key: Any
    endorsements: list[str]


class SigningKeys:
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
                raise KeysUnavailable(f"{self.url}: {type(error).__name__}") from None
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


__all__ = ["Authentication", "KeysUnavailable", "SigningKeys"]
