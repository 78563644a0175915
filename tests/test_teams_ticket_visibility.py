"""Who may see a ticket on Teams, over real HTTP (issue 12, finding 3): a ticket card's
``ticketRefresh`` and its actions answer in full only to the ticket's requesters and the admins;
anyone else gets a card that says so, with nothing of the ticket. The card's payloads name the
ticket by its random public reference: a payload with the sequential number, or a guessed
reference, is answered "not found" and changes nothing. And "my tickets" lists one's own only."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.channels.teams import TICKET_REFRESH_VERB
from bot.store import Requester, TicketRecord
from tests.fakes.teams_harness import RUNTIME, TeamsBot, teams_bot, words
from tests.test_teams_tickets import (
    ALEX,
    ALEX_CHAT,
    ANA,
    CHANNEL,
    DIEGO,
    DIEGO_CHAT,
    ENV,
    EVE,
    MEGAN,
    TEAM,
    TIMING,
    as_user,
    drained,
    escalate,
    execute,
    facts,
    register_admins,
    say,
    shown,
    titles,
    to,
)

NOTE = "Please hurry: the Q2 pricing sheet is stuck"
RECIPIENT = "ana.lopez@contoso.com"
#: What only who may see the ticket may read in an answer: who asked, the address, the note.
PRIVATE = ("Alex Wilber", RECIPIENT, "alex.kim@fabrikam.com", NOTE, "Q2 pricing sheet")
#: Strangers: not requesters, not admins (not in ADMIN_USERS, not members of the admins' team).
STRANGERS = [EVE] + [
    {"id": f"29:stranger-{n}", "name": f"Stranger {n}", "aadObjectId": f"stranger-aad-{n}"}
    for n in range(4)
]
VERBS = (TICKET_REFRESH_VERB, "assign_me", "assign", "reply", "resolve", "reopen")


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[TeamsBot]:
    async with teams_bot(tmp_path, env=ENV, ticket_timing=TIMING) as running:
        running.connector.add_member(TEAM, MEGAN["id"], MEGAN["name"], MEGAN["aadObjectId"])
        yield running


async def alex_opens_a_ticket(bot: TeamsBot) -> TicketRecord:
    """Alex escalates through the conversation (no note); the admins' channel gets the card."""
    await register_admins(bot, ANA)
    await escalate(bot, ALEX, ALEX_CHAT)
    await drained(bot)
    found = await bot.app[RUNTIME].store.tickets.get_ticket("NDR-1001")
    assert found is not None
    return found


async def open_with_note(bot: TeamsBot, user: dict[str, Any], chat: dict[str, Any]) -> TicketRecord:
    """A ticket with a note, opened through the service as the escalation flow does."""
    requester = Requester("msteams", user["aadObjectId"], user["name"], f"msteams:{chat['id']}")
    record, _ = await bot.app[RUNTIME].tickets.open_or_join(
        requester,
        bounce={
            "status": "5.7.12",
            "smtp_code": "550",
            "recipients": [RECIPIENT],
            "sender": "alex.kim@fabrikam.com",
            "subject": "Q2 pricing sheet",
        },
        path={"role": "sender"},
        note=NOTE,
        dedupe_key=None,
    )
    await drained(bot)
    return record


def leaked(answer: dict[str, Any]) -> list[str]:
    """What of the ticket's private facts an invoke response shows."""
    text = json.dumps(answer, ensure_ascii=False)
    return [fact for fact in PRIVATE if fact in text]


def notice(answer: dict[str, Any]) -> str:
    """The one text of a notice card (what someone who may not see a ticket is shown)."""
    card = shown(answer)
    assert "refresh" not in card, card
    assert "actions" not in card, card
    (block,) = card["body"]
    return str(block["text"])


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# ---- seen only by who may ---------------------------------------------------------------------


async def test_a_stranger_refreshing_or_acting_sees_only_that_the_ticket_is_not_theirs(
    bot: TeamsBot, caplog: pytest.LogCaptureFixture
) -> None:
    await register_admins(bot, ANA)
    ticket = await open_with_note(bot, ALEX, ALEX_CHAT)
    data = {"ref": ticket.ref, "version": ticket.version}
    tried = held = 0
    for stranger in STRANGERS:
        for verb in VERBS:
            extra = {"reply": "hi", "resolution": "done", "assignee": "29:eve|Eve"}
            answer = await execute(bot, stranger, verb, {**data, **extra})
            tried += 1
            if verb == TICKET_REFRESH_VERB:
                assert notice(answer) == say("ticket_private")
            else:
                assert answer["value"] == say("ticket_refused_not_admin"), answer
            held += not leaked(answer)
    assert (tried, held) == (len(STRANGERS) * len(VERBS), tried), "tried N, held N"
    assert await drained(bot) == [], "nothing was sent anywhere"
    now = await bot.app[RUNTIME].store.tickets.get_ticket(ticket.id)
    assert now is not None
    assert now.version == ticket.version
    assert errors(caplog) == []


