"""Retention: what the store forgets once it is older than the window (``RETENTION_DAYS``), in
bounded batches: idle conversations and their references, and resolved tickets with all that
hangs on them. (Seen event ids and done jobs are forgotten by their own rooms,
``store.seen.forget_seen_before`` and ``store.jobs.forget_jobs_done_before``.)

Its own room because forgetting crosses the aggregates: a conversation is kept while someone
in it waits on an unresolved ticket (their news must still reach them), and a ticket goes with
every row that names it. Each method deletes one batch in one short transaction, safe with
several processes: PostgreSQL skips the tickets another purge has locked, and a conversation
that comes back to life is simply written again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import ColumnElement, Table, and_, exists, select

from bot.store.engine import Aggregate
from bot.store.schema import conversation_refs, conversations, metadata, ticket_requesters, tickets

_RESOLVED: Final = "resolved"


def _naming_tickets() -> list[tuple[Table, ColumnElement[int]]]:
    """Every table with a column that refers to a ticket, and that column: what goes with a
    ticket (its requesters, history, cards, jobs, reminders, and any table added later)."""
    found = []
    for table in reversed(metadata.sorted_tables):  # dependants first
        for key in table.foreign_keys:
            if key.column is tickets.c.number:
                found.append((table, key.parent))
    return found


class Retention(Aggregate):
    """What the background purge forgets (``store.retention``)."""

    async def forget_idle_conversations(self, cutoff: datetime, *, limit: int | None = None) -> int:
        """Delete the state and the reference of conversations not updated since ``cutoff``
        (at most ``limit`` of each), except where a requester of an unresolved ticket waits
        for news; return how many rows went."""
        _aware(cutoff)
        forgotten = 0
        for table in (conversations, conversation_refs):
            idle = and_(table.c.updated_at < cutoff, ~_waited_in(table.c.key))
            forgotten += await self._delete_where(table, idle, limit)
        return forgotten

    async def forget_resolved_tickets(self, cutoff: datetime, *, limit: int | None = None) -> int:
        """Delete tickets resolved (and not changed) before ``cutoff``, at most ``limit`` of
        them, with every row that names them; return how many tickets went."""
        _aware(cutoff)
        forgettable = and_(tickets.c.status == _RESOLVED, tickets.c.updated_at < cutoff)
        chosen = select(tickets.c.number).where(forgettable).order_by(tickets.c.number)
        chosen = chosen.limit(limit)
        if self._dialect == "postgresql":  # another purge (or a reopen) holds it: skip it
            chosen = chosen.with_for_update(skip_locked=True)
        async with self._engine.begin() as conn:
            numbers = list((await conn.execute(chosen)).scalars())
            if not numbers:
                return 0
            # Asked again under the write lock: SQLite reads the choice before its transaction
            # begins, so another process may have forgotten (or reopened) one meanwhile.
            still = select(tickets.c.number).where(tickets.c.number.in_(numbers), forgettable)
            for table, column in _naming_tickets():
                await conn.execute(table.delete().where(column.in_(still)))
            gone = await conn.execute(tickets.delete().where(tickets.c.number.in_(still)))
        return int(gone.rowcount)


def _waited_in(key: ColumnElement[str]) -> ColumnElement[bool]:
    """Whether someone waits on an unresolved ticket in the conversation ``key``: who opened
    it, or a requester who joined it."""
    unresolved = tickets.c.status != _RESOLVED
    opened = exists().where(unresolved, tickets.c.conversation_key == key)
    joined = exists().where(
        unresolved,
        ticket_requesters.c.ticket_number == tickets.c.number,
        ticket_requesters.c.requester["conversation_key"].as_string() == key,
    )
    return opened | joined


def _aware(cutoff: datetime) -> None:
    if cutoff.tzinfo is None:
        raise ValueError("cutoff must be timezone-aware")


__all__ = ["Retention"]
