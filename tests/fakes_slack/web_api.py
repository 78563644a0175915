"""A fake Slack Web API (``/api/<method>``) and file server (``/files/<name>``) on 127.0.0.1.

Every call is recorded with its parameters (form, JSON or query) and headers, so tests assert on
what the bot sent; ``rate_limit`` makes the next calls of a method answer 429 with Retry-After,
``throttle`` makes every n-th call of a method answer so, ``down_for`` every call of a method
for a while (an outage), ``fail`` makes the next calls answer an error, ``answer_page`` the next
call a text that is not JSON, ``delay`` makes a method slow. ``redirect`` makes a file's address
answer 302 to another. ``members`` are the channels'
members (conversations.members hands them out ``members_page`` at a time) and ``users`` the
people's names (users.info).
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
    answer: dict[str, Any] = field(default_factory=dict)  # what the fake answered

    @property
    def ok(self) -> bool:
        """Whether the fake answered ``"ok": true`` (not a 429, not an error)."""
        return bool(self.answer.get("ok"))

    @property
    def blocks(self) -> list[dict[str, Any]]:
        """The call's blocks (chat.postMessage, chat.update), decoded if sent as a string."""
        blocks = self.params.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else list(blocks)

    @property
    def text(self) -> str:
        """The message's fallback text."""
        return str(self.params.get("text") or "")

    @property
    def view(self) -> dict[str, Any]:
        """The call's view (views.open, views.publish), decoded if sent as a string."""
        view = self.params.get("view") or {}
        return json.loads(view) if isinstance(view, str) else dict(view)


class FakeSlackWebAPI:
    """Serves the Web API methods the bot uses; records the calls."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self.redirects: dict[str, str] = {}  # a file's name -> where its address redirects
        self.socket_mode_url: str | None = None
        self.members: dict[str, list[str]] = {}
        self.members_page = 2
        self.users: dict[str, str] = {}
        self._limits: dict[str, list[int]] = {}
        self._throttles: dict[str, tuple[int, int, list[int]]] = {}
        self._failures: dict[str, list[tuple[int, str]]] = {}
        self._outages: dict[str, list[tuple[float, int, int]]] = {}  # (until, status, retry after)
        self.refused_in_outage = 0
        self._delays: dict[str, float] = {}
        self._pages: dict[str, tuple[int, str]] = {}
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

    def throttle(self, method: str, *, every: int, retry_after: int = 1, times: int = 5) -> None:
        """Every ``every``-th call of ``method`` gets 429 with Retry-After, ``times`` in all."""
        self._throttles[method] = (every, retry_after, [0, times])

    def down_for(
        self, method: str, seconds: float, status: int = 500, *, retry_after: int = 1
    ) -> None:
        """Every call of ``method`` answers ``status`` (a 429 with ``Retry-After``, else a 5xx
        with ``internal_error``) for ``seconds``, from when the outage set before ends."""
        windows = self._outages.setdefault(method, [])
        start = max([time.monotonic(), *(until for until, _, _ in windows)])
        windows.append((start + seconds, status, retry_after))

    def outage_over(self, method: str) -> bool:
        """Whether no outage of ``method`` is on or to come."""
        now = time.monotonic()
        return all(until <= now for until, _, _ in self._outages.get(method, ()))

    def fail(self, method: str, error: str, *, times: int = 1, status: int = 200) -> None:
        """The next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}``."""
        self._failures[method] = [(status, error)] * times

    def answer_page(self, method: str, *, status: int = 400, page: str = "Bad Request") -> None:
        """The next call of ``method`` gets a plain text, not JSON (as a proxy in the way, or
        aiohttp refusing a request line, answers)."""
        self._pages[method] = (status, page)

    def delay(self, method: str, seconds: float) -> None:
        """Answer ``method`` only after ``seconds``."""
        self._delays[method] = seconds

    def add_file(self, name: str, content: bytes, content_type: str = "message/rfc822") -> str:
        """Serve a file; return its url_private."""
        self.files[name] = (content, content_type)
        return f"{self.base_url}/files/{name}"

    def redirect(self, name: str, to: str) -> str:
        """Make a file's address answer 302 to ``to``; return the address."""
        self.redirects[name] = to
        return f"{self.base_url}/files/{name}"

    def view_id(self, opened: Call) -> str:
        """The id views.open gave the modal of this call."""
        number = next(i for i, call in enumerate(self.of("views.open"), 1) if call is opened)
        return f"V0MODAL{number:04d}"

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
        call = Call(method, params, dict(request.headers), peer)
        response = await self._respond(method, params, request)
        call.answer = (
            json.loads(response.text or "{}") if response.content_type == "application/json" else {}
        )
        self._record(call)
        return response

    async def _respond(
        self, method: str, params: dict[str, Any], request: web.Request
    ) -> web.Response:
        if self._delays.get(method):
            await asyncio.sleep(self._delays[method])
        windows = self._outages.get(method)
        now = time.monotonic()
        while windows and windows[0][0] <= now:
            windows.pop(0)
        if windows:
            self.refused_in_outage += 1
            _, status, retry_after = windows[0]
            if status == 429:
                return self._ratelimited(retry_after)
            return web.json_response({"ok": False, "error": "internal_error"}, status=status)
        limits = self._limits.get(method)
        if limits:
            return self._ratelimited(limits.pop(0))
        throttle = self._throttles.get(method)
        if throttle is not None:
            every, retry_after, counts = throttle
            counts[0] += 1
            if counts[1] > 0 and counts[0] % every == 0:
                counts[1] -= 1
                return self._ratelimited(retry_after)
        if method in self._pages:
            status, page = self._pages.pop(method)
            return web.Response(status=status, text=page, content_type="text/plain")
        failures = self._failures.get(method)
        if failures:
            status, error = failures.pop(0)
            return web.json_response({"ok": False, "error": error}, status=status)
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.json_response({"ok": False, "error": "not_authed"})
        return web.json_response(self._answer(method, params))

    def _ratelimited(self, retry_after: int) -> web.Response:
        return web.json_response(
            {"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": str(retry_after)},
        )

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
        if method == "views.open":
            view = params.get("view") or {}
            view = json.loads(view) if isinstance(view, str) else view
            return {"ok": True, "view": {**view, "id": f"V0MODAL{len(self.of(method)):04d}"}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"}
        if method == "conversations.members":
            return self._members(params)
        if method == "users.info":
            user = str(params.get("user"))
            if user not in self.users:
                return {"ok": False, "error": "user_not_found"}
            name = self.users[user]
            return {
                "ok": True,
                "user": {
                    "id": user,
                    "name": name.lower().replace(" ", "."),
                    "real_name": name,
                    "profile": {"real_name": name, "display_name": name},
                },
            }
        if method == "apps.connections.open":
            return {"ok": True, "url": self.socket_mode_url}
        if method == "files.info":
            name = str(params.get("file"))
            return {
                "ok": True,
                "file": {"id": name, "url_private_download": f"{self.base_url}/files/{name}"},
            }
        return {"ok": False, "error": "unknown_method"}

    def _members(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel"))
        if channel not in self.members:
            return {"ok": False, "error": "channel_not_found"}
        everyone = self.members[channel]
        start = int(str(params.get("cursor") or "0") or 0)
        end = start + self.members_page
        more = end < len(everyone)
        return {
            "ok": True,
            "members": everyone[start:end],
            "response_metadata": {"next_cursor": str(end) if more else ""},
        }

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self._record(Call("files.download", {"name": name}, dict(request.headers)))
        if name in self.redirects:
            raise web.HTTPFound(self.redirects[name])
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
