"""Replies as Slack Block Kit: plain dicts, ready for ``chat.postMessage`` (no Slack library here).

A turn's replies become as few messages as Slack's limits allow (50 blocks a message, 3000
characters a section); each message has a top-level ``text`` for notifications and clients that
show no blocks. A question's buttons carry ``{"slot": ..., "answer": ...}`` as their value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.tickets.card import TicketCard
from bot.tickets.protocol import Action
from dialogs.replies import (
    Fact,
    Question,
    Reply,
    SenderAnswer,
    StepsAnswer,
)
from knowledge.kb import ConversationText

Block = dict[str, Any]

ANSWER_ACTION: Final = "ndr_answer"
"""Every answer button's action id starts with this (then ``:<n>``, unique in its block)."""

MAX_BLOCKS: Final = 50  # per message
MAX_HOME_BLOCKS: Final = 100  # per Home tab view
MAX_SECTION_TEXT: Final = 3000
MAX_HEADER_TEXT: Final = 150
MAX_BUTTON_TEXT: Final = 75
MAX_BUTTON_VALUE: Final = 2000
MAX_BUTTONS: Final = 25  # per actions block
MAX_FIELDS: Final = 10  # per section
MAX_FIELD_TEXT: Final = 2000
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
MAX_CODE_TEXT: Final = 3000  # per preformatted block; longer code is cut into several
MAX_FALLBACK_TEXT: Final = 3000  # Slack takes 40,000; notifications show far less
MAX_HOME_TICKETS: Final = 20

_BOLD = re.compile(r"\*\*(.+?)\*\*")


@dataclass(frozen=True)
class SlackMessage:
    """One ``chat.postMessage``: the fallback text and the blocks."""

    text: str
    blocks: tuple[Block, ...]

    def payload(self) -> dict[str, Any]:
        """The message's fields for the Web API."""
        return {"text": self.text, "blocks": list(self.blocks)}


