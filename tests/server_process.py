"""The real server as an operator runs it, ``python -m bot serve`` in a subprocess, for the tests
that kill it (SIGKILL) and start it again on the same database; and Slack's signed requests
sent to it over real HTTP. Every wait is bounded."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes_slack.harness import BOT_TOKEN, SIGNING_SECRET, payload

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def slack_env(api_url: str, database_url: str, **more: str) -> dict[str, str]:
    """The environment of a server with Slack over HTTP on the fake Web API."""
    return {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": api_url,
        **more,
    }


class ServerProcess:
    """One ``python -m bot serve`` on a port of its own; its log (JSON lines) in a file."""

    def __init__(self, env: Mapping[str, str], folder: Path, name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / f"{name}.log"
        self._folder = folder
        self._env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": os.environ.get("HOME", str(folder)),
            "PYTHONPATH": str(ROOT),
            "PYTHONIOENCODING": "utf-8",
            "PORT": str(self.port),
            **(
                {"NDRBOT_CACHE_DIR": os.environ["NDRBOT_CACHE_DIR"]}
                if os.environ.get("NDRBOT_CACHE_DIR")
                else {}
            ),
            **env,
        }
        self._process: subprocess.Popen[str] | None = None
        self._log: TextIO | None = None

    def start(self) -> None:
        self._log = self.log_path.open("a", encoding="utf-8")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            cwd=self._folder,  # no .env of anyone's
            env=self._env,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            text=True,
        )

    async def ready(self, session: aiohttp.ClientSession, timeout: float = 60.0) -> None:
        """Wait until /readyz answers 200 (the store is open, the app serves)."""
        deadline = time.monotonic() + timeout
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise AssertionError(f"the server stopped at start:\n{self.log()}")
            try:
                async with session.get(f"{self.url}/readyz") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not start:\n{self.log()}")
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as a crash or an OOM kill."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8") if self.log_path.exists() else ""

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"message": line, "level": "?"})
        return lines


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database of the test's own on TEST_POSTGRES_URL's server (servers
    open the store without a schema of their own), dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        base = POSTGRES_URL.rsplit("/", 1)[0]
        yield f"{base}/{name}"
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


class SlackSender:
    """Slack's side of /slack/events: signed bodies posted to a server process."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._numbers = iter(range(5000, 10**9))

    def dm(self, text: str, user: str, channel: str) -> dict[str, Any]:
        """A message.im envelope from ``user`` in their DM ``channel``, with a fresh event id."""
        envelope = payload("message_im")
        number = next(self._numbers)
        envelope["event_id"] = f"Ev{number:010d}"
        envelope["event"].update(
            text=text, user=user, channel=channel, ts=f"1700001000.{number:06d}"
        )
        envelope["event"]["user_profile"] = {"real_name": user, "display_name": "", "name": user}
        return envelope

    async def event(
        self, server_url: str, envelope: dict[str, Any], *, retry_num: int | None = None
    ) -> int:
        """Deliver an Events API envelope (as Slack retries it, with ``retry_num``): the status."""
        body = json.dumps(envelope)
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": SignatureVerifier(SIGNING_SECRET).generate_signature(
                timestamp=stamp, body=body
            ),
        }
        if retry_num is not None:
            headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_error"}
        timeout = aiohttp.ClientTimeout(total=10)
        async with self._session.post(
            f"{server_url}/slack/events", data=body, headers=headers, timeout=timeout
        ) as answer:
            await answer.read()
            return answer.status
