"""A fake Slack Web API (``/api/<method>``) and file server (``/files/<name>``) on 127.0.0.1.

Every call is recorded with its parameters (form, JSON or query) and headers, so tests assert on
what the bot sent; ``rate_limit`` makes the next calls of a method answer 429 with Retry-After,
``delay`` makes a method slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

BOT_USER_ID = "U0BOT0001"
BOT_ID = "B0BOT0001"
TEAM_ID = "T0TEAM001"


@dataclass
class Call:
    """One Web API call or file download as the fake received it."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    peer: object = None  # the client's (address, port): one per connection
    at: float = field(default_factory=time.monotonic)

    @property
    def blocks(self) -> list[dict[str, Any]]:
        """The call's blocks (chat.postMessage, chat.update), decoded if sent as a string."""
        blocks = self.params.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else list(blocks)

    @property
    def text(self) -> str:
        """The message's fallback text."""
        return str(self.params.get("text") or "")


class FakeSlackWebAPI:
    """Serves the Web API methods the bot uses; records the calls."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self.socket_mode_url: str | None = None
        self._limits: dict[str, list[int]] = {}
        self._delays: dict[str, float] = {}
        self._ts = itertools.count(1)
        self._changed = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/files/{name}", self._file)
        self._server = TestServer(app, host="127.0.0.1")

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        await self._server.start_server()

    async def close(self) -> None:
        """Stop listening."""
        await self._server.close()

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT"""
        return str(self._server.make_url("")).rstrip("/")

    @property
    def api_url(self) -> str:
        """What SLACK_API_URL points at: http://127.0.0.1:PORT/api/"""
        return f"{self.base_url}/api/"

    # -- control --------------------------------------------------------------------------------

    def rate_limit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """The next ``times`` calls of ``method`` get 429 with ``Retry-After: retry_after``."""
        self._limits[method] = [retry_after] * times

    def delay(self, method: str, seconds: float) -> None:
        """Answer ``method`` only after ``seconds``."""
        self._delays[method] = seconds

    def add_file(self, name: str, content: bytes, content_type: str = "message/rfc822") -> str:
        """Serve a file; return its url_private."""
        self.files[name] = (content, content_type)
        return f"{self.base_url}/files/{name}"

    def of(self, method: str) -> list[Call]:
        """The calls of one method so far, oldest first."""
        return [call for call in self.calls if call.method == method]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Wait until ``method`` was called ``count`` times (in all); return those calls."""
        deadline = time.monotonic() + timeout
        while len(self.of(method)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [call.method for call in self.calls]
                raise AssertionError(f"{method} called {len(self.of(method))}/{count}: {seen}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.2))
        return self.of(method)[:count]

    # -- serving --------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            params.update(await request.post())
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self._record(Call(method, params, dict(request.headers), peer))
        if self._delays.get(method):
            await asyncio.sleep(self._delays[method])
        limits = self._limits.get(method)
        if limits:
            retry_after = limits.pop(0)
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(retry_after)},
            )
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.json_response({"ok": False, "error": "not_authed"})
        return web.json_response(self._answer(method, params))

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://example-team.slack.com/",
                "team": "Example",
                "user": "ndr-helpdesk",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method in ("chat.postMessage", "chat.update"):
            ts = params.get("ts") or f"1700000000.{next(self._ts):06d}"
            return {"ok": True, "channel": params.get("channel"), "ts": ts}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": f"D{str(params.get('users'))[1:]}"}}
        if method == "views.publish":
            return {"ok": True, "view": {"id": "V0VIEW001"}}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.socket_mode_url}
        if method == "files.info":
            name = str(params.get("file"))
            return {
                "ok": True,
                "file": {"id": name, "url_private_download": f"{self.base_url}/files/{name}"},
            }
        return {"ok": False, "error": "unknown_method"}

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self._record(Call("files.download", {"name": name}, dict(request.headers)))
        if name not in self.files:
            return web.Response(status=404)
        content, content_type = self.files[name]
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)  # streamed: no Content-Length, as a lying size would be
        for start in range(0, len(content), 16 * 1024):
            try:
                await response.write(content[start : start + 16 * 1024])
            except ConnectionResetError:
                break  # the bot stopped reading at its size cap
        return response

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._changed.set()
