"""Kept events: what a platform delivered and the bot acknowledged, kept until its work is done,
so that a process killed after the acknowledgement loses nothing (``store.kept``).

Slack does not send an acknowledged event again: the bot must keep it before it says "got it".
``keep`` writes the delivery (and its id into ``seen_events``, in the same transaction, so a
repeat is never kept twice) with a lease for this process; the work renews the lease while it
runs and ``finish`` marks the row done. A row not done whose lease ran out belongs to a process
that died: ``claim`` hands it to another, once (one statement, as the job queue claims). Its own
room because it shares nothing with the tickets' jobs but the engine: inbound work, not outbound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError

from bot.store.engine import Aggregate, StoreError
from bot.store.schema import kept_events, seen_events

MAX_ATTEMPTS: Final = 3
"""A kept event whose work was started this often and never finished (each time its process
died) is given up on: it is what kills the process, most likely."""
_GAVE_UP: Final = f"gave up: started {MAX_ATTEMPTS} times and never finished"


@dataclass(frozen=True)
class KeptEvent:
    """A delivery kept for its work: what the platform sent (``body``) and what to do with it
    (``kind``, the platform's own name for the work)."""

    id: int
    platform: str
    kind: str
    body: dict[str, Any]
    delivery_key: str | None
    owner: str
    kept_at: datetime
    lease_until: datetime
    attempts: int
    done_at: datetime | None
    last_error: str | None


class KeptEvents(Aggregate):
    """Deliveries acknowledged but not yet worked through, across processes (``store.kept``)."""

    async def keep(
        self,
        platform: str,
        kind: str,
        body: Mapping[str, Any],
        *,
        delivery_key: str | None,
        owner: str,
        lease: timedelta,
    ) -> KeptEvent | None:
        """Keep a delivery for ``owner`` (this process) for ``lease``; None when its
        ``delivery_key`` was seen before (a repeat: nothing to do). A delivery without a key
        cannot be told apart from another and is always kept. Raises StoreError when the
        database cannot keep it: the caller must then not acknowledge it."""
        now = self._clock()
        try:
            async with self._engine.begin() as conn:
                if delivery_key is not None:
                    seen = (
                        self._insert(seen_events)
                        .values(event_id=delivery_key, seen_at=now)
                        .on_conflict_do_nothing(index_elements=[seen_events.c.event_id])
                    )
                    if (await conn.execute(seen)).rowcount != 1:
                        return None
                insert = (
                    kept_events.insert()
                    .values(
                        platform=platform,
                        kind=kind,
                        body=dict(body),
                        delivery_key=delivery_key,
                        owner=owner,
                        kept_at=now,
                        lease_until=now + lease,
                        attempts=1,
                        done_at=None,
                        last_error=None,
                    )
                    .returning(*kept_events.c)
                )
                row = (await conn.execute(insert)).one()
        except (SQLAlchemyError, OSError, TimeoutError) as error:
            raise StoreError(f"cannot keep the delivery: {type(error).__name__}") from error
        return _kept(row)

    async def claim(
        self, platforms: Sequence[str], *, owner: str, lease: timedelta, limit: int = 20
    ) -> list[KeptEvent]:
        """Take kept events of ``platforms`` whose owner's lease ran out (the owner died), oldest
        first, for ``owner`` and ``lease``: no other process takes them meanwhile. Each claim
        counts as an attempt; one started ``MAX_ATTEMPTS`` times is marked done, given up on."""
        if not platforms:
            return []
        now = self._clock()
        expired = (
            kept_events.c.done_at.is_(None),
            kept_events.c.lease_until <= now,
            kept_events.c.platform.in_(list(platforms)),
        )
        orphans = (
            select(kept_events.c.id)
            .where(*expired, kept_events.c.attempts < MAX_ATTEMPTS)
            .order_by(kept_events.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL: leave them to the other
        )
        # One statement, as the job queue claims: on SQLite it holds the write lock from the
        # start; on PostgreSQL a row another process claimed meanwhile fails the re-checked WHERE.
        claim = (
            kept_events.update()
            .where(kept_events.c.id.in_(orphans.scalar_subquery()), *expired)
            .values(owner=owner, lease_until=now + lease, attempts=kept_events.c.attempts + 1)
            .returning(*kept_events.c)
        )
        give_up = (
            kept_events.update()
            .where(*expired, kept_events.c.attempts >= MAX_ATTEMPTS)
            .values(done_at=now, last_error=_GAVE_UP)
        )
        async with self._engine.begin() as conn:
            await conn.execute(give_up)
            rows = (await conn.execute(claim)).all()
        return sorted((_kept(row) for row in rows), key=lambda kept: kept.id)

    async def renew(self, kept_id: int, *, owner: str, lease: timedelta) -> bool:
        """Push out ``owner``'s lease on a kept event it is working on; False when it is no
        longer ``owner``'s (done, or taken over after the lease ran out)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                kept_events.update()
                .where(kept_events.c.id == kept_id)
                .where(kept_events.c.owner == owner)
                .where(kept_events.c.done_at.is_(None))
                .values(lease_until=self._clock() + lease)
            )
        return bool(result.rowcount == 1)

    async def finish(self, kept_id: int, *, owner: str, error: str | None = None) -> bool:
        """Mark ``owner``'s kept event done (``error``: its work failed, and why); False when it
        was no longer ``owner``'s."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                kept_events.update()
                .where(kept_events.c.id == kept_id)
                .where(kept_events.c.owner == owner)
                .where(kept_events.c.done_at.is_(None))
                .values(done_at=self._clock(), last_error=error[:2000] if error else None)
            )
        return bool(result.rowcount == 1)

    async def release(self, kept_id: int, *, owner: str) -> None:
        """Hand a kept event back at once (its work was cancelled at shutdown), without counting
        the attempt: another process, or the next start, takes it over without waiting."""
        async with self._engine.begin() as conn:
            await conn.execute(
                kept_events.update()
                .where(kept_events.c.id == kept_id)
                .where(kept_events.c.owner == owner)
                .where(kept_events.c.done_at.is_(None))
                .values(lease_until=self._clock(), attempts=kept_events.c.attempts - 1)
            )

    async def kept_events(self, *, pending: bool = False) -> list[KeptEvent]:
        """Kept events, oldest first; only those not done if ``pending``."""
        query = select(kept_events).order_by(kept_events.c.id)
        if pending:
            query = query.where(kept_events.c.done_at.is_(None))
        async with self._engine.begin() as conn:
            rows = (await conn.execute(query)).all()
        return [_kept(row) for row in rows]

    async def forget_kept_before(self, cutoff: datetime, *, limit: int | None = None) -> int:
        """Delete kept events done before ``cutoff`` (timezone-aware), at most ``limit`` of
        them; return how many. Those not done are kept whatever their age: their work is still
        owed."""
        if cutoff.tzinfo is None:
            raise ValueError("cutoff must be timezone-aware")
        return await self._delete_where(kept_events, kept_events.c.done_at < cutoff, limit)


def _kept(row: Row[Any]) -> KeptEvent:
    return KeptEvent(
        id=int(row.id),
        platform=row.platform,
        kind=row.kind,
        body=dict(row.body),
        delivery_key=row.delivery_key,
        owner=row.owner,
        kept_at=row.kept_at,
        lease_until=row.lease_until,
        attempts=int(row.attempts),
        done_at=row.done_at,
        last_error=row.last_error,
    )


__all__ = ["MAX_ATTEMPTS", "KeptEvent", "KeptEvents"]
