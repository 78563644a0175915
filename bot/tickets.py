"""Tickets worked by the helpdesk admins: the admins' channels, the ticket cards there, the
admins' actions, the requester's news, reminders, and the webhook to an outside tracker.

The platforms plug in through :class:`TicketNotifier` (one per platform, built by its channel
module and added with ``Escalations.add_notifier``); everything here is platform-neutral. Every
delivery goes through the store's job queue (``ticket_jobs``), queued in the same transaction as
the ticket change, and a worker delivers it: at least once, in order per ticket and target.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, Final, Protocol

import aiohttp

from bot.config import Settings
from bot.store import (
    KEEP,
    JobsFor,
    Keep,
    NewJob,
    Requester,
    StaleState,
    Store,
    StoreError,
    TicketChange,
    TicketEvent,
    TicketJob,
    TicketRecord,
)
from dialogs.escalation import ask_if_fixed
from dialogs.messages import Platform
from dialogs.replies import Reply, Text
from knowledge.kb import KnowledgeBase

log = logging.getLogger(__name__)

#: The platforms that have admins' channels, ticket cards and notifiers.
PLATFORMS: Final = (Platform.TEAMS, Platform.SLACK)
WEBHOOK: Final = "webhook"
TERMINAL: Final = Platform.CONSOLE  # the terminal's actor (python -m bot tickets ...)

_ACT_ATTEMPTS = 5
_SAVE_ATTEMPTS = 5


class Action(StrEnum):
    """What an admin can do to a ticket from its card (or the terminal)."""

    ASSIGN_ME = "assign_me"
    ASSIGN = "assign"  # to someone else: ActionRequest.assignee
    REPLY = "reply"  # a message relayed to the requester: ActionRequest.text
    RESOLVE = "resolve"  # with a resolution note: ActionRequest.text
    REOPEN = "reopen"


@dataclass(frozen=True)
class Actor:
    """Someone acting on a ticket: an admin on a platform, or the terminal."""

    platform: str  # "msteams" | "slack" | "console"
    user_id: str
    name: str

    @property
    def key(self) -> str:
        """``platform:user_id``, as ADMIN_USERS and requester keys are written."""
        return f"{self.platform}:{self.user_id}"


@dataclass(frozen=True)
class ActionRequest:
    """One click (or command) on a ticket."""

    ticket_id: str
    action: Action
    actor: Actor
    seen_version: int | None  # the ticket version the card showed; None: act on the current one
    assignee: Actor | None = None
    text: str | None = None


@dataclass(frozen=True)
class ActionResult:
    """What came of an action: the ticket as it is now, and a line for the admin."""

    applied: bool
    ticket: TicketRecord | None
    message: str
    stale: bool = False  # the card was out of date (the result says what was done about it)


@dataclass(frozen=True)
class CardRef:
    """Where a ticket's card was posted on one platform (opaque to this module)."""

    platform: str
    ref: dict[str, Any]


class TicketNotifier(Protocol):
    """What one platform does for tickets. Built by the platform's channel module."""

    platform: str

    async def post_card(
        self, admin_channel: dict[str, Any], ticket: TicketRecord, requesters: Sequence[Requester]
    ) -> CardRef:
        """Post the ticket's card in the admins' channel; return where it went."""
        ...

    async def update_card(
        self, card: CardRef, ticket: TicketRecord, requesters: Sequence[Requester]
    ) -> None:
        """Update the card in place to show the ticket as it is now."""
        ...

    async def post_note(self, card: CardRef, text: str) -> None:
        """Add a line in the card's thread ("Ana assigned it to herself")."""
        ...

    async def tell_requester(self, requester: Requester, replies: Sequence[Reply]) -> None:
        """Send replies into the requester's own conversation (a proactive message)."""
        ...

    async def is_admin_channel_member(self, admin_channel: dict[str, Any], user_id: str) -> bool:
        """Whether the user is a member of the admins' channel."""
        ...

    async def remind(self, card: CardRef, ticket: TicketRecord, text: str) -> None:
        """Announce again in the admins' channel that the ticket waits for someone to take it
        (a note in the card's thread, or the card re-posted: the platform's choice)."""
        ...


