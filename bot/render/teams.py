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

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from bot.render.text import render_text
from bot.tickets.protocol import Action
from dialogs.replies import (
    Fact,
    Question,
    Reply,
    SenderAnswer,
    Step,
    StepsAnswer,
)
from knowledge.kb import ConversationText

if TYPE_CHECKING:
    from bot.tickets.card import TicketCard

CARD_CONTENT_TYPE: Final = "application/vnd.microsoft.card.adaptive"
CARD_VERSION: Final = "1.5"
# Teams shows at most six buttons on a card; more choices become a list with one submit button.
MAX_BUTTONS: Final = 6
# Teams refuses a message over about 28 KB; the channel adds ids and addresses to what this makes.
MAX_ACTIVITY_BYTES: Final = 26_000
SUMMARY_CHARS: Final = 200
FALLBACK_CHARS: Final = 3_000
#: The texts of conversation.yaml this module looks up (the ticket card's words, through
#: :class:`TicketLabels`, and the list's "required" message); checked when the bot starts.
TEXTS: Final = frozenset(
    {
        "teams_ticket_title",
        "teams_ticket_status_open",
        "teams_ticket_status_assigned",
        "teams_ticket_status_resolved",
        "teams_ticket_unknown",
        "teams_ticket_more",
        "teams_ticket_nobody",
        "teams_ticket_fact_requesters",
        "teams_ticket_fact_assignee",
        "teams_ticket_fact_recipient",
        "teams_ticket_fact_about",
        "teams_ticket_fact_sender",
        "teams_ticket_fact_code",
        "teams_ticket_fact_subject",
        "teams_ticket_fact_date",
        "teams_ticket_fact_path",
        "teams_ticket_note",
        "teams_ticket_admins_act",
        "teams_ticket_refresh",
        "teams_ticket_assign_me",
        "teams_ticket_assign",
        "teams_ticket_assign_label",
        "teams_ticket_assign_submit",
        "teams_ticket_reply",
        "teams_ticket_reply_label",
        "teams_ticket_reply_hint",
        "teams_ticket_reply_submit",
        "teams_ticket_resolve",
        "teams_ticket_resolve_label",
        "teams_ticket_resolve_hint",
        "teams_ticket_resolve_submit",
        "teams_ticket_reopen",
        "teams_ticket_required",
    }
)

Json = dict[str, Any]
_PARAGRAPHS = re.compile(r"\n+")


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
    body: list[Json] = [_text_block(greeting)]
    if capabilities:
        body.append(_text_block("\r".join(f"- {item}" for item in capabilities)))
    fallback = "\n".join([greeting, *(f"- {item}" for item in capabilities)])
    actions = [_submit(labels.help, {"intent": "help"})]
    return _card_activity(body, actions, fallback)


def activity_size(activity: Json) -> int:
    """The activity's size as Teams counts it: bytes of its JSON."""
    return len(json.dumps(activity, ensure_ascii=False, separators=(",", ":")).encode())


# ---- cards ------------------------------------------------------------------------------------


def _question_cards(question: Question, labels: Labels) -> list[Json]:
    body = [_text_block(question.text)]
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
        body.append(_text_block(question.text, weight="Bolder", separator=True))
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
        _text_block(answer.title, size="Medium", weight="Bolder"),
        _text_block(answer.intro),
    ]
    body += _fact_set(answer.facts)
    for number, step in enumerate(answer.steps, 1):
        body += _step(number, step)
    if answer.notes:
        body.append(_text_block(answer.notes_label, weight="Bolder", separator=True))
        body.append(_text_block("\r".join(f"- {note}" for note in answer.notes)))
    if answer.check:
        body.append(_text_block(answer.check_label, weight="Bolder"))
        body.append(_code_block(answer.check))
    body.append(_source(answer.source_label, answer.source))
    return body


def _step(number: int, step: Step) -> list[Json]:
    elements = [_text_block(f"{number}. {step.text}")]
    if step.substeps:
        elements.append(_text_block("\r".join(f"- {sub}" for sub in step.substeps)))
    if step.code:
        elements.append(_code_block(step.code))
    return elements


