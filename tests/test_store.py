"""The Store on SQLite (a file) and, when TEST_POSTGRES_URL is set, PostgreSQL (a fresh schema)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store import (
    KEEP,
    NewJob,
    Requester,
    Saved,
    StaleState,
    Store,
    StoreError,
    TicketChange,
    UnknownTicket,
    ticket_id,
    ticket_number,
    unavailable,
)
from tests.db_proxy import sqlite_locked

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
SKIP_POSTGRES = "TEST_POSTGRES_URL is not set: PostgreSQL store tests skipped"

OpenStore = Callable[..., Awaitable[Store]]


@dataclass
class Database:
    """One empty database for one test; open() gives another Store (another 'process') on it."""

    url: str
    schema: str | None
    stores: list[Store] = field(default_factory=list)

    async def open(self, **kwargs: Any) -> Store:
        store = await Store.open(self.url, schema=self.schema, **kwargs)
        self.stores.append(store)
        return store


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql", marks=pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES)
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


@pytest.fixture
async def store(database: Database) -> Store:
    return await database.open()


def alice(conversation: str = "msteams:19:alice") -> Requester:
    return Requester(
        platform="msteams", user_id="29:alice", name="Alice", conversation_key=conversation
    )


def bob() -> Requester:
    return Requester(platform="slack", user_id="U0BOB", name="Bob", conversation_key="slack:D0BOB")


BOUNCE = {
    "status": "5.7.12",
    "recipients": ["sales@fabrikam.com"],
    "resolver": "RESOLVER.RST.SenderNotAuthenticated",
    "text": "Delivery has failed…\n550 5.7.12",
}
PATH = {"role": "sender", "recipient_type": "group", "method": None, "centre": None}


async def open_for(
    store: Store, who: Requester, dedupe_key: str | None = "5.7.12:sales@fabrikam.com"
) -> tuple[Any, bool]:
    ticket, outcome = await store.tickets.open_or_join_ticket(
        requester=who,
        conversation_key=who.conversation_key,
        bounce=BOUNCE,
        path=PATH,
        note=None,
        dedupe_key=dedupe_key,
    )
    return ticket, outcome == "opened"


def assert_aware_utc(moment: datetime) -> None:
    assert moment.tzinfo is not None
    assert moment.utcoffset() == timedelta(0)


# -- conversation state ---------------------------------------------------------------------------


async def test_nothing_stored_yet(store: Store) -> None:
    assert await store.conversations.load_state("msteams:19:none") == Saved(state={}, version=0)


async def test_state_round_trips_exactly(store: Store) -> None:
    state = {
        "step": "admin_fix.method",
        "answers": {"role": "admin", "recipient_type": None, "methods": ["eac", "powershell"]},
        "nested": [{"a": [1, 2, {"b": True}]}, [], {}, False, 0, -7, 2**40, ""],
        "unicode": "Zustellung fehlgeschlagen — 送信失敗 ✉",
        "large": "x" * 200_000,
    }
    version = await store.conversations.save_state("msteams:19:abc", state, 0)
    assert version == 1
    assert await store.conversations.load_state("msteams:19:abc") == Saved(state=state, version=1)


async def test_versions_count_up(store: Store) -> None:
    key = "slack:C1:T1"
    assert await store.conversations.save_state(key, {"n": 1}, 0) == 1
    assert await store.conversations.save_state(key, {"n": 2}, 1) == 2
    assert await store.conversations.save_state(key, {"n": 3}, 2) == 3
    assert await store.conversations.load_state(key) == Saved(state={"n": 3}, version=3)


async def test_saving_an_old_version_is_stale(store: Store) -> None:
    key = "console:local"
    await store.conversations.save_state(key, {"n": 1}, 0)
    await store.conversations.save_state(key, {"n": 2}, 1)
    with pytest.raises(StaleState):
        await store.conversations.save_state(key, {"n": "late"}, 1)
    with pytest.raises(StaleState):
        await store.conversations.save_state("console:nobody", {"n": 1}, 5)
    assert (await store.conversations.load_state(key)).state == {"n": 2}


async def test_two_processes_race_on_one_conversation(database: Database) -> None:
    first, second = await database.open(), await database.open()
    key = "msteams:19:hop"
    await first.conversations.save_state(key, {"step": "triage"}, 0)
    seen_by_first = await first.conversations.load_state(key)
    seen_by_second = await second.conversations.load_state(key)
    assert seen_by_first.version == seen_by_second.version == 1
    assert await first.conversations.save_state(key, {"step": "first"}, seen_by_first.version) == 2
    with pytest.raises(StaleState):
        await second.conversations.save_state(key, {"step": "second"}, seen_by_second.version)
    # the conversation hops to the second process and carries on from what the first saved
    now = await second.conversations.load_state(key)
    assert now == Saved(state={"step": "first"}, version=2)
    assert await second.conversations.save_state(key, {"step": "second"}, now.version) == 3


async def test_insert_race_at_version_zero(database: Database) -> None:
    first, second = await database.open(), await database.open()
    results = await asyncio.gather(
        *(
            s.conversations.save_state("slack:C9:new", {"by": i}, 0)
            for i, s in enumerate([first, second] * 3)
        ),
        return_exceptions=True,
    )
    assert sum(1 for r in results if r == 1) == 1
    assert all(isinstance(r, StaleState) for r in results if r != 1)


async def test_negative_version_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="expected_version"):
        await store.conversations.save_state("k", {}, -1)


async def test_sqlite_state_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}"
    store = await Store.open(url)
    await store.conversations.save_state(
        "msteams:19:abc", {"step": "method", "answers": {"role": "admin"}}, 0
    )
    await store.conversations.save_profile("msteams:29:alice", {"role": "admin"})
    await store.close()
    again = await Store.open(url)  # the tables exist already: open is idempotent
    try:
        assert await again.conversations.load_state("msteams:19:abc") == Saved(
            state={"step": "method", "answers": {"role": "admin"}}, version=1
        )
        assert await again.conversations.load_profile("msteams:29:alice") == {"role": "admin"}
    finally:
        await again.close()


async def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "pragmas.db"
    store = await Store.open(f"sqlite+aiosqlite:///{path}", timeout=2.5)
    try:
        await store.ping()
        async with store._engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 2500

        # The turn's statements run on a connection of their own thread, tuned the same way.
        def pragmas(conn: Connection) -> tuple[Any, ...]:
            return tuple(
                conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("foreign_keys", "busy_timeout", "journal_mode")
            )

        assert await store._transactions.read(pragmas) == (1, 2500, "wal")
    finally:
        await store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_sqlite_transactions_that_waited_past_the_timeout_are_not_run(
    tmp_path: Path,
) -> None:
    """The turn's transactions share a few threads: those held by a lock do not make the ones
    queued behind them wait a timeout each. Those fail as a pool timeout would (the database is
    unavailable) and write nothing; once the lock is gone the next one goes through."""
    path = tmp_path / "locked.db"
    store = await Store.open(f"sqlite+aiosqlite:///{path}", timeout=0.5)
    try:
        async with sqlite_locked(path):
            saves = [
                store.conversations.save_turn(f"k{n}", {"n": n}, 0, user_key="u") for n in range(12)
            ]  # more than the threads: some wait for one
            failures = await asyncio.gather(*saves, return_exceptions=True)
        assert all(isinstance(f, Exception) and unavailable(f) for f in failures), failures
        assert any(isinstance(f, PoolTimeout) for f in failures), failures
        assert [await store.conversations.load_state(f"k{n}") for n in range(12)] == [
            Saved(state={}, version=0)
        ] * 12
        assert await store.conversations.save_turn("k0", {"n": 0}, 0, user_key="u") == 1
    finally:
        await store.close()


async def test_a_store_closed_and_used_again_opens_its_connections_again(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'again.db'}")
    await store.conversations.save_turn("k", {"n": 1}, 0, user_key="u")
    await store.close()
    try:
        assert (await store.conversations.load_turn("k", "u"))[0].version == 1
    finally:
        await store.close()
        await store.close()  # twice: nothing left to close


# -- profiles -------------------------------------------------------------------------------------


async def test_a_turn_saves_its_state_and_profile_together_and_the_row_reads_them_back(
    store: Store,
) -> None:
    """save_turn names whose turn it was; load_state then brings their profile as it is now."""
    key, who = "slack:D1", "slack:U1"
    assert await store.conversations.save_turn(key, {"n": 1}, 0, user_key=who) == 1
    assert await store.conversations.load_state(key) == Saved(
        state={"n": 1}, version=1, user_key=who, profile={}
    )
    await store.conversations.save_turn(key, {"n": 2}, 1, user_key=who, profile={"role": "admin"})
    assert (await store.conversations.load_state(key)).profile == {"role": "admin"}
    await store.conversations.save_profile(who, {"role": "sender"})  # in another conversation
    assert (await store.conversations.load_state(key)).profile == {"role": "sender"}
    # The news of a ticket saves the state alone: whose turn was last stays as it was.
    await store.conversations.save_state(key, {"n": 3}, 2)
    assert (await store.conversations.load_state(key)).user_key == who


async def test_a_turns_read_brings_the_profile_of_whoever_speaks(store: Store) -> None:
    """load_turn: the row, and the profile of the person whose turn it is, whether or not the
    last turn saved was theirs."""
    key = "msteams:19:group"
    assert await store.conversations.load_turn(key, "msteams:29:a") == (Saved({}, 0), {})
    await store.conversations.save_turn(key, {"n": 1}, 0, user_key="msteams:29:a", profile={"r": 1})
    await store.conversations.save_profile("msteams:29:b", {"r": 2})
    saved, profile = await store.conversations.load_turn(key, "msteams:29:a")
    assert (saved.state, saved.version, profile) == ({"n": 1}, 1, {"r": 1})
    saved, profile = await store.conversations.load_turn(key, "msteams:29:b")
    assert (saved.user_key, saved.profile, profile) == ("msteams:29:a", {"r": 1}, {"r": 2})
    assert (await store.conversations.load_turn(key, "msteams:29:c"))[1] == {}


async def test_a_stale_turn_saves_neither_its_state_nor_its_profile(store: Store) -> None:
    key, who = "slack:D2", "slack:U2"
    await store.conversations.save_turn(key, {"n": 1}, 0, user_key=who)
    await store.conversations.save_turn(key, {"n": 2}, 1, user_key=who)
    with pytest.raises(StaleState):
        await store.conversations.save_turn(key, {"n": "late"}, 1, user_key=who, profile={"r": 1})
    with pytest.raises(StaleState):  # a second first turn of the conversation
        await store.conversations.save_turn(key, {"n": "new"}, 0, user_key=who, profile={"r": 2})
    assert (await store.conversations.load_state(key)).state == {"n": 2}
    assert await store.conversations.load_profile(who) == {}


async def test_profile_upsert(store: Store) -> None:
    assert await store.conversations.load_profile("slack:U1") == {}
    await store.conversations.save_profile("slack:U1", {"role": "sender"})
    await store.conversations.save_profile("slack:U1", {"role": "admin", "centres": ["new_eac"]})
    assert await store.conversations.load_profile("slack:U1") == {
        "role": "admin",
        "centres": ["new_eac"],
    }
    assert await store.conversations.load_profile("slack:U2") == {}


# -- seen events ----------------------------------------------------------------------------------


async def test_first_time_seen(database: Database) -> None:
    first, second = await database.open(), await database.open()
    assert await first.seen.first_time_seen("Ev123") is True
    assert await first.seen.first_time_seen("Ev123") is False
    assert await second.seen.first_time_seen("Ev123") is False
    assert await second.seen.first_time_seen("Ev124") is True


async def test_first_time_seen_concurrently(database: Database) -> None:
    first, second = await database.open(), await database.open()
    answers = await asyncio.gather(
        *(s.seen.first_time_seen("retry-1") for s in [first, second] * 4)
    )
    assert answers.count(True) == 1


async def test_forget_seen_before(database: Database) -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    clock = [now - timedelta(days=2)]
    store = await database.open(clock=lambda: clock[0])
    assert await store.seen.first_time_seen("old-1")
    assert await store.seen.first_time_seen("old-2")
    clock[0] = now
    assert await store.seen.first_time_seen("new-1")
    assert await store.seen.forget_seen_before(now - timedelta(days=1)) == 2
    assert await store.seen.forget_seen_before(now - timedelta(days=1)) == 0
    assert await store.seen.first_time_seen("old-1") is True  # forgotten, so new again
    assert await store.seen.first_time_seen("new-1") is False
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.seen.forget_seen_before(datetime(2025, 1, 1))


# -- tickets --------------------------------------------------------------------------------------


async def test_tickets_are_numbered_from_1001(store: Store) -> None:
    first, created_first = await open_for(store, alice(), dedupe_key=None)
    second, created_second = await open_for(store, bob(), dedupe_key=None)
    assert (first.id, first.number, created_first) == ("NDR-1001", 1, True)
    assert (second.id, second.number, created_second) == ("NDR-1002", 2, True)
    assert first.status == "open"
    assert first.requester == alice()
    assert first.bounce == BOUNCE
    assert first.path == PATH
    assert first.assignee is None
    assert first.version == 1
    assert await store.tickets.get_ticket("NDR-1001") == first
    assert await store.tickets.get_ticket("ndr-1002 ") == second
    events = await store.tickets.ticket_events("NDR-1001")
    assert [(e.kind, e.actor) for e in events] == [("opened", "msteams:29:alice")]
    assert await store.tickets.ticket_requesters("NDR-1001") == [alice()]


async def test_same_dedupe_key_joins_the_open_ticket(store: Store) -> None:
    first, created = await open_for(store, alice())
    assert created
    joined, created_again = await open_for(store, bob())
    assert created_again is False
    assert joined.id == first.id
    assert await store.tickets.ticket_requesters(first.id) == [alice(), bob()]
    assert [e.kind for e in await store.tickets.ticket_events(first.id)] == ["opened", "joined"]
    # the same person asking again is on the ticket once, and makes no new event
    again, created_third = await open_for(store, bob())
    assert (again.id, created_third) == (first.id, False)
    assert await store.tickets.ticket_requesters(first.id) == [alice(), bob()]
    assert [e.kind for e in await store.tickets.ticket_events(first.id)] == ["opened", "joined"]
    # a different key is a different ticket
    other, created_other = await open_for(store, bob(), dedupe_key="5.7.12:hr@fabrikam.com")
    assert created_other
    assert other.id == "NDR-1002"


async def test_concurrent_escalations_make_one_ticket(database: Database) -> None:
    first, second = await database.open(), await database.open()
    people = [Requester("slack", f"U{i}", f"User {i}", f"slack:D{i}") for i in range(8)]
    results = await asyncio.gather(
        *(open_for([first, second][i % 2], who) for i, who in enumerate(people))
    )
    assert sum(created for _, created in results) == 1
    assert len({ticket.id for ticket, _ in results}) == 1
    ticket_id_ = results[0][0].id
    assert len(await first.tickets.list_tickets()) == 1
    requesters = await second.tickets.ticket_requesters(ticket_id_)
    assert sorted(r.key for r in requesters) == sorted(p.key for p in people)
    kinds = [e.kind for e in await first.tickets.ticket_events(ticket_id_)]
    assert kinds.count("opened") == 1
    assert kinds.count("joined") == 7


async def test_resolved_ticket_does_not_absorb_new_escalations(store: Store) -> None:
    first, _ = await open_for(store, alice())
    resolved = await store.tickets.update_ticket(
        first.id,
        expected_version=first.version,
        actor="msteams:29:admin",
        kind="resolved",
        status="resolved",
    )
    assert resolved.status == "resolved"
    assert resolved.version == 2
    second, created = await open_for(store, bob())
    assert created
    assert second.id != first.id
    assert await store.tickets.ticket_requesters(first.id) == [alice()]
    # reopening the first would make two unresolved tickets with one key
    with pytest.raises(StoreError, match="dedupe key"):
        await store.tickets.update_ticket(
            first.id, expected_version=2, actor="msteams:29:admin", kind="reopened", status="open"
        )
    assert (await store.tickets.get_ticket(first.id)) == resolved


async def test_update_ticket_uses_versions_and_records_events(database: Database) -> None:
    first, second = await database.open(), await database.open()
    ticket, _ = await open_for(first, alice())
    admin = {"platform": "msteams", "user_id": "29:admin", "name": "Ada Admin"}
    assigned = await first.tickets.update_ticket(
        ticket.id,
        expected_version=1,
        actor="msteams:29:admin",
        kind="assigned",
        status="assigned",
        assignee=admin,
    )
    assert (assigned.status, assigned.assignee, assigned.version) == ("assigned", admin, 2)
    assert assigned.updated_at >= ticket.updated_at
    with pytest.raises(StaleState):
        await second.tickets.update_ticket(
            ticket.id, expected_version=1, actor="slack:UADMIN", kind="resolved", status="resolved"
        )
    replied = await second.tickets.update_ticket(
        ticket.id,
        expected_version=2,
        actor="msteams:29:admin",
        kind="replied",
        detail={"text": "Added you to the allowed senders."},
    )
    assert (replied.status, replied.assignee, replied.version) == ("assigned", admin, 3)
    unassigned = await second.tickets.update_ticket(
        ticket.id,
        expected_version=3,
        actor="msteams:29:admin",
        kind="unassigned",
        status="open",
        assignee=None,
        note=KEEP,
    )
    assert unassigned.assignee is None
    events = await first.tickets.ticket_events(ticket.id)
    assert [e.kind for e in events] == ["opened", "assigned", "replied", "unassigned"]
    assert events[1].detail == {"status": "assigned", "assignee": admin}
    assert events[2].detail == {"text": "Added you to the allowed senders."}
    with pytest.raises(UnknownTicket):
        await first.tickets.update_ticket(
            "NDR-9999", expected_version=1, actor="x", kind="resolved"
        )
    with pytest.raises(UnknownTicket):
        await first.tickets.update_ticket(
            "nonsense", expected_version=1, actor="x", kind="resolved"
        )
    with pytest.raises(ValueError, match="status"):
        await first.tickets.update_ticket(
            ticket.id, expected_version=4, actor="x", kind="x", status="done"
        )


async def test_list_tickets(store: Store) -> None:
    one, _ = await open_for(store, alice(), dedupe_key="a")
    two, _ = await open_for(store, bob(), dedupe_key="b")
    await open_for(store, bob(), dedupe_key="a")  # bob joins one
    three, _ = await open_for(store, alice(), dedupe_key=None)
    await store.tickets.update_ticket(
        two.id, expected_version=two.version, actor="admin", kind="resolved", status="resolved"
    )
    assert [t.id for t in await store.tickets.list_tickets()] == [three.id, two.id, one.id]
    assert [t.id for t in await store.tickets.list_tickets(limit=2)] == [three.id, two.id]
    assert [t.id for t in await store.tickets.list_tickets(status="open")] == [three.id, one.id]
    assert [t.id for t in await store.tickets.list_tickets(status="resolved")] == [two.id]
    assert [t.id for t in await store.tickets.list_tickets(requester_key=bob().key)] == [
        two.id,
        one.id,
    ]
    assert [t.id for t in await store.tickets.list_tickets(requester_key="slack:nobody")] == []


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "NDR-",
        "NDR-abc",
        "1001",
        "NDR-1000",
        "NDR-0999",
        "NDR-99999999999",
        "XYZ-1001",
        "NDR-1001; DROP TABLE tickets",
        "NDR--1001",
    ],
)
async def test_malformed_ticket_ids(store: Store, malformed: str) -> None:
    await open_for(store, alice(), dedupe_key=None)
    assert await store.tickets.get_ticket(malformed) is None
    assert await store.tickets.ticket_events(malformed) == []
    assert await store.tickets.ticket_requesters(malformed) == []


async def test_unknown_ticket(store: Store) -> None:
    assert await store.tickets.get_ticket("NDR-1001") is None
    assert await store.tickets.ticket_events("NDR-1001") == []
    assert await store.tickets.ticket_requesters("NDR-1001") == []


def test_ticket_ids() -> None:
    assert ticket_id(1) == "NDR-1001"
    assert ticket_number("NDR-1042") == 42
    assert ticket_number(" ndr-1042 ") == 42
    assert ticket_number("NDR-1000") is None


async def test_datetimes_are_aware_utc(store: Store) -> None:
    before = datetime.now(UTC)
    ticket, _ = await open_for(store, alice())
    after = datetime.now(UTC)
    for moment in (ticket.created_at, ticket.updated_at):
        assert_aware_utc(moment)
        assert before - timedelta(seconds=1) <= moment <= after + timedelta(seconds=1)
    for event in await store.tickets.ticket_events(ticket.id):
        assert_aware_utc(event.at)


async def test_a_clock_in_another_zone_is_stored_as_utc(database: Database) -> None:
    from datetime import timezone

    paris = timezone(timedelta(hours=1))
    store = await database.open(clock=lambda: datetime(2025, 1, 2, 13, 0, tzinfo=paris))
    ticket, _ = await open_for(store, alice())
    assert ticket.created_at == datetime(2025, 1, 2, 12, 0, tzinfo=UTC)
    assert_aware_utc(ticket.created_at)


# -- reaching the database ------------------------------------------------------------------------


async def test_ping(store: Store) -> None:
    await store.ping()


async def test_ping_on_an_unreachable_database_is_readable() -> None:
    store = Store(create_async_engine("postgresql+asyncpg://ndr:secret@127.0.0.1:1/nowhere"))
    try:
        with pytest.raises(StoreError) as raised:
            await store.ping()
    finally:
        await store.close()
    message = str(raised.value)
    assert "unreachable" in message
    assert "127.0.0.1:1/nowhere" in message
    assert "secret" not in message
    assert "sqlalche.me" not in message


async def test_opening_an_unreachable_database_is_readable(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "folder" / "x.db"
    with pytest.raises(StoreError, match=r"cannot open the store at .*: there is no folder"):
        await Store.open(f"sqlite+aiosqlite:///{missing}")
    with pytest.raises(StoreError, match="cannot open the store"):
        await Store.open("postgresql+asyncpg://ndr:secret@127.0.0.1:1/nowhere")


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("mysql+aiomysql://x@y/z", "unsupported database"),
        ("not a url", "not a database URL"),
    ],
)
async def test_unsupported_urls(url: str, complaint: str) -> None:
    with pytest.raises(StoreError, match=complaint):
        await Store.open(url)


async def test_schema_is_for_postgresql_only(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="PostgreSQL only"):
        await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", schema="s")


async def test_store_as_context_manager(database: Database) -> None:
    async with await Store.open(database.url, schema=database.schema) as store:
        await store.ping()


# -- admins' channels, ticket cards, the job queue, reminders -------------------------------------


class Clock:
    """A clock the test moves on by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def card(target: str, kind: str = "note", n: int = 0) -> NewJob:
    return NewJob(target, kind, {"n": n})


