"""The ticket card in the admins' channel and its modals, as Slack Block Kit (plain dicts).

Drawn from ``bot.tickets.TicketCard`` (the one view of a ticket; the store is never seen here):
who asked, the bounce's facts, the path, the note, who has it, and the buttons its status allows;
the modals of Assign to someone, Reply and Resolve, and what a submitted one asks for. Its own
room because the cards are the admins' side, drawn with the replies' pieces (``blocks.py``).

What Slack sends back (a button's value, its block id, a modal's private_metadata) names the
ticket by its public reference (``TicketCard.ref``), never by its number: numbers are sequential
and anyone could write one into a payload. People still see the number in the texts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from bot.channels.slack.blocks import (
    MAX_BUTTON_TEXT,
    MAX_FALLBACK_TEXT,
    MAX_FIELD_TEXT,
    MAX_FIELDS,
    MAX_SECTION_TEXT,
    Block,
    SlackMessage,
    context_block,
    cut,
    escape,
    header_block,
)
from bot.tickets.card import TicketCard
from bot.tickets.protocol import Action
from knowledge.kb import ConversationText

#: The texts of conversation.yaml this module looks up (the ticket card's and the modals' words);
#: checked when the bot starts.
TEXTS: Final = frozenset(
    {
        "slack_ticket_header",
        "slack_ticket_status_open",
        "slack_ticket_status_assigned",
        "slack_ticket_status_resolved",
        "slack_ticket_fallback",
        "slack_ticket_requesters",
        "slack_ticket_assignee",
        "slack_ticket_nobody",
        "slack_ticket_path",
        "slack_ticket_note",
        "slack_ticket_unknown",
        "slack_ticket_times",
        "slack_ticket_assign_me",
        "slack_ticket_assign",
        "slack_ticket_reply",
        "slack_ticket_resolve",
        "slack_ticket_reopen",
        "slack_ticket_apply_fix",
        "slack_modal_assign_title",
        "slack_modal_assign_label",
        "slack_modal_assign_submit",
        "slack_modal_reply_title",
        "slack_modal_reply_label",
        "slack_modal_reply_hint",
        "slack_modal_reply_submit",
        "slack_modal_resolve_title",
        "slack_modal_resolve_label",
        "slack_modal_resolve_hint",
        "slack_modal_resolve_submit",
        "slack_modal_cancel",
    }
)

TICKET_ACTION: Final = "ticket"
"""A ticket card's buttons have action ids ``ticket:<action>`` (``bot.tickets.Action`` values)."""
TICKET_MODAL: Final = "ticket_modal"
"""The callback id of the modals the card's buttons open (assign, reply, resolve)."""
TICKET_INPUT_BLOCK: Final = "ticket_input"
TICKET_INPUT_ACTION: Final = "value"
MODAL_ACTIONS: Final = ("assign", "reply", "resolve")
"""The card's actions that ask for something first (a modal); the others act at once."""

MAX_MODAL_TITLE: Final = 24
MAX_MODAL_INPUT: Final = 3000
_STATUSES: Final = ("open", "assigned", "resolved")


def ticket_value(ticket: TicketCard) -> str:
    """What a card's buttons carry: the ticket's public reference and the version the card
    shows."""
    return json.dumps({"ref": ticket.ref, "version": ticket.version}, separators=(",", ":"))


def parse_ticket_value(value: object) -> tuple[str, int | None] | None:
    """``(ticket ref, version)`` from a card button's value; None if it is not one of ours
    (an older card's ``{"ticket": "NDR-1001"}`` is not: a number never names a ticket here)."""
    try:
        data = json.loads(str(value or ""))
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("ref"), str):
        return None
    version = data.get("version")
    return data["ref"], version if isinstance(version, int) else None


def ticket_card(ticket: TicketCard, words: ConversationText) -> SlackMessage:
    """The ticket's card: who asked, the bounce's facts, the path, the note, who has it, and
    the buttons that make sense in its status. Plain names only: a card mentions nobody."""
    status = _status_label(ticket.status, words)
    unknown = words.text("slack_ticket_unknown")
    names = ", ".join(dict.fromkeys(ticket.requesters))
    assignee = ticket.assignee_name or words.text("slack_ticket_nobody")
    recipients = ticket.recipients
    code = ticket.full_code
    facts = [
        (words.text("slack_ticket_requesters"), names),
        (words.text("slack_ticket_assignee"), assignee),
        (words.text("facts_about"), ticket.about or ""),
        (words.text("facts_recipient"), ", ".join(recipients)),
        (words.text("facts_sender"), ticket.sender or ""),
        (words.text("facts_status"), code),
        (words.text("facts_subject"), ticket.subject or ""),
        (words.text("facts_date"), ticket.date or ""),
        (words.text("slack_ticket_path"), ticket.path or ""),
    ]
    fields = [
        {"type": "mrkdwn", "text": cut(f"*{escape(label)}*\n{escape(value)}", MAX_FIELD_TEXT)}
        for label, value in facts
        if value
    ]
    header = words.text("slack_ticket_header", ticket=ticket.id, status=status)
    blocks: list[Block] = [header_block(header), {"type": "section", "fields": fields[:MAX_FIELDS]}]
    if ticket.change:  # a change the requester asked for: what it is, how far it got
        blocks.append(_section(cut(f"*{escape(ticket.change)}*", MAX_SECTION_TEXT)))
    if ticket.note:
        quoted = "\n".join(f">{line}" for line in escape(ticket.note).splitlines())
        label = escape(words.text("slack_ticket_note"))
        blocks.append(_section(cut(f"*{label}*\n{quoted}", MAX_SECTION_TEXT)))
    times = words.text(
        "slack_ticket_times",
        opened=f"{ticket.created_at:%Y-%m-%d %H:%M}",
        updated=f"{ticket.updated_at:%Y-%m-%d %H:%M}",
    )
    blocks.append(context_block(escape(times)))
    buttons = _ticket_buttons(ticket, words)
    if buttons:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"{TICKET_ACTION}:{ticket.ref}:{ticket.version}",
                "elements": buttons,
            }
        )
    text = words.text(
        "slack_ticket_fallback",
        ticket=ticket.id,
        status=status,
        requester=ticket.opener,
        code=code or unknown,
        recipient=recipients[0] if recipients else unknown,
    )
    return SlackMessage(cut(escape(text), MAX_FALLBACK_TEXT), tuple(blocks))


