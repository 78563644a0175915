"""The tickets' job worker: delivers what the service queued (``ticket_jobs``) to the platforms'
notifiers and the webhook, at least once, in order per ticket and target.

Jobs are claimed with a lease (a process that dies lets them go when it runs out), delivered
in lanes (each target's jobs in order, the targets side by side), and a failure is retried
with backoff (or after the wait the other side asked for); a ``PermanentFailure`` gives the
job up. A room of its own: the delivery machinery, apart from what the jobs mean.
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

from bot.store import Requester, Store, StoreError, TicketJob
from bot.tickets.card import TicketCard
from bot.tickets.news import RequesterNews
from bot.tickets.protocol import CardRef, PermanentFailure, RetryLater, TicketNotifier
from bot.tickets.timing import TicketTiming
from bot.tickets.webhook import WEBHOOK, WebhookClient

log = logging.getLogger(__name__)


class JobWorker:
    """Delivers the due jobs of the targets this process serves (its notifiers' platforms,
    and the webhook when TICKET_WEBHOOK_URL is set)."""

    def __init__(
        self,
        store: Store,
        timing: TicketTiming,
        *,
        notifiers: Mapping[str, TicketNotifier],
        admin_channels: Callable[[], Awaitable[dict[str, dict[str, Any]]]],
        news: RequesterNews,
        webhook: WebhookClient,
    ) -> None:
        """``notifiers`` is the service's own mapping (a channel adds its notifier there);
        ``admin_channels`` says where a card without one is posted."""
        self._store = store
        self.timing = timing
        self._notifiers = notifiers
        self._admin_channels = admin_channels
        self._news = news
        self._webhook = webhook
        self.wake = asyncio.Event()  # set when a job is queued here: deliver at once
        self.in_flight: set[int] = set()
        self._claiming: asyncio.Future[list[TicketJob]] | None = None
        self.session: aiohttp.ClientSession | None = None

    def targets(self) -> list[str]:
        """The job targets this process delivers: its notifiers' platforms, and the webhook."""
        served = sorted(self._notifiers)
        if self._webhook.settings.ticket_webhook_url:
            served.append(WEBHOOK)
        return served

    async def run(self) -> None:
        """Deliver due jobs until cancelled: at once when a job is queued here, else every few
        seconds (other processes queue jobs too)."""
        while True:
            self.wake.clear()
            try:
                delivered = await self.deliver_due()
            except Exception:
                log.exception("ticket jobs could not be read")
                delivered = 0
            if delivered:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.timing.poll_seconds)

    async def deliver_due(self) -> int:
        """One pass: claim the due jobs first in line, deliver them (each target's in order,
        the targets side by side); return how many were tried."""
        lease = timedelta(seconds=self.timing.lease_seconds)
        # The claim runs as a task of its own and is shielded: a stop that cancels this pass
        # while the claim is committing must still learn which jobs it took, or they would wait
        # out the lease (five minutes) before another process could deliver them.
        claim = asyncio.ensure_future(
            self._store.jobs.claim_jobs(self.targets(), lease=lease, limit=self.timing.batch)
        )
        claim.add_done_callback(self._claimed)
        self._claiming = claim
        jobs = await asyncio.shield(claim)
        lanes: dict[str, list[TicketJob]] = {}
        for job in jobs:
            lanes.setdefault(job.target, []).append(job)
        outcomes = await asyncio.gather(
            *(self._deliver_lane(lane) for lane in lanes.values()), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                # The store failed while recording a delivery: its lease runs out and it is
                # delivered again (at least once).
                log.error("ticket job not recorded", exc_info=outcome)
        return len(jobs)

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

    async def _deliver_lane(self, jobs: list[TicketJob]) -> None:
        for job in jobs:
            await self._deliver_one(job)

    async def _deliver_one(self, job: TicketJob) -> None:
        context = {"ticket": job.ticket_id, "job": job.kind, "target": job.target}
        try:
            async with asyncio.timeout(self.timing.delivery_timeout_seconds):
                await self._deliver(job)
        except PermanentFailure as failure:
            log.error("ticket job given up", extra={**context, "reason": str(failure)})
            await self._store.jobs.finish_job(job.id, error=str(failure) or type(failure).__name__)
        except Exception as failure:
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
            await self._store.jobs.finish_job(job.id)
        self.in_flight.discard(job.id)

    def _backoff(self, attempts: int, asked: float | None) -> float:
        cap = self.timing.retry_cap_seconds
        if asked is not None:
            return min(max(asked, 0.0), cap)
        wait = min(cap, self.timing.retry_base_seconds * 2.0 ** max(attempts - 1, 0))
        return wait * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret

    async def _deliver(self, job: TicketJob) -> None:
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
            drawn = TicketCard.of(ticket, requesters, self._news.knowledge)
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
                drawn = TicketCard.of(ticket, requesters, self._news.knowledge)
                await notifier.remind(ref, drawn, str(job.payload["text"]))
        else:
            raise PermanentFailure(f"{job.kind} is not a job for {job.target}")

    async def _tell_requester(self, notifier: TicketNotifier, news: dict[str, Any]) -> None:
        requester = Requester.from_json(news["requester"])
        replies = await self._news.replies(
            requester, str(news["news"]), str(news["ticket"]), str(news["admin"]), str(news["text"])
        )
        await notifier.tell_requester(requester, replies)


__all__ = ["JobWorker"]
