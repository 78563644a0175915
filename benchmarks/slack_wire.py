"""Slack as the Slack benchmarks see it: the app's secret and token, a direct message signed as
the Events API signs it, and a minimal fake Web API that counts the replies.

Its own module, importing no code of the bot, so that a baseline's child process (bolt's echo
app) carries only what it serves.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

from aiohttp import web
from slack_sdk.signature import SignatureVerifier

SECRET = "benchmark-signing-secret"  # noqa: S105 - a local test value
TOKEN = "xoxb-benchmark"  # noqa: S105 - a local test value
TEAM = "T1"


class FakeWebAPI:
    """Answers auth.test and every other method with ok; counts chat.postMessage calls (in all
    and by channel, with the time of the last one); wakes whoever waits for a reply in a
    channel."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.posts = 0
        self.by_channel: Counter[str] = Counter()
        self.last_post = 0.0  # time.perf_counter() of the last chat.postMessage
        self.methods: Counter[str] = Counter()

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.methods[method] += 1
        if method == "auth.test":
            return web.json_response(
                {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": TEAM}
            )
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post())
        channel = str(params.get("channel"))
        if method == "chat.postMessage":
            self.posts += 1
            self.by_channel[channel] += 1
            self.last_post = time.perf_counter()
            waiter = self.waiting.pop(channel, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        return web.json_response({"ok": True, "channel": channel, "ts": "1.1"})

    def app(self) -> web.Application:
        """The fake as an aiohttp app: ``/api/<method>``."""
        app = web.Application()
        app.router.add_post("/api/{method}", self.handle)
        return app


def signed_event(
    verifier: SignatureVerifier, *, event_id: str, user: str, channel: str, text: str, ts: str
) -> tuple[bytes, dict[str, str]]:
    """A direct message as Slack's Events API posts it: the body and its signed headers."""
    envelope = {
        "type": "event_callback",
        "team_id": TEAM,
        "event_id": event_id,
        "event": {
            "type": "message",
            "channel_type": "im",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": ts,
        },
    }
    body = json.dumps(envelope).encode()
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": verifier.generate_signature(timestamp=stamp, body=body) or "",
    }
    return body, headers
