"""Tickets on Teams over real HTTP: a requester in their chat with the bot, admins in the admins'
channel working the ticket card (Universal Actions), every notification seen arriving at the fake
Bot Connector. The bot runs as ``create_app`` builds it (local mode), the job worker paced fast."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.channels.teams import (
    MAX_ACTIVITY_BYTES,
    TICKET_REFRESH_VERB,
    TicketCardView,
    TicketLabels,
    activity_size,
    ticket_activity,
    ticket_card,
)
from bot.store import Requester, TicketRecord
from bot.tickets import TicketCard, TicketTiming
from knowledge.kb import default_knowledge
from tests.fakes.bot_connector import Posted
from tests.fakes.teams_harness import RUNTIME, TeamsBot, button_value, payload, teams_bot, words
from tests.transcripts import ASK_NOTE, ASK_ROLE

CORPUS = Path(__file__).resolve().parent / "corpus"
BOUNCE = (CORPUS / "en-new-5712-mailbox.txt").read_text("utf-8")
TIMING = TicketTiming(
    poll_seconds=0.05, retry_base_seconds=0.05, retry_cap_seconds=0.5, reminder_check_seconds=3600
)

_MENTION = payload("channel_mention")
CHANNEL = _MENTION["conversation"]["id"].split(";")[0]  # the admins' channel
TEAM = _MENTION["channelData"]["team"]["id"]
ALEX = payload("personal_message")["from"]  # the requester
ALEX_CHAT = payload("personal_message")["conversation"]
DIEGO = {
    "id": "29:diego",
    "name": "Diego Siciliani",
    "aadObjectId": "00000000-0000-4000-8000-0000000d1e90",
}
DIEGO_CHAT = {**ALEX_CHAT, "id": "a:diego-personal-chat"}
ANA = {"id": "29:ana", "name": "Ana Ortiz", "aadObjectId": "00000000-0000-4000-8000-000000000a0a"}
MEGAN = _MENTION["from"]  # a member of the admins' channel (its team)
EVE = {"id": "29:eve", "name": "Eve Stone", "aadObjectId": "00000000-0000-4000-8000-000000000e0e"}
ENV = {"ORG_DOMAINS": "contoso.com", "ADMIN_USERS": f"msteams:{ANA['aadObjectId']}"}


def say(key: str, **values: str) -> str:
    """What the knowledge base has the bot say for ``key``."""
    return default_knowledge().conversation.text(key, **values)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[TeamsBot]:
    async with teams_bot(tmp_path, env=ENV, ticket_timing=TIMING) as running:
        running.connector.add_member(TEAM, MEGAN["id"], MEGAN["name"], MEGAN["aadObjectId"])
        yield running


# ---- helpers ----------------------------------------------------------------------------------


def as_user(user: dict[str, Any], conversation: dict[str, Any]) -> dict[str, Any]:
    return {"from": copy.deepcopy(user), "conversation": copy.deepcopy(conversation)}


async def register_admins(
    bot: TeamsBot, user: dict[str, Any], conversation_id: str = CHANNEL
) -> str:
    conversation = {**_MENTION["conversation"], "id": f"{conversation_id};messageid=17"}
    activity = bot.activity(
        "channel_mention", text="<at>NDR Helper</at> register admins", **as_user(user, conversation)
    )
    return words(await bot.send(activity))


async def escalate(bot: TeamsBot, user: dict[str, Any], chat: dict[str, Any]) -> str:
    """The requester pastes the bounce, says they sent it, opens a ticket with no note."""
    who = as_user(user, chat)
    assert ASK_ROLE in words(await bot.send(bot.activity(text=BOUNCE, **who)))
    said = ""
    for title in ("I sent the message", "Open a ticket", "No note"):
        assert bot.last_card is not None
        value = button_value(bot.last_card, title)
        said = words(await bot.send(bot.activity("card_submit", value=value, **who)))
        if title == "Open a ticket":
            assert ASK_NOTE in said
    return said


async def execute(
    bot: TeamsBot, user: dict[str, Any], verb: str, data: dict[str, Any], card_id: str = "act-1"
) -> dict[str, Any]:
    """An admin presses an Action.Execute button on the ticket card (or Teams refreshes it)."""
    conversation = {**_MENTION["conversation"], "id": f"{CHANNEL};messageid={card_id}"}
    activity = bot.activity(
        "invoke_card_action",
        value={
            "action": {"type": "Action.Execute", "verb": verb, "data": data},
            "trigger": "manual",
        },
        channelData=_MENTION["channelData"],
        **as_user(user, conversation),
    )
    response = await bot.post(activity)
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    assert answer["statusCode"] == 200
    return answer


async def drained(bot: TeamsBot, timeout: float = 10.0) -> list[Posted]:
    """Wait until the tickets' job queue is empty; return what the bot sent on its own (not
    the replies to a turn) since the last call."""
    store = bot.app[RUNTIME].store
    async with asyncio.timeout(timeout):
        while await store.jobs.ticket_jobs(pending=True):
            await asyncio.sleep(0.02)
    return [each for each in bot.connector.since_last_look() if each.kind != "reply"]


async def ticket(bot: TeamsBot, ticket_id: str = "NDR-1001") -> TicketRecord:
    found = await bot.app[RUNTIME].store.tickets.get_ticket(ticket_id)
    assert found is not None
    return found


def to(posted: list[Posted], conversation_id: str) -> list[Posted]:
    return [each for each in posted if each.conversation_id == conversation_id]


def thread(card_id: str) -> str:
    return f"{CHANNEL};messageid={card_id}"


def titles(card: dict[str, Any]) -> list[str]:
    return [action["title"] for action in card.get("actions", [])]


def facts(card: dict[str, Any]) -> dict[str, str]:
    for element in card["body"]:
        if element["type"] == "FactSet":
            return {fact["title"]: fact["value"] for fact in element["facts"]}
    raise AssertionError("no facts on the card")


def header(card: dict[str, Any]) -> str:
    return " ".join(item["text"] for item in card["body"][0]["items"])


def shown(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["type"] == "application/vnd.microsoft.card.adaptive", answer
    card: dict[str, Any] = answer["value"]
    return card


def execute_in(card: dict[str, Any], title: str) -> dict[str, Any]:
    """The Action.Execute behind a button (inside its ShowCard form, if it has one)."""
    for action in card.get("actions", []):
        if action["title"] == title:
            button = action["card"]["actions"][0] if action["type"] == "Action.ShowCard" else action
            assert button["type"] == "Action.Execute"
            return dict(button)
    raise AssertionError(f"no button {title!r} on the card")


async def wait_for(bot: TeamsBot, condition: Callable[[list[Posted]], bool]) -> list[Posted]:
    return await bot.connector.wait_until(condition, timeout=10.0)


# ---- the whole lifecycle ----------------------------------------------------------------------


async def test_a_ticket_from_opening_to_a_second_resolution(bot: TeamsBot) -> None:
    assert say("admins_registered") in await register_admins(bot, ANA)
    assert await drained(bot) == []

    # Alex opens the ticket: its card goes to the admins' channel as a new post.
    assert "Ticket NDR-1001 is open" in await escalate(bot, ALEX, ALEX_CHAT)
    posted = await wait_for(bot, lambda p: bool(to(p, CHANNEL)))
    (post,) = to(await drained(bot), CHANNEL)
    assert post.kind == "send"
    assert post.activity_id is None
    card_id = post.new_id
    card = post.cards[0]
    assert card["version"] == "1.5"
    assert "actions" not in card, "the channel sees the card without its buttons"
    assert say("teams_ticket_admins_act") in str(card["body"])
    assert card["refresh"]["action"] == {
        "type": "Action.Execute",
        "title": "Refresh",
        "verb": TICKET_REFRESH_VERB,
        "data": {"ref": (await ticket(bot)).ref, "version": 1},
    }
    # Ana (ADMIN_USERS, by her AAD id, known by her Teams id since she spoke) and the team.
    assert set(card["refresh"]["userIds"]) == {ANA["id"], MEGAN["id"]}
    assert (
        header(card) == "NDR-1001 · 5.7.12 for ana.lopez@contoso.com Open, nobody has taken it yet"
    )
    assert facts(card) == {
        "Requested by": "Alex Wilber",
        "Assignee": "Nobody yet",
        "Recipient": "ana.lopez@contoso.com",
        "Sender": "alex.kim@fabrikam.com",
        "Status code": "550 5.7.12",
        "Subject": "Q2 pricing sheet",
        "Sent": "3/11/2024 9:14:01 AM",  # the bounce's Created Date
        "Path so far": "They sent the message",
    }
    assert post.activity["summary"].startswith("NDR-1001 · 5.7.12")
    version = 1

    # Diego has the same bounce: he joins; the card is updated and the thread says so.
    assert say("escalate_joined", ticket="NDR-1001") in await escalate(bot, DIEGO, DIEGO_CHAT)
    posted = await drained(bot)
    assert [(p.kind, p.activity_id) for p in to(posted, CHANNEL)] == [("update", card_id)]
    assert facts(to(posted, CHANNEL)[0].cards[0])["Requested by"] == "Alex Wilber, Diego Siciliani"
    (note,) = to(posted, thread(card_id))
    assert note.text == say("ticket_note_joined", requester="Diego Siciliani")
    version = (await ticket(bot)).version

    # The card as each one sees it: admins get the buttons, Eve does not.
    data = {"ref": (await ticket(bot)).ref, "version": version}
    ana_view = shown(await execute(bot, ANA, TICKET_REFRESH_VERB, data, card_id))
    assert titles(ana_view) == [
        "Assign to me",
        "Assign to someone",
        "Reply to the requester",
        "Resolve",
    ]
    megan_view = shown(await execute(bot, MEGAN, TICKET_REFRESH_VERB, data, card_id))
    assert titles(megan_view) == titles(ana_view), "a member of the admins' channel is an admin"
    eve_view = shown(await execute(bot, EVE, TICKET_REFRESH_VERB, data, card_id))
    assert "actions" not in eve_view
    assert execute_in(ana_view, "Assign to me")["data"] == data

    # Eve (not an admin) presses a button anyway: a polite refusal, and nothing changes.
    answer = await execute(bot, EVE, "assign_me", data, card_id)
    assert answer == {
        "statusCode": 200,
        "type": "application/vnd.microsoft.activity.message",
        "value": say("ticket_refused_not_admin"),
    }
    await asyncio.sleep(0.2)
    assert await drained(bot) == []
    assert (await ticket(bot)).version == version

    # Megan takes it: her view says so at once; the card, the thread and both requesters follow.
    answer = await execute(bot, MEGAN, "assign_me", data, card_id)
    card = shown(answer)
    assert say("ticket_done_took", ticket="NDR-1001") in str(card["body"])
    assert "Assigned to Megan Bowen" in header(card)
    posted = await drained(bot)
    (update,) = to(posted, CHANNEL)
    assert (update.kind, update.activity_id) == ("update", card_id)
    assert "Assigned to Megan Bowen" in header(update.cards[0])
    assert MEGAN["id"] in update.cards[0]["refresh"]["userIds"]
    assert [p.text for p in to(posted, thread(card_id))] == [
        say("ticket_note_took", admin="Megan Bowen")
    ]
    assigned = say("ticket_assigned", admin="Megan Bowen", ticket="NDR-1001")
    for chat in (ALEX_CHAT, DIEGO_CHAT):
        (news,) = to(posted, chat["id"])
        assert (news.kind, news.text) == ("send", assigned), "a proactive message, not a reply"
    stale = data
    data = {"ref": (await ticket(bot)).ref, "version": (await ticket(bot)).version}

    # Ana's card was out of date: "assign to me" is refused with the current state shown...
    answer = await execute(bot, ANA, "assign_me", stale, card_id)
    card = shown(answer)
    assert say("ticket_refused_assigned", ticket="NDR-1001", assignee="Megan Bowen") in str(
        card["body"]
    )
    assert "Assigned to Megan Bowen" in header(card)
    assert execute_in(card, "Assign to me")["data"] == data, "the card shown is the current one"
    posted = await drained(bot)
    assert all(p.kind == "update" for p in posted), "the stale card is refreshed, nothing else"
    assert (await ticket(bot)).version == data["version"]

    # ...and a reply from the same old card is applied to the ticket as it is now.
    reply = "Please ask the sender to try again in an hour."
    answer = await execute(bot, ANA, "reply", {**stale, "reply": reply}, card_id)
    body = str(shown(answer)["body"])
    assert say("ticket_done_replied", ticket="NDR-1001") in body
    assert say("ticket_done_on_current") in body
    posted = await drained(bot)
    assert [p.text for p in to(posted, thread(card_id))] == [
        say("ticket_note_replied", admin="Ana Ortiz", text=reply)
    ]
    relayed = say("ticket_reply", admin="Ana Ortiz", ticket="NDR-1001", text=reply)
    assert [p.text for p in to(posted, ALEX_CHAT["id"])] == [relayed]
    assert [p.text for p in to(posted, DIEGO_CHAT["id"])] == [relayed]
    data = {"ref": (await ticket(bot)).ref, "version": (await ticket(bot)).version}

    # Megan resolves it with a note; the requesters are asked whether that fixed it.
    assert shown(await execute(bot, MEGAN, "resolve", {**data, "resolution": " "}, card_id))
    assert (await ticket(bot)).status == "assigned", "a resolution needs a note"
    fix = "Allowed outside senders on the mailbox."
    card = shown(await execute(bot, MEGAN, "resolve", {**data, "resolution": fix}, card_id))
    assert titles(card) == ["Reopen"]
    posted = await drained(bot)
    assert header(to(posted, CHANNEL)[0].cards[0]).endswith("Resolved")
    for chat in (ALEX_CHAT, DIEGO_CHAT):
        news = to(posted, chat["id"])
        assert say("ticket_resolved", admin="Megan Bowen", ticket="NDR-1001", text=fix) in words(
            news
        )
        assert say("ticket_ask_fixed") in words(news)
        assert [a["title"] for a in news[-1].cards[0]["actions"]] == ["It's fixed", "Still failing"]

    # "No, still failing" from Alex reopens it: Diego, the card and its thread are told.
    said = words(await bot.send(bot.activity(text="still failing", **as_user(ALEX, ALEX_CHAT))))
    assert say("ticket_reopened", ticket="NDR-1001") in said
    posted = await drained(bot)
    assert (await ticket(bot)).status == "open"
    assert "Open, nobody has taken it yet" in header(to(posted, CHANNEL)[0].cards[0])
    assert [p.text for p in to(posted, thread(card_id))] == [
        say("ticket_note_requester_reopened", requester="Alex Wilber")
    ]
    assert to(posted, ALEX_CHAT["id"]) == [], "Alex reopened it: he is not told again"
    assert [p.text for p in to(posted, DIEGO_CHAT["id"])] == [
        say("ticket_reopened", ticket="NDR-1001")
    ]

    # Resolved again, by Ana this time.
    data = {"ref": (await ticket(bot)).ref, "version": (await ticket(bot)).version}
    fix = "The mailbox now accepts mail from outside; it can take an hour to apply."
    assert titles(
        shown(await execute(bot, ANA, "resolve", {**data, "resolution": fix}, card_id))
    ) == ["Reopen"]
    posted = await drained(bot)
    resolved = say("ticket_resolved", admin="Ana Ortiz", ticket="NDR-1001", text=fix)
    assert resolved in words(to(posted, ALEX_CHAT["id"]))
    assert resolved in words(to(posted, DIEGO_CHAT["id"]))
    assert header(to(posted, CHANNEL)[0].cards[0]).endswith("Resolved")
    assert (await ticket(bot)).status == "resolved"
    kinds = [e.kind for e in await bot.app[RUNTIME].store.tickets.ticket_events("NDR-1001")]
    assert kinds == ["opened", "joined", "assigned", "replied", "resolved", "reopened", "resolved"]


async def test_a_click_delivered_twice_is_applied_once(bot: TeamsBot) -> None:
    await register_admins(bot, ANA)
    await escalate(bot, ALEX, ALEX_CHAT)
    await drained(bot)
    data = {
        "ref": (await ticket(bot)).ref,
        "version": (await ticket(bot)).version,
        "reply": "On it.",
    }
    conversation = {**_MENTION["conversation"], "id": thread("act-1")}
    activity = bot.activity(
        "invoke_card_action",
        value={"action": {"type": "Action.Execute", "verb": "reply", "data": data}},
        **as_user(ANA, conversation),
    )
    for _ in range(2):
        response = await bot.post(activity)
        assert response.status == 200
        assert (await response.json())["type"] == "application/vnd.microsoft.card.adaptive"
    posted = await drained(bot)
    assert len(to(posted, ALEX_CHAT["id"])) == 1
    kinds = [e.kind for e in await bot.app[RUNTIME].store.tickets.ticket_events("NDR-1001")]
    assert kinds == ["opened", "replied"]


async def test_assign_to_someone_offers_the_admins_known(bot: TeamsBot) -> None:
    await register_admins(bot, ANA)
    await escalate(bot, ALEX, ALEX_CHAT)
    (post,) = to(await drained(bot), CHANNEL)
    data = {"ref": (await ticket(bot)).ref, "version": 1}
    card = shown(await execute(bot, ANA, TICKET_REFRESH_VERB, data))
    form = next(a for a in card["actions"] if a["title"] == "Assign to someone")
    (choices,) = form["card"]["body"]
    assert choices["type"] == "Input.ChoiceSet"
    assert choices["id"] == "assignee"
    assert [c["title"] for c in choices["choices"]] == ["Megan Bowen"]
    value = choices["choices"][0]["value"]
    card = shown(await execute(bot, ANA, "assign", {**data, "assignee": value}))
    assert say("ticket_done_assigned", ticket="NDR-1001", assignee="Megan Bowen") in str(
        card["body"]
    )
    assert (await ticket(bot)).assignee == {
        "platform": "msteams",
        "user_id": MEGAN["aadObjectId"],
        "name": "Megan Bowen",
    }
    posted = await drained(bot)
    assert [p.text for p in to(posted, thread(post.new_id))] == [
        say("ticket_note_assigned", admin="Ana Ortiz", assignee="Megan Bowen")
    ]


# ---- the admins' channel ----------------------------------------------------------------------


async def test_register_admins_in_a_channel_only_and_then_only_by_an_admin(bot: TeamsBot) -> None:
    said = words(await bot.say("register admins"))
    assert said == say("teams_register_in_channel"), "not in a personal chat"
    assert await bot.app[RUNTIME].tickets.admin_channels() == {}

    # ADMIN_USERS is set: only Ana may register the first one.
    assert await register_admins(bot, EVE) == say("admins_refused_not_listed")
    assert await register_admins(bot, ANA) == say("admins_registered")
    channel = (await bot.app[RUNTIME].tickets.admin_channels())["msteams"]
    assert channel["conversation"] == {"id": CHANNEL}
    assert channel["team"] == TEAM
    assert channel["reference"]["conversation"]["id"] == CHANNEL
    assert channel["reference"]["serviceUrl"] == bot.connector.url

    assert await register_admins(bot, EVE) == say("admins_already")
    assert await register_admins(bot, EVE, "19:elsewhere@thread.tacv2") == say("admins_refused")
    # Megan is a member of the admins' channel, so an admin: she may move it.
    assert await register_admins(bot, MEGAN, "19:elsewhere@thread.tacv2") == say("admins_moved")
    assert bot.connector.member_lookups >= 1


async def test_register_admins_takes_the_words_slack_takes(bot: TeamsBot) -> None:
    conversation = {**_MENTION["conversation"], "id": f"{CHANNEL};messageid=17"}
    activity = bot.activity(
        "channel_mention",
        text="<at>NDR Helper</at> Register the admins?",
        **as_user(ANA, conversation),
    )
    assert words(await bot.send(activity)) == say("admins_registered")


async def test_membership_is_asked_once_a_minute(bot: TeamsBot) -> None:
    await register_admins(bot, ANA)
    await escalate(bot, ALEX, ALEX_CHAT)
    await drained(bot)
    data = {"ref": (await ticket(bot)).ref, "version": 1}
    for _ in range(3):
        assert "actions" not in shown(await execute(bot, EVE, TICKET_REFRESH_VERB, data))
    assert bot.connector.member_lookups == 1


# ---- delivery ---------------------------------------------------------------------------------


async def test_a_card_that_is_gone_is_given_up_and_the_next_job_goes_ahead(bot: TeamsBot) -> None:
    await register_admins(bot, ANA)
    await escalate(bot, ALEX, ALEX_CHAT)
    (card,) = to(await drained(bot), CHANNEL)
    bot.connector.gone.add(card.new_id)
    data = {"ref": (await ticket(bot)).ref, "version": 1}
    shown(await execute(bot, ANA, "assign_me", data, card.new_id))
    posted = await drained(bot)
    assert to(posted, CHANNEL) == [], "the update was refused (404) and not retried"
    assert len(to(posted, thread(card.new_id))) == 1, "the note went ahead"
    jobs = await bot.app[RUNTIME].store.jobs.ticket_jobs("NDR-1001")
    failed = [job for job in jobs if job.kind == "update_card" and job.last_error]
    assert len(failed) == 1
    assert "404" in (failed[0].last_error or "")
    assert failed[0].attempts == 1


async def test_a_burst_of_tickets_reaches_the_admins_channel_complete_and_in_order(
    bot: TeamsBot,
) -> None:
    await register_admins(bot, ANA)
    bot.connector.take()
    bot.connector.throttle(every=4, retry_after="0.01")
    escalations = bot.app[RUNTIME].tickets
    for number in range(50):
        recipient = f"user{number}@contoso.com"
        requester = Requester("msteams", f"user-{number}", f"User {number}", f"msteams:a:{number}")
        await escalations.open_or_join(
            requester,
            bounce={"status": "5.7.12", "smtp_code": "550", "recipients": [recipient]},
            path={"role": "sender"},
            note=None,
            dedupe_key=f"{recipient}|5.7.12",
        )
    posted = await wait_for(bot, lambda p: len(to(p, CHANNEL)) >= 50)
    await drained(bot, timeout=30)
    cards = [each.cards[0] for each in to(posted, CHANNEL)]
    assert [card["refresh"]["action"]["data"]["ref"] for card in cards] == [
        (await ticket(bot, f"NDR-{1001 + n}")).ref for n in range(50)
    ]
    assert bot.connector.throttled >= 10, "the fake answered 429s, and they were retried"
    jobs = await bot.app[RUNTIME].store.jobs.ticket_jobs()
    assert all(job.done_at is not None and job.last_error is None for job in jobs)


# ---- the card's size --------------------------------------------------------------------------


def test_a_huge_ticket_still_fits_in_one_teams_message() -> None:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    requester = Requester("msteams", "29:alex", "Alex " + "x" * 500, "msteams:a:alex")
    huge = TicketRecord(
        id="NDR-1001",
        number=1,
        status="assigned",
        requester=requester,
        bounce={
            "status": "5.7.12",
            "recipients": [f"user{n}@contoso.com" for n in range(400)],
            "sender": "s" * 5_000,
            "subject": "é" * 10_000,
            "text": "t" * 100_000,
        },
        path={"role": "sender"},
        note="n" * 60_000,
        dedupe_key=None,
        assignee={"platform": "msteams", "user_id": "29:ana", "name": "Ana"},
        created_at=now,
        updated_at=now,
        version=3,
    )
    knowledge = default_knowledge()
    drawn = dataclasses.replace(
        TicketCard.of(huge, (), knowledge),
        requesters=tuple(f"Requester {n} " + "y" * 200 for n in range(300)),
        path="I sent the message",
    )
    view = TicketCardView(
        actions=True,
        refresh_users=tuple(f"29:user-{n}" for n in range(200)),
        assignees=tuple((f"29:user-{n}", f"User {n}") for n in range(200)),
        notice="done",
    )
    card = ticket_card(drawn, view, TicketLabels(knowledge.conversation))
    assert activity_size(ticket_activity(card, "NDR-1001")) <= MAX_ACTIVITY_BYTES
    assert len(card["refresh"]["userIds"]) == 60
    assign = next(a for a in card["actions"] if a["title"] == "Assign to someone")
    assert len(assign["card"]["body"][0]["choices"]) == 50
    assert len(card["actions"]) <= 6
