"""Replies as Teams message activities: Adaptive Cards as plain JSON dicts, with a text fallback.

Questions become cards whose buttons are Action.Submit with ``{"slot": ..., "answer": ...}``, the
payload the dialogs read from ``Message.value``; more choices than a card shows as buttons
become one list (Input.ChoiceSet named ``answer``) with a single submit button. No list starts
with a choice made, and Teams refuses the submit button until one is (``isRequired``): a hasty
click must not pick for the person. An answer (the admin's steps, the sender's note) followed by
its question is one card with the question's buttons at the bottom. Every card carries the
plain-text rendering as its ``fallbackText`` and a short ``summary`` for notifications, and stays
under Teams' message size: a long answer is split into several cards, the buttons on the last one.
No botbuilder here: the channel sends these as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from bot.channels.teams.card_elements import (
    CARD_CONTENT_TYPE,
    CARD_VERSION,
    FALLBACK_CHARS,
    MAX_ACTIVITY_BYTES,
    SUMMARY_CHARS,
    Json,
    activity_size,
    line_blocks,
    shorten,
    text_block,
)
from bot.render.text import render_text
from dialogs.replies import (
    Fact,
    Question,
    Reply,
    SenderAnswer,
    Step,
    StepsAnswer,
)
from knowledge.kb import ConversationText

# Teams shows at most six buttons on a card; more choices become a list with one submit button.
MAX_BUTTONS: Final = 6
#: The texts of conversation.yaml this module looks up (the list's "required" message, through
#: :class:`Labels`); checked when the bot starts.
TEXTS: Final = frozenset({"teams_ticket_required"})


@dataclass(frozen=True)
class Labels:
    """The words the cards add: the submit button under a list of choices, what Teams shows
    when it is pressed with nothing chosen, and the welcome card's Help button."""

    choose: str
    help: str
    required: str

    @classmethod
    def of(cls, conversation: ConversationText) -> Labels:
        """The labels as the knowledge base words them."""
        return cls(
            choose=conversation.text("button_choose"),
            help=conversation.text("button_help"),
            required=conversation.text("teams_ticket_required"),
        )


def render_replies(replies: Sequence[Reply], labels: Labels) -> list[Json]:
    """One turn's replies as message activities, in order (no ids or addresses yet)."""
    activities: list[Json] = []
    index = 0
    while index < len(replies):
        reply = replies[index]
        following = replies[index + 1] if index + 1 < len(replies) else None
        if isinstance(reply, StepsAnswer | SenderAnswer):
            question = following if isinstance(following, Question) else None
            activities += _answer_cards(reply, question, labels)
            index += 2 if question is not None else 1
            continue
        if isinstance(reply, Question):
            activities += _question_cards(reply, labels)
        else:
            activities += [text_activity(part) for part in _split_text(reply.text)]
        index += 1
    return activities


def text_activity(text: str) -> Json:
    """A plain message; Teams renders its ``**bold**``."""
    return {"type": "message", "text": text, "textFormat": "markdown"}


def typing_activity() -> Json:
    """The "typing..." indicator."""
    return {"type": "typing"}


def welcome_activity(greeting: str, capabilities: Sequence[str], labels: Labels) -> Json:
    """The card sent when the bot is installed or added to a team: who it is and a Help button."""
    body: list[Json] = [text_block(greeting)]
    if capabilities:
        body.append(text_block("\r".join(f"- {item}" for item in capabilities)))
    fallback = "\n".join([greeting, *(f"- {item}" for item in capabilities)])
    actions = [_submit(labels.help, {"intent": "help"})]
    return _card_activity(body, actions, fallback)


# ---- cards ------------------------------------------------------------------------------------


def _question_cards(question: Question, labels: Labels) -> list[Json]:
    body = [text_block(question.text)]
    if not question.choices:
        return [text_activity(question.text)]
    extra_body, actions = _choices(question, labels)
    return _cards(body + extra_body, actions, render_text(question))


def _answer_cards(
    answer: StepsAnswer | SenderAnswer, question: Question | None, labels: Labels
) -> list[Json]:
    body = _steps_body(answer) if isinstance(answer, StepsAnswer) else _sender_body(answer, labels)
    actions: list[Json] = []
    fallback = render_text(answer)
    if question is not None:
        body.append(text_block(question.text, weight="Bolder", separator=True))
        extra_body, actions = _choices(question, labels)
        body += extra_body
        fallback += "\n\n" + render_text(question)
    return _cards(body, actions, fallback)


def _choices(question: Question, labels: Labels) -> tuple[list[Json], list[Json]]:
    """The question's choices: buttons, or a list and one submit button when there are many."""
    if len(question.choices) <= MAX_BUTTONS:
        return [], [
            _submit(choice.label, {"slot": question.slot, "answer": choice.value})
            for choice in question.choices
        ]
    # No "value": nothing is chosen until the person chooses. Required, so Teams does not send
    # the click with nothing chosen (a client that sends it anyway gets the question again).
    choice_set = {
        "type": "Input.ChoiceSet",
        "id": "answer",
        "style": "expanded",
        "isRequired": True,
        "errorMessage": labels.required,
        "choices": [{"title": choice.label, "value": choice.value} for choice in question.choices],
    }
    return [choice_set], [_submit(labels.choose, {"slot": question.slot})]


