"""Issue 13 on Slack, over real HTTP: a sender inside the organization asks the helpdesk in their
DM to change the recipient, an admin approves from the ticket card's button (a signed interaction),
the change is made once through the directory (tests/fake_directory.py), and the requester hears
it is done."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import FIX_RUNNER
from tests.fake_directory import FakeFixRunner, command_for, mailbox
from tests.fakes_slack import FakeSlackWebAPI
from tests.fakes_slack.harness import SlackBot, buttons, corpus, until
from tests.test_slack_tickets import (
    ADMINS,
    ANA,
    BOUNCE,
    FAST,
    NOBODY,
    ROBIN,
    api,  # noqa: F401 - the fixture: the admins' channel and its members
    card_ts,
    cards,
    click,
    dm,
    ephemerals,
    header,
    latest,
    posts,
    say,
)

ANA_LOPEZ = "ana.lopez@contoso.com"  # the bounce's recipient, in ORG_DOMAINS
COMMAND = command_for(mailbox(ANA_LOPEZ))


def texts(call: Any) -> str:
    """Every text of a message's blocks, one a line."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(call.blocks)
    return "\n".join(found)


@pytest.fixture
def directory() -> FakeFixRunner:
    return FakeFixRunner({ANA_LOPEZ: mailbox(ANA_LOPEZ)})


@pytest.fixture
async def bot(
    api: FakeSlackWebAPI,  # noqa: F811 - the fixture imported above
    database_url: str,
    directory: FakeFixRunner,
) -> AsyncIterator[SlackBot]:
    env = {"SLACK_ADMIN_CHANNEL": ADMINS, "ORG_DOMAINS": "contoso.com"}
    running = SlackBot(api, database_url, env=env, timing=FAST)
    running.app[FIX_RUNNER] = directory
    await running.start()
    yield running
    await running.close()


async def test_a_sender_asks_an_admin_approves_and_the_sender_hears_it_is_done(
    bot: SlackBot, directory: FakeFixRunner
) -> None:
    web = bot.api
    # Ana (inside the organization) sent to one of our own addresses: she asks for the change.
    await dm(bot, ANA, corpus(BOUNCE))
    own = await dm(bot, ANA, "I sent the message")
    assert buttons(own[-1])[:2] == ["Open a ticket", "No thanks"]
    asked = await dm(bot, ANA, "yes")
    assert buttons(asked[-1]) == ["No note", "Ask the helpdesk to change it", "Don't open a ticket"]
    (opened,) = await dm(bot, ANA, "please change it")
    assert opened.text == say("escalate_fix_opened", ticket="NDR-1001", recipient=ANA_LOPEZ)

    # The card says what was asked, and offers "Approve and apply" first.
    (card,) = await until("the card", lambda: cards(web))
    ts = card_ts(card)
    change = say("ticket_fix_change_allow_all", recipient=ANA_LOPEZ)
    assert say("ticket_card_fix_asked", change=change) in texts(card)
    assert buttons(card)[0] == "Approve and apply"

    # Nora is no admin: refused, nothing planned.
    await click(bot, card, "Approve and apply", NOBODY)
    refused = say("ticket_refused_not_admin")
    await until("Nora refused", lambda: refused in ephemerals(web, NOBODY))
    assert directory.planned == []

    # Robin approves: the change is made once, exactly as planned; the card and thread say so.
    await click(bot, card, "Approve and apply", ROBIN)
    await until("resolved", lambda: header(latest(web, card, ts)) == "NDR-1001 · Resolved")
    assert directory.planned == [(ANA_LOPEZ, "allow_all", None)]
    assert [plan.command for plan in directory.applied] == [COMMAND]
    now = latest(web, card, ts)
    assert buttons(now) == ["Reopen"]
    assert say("ticket_card_fix_applied", admin="Robin Admin", command=COMMAND) in texts(now)
    applied = say("ticket_note_fix_applied", admin="Robin Admin", command=COMMAND)
    await until("the note", lambda: applied in [c.text for c in posts(web, ADMINS, thread=ts)])
    assert [c.text for c in posts(web, ADMINS, thread=ts)] == [
        say("ticket_note_fix_approved", admin="Robin Admin", change=change),
        applied,
    ]
    assert not ephemerals(web, ROBIN), "a change made needs no word to the admin"

    # Ana hears it is done, with "did that fix it?".
    resolution = say(
        "ticket_fix_resolution",
        recipient=ANA_LOPEZ,
        before=say("ticket_fix_setting_inside"),
        after=say("ticket_fix_setting_open"),
    )
    done = say("ticket_resolved", ticket="NDR-1001", admin="Robin Admin", text=resolution)
    told = await until(
        "Ana told", lambda: [c for c in posts(web, ANA[1]) if done in c.text] or None
    )
    assert buttons(told[-1]) == ["It's fixed", "Still failing"]

    # The card as first posted, clicked again: nothing is applied a second time.
    await click(bot, card, "Approve and apply", ROBIN)
    again = say("ticket_refused_resolved", ticket="NDR-1001", admin="Robin Admin")
    await until("Robin refused", lambda: again in ephemerals(web, ROBIN))
    assert len(directory.applied) == 1
