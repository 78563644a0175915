"""A fake OpenID issuer, on 127.0.0.1: the metadata document and the signing keys botbuilder
fetches to validate the Bot Framework's JWTs, and a local RSA key that signs test tokens.

Tokens signed here pass botbuilder's real validation when the bot is pointed at ``metadata_url``;
``forge`` signs with a key the issuer does not publish, as an attacker would.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CHANNEL_ISSUER = "https://api.botframework.com"  # the "iss" of tokens from the Bot Framework


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class FakeOpenIdIssuer:
    """Publishes one key (id ``kid``) endorsed for ``endorsements`` and signs tokens with it."""

    # A key id of its own: botbuilder's key cache is process-wide and keyed by the metadata URL,
    # so an issuer on a port an earlier test used must not look like that test's key.
    kid: str = field(default_factory=lambda: f"test-key-{uuid.uuid4().hex[:12]}")
    endorsements: tuple[str, ...] = ("msteams", "emulator", "webchat")
    metadata_fetches: int = 0
    key_fetches: int = 0
    _key: rsa.RSAPrivateKey = field(default_factory=_new_key)
    _server: TestServer | None = None

    @property
    def metadata_url(self) -> str:
        """The OpenID metadata document's URL."""
        return f"{self._base}/v1/.well-known/openidconfiguration"

    @property
    def _base(self) -> str:
        assert self._server is not None, "start() the fake first"
        return str(self._server.make_url("")).rstrip("/")

    async def start(self) -> FakeOpenIdIssuer:
        """Listen on 127.0.0.1 on a free port."""
        app = web.Application()
        app.router.add_get("/v1/.well-known/openidconfiguration", self._metadata)
        app.router.add_get("/v1/.well-known/keys", self._keys)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            await self._server.close()

    def token(
        self,
        app_id: str,
        service_url: str,
        *,
        issuer: str = CHANNEL_ISSUER,
        lifetime: int = 3600,
        **extra: Any,
    ) -> str:
        """A token as the Bot Framework sends it to a bot: audience the app id, signed here."""
        claims = {"aud": app_id, "serviceurl": service_url, "iss": issuer, **extra}
        return self._sign(self._key, self.kid, claims, lifetime)

    def forge(self, app_id: str, service_url: str, *, kid: str | None = None) -> str:
        """A well-formed token signed with a key the issuer does not publish."""
        claims = {"aud": app_id, "serviceurl": service_url, "iss": CHANNEL_ISSUER}
        return self._sign(_new_key(), kid or self.kid, claims, 3600)

    @staticmethod
    def _sign(key: rsa.RSAPrivateKey, kid: str, claims: dict[str, Any], lifetime: int) -> str:
        now = int(time.time())
        timed = {"nbf": now - 10, "iat": now - 10, "exp": now + lifetime, **claims}
        return jwt.encode(timed, key, algorithm="RS256", headers={"kid": kid})

    async def _metadata(self, request: web.Request) -> web.Response:
        self.metadata_fetches += 1
        return web.json_response(
            {
                "issuer": CHANNEL_ISSUER,
                "jwks_uri": f"{self._base}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def _keys(self, request: web.Request) -> web.Response:
        self.key_fetches += 1
        public = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        public.update(
            {"kid": self.kid, "use": "sig", "alg": "RS256", "endorsements": list(self.endorsements)}
        )
        return web.json_response({"keys": [public]})
