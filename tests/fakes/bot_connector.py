"""A fake Bot Connector (the REST service a Teams bot posts its replies to), on 127.0.0.1.

It records every activity the bot sends (new ones, replies, updates) with its headers, answers
429 with Retry-After or 5xx on demand (or every n-th call: ``throttle``, or every call for a
while: ``down_for``, an outage), answers 404 for an
update of a message that is gone, serves the conversations' members (the members API), and serves
files for the bot to download (what a Teams ``file.download.info`` attachment points at). Point
an activity's ``serviceUrl`` at ``url``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass(frozen=True)
class Posted:
    """One call the bot made: ``kind`` is "send", "reply" or "update"."""

    kind: str
    conversation_id: str
    activity_id: str | None  # the activity replied to or updated (None for "send")
    activity: dict[str, Any]
    headers: dict[str, str]
    new_id: str = ""  # the id the fake gave it (the updated one's for "update")

    @property
    def text(self) -> str:
        """The activity's text (a card's fallback for card activities)."""
        return str(self.activity.get("text") or "")

    @property
    def cards(self) -> list[dict[str, Any]]:
        """The Adaptive Cards the activity carries."""
        return [
            attachment["content"]
            for attachment in self.activity.get("attachments") or []
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]


@dataclass
class _Failure:
    status: int
    retry_after: str | None
    body: str


@dataclass
class _File:
    content: bytes
    content_type: str
    declare_length: bool


@dataclass
class FakeBotConnector:
    """Records what the bot posts; ``fail_next`` queues error answers for the next calls."""

    posted: list[Posted] = field(default_factory=list)
    log: list[Posted] = field(default_factory=list)  # everything recorded; ``take`` keeps it
    attempts: int = 0  # every call, failed ones included
    failures: list[_Failure] = field(default_factory=list)
    files: dict[str, _File] = field(default_factory=dict)
    downloads: int = 0
    delay: float = 0.0  # seconds each activity call takes
    record: bool = True  # the benchmark turns recording off to keep memory flat
    members: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # by conversation
    member_lookups: int = 0
    gone: set[str] = field(default_factory=set)  # message ids whose update answers 404
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)  # message id -> as it is now
    throttled: int = 0  # 429s answered by ``throttle``
    _throttle: tuple[int, str, int] | None = None  # every n-th call, Retry-After, how many left
    _outages: list[tuple[float, _Failure]] = field(default_factory=list)  # (until, answer)
    refused_in_outage: int = 0  # calls answered by ``down_for``
    _armed: list[tuple[float, _Failure]] = field(default_factory=list)  # (seconds, answer)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _looked: int = 0
    _server: TestServer | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    # -- control ------------------------------------------------------------------------------

    def fail_next(
        self, status: int, *, times: int = 1, retry_after: str | None = None, body: str = ""
    ) -> None:
        """Answer the next ``times`` activity calls with ``status`` (and Retry-After)."""
        self.failures += [_Failure(status, retry_after, body) for _ in range(times)]

    def down_for(
        self, seconds: float, status: int = 503, *, retry_after: str | None = None
    ) -> None:
        """Answer every activity call with ``status`` (and Retry-After) for ``seconds``, starting
        when the outage set before ends (now, if none): an outage of the Bot Connector."""
        start = max([time.monotonic(), *(until for until, _ in self._outages)])
        self._outages.append((start + seconds, _Failure(status, retry_after, "")))

    def down_from_first_call(
        self, seconds: float, status: int = 503, *, retry_after: str | None = None
    ) -> None:
        """As ``down_for``, but the outage (after any armed before it) starts with the next
        activity call rather than now: a probe's turns are in flight when it begins, however
        long the bot took to get there."""
        self._armed.append((seconds, _Failure(status, retry_after, "")))

    def up(self) -> None:
        """End every outage now."""
        self._outages.clear()
        self._armed.clear()

    @property
    def outage_over(self) -> bool:
        """Whether no outage is on or to come."""
        now = time.monotonic()
        return not self._armed and all(until <= now for until, _ in self._outages)

    def throttle(self, *, every: int, retry_after: str = "0.01", times: int = 1000) -> None:
        """Answer every ``every``-th activity call with 429 and Retry-After (``times`` in all)."""
        self._throttle = (every, retry_after, times)

    def add_member(
        self, conversation_id: str, user_id: str, name: str, aad_object_id: str = ""
    ) -> None:
        """Make a user a member of a conversation (a team or channel id) for the members API."""
        member = {"id": user_id, "name": name, "aadObjectId": aad_object_id}
        self.members.setdefault(conversation_id, []).append(member)

    def serve_file(
        self,
        name: str,
        content: bytes,
        *,
        content_type: str = "application/octet-stream",
        declare_length: bool = True,
    ) -> str:
        """Serve ``content`` at the returned URL (chunked, no Content-Length, if not declared)."""
        self.files[name] = _File(content, content_type, declare_length)
        return f"{self.url}/files/{name}"

    @property
    def url(self) -> str:
        """The base URL to use as an activity's ``serviceUrl``."""
        assert self._server is not None, "start() the fake first"
        return str(self._server.make_url("")).rstrip("/")

    async def start(self) -> FakeBotConnector:
        """Listen on 127.0.0.1 on a free port."""
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities", self._send)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._reply)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._update)
        app.router.add_get("/v3/conversations/{conversation}/members/{member}", self._member)
        app.router.add_get("/v3/conversations/{conversation}/pagedmembers", self._paged_members)
        app.router.add_get("/files/{name}", self._file)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            await self._server.close()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Posted]:
        """Wait until at least ``count`` activities were recorded; return them all."""
        async with asyncio.timeout(timeout):
            while len(self.posted) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.posted

    async def wait_until(
        self, condition: Callable[[list[Posted]], bool], timeout: float = 5.0
    ) -> list[Posted]:
        """Wait until ``condition(everything recorded)`` holds (``take`` forgets nothing of
        ``log``); return the log."""
        async with asyncio.timeout(timeout):
            while not condition(self.log):
                self._changed.clear()
                await self._changed.wait()
        return self.log

    def since_last_look(self) -> list[Posted]:
        """What was recorded since the last call (``take`` does not count)."""
        seen, self._looked = self._looked, len(self.log)
        return self.log[seen:]

    def take(self) -> list[Posted]:
        """The activities recorded so far, forgetting them."""
        taken, self.posted = self.posted, []
        return taken

    # -- handlers -----------------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.Response:
        return await self._record(request, "send")

    async def _reply(self, request: web.Request) -> web.Response:
        return await self._record(request, "reply")

    async def _update(self, request: web.Request) -> web.Response:
        return await self._record(request, "update")

    async def _record(self, request: web.Request, kind: str) -> web.Response:
        self.attempts += 1
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        now = time.monotonic()
        for seconds, failure in self._armed:  # the first call since they were armed
            start = max([now, *(until for until, _ in self._outages)])
            self._outages.append((start + seconds, failure))
        self._armed.clear()
        while self._outages and self._outages[0][0] <= now:
            self._outages.pop(0)
        if self._outages:
            self.refused_in_outage += 1
            failure = self._outages[0][1]
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return web.Response(status=failure.status, text=failure.body, headers=headers)
        if self.failures:
            failure = self.failures.pop(0)
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return web.Response(status=failure.status, text=failure.body, headers=headers)
        if self._throttle is not None:
            every, retry_after, left = self._throttle
            if left > 0 and self.attempts % every == 0:
                self._throttle = (every, retry_after, left - 1)
                self.throttled += 1
                body = {"error": {"code": "TooManyRequests"}}
                return web.json_response(body, status=429, headers={"Retry-After": retry_after})
        if kind == "update" and request.match_info["activity"] in self.gone:
            return web.json_response({"error": {"code": "ActivityNotFound"}}, status=404)
        try:
            activity = json.loads(body)
        except ValueError:
            return web.json_response({"error": {"code": "BadArgument"}}, status=400)
        if not isinstance(activity, dict) or not activity.get("type"):
            return web.json_response({"error": {"code": "BadArgument"}}, status=400)
        new_id = f"act-{next(self._ids)}"
        replied_to = request.match_info.get("activity")
        given = replied_to if kind == "update" and replied_to else new_id
        if self.record:
            self.posted.append(
                Posted(
                    kind,
                    request.match_info["conversation"],
                    replied_to,
                    activity,
                    dict(request.headers),
                    given,
                )
            )
            self.log.append(self.posted[-1])
            self.latest[given] = activity
            self._changed.set()
        return web.json_response({"id": request.match_info.get("activity", new_id)})

    async def _member(self, request: web.Request) -> web.Response:
        self.member_lookups += 1
        wanted = request.match_info["member"]
        for member in self.members.get(request.match_info["conversation"], []):
            if wanted in (member["id"], member["aadObjectId"]):
                return web.json_response(member)
        return web.json_response({"error": {"code": "MemberNotFoundInConversation"}}, status=404)

    async def _paged_members(self, request: web.Request) -> web.Response:
        members = self.members.get(request.match_info["conversation"])
        if members is None:
            return web.json_response({"error": {"code": "ConversationNotFound"}}, status=404)
        size = int(request.query.get("pageSize") or 100)
        return web.json_response({"members": members[:size]})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        served = self.files.get(request.match_info["name"])
        if served is None:
            return web.Response(status=404)
        self.downloads += 1
        if served.declare_length:
            return web.Response(body=served.content, content_type=served.content_type)
        response = web.StreamResponse(headers={"Content-Type": served.content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(served.content), 16384):
            await response.write(served.content[start : start + 16384])
        await response.write_eof()
        return response