def _sender_body(answer: SenderAnswer, labels: Labels) -> list[Json]:
    body: list[Json] = [
        _text_block(answer.who_can_fix, weight="Bolder"),
        _text_block(answer.what_to_do),
    ]
    body += _fact_set(answer.facts)
    body.append(_text_block(answer.note_heading, weight="Bolder", separator=True))
    note = f"{answer.note_subject_label}: {answer.note_subject}\n\n{answer.note_body}"
    body.append({"type": "Container", "style": "emphasis", "items": _lines(note)})
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
    return _text_block(f"{label}: {link}", size="Small", subtle=True, separator=True)


def _code_block(code: str) -> Json:
    """Teams' CodeBlock (copy button, highlighting); elsewhere a monospace block."""
    return {
        "type": "CodeBlock",
        "codeSnippet": code,
        "language": "PowerShell",
        "fallback": {
            "type": "Container",
            "style": "emphasis",
            "items": _lines(code, monospace=True),
        },
    }


def _text_block(
    text: str,
    *,
    size: str | None = None,
    weight: str | None = None,
    subtle: bool = False,
    separator: bool = False,
) -> Json:
    # Teams folds a single line break; a blank line keeps it.
    block: Json = {"type": "TextBlock", "text": _PARAGRAPHS.sub("\n\n", text), "wrap": True}
    if size:
        block["size"] = size
    if weight:
        block["weight"] = weight
    if subtle:
        block["isSubtle"] = True
    if separator:
        block["separator"] = True
        block["spacing"] = "Medium"
    return block


def _submit(title: str, data: Json) -> Json:
    return {"type": "Action.Submit", "title": title, "data": data}


def _lines(text: str, *, monospace: bool = False) -> list[Json]:
    """Text whose line breaks matter (a note to copy, code): one TextBlock per line, since a
    TextBlock reads markdown and Teams folds single line breaks."""
    blocks: list[Json] = []
    gap = False
    for line in text.split("\n"):
        if not line.strip():
            gap = True
            continue
        block: Json = {"type": "TextBlock", "text": line, "wrap": True}
        block["spacing"] = "Medium" if gap and blocks else "None"
        if monospace:
            block["fontType"] = "Monospace"
        blocks.append(block)
        gap = False
    return blocks


# ---- size -------------------------------------------------------------------------------------