async def test_admin_channels_and_cards_are_upserted(store: Store) -> None:
    assert await store.channels.admin_channels() == {}
    await store.channels.save_admin_channel(
        "msteams", {"conversation": {"id": "19:a"}}, "msteams:29:ana"
    )
    await store.channels.save_admin_channel(
        "msteams", {"conversation": {"id": "19:b"}}, "msteams:29:bo"
    )
    await store.channels.save_admin_channel("slack", {"channel": "C0A"}, "slack:U0SAM")
    channels = await store.channels.admin_channels()
    assert channels["msteams"].channel == {"conversation": {"id": "19:b"}}
    assert channels["msteams"].registered_by == "msteams:29:bo"
    assert channels["slack"].channel == {"channel": "C0A"}
    assert_aware_utc(channels["slack"].registered_at)

    ticket, _ = await open_for(store, alice())
    assert await store.channels.ticket_cards(ticket.id) == {}
    await store.channels.save_card(ticket.id, "msteams", {"activity": "1"})
    await store.channels.save_card(ticket.id, "msteams", {"activity": "2"})
    await store.channels.save_card(ticket.id, "slack", {"ts": "1.2"})
    assert await store.channels.ticket_cards(ticket.id) == {
        "msteams": {"activity": "2"},
        "slack": {"ts": "1.2"},
    }
    assert await store.channels.ticket_cards("nonsense") == {}
    with pytest.raises(UnknownTicket):
        await store.channels.save_card("nonsense", "slack", {})


