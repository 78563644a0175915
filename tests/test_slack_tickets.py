"""Tickets worked from Slack, over real HTTP: requesters talk to the bot in their DMs, the cards go
to the admins' channel of a fake Slack Web API, admins click the cards' buttons and fill in their
modals (signed requests into /slack/events), and every notification is seen arriving at the fake.
The tickets' job worker runs with a short ``TicketTiming``; waits are bounded polls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.app import RUNTIME
from bot.channels.slack import SLACK, SlackTicketNotifier
from bot.channels.slack.ticket_blocks import ticket_card, ticket_modal
from bot.store import Requester, TicketRecord
from bot.tickets import CardRef, PermanentFailure, TicketCard, TicketTiming
from dialogs.replies import Text
from knowledge.kb import default_knowledge
from tests.fakes_slack import BOT_USER_ID, Call, FakeSlackWebAPI
from tests.fakes_slack.harness import SlackBot, buttons, corpus, until
from tests.registration_code import logged_code

BOUNCE = "en-new-5712-mailbox.txt"
ADMINS = "C0ADMINS01"
ROBIN, SAM, NOBODY = "U0ADMIN01", "U0ADMIN02", "U0NOBODY1"
ANA, BEN = ("U0ASKER01", "D0ASKER01", "Ana Asker"), ("U0ASKER02", "D0ASKER02", "Ben Asker")
FAST = TicketTiming(
    poll_seconds=0.05, retry_base_seconds=0.05, retry_cap_seconds=0.5, reminder_check_seconds=60
)
KNOWLEDGE = default_knowledge()
WORDS = KNOWLEDGE.conversation


def say(key: str, **values: str) -> str:
    """A text of conversation.yaml as Slack shows it (escaped)."""
    return WORDS.text(key, **values).replace("&", "&amp;").replace("<", "&lt;")


@pytest.fixture
async def api() -> AsyncIterator[FakeSlackWebAPI]:
    fake = FakeSlackWebAPI()
    # Three members on two pages of conversations.members: Robin, Sam and the bot.
    fake.members[ADMINS] = [ROBIN, SAM, BOT_USER_ID]
    fake.users.update({ROBIN: "Robin Admin", SAM: "Sam Admin", NOBODY: "Nora Nobody"})
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def bot(api: FakeSlackWebAPI, database_url: str) -> AsyncIterator[SlackBot]:
    running = SlackBot(api, database_url, env={"SLACK_ADMIN_CHANNEL": ADMINS}, timing=FAST)
    await running.start()
    yield running
    await running.close()


# ---- helpers ----------------------------------------------------------------------------------


async def settle(bot: SlackBot, seconds: float = 0.5) -> None:
    """Give the worker and background turns time to do anything they would still do."""
    await asyncio.sleep(seconds)


def posts(api: FakeSlackWebAPI, channel: str, *, thread: str | None = None) -> list[Call]:
    """The messages posted in a channel (answered ok): top-level ones, or those in a thread."""
    return [
        call
        for call in api.of("chat.postMessage")
        if call.ok
        and call.params.get("channel") == channel
        and call.params.get("thread_ts") == thread
    ]


def cards(api: FakeSlackWebAPI) -> list[Call]:
    return posts(api, ADMINS)


def card_ts(card: Call) -> str:
    """The ts Slack gave a posted card."""
    return str(card.answer["ts"])


def updates(api: FakeSlackWebAPI, ts: str) -> list[Call]:
    return [call for call in api.of("chat.update") if call.params.get("ts") == ts]


def latest(api: FakeSlackWebAPI, card: Call, ts: str) -> Call:
    """The card as it shows now: its last chat.update, else as posted."""
    found = updates(api, ts)
    return found[-1] if found else card


def header(call: Call) -> str:
    return str(next(b for b in call.blocks if b["type"] == "header")["text"]["text"])


def fields(call: Call) -> dict[str, str]:
    section = next(b for b in call.blocks if b["type"] == "section" and "fields" in b)
    out = {}
    for field in section["fields"]:
        label, _, value = field["text"].partition("\n")
        out[label.strip("*")] = value
    return out


def texts(api: FakeSlackWebAPI, channel: str) -> list[str]:
    """Everything posted in a DM, as text."""
    return [call.text for call in posts(api, channel)]


def ephemerals(api: FakeSlackWebAPI, user: str) -> list[str]:
    return [c.text for c in api.of("chat.postEphemeral") if c.params.get("user") == user]


async def dm(bot: SlackBot, who: tuple[str, str, str], text: str, *, expect: int = 1) -> list[Call]:
    """``who`` says ``text`` in their DM with the bot; the messages of the bot's answer."""
    user, channel, name = who
    before = len(posts(bot.api, channel))
    envelope = bot.dm(text, user=user, channel=channel)
    envelope["event"]["user_profile"] = {"real_name": name, "display_name": "", "name": user}
    assert (await bot.event(envelope)).status == 200
    return await until(
        f"{expect} answer(s) in {channel}",
        lambda: (
            posts(bot.api, channel)[before:]
            if len(posts(bot.api, channel)) >= before + expect
            else None
        ),
    )


