"""The Teams renderer (plain JSON Adaptive Cards) and the conversation references in the store
(where botbuilder may be imported is checked in test_boundaries.py)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.channels.teams import (
    CARD_CONTENT_TYPE,
    MAX_ACTIVITY_BYTES,
    MAX_BUTTONS,
    Labels,
    TicketCardView,
    TicketLabels,
    activity_size,
    ticket_card,
    welcome_activity,
)
from bot.channels.teams import render_replies as render_with
from bot.render.text import render_text
from bot.store import Requester, Store, TicketRecord
from bot.tickets import TicketCard
from dialogs.replies import (
    Choice,
    Fact,
    Question,
    Reply,
    SenderAnswer,
    Step,
    StepsAnswer,
    Text,
    TicketNotice,
)
from knowledge.kb import default_knowledge
from tests.fakes.teams_harness import teams_bot, words
from tests.transcripts import ASK_METHOD, ASK_TYPE

LABELS = Labels.of(default_knowledge().conversation)
FIXED = Question(
    "Did that fix it?",
    "fixed",
    (
        Choice("yes", "It worked"),
        Choice("no", "Still failing"),
        Choice("escalate", "Escalate to an admin"),
    ),
)


def render_replies(replies: list[Reply]) -> list[dict[str, Any]]:
    """The replies rendered with the knowledge base's labels."""
    return render_with(replies, LABELS)


def _steps(count: int = 3, code: str = "Set-Mailbox -Identity x") -> StepsAnswer:
    return StepsAnswer(
        title="Let everyone mail a shared mailbox (PowerShell)",
        intro="Steps for **Shared mailbox**.",
        facts=(Fact("Status code", "5.7.12"), Fact("Recipient", "help@contoso.com")),
        steps=tuple(
            Step(f"Step {n} with **Save**.", substeps=("a", "b"), code=code)
            for n in range(1, count + 1)
        ),
        notes_label="Good to know",
        notes=("One note.",),
        check_label="Check the setting with",
        check="Get-Mailbox -Identity x",
        source_label="Source",
        source="https://learn.microsoft.com/",
    )


def _card(activity: dict[str, object]) -> dict[str, object]:
    attachments = activity["attachments"]
    assert isinstance(attachments, list)
    assert attachments[0]["contentType"] == CARD_CONTENT_TYPE
    card = attachments[0]["content"]
    assert isinstance(card, dict)
    return card


def test_text_replies_are_plain_messages() -> None:
    activities = render_replies([Text("Hi **there**"), TicketNotice("NDR-1001", "Ticket open")])
    assert activities == [
        {"type": "message", "text": "Hi **there**", "textFormat": "markdown"},
        {"type": "message", "text": "Ticket open", "textFormat": "markdown"},
    ]


def test_a_question_is_a_card_of_submit_buttons_with_the_dialogs_payload() -> None:
    question = Question(
        "Who are you?", "role", (Choice("sender", "Sender"), Choice("admin", "Admin"))
    )
    (activity,) = render_replies([question])
    card = _card(activity)
    assert card["actions"] == [
        {"type": "Action.Submit", "title": "Sender", "data": {"slot": "role", "answer": "sender"}},
        {"type": "Action.Submit", "title": "Admin", "data": {"slot": "role", "answer": "admin"}},
    ]
    assert card["fallbackText"] == render_text(question)
    assert activity["summary"] == "Who are you?"
    assert "text" not in activity, "Teams would show it above the card as well"


def test_more_choices_than_buttons_become_one_list_and_a_submit_button() -> None:
    choices = tuple(Choice(f"v{n}", f"Label {n}") for n in range(8))
    (activity,) = render_replies([Question("Which kind?", "recipient_type", choices)])
    card = _card(activity)
    assert isinstance(card["actions"], list)
    assert len(card["actions"]) == 1
    assert card["actions"][0]["title"] == "Choose"
    assert card["actions"][0]["data"] == {"slot": "recipient_type"}
    body = card["body"]
    assert isinstance(body, list)
    choice_set = body[-1]
    assert choice_set["type"] == "Input.ChoiceSet"
    assert choice_set["id"] == "answer"
    assert [c["value"] for c in choice_set["choices"]] == [f"v{n}" for n in range(8)]


def _choice_sets(node: Any) -> Iterator[dict[str, Any]]:
    """Every Input.ChoiceSet in a card, however deep (a ShowCard's form included)."""
    if isinstance(node, dict):
        if node.get("type") == "Input.ChoiceSet":
            yield node
        for value in node.values():
            yield from _choice_sets(value)
    elif isinstance(node, list):
        for value in node:
            yield from _choice_sets(value)