async def test_jobs_wait_for_the_earlier_ones_of_their_ticket_and_target(
    database: Database,
) -> None:
    clock = Clock()
    store = await database.open(clock=clock)
    one, _ = await open_for(store, alice(), dedupe_key="one")
    two, _ = await open_for(store, alice(), dedupe_key="two")
    await store.jobs.enqueue_jobs(
        one.id, [card("msteams", n=1), card("slack", n=1), card("msteams", n=2)]
    )
    await store.jobs.enqueue_jobs(two.id, [card("msteams", n=1)])
    await store.jobs.enqueue_jobs(one.id, [card("msteams", n=3)])
    lease = timedelta(minutes=5)

    claimed = await store.jobs.claim_jobs(["msteams", "slack"], lease=lease)
    assert [(j.ticket_id, j.target, j.seq) for j in claimed] == [
        (one.id, "msteams", 1),
        (one.id, "slack", 1),
        (two.id, "msteams", 1),
    ]
    assert all(j.attempts == 1 and j.next_attempt_at == clock.now + lease for j in claimed)
    # Claimed: nobody else gets them, and nothing behind them is first in line yet.
    assert await store.jobs.claim_jobs(["msteams", "slack"], lease=lease) == []
    await store.jobs.finish_job(claimed[0].id)
    [second] = await store.jobs.claim_jobs(["msteams"], lease=lease)
    assert (second.ticket_id, second.seq, second.payload) == (one.id, 2, {"n": 2})
    # A job to try again later holds its line until then.
    await store.jobs.retry_job(second.id, after=timedelta(seconds=30), error="503")
    assert await store.jobs.claim_jobs(["msteams"], lease=lease) == []
    clock.now += timedelta(seconds=30)
    [again] = await store.jobs.claim_jobs(["msteams"], lease=lease)
    assert (again.id, again.attempts, again.last_error) == (second.id, 2, "503")
    # Handed back by a stopping worker: due at once, the attempt not counted.
    await store.jobs.release_jobs([again.id])
    [back] = await store.jobs.claim_jobs(["msteams"], lease=lease)
    assert (back.id, back.attempts) == (second.id, 2)
    # A worker that died: its lease runs out and the job is claimed again.
    clock.now += lease
    reclaimed = await store.jobs.claim_jobs(["msteams", "slack"], lease=lease)
    assert {j.id for j in reclaimed} == {second.id, claimed[1].id, claimed[2].id}
    assert [j.seq for j in await store.jobs.ticket_jobs(one.id) if j.target == "msteams"] == [
        1,
        2,
        3,
    ]
    assert len(await store.jobs.ticket_jobs(pending=True)) == 4
    assert await store.jobs.claim_jobs([], lease=lease) == []
    with pytest.raises(ValueError, match="no such job"):
        await store.jobs.enqueue_jobs(one.id, [NewJob("fax", "note", {})])