async def escalate(bot: SlackBot, who: tuple[str, str, str]) -> str:
    """Paste the bounce, say who you are, escalate, no note: the bot's last words."""
    await dm(bot, who, corpus(BOUNCE))
    await dm(bot, who, "I sent the message")
    await dm(bot, who, "escalate")
    return (await dm(bot, who, "no note"))[-1].text


async def click(bot: SlackBot, card: Call, label: str, user: str) -> None:
    response = await bot.interaction(bot.click(card, label, user=user))
    assert response.status == 200


async def open_modal(bot: SlackBot, card: Call, label: str, user: str) -> Call:
    before = len(bot.api.of("views.open"))
    await click(bot, card, label, user)
    return (await bot.api.wait_for("views.open", before + 1))[before]


async def submit(bot: SlackBot, opened: Call, value: str | None, user: str) -> dict[str, Any]:
    response = await bot.interaction(bot.submit(opened, value, user=user))
    assert response.status == 200
    body = await response.text()
    return json.loads(body) if body else {}


async def ticket(bot: SlackBot, ticket_id: str) -> TicketRecord:
    found = await bot.app[RUNTIME].store.tickets.get_ticket(ticket_id)
    assert found is not None
    return found


async def open_directly(bot: SlackBot, number: int, who: tuple[str, str, str] = ANA) -> str:
    """A ticket opened through the service (as the escalation flow does), for the tests that
    are about the admins' side."""
    user, channel, name = who
    record, _ = await bot.app[RUNTIME].tickets.open_or_join(
        Requester("slack", user, name, f"slack:{channel}"),
        bounce={"status": "5.7.12", "smtp_code": "550", "recipients": [f"r{number}@contoso.com"]},
        path={"role": "sender"},
        note=None,
        dedupe_key=f"r{number}@contoso.com|5.7.12",
    )
    return record.id


# ---- the whole lifecycle ----------------------------------------------------------------------