class PermanentFailure(Exception):
    """A notifier raises this when trying again cannot help (the card is gone, a 4xx other than
    429): the job is given up and logged, and the ticket's next job goes ahead. Anything else a
    notifier raises is retried with backoff."""


@dataclass(frozen=True)
class TicketTiming:
    """How the job worker and the reminders pace themselves (tests shorten these)."""

    poll_seconds: float = 2.0  # look for jobs other processes queued this often
    retry_base_seconds: float = 2.0  # the first retry's wait; doubled per attempt
    retry_cap_seconds: float = 600.0
    lease_seconds: float = 300.0  # a claimed job is this process's for this long
    delivery_timeout_seconds: float = 120.0
    webhook_timeout_seconds: float = 10.0
    reminder_check_seconds: float = 60.0
    keep_done_jobs: timedelta = timedelta(days=7)
    batch: int = 50


@dataclass(frozen=True)
class _Plan:
    """An admin action worked out against the ticket as it is: what to change and say."""

    kind: str  # the ticket event
    status: str | None
    assignee: dict[str, Any] | Keep | None
    detail: dict[str, Any]
    note: str  # the line in the card's thread
    done: str  # the line for the admin who acted
    news: str | None = None  # the requesters' news: assigned | replied | resolved | reopened
    news_admin: str = ""
    news_text: str = ""
    skip_requester: str | None = None  # a requester key not to tell (they did it themselves)


class _RetryLater(Exception):
    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


@dataclass
class _Work:
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    in_flight: set[int] = field(default_factory=set)
    session: aiohttp.ClientSession | None = None


