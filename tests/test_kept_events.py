"""``store.kept``: deliveries kept before they are acknowledged, on SQLite and (with
TEST_POSTGRES_URL) PostgreSQL, by two stores on one database as two processes would: a repeat is
never kept twice, a live owner's lease holds, a dead owner's is taken over once, and done rows
are forgotten on request."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store import Store, StoreError
from bot.store.kept import MAX_ATTEMPTS

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
LEASE = timedelta(seconds=5)


class Clock:
    """A clock the test moves: both stores share it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def pass_(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not POSTGRES_URL, reason="TEST_POSTGRES_URL is not set"),
        ),
    ]
)
async def two_stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Store, Store, Clock]]:
    clock = Clock()
    schema = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'kept.db'}"
    else:
        url, schema = POSTGRES_URL, f"t_{uuid.uuid4().hex}"
    first = await Store.open(url, schema=schema, clock=clock)
    second = await Store.open(url, schema=schema, clock=clock)
    try:
        yield first, second, clock
    finally:
        await first.close()
        await second.close()
        if schema is not None:
            engine = create_async_engine(url)
            async with engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await engine.dispose()


async def test_a_repeat_is_kept_once_across_processes(
    two_stores: tuple[Store, Store, Clock],
) -> None:
    first, second, _ = two_stores
    kept = await asyncio.gather(
        *(
            store.kept.keep(
                "slack", "dm", {"n": n}, delivery_key="slack:event:Ev1", owner="a", lease=LEASE
            )
            for n, store in enumerate([first, second] * 4)
        )
    )
    assert len([k for k in kept if k is not None]) == 1
    # Its id is seen, as any handled delivery's: the old check agrees.
    assert await first.seen.first_time_seen("slack:event:Ev1") is False
    # Without an id a delivery cannot be told apart from another: always kept.
    assert await first.kept.keep("slack", "dm", {}, delivery_key=None, owner="a", lease=LEASE)
    assert await first.kept.keep("slack", "dm", {}, delivery_key=None, owner="a", lease=LEASE)
    assert len(await second.kept.kept_events(pending=True)) == 3


async def test_a_live_lease_holds_and_a_dead_one_is_taken_over_once(
    two_stores: tuple[Store, Store, Clock],
) -> None:
    first, second, clock = two_stores
    kept = await first.kept.keep(
        "slack", "dm", {"text": "hi"}, delivery_key="slack:event:Ev2", owner="a", lease=LEASE
    )
    assert kept is not None
    assert kept.body == {"text": "hi"}
    assert await second.kept.claim(["slack"], owner="b", lease=LEASE) == []
    clock.pass_(4)
    assert await first.kept.renew(kept.id, owner="a", lease=LEASE)  # a works on it: renewed
    clock.pass_(4)
    assert await second.kept.claim(["slack"], owner="b", lease=LEASE) == []
    assert await second.kept.claim(["msteams"], owner="b", lease=LEASE) == []
    clock.pass_(2)  # a died: no renewal; the lease runs out
    claims = await asyncio.gather(
        second.kept.claim(["slack"], owner="b", lease=LEASE),
        first.kept.claim(["slack"], owner="c", lease=LEASE),
    )
    taken = [k for claim in claims for k in claim]
    assert [(k.id, k.attempts) for k in taken] == [(kept.id, 2)]
    new_owner = taken[0].owner
    # The old owner can neither renew nor finish it any more; the new one can.
    assert not await first.kept.renew(kept.id, owner="a", lease=LEASE)
    assert not await first.kept.finish(kept.id, owner="a")
    assert await second.kept.finish(kept.id, owner=new_owner)
    clock.pass_(60)
    assert await first.kept.claim(["slack"], owner="d", lease=LEASE) == []
    assert await first.kept.kept_events(pending=True) == []


async def test_what_kills_every_process_that_takes_it_is_given_up_on(
    two_stores: tuple[Store, Store, Clock],
) -> None:
    first, second, clock = two_stores
    kept = await first.kept.keep("slack", "dm", {}, delivery_key=None, owner="a", lease=LEASE)
    assert kept is not None
    for attempt in range(2, MAX_ATTEMPTS + 1):
        clock.pass_(10)
        (taken,) = await second.kept.claim(["slack"], owner=f"p{attempt}", lease=LEASE)
        assert taken.attempts == attempt
    clock.pass_(10)
    assert await second.kept.claim(["slack"], owner="last", lease=LEASE) == []
    (row,) = await first.kept.kept_events()
    assert row.done_at is not None
    assert row.last_error is not None
    assert "gave up" in row.last_error


async def test_a_release_hands_it_back_at_once_and_done_rows_are_forgotten(
    two_stores: tuple[Store, Store, Clock],
) -> None:
    first, second, clock = two_stores
    one = await first.kept.keep("slack", "dm", {}, delivery_key="k1", owner="a", lease=LEASE)
    two = await first.kept.keep("slack", "dm", {}, delivery_key="k2", owner="a", lease=LEASE)
    assert one is not None
    assert two is not None
    await first.kept.release(two.id, owner="a")  # a shutdown cut its work short
    (taken,) = await second.kept.claim(["slack"], owner="b", lease=LEASE)
    assert (taken.id, taken.attempts) == (two.id, 1)
    assert await first.kept.finish(one.id, owner="a", error="ValueError")
    clock.pass_(3600)
    with pytest.raises(ValueError, match="timezone-aware"):
        await first.kept.forget_kept_before(datetime(2026, 1, 1))
    # Only done rows go: the one still owed is kept whatever its age.
    assert await first.kept.forget_kept_before(clock.now) == 1
    assert [k.id for k in await first.kept.kept_events()] == [two.id]


async def test_a_store_that_cannot_keep_says_so(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    async with store.kept._engine.begin() as conn:
        await conn.execute(text("DROP TABLE kept_events"))
    try:
        with pytest.raises(StoreError, match="cannot keep the delivery"):
            await store.kept.keep("slack", "dm", {}, delivery_key="k", owner="a", lease=LEASE)
        # Nothing half-done: the id was not marked seen either, so Slack's retry is handled.
        assert await store.seen.first_time_seen("k") is True
    finally:
        await store.close()
