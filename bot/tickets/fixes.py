"""An admin's "Approve and apply": the change a requester asked for, made through the
organization's directory (a ``FixRunner``) and recorded in the ticket's history.

Claim, then change, then record: the approval is stored first under the version the admin's
card showed (a stale card, or the second of two clicks, meets ``StaleState`` and changes
nothing), then the runner plans and makes the change, then what came of it is stored with
everything the history and the webhook keep (``rules.fix_record``). Its own room because it is
the one action that reaches outside the bot between the click and the answer; the rules of
what it says are ``fix_rules.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from bot.store import Requester, StaleState, Store, StoreError, TicketRecord
from bot.tickets.card import asked_fix
from bot.tickets.fix_rules import FixRules
from bot.tickets.protocol import ActionRequest, ActionResult, Actor, FixRunner
from bot.tickets.rules import Plan
from dialogs.directory import FixOutcome, FixPlan, Lookup

log = logging.getLogger(__name__)

_RECORD_ATTEMPTS = 5

#: Stores a plan's change under the ticket's version (the service's ``_apply``).
ApplyPlan = Callable[[TicketRecord, Plan, Actor], Awaitable[TicketRecord]]


class FixApprovals:
    """Makes the changes admins approve, once each."""

    def __init__(
        self,
        store: Store,
        rules: FixRules,
        runner: FixRunner,
        *,
        apply: ApplyPlan,
        refresh: Callable[[TicketRecord], Awaitable[None]],
        clock: Callable[[], datetime],
    ) -> None:
        """``apply`` stores a plan with its jobs; ``refresh`` updates a ticket's cards;
        ``clock`` is the store's (a claim's age is read against the ticket's times)."""
        self._store = store
        self._rules = rules
        self._runner = runner
        self._apply = apply
        self._refresh = refresh
        self._clock = clock

    async def approve(
        self, request: ActionRequest, ticket: TicketRecord, *, resolver: str
    ) -> ActionResult:
        """Claim the change at the card's version, make it, record what came of it. The one
        asking is an admin (the service checked). A stale card is refused and the cards are
        refreshed; the change is never made on a ticket the admin did not see."""
        stale = request.seen_version is not None and request.seen_version != ticket.version
        requesters = await self._store.tickets.ticket_requesters(ticket.id)
        claim = self._rules.fix_approval(
            request, ticket, requesters, stale=stale, resolver=resolver, now=self._clock()
        )
        if isinstance(claim, str):
            if stale:
                await self._refresh(ticket)
            return ActionResult(False, ticket, claim, stale=stale)
        try:
            claimed = await self._apply(ticket, claim, request.actor)
        except StaleState:
            # Changed since it was read (another admin's click came first): as a stale card.
            fresh = await self._store.tickets.get_ticket(ticket.id) or ticket
            await self._refresh(fresh)
            message = self._rules.words.text("ticket_refused_fix_stale", ticket=ticket.id)
            return ActionResult(False, fresh, message, stale=True)
        log.info("change approved", extra={"ticket": ticket.id, "actor": request.actor.key})
        planned, outcome = await self._make(claimed, request.actor.key)
        return await self._record(request, claimed, requesters, planned, outcome)

    async def _make(
        self, ticket: TicketRecord, who: str
    ) -> tuple[FixPlan | Lookup, FixOutcome | None]:
        """Plan and make the change the ticket asks for; a runner that raises (it should not)
        counts as Exchange not answering."""
        fix = asked_fix(ticket)
        assert fix is not None  # noqa: S101 - the claim was refused without one
        try:
            planned = await self._runner.plan(fix.recipient, fix.method, fix.sender)
            if isinstance(planned, Lookup):
                return planned, None
            return planned, await self._runner.apply(planned, who)
        except Exception as error:  # its words may name people: the traceback at DEBUG only
            log.error(
                "the directory raised %s making a change",
                type(error).__name__,
                extra={"ticket": ticket.id},
            )
            log.debug("the directory's failure", exc_info=True)
            return Lookup(fix.recipient, problem="unavailable"), None

    async def _record(
        self,
        request: ActionRequest,
        ticket: TicketRecord,
        requesters: Sequence[Requester],
        planned: FixPlan | Lookup,
        outcome: FixOutcome | None,
    ) -> ActionResult:
        """Store what came of the change (on the ticket as it is by now: someone may have
        replied meanwhile), with its jobs; the admin's line says what it was."""
        at = self._clock()
        for _ in range(_RECORD_ATTEMPTS):
            plan = self._rules.fix_result(request, ticket, requesters, planned, outcome, at=at)
            try:
                updated = await self._apply(ticket, plan, request.actor)
            except StaleState:
                fresh = await self._store.tickets.get_ticket(ticket.id)
                assert fresh is not None  # noqa: S101 - tickets are never deleted
                ticket = fresh
                continue
            except StoreError:
                break
            made = plan.kind == "fix_applied"
            log.info("change recorded", extra={"ticket": ticket.id, "made": made})
            return ActionResult(made, updated, plan.done)
        log.error("a change made could not be recorded", extra={"ticket": ticket.id})
        busy = self._rules.words.text("ticket_refused_busy", ticket=ticket.id)
        return ActionResult(False, ticket, busy)


__all__ = ["FixApprovals"]
