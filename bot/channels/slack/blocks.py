"""Replies and the App Home as Slack Block Kit: plain dicts, ready for ``chat.postMessage`` (no
Slack library here), and the pieces the ticket cards share (``ticket_blocks.py``).

A turn's replies become as few messages as Slack's limits allow (50 blocks a message, 3000
characters a section); each message has a top-level ``text`` for notifications and clients that
show no blocks. A question's buttons carry ``{"slot": ..., "answer": ...}`` as their value.
Its own room because it is pure drawing: what a reply looks like, tested without any Slack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.tickets.card import TicketCard
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


def cut(text: str, limit: int) -> str:
    """``text``, cut to ``limit`` characters with an ellipsis when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _chunks(text: str, limit: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` characters, at line ends where possible."""
    pieces: list[str] = []
    while len(text) > limit:
        end = text.rfind("\n", 0, limit)
        if end <= 0:
            end = text.rfind(" ", 0, limit)
        if end <= 0:
            end = limit
        pieces.append(text[:end])
        text = text[end:].lstrip("\n")
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


def header_block(text: str) -> Block:
    """A header block (plain text: ``**`` dropped, cut to Slack's limit)."""
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": cut(text.replace("**", ""), MAX_HEADER_TEXT)},
    }


def _facts(facts: Sequence[Fact]) -> list[Block]:
    fields = [
        {"type": "mrkdwn", "text": cut(f"*{escape(f.label)}*\n{escape(f.value)}", MAX_FIELD_TEXT)}
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


def context_block(text: str) -> Block:
    """A context line of mrkdwn, cut to Slack's limit."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text, 3000)}]}


def _source(label: str, url: str) -> Block:
    return context_block(f"{escape(label)}: <{url}>")


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
                "text": {"type": "plain_text", "text": cut(choice.label, MAX_BUTTON_TEXT)},
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
    blocks: list[Block] = [header_block(answer.title), *_sections(mrkdwn(answer.intro))]
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
    return cut("\n".join(lines), MAX_FALLBACK_TEXT) or " "


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
            out.append(context_block(chose))
            replaced = True
        else:
            out.append(block)
    return out if replaced else None


# ---- App Home ---------------------------------------------------------------------------------


def home_view(
    help_text: str, tickets: Sequence[TicketCard], words: ConversationText
) -> dict[str, Any]:
    """The App Home tab: how to use the bot, and the user's open tickets."""
    blocks: list[Block] = [header_block(words.text("home_title"))]
    blocks += _sections(words.text("home_how_to"))
    blocks += _sections(mrkdwn(help_text))
    blocks += [{"type": "divider"}, header_block(words.text("home_tickets_title"))]
    if not tickets:
        blocks += _sections(words.text("home_no_tickets"))
    for ticket in tickets[:MAX_HOME_TICKETS]:
        blocks += _sections(_ticket_line(ticket))
    if len(tickets) > MAX_HOME_TICKETS:
        more = str(len(tickets) - MAX_HOME_TICKETS)
        blocks.append(context_block(words.text("home_more_tickets", count=more)))
    return {"type": "home", "blocks": blocks[:MAX_HOME_BLOCKS]}


def _ticket_line(ticket: TicketCard) -> str:
    facts = [
        escape(ticket.code) if ticket.code else "",
        escape(ticket.recipients[0]) if ticket.recipients else "",
        f"{ticket.created_at:%Y-%m-%d %H:%M} UTC",
        escape(ticket.assignee_name or ""),
    ]
    return f"*{escape(ticket.id)}* ({escape(ticket.status)}): " + " · ".join(f for f in facts if f)
