"""The job queue: everything that must reach a platform or the webhook, delivered at least once
and in order per ticket and target, by whichever process claims it.

Its own room because the queue has its own life (claims, leases, retries, clean-up) apart from
the tickets whose changes fill it; ``insert_jobs`` is the one way in, used by a ticket change or a
reminder inside its own transaction and by ``enqueue_jobs`` on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.engine import Aggregate, UnknownTicket
from bot.store.records import (
    JOB_KINDS,
    JOB_TARGETS,
    NewJob,
    TicketJob,
    known_number,
    ticket_id,
    ticket_number,
)
from bot.store.schema import ticket_jobs, tickets


class JobQueue(Aggregate):
    """The durable queue of ticket jobs (``store.jobs``)."""

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

    async def claim_jobs(
        self, targets: Sequence[str], *, lease: timedelta, limit: int = 50
    ) -> list[TicketJob]:
        """Take the due jobs for ``targets`` that are first in line for their ticket and target
        (every earlier job of theirs is done), oldest first, for ``lease``: no other process
        takes them meanwhile. Each claim counts as an attempt."""
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
                .where(earlier.c.ticket_number == job.c.ticket_number)
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
    """Insert jobs, each numbered after the last of its ticket and target. The caller holds
    the ticket (a row lock, or SQLite's write lock), so numbers and commits stay in order."""
    for job in jobs:
        if job.target not in JOB_TARGETS or job.kind not in JOB_KINDS:
            raise ValueError(f"no such job: {job.kind} for {job.target}")
        next_seq = (
            select(func.coalesce(func.max(ticket_jobs.c.seq), 0) + 1)
            .where(ticket_jobs.c.ticket_number == number)
            .where(ticket_jobs.c.target == job.target)
            .scalar_subquery()
        )
        await conn.execute(
            ticket_jobs.insert().values(
                ticket_number=number,
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
        ticket_id=ticket_id(row.ticket_number),
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
