"""Reminders: an open ticket nobody took is announced again in the admins' channels every
ESCALATION_REMIND_MINUTES, and the jobs delivered long ago are forgotten.

Its own room: a clock-driven loop beside the job worker; it only queues ``remind`` jobs (the
worker delivers them), and several processes may run it at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from bot.config import Settings
from bot.store import NewJob, Store
from bot.tickets.timing import TicketTiming
from knowledge.kb import ConversationText

log = logging.getLogger(__name__)


class Reminders:
    """Queues the reminders that are due; ``wake`` tells the worker there is something to do."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        words: ConversationText,
        timing: TicketTiming,
        *,
        admin_channels: Callable[[], Awaitable[dict[str, dict[str, Any]]]],
        wake: asyncio.Event,
    ) -> None:
        self._store = store
        self.settings = settings
        self.words = words
        self.timing = timing
        self._admin_channels = admin_channels
        self._wake = wake

    async def run(self) -> None:
        """Remind the admins of open tickets nobody took, until cancelled; and forget old jobs."""
        while True:
            try:
                await self.remind_due()
                await self._store.jobs.forget_jobs_done_before(
                    self._store.now() - self.timing.keep_done_jobs
                )
            except Exception:
                log.exception("ticket reminders failed")
            await asyncio.sleep(self.timing.reminder_check_seconds)

    async def remind_due(self) -> int:
        """Queue a reminder on every card of each open ticket whose last reminder (or opening) is
        ESCALATION_REMIND_MINUTES old; return how many tickets. Several processes may run this:
        each reminder is recorded with a conditional write, so only one of them queues it."""
        every = timedelta(minutes=self.settings.escalation_remind_minutes)
        admin_platforms = set(await self._admin_channels())
        reminded = 0
        for ticket, last in await self._store.reminders.tickets_to_remind(every):
            platforms = sorted(
                admin_platforms | set(await self._store.channels.ticket_cards(ticket.id))
            )
            waited = int((self._store.now() - ticket.created_at).total_seconds() // 60)
            text = self._text("ticket_reminder", ticket=ticket.id, minutes=str(waited))
            jobs = [NewJob(p, "remind", {"text": text}) for p in platforms]
            if await self._store.reminders.mark_reminded(ticket.id, last, jobs):
                reminded += 1
        if reminded:
            log.info("open tickets reminded", extra={"tickets": reminded})
            self._wake.set()
        return reminded

    def _text(self, key: str, **values: str) -> str:
        return self.words.text(key, **values)


__all__ = ["Reminders"]
