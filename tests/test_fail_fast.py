"""Fail fast: a database that stalls or is gone, for real, under the whole server over HTTP.

PostgreSQL sits behind a loopback proxy that can stop forwarding (a stall: connections stay
open, nothing comes back) or refuse (an outage); SQLite gets an exclusive transaction held by
another connection. ``/readyz`` must answer within 2 s either way, and a Teams or Slack turn
that meets it must tell the user, in their chat, to try again in a moment, count as an error
(not as a turn handled), and for Teams answer 503, never 500.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bot.app import METRICS
from bot.store import unavailable
from knowledge.kb import default_knowledge
from tests.db_proxy import StallingProxy, sqlite_locked
from tests.fakes.teams_harness import TeamsBot, teams_bot, words
from tests.fakes_slack import FakeSlackWebAPI
from tests.fakes_slack.harness import SlackBot, settle

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="TEST_POSTGRES_URL is not set")
TIMEOUT = {"DATABASE_TIMEOUT_SECONDS": "1"}
READY_CONTRACT_SECONDS = 2.0


def try_again() -> str:
    return default_knowledge().conversation.text("turn_unavailable")


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database of the test's own (the server puts its tables in public)."""
    name = f"failfast_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def proxy(postgres_url: str) -> AsyncIterator[StallingProxy]:
    parsed = make_url(postgres_url)
    running = await StallingProxy(parsed.host or "127.0.0.1", parsed.port or 5432).start()
    yield running
    await running.close()


async def _readyz(bot: TeamsBot) -> tuple[int, dict[str, str], float]:
    started = time.monotonic()
    response = await bot.client.get("/readyz")
    body = await response.json()
    return response.status, body, time.monotonic() - started


def _database_errors(metrics: str, channel: str) -> float:
    prefix = f'ndrbot_errors_total{{channel="{channel}",kind="database"}} '
    lines = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def _turns(metrics: str, channel: str) -> float:
    prefix = f'ndrbot_turns_total{{channel="{channel}",'
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(prefix)
    )


# ---- /readyz --------------------------------------------------------------------------------


@needs_postgres
async def test_readyz_answers_within_two_seconds_while_postgres_stalls(
    tmp_path: Path, postgres_url: str, proxy: StallingProxy
) -> None:
    env = {"DATABASE_URL": proxy.url(postgres_url), **TIMEOUT}
    async with teams_bot(tmp_path, env=env) as bot:
        status, body, _ = await _readyz(bot)
        assert (status, body) == (200, {"status": "ready"})

        proxy.stall()
        for _ in range(3):  # asked again and again while it stalls: each answer in time
            status, body, seconds = await _readyz(bot)
            assert status == 503
            assert "did not answer" in body["reason"] or "unreachable" in body["reason"]
            assert seconds < READY_CONTRACT_SECONDS, seconds

        await proxy.refuse()
        status, body, seconds = await _readyz(bot)
        assert status == 503
        assert seconds < READY_CONTRACT_SECONDS, seconds

        await proxy.resume()
        for _ in range(50):  # the pool reconnects: ready again without a restart
            status, body, _ = await _readyz(bot)
            if status == 200:
                break
        assert status == 200, body


# ---- a Teams turn ---------------------------------------------------------------------------


async def _teams_turn_is_refused_kindly(bot: TeamsBot) -> None:
    response = await bot.post(bot.activity(text="hello"))
    assert response.status == 503, await response.text()
    assert response.headers["Retry-After"] == "5"
    posted = [each for each in bot.connector.take() if each.activity["type"] != "typing"]
    assert words(posted) == try_again()


@needs_postgres
async def test_teams_turn_during_a_postgres_stall_and_outage_asks_to_try_again(
    tmp_path: Path, postgres_url: str, proxy: StallingProxy
) -> None:
    env = {"DATABASE_URL": proxy.url(postgres_url), **TIMEOUT}
    async with teams_bot(tmp_path, env=env) as bot:
        assert words(await bot.say("hello"))  # the database answers: an ordinary turn
        handled = _turns(bot.metrics_text, "msteams")

        proxy.stall()
        await _teams_turn_is_refused_kindly(bot)
        await proxy.refuse()
        await _teams_turn_is_refused_kindly(bot)

        metrics = bot.metrics_text
        assert _database_errors(metrics, "msteams") == 2
        assert _turns(metrics, "msteams") == handled  # not counted as turns handled

        await proxy.resume()
        for _ in range(20):  # back: the next message is an ordinary turn again
            response = await bot.post(bot.activity(text="hello"))
            if response.status == 201:
                break
        assert response.status == 201
        assert try_again() not in words(bot.connector.take())


