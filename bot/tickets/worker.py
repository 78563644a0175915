"""The outbox's worker: delivers what was queued (``ticket_jobs``) to the platforms' notifiers,
the webhook, and the platforms' ``LateReplies`` (a turn's replies kept because they could not be
sent within the turn), at least once, in order per lane (a ticket, a conversation) and target.

Jobs are claimed with a short lease, renewed while they are in flight (a heartbeat: a long
delivery waiting out a Retry-After is never taken over while this process lives, and a process
that dies lets them go a lease later); only the first job of each lane and target is claimed,
a target's ticket jobs are delivered one after another and each conversation's late replies
beside them, and a failure is retried with backoff (or after the wait the other side asked
for); a ``PermanentFailure`` gives the job up. A room of its own: the delivery machinery, apart
from what the jobs mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import aiohttp

from bot.store import REPLY_JOB, Requester, Store, StoreError, TicketJob
from bot.tickets.card import TicketCard
from bot.tickets.news import RequesterNews
from bot.tickets.protocol import (
    CardRef,
    LateReplies,
    PermanentFailure,
    RetryLater,
    TicketNotifier,
)
from bot.tickets.timing import TicketTiming
from bot.tickets.webhook import WEBHOOK, WebhookClient

log = logging.getLogger(__name__)


class JobWorker:
    """Delivers the due jobs of the targets this process serves (its notifiers' and late
    replies' platforms, and the webhook when TICKET_WEBHOOK_URL is set)."""

    def __init__(
        self,
        store: Store,
        timing: TicketTiming,
        *,
        notifiers: Mapping[str, TicketNotifier],
        admin_channels: Callable[[], Awaitable[dict[str, dict[str, Any]]]],
        news: RequesterNews,
        webhook: WebhookClient,
        late_replies: Mapping[str, LateReplies] | None = None,
        fixes: bool = False,
    ) -> None:
        """``notifiers`` and ``late_replies`` are the service's own mappings (a channel adds
        its own there); ``admin_channels`` says where a card without one is posted; ``fixes``:
        the cards may offer to make a change a requester asked for (see ``TicketCard.of``)."""
        self.fixes = fixes
        self._store = store
        self.timing = timing
        self._notifiers = notifiers
        self._late_replies: Mapping[str, LateReplies] = {} if late_replies is None else late_replies
        self._admin_channels = admin_channels
        self._news = news
        self._webhook = webhook
        self.wake = asyncio.Event()  # set when a job is queued here: deliver at once
        self.in_flight: set[int] = set()
        self._claiming: asyncio.Future[list[TicketJob]] | None = None
        self._renewing = asyncio.Lock()  # held while the leases in flight are renewed
        self.session: aiohttp.ClientSession | None = None

    def targets(self) -> list[str]:
        """The job targets this process delivers: its notifiers' platforms (and those it sends
        late replies to), and the webhook."""
        served = sorted({*self._notifiers, *self._late_replies})
        if self._webhook.settings.ticket_webhook_url:
            served.append(WEBHOOK)
        return served

    async def run(self) -> None:
        """Deliver due jobs until cancelled: at once when a job is queued here or a delivery
        ends (the next of its lane is due then), else every few seconds (other processes queue
        jobs too). Claims go on while deliveries are in flight (at most ``batch`` jobs held);
        each group (see ``_group``) is delivered in order, the groups side by side, so a late
        reply waiting out a long Retry-After holds up only its own conversation. Every lease
        in flight is renewed meanwhile."""
        queued: dict[str, list[TicketJob]] = {}
        runners: set[asyncio.Task[None]] = set()
        heartbeat = asyncio.create_task(self._heartbeat())

        async def deliver_group(group: str) -> None:
            try:
                while queued[group]:
                    await self._deliver_recorded(queued[group].pop(0))
            finally:
                del queued[group]

        def ended(task: asyncio.Task[None]) -> None:
            runners.discard(task)
            self.wake.set()

        try:
            while True:
                self.wake.clear()
                jobs: list[TicketJob] = []
                room = self.timing.batch - len(self.in_flight)
                if room > 0:
                    try:
                        jobs = await self._claim(room)
                    except Exception:
                        log.exception("ticket jobs could not be read")
                for job in jobs:
                    group = _group(job)
                    if group in queued:
                        queued[group].append(job)  # its runner takes it in turn
                        continue
                    queued[group] = [job]
                    runner = asyncio.create_task(deliver_group(group), name="outbox")
                    runners.add(runner)
                    runner.add_done_callback(ended)
                if jobs:
                    continue
                # asyncio.timeout, not wait_for: Python 3.11's wait_for returns normally when
                # the stop's cancel comes as the wake is set, and this loop never ended.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.timing.poll_seconds):
                        await self.wake.wait()
        finally:
            heartbeat.cancel()
            for runner in runners:
                runner.cancel()
            await asyncio.gather(heartbeat, *runners, return_exceptions=True)

    async def deliver_due(self) -> int:
        """One pass: claim the due jobs first in line (one per lane and target), deliver them
        (each group in order, the groups side by side); return how many were tried."""
        jobs = await self._claim(self.timing.batch)
        if not jobs:
            return 0
        groups: dict[str, list[TicketJob]] = {}
        for job in jobs:
            groups.setdefault(_group(job), []).append(job)
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            await asyncio.gather(*(self._deliver_in_order(group) for group in groups.values()))
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        return len(jobs)

    async def _deliver_in_order(self, jobs: list[TicketJob]) -> None:
        for job in jobs:
            await self._deliver_recorded(job)

    async def _claim(self, limit: int) -> list[TicketJob]:
        # The claim runs as a task of its own and is shielded: a stop that cancels the worker
        # while the claim is committing must still learn which jobs it took, or they would wait
        # out the lease before another process could deliver them.
        lease = timedelta(seconds=self.timing.lease_seconds)
        claim = asyncio.ensure_future(
            self._store.jobs.claim_jobs(self.targets(), lease=lease, limit=limit)
        )
        claim.add_done_callback(self._claimed)
        self._claiming = claim
        return await asyncio.shield(claim)

    async def _deliver_recorded(self, job: TicketJob) -> None:
        try:
            await self._deliver_one(job)
        except Exception:
            # The store failed while recording a delivery: its lease runs out and it is
            # delivered again (at least once).
            log.exception("ticket job not recorded")

    async def _heartbeat(self) -> None:
        """Renew the lease of every job in flight every third of a lease: a job waiting out a
        long Retry-After stays ours, and a process killed meanwhile lets its jobs go a lease
        after its last renewal."""
        while True:
            await asyncio.sleep(self.timing.renew_seconds)
            if not self.in_flight:
                continue
            lease = timedelta(seconds=self.timing.lease_seconds)
            async with self._renewing:
                try:
                    await self._store.jobs.renew_lease(sorted(self.in_flight), lease=lease)
                except Exception:  # the store is down: the delivery goes on, the lease may lapse
                    log.warning("could not renew the leases of the jobs in flight")

    def _claimed(self, claim: asyncio.Future[list[TicketJob]]) -> None:
        """Ours until delivered: a stop hands back the ones not done yet (see ``release``)."""
        if not claim.cancelled() and claim.exception() is None:
            self.in_flight.update(job.id for job in claim.result())

    async def release(self) -> None:
        """Hand back the jobs being delivered (a stop), so the next start retries them; a claim
        still committing when the stop came is waited for first."""
        claiming, self._claiming = self._claiming, None
        if claiming is not None:
            with contextlib.suppress(Exception):
                await claiming  # its callback has put what it took in ``in_flight``
        if self.in_flight:
            try:
                await self._store.jobs.release_jobs(sorted(self.in_flight))
            except StoreError:
                log.warning("could not hand back the jobs in flight; their lease will expire")
            self.in_flight.clear()

    async def _deliver_one(self, job: TicketJob) -> None:
        context = {"ticket": job.ticket_id or "", "job": job.kind, "target": job.target}
        try:
            async with asyncio.timeout(self.timing.delivery_timeout_seconds):
                await self._deliver(job)
        except PermanentFailure as failure:
            await self._let_go(job)
            log.error("ticket job given up", extra={**context, "reason": str(failure)})
            await self._store.jobs.finish_job(job.id, error=str(failure) or type(failure).__name__)
        except Exception as failure:
            await self._let_go(job)
            after = self._backoff(job.attempts, getattr(failure, "after", None))
            reason = str(failure) or type(failure).__name__
            log.warning(
                "ticket job failed; retrying",
                extra={
                    **context,
                    "attempts": job.attempts,
                    "wait": round(after, 2),
                    "reason": reason,
                },
            )
            await self._store.jobs.retry_job(job.id, after=timedelta(seconds=after), error=reason)
        else:
            # At once: a kill between the send and this line is the one window in which a job
            # is delivered twice (at least once).
            await self._let_go(job)
            await self._store.jobs.finish_job(job.id)

    async def _let_go(self, job: TicketJob) -> None:
        """No longer renew the job's lease, before its outcome is written: a renewal running
        now ends first, so that it cannot undo a retry's wait."""
        async with self._renewing:
            self.in_flight.discard(job.id)

    def _backoff(self, attempts: int, asked: float | None) -> float:
        cap = self.timing.retry_cap_seconds
        if asked is not None:
            return min(max(asked, 0.0), cap)
        wait = min(cap, self.timing.retry_base_seconds * 2.0 ** max(attempts - 1, 0))
        return wait * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret

    async def _deliver(self, job: TicketJob) -> None:
        if job.kind == REPLY_JOB:
            late = self._late_replies.get(job.target)
            if late is None:
                raise RetryLater(f"no {job.target} replies in this process")
            await late.send_late(job.payload)
            return
        if job.target == WEBHOOK and job.ticket_id is None:  # a change made outside a ticket
            await self._webhook.post(
                job, self.session, timeout_seconds=self.timing.webhook_timeout_seconds
            )
            return
        if job.ticket_id is None:
            raise PermanentFailure(f"a {job.kind} job without a ticket")
        ticket = await self._store.tickets.get_ticket(job.ticket_id)
        if ticket is None:
            raise PermanentFailure(f"there is no ticket {job.ticket_id}")
        if job.target == WEBHOOK:
            timeout = self.timing.webhook_timeout_seconds
            await self._webhook.post(job, self.session, timeout_seconds=timeout)
            return
        notifier = self._notifiers.get(job.target)
        if notifier is None:
            raise RetryLater(f"no {job.target} notifier in this process")
        if job.kind == "tell_requester":
            await self._tell_requester(notifier, job.payload)
            return
        card = (await self._store.channels.ticket_cards(ticket.id)).get(job.target)
        ref = CardRef(job.target, card) if card is not None else None
        if job.kind in ("post_card", "update_card"):
            requesters = await self._store.tickets.ticket_requesters(ticket.id)
            drawn = TicketCard.of(ticket, requesters, self._news.knowledge, fixes=self.fixes)
            if ref is not None:
                await notifier.update_card(ref, drawn)
                return
            channel = (await self._admin_channels()).get(job.target)
            if channel is None:
                log.info("no admins' channel for the card", extra={"target": job.target})
                return
            posted = await notifier.post_card(channel, drawn)
            await self._store.channels.save_card(ticket.id, job.target, posted.ref)
        elif ref is None:
            log.info("no card to add to", extra={"ticket": ticket.id, "job": job.kind})
        elif job.kind == "note":
            await notifier.post_note(ref, str(job.payload["text"]))
        elif job.kind == "remind":
            if ticket.status == "open":  # not taken meanwhile
                requesters = await self._store.tickets.ticket_requesters(ticket.id)
                drawn = TicketCard.of(ticket, requesters, self._news.knowledge, fixes=self.fixes)
                await notifier.remind(ref, drawn, str(job.payload["text"]))
        else:
            raise PermanentFailure(f"{job.kind} is not a job for {job.target}")

    async def _tell_requester(self, notifier: TicketNotifier, news: dict[str, Any]) -> None:
        requester = Requester.from_json(news["requester"])
        replies = await self._news.replies(
            requester, str(news["news"]), str(news["ticket"]), str(news["admin"]), str(news["text"])
        )
        await notifier.tell_requester(requester, replies)


def _group(job: TicketJob) -> str:
    """What a job is delivered in order with: a target's ticket jobs one after another (the
    admins' channel shows a burst of cards in the order the tickets came), a conversation's
    late replies on their own (one conversation's throttling holds up no other)."""
    return job.target if job.ticket_id is not None else f"{job.target} {job.lane}"


__all__ = ["JobWorker"]
