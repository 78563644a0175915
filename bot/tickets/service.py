"""The tickets service, ``Tickets``: opens and joins tickets, applies the admins' actions and a
requester's reopening, registers the admins' channels, says who is an admin, and runs the job
worker and the reminders of this process (``start``/``stop``).

It is the one place that loads a ticket, asks the rules (``rules.py``) what an action does,
and stores the change with its jobs in one transaction (the cards' and the requesters' jobs
the rules name, the webhook's event); the worker (``worker.py``) delivers them later. The
platforms plug in through ``TicketNotifier`` (``protocol.py``), added with ``add_notifier``:
nothing here names a platform.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import aiohttp

from bot.config import Settings
from bot.store import (
    CHANGES_LANE,
    JobsFor,
    NewJob,
    Requester,
    StaleState,
    Store,
    StoreError,
    TicketChange,
    TicketRecord,
)
from bot.tenants import Tenants
from bot.tickets.card import TicketCard, asked_fix
from bot.tickets.fix_rules import FixRules, fix_record
from bot.tickets.fixes import FixApprovals
from bot.tickets.news import RequesterNews
from bot.tickets.protocol import (
    TERMINAL,
    Action,
    ActionRequest,
    ActionResult,
    Actor,
    FixRunner,
    LateReplies,
    TicketNotifier,
)
from bot.tickets.registration import Registration
from bot.tickets.reminders import Reminders
from bot.tickets.rules import ActionRules, Plan
from bot.tickets.timing import TicketTiming
from bot.tickets.webhook import WebhookClient, change_event_jobs, event_jobs
from bot.tickets.worker import JobWorker
from dialogs.directory import FixOutcome, FixPlan
from knowledge.kb import KnowledgeBase

log = logging.getLogger(__name__)

_ACT_ATTEMPTS = 5


class Tickets:
    """The tickets service of one process; nothing runs until ``start``, and a process that
    only acts (the CLI) never starts it."""

    def __init__(
        self,
        store: Store,
        knowledge: KnowledgeBase,
        settings: Settings,
        *,
        timing: TicketTiming | None = None,
        tenants: Tenants | None = None,
        fix_runner: FixRunner | None = None,
    ) -> None:
        """``fix_runner``: the organization's directory, to make the changes requesters ask
        for on an admin's approval; None (no directory connected): no card offers it."""
        self.store = store
        self.knowledge = knowledge
        self.settings = settings
        self.tenants = tenants or Tenants(settings)
        self._notifiers: dict[str, TicketNotifier] = {}
        self._registration = Registration(store, settings, self.admin_channels)
        self._late_replies: dict[str, LateReplies] = {}
        self._rules = ActionRules(knowledge.conversation, settings.configured_admin_channels())
        self._fix_rules = FixRules(knowledge.conversation)
        self._news = RequesterNews(store, knowledge)
        self._worker = JobWorker(
            store,
            timing or TicketTiming(),
            notifiers=self._notifiers,
            admin_channels=self.admin_channels,
            news=self._news,
            webhook=WebhookClient(settings),
            late_replies=self._late_replies,
            fixes=fix_runner is not None,
        )
        self._fixes = (
            None
            if fix_runner is None
            else FixApprovals(
                store,
                self._fix_rules,
                fix_runner,
                apply=self._apply,
                refresh=self._refresh_cards,
                clock=store.now,
            )
        )
        self._reminders = Reminders(
            store,
            settings,
            knowledge.conversation,
            self._worker.timing,
            admin_channels=self.admin_channels,
            wake=self._worker.wake,
        )
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def timing(self) -> TicketTiming:
        """How the worker and the reminders pace themselves (set before ``start``)."""
        return self._worker.timing

    @timing.setter
    def timing(self, timing: TicketTiming) -> None:
        self._worker.timing = self._reminders.timing = timing

    # -- the platforms ------------------------------------------------------------------------

    def add_notifier(self, notifier: TicketNotifier) -> None:
        """Let this process deliver the jobs of ``notifier.platform`` (a channel's startup)."""
        self._notifiers[notifier.platform] = notifier
        self._worker.wake.set()

    def remove_notifier(self, platform: str) -> None:
        """Stop delivering ``platform``'s jobs here (a channel's shutdown); they wait queued."""
        self._notifiers.pop(platform, None)
        self._late_replies.pop(platform, None)

    def add_late_replies(self, late: LateReplies) -> None:
        """Let this process send ``late.platform``'s replies kept in the outbox (a channel's
        startup; ``remove_notifier`` stops them too)."""
        self._late_replies[late.platform] = late
        self._worker.wake.set()

    def wake_worker(self) -> None:
        """Something was queued here (a late reply): deliver at once rather than at the next
        poll."""
        self._worker.wake.set()

    async def admin_channels(self) -> dict[str, dict[str, Any]]:
        """The admins' channel per platform: the registered ones, and those the settings name
        (SLACK_ADMIN_CHANNEL) where none was registered."""
        channels = {p: c.channel for p, c in (await self.store.channels.admin_channels()).items()}
        for platform, channel in self.settings.configured_admin_channels().items():
            channels.setdefault(platform, channel)
        return channels

    async def register_admin_channel(
        self, platform: str, channel: dict[str, Any], actor: Actor, code: str | None = None
    ) -> str:
        """``register admins`` in a channel: make it the platform's admins' channel; return the
        answer. The first one is for someone in ADMIN_USERS, or, with ADMIN_USERS empty, for
        whoever gives the one-time ``code`` this process printed at start; after that only an
        admin may move it. Only a platform whose notifier is added here has admins' channels
        (its notifier says which channel a registration names)."""
        notifier = self._notifiers.get(platform)
        if notifier is None:
            raise ValueError(f"no admins' channel on {platform!r}")
        if not self.tenants.allows(actor.platform, actor.tenant):
            log.info("admins' channel registration refused: foreign tenant")
            return self._text("tenant_refused")
        current = (await self.admin_channels()).get(platform)
        identity = notifier.channel_identity
        if current is not None and identity(current) == identity(channel):
            return self._text("admins_already")
        refused = await self._registration_refused(actor, current is None, code)
        if refused is not None:
            log.info("admins' channel registration refused", extra={"actor": actor.key})
            return self._text(refused)
        await self.store.channels.save_admin_channel(platform, channel, actor.key)
        await self._registration.registered()
        log.info("admins' channel registered", extra={"platform": platform, "actor": actor.key})
        return self._text("admins_registered" if current is None else "admins_moved")

    async def _registration_refused(
        self, actor: Actor, first: bool, code: str | None
    ) -> str | None:
        """Why ``actor`` may not register the channel (the text to say), or None if they may."""
        if not first:
            return None if await self.is_admin(actor) else "admins_refused"
        if self.settings.is_listed_admin(actor.platform, actor.user_id):
            return None
        if not self._registration.codes_accepted:
            return "admins_refused_not_listed"
        if await self._registration.use(code):
            return None
        return "admins_refused_code"

    async def issue_registration_code(self) -> str | None:
        """With ADMIN_USERS empty and a platform of this process without an admins' channel:
        make the one-time code that lets the first ``register admins`` through, and print it
        once in the log (see ``registration.py``); the code, or None when none is needed."""
        return await self._registration.issue(self._notifiers)

    async def is_admin(self, actor: Actor) -> bool:
        """Listed in ADMIN_USERS, a member of the admins' channel on the actor's platform, or the
        terminal (whoever runs the CLI can read the database anyway); never someone of a tenant
        the bot does not serve."""
        if actor.platform == TERMINAL:
            return True
        if not self.tenants.allows(actor.platform, actor.tenant):
            return False
        if self.settings.is_listed_admin(actor.platform, actor.user_id):
            return True
        channel = (await self.admin_channels()).get(actor.platform)
        notifier = self._notifiers.get(actor.platform)
        if channel is None or notifier is None:
            return False
        try:
            return await notifier.is_admin_channel_member(channel, actor.user_id)
        except Exception:  # a platform outage refuses the action rather than failing it
            log.warning("admins' channel membership unknown", exc_info=True)
            return False

    async def record_change(
        self, actor: Actor, planned: FixPlan, outcome: FixOutcome, at: datetime
    ) -> None:
        """A change an admin had the bot make outside any ticket ("Apply it for me" in a chat):
        its webhook event, as a ticket's ``fix_applied`` carries it (the admin asked and
        approved it). A store that does not answer loses the event, not the change: logged."""
        record = fix_record(actor, (), planned, outcome, at=at)
        record["asked_by"] = [record["approved_by"]]
        jobs = change_event_jobs(self.settings, actor, record, at)
        try:
            if await self.store.jobs.enqueue_in_lane(CHANGES_LANE, jobs, "change's event"):
                self._worker.wake.set()
        except StoreError:
            log.error("a recipient's change was made but its webhook event was not kept")

    async def by_ref(self, ref: object) -> TicketRecord | None:
        """The ticket a card's payload names by its public reference; None for anything else
        (a ticket number, a guess, not a string): payloads never name tickets by number."""
        if not isinstance(ref, str):
            return None
        return await self.store.tickets.get_ticket_by_ref(ref)

    async def may_see(self, actor: Actor, ticket: TicketRecord) -> bool:
        """Whether ``actor`` may see the ticket in full (who asked, the address, the note): one
        of its requesters (by the key their platform gives), or an admin."""
        requesters = await self.store.tickets.ticket_requesters(ticket.id)
        if any(requester.key == actor.key for requester in requesters):
            return True
        return await self.is_admin(actor)

    async def card(self, ticket: TicketRecord) -> TicketCard:
        """The ticket's card as it is now, with its requesters (a platform drawing it for an
        admin who clicked it)."""
        requesters = await self.store.tickets.ticket_requesters(ticket.id)
        return TicketCard.of(ticket, requesters, self.knowledge, fixes=self._fixes is not None)

    # -- tickets ------------------------------------------------------------------------------

    async def open_or_join(
        self,
        requester: Requester,
        *,
        bounce: dict[str, Any],
        path: dict[str, Any],
        note: str | None,
        dedupe_key: str | None,
    ) -> tuple[TicketRecord, str]:
        """Open a ticket or join the open one (see ``Store.open_or_join_ticket``), queueing its
        card (or an update and a note on it) and its webhook event in the same transaction."""

        def jobs(change: TicketChange) -> list[NewJob]:
            queued = self._rules.opening_jobs(change, requester.name)
            return queued + event_jobs(self.settings, change, requester.name)

        ticket, outcome = await self.store.tickets.open_or_join_ticket(
            requester=requester,
            conversation_key=requester.conversation_key,
            bounce=bounce,
            path=path,
            note=note,
            dedupe_key=dedupe_key,
            jobs=jobs,
        )
        if outcome != "opened" and "fix" in path and asked_fix(ticket) is None:
            ticket = await self._mark_fix_asked(ticket, requester, path)
        if outcome != "already":
            self._worker.wake.set()
        return ticket, outcome

    async def _mark_fix_asked(
        self, ticket: TicketRecord, requester: Requester, path: dict[str, Any]
    ) -> TicketRecord:
        """A requester joined an open ticket asking for a change it did not ask for yet: the
        ticket keeps the request, and its cards say so."""
        for _ in range(_ACT_ATTEMPTS):
            plan = self._fix_rules.fix_asked(ticket, requester, path)
            actor = Actor(requester.platform, requester.user_id, requester.name)
            try:
                return await self._apply(ticket, plan, actor)
            except StaleState:
                fresh = await self.store.tickets.get_ticket(ticket.id)
                assert fresh is not None  # noqa: S101 - tickets are never deleted
                if asked_fix(fresh) is not None:
                    return fresh
                ticket = fresh
        log.warning("a change asked for could not be kept", extra={"ticket": ticket.id})
        return ticket

    async def act(self, request: ActionRequest) -> ActionResult:
        """Apply an admin's action, or refuse it with the reason (nothing changes then).

        Only admins may act. A card that was out of date (``seen_version``) has the action
        applied to the ticket as it is when that still makes sense, else it is refused with the
        current state and the cards are refreshed; an action never applies twice.
        """
        if not await self.is_admin(request.actor):
            log.info("ticket action refused: not an admin", extra={"actor": request.actor.key})
            return ActionResult(False, None, self._text("ticket_refused_not_admin"))
        ticket = await self.store.tickets.get_ticket(request.ticket_id)
        if ticket is None:
            return ActionResult(
                False, None, self._text("ticket_refused_unknown", ticket=request.ticket_id.strip())
            )
        missing = self._rules.missing_input(request, ticket)
        if missing is not None:
            return ActionResult(False, ticket, missing)
        if request.action is Action.APPLY_FIX:
            if self._fixes is None:
                refused = self._text("ticket_refused_no_directory", ticket=ticket.id)
                return ActionResult(False, ticket, refused)
            resolver = await self._resolver(ticket) if ticket.status == "resolved" else ""
            return await self._fixes.approve(request, ticket, resolver=resolver)
        stale = request.seen_version is not None and request.seen_version != ticket.version
        for _ in range(_ACT_ATTEMPTS):
            resolver = await self._resolver(ticket) if ticket.status == "resolved" else ""
            plan = self._rules.plan(request, ticket, stale=stale, resolver=resolver)
            if isinstance(plan, str):
                if stale:
                    await self._refresh_cards(ticket)
                return ActionResult(False, ticket, plan, stale=stale)
            try:
                updated = await self._apply(ticket, plan, request.actor)
            except StaleState:
                # Changed between our read and our write: as good as a stale card.
                fresh = await self.store.tickets.get_ticket(ticket.id)
                assert fresh is not None  # noqa: S101 - tickets are never deleted
                ticket, stale = fresh, True
                continue
            except StoreError:
                message = self._text("ticket_refused_duplicate", ticket=ticket.id)
                return ActionResult(False, ticket, message, stale=stale)
            log.info(
                "ticket action applied",
                extra={"ticket": ticket.id, "action": request.action.value, "stale": stale},
            )
            return ActionResult(True, updated, self._rules.done(plan, stale=stale), stale=stale)
        return ActionResult(False, ticket, self._text("ticket_refused_busy", ticket=ticket.id))

    async def reopen_by_requester(self, requester_key: str, ticket_id: str) -> bool:
        """A requester says a resolved ticket still fails: reopen it. False if it is unknown,
        not theirs, not resolved, or another open ticket has taken its place."""
        for _ in range(_ACT_ATTEMPTS):
            ticket = await self.store.tickets.get_ticket(ticket_id)
            if ticket is None or ticket.status != "resolved":
                return False
            requesters = await self.store.tickets.ticket_requesters(ticket.id)
            who = next((r for r in requesters if r.key == requester_key), None)
            if who is None:
                return False
            plan = self._rules.requester_reopen(who)
            actor = Actor(who.platform, who.user_id, who.name)
            try:
                await self._apply(ticket, plan, actor)
            except StaleState:
                continue
            except StoreError:
                return False
            return True
        return False

    async def _apply(self, ticket: TicketRecord, plan: Plan, actor: Actor) -> TicketRecord:
        updated = await self.store.tickets.update_ticket(
            ticket.id,
            expected_version=ticket.version,
            actor=actor.key,
            kind=plan.kind,
            status=plan.status,
            assignee=plan.assignee,
            path=plan.path,
            detail=plan.detail,
            jobs=self._change_jobs(plan, actor),
        )
        if plan.kind == "reopened":
            await self.store.reminders.restart_reminders(ticket.id)
        await self._news.tell_terminal_requesters(updated, plan)
        self._worker.wake.set()
        return updated

    def _change_jobs(self, plan: Plan, actor: Actor) -> JobsFor:
        def jobs(change: TicketChange) -> list[NewJob]:
            queued = self._rules.change_jobs(plan, change)
            return queued + event_jobs(self.settings, change, actor.name)

        return jobs

    async def _resolver(self, ticket: TicketRecord) -> str:
        events = await self.store.tickets.ticket_events(ticket.id)
        resolved = [e for e in events if e.kind in ("resolved", "fix_applied")]
        if resolved:
            return str(resolved[-1].detail.get("by") or resolved[-1].actor)
        return str((ticket.assignee or {}).get("name") or "")

    async def _refresh_cards(self, ticket: TicketRecord) -> None:
        cards = await self.store.channels.ticket_cards(ticket.id)
        jobs = [NewJob(platform, "update_card", {}) for platform in sorted(cards)]
        if jobs:
            await self.store.jobs.enqueue_jobs(ticket.id, jobs)
            self._worker.wake.set()

    # -- the background work ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the job worker and the reminders in the background (the server's startup);
        print the one-time registration code first when the admins' channel needs one."""
        if self._tasks:
            return
        await self.issue_registration_code()
        self._worker.session = aiohttp.ClientSession()
        self._tasks = [
            asyncio.create_task(self.run_jobs(), name="ticket-jobs"),
            asyncio.create_task(self.run_reminders(), name="ticket-reminders"),
        ]

    async def stop(self) -> None:
        """Stop both, and hand back the jobs being delivered so the next start retries them."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._worker.release()
        await self._registration.stop()
        if self._worker.session is not None:
            await self._worker.session.close()
            self._worker.session = None

    def targets(self) -> list[str]:
        """The job targets this process delivers: its notifiers' platforms, and the webhook."""
        return self._worker.targets()

    async def run_jobs(self) -> None:
        """Deliver due jobs until cancelled (see ``JobWorker.run``)."""
        await self._worker.run()

    async def deliver_due(self) -> int:
        """One pass of the job worker; how many deliveries were tried."""
        return await self._worker.deliver_due()

    async def run_reminders(self) -> None:
        """Remind the admins of open tickets nobody took, until cancelled; and forget old jobs."""
        await self._reminders.run()

    async def remind_due(self) -> int:
        """Queue the reminders due now; how many tickets (see ``Reminders.remind_due``)."""
        return await self._reminders.remind_due()

    def _text(self, key: str, **values: str) -> str:
        return self.knowledge.conversation.text(key, **values)


__all__ = ["Tickets"]
