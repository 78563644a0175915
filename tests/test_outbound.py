"""bot/outbound.py by itself: the size-capped download against a real aiohttp server on
127.0.0.1 (a file, one too large by its Content-Length, one that never ends, an error status, a
web page, a server that does not answer, no server at all), the allow-list of file hosts (a host
off it, and a redirect to one, never asked; every redirect checked), and the Retry-After
parser."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from bot.config import load_settings
from bot.hosts import AllowedHosts
from bot.outbound import (
    MAX_REDIRECTS,
    RETRY_AFTER_MAX_SECONDS,
    Downloaded,
    DownloadFailed,
    DownloadProblem,
    download,
    retry_after,
)

CAP = 1000


@dataclass
class FileServer:
    """Files on 127.0.0.1, each route one way a server can answer; counts what it was asked."""

    server: TestServer
    requests: list[web.Request] = field(default_factory=list)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    @property
    def origin(self) -> str:
        return self.url("").rstrip("/")

    @property
    def allowed(self) -> AllowedHosts:
        """This server, and no other, as the allow-list."""
        return AllowedHosts([self.origin])


@pytest.fixture
async def files() -> AsyncIterator[FileServer]:
    app = web.Application()
    served = FileServer(TestServer(app, host="127.0.0.1"))

    async def small(request: web.Request) -> web.Response:
        served.requests.append(request)
        return web.Response(body=b"x" * CAP, content_type="message/rfc822")

    async def declared_large(request: web.Request) -> web.Response:
        served.requests.append(request)
        return web.Response(body=b"x" * (CAP + 1), content_type="application/octet-stream")

    async def endless(request: web.Request) -> web.StreamResponse:
        served.requests.append(request)
        response = web.StreamResponse()  # chunked: no Content-Length to go by
        await response.prepare(request)
        while True:
            await response.write(b"x" * 100)
            await asyncio.sleep(0.001)

    async def gone(request: web.Request) -> web.Response:
        served.requests.append(request)
        return web.Response(status=404, text="no such file")

    async def page(request: web.Request) -> web.Response:
        served.requests.append(request)
        return web.Response(text="<html>Sign in</html>", content_type="text/html")

    async def slow(request: web.Request) -> web.Response:
        served.requests.append(request)
        await asyncio.sleep(5)
        return web.Response(body=b"late")

    async def hop(request: web.Request) -> web.Response:
        served.requests.append(request)
        raise web.HTTPFound(request.query["to"])

    for path, handler in {
        "/hop": hop,
        "/small.eml": small,
        "/large.eml": declared_large,
        "/endless.eml": endless,
        "/gone.eml": gone,
        "/page.html": page,
        "/slow.eml": slow,
    }.items():
        app.router.add_get(path, handler)
    await served.server.start_server()
    try:
        yield served
    finally:
        await served.server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


async def test_a_file_within_the_cap_is_read_whole_with_the_headers_given(
    files: FileServer, session: aiohttp.ClientSession
) -> None:
    got = await download(
        session,
        files.url("/small.eml"),
        allowed=files.allowed,
        max_bytes=CAP,
        timeout_seconds=5,
        headers={"Authorization": "Bearer xoxb-test"},
    )
    assert got == Downloaded(b"x" * CAP, "message/rfc822")
    (request,) = files.requests
    assert request.headers["Authorization"] == "Bearer xoxb-test"


async def test_a_file_over_the_cap_by_its_content_length_is_refused(
    files: FileServer, session: aiohttp.ClientSession
) -> None:
    got = await download(
        session, files.url("/large.eml"), allowed=files.allowed, max_bytes=CAP, timeout_seconds=5
    )
    assert isinstance(got, DownloadFailed)
    assert got.problem is DownloadProblem.TOO_LARGE


async def test_a_file_that_does_not_say_its_size_is_read_no_further_than_the_cap(
    files: FileServer, session: aiohttp.ClientSession
) -> None:
    got = await download(
        session, files.url("/endless.eml"), allowed=files.allowed, max_bytes=CAP, timeout_seconds=5
    )
    assert isinstance(got, DownloadFailed)
    assert got.problem is DownloadProblem.TOO_LARGE, "stopped at the cap, not by the timeout"


async def test_an_error_status_is_said_with_its_status(
    files: FileServer, session: aiohttp.ClientSession
) -> None:
    got = await download(
        session, files.url("/gone.eml"), allowed=files.allowed, max_bytes=CAP, timeout_seconds=5
    )
    assert got == DownloadFailed(DownloadProblem.HTTP_STATUS, "HTTP 404", 404)


async def test_a_web_page_is_no_file_when_a_file_is_expected(
    files: FileServer, session: aiohttp.ClientSession
) -> None:
    url = files.url("/page.html")
    got = await download(
        session, url, allowed=files.allowed, max_bytes=CAP, timeout_seconds=5, refuse_web_page=True
    )
    assert isinstance(got, DownloadFailed)
    assert got.problem is DownloadProblem.WEB_PAGE
    # An HTML file someone sent on purpose is read.
    page = await download(session, url, allowed=files.allowed, max_bytes=CAP, timeout_seconds=5)
    assert page == Downloaded(b"<html>Sign in</html>", "text/html")


async def test_a_server_that_does_not_answer_in_time_is_a_network_problem(
    files: FileServer, session: aiohttp.ClientSession
) -> None:
    got = await download(
        session, files.url("/slow.eml"), allowed=files.allowed, max_bytes=CAP, timeout_seconds=0.2
    )
    assert isinstance(got, DownloadFailed)
    assert (got.problem, got.detail) == (DownloadProblem.NETWORK, "TimeoutError")


async def test_no_server_at_all_is_a_network_problem(session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/bounce.eml"
    allowed = AllowedHosts([f"http://127.0.0.1:{port}"])
    got = await download(session, url, allowed=allowed, max_bytes=CAP, timeout_seconds=5)
    assert isinstance(got, DownloadFailed)
    assert got.problem is DownloadProblem.NETWORK
    assert got.detail


# ---- the allow-list of file hosts -------------------------------------------------------------


@pytest.fixture
async def elsewhere() -> AsyncIterator[FileServer]:
    """A second server, on a port off every list: it counts what reaches it, and serves a file."""
    app = web.Application()
    served = FileServer(TestServer(app, host="127.0.0.1"))

    async def anything(request: web.Request) -> web.Response:
        served.requests.append(request)
        return web.Response(body=b"secret", content_type="message/rfc822")

    app.router.add_get("/{tail:.*}", anything)
    await served.server.start_server()
    try:
        yield served
    finally:
        await served.server.close()


async def test_a_host_off_the_list_is_never_asked(
    files: FileServer, elsewhere: FileServer, session: aiohttp.ClientSession
) -> None:
    got = await download(
        session,
        elsewhere.url("/bounce.eml?tempauth=secret-key"),
        allowed=files.allowed,
        max_bytes=CAP,
        timeout_seconds=5,
        headers={"Authorization": "Bearer xoxb-test"},
    )
    assert isinstance(got, DownloadFailed)
    assert got.problem is DownloadProblem.NOT_ALLOWED
    assert elsewhere.requests == [], "not even connected to"
    assert got.detail == f"{elsewhere.origin} is not an allowed file host"
    assert "secret-key" not in got.detail
    assert "bounce" not in got.detail


async def test_the_same_host_by_another_name_or_scheme_is_off_the_list(
    files: FileServer, session: aiohttp.ClientSession
) -> None:
    by_name = files.url("/small.eml").replace("127.0.0.1", "localhost")
    over_https = files.url("/small.eml").replace("http://", "https://")
    with_user = files.url("/small.eml").replace("http://", "http://user:pw@")
    for url in (by_name, over_https, with_user):
        got = await download(session, url, allowed=files.allowed, max_bytes=CAP, timeout_seconds=5)
        assert isinstance(got, DownloadFailed), url
        assert got.problem is DownloadProblem.NOT_ALLOWED, url
    assert files.requests == []


async def test_a_redirect_off_the_list_is_not_followed(
    files: FileServer, elsewhere: FileServer, session: aiohttp.ClientSession
) -> None:
    url = files.url("/hop") + "?to=" + elsewhere.url("/stolen.eml")
    got = await download(
        session,
        url,
        allowed=files.allowed,
        max_bytes=CAP,
        timeout_seconds=5,
        headers={"Authorization": "Bearer xoxb-test"},
    )
    assert isinstance(got, DownloadFailed)
    assert got.problem is DownloadProblem.NOT_ALLOWED
    assert len(files.requests) == 1, "the listed host was asked"
    assert elsewhere.requests == [], "the host it redirected to was not"


async def test_a_redirect_on_the_list_is_followed_with_the_headers(
    files: FileServer, session: aiohttp.ClientSession
) -> None:
    got = await download(
        session,
        files.url("/hop") + "?to=/small.eml",
        allowed=files.allowed,
        max_bytes=CAP,
        timeout_seconds=5,
        headers={"Authorization": "Bearer xoxb-test"},
    )
    assert got == Downloaded(b"x" * CAP, "message/rfc822")
    assert [request.path for request in files.requests] == ["/hop", "/small.eml"]
    assert files.requests[1].headers["Authorization"] == "Bearer xoxb-test"


async def test_a_redirect_loop_ends(files: FileServer, session: aiohttp.ClientSession) -> None:
    loop = files.url("/hop") + "?to=/hop%3Fto%3D/hop"
    got = await download(session, loop, allowed=files.allowed, max_bytes=CAP, timeout_seconds=5)
    assert isinstance(got, DownloadFailed)
    assert got.problem is DownloadProblem.HTTP_STATUS
    assert len(files.requests) <= MAX_REDIRECTS + 1


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://contoso.sharepoint.com/personal/a/file.eml", True),
        ("https://contoso-my.sharepoint.com/_layouts/15/download.aspx?UniqueId=1", True),
        ("https://smba.trafficmanager.net/amer/v3/attachments/0-eus-d6-1/views/original", True),
        ("https://us-api.asm.skype.com/v1/objects/0-eus-d1-5/views/imgo", True),
        ("https://directline.botframework.com/attachments/x", True),
        ("http://contoso.sharepoint.com/file.eml", False),  # https only
        ("https://contoso.sharepoint.com:8443/file.eml", False),  # its port only
        ("https://sharepoint.com.evil.example/file.eml", False),
        ("https://evilsharepoint.com/file.eml", False),
        ("https://169.254.169.254/latest/meta-data", False),
        ("http://127.0.0.1:8080/admin", False),
    ],
)
def test_the_default_teams_hosts_are_microsofts_own(url: str, allowed: bool) -> None:
    hosts = AllowedHosts(load_settings({}).teams_attachment_hosts)
    parsed = URL(url)
    assert hosts.allows(parsed.scheme, parsed.host, parsed.port) is allowed


# ---- Retry-After ------------------------------------------------------------------------------

NOW = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)


def http_date(when: datetime) -> str:
    return format_datetime(when, usegmt=True)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("0.2", 0.2),  # not RFC 9110's delay-seconds, but servers send it
        ("-5", 0.0),
        (["3", "9"], 3.0),  # slack_sdk keeps each header as a list: the first one
    ],
)
def test_retry_after_in_seconds(header: str | list[str], seconds: float) -> None:
    assert retry_after(header) == pytest.approx(seconds)


def test_retry_after_as_an_http_date() -> None:
    now = NOW.timestamp()
    assert retry_after(http_date(NOW + timedelta(seconds=90)), now=now) == pytest.approx(90)
    assert retry_after(http_date(NOW - timedelta(hours=2)), now=now) == 0.0, "past: at once"
    # An obsolete form (RFC 850) and a zone of "-0000" are read as GMT too.
    assert retry_after("Friday, 14-Mar-25 09:27:53 GMT", now=now) == pytest.approx(60)
    assert retry_after("Fri, 14 Mar 2025 09:28:53 -0000", now=now) == pytest.approx(120)


def test_retry_after_from_the_clock_by_default() -> None:
    later = http_date(datetime.now(UTC) + timedelta(seconds=30))
    wait = retry_after(later)
    assert wait is not None
    assert 25 <= wait <= 30


@pytest.mark.parametrize(
    "header", [None, "", "   ", [], "soon", "nan", "Fri, 99 Foo 2025", "12 seconds"]
)
def test_retry_after_that_says_nothing_readable(header: str | list[str] | None) -> None:
    assert retry_after(header) is None


@pytest.mark.parametrize("header", ["99999999", "1e300", "inf"])
def test_retry_after_is_bounded(header: str) -> None:
    assert retry_after(header) == RETRY_AFTER_MAX_SECONDS
    assert retry_after(header, maximum=60) == 60
    far = http_date(NOW + timedelta(days=365))
    assert retry_after(far, now=NOW.timestamp()) == RETRY_AFTER_MAX_SECONDS