def _steps_body(answer: StepsAnswer) -> list[Json]:
    body: list[Json] = [
        text_block(answer.title, size="Medium", weight="Bolder"),
        text_block(answer.intro),
    ]
    body += _fact_set(answer.facts)
    for number, step in enumerate(answer.steps, 1):
        body += _step(number, step)
    if answer.notes:
        body.append(text_block(answer.notes_label, weight="Bolder", separator=True))
        body.append(text_block("\r".join(f"- {note}" for note in answer.notes)))
    if answer.check:
        body.append(text_block(answer.check_label, weight="Bolder"))
        body.append(_code_block(answer.check))
    body.append(_source(answer.source_label, answer.source))
    return body


def _step(number: int, step: Step) -> list[Json]:
    elements = [text_block(f"{number}. {step.text}")]
    if step.substeps:
        elements.append(text_block("\r".join(f"- {sub}" for sub in step.substeps)))
    if step.code:
        elements.append(_code_block(step.code))
    return elements


def _sender_body(answer: SenderAnswer, labels: Labels) -> list[Json]:
    body: list[Json] = [
        text_block(answer.who_can_fix, weight="Bolder"),
        text_block(answer.what_to_do),
    ]
    body += _fact_set(answer.facts)
    body.append(text_block(answer.note_heading, weight="Bolder", separator=True))
    note = f"{answer.note_subject_label}: {answer.note_subject}\n\n{answer.note_body}"
    body.append({"type": "Container", "style": "emphasis", "items": line_blocks(note)})
    body.append(_source(answer.source_label, answer.source))
    return body


def _fact_set(facts: tuple[Fact, ...]) -> list[Json]:
    if not facts:
        return []
    return [
        {"type": "FactSet", "facts": [{"title": fact.label, "value": fact.value} for fact in facts]}
    ]


def _source(label: str, source: str) -> Json:
    link = f"[{source}]({source})" if source.startswith("https://") else source
    return text_block(f"{label}: {link}", size="Small", subtle=True, separator=True)


def _code_block(code: str) -> Json:
    """Teams' CodeBlock (copy button, highlighting); elsewhere a monospace block."""
    return {
        "type": "CodeBlock",
        "codeSnippet": code,
        "language": "PowerShell",
        "fallback": {
            "type": "Container",
            "style": "emphasis",
            "items": line_blocks(code, monospace=True),
        },
    }


def _submit(title: str, data: Json) -> Json:
    return {"type": "Action.Submit", "title": title, "data": data}


# ---- size -------------------------------------------------------------------------------------


def _card_activity(body: list[Json], actions: list[Json], fallback: str) -> Json:
    card: Json = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "body": body,
        "fallbackText": shorten(fallback, FALLBACK_CHARS),
        "msteams": {"width": "Full"},
    }
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "summary": shorten(fallback.strip().split("\n", 1)[0], SUMMARY_CHARS),
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": card}],
    }


def _cards(body: list[Json], actions: list[Json], fallback: str) -> list[Json]:
    """One card if it fits; else several, each under the size limit, the buttons on the last."""
    whole = _card_activity(body, actions, fallback)
    if activity_size(whole) <= MAX_ACTIVITY_BYTES:
        return [whole]
    overhead = activity_size(_card_activity([], actions, fallback))
    budget = MAX_ACTIVITY_BYTES - overhead
    pages: list[list[Json]] = [[]]
    used = 0
    for element in _fitting(body, budget):
        size = activity_size(element) + 1
        if pages[-1] and used + size > budget:
            pages.append([])
            used = 0
        pages[-1].append(element)
        used += size
    last = len(pages) - 1
    return [
        _card_activity(page, actions if number == last else [], fallback)
        for number, page in enumerate(pages)
    ]


def _fitting(elements: Iterable[Json], budget: int) -> Iterable[Json]:
    """The elements, a too-large text cut to fit one card on its own."""
    for element in elements:
        excess = activity_size(element) - budget
        text, code = element.get("text"), element.get("codeSnippet")
        if excess > 0 and isinstance(text, str):
            yield {**element, "text": shorten(text, len(text) - excess)}
        elif excess > 0 and isinstance(code, str):
            short = shorten(code, (len(code) - excess) // 2)
            yield {**element, "codeSnippet": short, "fallback": text_block(short)}
        else:
            yield element


def _split_text(text: str) -> list[str]:
    """A long text as several messages, cut between paragraphs (or lines) where possible."""
    limit = MAX_ACTIVITY_BYTES // 2  # JSON escaping can double a text's size
    if len(text.encode()) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for whole_line in text.split("\n"):
        line = whole_line
        while len(line.encode()) > limit:
            head, line = line[: limit // 4], line[limit // 4 :]
            if current:
                parts.append(current)
                current = ""
            parts.append(head)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode()) > limit:
            parts.append(current)
            candidate = line
        current = candidate
    if current:
        parts.append(current)
    return parts


__all__ = [
    "CARD_CONTENT_TYPE",
    "MAX_ACTIVITY_BYTES",
    "MAX_BUTTONS",
    "TEXTS",
    "Labels",
    "activity_size",
    "render_replies",
    "text_activity",
    "typing_activity",
    "welcome_activity",
]
