"""The outbox: everything that must reach a platform or the webhook, delivered at least once and
in order per lane and target, by whichever process claims it. A lane is a ticket (its cards,
notes, news, webhook events) or a conversation (a turn's replies that could not be sent within
the turn: ``enqueue_replies``).

Its own room because the queue has its own life (claims, leases and their renewal, retries,
clean-up) apart from the tickets and turns that fill it; ``insert_jobs`` is the one way in for a
ticket, used by a ticket change or a reminder inside its own transaction and by ``enqueue_jobs``
on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, func, select, true
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.engine import Aggregate, StoreError, UnknownTicket
from bot.store.records import (
    JOB_KINDS,
    JOB_TARGETS,
    REPLY_JOB,
    NewJob,
    TicketJob,
    conversation_lane,
    known_number,
    ticket_id,
    ticket_lane,
    ticket_number,
)
from bot.store.schema import ticket_jobs, tickets

#: What a database that is down or stalled raises; the two calls a turn makes say StoreError, so
#: that the turn can still try to send.
_DATABASE_DOWN = (SQLAlchemyError, OSError, TimeoutError)


# Asked on every turn that replies (each platform's late.py): built once, bound per call.
_REPLIES_WAITING = (
    select(true())
    .where(ticket_jobs.c.lane == bindparam("lane"))
    .where(ticket_jobs.c.target == bindparam("target"))
    .where(ticket_jobs.c.done_at.is_(None))
    .limit(1)
)


class JobQueue(Aggregate):
    """The durable queue of ticket jobs and late replies (``store.jobs``)."""

    async def enqueue_jobs(self, ticket_id: str, jobs: Sequence[NewJob]) -> int:
        """Queue jobs for a ticket, after any queued before for the same target; return how many.

        (A ticket change queues its jobs with ``update_ticket(jobs=...)``, in its transaction.)
        """
        number = known_number(ticket_id)
        if not jobs:
            return 0
        async with self._engine.begin() as conn:
            if self._dialect == "postgresql":
                # Jobs of one ticket are numbered one transaction at a time.
                lock = select(tickets.c.number).where(tickets.c.number == number).with_for_update()
                if (await conn.execute(lock)).first() is None:
                    raise UnknownTicket(f"there is no ticket {ticket_id}")
            await insert_jobs(conn, number, jobs, self._clock())
        return len(jobs)

    async def enqueue_replies(
        self, target: str, conversation_key: str, payloads: Sequence[dict[str, Any]]
    ) -> int:
        """Keep a turn's replies that could not be sent within the turn, after any of the same
        conversation kept before, for the worker to deliver to ``target`` (the platform); one
        job per message, so that a retry sends again only the one that failed. How many."""
        jobs = [NewJob(target, REPLY_JOB, dict(payload)) for payload in payloads]
        return await self.enqueue_in_lane(conversation_lane(conversation_key), jobs, "replies")

    async def enqueue_in_lane(self, lane: str, jobs: Sequence[NewJob], what: str = "jobs") -> int:
        """Queue jobs of no ticket in ``lane`` (a conversation's late replies, the changes made
        outside a ticket), after any queued before in it; how many. ``what``: for the error."""
        if not jobs:
            return 0
        try:
            async with self._engine.begin() as conn:
                if self._dialect == "postgresql":
                    # A lane's jobs are numbered one transaction at a time (there is no row to
                    # lock, so a lock on the lane's name, released at commit).
                    await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(lane))))
                await _insert(conn, lane, None, jobs, self._clock())
        except _DATABASE_DOWN as error:
            raise StoreError(f"the {what} could not be kept: {type(error).__name__}") from None
        return len(jobs)

    async def replies_waiting(self, target: str, conversation_key: str) -> bool:
        """Whether replies of this conversation wait in the outbox: a later reply must queue
        behind them, so that the conversation reads in order."""
        parameters = {"lane": conversation_lane(conversation_key), "target": target}

        def read(conn: Connection) -> bool:
            return conn.execute(_REPLIES_WAITING, parameters).first() is not None

        try:
            return await self._transactions.read(read)
        except _DATABASE_DOWN as error:
            raise StoreError(f"the outbox could not be read: {type(error).__name__}") from None

    async def renew_lease(self, job_ids: Sequence[int], *, lease: timedelta) -> int:
        """Push the lease of jobs still being delivered ``lease`` from now (the worker's
        heartbeat): while this process lives nobody takes them over; once it dies they are
        free a lease later. How many were still pending."""
        if not job_ids:
            return 0
        async with self._engine.begin() as conn:
            result = await conn.execute(
                ticket_jobs.update()
                .where(ticket_jobs.c.id.in_(list(job_ids)))
                .where(ticket_jobs.c.done_at.is_(None))
                .values(next_attempt_at=self._clock() + lease)
            )
        return int(result.rowcount)

    async def claim_jobs(
        self, targets: Sequence[str], *, lease: timedelta, limit: int = 50
    ) -> list[TicketJob]:
        """Take the due jobs for ``targets`` that are first in line for their lane and target
        (every earlier job of theirs is done), oldest first, for ``lease``: no other process
        takes them meanwhile (``renew_lease`` keeps them). Each claim counts as an attempt."""
        if not targets:
            return []
        now = self._clock()
        job, earlier = ticket_jobs.alias("job"), ticket_jobs.alias("earlier")
        first_in_line = (
            select(job.c.id)
            .where(job.c.done_at.is_(None))
            .where(job.c.target.in_(list(targets)))
            .where(job.c.next_attempt_at <= now)
            .where(
                ~exists()
                .where(earlier.c.lane == job.c.lane)
                .where(earlier.c.target == job.c.target)
                .where(earlier.c.done_at.is_(None))
                .where(earlier.c.seq < job.c.seq)
            )
            .order_by(job.c.id)
            .limit(limit)
            .with_for_update(of=job, skip_locked=True)  # PostgreSQL: leave them to the other
        )
        # One statement: on SQLite it holds the write lock from the start; on PostgreSQL jobs
        # another process is claiming are skipped, and one it claimed meanwhile fails the
        # re-checked WHERE.
        claim = (
            ticket_jobs.update()
            .where(ticket_jobs.c.id.in_(first_in_line.scalar_subquery()))
            .where(ticket_jobs.c.done_at.is_(None))
            .where(ticket_jobs.c.next_attempt_at <= now)
            .values(attempts=ticket_jobs.c.attempts + 1, next_attempt_at=now + lease)
            .returning(*ticket_jobs.c)
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(claim)).all()
        return sorted((_job(row) for row in rows), key=lambda job: job.id)

    async def finish_job(self, job_id: int, *, error: str | None = None) -> None:
        """Mark a job done (``error``: it was given up on, and why)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                ticket_jobs.update()
                .where(ticket_jobs.c.id == job_id)
                .values(done_at=self._clock(), last_error=error)
            )

    async def retry_job(self, job_id: int, *, after: timedelta, error: str) -> None:
        """Try a job again ``after`` from now, noting why it failed."""
        async with self._engine.begin() as conn:
            await conn.execute(
                ticket_jobs.update()
                .where(ticket_jobs.c.id == job_id)
                .where(ticket_jobs.c.done_at.is_(None))
                .values(next_attempt_at=self._clock() + after, last_error=error[:2000])
            )

    async def release_jobs(self, job_ids: Sequence[int]) -> None:
        """Hand claimed jobs back at once (a worker stopping), without counting the attempt."""
        if not job_ids:
            return
        async with self._engine.begin() as conn:
            await conn.execute(
                ticket_jobs.update()
                .where(ticket_jobs.c.id.in_(list(job_ids)))
                .where(ticket_jobs.c.done_at.is_(None))
                .values(next_attempt_at=self._clock(), attempts=ticket_jobs.c.attempts - 1)
            )

    async def ticket_jobs(
        self, ticket_id: str | None = None, *, pending: bool = False
    ) -> list[TicketJob]:
        """Queued jobs, oldest first: of one ticket, or all; only those not done if ``pending``."""
        query = select(ticket_jobs).order_by(ticket_jobs.c.id)
        if ticket_id is not None:
            query = query.where(ticket_jobs.c.ticket_number == ticket_number(ticket_id))
        if pending:
            query = query.where(ticket_jobs.c.done_at.is_(None))
        async with self._engine.begin() as conn:
            rows = (await conn.execute(query)).all()
        return [_job(row) for row in rows]

    async def forget_jobs_done_before(self, cutoff: datetime, *, limit: int | None = None) -> int:
        """Delete jobs done before ``cutoff`` (timezone-aware), at most ``limit`` of them;
        return how many."""
        if cutoff.tzinfo is None:
            raise ValueError("cutoff must be timezone-aware")
        return await self._delete_where(ticket_jobs, ticket_jobs.c.done_at < cutoff, limit)


