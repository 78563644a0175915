"""Issue 13 on Teams, over real HTTP: a sender inside the organization asks the helpdesk to change
the recipient, an admin approves from the ticket card (Universal Actions), the change is made once
through the directory (tests/fake_directory.py), and the requester hears it is done."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.channels.teams import TICKET_REFRESH_VERB
from tests.fake_directory import FakeFixRunner, command_for, mailbox
from tests.fakes.teams_harness import TeamsBot, button_value, teams_bot, words
from tests.fakes_exchange import FakeExchange
from tests.fakes_exchange.server import recipient
from tests.test_teams_tickets import (
    ALEX,
    ALEX_CHAT,
    ANA,
    BOUNCE,
    CHANNEL,
    ENV,
    EVE,
    MEGAN,
    TEAM,
    TIMING,
    as_user,
    drained,
    execute,
    register_admins,
    say,
    shown,
    thread,
    ticket,
    titles,
    to,
)
from tests.transcripts import ASK_ROLE

ANA_LOPEZ = "ana.lopez@contoso.com"  # the bounce's recipient, in ORG_DOMAINS
COMMAND = command_for(mailbox(ANA_LOPEZ))


def texts(card: dict[str, Any]) -> str:
    """Every text on a card, one a line (the TextBlocks, the facts' values)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("text", "value"):
                if isinstance(node.get(key), str):
                    found.append(node[key])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(card.get("body", []))
    return "\n".join(found)


@pytest.fixture
def directory() -> FakeFixRunner:
    return FakeFixRunner({ANA_LOPEZ: mailbox(ANA_LOPEZ)})


@pytest.fixture
async def bot(tmp_path: Path, directory: FakeFixRunner) -> AsyncIterator[TeamsBot]:
    async with teams_bot(tmp_path, env=ENV, ticket_timing=TIMING, fix_runner=directory) as running:
        running.connector.add_member(TEAM, MEGAN["id"], MEGAN["name"], MEGAN["aadObjectId"])
        yield running


async def test_a_sender_asks_an_admin_approves_and_the_sender_hears_it_is_done(
    bot: TeamsBot, directory: FakeFixRunner
) -> None:
    assert say("admins_registered") in await register_admins(bot, ANA)
    await drained(bot)

    # Alex (inside the organization) sent to one of our own addresses: he asks for the change.
    who = as_user(ALEX, ALEX_CHAT)
    assert ASK_ROLE in words(await bot.send(bot.activity(text=BOUNCE, **who)))
    for title in ("I sent the message", "Open a ticket"):
        assert bot.last_card is not None
        said = words(
            await bot.send(
                bot.activity("card_submit", value=button_value(bot.last_card, title), **who)
            )
        )
    assert say("escalate_ask_note_fix", recipient=ANA_LOPEZ) in said
    assert bot.last_card is not None
    value = button_value(bot.last_card, "Ask the helpdesk to change it")
    said = words(await bot.send(bot.activity("card_submit", value=value, **who)))
    assert say("escalate_fix_opened", ticket="NDR-1001", recipient=ANA_LOPEZ) in said

    # The card in the channel says what was asked; an admin's view offers "Approve and apply".
    (post,) = to(await drained(bot), CHANNEL)
    card_id = post.new_id
    asked = say(
        "ticket_card_fix_asked",
        change=say("ticket_fix_change_allow_all", recipient=ANA_LOPEZ),
    )
    assert asked in texts(post.cards[0])
    assert "actions" not in post.cards[0]
    opened = await ticket(bot)
    data = {"ref": opened.ref, "version": opened.version}
    view = shown(await execute(bot, ANA, TICKET_REFRESH_VERB, data, card_id))
    assert titles(view)[0] == "Approve and apply"
    assert asked in texts(view)

    # Eve is no admin: refused, nothing planned, nothing made.
    answer = await execute(bot, EVE, "apply_fix", data, card_id)
    assert answer["value"] == say("ticket_refused_not_admin")
    assert directory.planned == []

    # Ana approves: the change is made once, exactly as planned, and the ticket is resolved.
    answer = await execute(bot, ANA, "apply_fix", data, card_id)
    done = say("ticket_done_fix_applied", ticket="NDR-1001", recipient=ANA_LOPEZ)
    assert done in texts(shown(answer))
    assert directory.planned == [(ANA_LOPEZ, "allow_all", None)]
    assert [plan.command for plan in directory.applied] == [COMMAND]
    resolved = await ticket(bot)
    assert resolved.status == "resolved"

    posted = await drained(bot)
    notes = [p.text for p in to(posted, thread(card_id))]
    change = say("ticket_fix_change_allow_all", recipient=ANA_LOPEZ)
    assert notes == [
        say("ticket_note_fix_approved", admin="Ana Ortiz", change=change),
        say("ticket_note_fix_applied", admin="Ana Ortiz", command=COMMAND),
    ]
    updated = [p for p in to(posted, CHANNEL) if p.kind == "update"]
    made = say("ticket_card_fix_applied", admin="Ana Ortiz", command=COMMAND)
    assert made in texts(updated[-1].cards[0])

    # Alex hears it is done, and is asked whether that fixed it.
    news = words(to(posted, ALEX_CHAT["id"]))
    resolution = say(
        "ticket_fix_resolution",
        recipient=ANA_LOPEZ,
        before=say("ticket_fix_setting_inside"),
        after=say("ticket_fix_setting_open"),
    )
    assert say("ticket_resolved", ticket="NDR-1001", admin="Ana Ortiz", text=resolution) in news
    assert say("ticket_ask_fixed") in news

    # Megan's card was drawn before: her click applies nothing a second time.
    answer = await execute(bot, MEGAN, "apply_fix", data, card_id)
    refused = say("ticket_refused_resolved", ticket="NDR-1001", admin="Ana Ortiz")
    assert refused in texts(shown(answer))
    assert len(directory.applied) == 1

    # "It's fixed": the ticket stays closed.
    said = words(await bot.send(bot.activity(text="yes, it's fixed", **who)))
    assert say("ticket_fixed_yes") in said
    assert (await ticket(bot)).status == "resolved"


async def test_an_approval_runs_the_cmdlet_in_exchange_over_https(tmp_path: Path) -> None:
    """The same approval with Exchange Online connected (the fake admin API over HTTPS): the
    runtime's own directory makes the change, and Exchange got exactly the cmdlet shown."""
    exchange = FakeExchange(tmp_path)
    exchange.recipients[ANA_LOPEZ] = recipient(ANA_LOPEZ, "UserMailbox")
    await exchange.start()
    try:
        env = {**ENV, **exchange.env()}
        async with teams_bot(tmp_path, env=env, ticket_timing=TIMING) as bot:
            bot.connector.add_member(TEAM, MEGAN["id"], MEGAN["name"], MEGAN["aadObjectId"])
            await register_admins(bot, ANA)
            await drained(bot)
            who = as_user(ALEX, ALEX_CHAT)
            await bot.send(bot.activity(text=BOUNCE, **who))
            for title in ("I sent the message", "Open a ticket", "Ask the helpdesk to change it"):
                assert bot.last_card is not None
                value = button_value(bot.last_card, title)
                await bot.send(bot.activity("card_submit", value=value, **who))
            (post,) = to(await drained(bot), CHANNEL)
            opened = await ticket(bot)
            data = {"ref": opened.ref, "version": opened.version}
            assert not [c for c in exchange.cmdlets() if c.startswith("Set-")]

            await execute(bot, ANA, "apply_fix", data, post.new_id)
            changes = [(c.cmdlet, c.parameters) for c in exchange.calls if c.cmdlet[:4] == "Set-"]
            assert changes == [
                (
                    "Set-Mailbox",
                    {"Identity": ANA_LOPEZ, "RequireSenderAuthenticationEnabled": False},
                )
            ]
            assert exchange.recipients[ANA_LOPEZ]["RequireSenderAuthenticationEnabled"] is False
            assert (await ticket(bot)).status == "resolved"
            news = words(to(await drained(bot), ALEX_CHAT["id"]))
            assert say("ticket_ask_fixed") in news
    finally:
        await exchange.close()
