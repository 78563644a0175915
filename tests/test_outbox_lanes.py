"""The outbox's lanes (``store.jobs``) on SQLite and, with TEST_POSTGRES_URL, PostgreSQL: a
conversation's late replies and a ticket's jobs share the queue, each in order in its own lane;
a lease is renewed while a job is in flight and runs out once it no longer is."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.store import REPLY_JOB, NewJob, Store
from tests.test_store import Clock, Database, alice, database, open_for

__all__ = ["database"]  # the fixture, from the store's tests

LEASE = timedelta(seconds=10)
TEAMS_CHAT = "msteams:a:alex"


async def test_late_replies_wait_in_order_per_conversation_beside_ticket_jobs(
    database: Database,
) -> None:
    clock = Clock()
    store = await database.open(clock=clock)
    ticket, _ = await open_for(store, alice())
    assert not await store.jobs.replies_waiting("msteams", TEAMS_CHAT)
    await store.jobs.enqueue_replies("msteams", TEAMS_CHAT, [{"n": 1}, {"n": 2}])
    await store.jobs.enqueue_jobs(ticket.id, [NewJob("msteams", "note", {"n": 1})])
    await store.jobs.enqueue_replies("msteams", "msteams:a:other", [{"n": 1}])
    assert await store.jobs.replies_waiting("msteams", TEAMS_CHAT)
    assert not await store.jobs.replies_waiting("slack", TEAMS_CHAT)

    claimed = await store.jobs.claim_jobs(["msteams"], lease=LEASE)
    assert [(job.lane, job.kind, job.seq, job.ticket_id) for job in claimed] == [
        (f"conversation:{TEAMS_CHAT}", REPLY_JOB, 1, None),
        (f"ticket:{ticket.number}", "note", 1, ticket.id),
        ("conversation:msteams:a:other", REPLY_JOB, 1, None),
    ]
    await store.jobs.finish_job(claimed[0].id)
    [second] = await store.jobs.claim_jobs(["msteams"], lease=LEASE)
    assert (second.lane, second.seq, second.payload) == (f"conversation:{TEAMS_CHAT}", 2, {"n": 2})
    await store.jobs.finish_job(second.id)
    assert not await store.jobs.replies_waiting("msteams", TEAMS_CHAT)
    # A ticket's jobs are still its own: listed by ticket, numbered per ticket.
    assert [job.kind for job in await store.jobs.ticket_jobs(ticket.id)] == ["note"]


async def test_a_renewed_lease_keeps_a_job_and_a_lapsed_one_lets_it_go(
    database: Database,
) -> None:
    clock = Clock()
    store = await database.open(clock=clock)
    other = await database.open(clock=clock)  # another process on the same database
    await store.jobs.enqueue_replies("msteams", TEAMS_CHAT, [{"n": 1}])
    [job] = await store.jobs.claim_jobs(["msteams"], lease=LEASE)
    clock.now += LEASE / 3
    assert await store.jobs.renew_lease([job.id], lease=LEASE) == 1
    clock.now += LEASE * 2 / 3  # past the first lease, not the renewed one
    assert await other.jobs.claim_jobs(["msteams"], lease=LEASE) == []
    clock.now += LEASE / 3  # the renewed lease ran out: the process died
    [taken] = await other.jobs.claim_jobs(["msteams"], lease=LEASE)
    assert (taken.id, taken.attempts) == (job.id, 2)
    await other.jobs.finish_job(taken.id)
    assert await store.jobs.renew_lease([job.id], lease=LEASE) == 0  # done: nothing to renew


async def test_replies_kept_at_once_by_two_processes_are_numbered_apart(
    database: Database,
) -> None:
    first, second = await database.open(), await database.open()
    await asyncio.gather(
        *(
            store.jobs.enqueue_replies("slack", "slack:D0ALEX", [{"n": n}, {"n": n + 1}])
            for n, store in ((1, first), (3, second), (5, first), (7, second))
        )
    )
    jobs = [job for job in await first.jobs.ticket_jobs() if job.kind == REPLY_JOB]
    assert sorted(job.seq for job in jobs) == list(range(1, 9))
    by_seq = sorted(jobs, key=lambda job: job.seq)
    # Each keeping's two replies stay together and in order.
    pairs = [tuple(job.payload["n"] for job in by_seq[k : k + 2]) for k in range(0, 8, 2)]
    assert all(b == a + 1 for a, b in pairs)


async def test_a_reply_cannot_be_queued_with_a_ticket(database: Database) -> None:
    store: Store = await database.open()
    ticket, _ = await open_for(store, alice())
    with pytest.raises(ValueError, match="enqueue_replies"):
        await store.jobs.enqueue_jobs(ticket.id, [NewJob("msteams", REPLY_JOB, {})])