async def insert_jobs(
    conn: AsyncConnection, number: int, jobs: Sequence[NewJob], now: datetime
) -> None:
    """Insert a ticket's jobs, each numbered after the last of its ticket and target. The caller
    holds the ticket (a row lock, or SQLite's write lock), so numbers and commits stay in order."""
    if any(job.kind == REPLY_JOB for job in jobs):
        raise ValueError("a reply is kept with enqueue_replies, not with a ticket")
    await _insert(conn, ticket_lane(number), number, jobs, now)


async def _insert(
    conn: AsyncConnection,
    lane: str,
    number: int | None,
    jobs: Sequence[NewJob],
    now: datetime,
) -> None:
    """Insert jobs, each numbered after the last of its lane and target; the caller holds the
    lane (see ``insert_jobs`` and ``enqueue_replies``)."""
    for job in jobs:
        if job.target not in JOB_TARGETS or job.kind not in JOB_KINDS:
            raise ValueError(f"no such job: {job.kind} for {job.target}")
        next_seq = (
            select(func.coalesce(func.max(ticket_jobs.c.seq), 0) + 1)
            .where(ticket_jobs.c.lane == lane)
            .where(ticket_jobs.c.target == job.target)
            .scalar_subquery()
        )
        await conn.execute(
            ticket_jobs.insert().values(
                ticket_number=number,
                lane=lane,
                target=job.target,
                kind=job.kind,
                seq=next_seq,
                payload=job.payload,
                created_at=now,
                attempts=0,
                next_attempt_at=now,
                done_at=None,
                last_error=None,
            )
        )


def _job(row: Row[Any]) -> TicketJob:
    return TicketJob(
        id=int(row.id),
        ticket_id=ticket_id(row.ticket_number) if row.ticket_number is not None else None,
        lane=row.lane,
        target=row.target,
        kind=row.kind,
        seq=int(row.seq),
        payload=dict(row.payload),
        created_at=row.created_at,
        attempts=int(row.attempts),
        next_attempt_at=row.next_attempt_at,
        done_at=row.done_at,
        last_error=row.last_error,
    )


__all__ = ["JobQueue", "insert_jobs"]
