"""The one Store the app opens and closes: the engine, and the aggregates that share it.

Its own room because opening (engine, schema check), pinging and closing are the whole life of the
database connection, while what is stored is the aggregates' business: ``store.conversations``,
``store.tickets``, ``store.channels``, ``store.reminders``, ``store.jobs``, ``store.seen``,
``store.retention`` (what the background purge forgets) and ``store.kept``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.channels import ChannelStore
from bot.store.conversations import ConversationStore
from bot.store.engine import (
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_URL,
    StoreUnavailable,
    Transactions,
    ping_engine,
    utcnow,
)
from bot.store.jobs import JobQueue
from bot.store.kept import KeptEvents
from bot.store.migrate import open_engine
from bot.store.reminders import ReminderStore
from bot.store.retention import Retention
from bot.store.seen import SeenEvents
from bot.store.tickets import TicketStore


class Store:
    """Conversation state, profiles, seen event ids and tickets, on one AsyncEngine.

    Build it with ``await Store.open(url)``; every method of its aggregates is its own short
    transaction, so several processes can share one PostgreSQL database.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Callable[[], datetime] | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        """Wrap an engine as it is (no tables are created); most callers want Store.open.
        ``timeout`` bounds the waits of the transactions run whole (``Transactions``)."""
        self._engine = engine
        self._clock = clock or utcnow
        self._transactions = Transactions(engine, timeout)
        shared = (engine, self._clock, self._transactions)
        self.conversations = ConversationStore(*shared)
        self.tickets = TicketStore(*shared)
        self.channels = ChannelStore(*shared)
        self.reminders = ReminderStore(*shared)
        self.jobs = JobQueue(*shared)
        self.seen = SeenEvents(*shared)
        self.retention = Retention(*shared)
        self._ping: asyncio.Task[None] | None = None
        self.kept = KeptEvents(*shared)

    @classmethod
    async def open(
        cls,
        url: str = DEFAULT_URL,
        *,
        schema: str | None = None,
        clock: Callable[[], datetime] | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> Store:
        """Create the engine on a database at this code's schema revision.

        An empty database is created at the latest revision; one made before migrations and
        matching it is stamped; any other that is not at it raises ``SchemaMismatch`` (a
        ``StoreError`` naming ``python -m bot db upgrade``). Processes opening together take
        turns (``bot.store.migrate``). SQLite connections get WAL, foreign keys and a busy
        timeout. ``schema`` (PostgreSQL only) puts the tables in that schema, created if
        missing. ``clock`` returns aware UTC "now". ``timeout`` bounds every wait on the
        database (pool, connect, statement, lock).
        """
        return cls(await open_engine(url, schema, timeout), clock=clock, timeout=timeout)

    async def close(self) -> None:
        """Close every pooled connection."""
        try:
            await self._transactions.close()
        finally:
            await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def ping(self, within: float | None = None) -> None:
        """Check the database answers; raise StoreUnavailable saying why not, at the latest
        after ``within`` seconds when given.

        Callers share one ping in flight, and one given up on runs on to its own timeout
        rather than being cancelled: a stalled database then holds one connection for the
        probes, however often /readyz is asked, and no connection is left half-used."""
        if self._ping is None or self._ping.done():
            self._ping = asyncio.create_task(ping_engine(self._engine), name="store ping")
            self._ping.add_done_callback(_retrieved)
        try:
            async with asyncio.timeout(within):  # not wait_for: it can lose a cancel on 3.11
                await asyncio.shield(self._ping)
        except TimeoutError:
            raise StoreUnavailable(f"the database did not answer within {within:g} s") from None

    def now(self) -> datetime:
        """The store's clock: aware UTC now (a test's clock under test)."""
        return self._clock()


def _retrieved(task: asyncio.Task[None]) -> None:
    """Take a ping's failure when nobody waits for it any more (asyncio would log it)."""
    if not task.cancelled():
        task.exception()


__all__ = ["Store"]