async def test_a_ticket_lives_its_whole_life_between_requesters_and_admins_on_slack(
    bot: SlackBot,
) -> None:
    api = bot.api
    # Ana escalates: the ticket opens, and its card arrives in the admins' channel.
    assert "NDR-1001" in await escalate(bot, ANA)
    (card,) = await until("the card", lambda: cards(api))
    ts = card_ts(card)
    assert header(card) == "NDR-1001 · Open"
    facts = fields(card)
    assert facts["Requested by"] == "Ana Asker"
    assert facts["Assignee"] == "Nobody yet"
    assert facts["Recipient"] == "ana.lopez@contoso.com"
    assert "5.7.12" in facts["Status code"]
    assert facts["Path so far"].startswith("They sent the message")
    assert buttons(card) == [
        "Assign to me",
        "Assign to someone",
        "Reply to the requester",
        "Resolve",
    ]
    assert "NDR-1001" in card.text

    # Ben has the same bounce: he joins; the card names both, and its thread says so.
    assert "already an open ticket" in await escalate(bot, BEN)
    joined = await until("the joined card", lambda: updates(api, ts))
    assert fields(joined[-1])["Requested by"] == "Ana Asker, Ben Asker"
    (note,) = await until("the join note", lambda: posts(api, ADMINS, thread=ts))
    assert note.text == say("ticket_note_joined", requester="Ben Asker")

    # Robin takes it: the card shows it, the thread says who did what, both requesters hear.
    await click(bot, latest(api, card, ts), "Assign to me", ROBIN)
    await until("the note", lambda: len(posts(api, ADMINS, thread=ts)) == 2)
    assert posts(api, ADMINS, thread=ts)[-1].text == say("ticket_note_took", admin="Robin Admin")
    assert header(latest(api, card, ts)) == "NDR-1001 · Assigned"
    assert fields(latest(api, card, ts))["Assignee"] == "Robin Admin"
    assigned = say("ticket_assigned", admin="Robin Admin", ticket="NDR-1001")
    await until("Ana told", lambda: assigned in texts(api, ANA[1]))
    await until("Ben told", lambda: assigned in texts(api, BEN[1]))

    # Sam replies through the modal; a blank reply is refused in the modal itself.
    opened = await open_modal(bot, latest(api, card, ts), "Reply to the requester", SAM)
    assert opened.view["callback_id"] == "ticket_modal"
    assert opened.view["blocks"][0]["element"]["multiline"] is True
    blank = await submit(bot, opened, "   ", SAM)
    assert blank["response_action"] == "errors"
    assert blank["errors"] == {"ticket_input": WORDS.text("slack_modal_required")}
    assert await submit(bot, opened, "Ask the sender to try again in an hour.", SAM) == {}
    relayed = say(
        "ticket_reply",
        admin="Sam Admin",
        ticket="NDR-1001",
        text="Ask the sender to try again in an hour.",
    )
    await until("Ana hears the reply", lambda: relayed in texts(api, ANA[1]))
    await until("Ben hears the reply", lambda: relayed in texts(api, BEN[1]))
    await until("the reply note", lambda: len(posts(api, ADMINS, thread=ts)) == 3)

    # Robin resolves with a note: the card keeps only Reopen; the requesters are asked.
    opened = await open_modal(bot, latest(api, card, ts), "Resolve", ROBIN)
    assert await submit(bot, opened, "Allowed outside senders on the mailbox.", ROBIN) == {}
    await until("the resolved card", lambda: header(latest(api, card, ts)) == "NDR-1001 · Resolved")
    assert buttons(latest(api, card, ts)) == ["Reopen"]
    resolved = say(
        "ticket_resolved",
        admin="Robin Admin",
        ticket="NDR-1001",
        text="Allowed outside senders on the mailbox.",
    )
    asked = await until(
        "Ana asked whether it's fixed",
        lambda: [c for c in posts(api, ANA[1]) if resolved in c.text],
    )
    assert buttons(asked[-1]) == ["It's fixed", "Still failing"]
    await until("Ben asked", lambda: any(resolved in text for text in texts(api, BEN[1])))

    # Ana: "no, still failing". The ticket reopens; the card and Ben hear it.
    (answer,) = await dm(bot, ANA, "still failing")
    assert answer.text == say("ticket_reopened", ticket="NDR-1001")
    await until("the reopened card", lambda: header(latest(api, card, ts)) == "NDR-1001 · Open")
    assert fields(latest(api, card, ts))["Assignee"] == "Nobody yet"
    reopened = say("ticket_note_requester_reopened", requester="Ana Asker")
    await until("the reopen note", lambda: posts(api, ADMINS, thread=ts)[-1].text == reopened)
    await until(
        "Ben told of the reopening",
        lambda: texts(api, BEN[1]).count(say("ticket_reopened", ticket="NDR-1001")) == 1,
    )

    # Resolved again, by Sam, from the same card.
    opened = await open_modal(bot, latest(api, card, ts), "Resolve", SAM)
    await submit(bot, opened, "Method 2: Ana's partner is on the list now.", SAM)
    await until("resolved again", lambda: header(latest(api, card, ts)) == "NDR-1001 · Resolved")
    again = say(
        "ticket_resolved",
        admin="Sam Admin",
        ticket="NDR-1001",
        text="Method 2: Ana's partner is on the list now.",
    )
    await until("Ana told again", lambda: any(again in text for text in texts(api, ANA[1])))
    await until("Ben told again", lambda: any(again in text for text in texts(api, BEN[1])))
    assert (await ticket(bot, "NDR-1001")).status == "resolved"

    # One card, updated in place; a thread line per change; no refusal anywhere.
    assert len(cards(api)) == 1
    assert [c.text for c in posts(api, ADMINS, thread=ts)][-1] == say(
        "ticket_note_resolved",
        admin="Sam Admin",
        text="Method 2: Ana's partner is on the list now.",
    )
    assert not api.of("chat.postEphemeral")
    # The admins' membership was read page by page, once for the minute it is remembered.
    members = api.of("conversations.members")
    assert [call.params.get("cursor") for call in members] == [None, "2"]