# ---- text -------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Escape the three characters Slack reads as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(text: str) -> str:
    """A reply's text as Slack mrkdwn: escaped, ``**bold**`` turned into ``*bold*``."""
    return _BOLD.sub(lambda match: f"*{match.group(1)}*", escape(text))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _chunks(text: str, limit: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` characters, at line ends where possible."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit)
        if cut <= 0:
            cut = limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    if text or not pieces:
        pieces.append(text)
    return pieces


# ---- blocks -----------------------------------------------------------------------------------


def _sections(text: str) -> list[Block]:
    """One or more mrkdwn sections holding ``text`` (already mrkdwn)."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": piece}}
        for piece in _chunks(text, MAX_SECTION_TEXT)
        if piece.strip()
    ]


def _header(text: str) -> Block:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": _cut(text.replace("**", ""), MAX_HEADER_TEXT)},
    }


def _facts(facts: Sequence[Fact]) -> list[Block]:
    fields = [
        {"type": "mrkdwn", "text": _cut(f"*{escape(f.label)}*\n{escape(f.value)}", MAX_FIELD_TEXT)}
        for f in facts
    ]
    return [
        {"type": "section", "fields": fields[start : start + MAX_FIELDS]}
        for start in range(0, len(fields), MAX_FIELDS)
    ]


def _preformatted(code: str) -> list[Block]:
    """Code to copy (PowerShell, a note) as preformatted rich text: no markup is read in it."""
    return [
        {
            "type": "rich_text",
            "elements": [
                {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": piece}]}
            ],
        }
        for piece in _chunks(code.strip("\n"), MAX_CODE_TEXT)
    ]


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text, 3000)}]}


def _source(label: str, url: str) -> Block:
    return _context(f"{escape(label)}: <{url}>")


def question_blocks(question: Question, number: int = 0) -> list[Block]:
    """The question's text and one button per choice."""
    blocks = _sections(mrkdwn(question.text))
    buttons = []
    for index, choice in enumerate(question.choices):
        value = json.dumps({"slot": question.slot, "answer": choice.value}, separators=(",", ":"))
        if len(value) > MAX_BUTTON_VALUE:
            continue  # cannot happen with the knowledge base's short values
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": _cut(choice.label, MAX_BUTTON_TEXT)},
                "action_id": f"{ANSWER_ACTION}:{index}",
                "value": value,
            }
        )
    for start in range(0, len(buttons), MAX_BUTTONS):
        blocks.append(
            {
                "type": "actions",
                "block_id": f"{ANSWER_ACTION}:{question.slot}:{number}:{start}",
                "elements": buttons[start : start + MAX_BUTTONS],
            }
        )
    return blocks


def steps_blocks(answer: StepsAnswer) -> list[Block]:
    """The admin's answer: title, facts, numbered steps with their code, notes, check, source."""
    blocks: list[Block] = [_header(answer.title), *_sections(mrkdwn(answer.intro))]
    blocks += _facts(answer.facts)
    blocks.append({"type": "divider"})
    for number, step in enumerate(answer.steps, 1):
        lines = [f"*{number}.* {mrkdwn(step.text)}"]
        lines += [f"      • {mrkdwn(sub)}" for sub in step.substeps]
        blocks += _sections("\n".join(lines))
        if step.code:
            blocks += _preformatted(step.code)
    if answer.notes:
        notes = [f"*{escape(answer.notes_label)}*"] + [f"• {mrkdwn(n)}" for n in answer.notes]
        blocks += _sections("\n".join(notes))
    if answer.check:
        blocks += _sections(f"*{escape(answer.check_label)}*")
        blocks += _preformatted(answer.check)
    blocks.append(_source(answer.source_label, answer.source))
    return blocks


def sender_blocks(answer: SenderAnswer, words: ConversationText) -> list[Block]:
    """The sender's answer: who can fix it, what to do, and the note to send their admin."""
    blocks = _sections(f"{mrkdwn(answer.who_can_fix)}\n\n{mrkdwn(answer.what_to_do)}")
    blocks += _facts(answer.facts)
    blocks += _sections(f"*{escape(answer.note_heading)}*")
    subject = answer.note_subject_label
    blocks += _preformatted(f"{subject}: {answer.note_subject}\n\n{answer.note_body}")
    blocks.append(_source(answer.source_label, answer.source))
    return blocks


def reply_blocks(reply: Reply, words: ConversationText, number: int = 0) -> list[Block]:
    """One reply's blocks (possibly more than one message holds)."""
    if isinstance(reply, Question):
        return question_blocks(reply, number)
    if isinstance(reply, StepsAnswer):
        return steps_blocks(reply)
    if isinstance(reply, SenderAnswer):
        return sender_blocks(reply, words)
    return _sections(mrkdwn(reply.text))  # Text, and TicketNotice (its text names the ticket)


# ---- messages ---------------------------------------------------------------------------------


def render_replies(replies: Iterable[Reply], words: ConversationText) -> list[SlackMessage]:
    """A turn's replies as Slack messages: together while they fit, split where they do not."""
    blocks: list[Block] = []
    for number, reply in enumerate(replies):
        blocks += reply_blocks(reply, words, number)
    messages = []
    for start in range(0, len(blocks), MAX_BLOCKS):
        part = tuple(blocks[start : start + MAX_BLOCKS])
        messages.append(SlackMessage(fallback_text(part), part))
    return messages


def fallback_text(blocks: Sequence[Block]) -> str:
    """The plain text of some blocks: the message's ``text`` (also what notifications show)."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"*{escape(block['text']['text'])}*")
        elif kind == "section":
            if "text" in block:
                lines.append(block["text"]["text"])
            lines += [field["text"].replace("\n", ": ", 1) for field in block.get("fields", ())]
        elif kind == "actions":
            lines += [
                f"{number}. {element['text']['text']}"
                for number, element in enumerate(block["elements"], 1)
            ]
        elif kind == "context":
            lines += [element["text"] for element in block["elements"]]
        elif kind == "rich_text":
            for element in block["elements"]:
                lines += [f"```{escape(part['text'])}```" for part in element["elements"]]
    return _cut("\n".join(lines), MAX_FALLBACK_TEXT) or " "


def answered_blocks(
    blocks: Sequence[Block], block_id: str, label: str, user_id: str, words: ConversationText
) -> list[Block] | None:
    """The blocks of a question whose button was clicked, its buttons replaced by the choice;
    None when the clicked buttons are no longer there."""
    replaced = False
    out: list[Block] = []
    for block in blocks:
        if block.get("type") == "actions" and block.get("block_id") == block_id:
            chose = words.text("clicked_choice", user=f"<@{user_id}>", label=f"*{escape(label)}*")
            out.append(_context(chose))
            replaced = True
        else:
            out.append(block)
    return out if replaced else None


# ---- App Home ---------------------------------------------------------------------------------


def home_view(
    help_text: str, tickets: Sequence[TicketCard], words: ConversationText
) -> dict[str, Any]:
    """The App Home tab: how to use the bot, and the user's open tickets."""
    blocks: list[Block] = [_header(words.text("home_title"))]
    blocks += _sections(words.text("home_how_to"))
    blocks += _sections(mrkdwn(help_text))
    blocks += [{"type": "divider"}, _header(words.text("home_tickets_title"))]
    if not tickets:
        blocks += _sections(words.text("home_no_tickets"))
    for ticket in tickets[:MAX_HOME_TICKETS]:
        blocks += _sections(_ticket_line(ticket))
    if len(tickets) > MAX_HOME_TICKETS:
        more = str(len(tickets) - MAX_HOME_TICKETS)
        blocks.append(_context(words.text("home_more_tickets", count=more)))
    return {"type": "home", "blocks": blocks[:MAX_HOME_BLOCKS]}


def _ticket_line(ticket: TicketCard) -> str:
    facts = [
        escape(ticket.code) if ticket.code else "",
        escape(ticket.recipients[0]) if ticket.recipients else "",
        f"{ticket.created_at:%Y-%m-%d %H:%M} UTC",
        escape(ticket.assignee_name or ""),
    ]
    return f"*{escape(ticket.id)}* ({escape(ticket.status)}): " + " · ".join(f for f in facts if f)


# ---- tickets: the card in the admins' channel, and its modals ---------------------------------

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
    """What a card's buttons carry: the ticket and the version the card shows."""
    return json.dumps({"ticket": ticket.id, "version": ticket.version}, separators=(",", ":"))


def parse_ticket_value(value: object) -> tuple[str, int | None] | None:
    """``(ticket id, version)`` from a card button's value; None if it is not one of ours."""
    try:
        data = json.loads(str(value or ""))
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("ticket"), str):
        return None
    version = data.get("version")
    return data["ticket"], version if isinstance(version, int) else None


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
        {"type": "mrkdwn", "text": _cut(f"*{escape(label)}*\n{escape(value)}", MAX_FIELD_TEXT)}
        for label, value in facts
        if value
    ]
    header = words.text("slack_ticket_header", ticket=ticket.id, status=status)
    blocks: list[Block] = [_header(header), {"type": "section", "fields": fields[:MAX_FIELDS]}]
    if ticket.note:
        quoted = "\n".join(f">{line}" for line in escape(ticket.note).splitlines())
        label = escape(words.text("slack_ticket_note"))
        blocks.append(_section(_cut(f"*{label}*\n{quoted}", MAX_SECTION_TEXT)))
    times = words.text(
        "slack_ticket_times",
        opened=f"{ticket.created_at:%Y-%m-%d %H:%M}",
        updated=f"{ticket.updated_at:%Y-%m-%d %H:%M}",
    )
    blocks.append(_context(escape(times)))
    buttons = _ticket_buttons(ticket, words)
    if buttons:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"{TICKET_ACTION}:{ticket.id}:{ticket.version}",
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
    return SlackMessage(_cut(escape(text), MAX_FALLBACK_TEXT), tuple(blocks))


def _status_label(status: str, words: ConversationText) -> str:
    return words.text(f"slack_ticket_status_{status}") if status in _STATUSES else status


def _ticket_buttons(ticket: TicketCard, words: ConversationText) -> list[Block]:
    value = ticket_value(ticket)
    buttons = []
    for action in ticket.actions:
        label = words.text(f"slack_ticket_{action.value}")
        button: Block = {
            "type": "button",
            "text": {"type": "plain_text", "text": _cut(label, MAX_BUTTON_TEXT)},
            "action_id": f"{TICKET_ACTION}:{action.value}",
            "value": value,
        }
        if action is Action.ASSIGN_ME:  # the one most clicks want
            button["style"] = "primary"
        buttons.append(button)
    return buttons


def ticket_modal(
    action: str, ticket_id: str, version: int | None, channel: str, words: ConversationText
) -> dict[str, Any]:
    """The modal of a card's Assign to someone (a user picker), Reply (a message for the
    requester) or Resolve (the resolution note); what it is about rides in private_metadata."""
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
    metadata = {"action": action, "ticket": ticket_id, "version": version, "channel": channel}
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
    ticket_id: str
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
    if not isinstance(metadata.get("ticket"), str):
        return None
    values = ((view.get("state") or {}).get("values") or {}).get(TICKET_INPUT_BLOCK) or {}
    field = values.get(TICKET_INPUT_ACTION) or {}
    raw = field.get("selected_user") if metadata["action"] == "assign" else field.get("value")
    version = metadata.get("version")
    return ModalInput(
        action=str(metadata["action"]),
        ticket_id=metadata["ticket"],
        version=version if isinstance(version, int) else None,
        channel=str(metadata.get("channel") or ""),
        value=str(raw or "").strip(),
    )


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _plain(text: str, limit: int = MAX_MODAL_TITLE) -> Block:
    return {"type": "plain_text", "text": _cut(text, limit)}