async def test_two_processes_never_claim_the_same_job(database: Database) -> None:
    first, second = await database.open(), await database.open()
    for n in range(10):
        ticket, _ = await open_for(first, alice(), dedupe_key=f"k{n}")
        await first.jobs.enqueue_jobs(ticket.id, [card("webhook", "event", n)])
    lease = timedelta(minutes=5)
    a, b = await asyncio.gather(
        first.jobs.claim_jobs(["webhook"], lease=lease, limit=7),
        second.jobs.claim_jobs(["webhook"], lease=lease, limit=7),
    )
    ids = [j.id for j in a] + [j.id for j in b]
    assert len(ids) == len(set(ids)) == 10


async def test_a_ticket_change_queues_its_jobs_in_its_own_transaction(store: Store) -> None:
    await store.channels.save_admin_channel("msteams", {"conversation": {"id": "19:a"}}, "x")
    seen: list[TicketChange] = []

    def jobs(change: TicketChange) -> list[NewJob]:
        seen.append(change)
        return [NewJob(platform, "update_card", {}) for platform in sorted(change.admin_platforms)]

    ticket, outcome = await store.tickets.open_or_join_ticket(
        requester=alice(),
        conversation_key="msteams:19:alice",
        bounce=BOUNCE,
        path=PATH,
        note="help",
        dedupe_key="k",
        jobs=jobs,
    )
    assert outcome == "opened"
    joined, outcome = await store.tickets.open_or_join_ticket(
        requester=bob(),
        conversation_key="slack:D0BOB",
        bounce=BOUNCE,
        path=PATH,
        note=None,
        dedupe_key="k",
        jobs=jobs,
    )
    assert (joined.id, outcome) == (ticket.id, "joined")
    _, outcome = await store.tickets.open_or_join_ticket(
        requester=bob(),
        conversation_key="slack:D0BOB",
        bounce=BOUNCE,
        path=PATH,
        note=None,
        dedupe_key="k",
        jobs=jobs,
    )
    assert outcome == "already"
    await store.channels.save_card(ticket.id, "slack", {"ts": "1"})
    await store.tickets.update_ticket(
        ticket.id, expected_version=1, actor="a", kind="assigned", status="assigned", jobs=jobs
    )
    with pytest.raises(StaleState):
        await store.tickets.update_ticket(
            ticket.id, expected_version=1, actor="b", kind="x", jobs=jobs
        )
    assert [(c.kind, c.actor) for c in seen] == [
        ("opened", "msteams:29:alice"),
        ("joined", "slack:U0BOB"),
        ("assigned", "a"),
    ]
    assert seen[0].detail == {"note": "help"}
    assert [r.key for r in seen[1].requesters] == ["msteams:29:alice", "slack:U0BOB"]
    assert seen[2].ticket.status == "assigned"
    assert seen[2].admin_platforms == frozenset({"msteams"})
    assert seen[2].card_platforms == frozenset({"slack"})
    assert [(j.kind, j.seq) for j in await store.jobs.ticket_jobs(ticket.id)] == [
        ("update_card", 1),
        ("update_card", 2),
        ("update_card", 3),
    ]

    def broken(change: TicketChange) -> list[NewJob]:
        raise RuntimeError("the builder broke")

    with pytest.raises(RuntimeError):
        await store.tickets.update_ticket(
            ticket.id, expected_version=2, actor="c", kind="y", jobs=broken
        )
    after = await store.tickets.get_ticket(ticket.id)
    assert after is not None
    assert after.version == 2  # the change rolled back with its jobs