async def test_assign_to_someone_picks_a_user_in_a_modal(bot: SlackBot) -> None:
    await open_directly(bot, 1)
    (card,) = await until("the card", lambda: cards(bot.api))
    ts = card_ts(card)
    opened = await open_modal(bot, card, "Assign to someone", ROBIN)
    assert opened.view["blocks"][0]["element"]["type"] == "users_select"
    assert json.loads(opened.view["private_metadata"])["version"] == 1
    assert (await submit(bot, opened, None, ROBIN))["response_action"] == "errors"
    assert await submit(bot, opened, SAM, ROBIN) == {}
    await until("assigned", lambda: fields(latest(bot.api, card, ts))["Assignee"] == "Sam Admin")
    note = say("ticket_note_assigned", admin="Robin Admin", assignee="Sam Admin")
    await until("the note", lambda: [c.text for c in posts(bot.api, ADMINS, thread=ts)] == [note])
    told = say("ticket_assigned", admin="Sam Admin", ticket="NDR-1001")
    await until("Ana told", lambda: told in texts(bot.api, ANA[1]))


# ---- who may act ------------------------------------------------------------------------------


async def test_a_non_admins_click_changes_nothing(bot: SlackBot) -> None:
    await open_directly(bot, 1)
    (card,) = await until("the card", lambda: cards(bot.api))
    before = await ticket(bot, "NDR-1001")
    calls = len(bot.api.calls)

    refused = say("ticket_refused_not_admin")
    await click(bot, card, "Assign to me", NOBODY)
    await until("the refusal", lambda: ephemerals(bot.api, NOBODY) == [refused])
    (ephemeral,) = bot.api.of("chat.postEphemeral")
    assert ephemeral.params["channel"] == ADMINS
    await click(bot, card, "Resolve", NOBODY)  # no modal for a non-admin either
    await until("the second refusal", lambda: len(ephemerals(bot.api, NOBODY)) == 2)
    await settle(bot)

    assert await ticket(bot, "NDR-1001") == before
    assert not bot.api.of("chat.update")
    assert not bot.api.of("views.open")
    assert not posts(bot.api, ADMINS, thread=card_ts(card))
    assert not posts(bot.api, ANA[1])
    seen = {call.method for call in bot.api.calls[calls:]}
    assert seen <= {"chat.postEphemeral", "conversations.members", "users.info"}


async def test_admin_users_may_act_without_being_in_the_channel(
    api: FakeSlackWebAPI, database_url: str
) -> None:
    env = {"SLACK_ADMIN_CHANNEL": ADMINS, "ADMIN_USERS": f"slack:{NOBODY}"}
    bot = SlackBot(api, database_url, env=env, timing=FAST)
    await bot.start()
    try:
        await open_directly(bot, 1)
        (card,) = await until("the card", lambda: cards(api))
        await click(bot, card, "Assign to me", NOBODY)
        ts = card_ts(card)
        await until("assigned", lambda: fields(latest(api, card, ts))["Assignee"] == "Nora Nobody")
        assert not api.of("chat.postEphemeral")
    finally:
        await bot.close()


# ---- out-of-date cards ------------------------------------------------------------------------