async def test_the_requester_and_the_admins_see_the_whole_card(bot: TeamsBot) -> None:
    ticket = await alex_opens_a_ticket(bot)
    data = {"ref": ticket.ref, "version": ticket.version}

    alex = shown(await execute(bot, ALEX, TICKET_REFRESH_VERB, data))
    assert facts(alex)["Requested by"] == "Alex Wilber"
    assert facts(alex)["Recipient"] == RECIPIENT
    assert "actions" not in alex, "a requester sees the ticket, not the admins' buttons"

    for admin in (ANA, MEGAN):  # ADMIN_USERS, and a member of the admins' team
        card = shown(await execute(bot, admin, TICKET_REFRESH_VERB, data))
        assert facts(card)["Requested by"] == "Alex Wilber"
        assert facts(card)["Recipient"] == RECIPIENT
        assert titles(card) == [
            "Assign to me",
            "Assign to someone",
            "Reply to the requester",
            "Resolve",
        ]

    # Diego is a stranger to it until he has the same bounce: then he is a requester too.
    assert notice(await execute(bot, DIEGO, TICKET_REFRESH_VERB, data)) == say("ticket_private")
    await escalate(bot, DIEGO, DIEGO_CHAT)
    await drained(bot)
    diego = shown(await execute(bot, DIEGO, TICKET_REFRESH_VERB, data))
    assert facts(diego)["Requested by"] == "Alex Wilber, Diego Siciliani"


async def test_a_requesters_note_is_shown_to_the_requester_and_not_to_a_stranger(
    bot: TeamsBot,
) -> None:
    await register_admins(bot, ANA)
    ticket = await open_with_note(bot, ALEX, ALEX_CHAT)
    data = {"ref": ticket.ref, "version": ticket.version}
    assert NOTE in json.dumps(await execute(bot, ALEX, TICKET_REFRESH_VERB, data))
    assert NOTE in json.dumps(await execute(bot, ANA, TICKET_REFRESH_VERB, data))
    assert leaked(await execute(bot, EVE, TICKET_REFRESH_VERB, data)) == []


# ---- payloads name tickets by their public reference only -------------------------------------


async def test_the_card_names_its_ticket_by_a_random_reference_never_its_number(
    bot: TeamsBot,
) -> None:
    await register_admins(bot, ANA)
    await escalate(bot, ALEX, ALEX_CHAT)
    (post,) = to(await drained(bot), CHANNEL)
    ticket = await bot.app[RUNTIME].store.tickets.get_ticket("NDR-1001")
    assert ticket is not None
    card = post.cards[0]
    assert card["refresh"]["action"]["data"] == {"ref": ticket.ref, "version": 1}
    assert len(ticket.ref) >= 16
    admin_view = shown(await execute(bot, ANA, TICKET_REFRESH_VERB, {"ref": ticket.ref}))
    payloads = [card["refresh"], admin_view["refresh"], admin_view["actions"]]
    assert "NDR-1001" not in json.dumps(payloads), "no payload carries the number"
    assert "1001" not in json.dumps([card["refresh"]["action"]["data"]])
    assert "NDR-1001" in json.dumps(card["body"]), "people still see the number"
    second = await open_with_note(bot, DIEGO, DIEGO_CHAT)
    assert second.ref != ticket.ref


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"ticket": "NDR-1001", "version": 1}, id="the-number-as-before"),
        pytest.param({"ref": "NDR-1001", "version": 1}, id="the-number-as-a-ref"),
        pytest.param({"ref": "1", "version": 1}, id="a-bare-number"),
        pytest.param({"ref": 1001, "version": 1}, id="an-integer"),
        pytest.param({"ref": ["x"], "ticket": "NDR-1001"}, id="a-list"),
        pytest.param({"ref": secrets.token_urlsafe(12), "version": 1}, id="a-guessed-ref"),
    ],
)
async def test_a_payload_with_a_number_or_a_guessed_ref_is_not_found(
    bot: TeamsBot, caplog: pytest.LogCaptureFixture, data: dict[str, Any]
) -> None:
    ticket = await alex_opens_a_ticket(bot)
    for who in (EVE, ANA):  # an admin too: a number never names a ticket in a payload
        answer = await execute(bot, who, TICKET_REFRESH_VERB, data)
        assert notice(answer) == say("ticket_not_found")
        for verb in ("assign_me", "resolve"):
            acted = await execute(bot, who, verb, {**data, "resolution": "done"})
            assert acted["value"] == say("ticket_not_found"), acted
            assert leaked(acted) == []
        assert leaked(answer) == []
    assert await drained(bot) == []
    now = await bot.app[RUNTIME].store.tickets.get_ticket(ticket.id)
    assert now is not None
    assert now.version == ticket.version
    assert errors(caplog) == []


# ---- "my tickets" -----------------------------------------------------------------------------


async def test_my_tickets_lists_ones_own_tickets_only(bot: TeamsBot) -> None:
    await register_admins(bot, ANA)
    await escalate(bot, ALEX, ALEX_CHAT)
    diegos = await open_with_note(bot, DIEGO, DIEGO_CHAT)
    await drained(bot)

    async def my_tickets(user: dict[str, Any], chat: dict[str, Any]) -> str:
        posted = await bot.send(bot.activity(text="my tickets", **as_user(user, chat)))
        return words(to(posted, chat["id"]))

    alex = await my_tickets(ALEX, ALEX_CHAT)
    assert "NDR-1001" in alex
    assert diegos.id not in alex
    diego = await my_tickets(DIEGO, DIEGO_CHAT)
    assert diegos.id in diego
    assert "NDR-1001" not in diego
    eve = await my_tickets(EVE, {**ALEX_CHAT, "id": "a:eve-personal-chat"})
    assert eve == say("my_tickets_none")
    # An admin is no requester: "my tickets" is about their own, not everyone's.
    ana = await my_tickets(ANA, {**ALEX_CHAT, "id": "a:ana-personal-chat"})
    assert ana == say("my_tickets_none")