def _ticket(status: str, assignee: dict[str, str] | None = None) -> TicketRecord:
    now = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
    return TicketRecord(
        id="NDR-1001",
        number=1,
        status=status,
        requester=Requester("msteams", "29:alex", "Alex Wilber", "msteams:a:1"),
        bounce={"status": "5.7.12", "recipients": ["sales@contoso.com"]},
        path={"role": "admin"},
        note="Please hurry",
        dedupe_key=None,
        assignee=assignee,
        created_at=now,
        updated_at=now,
        version=1,
    )


def _every_card() -> Iterator[dict[str, Any]]:
    """The cards the bot sends, in all their shapes: questions with few and many choices, on
    their own and under an answer, the welcome card, the ticket cards with their forms."""
    for count in range(1, 13):
        question = Question(
            "Q?", "recipient_type", tuple(Choice(f"v{n}", f"L{n}") for n in range(count))
        )
        for replies in ([question], [_steps(), question], [_steps(count=60), question]):
            for activity in render_replies(list(replies)):
                yield _card(activity)
    yield _card(welcome_activity("Hi!", ["Reads bounces"], LABELS))
    knowledge = default_knowledge()
    labels = TicketLabels(knowledge.conversation)
    megan = {"id": "29:megan", "name": "Megan Bowen"}
    for ticket in (_ticket("open"), _ticket("assigned", megan), _ticket("resolved")):
        for assignees in ((), (("29:megan", "Megan Bowen"), ("29:diego", "Diego Siciliani"))):
            view = TicketCardView(actions=True, assignees=assignees)
            yield ticket_card(TicketCard.of(ticket, (), knowledge), view, labels)


def test_no_list_of_choices_starts_with_a_choice_made() -> None:
    """A pre-selected choice is one a hasty click picks for the person: every list starts
    empty, and Teams must not send the click until one is chosen (isRequired, with a message)."""
    lists = [choice_set for card in _every_card() for choice_set in _choice_sets(card)]
    assert len(lists) >= 2 * 6, "the many-choice questions and the assign forms have lists"
    for choice_set in lists:
        assert "value" not in choice_set, choice_set
        assert choice_set["isRequired"] is True, choice_set
        assert choice_set["errorMessage"], choice_set


@pytest.mark.parametrize(
    "empty",
    [{"answer": ""}, {}, {"answer": "   "}],
    ids=["empty answer", "no answer", "blank answer"],
)
async def test_choose_with_nothing_chosen_asks_again(tmp_path: Path, empty: dict[str, str]) -> None:
    """A client that sends the list's submit button with nothing chosen (Teams itself does not)
    gets the question again: no choice is made for the person, nothing fails."""
    async with teams_bot(tmp_path) as bot:
        await bot.say("how do I fix 5.7.12")
        posted = await bot.click("I'm an email admin")
        assert ASK_TYPE in words(posted)
        assert bot.last_card is not None
        (choice_set,) = _choice_sets(bot.last_card)
        assert "value" not in choice_set
        submit = bot.last_card["actions"][0]["data"]
        assert submit == {"slot": "recipient_type"}
        value = {**submit, **empty, "msteams": {"type": "messageBack"}}
        again = await bot.send(bot.activity("card_submit", value=value, text=""))
        assert ASK_TYPE in words(again), words(again)
        assert ASK_METHOD not in words(again)
        assert ASK_METHOD in words(await bot.click("Shared mailbox"))


def test_steps_and_their_question_are_one_card() -> None:
    (activity,) = render_replies([_steps(), FIXED])
    card = _card(activity)
    body = card["body"]
    assert isinstance(body, list)
    texts = [element.get("text", "") for element in body]
    assert texts[0] == "Let everyone mail a shared mailbox (PowerShell)"
    assert "1. Step 1 with **Save**." in texts
    assert "3. Step 3 with **Save**." in texts
    assert any(element["type"] == "FactSet" for element in body)
    code = [element for element in body if element["type"] == "CodeBlock"]
    assert code[0]["language"] == "PowerShell"
    assert code[0]["fallback"]["type"] == "Container"
    assert texts[-1] == "Did that fix it?"
    assert isinstance(card["actions"], list)
    assert [a["title"] for a in card["actions"]] == [
        "It worked",
        "Still failing",
        "Escalate to an admin",
    ]
    assert "Set-Mailbox -Identity x" in str(card["fallbackText"])
    assert "Did that fix it?" in str(card["fallbackText"])


def test_a_sender_answer_is_a_card_with_the_note_to_copy() -> None:
    answer = SenderAnswer(
        who_can_fix="Only an email admin at adatum.com can fix this.",
        what_to_do="Send them this note.",
        facts=(Fact("Recipient", "marketing@adatum.com"),),
        note_heading="Note for the email admin at adatum.com:",
        note_subject_label="Subject",
        note_subject="Mail bounced with 5.7.193",
        note_body="Hello,\n\nplease allow outside senders.\n- Dana",
        source_label="Source",
        source="https://learn.microsoft.com/",
    )
    (activity,) = render_replies([answer, Text("Anything else?")])[:1]
    body = _card(activity)["body"]
    assert isinstance(body, list)
    note = next(element for element in body if element["type"] == "Container")
    lines = [block["text"] for block in note["items"]]
    assert lines == [
        "Subject: Mail bounced with 5.7.193",
        "Hello,",
        "please allow outside senders.",
        "- Dana",
    ]
    assert [block["spacing"] for block in note["items"]] == ["None", "Medium", "Medium", "None"]


