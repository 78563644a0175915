"""Cmdlets over Exchange Online's admin API: ``POST {EXCHANGE_API_URL}/{tenant}/InvokeCommand``.

The endpoint is the one Microsoft's ExchangeOnlineManagement module (v3, the REST one) calls;
Microsoft does not document it on its own. A body is ``{"CmdletInput": {"CmdletName": ...,
"Parameters": {...}}}``; an answer is ``{"value": [...]}``, paged by ``@odata.nextLink``, which is
posted again with the same body. ``Set-*`` cmdlets answer nothing: whoever changes a recipient
reads it back (``directory.py``).

Each call is bounded as a whole (EXCHANGE_TIMEOUT_SECONDS: pages and retries included). A
throttled call (429, 503, or the "concurrent requests per tenant" words) is tried again after
the ``Retry-After`` it was given, read by ``bot/outbound.py``, and given up as ``unavailable``
when that wait is longer than :data:`LONGEST_WAIT` or the attempts run out: a person waits on
the answer, and no answer beats a hang.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
from yarl import URL

from bot.config import Settings
from bot.exchange.answers import Problem, error_line, is_throttled, problem_of
from bot.exchange.tokens import AppToken, TokenFailed
from bot.outbound import origin_of, retry_after

log = logging.getLogger(__name__)

#: The longest Retry-After a call waits out; longer, and the answer is "unavailable".
LONGEST_WAIT: Final = 10.0
#: Attempts per page when throttled (the first one included).
ATTEMPTS: Final = 4
#: The wait before a retry when the answer names none: 1 s, 2 s, 4 s.
_BACKOFF: Final = 1.0
#: Pages one call follows at most (Exchange's pages hold 1000 objects; a loop is a bug).
MAX_PAGES: Final = 50
#: The mailbox the admin API routes an app's calls to (as the ExchangeOnlineManagement
#: module sends it for app-only sign-in).
SYSTEM_MAILBOX: Final = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}"


@dataclass(frozen=True)
class CmdletFailed(Exception):
    """A cmdlet gave no answer: what kind of problem, and one line of Exchange's words."""

    problem: Problem
    detail: str

    def __str__(self) -> str:
        return self.detail


class CmdletClient:
    """Runs cmdlets for one tenant over the app's aiohttp session, as the app itself."""

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession,
        token: AppToken | None = None,
        *,
        longest_wait: float = LONGEST_WAIT,
    ) -> None:
        """``settings`` name the tenant and the API (Exchange must be configured)."""
        assert settings.exchange_tenant_id  # noqa: S101 - callers check exchange_enabled
        self._session = session
        self._token = token or AppToken(settings)
        self._url = URL(f"{settings.exchange_api_url}/{settings.exchange_tenant_id}/InvokeCommand")
        self._anchor = f"APP:{SYSTEM_MAILBOX}@{settings.exchange_tenant_id}"
        self._timeout = settings.exchange_timeout_seconds
        self._longest_wait = longest_wait
        self._ssl: ssl.SSLContext | bool = True
        if settings.exchange_ca_bundle:
            self._ssl = ssl.create_default_context(cafile=settings.exchange_ca_bundle)

    async def run(self, cmdlet: str, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every object the cmdlet answers, all pages read; [] for a ``Set-*``. Raises
        :class:`CmdletFailed`, never anything else for what Exchange or the network does."""
        body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": dict(parameters)}}
        try:
            async with asyncio.timeout(self._timeout):
                return await self._pages(body)
        except TimeoutError:
            raise CmdletFailed(
                "unavailable", f"{cmdlet}: no answer within {self._timeout:g} s"
            ) from None
        except TokenFailed as error:
            raise CmdletFailed(_token_problem(error.problem), error.detail) from None
        except aiohttp.ClientError as error:
            raise CmdletFailed("unavailable", f"{cmdlet}: {type(error).__name__}") from None

    async def _pages(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        url: URL | None = self._url
        for _page in range(MAX_PAGES):
            if url is None:
                return found
            answer = await self._post(url, body)
            value = answer.get("value")
            if isinstance(value, list):
                found.extend(item for item in value if isinstance(item, dict))
            url = self._next_page(answer.get("@odata.nextLink"))
        raise CmdletFailed("unavailable", f"more than {MAX_PAGES} pages")

    def _next_page(self, link: object) -> URL | None:
        """The next page's URL, only on the API's own origin: the token goes nowhere else."""
        if not isinstance(link, str) or not link:
            return None
        url = self._url.join(URL(link))
        if url.origin() != self._url.origin():
            raise CmdletFailed("unavailable", f"a next page on {origin_of(url)}, not followed")
        return url

    async def _post(self, url: URL, body: dict[str, Any]) -> dict[str, Any]:
        """One page: throttling waited out, a refused token renewed once."""
        renewed = False
        attempt = 0
        while True:
            attempt += 1
            headers = {
                "Authorization": f"Bearer {await self._token.get()}",
                "X-AnchorMailbox": self._anchor,
                "Accept": "application/json",
            }
            async with self._session.post(url, json=body, headers=headers, ssl=self._ssl) as got:
                text = await got.text(errors="replace")
                status, kind = got.status, got.content_type
                wait = retry_after(got.headers.get("Retry-After"))
            if status == 401 and not renewed:  # expired or revoked early: sign in once more
                renewed = True
                await self._token.forget()
                continue
            if is_throttled(status, text):
                await self._wait_out(body, status, attempt, wait)
                continue
            if 200 <= status < 300:
                return _json_object(text)
            detail = error_line(status, text, kind)
            raise CmdletFailed(problem_of(status, f"{text} {detail}"), detail)

    async def _wait_out(
        self, body: dict[str, Any], status: int, attempt: int, wait: float | None
    ) -> None:
        cmdlet = body["CmdletInput"]["CmdletName"]
        wait = _BACKOFF * 2 ** (attempt - 1) if wait is None else wait
        if attempt >= ATTEMPTS or wait > self._longest_wait:
            raise CmdletFailed(
                "unavailable", f"{cmdlet}: Exchange is busy (HTTP {status}), try again later"
            )
        log.info("exchange throttled", extra={"cmdlet": cmdlet, "status": status, "wait_s": wait})
        await asyncio.sleep(wait)


def _json_object(text: str) -> dict[str, Any]:
    """A success's body: an object, or nothing at all (some ``Set-*`` answers are empty)."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        raise CmdletFailed("unavailable", "an answer that is not JSON") from None
    if not isinstance(data, dict):
        raise CmdletFailed("unavailable", "an answer that is not a JSON object")
    return data


def _token_problem(problem: str) -> Problem:
    return "denied" if problem == "denied" else "unavailable"


__all__ = ["ATTEMPTS", "LONGEST_WAIT", "SYSTEM_MAILBOX", "CmdletClient", "CmdletFailed"]