class Escalations:
    """The tickets service: opens and joins tickets with their cards' jobs, applies the admins'
    actions, registers the admins' channels, and delivers the queued jobs (``start``/``stop``)."""

    def __init__(
        self,
        store: Store,
        knowledge: KnowledgeBase,
        settings: Settings,
        *,
        timing: TicketTiming | None = None,
    ) -> None:
        """Nothing runs until ``start``; a process that only acts (the CLI) never starts it."""
        self.store = store
        self.knowledge = knowledge
        self.settings = settings
        self.timing = timing or TicketTiming()
        self._notifiers: dict[str, TicketNotifier] = {}
        self._wake = asyncio.Event()
        self._work = _Work()

    # -- the platforms ------------------------------------------------------------------------

    def add_notifier(self, notifier: TicketNotifier) -> None:
        """Let this process deliver the jobs of ``notifier.platform`` (a channel's startup)."""
        self._notifiers[notifier.platform] = notifier
        self._wake.set()

    def remove_notifier(self, platform: str) -> None:
        """Stop delivering ``platform``'s jobs here (a channel's shutdown); they wait queued."""
        self._notifiers.pop(platform, None)

    async def admin_channels(self) -> dict[str, dict[str, Any]]:
        """The admins' channel per platform: the registered ones, and SLACK_ADMIN_CHANNEL as
        ``{"channel": "C0123"}`` unless a Slack channel was registered."""
        channels = {p: c.channel for p, c in (await self.store.channels.admin_channels()).items()}
        if self.settings.slack_admin_channel and "slack" not in channels:
            channels["slack"] = {"channel": self.settings.slack_admin_channel}
        return {p: c for p, c in channels.items() if p in PLATFORMS}

    async def register_admin_channel(
        self, platform: str, channel: dict[str, Any], actor: Actor
    ) -> str:
        """``register admins`` in a channel: make it the platform's admins' channel; return the
        answer. The first one is anyone's to register (only ADMIN_USERS' when that is set);
        after that only an admin may move it."""
        if platform not in PLATFORMS:
            raise ValueError(f"no admins' channel on {platform!r}")
        current = (await self.admin_channels()).get(platform)
        if current is not None and _channel_identity(current) == _channel_identity(channel):
            return self._text("admins_already")
        if current is None:
            allowed = not self.settings.admin_users or self.settings.is_listed_admin(
                actor.platform, actor.user_id
            )
        else:
            allowed = await self.is_admin(actor)
        if not allowed:
            log.info("admins' channel registration refused", extra={"actor": actor.key})
            return self._text("admins_refused")
        await self.store.channels.save_admin_channel(platform, channel, actor.key)
        log.info("admins' channel registered", extra={"platform": platform, "actor": actor.key})
        return self._text("admins_registered" if current is None else "admins_moved")

    async def is_admin(self, actor: Actor) -> bool:
        """Listed in ADMIN_USERS, a member of the admins' channel on the actor's platform, or the
        terminal (whoever runs the CLI can read the database anyway)."""
        if actor.platform == TERMINAL:
            return True
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
        ticket, outcome = await self.store.tickets.open_or_join_ticket(
            requester=requester,
            conversation_key=requester.conversation_key,
            bounce=bounce,
            path=path,
            note=note,
            dedupe_key=dedupe_key,
            jobs=self._opening_jobs(requester),
        )
        if outcome != "already":
            self._wake.set()
        return ticket, outcome

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
        missing = self._missing_input(request, ticket)
        if missing is not None:
            return ActionResult(False, ticket, missing)
        stale = request.seen_version is not None and request.seen_version != ticket.version
        for _ in range(_ACT_ATTEMPTS):
            plan = await self._plan(request, ticket, stale=stale)
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
            done = plan.done
            if stale:
                done += " " + self._text("ticket_done_on_current")
            log.info(
                "ticket action applied",
                extra={"ticket": ticket.id, "action": request.action.value, "stale": stale},
            )
            return ActionResult(True, updated, done, stale=stale)
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
            plan = _Plan(
                kind="reopened",
                status="open",
                assignee=None,
                detail={"by": who.name, "requester": True},
                note=self._text("ticket_note_requester_reopened", requester=who.name),
                done="",
                news="reopened",
                news_admin=who.name,
                skip_requester=who.key,
            )
            actor = Actor(who.platform, who.user_id, who.name)
            try:
                await self._apply(ticket, plan, actor)
            except StaleState:
                continue
            except StoreError:
                return False
            return True
        return False

    async def _apply(self, ticket: TicketRecord, plan: _Plan, actor: Actor) -> TicketRecord:
        updated = await self.store.tickets.update_ticket(
            ticket.id,
            expected_version=ticket.version,
            actor=actor.key,
            kind=plan.kind,
            status=plan.status,
            assignee=plan.assignee,
            detail=plan.detail,
            jobs=self._change_jobs(plan, actor),
        )
        if plan.kind == "reopened":
            await self.store.reminders.restart_reminders(ticket.id)
        await self._tell_terminal_requesters(updated, plan)
        self._wake.set()
        return updated

    async def _tell_terminal_requesters(self, ticket: TicketRecord, plan: _Plan) -> None:
        """A requester in the terminal has no chat to be told in: their news waits in their
        conversation, shown the next time they talk to the bot."""
        if plan.news is None:
            return
        for requester in await self.store.tickets.ticket_requesters(ticket.id):
            if requester.platform in PLATFORMS or requester.key == plan.skip_requester:
                continue
            if plan.news == "resolved":
                replies = await self._ask_if_fixed(
                    requester, ticket.id, plan.news_admin, plan.news_text
                )
            else:
                key = {
                    "assigned": "ticket_assigned",
                    "replied": "ticket_reply",
                    "reopened": "ticket_reopened",
                }[plan.news]
                text = self._text(key, ticket=ticket.id, admin=plan.news_admin, text=plan.news_text)
                replies = (Text(text),)
            await self._keep_news(requester, replies)

    async def _keep_news(self, requester: Requester, replies: Sequence[Reply]) -> None:
        texts = [reply.text for reply in replies if isinstance(reply, Text)]
        key = requester.conversation_key
        for _ in range(_SAVE_ATTEMPTS):
            saved = await self.store.conversations.load_state(key)
            state = dict(saved.state or {})
            state["inbox"] = [*(state.get("inbox") or []), *texts]
            try:
                await self.store.conversations.save_state(key, state, saved.version)
            except StaleState:
                continue
            return
        log.warning("news for a terminal requester could not be kept", extra={"key": key})

    def _missing_input(self, request: ActionRequest, ticket: TicketRecord) -> str | None:
        text = (request.text or "").strip()
        if request.action is Action.ASSIGN and request.assignee is None:
            return self._text("ticket_refused_no_assignee", ticket=ticket.id)
        if request.action is Action.REPLY and not text:
            return self._text("ticket_refused_no_text", ticket=ticket.id)
        if request.action is Action.RESOLVE and not text:
            return self._text("ticket_refused_no_note", ticket=ticket.id)
        return None

    async def _plan(
        self, request: ActionRequest, ticket: TicketRecord, *, stale: bool
    ) -> _Plan | str:
        """What the action does to the ticket as it is now, or why it is refused."""
        actor, action, tid = request.actor, request.action, ticket.id
        text = (request.text or "").strip()
        by = {"by": actor.name}
        if action is Action.REOPEN:
            if ticket.status != "resolved":
                return self._text("ticket_refused_not_resolved", ticket=tid)
            return _Plan(
                kind="reopened",
                status="open",
                assignee=None,
                detail=by,
                note=self._text("ticket_note_reopened", admin=actor.name),
                done=self._text("ticket_done_reopened", ticket=tid),
                news="reopened",
                news_admin=actor.name,
            )
        if ticket.status == "resolved":
            return self._text(
                "ticket_refused_resolved", ticket=tid, admin=await self._resolver(ticket)
            )
        if action is Action.REPLY:
            return _Plan(
                kind="replied",
                status=None,
                assignee=KEEP,
                detail={**by, "text": text},
                note=self._text("ticket_note_replied", admin=actor.name, text=text),
                done=self._text("ticket_done_replied", ticket=tid),
                news="replied",
                news_admin=actor.name,
                news_text=text,
            )
        if action is Action.RESOLVE:
            return _Plan(
                kind="resolved",
                status="resolved",
                assignee=KEEP,
                detail={**by, "note": text},
                note=self._text("ticket_note_resolved", admin=actor.name, text=text),
                done=self._text("ticket_done_resolved", ticket=tid),
                news="resolved",
                news_admin=actor.name,
                news_text=text,
            )
        chosen = actor if action is Action.ASSIGN_ME else request.assignee
        assert chosen is not None  # noqa: S101 - _missing_input said so
        current = ticket.assignee
        if current is not None and _assignee_key(current) == chosen.key:
            if chosen.key == actor.key:
                return self._text("ticket_refused_yours", ticket=tid)
            return self._text("ticket_refused_assigned", ticket=tid, assignee=chosen.name)
        if current is not None and action is Action.ASSIGN_ME and stale:
            # Someone took it since the card was drawn (two "assign to me" at once): theirs.
            name = str(current.get("name") or "")
            return self._text("ticket_refused_assigned", ticket=tid, assignee=name)
        if chosen.key == actor.key:
            note = self._text("ticket_note_took", admin=actor.name)
            done = self._text("ticket_done_took", ticket=tid)
        else:
            note = self._text("ticket_note_assigned", admin=actor.name, assignee=chosen.name)
            done = self._text("ticket_done_assigned", ticket=tid, assignee=chosen.name)
        return _Plan(
            kind="assigned",
            status="assigned",
            assignee={"platform": chosen.platform, "user_id": chosen.user_id, "name": chosen.name},
            detail=by,
            note=note,
            done=done,
            news="assigned",
            news_admin=chosen.name,
        )

    async def _resolver(self, ticket: TicketRecord) -> str:
        events = await self.store.tickets.ticket_events(ticket.id)
        resolved = [e for e in events if e.kind == "resolved"]
        if resolved:
            return str(resolved[-1].detail.get("by") or resolved[-1].actor)
        return str((ticket.assignee or {}).get("name") or "")

    async def _refresh_cards(self, ticket: TicketRecord) -> None:
        cards = await self.store.channels.ticket_cards(ticket.id)
        jobs = [NewJob(platform, "update_card", {}) for platform in sorted(cards)]
        if jobs:
            await self.store.jobs.enqueue_jobs(ticket.id, jobs)
            self._wake.set()

    # -- which jobs a change queues -----------------------------------------------------------

    def _opening_jobs(self, requester: Requester) -> JobsFor:
        def jobs(change: TicketChange) -> list[NewJob]:
            queued: list[NewJob] = []
            for platform in self._card_platforms(change):
                if change.kind == "opened":
                    queued.append(NewJob(platform, "post_card", {}))
                else:
                    queued.append(NewJob(platform, "update_card", {}))
                    text = self._text("ticket_note_joined", requester=requester.name)
                    queued.append(NewJob(platform, "note", {"text": text}))
            queued += self._event_jobs(change, requester.name)
            return queued

        return jobs

    def _change_jobs(self, plan: _Plan, actor: Actor) -> JobsFor:
        def jobs(change: TicketChange) -> list[NewJob]:
            queued: list[NewJob] = []
            for platform in self._card_platforms(change):
                queued.append(NewJob(platform, "update_card", {}))
                queued.append(NewJob(platform, "note", {"text": plan.note}))
            for requester in change.requesters:
                if plan.news is None or requester.platform not in PLATFORMS:
                    continue  # a terminal requester has no chat to be told in
                if requester.key == plan.skip_requester:
                    continue
                news = {
                    "requester": requester.as_json(),
                    "news": plan.news,
                    "ticket": change.ticket.id,
                    "admin": plan.news_admin,
                    "text": plan.news_text,
                }
                queued.append(NewJob(requester.platform, "tell_requester", news))
            queued += self._event_jobs(change, actor.name)
            return queued

        return jobs

    def _card_platforms(self, change: TicketChange) -> list[str]:
        platforms = set(change.admin_platforms) | set(change.card_platforms)
        if self.settings.slack_admin_channel:
            platforms.add("slack")
        return sorted(platforms & set(PLATFORMS))

    def _event_jobs(self, change: TicketChange, actor_name: str) -> list[NewJob]:
        if not self.settings.ticket_webhook_url:
            return []
        event = {
            "event_id": uuid.uuid4().hex,
            "ticket_id": change.ticket.id,
            "event": change.kind,
            "at": change.at.isoformat(),
            "actor": {"key": change.actor, "name": actor_name},
            "detail": change.detail,
            "ticket": public_ticket(change.ticket, change.requesters),
        }
        return [NewJob(WEBHOOK, "event", event)]

    # -- delivering the jobs ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the job worker and the reminders in the background (the server's startup)."""
        if self._work.tasks:
            return
        self._work.session = aiohttp.ClientSession()
        self._work.tasks = [
            asyncio.create_task(self.run_jobs(), name="ticket-jobs"),
            asyncio.create_task(self.run_reminders(), name="ticket-reminders"),
        ]

    async def stop(self) -> None:
        """Stop both, and hand back the jobs being delivered so the next start retries them."""
        tasks, self._work.tasks = self._work.tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._work.in_flight:
            try:
                await self.store.jobs.release_jobs(sorted(self._work.in_flight))
            except StoreError:
                log.warning("could not hand back the jobs in flight; their lease will expire")
            self._work.in_flight.clear()
        if self._work.session is not None:
            await self._work.session.close()
            self._work.session = None

    def targets(self) -> list[str]:
        """The job targets this process delivers: its notifiers' platforms, and the webhook."""
        served = sorted(self._notifiers)
        if self.settings.ticket_webhook_url:
            served.append(WEBHOOK)
        return served

    async def run_jobs(self) -> None:
        """Deliver due jobs until cancelled: at once when a job is queued here, else every few
        seconds (other processes queue jobs too)."""
        while True:
            self._wake.clear()
            try:
                delivered = await self.deliver_due()
            except Exception:
                log.exception("ticket jobs could not be read")
                delivered = 0
            if delivered:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.timing.poll_seconds)

    async def deliver_due(self) -> int:
        """One pass: claim the due jobs first in line, deliver them (each target's in order,
        the targets side by side); return how many were tried."""
        lease = timedelta(seconds=self.timing.lease_seconds)
        jobs = await self.store.jobs.claim_jobs(
            self.targets(), lease=lease, limit=self.timing.batch
        )
        # Ours until delivered: a stop hands back the ones not done yet (see ``stop``).
        self._work.in_flight.update(job.id for job in jobs)
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
            await self.store.jobs.finish_job(job.id, error=str(failure) or type(failure).__name__)
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
            await self.store.jobs.retry_job(job.id, after=timedelta(seconds=after), error=reason)
        else:
            await self.store.jobs.finish_job(job.id)
        self._work.in_flight.discard(job.id)

    def _backoff(self, attempts: int, asked: float | None) -> float:
        cap = self.timing.retry_cap_seconds
        if asked is not None:
            return min(max(asked, 0.0), cap)
        wait = min(cap, self.timing.retry_base_seconds * 2.0 ** max(attempts - 1, 0))
        return wait * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret

    async def _deliver(self, job: TicketJob) -> None:
        ticket = await self.store.tickets.get_ticket(job.ticket_id)
        if ticket is None:
            raise PermanentFailure(f"there is no ticket {job.ticket_id}")
        if job.target == WEBHOOK:
            await self._post_webhook(job)
            return
        notifier = self._notifiers.get(job.target)
        if notifier is None:
            raise _RetryLater(f"no {job.target} notifier in this process")
        if job.kind == "tell_requester":
            await self._tell_requester(notifier, job.payload)
            return
        card = (await self.store.channels.ticket_cards(ticket.id)).get(job.target)
        ref = CardRef(job.target, card) if card is not None else None
        if job.kind in ("post_card", "update_card"):
            requesters = await self.store.tickets.ticket_requesters(ticket.id)
            if ref is not None:
                await notifier.update_card(ref, ticket, requesters)
                return
            channel = (await self.admin_channels()).get(job.target)
            if channel is None:
                log.info("no admins' channel for the card", extra={"target": job.target})
                return
            posted = await notifier.post_card(channel, ticket, requesters)
            await self.store.channels.save_card(ticket.id, job.target, posted.ref)
        elif ref is None:
            log.info("no card to add to", extra={"ticket": ticket.id, "job": job.kind})
        elif job.kind == "note":
            await notifier.post_note(ref, str(job.payload["text"]))
        elif job.kind == "remind":
            if ticket.status == "open":  # not taken meanwhile
                await notifier.remind(ref, ticket, str(job.payload["text"]))
        else:
            raise PermanentFailure(f"{job.kind} is not a job for {job.target}")

    async def _tell_requester(self, notifier: TicketNotifier, news: dict[str, Any]) -> None:
        requester = Requester.from_json(news["requester"])
        ticket, admin, text = str(news["ticket"]), str(news["admin"]), str(news["text"])
        replies: Sequence[Reply]
        if news["news"] == "resolved":
            replies = await self._ask_if_fixed(requester, ticket, admin, text)
        else:
            key = {
                "assigned": "ticket_assigned",
                "replied": "ticket_reply",
                "reopened": "ticket_reopened",
            }[str(news["news"])]
            replies = (Text(self._text(key, ticket=ticket, admin=admin, text=text)),)
        await notifier.tell_requester(requester, replies)

    async def _ask_if_fixed(
        self, requester: Requester, ticket: str, admin: str, note: str
    ) -> Sequence[Reply]:
        """Put "did that fix it?" into the requester's conversation, so their answer reopens."""
        key = requester.conversation_key
        for _ in range(_SAVE_ATTEMPTS):
            saved = await self.store.conversations.load_state(key)
            state, replies = ask_if_fixed(saved.state or None, ticket, admin, note, self.knowledge)
            try:
                await self.store.conversations.save_state(key, state, saved.version)
            except StaleState:
                continue  # the requester was talking meanwhile: ask on top of that turn
            return replies
        raise _RetryLater(f"conversation {key} kept changing")

    async def _post_webhook(self, job: TicketJob) -> None:
        url = self.settings.ticket_webhook_url
        secret = self.settings.ticket_webhook_secret
        if not url or secret is None:
            raise _RetryLater("TICKET_WEBHOOK_URL is not set in this process")
        body = json.dumps({**job.payload, "sequence": job.seq}, ensure_ascii=False)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-NDRBot-Timestamp": timestamp,
            "X-NDRBot-Signature": "sha256=" + sign(secret.get_secret_value(), timestamp, body),
            "X-NDRBot-Event-Id": str(job.payload.get("event_id", job.id)),
        }
        session = self._work.session
        if session is None:
            raise _RetryLater("the worker is not running")
        timeout = aiohttp.ClientTimeout(total=self.timing.webhook_timeout_seconds)
        try:
            async with session.post(
                url, data=body.encode(), headers=headers, timeout=timeout
            ) as response:
                if 200 <= response.status < 300:
                    return
                raise _RetryLater(
                    f"webhook answered {response.status}",
                    _retry_after(response.headers.get("Retry-After")),
                )
        except aiohttp.ClientError as error:
            raise _RetryLater(f"webhook unreachable: {type(error).__name__}") from None

    # -- reminders ----------------------------------------------------------------------------

    async def run_reminders(self) -> None:
        """Remind the admins of open tickets nobody took, until cancelled; and forget old jobs."""
        while True:
            try:
                await self.remind_due()
                await self.store.jobs.forget_jobs_done_before(
                    self.store.now() - self.timing.keep_done_jobs
                )
            except Exception:
                log.exception("ticket reminders failed")
            await asyncio.sleep(self.timing.reminder_check_seconds)

    async def remind_due(self) -> int:
        """Queue a reminder on every card of each open ticket whose last reminder (or opening) is
        ESCALATION_REMIND_MINUTES old; return how many tickets. Several processes may run this:
        each reminder is recorded with a conditional write, so only one of them queues it."""
        every = timedelta(minutes=self.settings.escalation_remind_minutes)
        admin_platforms = set(await self.admin_channels())
        reminded = 0
        for ticket, last in await self.store.reminders.tickets_to_remind(every):
            platforms = sorted(
                admin_platforms | set(await self.store.channels.ticket_cards(ticket.id))
            )
            waited = int((self.store.now() - ticket.created_at).total_seconds() // 60)
            text = self._text("ticket_reminder", ticket=ticket.id, minutes=str(waited))
            jobs = [NewJob(p, "remind", {"text": text}) for p in platforms if p in PLATFORMS]
            if await self.store.reminders.mark_reminded(ticket.id, last, jobs):
                reminded += 1
        if reminded:
            log.info("open tickets reminded", extra={"tickets": reminded})
            self._wake.set()
        return reminded

    def _text(self, key: str, **values: str) -> str:
        return self.knowledge.conversation.text(key, **values)


def sign(secret: str, timestamp: str, body: str) -> str:
    """The webhook signature: hex HMAC-SHA256 of ``"{timestamp}.{body}"`` keyed by the secret."""
    message = f"{timestamp}.{body}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def public_ticket(ticket: TicketRecord, requesters: Sequence[Requester]) -> dict[str, Any]:
    """The ticket as an outside tracker sees it (no internal keys)."""

    def person(requester: Requester) -> dict[str, str]:
        return {
            "platform": requester.platform,
            "user_id": requester.user_id,
            "name": requester.name,
        }

    return {
        "id": ticket.id,
        "status": ticket.status,
        "requester": person(ticket.requester),
        "requesters": [person(r) for r in requesters],
        "assignee": ticket.assignee,
        "bounce": ticket.bounce,
        "path": ticket.path,
        "note": ticket.note,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
        "version": ticket.version,
    }


def _assignee_key(assignee: dict[str, Any]) -> str:
    return f"{assignee.get('platform')}:{assignee.get('user_id')}"


def _channel_identity(channel: dict[str, Any]) -> str:
    """Which channel a registration names, whatever else its reference holds (the message it
    came in, who sent it): a Slack channel id, or a Teams conversation id without ;messageid."""
    if channel.get("channel"):
        return str(channel["channel"])
    conversation = channel.get("conversation")
    if isinstance(conversation, dict) and conversation.get("id"):
        return str(conversation["id"]).split(";", 1)[0]
    return json.dumps(channel, sort_keys=True)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


__all__ = [
    "PLATFORMS",
    "TERMINAL",
    "WEBHOOK",
    "Action",
    "ActionRequest",
    "ActionResult",
    "Actor",
    "CardRef",
    "Escalations",
    "PermanentFailure",
    "TicketEvent",
    "TicketNotifier",
    "TicketTiming",
    "public_ticket",
    "sign",
]