def _card_activity(body: list[Json], actions: list[Json], fallback: str) -> Json:
    card: Json = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "body": body,
        "fallbackText": _shorten(fallback, FALLBACK_CHARS),
        "msteams": {"width": "Full"},
    }
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "summary": _shorten(fallback.strip().split("\n", 1)[0], SUMMARY_CHARS),
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
            yield {**element, "text": _shorten(text, len(text) - excess)}
        elif excess > 0 and isinstance(code, str):
            short = _shorten(code, (len(code) - excess) // 2)
            yield {**element, "codeSnippet": short, "fallback": _text_block(short)}
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


def _shorten(text: str, limit: int) -> str:
    limit = max(limit, 1)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ---- ticket cards (the admins' channel) -------------------------------------------------------

#: The refresh verb: Teams asks for the card as the viewing user should see it.
TICKET_REFRESH_VERB: Final = "ticketRefresh"
#: Teams auto-refreshes a card for at most this many users (MRIs in ``refresh.userIds``).
MAX_REFRESH_USERS: Final = 60
MAX_ASSIGNEE_CHOICES: Final = 50
_MAX_REQUESTERS_SHOWN = 10
_MAX_RECIPIENTS_SHOWN = 5
_MAX_FACT_CHARS = 300
_MAX_NOTE_CHARS = 2_000
_MAX_INPUT_CHARS = 2_000
#: The ids of the cards' inputs, merged into ``action.data`` by Teams when an action is executed.
INPUT_ASSIGNEE: Final = "assignee"
INPUT_REPLY: Final = "reply"
INPUT_RESOLUTION: Final = "resolution"


@dataclass(frozen=True)
class TicketLabels:
    """The words of the ticket card, as the knowledge base has them (``teams_ticket_*``)."""

    texts: ConversationText

    def __call__(self, key: str, **values: str) -> str:
        return self.texts.text(f"teams_ticket_{key}", **values)


@dataclass(frozen=True)
class TicketCardView:
    """What one rendering of a ticket card shows, besides the ticket itself (``TicketCard``)."""

    actions: bool  # the admins' view: with the action buttons
    refresh_users: tuple[str, ...] = ()  # MRIs Teams refreshes the card for automatically
    assignees: tuple[tuple[str, str], ...] = ()  # (user id, name) offered by "Assign to someone"
    notice: str | None = None  # a line for the admin who just acted (their view only)


def ticket_card(ticket: TicketCard, view: TicketCardView, labels: TicketLabels) -> Json:
    """The ticket's Adaptive Card (Universal Actions): the base view for everyone, or with
    ``view.actions`` the admins' view with its buttons. Every Action.Execute carries
    ``{ticket, version}`` so a click on an out-of-date card is recognised."""
    data = {"ticket": ticket.id, "version": ticket.version}
    body: list[Json] = [_ticket_header(ticket, labels)]
    if view.notice:
        notice = _text_block(view.notice, weight="Bolder")
        notice["color"] = "Accent"
        body.append(notice)
    body.append({"type": "FactSet", "facts": _ticket_facts(ticket, labels)})
    if ticket.note:
        body.append(_text_block(labels("note"), weight="Bolder", separator=True))
        note = _shorten(ticket.note, _MAX_NOTE_CHARS)
        body.append({"type": "Container", "style": "emphasis", "items": _lines(note)})
    if not view.actions:
        body.append(_text_block(labels("admins_act"), size="Small", subtle=True, separator=True))
    card: Json = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "refresh": {
            "action": {
                "type": "Action.Execute",
                "title": labels("refresh"),
                "verb": TICKET_REFRESH_VERB,
                "data": data,
            },
            "userIds": list(dict.fromkeys(view.refresh_users))[:MAX_REFRESH_USERS],
        },
        "body": body,
        "fallbackText": _shorten(_ticket_text(ticket, labels), FALLBACK_CHARS),
        "msteams": {"width": "Full"},
    }
    if view.actions:
        card["actions"] = _ticket_actions(ticket, view, labels, data)
    return _fit_ticket_card(card)


def ticket_activity(card: Json, summary: str) -> Json:
    """The message that carries a ticket card (posted, or put in place of the old one)."""
    return {
        "type": "message",
        "summary": _shorten(summary, SUMMARY_CHARS),
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": card}],
    }


def ticket_summary(ticket: TicketCard, labels: TicketLabels) -> str:
    """One line for notifications: the ticket, its code and recipient, its status."""
    return _ticket_title(ticket, labels) + " · " + _ticket_status(ticket, labels)


def _ticket_title(ticket: TicketCard, labels: TicketLabels) -> str:
    return labels(
        "title",
        ticket=ticket.id,
        code=ticket.code or labels("unknown"),
        recipient=ticket.recipients[0] if ticket.recipients else labels("unknown"),
    )


def _ticket_status(ticket: TicketCard, labels: TicketLabels) -> str:
    if ticket.status == "assigned":
        name = ticket.assignee_name or labels("unknown")
        return labels("status_assigned", assignee=name)
    if ticket.status == "resolved":
        return labels("status_resolved")
    return labels("status_open")


def _ticket_header(ticket: TicketCard, labels: TicketLabels) -> Json:
    style = {"open": "attention", "assigned": "warning", "resolved": "good"}.get(
        ticket.status, "emphasis"
    )
    return {
        "type": "Container",
        "style": style,
        "bleed": True,
        "items": [
            _text_block(_ticket_title(ticket, labels), size="Medium", weight="Bolder"),
            {**_text_block(_ticket_status(ticket, labels)), "spacing": "None"},
        ],
    }


def _ticket_facts(ticket: TicketCard, labels: TicketLabels) -> list[Json]:
    shown = list(ticket.requesters[:_MAX_REQUESTERS_SHOWN])
    if len(ticket.requesters) > _MAX_REQUESTERS_SHOWN:
        shown.append(labels("more", count=str(len(ticket.requesters) - _MAX_REQUESTERS_SHOWN)))
    recipients = list(ticket.recipients)
    if len(recipients) > _MAX_RECIPIENTS_SHOWN:
        more = labels("more", count=str(len(recipients) - _MAX_RECIPIENTS_SHOWN))
        recipients = [*recipients[:_MAX_RECIPIENTS_SHOWN], more]
    rows = [
        ("requesters", ", ".join(shown)),
        ("assignee", ticket.assignee_name or labels("nobody")),
        ("about", ticket.about),  # the requester's words, when no bounce tells
        ("recipient", ", ".join(recipients)),
        ("sender", ticket.sender),
        ("code", ticket.full_code),
        ("subject", ticket.subject),
        ("date", ticket.date),
        ("path", ticket.path),
    ]
    return [
        {"title": labels(f"fact_{name}"), "value": _shorten(str(value), _MAX_FACT_CHARS)}
        for name, value in rows
        if value
    ]


def _ticket_actions(
    ticket: TicketCard, view: TicketCardView, labels: TicketLabels, data: Json
) -> list[Json]:
    """The card's buttons, one per action the ticket's status allows: those that ask for
    something first (who, a reply, a resolution note) open a form on the card."""

    def execute(title: str, verb: str) -> Json:
        return {"type": "Action.Execute", "title": title, "verb": verb, "data": data}

    def form(title: str, inputs: list[Json], submit: Json) -> Json:
        card = {"type": "AdaptiveCard", "body": inputs, "actions": [submit]}
        return {"type": "Action.ShowCard", "title": title, "card": card}

    def button(action: Action) -> Json:
        verb = action.value
        if action is Action.ASSIGN:
            field = _assign_input(view, labels)
        elif action is Action.REPLY:
            field = _text_input(labels, verb, INPUT_REPLY)
        elif action is Action.RESOLVE:
            field = _text_input(labels, verb, INPUT_RESOLUTION)
        else:  # assign to me, reopen: at once
            return execute(labels(verb), verb)
        return form(labels(verb), [field], execute(labels(f"{verb}_submit"), verb))

    return [button(action) for action in ticket.actions]


def _assign_input(view: TicketCardView, labels: TicketLabels) -> Json:
    """Whom to assign it to: a list of the admins known, else a name to type."""
    who: Json
    if view.assignees:
        who = {
            "type": "Input.ChoiceSet",
            "id": INPUT_ASSIGNEE,
            "label": labels("assign_label"),
            "style": "filtered",
            "isRequired": True,
            "errorMessage": labels("required"),
            "choices": [
                {"title": name, "value": assignee_value(user_id, name)}
                for user_id, name in view.assignees[:MAX_ASSIGNEE_CHOICES]
            ],
        }
    else:
        who = {
            "type": "Input.Text",
            "id": INPUT_ASSIGNEE,
            "label": labels("assign_label"),
            "isRequired": True,
            "errorMessage": labels("required"),
            "maxLength": 200,
        }
    return who


def _text_input(labels: TicketLabels, action: str, input_id: str) -> Json:
    """The reply's or the resolution note's box (``reply_label``, ``resolve_hint``...)."""
    return {
        "type": "Input.Text",
        "id": input_id,
        "label": labels(f"{action}_label"),
        "placeholder": labels(f"{action}_hint"),
        "isMultiline": True,
        "isRequired": True,
        "errorMessage": labels("required"),
        "maxLength": _MAX_INPUT_CHARS,
    }


def assignee_value(user_id: str, name: str) -> str:
    """A choice of "Assign to someone": the user id and the name, as one value."""
    return f"{user_id}|{name}"


def read_assignee(value: str) -> tuple[str, str] | None:
    """(user id, name) from an "Assign to someone" answer: a choice, or a name typed in."""
    value = value.strip()
    if not value:
        return None
    user_id, bar, name = value.partition("|")
    if bar and user_id.strip():
        return user_id.strip(), (name.strip() or user_id.strip())
    return value, value


def _ticket_text(ticket: TicketCard, labels: TicketLabels) -> str:
    lines = [ticket_summary(ticket, labels)]
    lines += [f"{fact['title']}: {fact['value']}" for fact in _ticket_facts(ticket, labels)]
    if ticket.note:
        lines.append(f"{labels('note')} {ticket.note}")
    return "\n".join(lines)


def _fit_ticket_card(card: Json) -> Json:
    """Keep the card under Teams' message size: cut the note, then the facts, if need be."""
    for limit in (1_000, 300):
        if activity_size(ticket_activity(card, "")) <= MAX_ACTIVITY_BYTES:
            return card
        card = json.loads(json.dumps(card))
        for element in card["body"]:
            if element.get("type") == "Container" and element.get("style") == "emphasis":
                text = " ".join(str(item.get("text", "")) for item in element["items"])
                element["items"] = [_text_block(_shorten(text, limit))]
            if element.get("type") == "FactSet":
                for fact in element["facts"]:
                    fact["value"] = _shorten(fact["value"], limit // 3)
        card["fallbackText"] = _shorten(card["fallbackText"], limit)
    return card
