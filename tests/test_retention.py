"""Retention (``RETENTION_DAYS``): the purge forgets old seen ids, done jobs, resolved tickets with
everything that names them, and idle conversations, on SQLite and PostgreSQL; recent rows, open
tickets and the conversations of people waiting on them stay. And it runs in the real server."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import PURGE, PURGE_TIMING
from bot.config import load_settings
from bot.housekeeping import Purge, PurgeTiming
from bot.store import NewJob, Requester, Store, metadata, ticket_number
from tests.fakes_slack import FakeSlackWebAPI
from tests.fakes_slack.harness import SlackBot, until

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=40)
LATELY = NOW - timedelta(days=2)
BOUNCE = {"status": "5.7.12", "recipients": ["sales@fabrikam.com"], "text": "550 5.7.12"}
PATH = {"role": "sender", "recipient_type": "group", "method": None, "centre": None}


@dataclass
class Clock:
    now: datetime = LONG_AGO

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Database:
    url: str
    schema: str | None
    clock: Clock = field(default_factory=Clock)
    stores: list[Store] = field(default_factory=list)

    async def open(self) -> Store:
        store = await Store.open(self.url, schema=self.schema, clock=self.clock)
        self.stores.append(store)
        return store

    async def count(self, table: str, where: str = "") -> int:
        store = self.stores[0]
        async with store._engine.connect() as conn:
            query = select(func.count()).select_from(metadata.tables[table])
            if where:
                query = query.where(text(where))
            return int((await conn.execute(query)).scalar_one())


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not POSTGRES_URL, reason="TEST_POSTGRES_URL is not set"),
        ),
    ]
)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        db = Database(url=f"sqlite+aiosqlite:///{tmp_path / 'ndrbot.db'}", schema=None)
    else:
        db = Database(url=POSTGRES_URL, schema=f"t_{uuid.uuid4().hex}")
    try:
        yield db
    finally:
        for store in db.stores:
            await store.close()
        if db.schema is not None:
            engine = create_async_engine(db.url)
            try:
                async with engine.begin() as conn:
                    await conn.execute(text(f'DROP SCHEMA IF EXISTS "{db.schema}" CASCADE'))
            finally:
                await engine.dispose()


def person(name: str, platform: str = "msteams") -> Requester:
    return Requester(platform, f"id-{name}", name.title(), f"{platform}:conv-{name}")


async def open_ticket(store: Store, who: Requester, dedupe: str) -> Any:
    ticket, _ = await store.tickets.open_or_join_ticket(
        requester=who,
        conversation_key=who.conversation_key,
        bounce=BOUNCE,
        path=PATH,
        note=None,
        dedupe_key=dedupe,
    )
    return ticket


async def talk(store: Store, who: Requester) -> None:
    """A conversation with state and a reference, as a turn leaves it."""
    await store.conversations.save_state(who.conversation_key, {"step": "x"}, 0)
    await store.conversations.save_reference(who.conversation_key, {"conversation": {"id": 1}})


async def resolve(store: Store, ticket: Any) -> None:
    await store.tickets.update_ticket(
        ticket.id,
        expected_version=ticket.version,
        actor="admin",
        kind="resolved",
        status="resolved",
    )


async def fill(store: Store, clock: Clock) -> dict[str, Any]:
    """Old and recent rows of every kind the purge looks at."""
    clock.now = LONG_AGO
    await store.seen.first_time_seen("old-event")
    await talk(store, person("idle"))
    old_done = await open_ticket(store, person("gone"), "a")
    await talk(store, person("gone"))
    await store.jobs.enqueue_jobs(old_done.id, [NewJob("msteams", "note", {"n": 1})])
    await store.channels.save_card(old_done.id, "msteams", {"activity": "1"})
    await store.reminders.mark_reminded(old_done.id, None)
    still_open = await open_ticket(store, person("waiting", "slack"), "b")
    await talk(store, person("waiting", "slack"))
    await store.tickets.open_or_join_ticket(
        requester=person("joined"),
        conversation_key=person("joined").conversation_key,
        bounce=BOUNCE,
        path=PATH,
        note=None,
        dedupe_key="b",
    )
    await talk(store, person("joined"))
    await store.jobs.enqueue_jobs(still_open.id, [NewJob("slack", "note", {"n": 2})])
    (claimed,) = await store.jobs.claim_jobs(["slack"], lease=timedelta(minutes=5))
    await store.jobs.finish_job(claimed.id)  # done long ago: goes, though its ticket stays
    await resolve(store, old_done)
    lease = timedelta(seconds=15)
    done = await store.kept.keep("slack", "dm", {}, delivery_key=None, owner="p", lease=lease)
    assert done is not None
    await store.kept.finish(done.id, owner="p")  # its work done long ago: goes
    owed = await store.kept.keep("slack", "dm", {}, delivery_key=None, owner="p", lease=lease)
    assert owed is not None  # never finished: its work is still owed, however old

    clock.now = LATELY
    await store.seen.first_time_seen("new-event")
    await talk(store, person("recent"))
    recent_done = await open_ticket(store, person("lately"), "c")
    await resolve(store, recent_done)
    clock.now = NOW
    return {"old": old_done, "open": still_open, "recent": recent_done}


async def test_the_purge_forgets_old_rows_and_keeps_recent_and_waiting_ones(
    database: Database,
) -> None:
    store = await database.open()
    tickets = await fill(store, database.clock)
    purge = Purge(store, 30, PurgeTiming(batch=2))  # small batches: several per step

    forgotten = await purge.once()

    assert forgotten == {
        "seen_events": 1,
        "done_jobs": 1,
        "kept_events": 1,
        "resolved_tickets": 1,
        "idle_conversations": 4,  # idle's and gone's state and reference
    }
    assert await database.count("seen_events", "event_id = 'old-event'") == 0
    assert await database.count("seen_events", "event_id = 'new-event'") == 1
    assert await store.tickets.get_ticket(tickets["old"].id) is None
    number = ticket_number(tickets["old"].id)
    for table in ("ticket_events", "ticket_requesters", "ticket_cards", "ticket_jobs"):
        assert await database.count(table, f"ticket_number = {number}") == 0, table
    assert await database.count("ticket_cards") == 0
    assert await database.count("ticket_reminders") == 0
    assert await database.count("ticket_jobs") == 0
    assert [k.kind for k in await store.kept.kept_events()] == ["dm"]  # the owed one
    assert await store.tickets.get_ticket(tickets["open"].id) is not None
    assert await store.tickets.get_ticket(tickets["recent"].id) is not None
    assert len(await store.tickets.ticket_requesters(tickets["open"].id)) == 2
    for kept in ("waiting", "joined", "recent"):
        who = person(kept, "slack" if kept == "waiting" else "msteams")
        assert (await store.conversations.load_state(who.conversation_key)).version == 1
        assert await store.conversations.load_reference(who.conversation_key) is not None
    for gone in ("idle", "gone"):
        who = person(gone)
        assert (await store.conversations.load_state(who.conversation_key)).version == 0
        assert await store.conversations.load_reference(who.conversation_key) is None

    assert set((await purge.once()).values()) == {0}  # nothing more to forget


async def test_two_purges_at_once_forget_each_row_once(database: Database) -> None:
    first, second = await database.open(), await database.open()
    await fill(first, database.clock)
    rounds = await asyncio.gather(
        Purge(first, 30, PurgeTiming(batch=1)).once(),
        Purge(second, 30, PurgeTiming(batch=1)).once(),
    )
    totals = {name: rounds[0][name] + rounds[1][name] for name in rounds[0]}
    assert totals == {
        "seen_events": 1,
        "done_jobs": 1,
        "kept_events": 1,
        "resolved_tickets": 1,
        "idle_conversations": 4,
    }


async def test_zero_days_keeps_everything(database: Database) -> None:
    store = await database.open()
    await fill(store, database.clock)
    purge = Purge(store, 0)
    assert not purge.enabled
    purge.start()
    await purge.stop()
    assert purge.rounds == 0
    assert await database.count("seen_events") == 2


# ---- in the real server ---------------------------------------------------------------------


async def test_the_purge_runs_in_the_server_at_start_and_then_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    old = Clock(datetime.now(UTC) - timedelta(days=40))
    async with await Store.open(url, clock=old) as store:
        await store.seen.first_time_seen("old-before-start")
        await talk(store, person("idle"))
    api = FakeSlackWebAPI()
    await api.start()
    bot = SlackBot(api, url, env={"RETENTION_DAYS": "30"})
    bot.app[PURGE_TIMING] = PurgeTiming(every_seconds=0.05)
    await bot.start()
    try:
        purge = bot.app[PURGE]
        await until("the first purge", lambda: purge.rounds >= 1)
        async with await Store.open(url) as look:
            assert await look.seen.first_time_seen("old-before-start")  # forgotten: new again
            assert (await look.conversations.load_state("msteams:conv-idle")).version == 0
        async with await Store.open(url, clock=old) as store:
            await store.seen.first_time_seen("old-while-running")
        rounds = purge.rounds
        await until("another purge", lambda: purge.rounds > rounds + 1)
        async with await Store.open(url) as look:
            assert await look.seen.first_time_seen("old-while-running")
    finally:
        await bot.close()
        await api.close()


def test_retention_days_setting() -> None:
    assert load_settings({}, env_file=None).retention_days == 30
    assert load_settings({"RETENTION_DAYS": "0"}, env_file=None).retention_days == 0
    with pytest.raises(Exception, match="RETENTION_DAYS"):
        load_settings({"RETENTION_DAYS": "-1"}, env_file=None)
