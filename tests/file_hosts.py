"""A host the bot must never reach: an aiohttp server on 127.0.0.1 that counts every request
(with its headers) and serves whatever is asked, or, at ``/hop?to=URL``, redirects there.

Tests point a file's address, a redirect or a ``serviceUrl`` at it, on a port no allow-list
names, and assert it was never asked (and so never saw a token)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class CountingHost:
    """Counts what reaches it; ``start`` before use, ``close`` after."""

    address: str = "127.0.0.1"  # where it listens (a non-loopback address of this machine too)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # path, headers
    _server: TestServer | None = None

    async def start(self) -> CountingHost:
        """Listen on a free port of ``address``."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._anything)
        self._server = TestServer(app, host=self.address)
        await self._server.start_server()
        return self

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            await self._server.close()

    @property
    def origin(self) -> str:
        """http://ADDRESS:PORT"""
        assert self._server is not None, "start() it first"
        return str(self._server.make_url("")).rstrip("/")

    def url(self, path: str) -> str:
        """An address on this host."""
        return f"{self.origin}{path}"

    def hop(self, to: str) -> str:
        """An address on this host that redirects (302) to ``to``."""
        return f"{self.origin}/hop?to={to}"

    async def _anything(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.headers)))
        if request.path == "/hop":
            raise web.HTTPFound(request.query["to"])
        if request.method == "POST":  # a reply, as a Bot Connector would take it
            return web.json_response({"id": f"act-{len(self.requests)}"})
        return web.Response(body=b"From: a@b.c\n\nnot for the bot", content_type="message/rfc822")


def own_address() -> str | None:
    """A non-loopback IPv4 address of this machine (the one its default route leaves from), or
    None where it has none (a loopback-only namespace). No packet is sent to find it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: a route is looked up, nothing sent
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_loopback else address
