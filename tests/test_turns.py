"""The conversation service (bot/turns.py) on a real SQLite file: failures inside a turn,
a failing ticket desk, two processes racing on one conversation, and the remembered role."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import bot.turns
from bot.config import load_settings
from bot.store import Store
from bot.tickets import StoreTicketDesk, Tickets
from bot.turns import TurnOutcome, Turns, conversation_key, user_key
from dialogs.conversation import handle_turn
from dialogs.desk import TicketDesk, TicketReceipt, TicketRequest, TicketSummary
from dialogs.messages import Message
from dialogs.replies import (
    Question,
    Reply,
    SenderAnswer,
    StepsAnswer,
    Text,
    TicketNotice,
    replies_data,
    replies_of,
)
from dialogs.turn import DialogContext
from knowledge.kb import KnowledgeBase, default_knowledge


@pytest.fixture
def knowledge() -> KnowledgeBase:
    return default_knowledge()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    yield opened
    await opened.close()


@pytest.fixture
def conversations(store: Store, knowledge: KnowledgeBase) -> Turns:
    return Turns(store, DialogContext(knowledge=knowledge, desk=_desk(store, knowledge)))


def _desk(store: Store, knowledge: KnowledgeBase) -> StoreTicketDesk:
    """The ticket desk as bot/runtime.py builds it, with the tickets service."""
    return StoreTicketDesk(store, Tickets(store, knowledge, load_settings({}, env_file=None)))


def _message(text: str, *, user: str = "pat", conversation: str = "c1") -> Message:
    return Message(text=text, user_id=user, user_name=user, conversation_id=conversation)


def _texts(outcome: TurnOutcome) -> list[str]:
    return [r.text for r in outcome.replies if isinstance(r, Text | Question | TicketNotice)]


def _pending(outcome: TurnOutcome) -> str | None:
    questions = [r for r in outcome.replies if isinstance(r, Question)]
    return questions[-1].slot if questions else None


async def test_a_failing_turn_says_sorry_and_keeps_the_state(
    conversations: Turns,
    store: Store,
    knowledge: KnowledgeBase,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = await conversations.handle(_message("how do I fix 5.7.12"))
    assert _pending(first) == "role"
    key = conversation_key(_message(""))
    before = await store.conversations.load_state(key)

    real_handle_turn = handle_turn
    calls = 0

    async def fails_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the dialog broke")
        return await real_handle_turn(*args, **kwargs)

    monkeypatch.setattr(bot.turns, "handle_turn", fails_once)
    with caplog.at_level(logging.INFO, logger="bot.turns"):
        failed = await conversations.handle(_message("admin"))

    assert failed.failed
    assert failed.intent == "error"
    assert _texts(failed) == [knowledge.conversation.text("turn_error")]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors, "the failure was not logged"
    assert errors[0].exc_info is not None
    assert "the dialog broke" in str(errors[0].exc_info[1])
    assert await store.conversations.load_state(key) == before  # nothing saved
    assert await store.conversations.load_profile(user_key(_message(""))) == {}

    again = await conversations.handle(_message("admin"))
    assert not again.failed
    assert _pending(again) == "recipient_type"
    after = await store.conversations.load_state(key)
    assert after.version == before.version + 1
    assert after.state["slots"]["role"] == "admin"


class FlakyDesk:
    """A ticket desk that is down for its first ``failures`` calls."""

    def __init__(self, desk: TicketDesk, failures: int = 1) -> None:
        self.desk = desk
        self.failures = failures
        self.calls = 0

    async def open_ticket(self, message: Message, request: TicketRequest) -> TicketReceipt:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("the ticket database is down")
        return await self.desk.open_ticket(message, request)

    async def my_tickets(self, message: Message) -> list[TicketSummary]:
        return await self.desk.my_tickets(message)


async def test_a_failing_ticket_desk_says_so_and_the_conversation_goes_on(
    store: Store, knowledge: KnowledgeBase, caplog: pytest.LogCaptureFixture
) -> None:
    desk = FlakyDesk(_desk(store, knowledge))
    conversations = Turns(store, DialogContext(knowledge=knowledge, desk=desk))
    await conversations.handle(_message("how do I fix 5.7.12"))
    await conversations.handle(_message("admin"))
    assert _pending(await conversations.handle(_message("escalate"))) == "escalate_note"

    with caplog.at_level(logging.INFO):
        failed = await conversations.handle(_message("no note"))
    assert not failed.failed  # the dialog handled it: no turn_error
    assert _texts(failed)[0] == knowledge.conversation.text("escalate_failed")
    assert _pending(failed) == "recipient_type"  # back to the question they were on
    assert not failed.escalated
    assert any(r.levelno >= logging.ERROR and "ticket" in r.getMessage() for r in caplog.records)
    assert await store.tickets.list_tickets() == []

    # As the reply suggests: "escalate" again, and this time the ticket opens.
    retry = await conversations.handle(_message("escalate"))
    assert _pending(retry) == "escalate_note"
    opened = await conversations.handle(_message("The CEO is waiting"))
    assert opened.escalated
    notices = [r for r in opened.replies if isinstance(r, TicketNotice)]
    assert len(notices) == 1
    assert notices[0].ticket_id.startswith("NDR-")
    tickets = await store.tickets.list_tickets()
    assert [t.id for t in tickets] == [notices[0].ticket_id]


async def test_two_processes_racing_on_one_conversation(
    database_url: str, knowledge: KnowledgeBase, caplog: pytest.LogCaptureFixture
) -> None:
    first_store, second_store = await Store.open(database_url), await Store.open(database_url)
    try:
        first = Turns(first_store, DialogContext(knowledge=knowledge))
        second = Turns(second_store, DialogContext(knowledge=knowledge))
        await first.handle(_message("how do I fix 5.7.12"))
        key = conversation_key(_message(""))
        start = await first_store.conversations.load_state(key)

        # Both turns load the same version before either saves, so one save must lose.
        barrier = asyncio.Barrier(2)
        for store in (first_store, second_store):
            _hold_first_load(store, barrier)

        with caplog.at_level(logging.INFO, logger="bot.turns"):
            answer, help_ = await asyncio.gather(
                first.handle(_message("admin")), second.handle(_message("help"))
            )
        assert not answer.failed
        assert not help_.failed
        assert any("changed meanwhile" in r.getMessage() for r in caplog.records)

        final = await second_store.conversations.load_state(key)
        assert final.version == start.version + 2
        assert final.state["pending"] == "recipient_type"
        assert final.state["slots"]["role"] == "admin"
        assert await first_store.conversations.load_state(key) == final
        assert await first_store.conversations.load_profile(user_key(_message(""))) == {
            "role": "admin"
        }
    finally:
        await first_store.close()
        await second_store.close()


def _hold_first_load(store: Store, barrier: asyncio.Barrier) -> None:
    load_turn = store.conversations.load_turn
    held = False

    async def load_then_wait(conversation_key: str, user_key: str) -> Any:
        nonlocal held
        loaded = await load_turn(conversation_key, user_key)
        if not held:
            held = True
            await asyncio.wait_for(barrier.wait(), timeout=5)
        return loaded

    store.conversations.load_turn = load_then_wait  # type: ignore[method-assign]


async def test_the_role_is_remembered_across_conversations(
    conversations: Turns, store: Store, knowledge: KnowledgeBase
) -> None:
    await conversations.handle(_message("how do I fix 5.7.12", conversation="c1"))
    await conversations.handle(_message("I'm the sender", conversation="c1"))
    assert await store.conversations.load_profile(user_key(_message(""))) == {"role": "sender"}

    later = await conversations.handle(_message("how do I fix 5.7.12", conversation="c2"))
    texts = _texts(later)
    assert knowledge.conversation.text("role_remembered_sender") in texts
    assert knowledge.conversation.text("ask_role") not in texts
    assert _pending(later) == "recipient"

    # Someone else, in the same conversation key space, is asked.
    other = await conversations.handle(
        _message("how do I fix 5.7.12", user="sam", conversation="c3")
    )
    assert _pending(other) == "role"

    # Changing one's mind is remembered too.
    changed = await conversations.handle(
        _message("I'm the admin, how do I fix 5.7.12?", conversation="c4")
    )
    assert _pending(changed) == "recipient_type"
    assert await store.conversations.load_profile(user_key(_message(""))) == {"role": "admin"}
    fresh = await conversations.handle(_message("how do I fix 5.7.12", conversation="c5"))
    assert knowledge.conversation.text("role_remembered_admin") in _texts(fresh)
    assert _pending(fresh) == "recipient_type"


async def test_saying_im_the_admin_after_the_remembered_sender_role_switches(
    conversations: Turns, store: Store, knowledge: KnowledgeBase
) -> None:
    await conversations.handle(_message("how do I fix 5.7.12", conversation="c1"))
    await conversations.handle(_message("I'm the sender", conversation="c1"))
    later = await conversations.handle(_message("how do I fix 5.7.12", conversation="c2"))
    assert knowledge.conversation.text("role_remembered_sender") in _texts(later)
    switched = await conversations.handle(_message("I'm the admin", conversation="c2"))
    assert _pending(switched) == "recipient_type", _texts(switched)
    assert await store.conversations.load_profile(user_key(_message(""))) == {"role": "admin"}


async def test_in_a_shared_conversation_each_person_has_their_own_profile(
    conversations: Turns, store: Store
) -> None:
    """The row brings the profile of whoever spoke last: someone else's turn reads their own."""
    await conversations.handle(_message("how do I fix 5.7.12", user="pat", conversation="h"))
    await conversations.handle(_message("I'm the sender", user="pat", conversation="h"))
    await conversations.handle(_message("hello", user="pat", conversation="g"))
    sam = await conversations.handle(_message("how do I fix 5.7.12", user="sam", conversation="g"))
    assert _pending(sam) == "role"  # not pat's remembered role
    assert await store.conversations.load_profile(user_key(_message("", user="sam"))) == {}
    pat = await conversations.handle(_message("how do I fix 5.7.12", user="pat", conversation="i"))
    assert _pending(pat) == "recipient"


