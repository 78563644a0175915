"""The rules of the admins' actions (bot/tickets/rules.py), without a database: what each
action changes and says, when it is refused, and which jobs follow for the cards and the
requesters. The service applies these (tests/test_tickets.py works it end to end)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.store import KEEP, NewJob, Requester, TicketChange, TicketRecord
from bot.tickets import Action, ActionRequest, Actor
from bot.tickets.rules import ActionRules, Plan, has_chat
from knowledge.kb import default_knowledge

WORDS = default_knowledge().conversation
RULES = ActionRules(WORDS)
ANA = Actor("msteams", "29:ana", "Ana")
BO = Actor("msteams", "29:bo", "Bo")
ALICE = Requester("msteams", "29:alice", "Alice", "msteams:a:alice")
BOB = Requester("slack", "U0BOB", "Bob", "slack:D0BOB")
CAROL = Requester("console", "carol", "Carol", "console:carol")
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def say(key: str, **values: str) -> str:
    return WORDS.text(key, **values)


def ticket(status: str = "open", assignee: dict[str, Any] | None = None) -> TicketRecord:
    return TicketRecord(
        id="NDR-1001",
        number=1,
        status=status,
        requester=ALICE,
        bounce={"status": "5.7.12", "recipients": ["sales@fabrikam.com"]},
        path={"role": "sender"},
        note=None,
        dedupe_key="k",
        assignee=assignee,
        created_at=NOW,
        updated_at=NOW,
        version=3,
    )


def request(action: Action, actor: Actor = ANA, **kwargs: Any) -> ActionRequest:
    return ActionRequest("NDR-1001", action, actor, seen_version=None, **kwargs)


def change(
    kind: str, *, admins: frozenset[str] = frozenset(), cards: frozenset[str] = frozenset()
) -> TicketChange:
    return TicketChange(
        ticket=ticket(),
        kind=kind,
        actor=ANA.key,
        at=NOW,
        detail={},
        requesters=[ALICE, BOB, CAROL],
        admin_platforms=admins,
        card_platforms=cards,
    )


def planned(result: Plan | str) -> Plan:
    assert isinstance(result, Plan), result
    return result


# -- each action ----------------------------------------------------------------------------------


def test_assign_to_me_takes_it_and_tells_the_requesters_who() -> None:
    plan = planned(RULES.plan(request(Action.ASSIGN_ME), ticket(), stale=False))
    assert (plan.kind, plan.status) == ("assigned", "assigned")
    assert plan.assignee == {"platform": "msteams", "user_id": "29:ana", "name": "Ana"}
    assert plan.detail == {"by": "Ana"}
    assert plan.note == say("ticket_note_took", admin="Ana")
    assert plan.done == say("ticket_done_took", ticket="NDR-1001")
    assert (plan.news, plan.news_admin) == ("assigned", "Ana")


def test_assign_to_someone_else_names_both() -> None:
    plan = planned(RULES.plan(request(Action.ASSIGN, assignee=BO), ticket(), stale=False))
    assert plan.assignee == {"platform": "msteams", "user_id": "29:bo", "name": "Bo"}
    assert plan.note == say("ticket_note_assigned", admin="Ana", assignee="Bo")
    assert plan.done == say("ticket_done_assigned", ticket="NDR-1001", assignee="Bo")
    assert plan.news_admin == "Bo"  # the requester hears who has it now


def test_reply_keeps_the_assignee_and_relays_the_text() -> None:
    plan = planned(RULES.plan(request(Action.REPLY, text="  On it.  "), ticket(), stale=False))
    assert (plan.kind, plan.status, plan.assignee) == ("replied", None, KEEP)
    assert plan.detail == {"by": "Ana", "text": "On it."}
    assert plan.note == say("ticket_note_replied", admin="Ana", text="On it.")
    assert (plan.news, plan.news_text) == ("replied", "On it.")


def test_resolve_keeps_the_assignee_with_the_note() -> None:
    plan = planned(RULES.plan(request(Action.RESOLVE, text="Allowed."), ticket(), stale=False))
    assert (plan.kind, plan.status, plan.assignee) == ("resolved", "resolved", KEEP)
    assert plan.detail == {"by": "Ana", "note": "Allowed."}
    assert plan.done == say("ticket_done_resolved", ticket="NDR-1001")
    assert (plan.news, plan.news_text) == ("resolved", "Allowed.")


def test_reopen_clears_the_assignee() -> None:
    plan = planned(RULES.plan(request(Action.REOPEN), ticket("resolved"), stale=False))
    assert (plan.kind, plan.status, plan.assignee) == ("reopened", "open", None)
    assert plan.note == say("ticket_note_reopened", admin="Ana")
    assert plan.skip_requester is None


def test_a_requester_reopening_is_not_told_their_own_news() -> None:
    plan = RULES.requester_reopen(ALICE)
    assert (plan.kind, plan.status, plan.assignee) == ("reopened", "open", None)
    assert plan.detail == {"by": "Alice", "requester": True}
    assert plan.note == say("ticket_note_requester_reopened", requester="Alice")
    assert plan.skip_requester == ALICE.key


def test_done_on_a_stale_card_says_it_was_done_on_the_ticket_as_it_is() -> None:
    plan = planned(RULES.plan(request(Action.ASSIGN_ME), ticket(), stale=True))
    assert RULES.done(plan, stale=False) == plan.done
    assert RULES.done(plan, stale=True) == plan.done + " " + say("ticket_done_on_current")


# -- refused --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "kwargs", "key"),
    [
        (Action.ASSIGN, {}, "ticket_refused_no_assignee"),
        (Action.REPLY, {"text": "  "}, "ticket_refused_no_text"),
        (Action.RESOLVE, {}, "ticket_refused_no_note"),
    ],
)
def test_an_action_without_what_it_needs_is_refused(
    action: Action, kwargs: dict[str, Any], key: str
) -> None:
    assert RULES.missing_input(request(action, **kwargs), ticket()) == say(key, ticket="NDR-1001")


def test_an_action_with_what_it_needs_passes() -> None:
    assert RULES.missing_input(request(Action.REPLY, text="hi"), ticket()) is None
    assert RULES.missing_input(request(Action.ASSIGN_ME), ticket()) is None


def test_reopening_a_ticket_that_is_not_resolved_is_refused() -> None:
    refused = RULES.plan(request(Action.REOPEN), ticket("assigned"), stale=False)
    assert refused == say("ticket_refused_not_resolved", ticket="NDR-1001")


@pytest.mark.parametrize("action", [Action.ASSIGN_ME, Action.REPLY, Action.RESOLVE])
def test_a_resolved_ticket_refuses_all_but_reopen_naming_who_resolved_it(action: Action) -> None:
    refused = RULES.plan(request(action, text="x"), ticket("resolved"), stale=False, resolver="Bo")
    assert refused == say("ticket_refused_resolved", ticket="NDR-1001", admin="Bo")


def test_taking_a_ticket_already_yours_or_theirs_is_refused() -> None:
    ana = {"platform": "msteams", "user_id": "29:ana", "name": "Ana"}
    mine = RULES.plan(request(Action.ASSIGN_ME), ticket("assigned", ana), stale=False)
    assert mine == say("ticket_refused_yours", ticket="NDR-1001")
    bo = {"platform": "msteams", "user_id": "29:bo", "name": "Bo"}
    again = RULES.plan(request(Action.ASSIGN, assignee=BO), ticket("assigned", bo), stale=False)
    assert again == say("ticket_refused_assigned", ticket="NDR-1001", assignee="Bo")


def test_assign_to_me_on_a_stale_card_leaves_it_to_whoever_took_it_meanwhile() -> None:
    bo = {"platform": "msteams", "user_id": "29:bo", "name": "Bo"}
    refused = RULES.plan(request(Action.ASSIGN_ME), ticket("assigned", bo), stale=True)
    assert refused == say("ticket_refused_assigned", ticket="NDR-1001", assignee="Bo")
    # On a fresh card it is taken over: the admin saw who had it.
    taken = planned(RULES.plan(request(Action.ASSIGN_ME), ticket("assigned", bo), stale=False))
    assert taken.assignee == {"platform": "msteams", "user_id": "29:ana", "name": "Ana"}


# -- the jobs that follow -------------------------------------------------------------------------


def test_an_opened_ticket_posts_a_card_on_every_admins_channel() -> None:
    jobs = RULES.opening_jobs(change("opened", admins=frozenset({"msteams"})), "Alice")
    assert jobs == [NewJob("msteams", "post_card", {})]
    standing = ActionRules(WORDS, {"slack": {"channel": "C0ADMINS"}})
    jobs = standing.opening_jobs(change("opened", admins=frozenset({"msteams"})), "Alice")
    assert [(job.target, job.kind) for job in jobs] == [
        ("msteams", "post_card"),
        ("slack", "post_card"),
    ]
    assert RULES.opening_jobs(change("opened"), "Alice") == []  # no admins' channel yet


def test_a_join_updates_the_cards_with_a_note() -> None:
    jobs = RULES.opening_jobs(change("joined", cards=frozenset({"slack"})), "Bob")
    note = say("ticket_note_joined", requester="Bob")
    assert jobs == [NewJob("slack", "update_card", {}), NewJob("slack", "note", {"text": note})]


def test_an_action_updates_the_cards_and_tells_each_requester_in_a_chat() -> None:
    plan = planned(RULES.plan(request(Action.REPLY, text="On it."), ticket(), stale=False))
    jobs = RULES.change_jobs(plan, change("replied", cards=frozenset({"msteams"})))
    assert [(job.target, job.kind) for job in jobs] == [
        ("msteams", "update_card"),
        ("msteams", "note"),
        ("msteams", "tell_requester"),  # Alice
        ("slack", "tell_requester"),  # Bob; Carol is in the terminal: no job
    ]
    assert jobs[1].payload == {"text": plan.note}
    assert jobs[3].payload == {
        "requester": BOB.as_json(),
        "news": "replied",
        "ticket": "NDR-1001",
        "admin": "Ana",
        "text": "On it.",
    }


def test_the_requester_who_reopened_is_not_sent_a_job() -> None:
    jobs = RULES.change_jobs(RULES.requester_reopen(BOB), change("reopened"))
    assert [(job.target, job.kind) for job in jobs] == [("msteams", "tell_requester")]


def test_a_plan_without_news_tells_nobody() -> None:
    plan = dataclasses.replace(RULES.requester_reopen(BOB), news=None)
    assert RULES.change_jobs(plan, change("reopened")) == []


def test_a_terminal_requester_has_no_chat() -> None:
    assert has_chat(ALICE)
    assert has_chat(BOB)
    assert not has_chat(CAROL)
