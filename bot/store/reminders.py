"""Reminders: an open ticket nobody took is announced again to the admins, once per interval
whichever process notices first.

Its own room because a reminder is a claim of its own (the last reminder's time, compared and
set in one statement) that queues its jobs in the same transaction; the ticket is not changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.sql.expression import Executable

from bot.store.engine import Aggregate
from bot.store.jobs import insert_jobs
from bot.store.records import NewJob, TicketRecord, known_number, ticket_from_row
from bot.store.schema import ticket_reminders, tickets


class ReminderStore(Aggregate):
    """When each open ticket was last announced again (``store.reminders``)."""

    async def tickets_to_remind(
        self, every: timedelta, *, limit: int = 100
    ) -> list[tuple[TicketRecord, datetime | None]]:
        """Open tickets (nobody took them) not announced for ``every`` since they were opened or
        last reminded of, with that last reminder (None: never), oldest first."""
        cutoff = self._clock() - every
        since = func.coalesce(ticket_reminders.c.last_reminded_at, tickets.c.created_at)
        query = (
            select(tickets, ticket_reminders.c.last_reminded_at)
            .select_from(tickets.outerjoin(ticket_reminders))
            .where(tickets.c.status == "open")
            .where(since <= cutoff)
            .order_by(tickets.c.number)
            .limit(limit)
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(query)).all()
        return [(ticket_from_row(row), row.last_reminded_at) for row in rows]

    async def mark_reminded(
        self, ticket_id: str, last: datetime | None, jobs: Sequence[NewJob] = ()
    ) -> bool:
        """Record a reminder if the last one is still ``last`` (None: there was none), and queue
        ``jobs`` with it; False if another process reminded first (nothing is queued then)."""
        number = known_number(ticket_id)
        now = self._clock()
        if last is None:
            claim: Executable = (
                self._insert(ticket_reminders)
                .values(ticket_number=number, last_reminded_at=now)
                .on_conflict_do_nothing(index_elements=[ticket_reminders.c.ticket_number])
            )
        else:
            claim = (
                ticket_reminders.update()
                .where(ticket_reminders.c.ticket_number == number)
                .where(ticket_reminders.c.last_reminded_at == last)
                .values(last_reminded_at=now)
            )
        async with self._engine.begin() as conn:
            result = await conn.execute(claim)
            if result.rowcount != 1:
                return False
            await insert_jobs(conn, number, jobs, now)
        return True

    async def restart_reminders(self, ticket_id: str) -> None:
        """Count the reminder interval from now (a ticket open again)."""
        number = known_number(ticket_id)
        now = self._clock()
        upsert = (
            self._insert(ticket_reminders)
            .values(ticket_number=number, last_reminded_at=now)
            .on_conflict_do_update(
                index_elements=[ticket_reminders.c.ticket_number], set_={"last_reminded_at": now}
            )
        )
        async with self._engine.begin() as conn:
            await conn.execute(upsert)


__all__ = ["ReminderStore"]