# ---- a delivery worked on again (a Slack event a dead process kept) ---------------------------


def _delivered(text: str, delivery: str) -> Message:
    return Message(text=text, user_id="pat", conversation_id="c1", delivery=delivery)


async def test_a_delivery_worked_on_again_gets_its_turns_replies_and_the_dialogs_are_not_run(
    conversations: Turns, store: Store
) -> None:
    bounce = (Path(__file__).parent / "corpus" / "en-new-5712-mailbox.txt").read_text("utf-8")
    first = await conversations.handle(_delivered(bounce, "slack-kept:1"))
    answer = await conversations.handle(_delivered("im the sender", "slack-kept:2"))
    saved = await store.conversations.load_state("console:c1")

    again = await conversations.handle(_delivered("im the sender", "slack-kept:2"))
    assert (again.repeated, again.intent, again.replies) == (True, "repeat", answer.replies)
    assert not answer.repeated
    assert await store.conversations.load_state("console:c1") == saved  # not run, not saved

    # An older delivery than the last: its turn was followed by others, nothing is said again.
    older = await conversations.handle(_delivered(bounce, "slack-kept:1"))
    assert (older.repeated, older.replies) == (True, ())
    assert first.replies

    # A new delivery, or a message that names none (Teams, the terminal), is a turn as ever.
    assert not (await conversations.handle(_delivered("help", "slack-kept:3"))).repeated
    assert not (await conversations.handle(_message("help"))).repeated
    applied = (await store.conversations.load_state("console:c1")).applied
    assert applied is not None
    assert applied["deliveries"] == ["slack-kept:1", "slack-kept:2", "slack-kept:3"]


