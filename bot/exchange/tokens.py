"""The app's own token for Exchange Online's admin API: client credentials through MSAL.

MSAL keeps the token in its cache and hands it out again until five minutes before it expires
(``acquire_token_for_client`` looks in the cache first since MSAL 1.23), then asks Entra ID for
a new one. MSAL is synchronous (it speaks ``requests``), so every call runs in a thread: a slow
sign-in never stalls the event loop. Building the MSAL app reads the authority's OpenID
configuration over the network, so it is built on first use, in that thread too, and built
again if that failed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from requests import RequestException
from requests.adapters import HTTPAdapter
from yarl import URL

from bot.config import Settings

log = logging.getLogger(__name__)

#: Entra ID's own sign-in hosts (the public cloud and the national ones): MSAL validates these
#: itself; any other host (a test's, a private gateway's) is taken as it is.
_MICROSOFT_AUTHORITIES: Final = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.partner.microsoftonline.cn",
        "login.chinacloudapi.cn",
    }
)
#: Entra ID's answers that mean the app itself is refused (a wrong secret, a certificate not
#: uploaded, an app not consented in this tenant): trying again will not help.
_REFUSED: Final = frozenset(
    {"invalid_client", "unauthorized_client", "invalid_grant", "invalid_scope"}
)


@dataclass(frozen=True)
class TokenFailed(Exception):
    """No token: ``denied`` when Entra ID refused the app, ``unavailable`` when it did not
    answer; ``detail`` is Entra ID's first line (an AADSTS code and its words, never a secret)."""

    problem: str
    detail: str

    def __str__(self) -> str:
        return self.detail


def scope_for(api_url: str) -> str:
    """The token's scope: the admin API's origin and ``/.default`` (the app's granted roles),
    https://outlook.office365.com/.default for the public cloud."""
    return f"{URL(api_url).origin()}/.default"


def client_credential(settings: Settings) -> str | dict[str, str]:
    """The secret, or the certificate as MSAL takes it: the PEM's private key and the SHA-1
    thumbprint of its certificate (the x5t Entra ID finds the uploaded certificate by)."""
    secret = settings.exchange_client_secret
    if secret is not None and secret.get_secret_value():
        return secret.get_secret_value()
    assert settings.exchange_certificate_path is not None  # noqa: S101 - Settings checked it
    pem = Path(settings.exchange_certificate_path).read_bytes()
    certificate = x509.load_pem_x509_certificate(pem)
    thumbprint = certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - x5t is SHA-1
    return {"private_key": pem.decode("ascii"), "thumbprint": thumbprint}


class AppToken:
    """The app-only bearer token for one tenant, cached by MSAL and asked for off the loop."""

    def __init__(self, settings: Settings) -> None:
        """Read the app registration from ``settings``; nothing is fetched yet."""
        assert settings.exchange_tenant_id  # noqa: S101 - callers check exchange_enabled
        assert settings.exchange_client_id  # noqa: S101
        self._settings = settings
        self._authority = f"{settings.exchange_authority_url}/{settings.exchange_tenant_id}"
        self._scopes = [scope_for(settings.exchange_api_url)]
        self._app: msal.ConfidentialClientApplication | None = None
        self._building = asyncio.Lock()

    async def get(self) -> str:
        """A token valid for five minutes at least; raises :class:`TokenFailed`."""
        app = await self._msal_app()
        try:
            result: dict[str, Any] = await asyncio.to_thread(
                app.acquire_token_for_client, scopes=self._scopes
            )
        except (RequestException, ValueError) as error:
            raise TokenFailed("unavailable", _first_line(str(error))) from None
        token = result.get("access_token")
        if isinstance(token, str) and token:
            return token
        error_code = str(result.get("error") or "")
        problem = "denied" if error_code in _REFUSED else "unavailable"
        raise TokenFailed(problem, _first_line(str(result.get("error_description") or error_code)))

    async def forget(self) -> None:
        """Drop the cached token (the API refused it: revoked, or its roles changed), so the
        next call signs in again."""
        if self._app is not None:
            await asyncio.to_thread(self._app.remove_tokens_for_client)

    async def _msal_app(self) -> msal.ConfidentialClientApplication:
        async with self._building:
            if self._app is None:
                try:
                    self._app = await asyncio.to_thread(self._build)
                except (RequestException, ValueError) as error:
                    raise TokenFailed("unavailable", _first_line(str(error))) from None
            return self._app

    def _build(self) -> msal.ConfidentialClientApplication:
        settings = self._settings
        microsoft = URL(settings.exchange_authority_url).host in _MICROSOFT_AUTHORITIES
        return msal.ConfidentialClientApplication(
            settings.exchange_client_id,
            client_credential=client_credential(settings),
            authority=self._authority,
            validate_authority=microsoft,
            instance_discovery=microsoft,
            http_client=_Requests(
                settings.exchange_ca_bundle or True, settings.exchange_timeout_seconds
            ),
        )


class _Requests(requests.Session):
    """The HTTP client MSAL signs in with: MSAL's own (``verify=``, ``timeout=``) sets the CA
    bundle on the session, and requests lets REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE override a
    session's (psf/requests#3829), so EXCHANGE_CA_BUNDLE would be ignored wherever those are
    set. Given per request, it holds; every request is bounded by the timeout too."""

    def __init__(self, verify: str | bool, timeout: float) -> None:
        super().__init__()
        self._verify = verify
        self._timeout = timeout
        adapter = HTTPAdapter(max_retries=1)  # as MSAL's own: one retry of a dropped connection
        self.mount("https://", adapter)

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        """A request with our CA bundle and timeout unless the caller gave its own."""
        if kwargs.get("verify") is None:
            kwargs["verify"] = self._verify
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


def _first_line(text: str) -> str:
    """Entra ID's words up to the first line break (its trace and correlation ids follow)."""
    line = text.strip().splitlines()[0] if text.strip() else "no answer"
    return line[:300]


__all__ = ["AppToken", "TokenFailed", "client_credential", "scope_for"]
