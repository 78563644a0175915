"""A fake Socket Mode server: the WebSocket ``apps.connections.open`` hands out. It greets the
client with ``hello``, delivers envelopes, and records each acknowledgement by envelope id."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer


class FakeSocketModeServer:
    """One WebSocket endpoint at /link; the bot connects to it as it would to Slack."""

    def __init__(self) -> None:
        self.acks: dict[str, dict[str, Any]] = {}
        self.connections = 0
        self._socket: web.WebSocketResponse | None = None
        self._connected = asyncio.Event()
        self._acked = asyncio.Event()
        app = web.Application()
        app.router.add_get("/link", self._link)
        self._server = TestServer(app, host="127.0.0.1")

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        await self._server.start_server()

    async def close(self) -> None:
        """Close the connection and stop listening."""
        if self._socket is not None:
            await self._socket.close()
        await self._server.close()

    @property
    def url(self) -> str:
        """The ws:// address apps.connections.open answers with."""
        return str(self._server.make_url("/link")).replace("http://", "ws://")

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait until the bot has connected."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def deliver(self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0) -> str:
        """Send one envelope (``events_api``, ``interactive``, ``slash_commands``); its id."""
        assert self._socket is not None, "the bot is not connected"
        envelope_id = str(uuid.uuid4())
        await self._socket.send_str(
            json.dumps(
                {
                    "envelope_id": envelope_id,
                    "type": kind,
                    "payload": payload,
                    "accepts_response_payload": kind != "events_api",
                    "retry_attempt": retry_attempt,
                    "retry_reason": "timeout" if retry_attempt else "",
                }
            )
        )
        return envelope_id

    async def wait_ack(self, envelope_id: str, timeout: float = 3.0) -> dict[str, Any]:
        """The acknowledgement of one envelope; fails if it does not come within ``timeout``."""
        deadline = time.monotonic() + timeout
        while envelope_id not in self.acks:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"envelope {envelope_id} was not acknowledged in {timeout}s")
            self._acked.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._acked.wait(), timeout=min(remaining, 0.1))
        return self.acks[envelope_id]

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self._socket = socket
        self.connections += 1
        await socket.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "connection_info": {"app_id": "A0APP0001"},
                    "debug_info": {"host": "fake", "approximate_connection_time": 18060},
                }
            )
        )
        self._connected.set()
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if isinstance(data, dict) and "envelope_id" in data:
                self.acks[str(data["envelope_id"])] = data
                self._acked.set()
        return socket