async def test_a_conversation_remembers_the_last_few_deliveries_only(
    conversations: Turns, store: Store
) -> None:
    for number in range(1, bot.turns.APPLIED_KEPT + 3):
        await conversations.handle(_delivered("help", f"slack-kept:{number}"))
    applied = (await store.conversations.load_state("console:c1")).applied
    assert applied is not None
    assert applied["deliveries"] == [
        f"slack-kept:{n}" for n in range(3, bot.turns.APPLIED_KEPT + 3)
    ]
    # Forgotten: run as a new turn (the inbox's own record says it was done long ago).
    assert not (await conversations.handle(_delivered("help", "slack-kept:1"))).repeated


async def test_every_kind_of_reply_is_read_back_from_its_json_as_it_was(
    conversations: Turns,
) -> None:
    bounce = (Path(__file__).parent / "corpus" / "en-new-5712-mailbox.txt").read_text("utf-8")
    said: list[Reply] = []
    for user, texts in {
        "admin": (bounce, "i'm the admin here", "a user mailbox", "allow everyone", "powershell"),
        "sender": (bounce, "i sent it", "escalate", "pls hurry"),
    }.items():
        for text in texts:
            said += (
                await conversations.handle(_message(text, user=user, conversation=user))
            ).replies
    assert {type(reply) for reply in said} >= {Text, Question, StepsAnswer, SenderAnswer}
    assert replies_of(json.loads(json.dumps(replies_data(said)))) == tuple(said)


@pytest.mark.parametrize(
    "data",
    [
        [{"kind": "Poem", "text": "x"}],
        [{"text": "no kind"}],
        [{"kind": "Text"}],
        [{"kind": "Text", "text": "x", "colour": "red"}],
        [{"kind": "Question", "text": "x", "slot": "role", "choices": [{"value": "a"}]}],
        [{"kind": "Text", "text": {"nested": "object"}}],
    ],
)
def test_reply_data_this_version_cannot_read_is_refused(data: list[dict[str, Any]]) -> None:
    with pytest.raises(ValueError, match=r"."):
        replies_of(data)