async def test_a_click_on_an_out_of_date_card_is_refused_or_applied_to_the_current_ticket(
    bot: SlackBot,
) -> None:
    api = bot.api
    await open_directly(bot, 1)
    (old_card,) = await until("the card", lambda: cards(api))
    ts = card_ts(old_card)

    # Robin takes it; Sam, on the card as it was, clicks Assign to me too: refused, with who
    # has it, and the card is drawn again.
    await click(bot, old_card, "Assign to me", ROBIN)
    await until("assigned", lambda: fields(latest(api, old_card, ts))["Assignee"] == "Robin Admin")
    shown = len(updates(api, ts))
    await click(bot, old_card, "Assign to me", SAM)
    refused = say("ticket_refused_assigned", ticket="NDR-1001", assignee="Robin Admin")
    await until("Sam's refusal", lambda: ephemerals(api, SAM) == [refused])
    await until("the card refreshed", lambda: len(updates(api, ts)) > shown)
    assert (await ticket(bot, "NDR-1001")).assignee == {
        "platform": "slack",
        "user_id": ROBIN,
        "name": "Robin Admin",
    }

    # A reply from the old card still makes sense: applied to the ticket as it is, once.
    opened = await open_modal(bot, old_card, "Reply to the requester", SAM)
    assert json.loads(opened.view["private_metadata"])["version"] == 1
    await submit(bot, opened, "On it.", SAM)
    applied = say("ticket_done_replied", ticket="NDR-1001") + " " + say("ticket_done_on_current")
    await until("Sam told it was applied", lambda: ephemerals(api, SAM)[-1:] == [applied])
    relayed = say("ticket_reply", admin="Sam Admin", ticket="NDR-1001", text="On it.")
    await until("Ana hears", lambda: relayed in texts(api, ANA[1]))
    # The same submission again (Slack retried it): not relayed twice.
    await submit(bot, opened, "On it.", SAM)
    await settle(bot)
    assert texts(api, ANA[1]).count(relayed) == 1

    # Resolved meanwhile: resolving from the old card is refused with who resolved it.
    fresh = latest(api, old_card, ts)
    opened = await open_modal(bot, fresh, "Resolve", ROBIN)
    await submit(bot, opened, "Fixed.", ROBIN)
    await until("resolved", lambda: header(latest(api, old_card, ts)) == "NDR-1001 · Resolved")
    opened = await open_modal(bot, old_card, "Resolve", SAM)
    await submit(bot, opened, "Fixed too.", SAM)
    refused = say("ticket_refused_resolved", ticket="NDR-1001", admin="Robin Admin")
    await until("refused as resolved", lambda: ephemerals(api, SAM)[-1:] == [refused])
    record = await ticket(bot, "NDR-1001")
    assert record.status == "resolved"
    events = await bot.app[RUNTIME].store.tickets.ticket_events("NDR-1001")
    assert [e.kind for e in events].count("resolved") == 1


# ---- the admins' channel ----------------------------------------------------------------------


