"""Seen event ids: a platform delivers an event again when it thinks it was lost (Slack's
retries, the Bot Framework's), and the processes sharing the store must handle it once.

Its own room because it shares nothing with conversations or tickets but the engine: one table,
one guarded INSERT.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.engine import Aggregate, Transactions
from bot.store.schema import seen_events


class SeenEvents(Aggregate):
    """Event ids already handled, across processes (``store.seen``)."""

    def __init__(
        self, engine: AsyncEngine, clock: Callable[[], datetime], transactions: Transactions
    ) -> None:
        super().__init__(engine, clock, transactions)
        # Asked for every activity and delivery: the statement is built once, bound per call.
        self._insert_new = self._insert(seen_events).on_conflict_do_nothing(
            index_elements=[seen_events.c.event_id]
        )

    async def first_time_seen(self, event_id: str) -> bool:
        """True the first time an event id is offered (across processes), False afterwards."""
        values = {"event_id": event_id, "seen_at": self._clock()}

        def insert(conn: Connection) -> bool:
            return conn.execute(self._insert_new, values).rowcount == 1

        return await self._transactions.write(insert)

    async def forget_seen_before(self, cutoff: datetime, *, limit: int | None = None) -> int:
        """Delete event ids first seen before ``cutoff`` (timezone-aware), at most ``limit`` of
        them; return how many."""
        if cutoff.tzinfo is None:
            raise ValueError("cutoff must be timezone-aware")
        return await self._delete_where(seen_events, seen_events.c.seen_at < cutoff, limit)


__all__ = ["SeenEvents"]