async def test_reminders_are_recorded_once_whoever_races(database: Database) -> None:
    clock = Clock()
    first, second = await database.open(clock=clock), await database.open(clock=clock)
    old, _ = await open_for(first, alice(), dedupe_key="old")
    clock.now += timedelta(minutes=30)
    await open_for(first, alice(), dedupe_key="new")
    taken, _ = await open_for(first, alice(), dedupe_key="taken")
    await first.tickets.update_ticket(
        taken.id, expected_version=1, actor="a", kind="a", status="assigned"
    )
    hour = timedelta(hours=1)
    assert await first.reminders.tickets_to_remind(hour) == []
    clock.now += timedelta(minutes=31)
    [(due, last)] = await first.reminders.tickets_to_remind(hour)
    assert (due.id, last) == (old.id, None)
    wins = await asyncio.gather(
        first.reminders.mark_reminded(old.id, None, [card("msteams", "remind")]),
        second.reminders.mark_reminded(old.id, None, [card("msteams", "remind")]),
    )
    assert sorted(wins) == [False, True]
    assert len(await first.jobs.ticket_jobs(old.id)) == 1
    assert await first.reminders.tickets_to_remind(hour) == []
    clock.now += hour
    [(due, last)] = await second.reminders.tickets_to_remind(hour, limit=1)
    assert due.id == old.id
    assert last == clock.now - hour
    assert await second.reminders.mark_reminded(old.id, last)
    assert not await first.reminders.mark_reminded(old.id, last)
    await first.reminders.restart_reminders(old.id)
    clock.now += timedelta(minutes=59)
    assert [t.id for t, _ in await first.reminders.tickets_to_remind(hour)] == [ticket_id(2)]


