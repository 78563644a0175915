"""The ticket's Adaptive Card in the admins' channel, drawn from a :class:`TicketCard`: the base
view everyone sees (with a ``refresh`` for the admins known) and the admins' view, whose
Universal Actions (Action.Execute, forms for who, a reply, a resolution note) carry
``{ref, version}``: the ticket's public reference (never its number, which anyone could guess)
and the version, so that a click on an out-of-date card is recognised.

Apart from the replies' cards (``cards.py``): it draws a ticket, not a turn's replies, with words
of its own (``teams_ticket_*``), and the tickets' card actions read its inputs back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

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
from bot.tickets.protocol import Action
from knowledge.kb import ConversationText

if TYPE_CHECKING:
    from bot.tickets.card import TicketCard

#: The texts of conversation.yaml this module looks up (the ticket card's words, through
#: :class:`TicketLabels`); checked when the bot starts.
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
        "teams_ticket_apply_fix",
        "teams_ticket_required",
    }
)

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
    ``{ref, version}`` (see ``action_data``)."""
    data = action_data(ticket)
    body: list[Json] = [_ticket_header(ticket, labels)]
    if view.notice:
        notice = text_block(view.notice, weight="Bolder")
        notice["color"] = "Accent"
        body.append(notice)
    body.append({"type": "FactSet", "facts": _ticket_facts(ticket, labels)})
    if ticket.change:  # a change the requester asked for: what it is, how far it got
        body.append(text_block(shorten(ticket.change, _MAX_FACT_CHARS), weight="Bolder"))
    if ticket.note:
        body.append(text_block(labels("note"), weight="Bolder", separator=True))
        note = shorten(ticket.note, _MAX_NOTE_CHARS)
        body.append({"type": "Container", "style": "emphasis", "items": line_blocks(note)})
    if not view.actions:
        body.append(text_block(labels("admins_act"), size="Small", subtle=True, separator=True))
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
        "fallbackText": shorten(_ticket_text(ticket, labels), FALLBACK_CHARS),
        "msteams": {"width": "Full"},
    }
    if view.actions:
        card["actions"] = _ticket_actions(ticket, view, labels, data)
    return _fit_ticket_card(card)


def action_data(ticket: TicketCard) -> Json:
    """What the card's Universal Actions carry: the ticket's public reference (the number is
    sequential, so a payload naming it could be forged for any ticket) and the version shown."""
    return {"ref": ticket.ref, "version": ticket.version}


def notice_card(text: str) -> Json:
    """A card that only says ``text``: what someone who may not see a ticket (or whose card
    names no ticket known) is shown in its place. No refresh, no buttons, nothing of the ticket."""
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "body": [text_block(text)],
        "fallbackText": shorten(text, FALLBACK_CHARS),
    }


def ticket_activity(card: Json, summary: str) -> Json:
    """The message that carries a ticket card (posted, or put in place of the old one)."""
    return {
        "type": "message",
        "summary": shorten(summary, SUMMARY_CHARS),
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
            text_block(_ticket_title(ticket, labels), size="Medium", weight="Bolder"),
            {**text_block(_ticket_status(ticket, labels)), "spacing": "None"},
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
        {"title": labels(f"fact_{name}"), "value": shorten(str(value), _MAX_FACT_CHARS)}
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
        elif action is Action.APPLY_FIX:  # at once, the change the card says above
            return {**execute(labels(verb), verb), "style": "positive"}
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
    if ticket.change:
        lines.append(ticket.change)
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
                element["items"] = [text_block(shorten(text, limit))]
            if element.get("type") == "FactSet":
                for fact in element["facts"]:
                    fact["value"] = shorten(fact["value"], limit // 3)
        card["fallbackText"] = shorten(card["fallbackText"], limit)
    return card


__all__ = [
    "INPUT_ASSIGNEE",
    "INPUT_REPLY",
    "INPUT_RESOLUTION",
    "MAX_ASSIGNEE_CHOICES",
    "MAX_REFRESH_USERS",
    "TEXTS",
    "TICKET_REFRESH_VERB",
    "TicketCardView",
    "TicketLabels",
    "action_data",
    "assignee_value",
    "notice_card",
    "read_assignee",
    "ticket_activity",
    "ticket_card",
    "ticket_summary",
]
