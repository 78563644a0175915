"""The background purge: what is older than ``RETENTION_DAYS`` is forgotten, once at start and
then every hour, in bounded batches (seen event ids, done jobs, resolved tickets with what
hangs on them, idle conversations and their references).

Its own room because it is the one place that decides what the store forgets and when; the
store says how (each step is one batch in one short transaction, safe with several processes).
The purge is a list of small named steps (:func:`purge_steps`): another kind of kept row adds
one line. A step that fails (the database is down) is logged and tried again next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.store import Store, failure_reason

log = logging.getLogger(__name__)

Forget = Callable[[datetime, int], Awaitable[int]]
"""One step: forget up to ``limit`` rows older than the cutoff; return how many went."""


@dataclass(frozen=True)
class PurgeTiming:
    """How the purge paces itself (tests shorten these)."""

    every_seconds: float = 3600.0
    batch: int = 500  # rows per transaction
    max_batches: int = 100  # per step and round: the rest waits for the next round


@dataclass(frozen=True)
class Step:
    """One kind of row the purge forgets."""

    name: str
    forget: Forget


def purge_steps(store: Store) -> list[Step]:
    """What the purge forgets, in order: tickets before conversations, so that a conversation
    whose last ticket goes is free to go in the same round."""
    return [
        Step("seen_events", lambda cutoff, n: store.seen.forget_seen_before(cutoff, limit=n)),
        Step("done_jobs", lambda cutoff, n: store.jobs.forget_jobs_done_before(cutoff, limit=n)),
        Step("kept_events", lambda cutoff, n: store.kept.forget_kept_before(cutoff, limit=n)),
        Step("resolved_tickets", lambda cutoff, n: _tickets(store, cutoff, n)),
        Step("idle_conversations", lambda cutoff, n: _conversations(store, cutoff, n)),
    ]


def _tickets(store: Store, cutoff: datetime, limit: int) -> Awaitable[int]:
    return store.retention.forget_resolved_tickets(cutoff, limit=limit)


def _conversations(store: Store, cutoff: datetime, limit: int) -> Awaitable[int]:
    return store.retention.forget_idle_conversations(cutoff, limit=limit)


class Purge:
    """The purge of one process: ``start`` runs it at once and then every ``every_seconds``."""

    def __init__(
        self,
        store: Store,
        retention_days: int,
        timing: PurgeTiming | None = None,
        steps: list[Step] | None = None,
    ) -> None:
        """Forget what ``store`` holds older than ``retention_days`` (0: keep everything)."""
        self._store = store
        self._window = timedelta(days=retention_days)
        self.timing = timing or PurgeTiming()
        self.steps = steps if steps is not None else purge_steps(store)
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    @property
    def enabled(self) -> bool:
        return self._window > timedelta(0)

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="retention purge")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def once(self) -> dict[str, int]:
        """One round: every step, batch after batch; return how many rows each forgot."""
        cutoff = self._store.now() - self._window
        forgotten: dict[str, int] = {}
        for step in self.steps:
            try:
                forgotten[step.name] = await self._step(step, cutoff)
            except Exception as error:  # the database is down, say: the next round tries again
                log.warning(
                    "retention purge step failed",
                    extra={"step": step.name, "reason": failure_reason(error)},
                )
        self.rounds += 1
        if any(forgotten.values()):
            log.info("retention purge", extra={"forgotten": forgotten})
        return forgotten

    async def _step(self, step: Step, cutoff: datetime) -> int:
        total = 0
        for _ in range(self.timing.max_batches):
            gone = await step.forget(cutoff, self.timing.batch)
            total += gone
            if gone < self.timing.batch:
                break
            await asyncio.sleep(0)  # let turns in between
        return total

    async def _run(self) -> None:
        while True:
            await self.once()
            await asyncio.sleep(self.timing.every_seconds)


__all__ = ["Forget", "Purge", "PurgeTiming", "Step", "purge_steps"]
