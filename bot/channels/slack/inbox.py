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

Backpressure: at most ``max_in_flight`` deliveries are worked on at once in this process
(``SLACK_MAX_WORK_IN_FLIGHT``). Acknowledging faster than the work is done would only pile up
tasks, each holding its body and waiting for the event loop and the database, until every reply
is late and memory grows with the burst. So a delivery over the bound first waits for a slot
before it is acknowledged (``admitted``, at most ``ADMIT_SECONDS``): a short spike is absorbed
there, in memory, at the cost of a slower acknowledgement, well within Slack's 3 s (a late one
is sent again and makes the burst worse). One that gets no slot in time is acknowledged all the
same (it is kept, so nothing is lost) and waits in the store, not in
memory: it is handed back (``store.kept.release``: its lease ends now, its attempt is not
counted) and taken again with ``store.kept.claim``, oldest first, as soon as a slot frees, by
this process or by any other serving the same database with a slot free. Answering 503
instead, for Slack to send it again, was not chosen: Slack retries at once, after a minute and
after five, then gives up, so replies would come in minutes rather than keep pace. While
deliveries wait in the store, a new one waits behind them, so a person's second message is never
worked on before their first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
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
_HAND_BACK_AT_ONCE: Final = 32
ADMIT_SECONDS: Final = 0.5
"""How long a delivery waits for a slot before it is acknowledged and left in the store
instead: Slack gives up at 3 s, and the keep itself may wait for a busy database."""

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
        max_in_flight: int,
        ready: Callable[[], bool],
    ) -> None:
        """Keep in ``store``; work on ``background``, at most ``max_in_flight`` deliveries at
        once; a lease lasts ``lease_seconds`` and is renewed three times as often. Recovery
        waits until ``ready()`` (the bot knows who it is on Slack: a message is told apart from
        the bot's own only then)."""
        self._store = store
        self._background = background
        self._lease = timedelta(seconds=lease_seconds)
        self._renew_every = lease_seconds / 3
        self._ready = ready
        self._owner = process_owner()
        self._works: dict[str, Work] = {}
        self._recovery: asyncio.Task[None] | None = None
        self._bound = max_in_flight
        self._in_flight = 0
        self._most_in_flight = 0
        self._to_hand_back: list[int] = []  # kept ids over the bound, still leased to us
        self._handed_back = 0  # how many of ours wait in the store (a bound: others may take them)
        self._wake = asyncio.Event()
        self._admitting: deque[asyncio.Future[None]] = deque()  # deliveries waiting for a slot
        # SQLite lets one writer in at a time and makes the others sleep and try again (its
        # busy timeout): under a burst, writers queued here in turn are many times faster.
        self._writing = asyncio.Lock()

    def handle(self, works: Mapping[str, Work]) -> None:
        """The work of each kind of delivery (``Listeners.works``)."""
        self._works.update(works)

    async def keep(self, kind: str, body: Mapping[str, Any], key: str | None) -> KeptEvent | None:
        """Keep a delivery before it is acknowledged; None when it is a repeat (``key`` seen
        before: drop it). Raises StoreError when it could not be kept: do not acknowledge."""
        # Slack's legacy verification token rides in every body: the work never needs it.
        kept_body = {name: value for name, value in body.items() if name != "token"}
        async with self._writing:
            kept = await self._store.kept.keep(
                Platform.SLACK,
                kind,
                kept_body,
                delivery_key=key,
                owner=self._owner,
                lease=self._lease,
            )
        if kept is None:
            log.info("dropped a repeated Slack delivery", extra={"kind": kind})
        return kept

    @property
    def in_flight(self) -> int:
        """How many deliveries this process is working on now."""
        return self._in_flight

    @property
    def most_in_flight(self) -> int:
        """The most deliveries this process worked on at once since it started."""
        return self._most_in_flight

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[Callable[[KeptEvent], None]]:
        """Wait for a slot (at most ``ADMIT_SECONDS``) before the delivery is kept and
        acknowledged; yield what starts the kept delivery's work: in that slot, or, when none
        came in time, or others already wait in the store, after them from the store. A slot
        not used (a repeat, a delivery not kept) is freed on the way out."""
        reserved = await self._admit()
        used = False

        def run(kept: KeptEvent) -> None:
            nonlocal used
            used = True
            if reserved:
                self._background.spawn(self._run(kept), name=f"slack-{kept.kind}")
            else:
                self._to_hand_back.append(kept.id)
                self._wake.set()

        try:
            yield run
        finally:
            if reserved and not used:
                self._free_slot()

    async def start(self) -> None:
        """Look for what a dead process left, now and every few seconds."""
        if self._recovery is None:
            self._recovery = asyncio.create_task(self._recover_forever(), name="slack-recovery")

    async def close(self) -> None:
        """Stop looking (the work already started goes on, until the server's shutdown); what
        waits for a slot is handed back to the store for the next process to take at once."""
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
            self._recovery = None
        with contextlib.suppress(*_STORE_ERRORS):
            await self._hand_back(len(self._to_hand_back))

    async def recover(self) -> int:
        """Claim, as far as slots are free, the kept deliveries whose owner's lease ran out (a
        dead process's, or handed back to wait for a slot) and do their work here; how many were
        taken."""
        taken = 0
        while (free := self._bound - self._in_flight) > 0:
            async with self._writing:
                claimed = await self._store.kept.claim(
                    [Platform.SLACK], owner=self._owner, lease=self._lease, limit=free
                )
            for kept in claimed:
                if kept.attempts > 1:  # handed back for a slot, it comes back at its first
                    log.warning(
                        "finishing a Slack delivery another process kept and left",
                        extra={"kind": kept.kind, "kept_id": kept.id, "attempt": kept.attempts},
                    )
                self._start(kept)
            taken += len(claimed)
            self._handed_back = max(0, self._handed_back - len(claimed))
            if len(claimed) < free:  # nothing else waits (another process may have taken some)
                self._handed_back = 0
                break
        return taken

    def _waiting(self) -> bool:
        return bool(self._to_hand_back) or self._handed_back > 0

    async def _admit(self) -> bool:
        """Whether a slot was reserved (counted in flight) for the caller."""
        if self._waiting():  # older deliveries wait in the store: this one goes after them
            return False
        if self._in_flight < self._bound and not self._admitting:
            self._take_slot()
            return True
        slot = asyncio.get_running_loop().create_future()
        self._admitting.append(slot)
        await asyncio.wait([slot], timeout=ADMIT_SECONDS)
        if slot.done():  # handed over by work that ended (``_free_slot``)
            return True
        slot.cancel()
        self._admitting.remove(slot)
        return False

    def _take_slot(self) -> None:
        self._in_flight += 1
        self._most_in_flight = max(self._most_in_flight, self._in_flight)

    def _free_slot(self) -> None:
        """A slot freed: to the store's waiting deliveries (older) first, else to a delivery
        waiting to be acknowledged."""
        self._in_flight -= 1
        if self._waiting():
            self._wake.set()
            return
        while self._admitting:
            slot = self._admitting.popleft()
            if not slot.done():
                self._take_slot()
                slot.set_result(None)
                return

    def _start(self, kept: KeptEvent) -> None:
        self._take_slot()
        self._background.spawn(self._run(kept), name=f"slack-{kept.kind}")

    async def _hand_back(self, most: int) -> None:
        """Hand the first ``most`` deliveries over the bound back to the store: they wait there,
        claimable at once, rather than in this process's memory."""
        while self._to_hand_back and most > 0:
            async with self._writing:
                await self._store.kept.release(self._to_hand_back[0], owner=self._owner)
            self._to_hand_back.pop(0)
            self._handed_back += 1
            most -= 1

    async def _recover_forever(self) -> None:
        while True:
            more = False
            try:
                # In turns, so that slots freed meanwhile are filled while a burst is still
                # being handed back.
                await self._hand_back(_HAND_BACK_AT_ONCE)
                if self._ready():
                    await self.recover()
                more = bool(self._to_hand_back)
            except _STORE_ERRORS as error:
                log.warning(
                    "could not look for Slack deliveries left unfinished",
                    extra={"reason": type(error).__name__},
                )
            if not more:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._renew_every):
                        await self._wake.wait()
                self._wake.clear()

    async def _run(self, kept: KeptEvent) -> None:
        try:
            await self._work(kept)
        finally:
            self._free_slot()

    async def _work(self, kept: KeptEvent) -> None:
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
                async with self._writing:
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
                async with self._writing:
                    done = await self._store.kept.finish(kept.id, owner=self._owner, error=error)
                if not done:
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
                async with self._writing:
                    renewed = await self._store.kept.renew(
                        kept.id, owner=self._owner, lease=self._lease
                    )
                if not renewed:
                    return
            except _STORE_ERRORS as error:
                log.warning(
                    "could not renew the lease of a Slack delivery",
                    extra={"kind": kept.kind, "reason": type(error).__name__},
                )


__all__ = ["ADMIT_SECONDS", "WORKING_ON", "SlackInbox", "Work", "process_owner"]
