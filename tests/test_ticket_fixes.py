"""A change a requester asked for, approved by an admin from the ticket's card and made through
the organization's directory (issue 13): the rules (bot/tickets/fix_rules.py, no database), the
card, and the service end to end with an in-memory directory (tests/fake_directory.py): only admins,
a stale card refused and never applied, two clicks applying once, a failure keeping the ticket
open, and everything recorded in the history."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.store import Requester, Store, TicketRecord
from bot.tickets import Action, ActionRequest, ActionResult, Actor, TicketCard, Tickets
from bot.tickets.card import asked_fix
from bot.tickets.fix_rules import FixRules, command_parts
from bot.tickets.rules import Plan
from dialogs.directory import FixOutcome, FixPlan, Lookup
from tests.fake_directory import FakeFixRunner, command_for, group, runner_of
from tests.test_tickets import (
    ALICE,
    ANA,
    BO,
    BOB,
    EVE,
    KNOWLEDGE,
    TEAMS_CHANNEL,
    Clock,
    FakeNotifier,
    settings,
)

WORDS = KNOWLEDGE.conversation
RULES = FixRules(WORDS)
SALES = "sales@contoso.com"
BOUNCE = {"status": "5.7.12", "recipients": [SALES], "sender": "dana@tailspintoys.com"}
ASKED = {"role": "sender", "fix": "allow_all", "fix_recipient": SALES}
COMMAND = command_for(group(SALES))


def say(key: str, **values: str) -> str:
    return WORDS.text(key, **values)


# -- the rules, without a database ----------------------------------------------------------------


def record(
    path: dict[str, Any] | None = None, status: str = "open", **changes: Any
) -> TicketRecord:
    clock = Clock()
    fields: dict[str, Any] = {
        "id": "NDR-1001",
        "number": 1,
        "status": status,
        "requester": ALICE,
        "bounce": BOUNCE,
        "path": ASKED if path is None else path,
        "note": None,
        "dedupe_key": "k",
        "assignee": None,
        "created_at": clock.now,
        "updated_at": clock.now,
        "version": 3,
        "ref": "r" * 22,
    }
    return TicketRecord(**(fields | changes))


def approve(actor: Actor = ANA, seen: int | None = 3) -> ActionRequest:
    return ActionRequest("NDR-1001", Action.APPLY_FIX, actor, seen_version=seen)


def test_a_powershell_line_is_read_into_its_cmdlet_and_parameters() -> None:
    assert command_parts(COMMAND) == (
        "Set-DistributionGroup",
        {"Identity": SALES, "RequireSenderAuthenticationEnabled": "$false"},
    )
    listed = (
        'Set-Mailbox -Identity "a b@contoso.com" -AcceptMessagesOnlyFrom @{Add="x@y.com"} -Force'
    )
    assert command_parts(listed) == (
        "Set-Mailbox",
        {"Identity": "a b@contoso.com", "AcceptMessagesOnlyFrom": '@{Add="x@y.com"}', "Force": ""},
    )
    assert command_parts("  ") == ("", {})


def test_the_approval_claims_the_change_under_the_cards_version() -> None:
    now = Clock().now
    plan = RULES.fix_approval(approve(), record(), [ALICE, BOB], stale=False, resolver="", now=now)
    assert isinstance(plan, Plan)
    assert (plan.kind, plan.status, plan.news) == ("fix_approved", None, None)
    assert plan.path == {**ASKED, "fix_state": "approving", "fix_by": "Ana"}
    assert plan.detail["approved_by"] == {"key": ANA.key, "name": "Ana"}
    assert plan.detail["asked_by"] == [
        {"key": ALICE.key, "name": "Alice"},
        {"key": BOB.key, "name": "Bob"},
    ]
    change = say("ticket_fix_change_allow_all", recipient=SALES)
    assert plan.note == say("ticket_note_fix_approved", admin="Ana", change=change)


@pytest.mark.parametrize(
    ("ticket", "stale", "key"),
    [
        (record(path={"role": "sender"}), False, "ticket_refused_no_fix"),
        (record(), True, "ticket_refused_fix_stale"),
        (record(status="resolved"), False, "ticket_refused_resolved"),
        (
            record(path={**ASKED, "fix_state": "applied", "fix_by": "Bo"}),
            False,
            "ticket_refused_fix_done",
        ),
        (
            record(path={**ASKED, "fix_state": "approving", "fix_by": "Bo"}),
            False,
            "ticket_refused_fix_busy",
        ),
    ],
)
def test_an_approval_is_refused_when_it_cannot_apply_what_the_card_showed(
    ticket: TicketRecord, stale: bool, key: str
) -> None:
    refused = RULES.fix_approval(
        approve(), ticket, [ALICE], stale=stale, resolver="Bo", now=ticket.updated_at
    )
    assert refused == say(key, ticket="NDR-1001", admin="Bo")


def test_a_claim_left_by_a_dead_process_may_be_tried_again_after_a_while() -> None:
    claimed = record(path={**ASKED, "fix_state": "approving", "fix_by": "Bo"})
    later = claimed.updated_at + timedelta(minutes=6)
    plan = RULES.fix_approval(approve(), claimed, [ALICE], stale=False, resolver="", now=later)
    assert isinstance(plan, Plan)
    assert plan.kind == "fix_approved"


def test_a_change_made_resolves_the_ticket_with_everything_recorded() -> None:
    before = group(SALES)
    after = dataclasses.replace(before, require_sender_authentication=False)
    fix = FixPlan(SALES, "allow_all", None, COMMAND)
    at = Clock().now
    plan = RULES.fix_result(
        approve(), record(), [ALICE], fix, FixOutcome(fix, before, after), at=at
    )
    assert (plan.kind, plan.status, plan.news, plan.news_admin) == (
        "fix_applied",
        "resolved",
        "resolved",
        "Ana",
    )
    resolution = say(
        "ticket_fix_resolution",
        recipient=SALES,
        before=say("ticket_fix_setting_inside"),
        after=say("ticket_fix_setting_open"),
    )
    assert plan.news_text == resolution
    assert plan.note == say("ticket_note_fix_applied", admin="Ana", command=COMMAND)
    assert plan.path == {**ASKED, "fix_state": "applied", "fix_by": "Ana", "fix_command": COMMAND}
    detail = plan.detail
    assert detail["asked_by"] == [{"key": ALICE.key, "name": "Alice"}]
    assert detail["approved_by"] == {"key": ANA.key, "name": "Ana"}
    assert detail["cmdlet"] == "Set-DistributionGroup"
    assert detail["parameters"] == {
        "Identity": SALES,
        "RequireSenderAuthenticationEnabled": "$false",
    }
    assert detail["command"] == COMMAND
    assert detail["before"]["require_sender_authentication"] is True
    assert detail["after"]["require_sender_authentication"] is False
    assert detail["at"] == at.isoformat()
    assert detail["problem"] is None


def test_a_change_not_made_keeps_the_ticket_open_and_says_why() -> None:
    fix = FixPlan(SALES, "allow_all", None, COMMAND)
    denied = FixOutcome(fix, group(SALES), group(SALES), problem="denied", detail="Access denied")
    plan = RULES.fix_result(approve(), record(), [ALICE], fix, denied, at=Clock().now)
    why = say(
        "ticket_fix_problem_said",
        why=say("ticket_fix_problem_denied", recipient=SALES),
        detail="Access denied",
    )
    assert (plan.kind, plan.status, plan.news) == ("fix_failed", None, None)
    assert plan.done == say("ticket_done_fix_failed", ticket="NDR-1001", why=why)
    assert plan.note == say("ticket_note_fix_failed", admin="Ana", why=why)
    assert plan.detail["problem"] == "denied"
    assert plan.detail["command"] == COMMAND
    # A read-back that still refuses outside senders is no success either (change, then read).
    unchanged = FixOutcome(fix, group(SALES), group(SALES))
    plan = RULES.fix_result(approve(), record(), [ALICE], fix, unchanged, at=Clock().now)
    assert plan.kind == "fix_failed"
    assert plan.detail["why"] == say("ticket_fix_problem_not_applied", recipient=SALES)
    # Not even planned: the recipient is unknown.
    unknown = Lookup(SALES, problem="unknown")
    plan = RULES.fix_result(approve(), record(), [ALICE], unknown, None, at=Clock().now)
    assert plan.detail["why"] == say("ticket_fix_problem_unknown", recipient=SALES)
    assert plan.detail["command"] == ""
    assert plan.detail["before"] is None


def test_the_card_offers_the_change_first_only_with_a_directory_and_until_it_is_made() -> None:
    asked = say("ticket_card_fix_asked", change=say("ticket_fix_change_allow_all", recipient=SALES))
    card = TicketCard.of(record(), [ALICE], KNOWLEDGE, fixes=True)
    assert card.actions[0] is Action.APPLY_FIX
    assert card.change == asked
    without = TicketCard.of(record(), [ALICE], KNOWLEDGE)
    assert Action.APPLY_FIX not in without.actions
    assert without.change == asked  # the admins still see what was asked for
    plain = TicketCard.of(record(path={"role": "sender"}), [ALICE], KNOWLEDGE, fixes=True)
    assert Action.APPLY_FIX not in plain.actions
    assert plain.change is None
    resolved = TicketCard.of(record(status="resolved"), [ALICE], KNOWLEDGE, fixes=True)
    assert resolved.actions == (Action.REOPEN,)
    made = record(path={**ASKED, "fix_state": "applied", "fix_by": "Ana", "fix_command": COMMAND})
    reopened = TicketCard.of(made, [ALICE], KNOWLEDGE, fixes=True)
    assert Action.APPLY_FIX not in reopened.actions
    assert reopened.change == say("ticket_card_fix_applied", admin="Ana", command=COMMAND)


def test_a_request_naming_no_address_asks_for_nothing() -> None:
    assert asked_fix(record(path={"fix": "allow_all"}, bounce={"status": "5.7.12"})) is None
    assert asked_fix(record(path={"fix": "everyone", "fix_recipient": SALES})) is None


# -- the service, with the directory in memory ----------------------------------------------------


@dataclasses.dataclass
class FixDesk:
    store: Store
    tickets: Tickets
    teams: FakeNotifier
    runner: FakeFixRunner

    async def drain(self) -> None:
        while await self.tickets.deliver_due():
            pass

    async def open(
        self, requester: Requester = ALICE, path: dict[str, Any] = ASKED
    ) -> TicketRecord:
        ticket, _ = await self.tickets.open_or_join(
            requester, bounce=BOUNCE, path=dict(path), note=None, dedupe_key="sales|5.7.12"
        )
        return ticket

    async def approve(self, actor: Actor = ANA, seen: int | None = None) -> ActionResult:
        if seen is None:
            seen = (await self.ticket()).version
        return await self.tickets.act(ActionRequest("NDR-1001", Action.APPLY_FIX, actor, seen))

    async def ticket(self) -> TicketRecord:
        found = await self.store.tickets.get_ticket("NDR-1001")
        assert found is not None
        return found

    async def kinds(self) -> list[str]:
        return [event.kind for event in await self.store.tickets.ticket_events("NDR-1001")]


async def fix_desk(url: str, clock: Clock, *, directory: bool = True) -> FixDesk:
    store = await Store.open(url, clock=clock)
    runner = FakeFixRunner({SALES: group(SALES)})
    tickets = Tickets(
        store, KNOWLEDGE, settings(), fix_runner=runner_of(runner) if directory else None
    )
    teams = FakeNotifier("msteams", members={"29:ana", "29:bo"})
    tickets.add_notifier(teams)
    await store.channels.save_admin_channel("msteams", TEAMS_CHANNEL, ANA.key)
    return FixDesk(store, tickets, teams, runner)


@pytest.fixture
async def desk(tmp_path: Any) -> AsyncIterator[FixDesk]:
    opened = await fix_desk(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", Clock())
    yield opened
    await opened.store.close()


async def test_an_admin_approves_and_the_change_is_made_once_and_recorded(desk: FixDesk) -> None:
    await desk.open()
    await desk.tickets.open_or_join(
        BOB, bounce=BOUNCE, path=ASKED, note=None, dedupe_key="sales|5.7.12"
    )
    await desk.drain()
    card = await desk.tickets.card(await desk.ticket())
    assert card.actions[0] is Action.APPLY_FIX

    result = await desk.approve(ANA)
    assert result.applied, result.message
    assert result.message == say("ticket_done_fix_applied", ticket="NDR-1001", recipient=SALES)
    assert desk.runner.planned == [(SALES, "allow_all", None)]
    assert [plan.command for plan in desk.runner.applied] == [COMMAND]
    ticket = await desk.ticket()
    assert ticket.status == "resolved"
    assert ticket.path["fix_state"] == "applied"
    assert await desk.kinds() == ["opened", "joined", "fix_approved", "fix_applied"]

    applied = (await desk.store.tickets.ticket_events("NDR-1001"))[-1]
    assert applied.actor == ANA.key
    detail = applied.detail
    assert detail["asked_by"] == [
        {"key": ALICE.key, "name": "Alice"},
        {"key": BOB.key, "name": "Bob"},
    ]
    assert detail["approved_by"] == {"key": ANA.key, "name": "Ana"}
    assert detail["cmdlet"] == "Set-DistributionGroup"
    assert detail["parameters"]["Identity"] == SALES
    assert detail["command"] == COMMAND
    assert detail["before"]["require_sender_authentication"] is True
    assert detail["after"]["require_sender_authentication"] is False
    assert detail["at"] == Clock().now.isoformat()
    assert detail["status"] == "resolved"

    await desk.drain()
    resolution = detail["note"]
    told = [call for call in desk.teams.calls if call[0] == "tell"]
    assert told == [
        (
            "tell",
            ALICE.key,
            (
                say("ticket_resolved", ticket="NDR-1001", admin="Ana", text=resolution),
                say("ticket_ask_fixed"),
            ),
        )
    ]  # Bob is on Slack: his news waits for a Slack notifier
    notes = [call[2] for call in desk.teams.calls if call[0] == "note"]
    assert notes[-1] == say("ticket_note_fix_applied", admin="Ana", command=COMMAND)
    again = await desk.approve(ANA)
    assert not again.applied
    assert again.message == say("ticket_refused_resolved", ticket="NDR-1001", admin="Ana")
    assert len(desk.runner.applied) == 1


async def test_a_non_admin_may_not_approve_and_nothing_changes(desk: FixDesk) -> None:
    await desk.open()
    refused = await desk.approve(EVE)
    assert not refused.applied
    assert refused.message == say("ticket_refused_not_admin")
    assert refused.ticket is None
    assert desk.runner.planned == []
    assert desk.runner.applied == []
    assert await desk.kinds() == ["opened"]
    # The requester themselves is no admin either.
    requester = Actor(ALICE.platform, ALICE.user_id, ALICE.name)
    assert not (await desk.approve(requester)).applied
    assert desk.runner.applied == []


async def test_a_stale_card_is_refused_and_refreshed_never_applied(desk: FixDesk) -> None:
    await desk.open()
    await desk.drain()
    seen = (await desk.ticket()).version
    reply = ActionRequest("NDR-1001", Action.REPLY, BO, seen, text="Checking with the owner.")
    assert (await desk.tickets.act(reply)).applied
    await desk.drain()
    desk.teams.calls.clear()

    stale = await desk.approve(ANA, seen=seen)
    assert not stale.applied
    assert stale.stale
    assert stale.message == say("ticket_refused_fix_stale", ticket="NDR-1001")
    assert desk.runner.planned == []
    assert await desk.kinds() == ["opened", "replied"]
    await desk.drain()
    assert desk.teams.kinds() == ["update_card"]  # the card shows the ticket as it is now

    assert (await desk.approve(ANA)).applied  # from the refreshed card
    assert len(desk.runner.applied) == 1


async def test_two_approvals_at_once_make_the_change_once(desk: FixDesk) -> None:
    await desk.open()
    seen = (await desk.ticket()).version
    desk.runner.hold = asyncio.Event()
    first = asyncio.create_task(desk.approve(ANA, seen=seen))
    try:
        async with asyncio.timeout(5):  # a second change would wait on the hold: fail, not hang
            await desk.runner.started.wait()
            second = await desk.approve(BO, seen=seen)  # the same card, another admin's click
            # A card drawn after the claim shows the change being made; its click is refused.
            busy = await desk.approve(BO)
    finally:
        desk.runner.hold.set()
    assert not second.applied
    assert second.stale
    assert busy.message == say("ticket_refused_fix_busy", ticket="NDR-1001", admin="Ana")
    assert (await first).applied
    assert len(desk.runner.applied) == 1
    assert (await desk.kinds()).count("fix_applied") == 1


async def test_a_change_that_fails_keeps_the_ticket_open_and_may_be_tried_again(
    desk: FixDesk,
) -> None:
    await desk.open()
    await desk.drain()
    desk.teams.calls.clear()
    desk.runner.problem, desk.runner.detail = "denied", "The user isn't assigned to any role"
    failed = await desk.approve(ANA)
    why = say(
        "ticket_fix_problem_said",
        why=say("ticket_fix_problem_denied", recipient=SALES),
        detail="The user isn't assigned to any role",
    )
    assert not failed.applied
    assert failed.message == say("ticket_done_fix_failed", ticket="NDR-1001", why=why)
    ticket = await desk.ticket()
    assert ticket.status == "open"
    assert ticket.path["fix_state"] == "failed"
    events = await desk.store.tickets.ticket_events("NDR-1001")
    assert [e.kind for e in events] == ["opened", "fix_approved", "fix_failed"]
    assert events[-1].detail["problem"] == "denied"
    assert events[-1].detail["command"] == COMMAND
    await desk.drain()
    assert ("note", 1, say("ticket_note_fix_failed", admin="Ana", why=why)) in desk.teams.calls
    assert "tell" not in desk.teams.kinds()  # the requester hears nothing of a failed try
    card = await desk.tickets.card(ticket)
    assert card.actions[0] is Action.APPLY_FIX

    desk.runner.problem = None  # the app was given the role: the next approval works
    assert (await desk.approve(ANA)).applied
    assert len(desk.runner.applied) == 2


async def test_a_recipient_the_directory_does_not_know_is_not_changed(desk: FixDesk) -> None:
    desk.runner.recipients.clear()
    await desk.open()
    failed = await desk.approve(ANA)
    assert not failed.applied
    assert desk.runner.applied == []
    events = await desk.store.tickets.ticket_events("NDR-1001")
    assert events[-1].kind == "fix_failed"
    assert events[-1].detail["problem"] == "unknown"


async def test_without_a_directory_no_card_offers_it_and_an_approval_is_refused(
    tmp_path: Any,
) -> None:
    desk = await fix_desk(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", Clock(), directory=False)
    try:
        ticket = await desk.open()
        assert Action.APPLY_FIX not in (await desk.tickets.card(ticket)).actions
        refused = await desk.approve(ANA)
        assert refused.message == say("ticket_refused_no_directory", ticket="NDR-1001")
        assert await desk.kinds() == ["opened"]
    finally:
        await desk.store.close()


async def test_joining_an_open_ticket_with_a_request_for_the_change_marks_it(
    desk: FixDesk,
) -> None:
    await desk.open(ALICE, path={"role": "sender"})
    await desk.drain()
    assert asked_fix(await desk.ticket()) is None
    await desk.open(BOB, path=ASKED)
    ticket = await desk.ticket()
    fix = asked_fix(ticket)
    assert fix is not None
    assert fix.recipient == SALES
    assert fix.state == "asked"
    assert ticket.path["role"] == "sender"
    assert await desk.kinds() == ["opened", "joined", "fix_asked"]
    await desk.drain()
    change = say("ticket_fix_change_allow_all", recipient=SALES)
    notes = [call[2] for call in desk.teams.calls if call[0] == "note"]
    assert notes[-1] == say("ticket_note_fix_asked", requester="Bob", change=change)
    await desk.open(BOB, path=ASKED)  # asked again: already marked
    assert await desk.kinds() == ["opened", "joined", "fix_asked"]