def test_a_long_answer_is_split_into_cards_under_the_limit_with_buttons_last() -> None:
    huge = _steps(count=60, code="Set-Mailbox -Identity " + "x" * 600)
    activities = render_replies([huge, FIXED])
    assert len(activities) > 1
    for activity in activities:
        assert activity_size(activity) <= MAX_ACTIVITY_BYTES
        json.dumps(activity)
    assert all("actions" not in _card(a) for a in activities[:-1])
    assert len(_card(activities[-1])["actions"]) == 3  # type: ignore[arg-type]
    shown = " ".join(
        str(element.get("text", ""))
        for activity in activities
        for element in _card(activity)["body"]  # type: ignore[attr-defined]
    )
    assert "1. Step 1" in shown
    assert "60. Step 60" in shown


def test_a_long_text_is_split_into_messages_under_the_limit() -> None:
    text = "\n".join(f"line {n} " + "y" * 100 for n in range(600))
    activities = render_replies([Text(text)])
    assert len(activities) > 1
    assert all(activity_size(a) <= MAX_ACTIVITY_BYTES for a in activities)
    assert "\n".join(a["text"] for a in activities) == text


def test_no_card_has_more_buttons_than_teams_shows() -> None:
    for count in range(1, 12):
        choices = tuple(Choice(f"v{n}", f"L{n}") for n in range(count))
        for activity in render_replies([_steps(), Question("Q?", "s", choices)]):
            assert len(_card(activity).get("actions", [])) <= MAX_BUTTONS  # type: ignore[arg-type]


def test_the_welcome_card() -> None:
    activity = welcome_activity("Hi!", ["Reads bounces", "Escalates"], LABELS)
    card = _card(activity)
    assert card["actions"] == [
        {"type": "Action.Submit", "title": "Help", "data": {"intent": "help"}}
    ]
    assert card["fallbackText"] == "Hi!\n- Reads bounces\n- Escalates"


def test_the_words_cards_add_come_from_the_knowledge_base() -> None:
    texts = default_knowledge().conversation
    assert (LABELS.choose, LABELS.help) == (texts.text("button_choose"), texts.text("button_help"))
    assert LABELS.required == texts.text("teams_ticket_required")
    other = Labels(choose="Valider", help="Aide", required="Choisissez.")
    many = Question(
        "Quel type ?", "recipient_type", tuple(Choice(f"v{n}", f"L{n}") for n in range(8))
    )
    (activity,) = render_with([many], other)
    assert [action["title"] for action in _card(activity)["actions"]] == ["Valider"]  # type: ignore[union-attr]
    assert [c["errorMessage"] for c in _choice_sets(_card(activity))] == ["Choisissez."]
    welcome = _card(welcome_activity("Salut !", [], other))
    assert welcome["actions"] == [
        {"type": "Action.Submit", "title": "Aide", "data": {"intent": "help"}}
    ]
    answer = SenderAnswer(
        who_can_fix="w",
        what_to_do="d",
        facts=(),
        note_heading="h",
        note_subject_label="Objet",
        note_subject="Courrier refusé",
        note_body="Bonjour",
        source_label="Source",
        source="https://learn.microsoft.com/",
    )
    body = _card(render_with([answer], other)[0])["body"]
    assert isinstance(body, list)
    note = next(element for element in body if element["type"] == "Container")
    assert note["items"][0]["text"] == "Objet: Courrier refusé"


# ---- conversation references -----------------------------------------------------------------


async def test_conversation_references_are_upserted(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'refs.db'}")
    try:
        assert await store.conversations.load_reference("msteams:c1") is None
        first = {"serviceUrl": "https://a.example/", "conversation": {"id": "c1"}}
        await store.conversations.save_reference("msteams:c1", first)
        assert await store.conversations.load_reference("msteams:c1") == first
        second = {**first, "serviceUrl": "https://b.example/"}
        await store.conversations.save_reference("msteams:c1", second)
        assert await store.conversations.load_reference("msteams:c1") == second
        assert await store.conversations.load_reference("msteams:c2") is None
    finally:
        await store.close()


def test_a_ticket_opened_from_a_sentence_shows_what_it_is_about() -> None:
    ticket = dataclasses.replace(_ticket("open"), bounce={"about": "board@ rejects the auditors"})
    knowledge = default_knowledge()
    labels = TicketLabels(knowledge.conversation)
    card = ticket_card(TicketCard.of(ticket, (), knowledge), TicketCardView(actions=False), labels)
    assert "board@ rejects the auditors" in json.dumps(card)
