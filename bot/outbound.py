"""What every outbound HTTP call of ours shares, whatever the platform: a size-capped download of
a file someone sent, and the reading of a ``Retry-After`` header.

Teams and Slack each fetched files and read Retry-After with a copy of their own, and the copies
drifted (one read HTTP dates, the other did not; one refused a web page, the other did not). The
mechanics live here once, neutral: which hosts a platform trusts with its token, and which words
it says about a refused file, stay with the platform, which reads the typed result below.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Final

import aiohttp
from yarl import URL

from bot.hosts import AllowedHosts, is_loopback_host

#: The longest wait a Retry-After may ask of us; a server asking for more gets this.
RETRY_AFTER_MAX_SECONDS: Final = 3600.0
_CHUNK_BYTES: Final = 64 * 1024
#: Redirects a download follows, each checked against the allow-list (SharePoint and Slack use
#: one or two; more is a loop).
MAX_REDIRECTS: Final = 5
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


# ---- downloads --------------------------------------------------------------------------------


class DownloadProblem(StrEnum):
    """Why a download gave no file: each platform says its own words about each."""

    TOO_LARGE = "too_large"  # over the cap: said by Content-Length, or read past it
    HTTP_STATUS = "http_status"  # the server answered, but not 200
    WEB_PAGE = "web_page"  # an HTML page where a file was expected (a sign-in page, say)
    NETWORK = "network"  # no answer: connection refused, reset, timed out, a bad address
    NOT_ALLOWED = "not_allowed"  # a host (or a redirect's) off the platform's allow-list


@dataclass(frozen=True)
class Downloaded:
    """The file's bytes, all of them, within the cap."""

    content: bytes
    content_type: str


@dataclass(frozen=True)
class DownloadFailed:
    """No file, and why: ``problem`` to decide what to say, ``detail`` for the log (no token
    in it), ``status`` the HTTP status when the server answered."""

    problem: DownloadProblem
    detail: str
    status: int = 0


async def download(
    session: aiohttp.ClientSession,
    url: str,
    *,
    allowed: AllowedHosts,
    max_bytes: int,
    timeout_seconds: float,
    headers: Mapping[str, str] | None = None,
    refuse_web_page: bool = False,
) -> Downloaded | DownloadFailed:
    """GET ``url`` over the app's session and read at most ``max_bytes``: refused at once when
    Content-Length says more, and reading stops as soon as the body goes past it (a server may
    not say, or say wrong). The whole download, body and redirects included, takes at most
    ``timeout_seconds``. With ``refuse_web_page``, a ``text/html`` answer is no file.

    Only URLs ``allowed`` lists are fetched, and only with no user and password in them: the
    first, and each redirect's (up to :data:`MAX_REDIRECTS`), checked before it is requested.
    ``headers`` (a platform's token) go only to those hosts.

    Never raises for what the server or the network does: the result says what happened.
    ``detail`` names a URL by its origin only (no path, no query: they carry names and keys)."""
    timeout = aiohttp.ClientTimeout(total=timeout_seconds)
    try:
        async with asyncio.timeout(timeout_seconds):
            target, status = URL(url), 0
            for _hop in range(MAX_REDIRECTS + 1):
                refused = _off_the_list(target, allowed)
                if refused is not None:
                    return refused
                async with session.get(
                    target,
                    headers=dict(headers or {}),
                    timeout=timeout,
                    allow_redirects=False,
                ) as got:
                    status = got.status
                    location = got.headers.get("Location") if status in _REDIRECTS else None
                    if location is None:
                        return await _read(got, max_bytes, refuse_web_page)
                target = target.join(URL(location))
            return DownloadFailed(
                DownloadProblem.HTTP_STATUS, f"more than {MAX_REDIRECTS} redirects", status
            )
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        return DownloadFailed(DownloadProblem.NETWORK, _network_detail(error))


def origin_of(url: str | URL) -> str:
    """A URL as logs may show it: its scheme, host and port, no path or query (``?`` for a
    string that is no URL)."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        return str(parsed.origin()) if parsed.absolute and parsed.host else "?"
    except ValueError:
        return "?"


def is_loopback_url(url: str) -> bool:
    """Whether an http(s) URL points at this machine (``localhost``, 127.0.0.0/8, ``::1``),
    read as aiohttp will read it when it connects."""
    try:
        parsed = URL(url)
    except ValueError:
        return False
    return parsed.scheme in ("http", "https") and is_loopback_host(parsed.host)


def _off_the_list(target: URL, allowed: AllowedHosts) -> DownloadFailed | None:
    if not target.absolute or target.user is not None or target.password is not None:
        return DownloadFailed(DownloadProblem.NOT_ALLOWED, "not a plain http(s) address")
    if not allowed.allows(target.scheme, target.host, target.port):
        return DownloadFailed(
            DownloadProblem.NOT_ALLOWED, f"{origin_of(target)} is not an allowed file host"
        )
    return None


async def _read(
    got: aiohttp.ClientResponse, max_bytes: int, refuse_web_page: bool
) -> Downloaded | DownloadFailed:
    if got.status != 200:
        return DownloadFailed(DownloadProblem.HTTP_STATUS, f"HTTP {got.status}", got.status)
    if refuse_web_page and got.content_type == "text/html":
        return DownloadFailed(DownloadProblem.WEB_PAGE, "got a web page", got.status)
    if got.content_length is not None and got.content_length > max_bytes:
        return _too_large(got.content_length, max_bytes)
    content = bytearray()
    async for chunk in got.content.iter_chunked(_CHUNK_BYTES):
        content += chunk
        if len(content) > max_bytes:
            return _too_large(len(content), max_bytes)
    return Downloaded(bytes(content), got.content_type)


def _network_detail(error: BaseException) -> str:
    """What went wrong, without the URL (an InvalidURL's message is the URL itself)."""
    if isinstance(error, aiohttp.InvalidURL | ValueError):
        return type(error).__name__
    return str(error) or type(error).__name__


def _too_large(size: int, cap: int) -> DownloadFailed:
    return DownloadFailed(DownloadProblem.TOO_LARGE, f"{size} bytes or more, over {cap}", 200)


# ---- Retry-After ------------------------------------------------------------------------------


def retry_after(
    value: str | Sequence[str] | None,
    *,
    now: float | None = None,
    maximum: float = RETRY_AFTER_MAX_SECONDS,
) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (RFC 9110 10.2.3): delay-seconds ("120";
    a fraction is read too, as some servers send one) or an HTTP-date, the wait until then
    from ``now`` (the clock's time by default). Never below 0 (a date in the past: at once),
    never above ``maximum``. None when there is no header or it says nothing readable; a list
    (how slack_sdk keeps a header) is read by its first value."""
    if value is not None and not isinstance(value, str):
        value = value[0] if value else None
    text = (value or "").strip()
    if not text:
        return None
    seconds: float | None
    try:
        seconds = float(text)
    except ValueError:
        seconds = _until(text, time.time() if now is None else now)
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), maximum)


def _until(http_date: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": HTTP dates are in GMT whatever they say
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - now


__all__ = [
    "MAX_REDIRECTS",
    "RETRY_AFTER_MAX_SECONDS",
    "DownloadFailed",
    "DownloadProblem",
    "Downloaded",
    "download",
    "is_loopback_url",
    "origin_of",
    "retry_after",
]