def _status_label(status: str, words: ConversationText) -> str:
    return words.text(f"slack_ticket_status_{status}") if status in _STATUSES else status


def _ticket_buttons(ticket: TicketCard, words: ConversationText) -> list[Block]:
    value = ticket_value(ticket)
    buttons = []
    for action in ticket.actions:
        label = words.text(f"slack_ticket_{action.value}")
        button: Block = {
            "type": "button",
            "text": {"type": "plain_text", "text": cut(label, MAX_BUTTON_TEXT)},
            "action_id": f"{TICKET_ACTION}:{action.value}",
            "value": value,
        }
        if action is Action.APPLY_FIX or (
            action is Action.ASSIGN_ME and Action.APPLY_FIX not in ticket.actions
        ):  # the one most clicks want
            button["style"] = "primary"
        buttons.append(button)
    return buttons


def ticket_modal(
    action: str,
    ticket_id: str,
    version: int | None,
    channel: str,
    words: ConversationText,
    *,
    ref: str,
) -> dict[str, Any]:
    """The modal of a card's Assign to someone (a user picker), Reply (a message for the
    requester) or Resolve (the resolution note); what it is about rides in private_metadata
    (the ticket's public reference ``ref``, the version the card showed); its title names the
    ticket as people know it (``ticket_id``)."""
    if action not in MODAL_ACTIONS:
        raise ValueError(f"no modal for {action!r}")
    element: Block
    if action == "assign":
        element = {"type": "users_select", "action_id": TICKET_INPUT_ACTION}
    else:
        element = {
            "type": "plain_text_input",
            "action_id": TICKET_INPUT_ACTION,
            "multiline": True,
            "max_length": MAX_MODAL_INPUT,
        }
    block: Block = {
        "type": "input",
        "block_id": TICKET_INPUT_BLOCK,
        "label": _plain(words.text(f"slack_modal_{action}_label"), 2000),
        "element": element,
    }
    if action != "assign":
        block["hint"] = _plain(words.text(f"slack_modal_{action}_hint"), 2000)
    metadata = {"action": action, "ref": ref, "version": version, "channel": channel}
    return {
        "type": "modal",
        "callback_id": TICKET_MODAL,
        "private_metadata": json.dumps(metadata, separators=(",", ":")),
        "title": _plain(words.text(f"slack_modal_{action}_title", ticket=ticket_id)),
        "submit": _plain(words.text(f"slack_modal_{action}_submit")),
        "close": _plain(words.text("slack_modal_cancel")),
        "blocks": [block],
    }


@dataclass(frozen=True)
class ModalInput:
    """What a submitted ticket modal asks for."""

    action: str
    ref: str  # the ticket's public reference
    version: int | None
    channel: str  # where the card is (for a refusal shown to the admin)
    value: str  # the text typed, or the user picked (an id)


def ticket_modal_input(view: dict[str, Any]) -> ModalInput | None:
    """The submitted modal's request; None if it is not one of ours. ``value`` is stripped, and
    empty when the admin left it blank (a field error to show)."""
    try:
        metadata = json.loads(str(view.get("private_metadata") or ""))
    except ValueError:
        return None
    if not isinstance(metadata, dict) or metadata.get("action") not in MODAL_ACTIONS:
        return None
    if not isinstance(metadata.get("ref"), str):
        return None  # an older modal's ticket number (or a forged one) names no ticket
    values = ((view.get("state") or {}).get("values") or {}).get(TICKET_INPUT_BLOCK) or {}
    field = values.get(TICKET_INPUT_ACTION) or {}
    raw = field.get("selected_user") if metadata["action"] == "assign" else field.get("value")
    version = metadata.get("version")
    return ModalInput(
        action=str(metadata["action"]),
        ref=metadata["ref"],
        version=version if isinstance(version, int) else None,
        channel=str(metadata.get("channel") or ""),
        value=str(raw or "").strip(),
    )


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _plain(text: str, limit: int = MAX_MODAL_TITLE) -> Block:
    return {"type": "plain_text", "text": cut(text, limit)}