async def test_teams_turn_while_sqlite_is_locked_asks_to_try_again(tmp_path: Path) -> None:
    async with teams_bot(tmp_path, env=TIMEOUT) as bot:
        assert words(await bot.say("hello"))
        async with sqlite_locked(tmp_path / "teams.db"):
            await _teams_turn_is_refused_kindly(bot)
        assert _database_errors(bot.metrics_text, "msteams") == 1
        assert words(await bot.say("hello")) != try_again()


# ---- a Slack DM -----------------------------------------------------------------------------


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackWebAPI]:
    fake = FakeSlackWebAPI()
    await fake.start()
    yield fake
    await fake.close()


async def _slack_dm_is_answered_kindly(bot: SlackBot) -> dict[str, Any]:
    """A DM the store cannot keep: not acknowledged (503, so Slack sends it again), and the
    person asked to try again, once, however often Slack retries during the outage."""
    before = len(bot.api.of("chat.postMessage"))
    envelope = bot.dm("hello")
    response = await bot.event(envelope)
    assert response.status == 503  # not kept, so not acknowledged: Slack sends it again
    posted = (await bot.api.wait_for("chat.postMessage", before + 1))[before:]
    assert [call.text for call in posted] == [try_again()]
    assert (await bot.event(envelope, retry_num=1)).status == 503  # still down: not told again
    await settle(bot)
    assert len(bot.api.of("chat.postMessage")) == before + 1
    return envelope


async def _slack_retry_is_answered_once_the_database_is_back(
    bot: SlackBot, envelope: dict[str, Any]
) -> None:
    before = len(bot.api.of("chat.postMessage"))
    assert (await bot.event(envelope, retry_num=2)).status == 200
    posted = (await bot.api.wait_for("chat.postMessage", before + 1))[before:]
    assert posted
    assert posted[0].text != try_again()


@needs_postgres
async def test_slack_dm_during_a_postgres_stall_and_outage_asks_to_try_again(
    slack_api: FakeSlackWebAPI, postgres_url: str, proxy: StallingProxy
) -> None:
    bot = SlackBot(slack_api, proxy.url(postgres_url), env=TIMEOUT)
    await bot.start()
    try:
        proxy.stall()
        await _slack_dm_is_answered_kindly(bot)
        await proxy.refuse()
        envelope = await _slack_dm_is_answered_kindly(bot)
        metrics = _metrics(bot)
        assert _database_errors(metrics, "slack") == 4  # each delivery not kept, retries too
        assert _turns(metrics, "slack") == 0
        await proxy.resume()
        await _slack_retry_is_answered_once_the_database_is_back(bot, envelope)
    finally:
        await bot.close()


async def test_slack_dm_while_sqlite_is_locked_asks_to_try_again(
    slack_api: FakeSlackWebAPI, tmp_path: Path
) -> None:
    path = tmp_path / "slack.db"
    bot = SlackBot(slack_api, f"sqlite+aiosqlite:///{path}", env=TIMEOUT)
    await bot.start()
    try:
        async with sqlite_locked(path):
            envelope = await _slack_dm_is_answered_kindly(bot)
        assert _database_errors(_metrics(bot), "slack") == 2
        await _slack_retry_is_answered_once_the_database_is_back(bot, envelope)
    finally:
        await bot.close()


def _metrics(bot: SlackBot) -> str:
    return bot.app[METRICS].render().decode()


# ---- what counts as the database being unavailable ------------------------------------------


def test_an_oserror_from_elsewhere_is_not_the_database() -> None:
    with pytest.raises(ConnectionRefusedError) as raised:
        raise ConnectionRefusedError(111, "Connect call failed")  # as aiohttp's would be
    assert not unavailable(raised.value)
