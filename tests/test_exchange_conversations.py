"""Whole conversations with Exchange Online connected, over real HTTP on both platforms: an admin
pastes a bounce for one of our recipients, is told its kind without being asked, gets the steps
and the offer to apply the change, confirms it, and hears what the recipient was and now is. The
bot's Exchange calls go over real HTTPS to the fake admin API (tests/fakes_exchange/), which
records each cmdlet; the replies go to the fake Bot Connector or the fake Slack Web API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.tickets import TicketTiming
from knowledge.kb import default_knowledge
from tests.fakes.teams_harness import payload, teams_bot, words
from tests.fakes_exchange import FakeExchange
from tests.fakes_exchange.server import recipient
from tests.fakes_slack import FakeSlackWebAPI
from tests.fakes_slack.harness import SlackBot, buttons, corpus, settle
from tests.test_webhook import SECRET, Tracker, free_port

BOUNCE = corpus("en-new-5712-mailbox.txt")  # to ana.lopez@contoso.com from alex.kim@fabrikam.com
MAILBOX = "ana.lopez@contoso.com"
TEAMS_ADMIN = "msteams:" + payload("personal_message")["from"]["aadObjectId"]
SLACK_ADMIN = "slack:U0ADMIN01"
FAST = TicketTiming(poll_seconds=0.05, retry_base_seconds=0.05, retry_cap_seconds=0.5)


def say(key: str, **values: str) -> str:
    return default_knowledge().conversation.text(key, **values)


@pytest.fixture
async def exchange(tmp_path: Path) -> AsyncIterator[FakeExchange]:
    fake = FakeExchange(tmp_path)
    fake.recipients[MAILBOX] = recipient(MAILBOX, "SharedMailbox")
    await fake.start()
    yield fake
    await fake.close()


async def until(condition: Callable[[], object], seconds: float = 15.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.05)


def set_calls(exchange: FakeExchange) -> list[tuple[str, dict[str, object]]]:
    return [(c.cmdlet, c.parameters) for c in exchange.calls if c.cmdlet.startswith("Set-")]


async def test_a_teams_admin_is_told_the_kind_and_has_the_change_applied(
    tmp_path: Path, exchange: FakeExchange
) -> None:
    tracker = Tracker(free_port())
    await tracker.start()
    env = {
        **exchange.env(),
        "ADMIN_USERS": TEAMS_ADMIN,
        "TICKET_WEBHOOK_URL": f"http://127.0.0.1:{tracker.port}/hook",
        "TICKET_WEBHOOK_SECRET": SECRET,
    }
    async with teams_bot(tmp_path, env=env, ticket_timing=FAST) as bot:
        await bot.say(BOUNCE)
        found = words(await bot.click("I'm an email admin"))
        assert f"I looked {MAILBOX} up in Exchange Online" in found
        assert "Shared mailbox" in found
        assert "What kind of recipient" not in found, "the kind is known: not asked"
        looked = [c for c in exchange.cmdlets() if c != "Get-AcceptedDomain"]
        assert looked == ["Get-Recipient", "Get-Mailbox"]

        await bot.click("Allow everyone")
        steps = await bot.click("Exchange Online PowerShell")
        assert "Set-Mailbox" in words(steps)
        assert bot.last_card is not None
        offered = [action["title"] for action in bot.last_card["actions"]]
        assert "Apply it for me" in offered
        assert set_calls(exchange) == [], "nothing is changed before the admin confirms"

        plan = words(await bot.click("Apply it for me"))
        command = f"Set-Mailbox -Identity {MAILBOX} -RequireSenderAuthenticationEnabled $false"
        assert command in plan
        assert set_calls(exchange) == []

        report = words(await bot.click("Yes, run it"))
        assert set_calls(exchange) == [
            (
                "Set-Mailbox",
                {"Identity": MAILBOX, "RequireSenderAuthenticationEnabled": False},
            )
        ]
        assert exchange.recipients[MAILBOX]["RequireSenderAuthenticationEnabled"] is False
        assert say("apply_done", recipient=MAILBOX) in report
        assert "Require senders to be authenticated: on → off" in report  # read back
        assert "Apply it for me" not in [a["title"] for a in bot.last_card["actions"]]

        # No ticket holds this change: the tracker hears of it as an event of its own.
        await until(lambda: tracker.accepted)
        (event,) = tracker.accepted
        assert (event["event"], event["ticket_id"]) == ("recipient_changed", None)
        record = event["detail"]
        assert record["approved_by"]["key"] == TEAMS_ADMIN
        assert record["asked_by"] == [record["approved_by"]]
        assert (record["cmdlet"], record["command"]) == ("Set-Mailbox", command)
        assert record["before"]["require_sender_authentication"] is True
        assert record["after"]["require_sender_authentication"] is False
        assert record["at"]
        assert tracker.problems == []
    await tracker.stop()


async def test_a_teams_user_who_is_not_an_admin_is_never_looked_up(
    tmp_path: Path, exchange: FakeExchange
) -> None:
    env = {**exchange.env(), "ADMIN_USERS": "msteams:someone-else"}
    async with teams_bot(tmp_path, env=env) as bot:
        await bot.say(BOUNCE)
        asked = words(await bot.click("I'm an email admin"))
        assert "Exchange Online" not in asked
        assert "What kind of recipient" in asked or "kind of recipient" in asked
        assert [c for c in exchange.cmdlets() if c != "Get-AcceptedDomain"] == []


@pytest.fixture
async def slack(
    api: FakeSlackWebAPI, database_url: str, exchange: FakeExchange
) -> AsyncIterator[SlackBot]:
    env = {**exchange.env(), "ADMIN_USERS": SLACK_ADMIN}
    running = SlackBot(api, database_url, env=env)
    await running.start()
    yield running
    await running.close()


async def slack_say(bot: SlackBot, text: str) -> list[str]:
    """DM the bot in the admin's words; the text of everything it posted back for that turn."""
    before = len(bot.api.of("chat.postMessage"))
    response = await bot.event(bot.dm(text))
    assert response.status == 200
    await bot.api.wait_for("chat.postMessage", before + 1)
    await settle(bot)  # the turn's later messages too, before the next turn is typed
    posted = bot.api.of("chat.postMessage")[before:]
    return [call.text + json.dumps(call.blocks) for call in posted]


async def test_a_slack_admin_types_their_way_to_the_change_applied(
    slack: SlackBot, exchange: FakeExchange
) -> None:
    await slack_say(slack, BOUNCE)
    (found,) = await slack_say(slack, "im the admin")
    assert f"I looked {MAILBOX} up in Exchange Online" in found
    assert "Shared mailbox" in found
    await slack_say(slack, "let everyone in")
    await slack_say(slack, "powershell pls")
    offer = slack.api.of("chat.postMessage")[-1]
    assert "Apply it for me" in buttons(offer)

    await slack_say(slack, "can you just apply it for me")
    assert set_calls(exchange) == []
    cancelled = " ".join(await slack_say(slack, "no wait"))
    assert "I haven't changed" in cancelled
    assert set_calls(exchange) == [], "a no changes nothing"

    offer = slack.api.of("chat.postMessage")[-1]
    assert "Apply it for me" in buttons(offer), "the offer stays open after a no"
    await slack_say(slack, "apply it")
    done = " ".join(await slack_say(slack, "yes go ahead"))
    assert "read ana.lopez@contoso.com back" in done
    assert set_calls(exchange) == [
        ("Set-Mailbox", {"Identity": MAILBOX, "RequireSenderAuthenticationEnabled": False})
    ]
    assert exchange.recipients[MAILBOX]["RequireSenderAuthenticationEnabled"] is False