async def test_forget_jobs_done_before(store: Store) -> None:
    ticket, _ = await open_for(store, alice())
    await store.jobs.enqueue_jobs(ticket.id, [card("slack"), card("slack")])
    [job] = await store.jobs.claim_jobs(["slack"], lease=timedelta(minutes=1))
    await store.jobs.finish_job(job.id)
    assert await store.jobs.forget_jobs_done_before(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert await store.jobs.forget_jobs_done_before(datetime.now(UTC) + timedelta(hours=1)) == 1
    assert [j.seq for j in await store.jobs.ticket_jobs()] == [2]
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.jobs.forget_jobs_done_before(datetime(2026, 1, 1))


async def test_a_database_from_before_tickets_is_refused_then_upgraded(tmp_path: Path) -> None:
    """A database as create_all made it before tickets (the first release's tables but the
    ticket ones): refused at start naming the upgrade, which makes the rest, and then works."""
    from bot.store import SchemaMismatch, migrate
    from bot.store.migrations.first_release import metadata as first_release

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        old = [t for t in first_release.sorted_tables if t.name not in NEW_TABLES]
        await conn.run_sync(lambda sync: first_release.create_all(sync, tables=old))
    await engine.dispose()
    assert {"tickets", "conversations"} <= {t.name for t in old}
    with pytest.raises(SchemaMismatch, match="python -m bot db upgrade"):
        await Store.open(url)
    await migrate.upgrade(url)
    async with await Store.open(url) as store:
        ticket, _ = await open_for(store, alice())
        await store.jobs.enqueue_jobs(ticket.id, [card("slack")])
        assert len(await store.jobs.ticket_jobs()) == 1


NEW_TABLES = {"admin_channels", "ticket_cards", "ticket_jobs", "ticket_reminders"}