async def test_register_admins_makes_a_channel_the_admins_channel(
    api: FakeSlackWebAPI, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    api.members["C0HELP0001"] = [ROBIN]
    bot = SlackBot(api, database_url, timing=FAST)  # no SLACK_ADMIN_CHANNEL, no ADMIN_USERS
    await bot.start()
    try:
        code = logged_code(caplog)
        envelope = bot.mention(f"<@{BOT_USER_ID}> register admins {code}", user=ROBIN)
        assert (await bot.event(envelope)).status == 200
        (answer,) = await api.wait_for("chat.postMessage")
        assert answer.params["channel"] == "C0HELP0001"
        assert answer.params["thread_ts"] == envelope["event"]["ts"]
        assert answer.text == say("admins_registered")
        admins = await bot.app[RUNTIME].tickets.admin_channels()
        assert admins["slack"] == {"channel": "C0HELP0001"}

        # Someone who is not in it cannot move it.
        elsewhere = bot.mention(f"<@{BOT_USER_ID}> Register admins.", user=NOBODY)
        elsewhere["event"]["channel"] = "C0OTHER001"
        await bot.event(elsewhere)
        (_, refused) = await api.wait_for("chat.postMessage", 2)
        assert refused.params["channel"] == "C0OTHER001"
        assert refused.text == say("admins_refused")

        # New tickets' cards go there.
        await open_directly(bot, 1)
        await until("the card", lambda: posts(api, "C0HELP0001"))
    finally:
        await bot.close()


async def test_register_helpdesk_admins_is_understood_as_on_teams(
    api: FakeSlackWebAPI, database_url: str
) -> None:
    api.members["C0HELP0001"] = [ROBIN]
    # No SLACK_ADMIN_CHANNEL; Robin is in ADMIN_USERS, so he needs no code.
    bot = SlackBot(api, database_url, env={"ADMIN_USERS": f"slack:{ROBIN}"}, timing=FAST)
    await bot.start()
    try:
        envelope = bot.mention(f"<@{BOT_USER_ID}> register helpdesk admins", user=ROBIN)
        assert (await bot.event(envelope)).status == 200
        (answer,) = await api.wait_for("chat.postMessage")
        assert answer.params["channel"] == "C0HELP0001"
        assert answer.params["thread_ts"] == envelope["event"]["ts"]
        assert answer.text == say("admins_registered")
        admins = await bot.app[RUNTIME].tickets.admin_channels()
        assert admins["slack"] == {"channel": "C0HELP0001"}
    finally:
        await bot.close()


# ---- delivery under throttling ----------------------------------------------------------------


async def test_a_burst_of_fifty_tickets_reaches_the_admins_channel_complete_and_in_order(
    bot: SlackBot,
) -> None:
    api = bot.api
    api.throttle("chat.postMessage", every=9, retry_after=1, times=3)
    for number in range(1, 51):
        await open_directly(bot, number)
    await until("fifty cards", lambda: len(cards(api)) >= 50, 60)
    await settle(bot)
    delivered = [header(call) for call in cards(api)]
    assert delivered == [f"NDR-{1000 + n} · Open" for n in range(1, 51)]
    throttled = [call for call in api.of("chat.postMessage") if not call.ok]
    assert len(throttled) == 3
    assert all(call.answer["error"] == "ratelimited" for call in throttled)
    metrics = await (await bot.client.get("/metrics")).text()
    assert 'ndrbot_outbound_retries_total{channel="slack"} 3.0' in metrics


async def test_notifier_errors_are_permanent_or_retried(bot: SlackBot) -> None:
    record = await ticket(bot, await open_directly(bot, 1))
    await until("the card", lambda: cards(bot.api))  # the worker is done: the fake is ours
    notifier = SlackTicketNotifier(bot.app[SLACK])
    card = CardRef("slack", {"channel": ADMINS, "ts": "1.1"})
    bot.api.fail("chat.postMessage", "channel_not_found")
    with pytest.raises(PermanentFailure):
        await notifier.post_note(card, "hello")
    bot.api.fail("chat.update", "message_not_found")
    with pytest.raises(PermanentFailure):
        await notifier.update_card(card, TicketCard.of(record, [record.requester], KNOWLEDGE))
    bot.api.fail("chat.postMessage", "internal_error", status=500, times=3)  # past 2 retries
    with pytest.raises(Exception, match="internal_error") as busy:
        await notifier.post_note(card, "hello")
    assert not isinstance(busy.value, PermanentFailure)  # the job is retried later
    bot.api.fail("chat.postMessage", "not_in_channel")
    requester = Requester("slack", "U1", "U", "slack:C0HELP0001:1700002000.000001")
    with pytest.raises(PermanentFailure):
        await notifier.tell_requester(requester, [Text("NDR-1001 is resolved.")])
    assert await notifier.is_admin_channel_member({"channel": ADMINS}, SAM)
    assert not await notifier.is_admin_channel_member({"channel": ADMINS}, NOBODY)
    await notifier.remind(
        card, TicketCard.of(record, (), KNOWLEDGE), "Reminder: NDR-1001 waits <for> someone."
    )
    reminder = bot.api.of("chat.postMessage")[-1]
    assert reminder.params["thread_ts"] == "1.1"
    assert reminder.params["reply_broadcast"] is True  # seen in the channel, not only the thread
    assert reminder.text == "Reminder: NDR-1001 waits &lt;for&gt; someone."


# ---- the card, as rendered --------------------------------------------------------------------


def _record(**changes: Any) -> TicketRecord:
    at = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
    record = TicketRecord(
        id="NDR-1042",
        number=42,
        status="open",
        requester=Requester("msteams", "29:abc", "Ana <Teams>", "msteams:a:1"),
        bounce={
            "status": "5.7.12",
            "smtp_code": "550",
            "recipients": ["sales@contoso.com"],
            "sender": "alex@fabrikam.com",
            "subject": "Quote <Q1> & terms",
            "date": "Tue, 4 Mar 2025 09:00:00 +0000",
        },
        path={"role": "admin", "recipient_type": "user_mailbox", "method": "allow_all"},
        note="Urgent: <b>customer</b> waits\nsecond line",
        dedupe_key="sales@contoso.com|5.7.12",
        assignee=None,
        created_at=at,
        updated_at=at,
        version=3,
        ref="k3Jd9_x-Qm2LpA7z",
    )
    return replace(record, **changes)


def test_the_card_shows_the_ticket_escaped_with_the_buttons_its_status_allows() -> None:
    knowledge = default_knowledge()
    slack_requester = Requester("slack", "U1", "Ben", "slack:D1")
    requesters = [_record().requester, slack_requester]
    card = ticket_card(TicketCard.of(_record(), requesters, knowledge), knowledge.conversation)
    blocks = card.blocks
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "NDR-1042 · Open"},
    }
    text = json.dumps(blocks)
    assert "Ana &lt;Teams&gt;, Ben" in text  # names, never mentions
    assert "<@" not in text
    assert "Quote &lt;Q1&gt; &amp; terms" in text
    assert "550 5.7.12" in text
    note = next(b for b in blocks if b["type"] == "section" and "text" in b)["text"]["text"]
    assert note.endswith(">Urgent: &lt;b&gt;customer&lt;/b&gt; waits\n>second line")
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    assert actions["block_id"] == f"ticket:{_record().ref}:3"
    assert [b["action_id"] for b in actions["elements"]] == [
        "ticket:assign_me",
        "ticket:assign",
        "ticket:reply",
        "ticket:resolve",
    ]
    assert {b["value"] for b in actions["elements"]} == {
        json.dumps({"ref": _record().ref, "version": 3}, separators=(",", ":"))
    }, "the buttons name the ticket by its public reference, never its number"
    assert "NDR-1042" in card.text
    assert "sales@contoso.com" in card.text
    path = fields(Call("chat.postMessage", {"blocks": list(blocks)}, {}))["Path so far"]
    assert path.startswith("They're an email admin")

    resolved = ticket_card(
        TicketCard.of(_record(status="resolved", assignee={"name": "Robin"}), [], knowledge),
        knowledge.conversation,
    ).blocks
    assert resolved[0]["text"]["text"] == "NDR-1042 · Resolved"
    (actions,) = [b for b in resolved if b["type"] == "actions"]
    assert [b["action_id"] for b in actions["elements"]] == ["ticket:reopen"]
    assert "Robin" in json.dumps(resolved)


def test_a_long_note_and_modal_titles_keep_within_slacks_limits() -> None:
    knowledge = default_knowledge()
    long = TicketCard.of(_record(note="x" * 9000, id="NDR-1000042"), [], knowledge)
    card = ticket_card(long, knowledge.conversation)
    for block in card.blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
    for action in ("assign", "reply", "resolve"):
        view = ticket_modal(action, "NDR-1000042", 7, ADMINS, knowledge.conversation, ref=long.ref)
        assert len(view["title"]["text"]) <= 24
        assert len(view["submit"]["text"]) <= 24
        assert json.loads(view["private_metadata"]) == {
            "action": action,
            "ref": long.ref,
            "version": 7,
            "channel": ADMINS,
        }
