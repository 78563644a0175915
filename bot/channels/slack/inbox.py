"""Keep, then acknowledge: what Slack delivers is written to the store before bolt says "got it",
and what a dead process left unfinished is finished by another.

Slack does not send an acknowledged event again, so one acknowledged and then lost with its
process (a SIGKILL, a crash, a deploy) would be lost for good. The listeners ask ``keep`` first:
the delivery goes into ``store.kept`` (its id into ``store.seen`` in the same transaction, so a
repeat is dropped here, once across processes), leased to this process; only then do they
acknowledge, and ``run`` does the work on the background tasks, renewing the lease, and marks it
done. When the store cannot keep it, ``keep`` raises and the listener answers 503: Slack sends an
unacknowledged delivery again. Every few seconds ``recover`` claims what a dead process left
(its lease ran out) and does that work here. Its own room because it is the one place where a
delivery's life (kept, worked, done) is decided, whichever listener heard it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, Final

from sqlalchemy.exc import SQLAlchemyError

from bot.background import BackgroundTasks
from bot.store import KeptEvent, Store, StoreError
from dialogs.messages import Platform

log = logging.getLogger("bot.channels.slack")

Work = Callable[[dict[str, Any]], Awaitable[None]]
"""The work one kind of delivery starts, from the body Slack sent (as bolt parsed it)."""
_STORE_ERRORS: Final = (StoreError, SQLAlchemyError, OSError, TimeoutError)

WORKING_ON: ContextVar[str] = ContextVar("slack_delivery", default="")
"""The kept delivery the current work is for ("slack-kept:<id>"; the same each time it is worked
on): a turn gives it to ``Message.delivery``, so that a turn already saved for it is not run
again (``bot.turns``)."""


def process_owner() -> str:
    """Who this process is, in the store's leases: the host, the pid and a random part (a pid
    is reused after a restart; the lease must not be)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SlackInbox:
    """The deliveries this process kept and works on, and the recovery of a dead one's."""

    def __init__(
        self,
        *,
        store: Store,
        background: BackgroundTasks,
        lease_seconds: float,
        ready: Callable[[], bool],
    ) -> None:
        """Keep in ``store``; work on ``background``; a lease lasts ``lease_seconds`` and is
        renewed three times as often. Recovery waits until ``ready()`` (the bot knows who it is
        on Slack: a message is told apart from the bot's own only then)."""
        self._store = store
        self._background = background
        self._lease = timedelta(seconds=lease_seconds)
        self._renew_every = lease_seconds / 3
        self._ready = ready
        self._owner = process_owner()
        self._works: dict[str, Work] = {}
        self._recovery: asyncio.Task[None] | None = None

    def handle(self, works: Mapping[str, Work]) -> None:
        """The work of each kind of delivery (``Listeners.works``)."""
        self._works.update(works)

    async def keep(self, kind: str, body: Mapping[str, Any], key: str | None) -> KeptEvent | None:
        """Keep a delivery before it is acknowledged; None when it is a repeat (``key`` seen
        before: drop it). Raises StoreError when it could not be kept: do not acknowledge."""
        # Slack's legacy verification token rides in every body: the work never needs it.
        kept_body = {name: value for name, value in body.items() if name != "token"}
        kept = await self._store.kept.keep(
            Platform.SLACK, kind, kept_body, delivery_key=key, owner=self._owner, lease=self._lease
        )
        if kept is None:
            log.info("dropped a repeated Slack delivery", extra={"kind": kind})
        return kept

    def run(self, kept: KeptEvent) -> None:
        """Do a kept delivery's work on the background tasks; done once it ends."""
        self._background.spawn(self._run(kept), name=f"slack-{kept.kind}")

    async def start(self) -> None:
        """Look for what a dead process left, now and every few seconds."""
        if self._recovery is None:
            self._recovery = asyncio.create_task(self._recover_forever(), name="slack-recovery")

    async def close(self) -> None:
        """Stop looking (the work already started goes on, until the server's shutdown)."""
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
            self._recovery = None

    async def recover(self) -> int:
        """Claim the kept deliveries whose owner's lease ran out and do their work here; how
        many were taken."""
        claimed = await self._store.kept.claim(
            [Platform.SLACK], owner=self._owner, lease=self._lease
        )
        for kept in claimed:
            log.warning(
                "finishing a Slack delivery another process kept and left",
                extra={"kind": kept.kind, "kept_id": kept.id, "attempt": kept.attempts},
            )
            self.run(kept)
        return len(claimed)

    async def _recover_forever(self) -> None:
        while True:
            if self._ready():
                try:
                    await self.recover()
                except _STORE_ERRORS as error:
                    log.warning(
                        "could not look for Slack deliveries left unfinished",
                        extra={"reason": type(error).__name__},
                    )
            await asyncio.sleep(self._renew_every)

    async def _run(self, kept: KeptEvent) -> None:
        work = self._works.get(kept.kind)
        renewing = asyncio.create_task(self._renew(kept), name="slack-lease")
        error: str | None = None
        try:
            if work is None:
                error = f"no work for a {kept.kind!r} delivery"
                log.error("a kept Slack delivery of no known kind", extra={"kind": kept.kind})
            else:
                WORKING_ON.set(f"slack-kept:{kept.id}")  # this task's own context
                await work(kept.body)
        except asyncio.CancelledError:
            # A shutdown cut it short: hand it back, so whoever starts next takes it at once.
            renewing.cancel()
            with contextlib.suppress(*_STORE_ERRORS):
                await self._store.kept.release(kept.id, owner=self._owner)
            raise
        except Exception as failed:
            # The work tells the person itself when it can; doing it again would not help.
            log.exception("Slack work failed", extra={"kind": kept.kind})
            error = type(failed).__name__
        finally:
            renewing.cancel()
        await self._finish(kept, error)

    async def _finish(self, kept: KeptEvent, error: str | None) -> None:
        for attempt in range(3):  # a busy SQLite, a PostgreSQL failover: done must be said
            try:
                if not await self._store.kept.finish(kept.id, owner=self._owner, error=error):
                    log.warning(
                        "a Slack delivery was taken over before its work ended",
                        extra={"kind": kept.kind, "kept_id": kept.id},
                    )
                return
            except _STORE_ERRORS as failed:
                log.warning(
                    "could not mark a Slack delivery done",
                    extra={"kind": kept.kind, "reason": type(failed).__name__},
                )
                await asyncio.sleep(0.5 * (attempt + 1))

    async def _renew(self, kept: KeptEvent) -> None:
        while True:
            await asyncio.sleep(self._renew_every)
            try:
                if not await self._store.kept.renew(kept.id, owner=self._owner, lease=self._lease):
                    return
            except _STORE_ERRORS as error:
                log.warning(
                    "could not renew the lease of a Slack delivery",
                    extra={"kind": kept.kind, "reason": type(error).__name__},
                )


__all__ = ["WORKING_ON", "SlackInbox", "Work", "process_owner"]
