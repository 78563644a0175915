"""Who may see a ticket on Slack, over real HTTP with signed requests (issue 12, finding 3): the
card's buttons, block ids and modals name the ticket by its random public reference, never by
its sequential number; a button or a modal that names it by number, or by a guessed reference,
is answered "not found" and changes nothing; a non-admin's clicks show them nothing of the
ticket; and "my tickets" lists one's own only."""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

import pytest

from bot.app import RUNTIME
from bot.store import Requester, TicketRecord
from tests.fakes_slack import Call
from tests.fakes_slack.harness import SlackBot, buttons, settle, until
from tests.test_slack_tickets import (
    ADMINS,
    ANA,
    BEN,
    NOBODY,
    ROBIN,
    api,
    bot,
    cards,
    dm,
    ephemerals,
    escalate,
    open_modal,
    posts,
    say,
)

__all__ = ["api", "bot"]  # the fixtures, shared with test_slack_tickets

NOTE = "Customer call at 3, please hurry"
RECIPIENT = "pricing@contoso.com"
PRIVATE = ("Ana Asker", RECIPIENT, "alex@fabrikam.com", NOTE)


async def open_with_note(bot: SlackBot) -> TicketRecord:
    """Ana's ticket with a note, opened through the service as the escalation flow does."""
    user, channel, name = ANA
    record, _ = await bot.app[RUNTIME].tickets.open_or_join(
        Requester("slack", user, name, f"slack:{channel}"),
        bounce={
            "status": "5.7.12",
            "smtp_code": "550",
            "recipients": [RECIPIENT],
            "sender": "alex@fabrikam.com",
        },
        path={"role": "sender"},
        note=NOTE,
        dedupe_key=None,
    )
    return record


async def current(bot: SlackBot, ticket_id: str = "NDR-1001") -> TicketRecord:
    found = await bot.app[RUNTIME].store.tickets.get_ticket(ticket_id)
    assert found is not None
    return found


def private_in(calls: list[Call]) -> list[str]:
    """The ticket's private facts any of these Web API calls carries."""
    text = json.dumps([call.params for call in calls], ensure_ascii=False)
    return [fact for fact in PRIVATE if fact in text]


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def interact(bot: SlackBot, payload: dict[str, Any]) -> None:
    response = await bot.interaction(payload)
    assert response.status == 200, await response.text()


def forged(click: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    """A real click's payload with its button's value changed (what anyone can send)."""
    click["actions"][0]["value"] = json.dumps(value)
    return click


async def test_the_cards_buttons_and_modals_name_the_ticket_by_its_reference(
    bot: SlackBot,
) -> None:
    ticket = await open_with_note(bot)
    (card,) = await until("the card", lambda: cards(bot.api))
    assert buttons(card) == [
        "Assign to me",
        "Assign to someone",
        "Reply to the requester",
        "Resolve",
    ]
    (actions,) = [block for block in card.blocks if block["type"] == "actions"]
    assert actions["block_id"] == f"ticket:{ticket.ref}:1"
    assert {json.loads(button["value"])["ref"] for button in actions["elements"]} == {ticket.ref}
    assert "NDR-1001" not in json.dumps(actions), "no value or block id carries the number"
    assert "NDR-1001" in card.text, "people still see the number"

    opened = await open_modal(bot, card, "Reply to the requester", ROBIN)
    metadata = json.loads(opened.view["private_metadata"])
    assert metadata == {"action": "reply", "ref": ticket.ref, "version": 1, "channel": ADMINS}
    assert "NDR-1001" in opened.view["title"]["text"]


async def test_a_non_admin_clicking_every_button_sees_nothing_of_the_ticket(
    bot: SlackBot, caplog: pytest.LogCaptureFixture
) -> None:
    ticket = await open_with_note(bot)
    (card,) = await until("the card", lambda: cards(bot.api))
    calls = len(bot.api.calls)
    labels = buttons(card)
    for label in labels:
        await interact(bot, bot.click(card, label, user=NOBODY))
    refused = say("ticket_refused_not_admin")
    await until("the refusals", lambda: ephemerals(bot.api, NOBODY) == [refused] * len(labels))
    await settle(bot)
    answered = bot.api.calls[calls:]
    tried, held = len(labels), len(labels) - len(private_in(answered))
    assert (tried, held) == (4, 4), "tried N, held N"
    assert not bot.api.of("views.open")
    assert await current(bot) == ticket
    assert errors(caplog) == []


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"ticket": "NDR-1001", "version": 1}, id="the-number-as-before"),
        pytest.param({"ref": "NDR-1001", "version": 1}, id="the-number-as-a-ref"),
        pytest.param({"ref": secrets.token_urlsafe(12), "version": 1}, id="a-guessed-ref"),
    ],
)
async def test_a_button_with_a_number_or_a_guessed_ref_is_not_found(
    bot: SlackBot, caplog: pytest.LogCaptureFixture, value: dict[str, Any]
) -> None:
    ticket = await open_with_note(bot)
    (card,) = await until("the card", lambda: cards(bot.api))
    calls = len(bot.api.calls)
    for label in ("Assign to me", "Reply to the requester"):  # one acts at once, one opens a modal
        await interact(bot, forged(bot.click(card, label, user=ROBIN), value))
    not_found = say("ticket_not_found")
    await until("not found", lambda: ephemerals(bot.api, ROBIN) == [not_found] * 2)
    await settle(bot)
    assert not bot.api.of("views.open")
    assert private_in(bot.api.calls[calls:]) == []
    assert await current(bot) == ticket
    assert errors(caplog) == []


async def test_a_modal_naming_a_number_or_a_guessed_ref_changes_nothing(
    bot: SlackBot, caplog: pytest.LogCaptureFixture
) -> None:
    ticket = await open_with_note(bot)
    (card,) = await until("the card", lambda: cards(bot.api))
    opened = await open_modal(bot, card, "Reply to the requester", ROBIN)
    real = json.loads(opened.view["private_metadata"])

    number = {**real, "ticket": "NDR-1001"}
    del number["ref"]
    submission = bot.submit(opened, "Hello from a forged modal", user=ROBIN)
    submission["view"]["private_metadata"] = json.dumps(number)
    await interact(bot, submission)  # Slack's contract: the empty 200 closes it; nothing done

    guessed = {**real, "ref": secrets.token_urlsafe(12)}
    submission = bot.submit(opened, "Hello from a forged modal", user=ROBIN)
    submission["view"]["id"] += "-again"
    submission["view"]["private_metadata"] = json.dumps(guessed)
    await interact(bot, submission)
    await until("not found", lambda: ephemerals(bot.api, ROBIN) == [say("ticket_not_found")])
    await settle(bot)
    assert await current(bot) == ticket
    assert not posts(bot.api, ANA[1]), "nothing was relayed to the requester"
    assert errors(caplog) == []


async def test_my_tickets_lists_ones_own_tickets_only(bot: SlackBot) -> None:
    assert "NDR-1001" in await escalate(bot, ANA)
    ana = (await dm(bot, ANA, "my tickets"))[-1].text
    assert "NDR-1001" in ana
    ben = (await dm(bot, BEN, "my tickets"))[-1].text
    assert ben == say("my_tickets_none")
    robin = ("U0ADMIN01", "D0ADMIN01", "Robin Admin")  # an admin: their own, not everyone's
    assert (await dm(bot, robin, "my tickets"))[-1].text == say("my_tickets_none")
