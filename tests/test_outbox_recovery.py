"""Recovery of a dead process's jobs (issue 12, finding 10, first half): two real server processes
(``python -m bot serve``) share one database; the first keeps the replies the Bot Connector
refused and is delivering them (waiting out a long Retry-After) when it is killed with SIGKILL.
While it lives its leases are renewed and the second, started meanwhile, takes nothing over;
once it is dead the second delivers every reply within a few seconds of the lease, each once.
On SQLite and, with TEST_POSTGRES_URL, on PostgreSQL (a database of the test's own).

The lease is shortened with the JOB_LEASE_SECONDS setting (2 s) so that the test is short; the
default is 10 s.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store import Store
from knowledge.kb import default_knowledge
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.teams_harness import payload, words

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
LEASE_SECONDS = 2.0
LATE = default_knowledge().conversation.text("reply_late")
HELP = "Here is what I can do"
PEOPLE = 4
START_TIMEOUT = 90.0  # two servers loading the language layer on a busy machine


class Server:
    """One ``python -m bot serve`` in local mode on a port of its own; its log in a file."""

    def __init__(self, name: str, database_url: str, folder: Path) -> None:
        self.name = name
        self.port = _free_port()
        self.log = folder / f"{name}.log"
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "DATABASE_URL": database_url,
            "PORT": str(self.port),
            "LOG_LEVEL": "INFO",
            "JOB_LEASE_SECONDS": str(LEASE_SECONDS),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        for name_ in ("NDRBOT_CACHE_DIR", "HOME", "TMPDIR"):  # the model cache: no retraining
            if name_ in os.environ:
                env[name_] = os.environ[name_]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                cwd=folder,  # no .env of the repository is read
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, session: aiohttp.ClientSession) -> None:
        """Wait until /readyz answers 200 (the store open, the worker running)."""
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                assert self.process.poll() is None, self.log.read_text()[-2000:]
                try:
                    async with session.get(f"{self.url}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no jobs handed back."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def database(backend: str, folder: Path) -> AsyncIterator[str]:
    """A fresh database for the servers: a SQLite file, or a PostgreSQL database of its own."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'bot.db'}"
        return
    name = f"t_{uuid.uuid4().hex}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def activity(connector: FakeBotConnector, number: int) -> dict[str, Any]:
    """Person ``number`` says "help" in their own chat with the bot."""
    said = payload("personal_message", serviceUrl=connector.url, text="help")
    said["conversation"] = {**said["conversation"], "id": f"a:recovery-{number}"}
    said["from"] = {**said["from"], "id": f"29:recovery-{number}"}
    return said


def said_to(connector: FakeBotConnector, number: int) -> list[str]:
    conversation = f"a:recovery-{number}"
    return [
        words([each])
        for each in connector.log
        if each.conversation_id == conversation and each.activity["type"] != "typing"
    ]


def all_arrived(connector: FakeBotConnector) -> bool:
    return all(len(said_to(connector, number)) >= 2 for number in range(PEOPLE))


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not POSTGRES_URL, reason="TEST_POSTGRES_URL is not set"),
        ),
    ],
)
async def test_a_killed_process_s_jobs_are_delivered_by_the_other_once(
    backend: str, tmp_path: Path
) -> None:
    connector = await FakeBotConnector().start()
    # The Bot Connector throttles with a long Retry-After: the turns keep their replies, and the
    # first server's worker waits it out inside its delivery, holding the jobs.
    connector.down_for(600, 429, retry_after="45")
    async with database(backend, tmp_path) as url, aiohttp.ClientSession() as session:
        first = Server("first", url, tmp_path)
        second: Server | None = None
        store: Store | None = None
        try:
            await first.ready(session)
            for number in range(PEOPLE):
                async with session.post(
                    f"{first.url}/api/messages", json=activity(connector, number)
                ) as response:
                    assert response.status == 201, await response.text()
            # Each turn's reply refused once, then each conversation's first kept reply tried
            # once by the first server's worker, which now waits 45 s inside that delivery.
            async with asyncio.timeout(20):
                while connector.refused_in_outage < 2 * PEOPLE:
                    await asyncio.sleep(0.05)
            # The second starts meanwhile (many leases long); the first is alive, its leases
            # renewed: three leases after the second is up it has taken nothing over.
            second = Server("second", url, tmp_path)
            await second.ready(session)
            store = await Store.open(url)
            await asyncio.sleep(3 * LEASE_SECONDS)
            pending = await store.jobs.ticket_jobs(pending=True)
            assert len(pending) == 2 * PEOPLE  # per person: the late line, then the help
            assert sorted(job.attempts for job in pending) == [0] * PEOPLE + [1] * PEOPLE
            assert connector.refused_in_outage == 2 * PEOPLE

            first.kill()
            connector.up()
            async with asyncio.timeout(6 * LEASE_SECONDS + 10):
                while not all_arrived(connector) or await store.jobs.ticket_jobs(pending=True):
                    await asyncio.sleep(0.05)
            await asyncio.sleep(LEASE_SECONDS)  # anything sent twice would show by now
            for number in range(PEOPLE):
                got = said_to(connector, number)
                assert len(got) == 2, got
                assert got[0] == LATE
                assert HELP in got[1]
        finally:
            if store is not None:
                await store.close()
            first.stop()
            if second is not None:
                second.stop()
            await connector.close()
