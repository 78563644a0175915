"""Escalation: from any point of a conversation, hand the case to the helpdesk admins."""

from __future__ import annotations

import logging
from typing import Any

from dialogs import sender_help, triage
from dialogs.answers import Option, match_exact
from dialogs.desk import TicketRequest
from dialogs.replies import Choice, Question, Reply, Text, TicketNotice
from dialogs.state import DialogState
from dialogs.turn import Turn
from knowledge.kb import KnowledgeBase

log = logging.getLogger(__name__)

_MAX_NOTE = 2000  # characters of the user's note kept on the ticket
_MAX_ABOUT = 300  # characters of "what is it about" kept as the ticket's subject
_PATH_SLOTS = ("role", "recipient_type", "method", "centre")
_SHORT_REPLY_WORDS = 6  # a longer answer to "anything to add?" is a note, whatever it says
_SURE = 0.6


def start(turn: Turn, came_from: str | None = None) -> None:
    """Confirm, and ask for an optional note for the admins. ``came_from``: the question whose
    answer was "escalate", to go back to if they cancel."""
    if turn.context.desk is None:
        turn.say("escalate_unavailable")
        return
    state = turn.state
    question = came_from or state.pending
    if _nothing_known(turn) and question != "escalate_about":
        # Nothing in progress: ask what it is about, so the ticket says something.
        if question is not None:
            state.resume = {"flow": state.flow or "", "pending": question}
        state.flow = "escalation"
        turn.ask("escalate_about", turn.text("escalate_ask_about"))
        return
    if question not in (None, "escalate_note", "escalate_about"):
        # Where to come back to if they cancel, or the ticket cannot be opened.
        state.resume = {"flow": state.flow or "", "pending": question or ""}
    state.flow = "escalation"
    if can_ask_fix(turn):
        text = turn.text("escalate_ask_note_fix", recipient=turn.recipient_label)
    else:
        text = turn.text("escalate_ask_note")
    turn.ask("escalate_note", text, note_options(turn))


def can_ask_fix(turn: Turn) -> bool:
    """Whether the person may ask the helpdesk to make the change for them: the recipient is
    in one of our own domains, the bounce is 5.7.12 or one of its family (whose fix is to
    let outside senders in), and they are not an email admin (an admin has the steps, and
    makes the change themselves)."""
    if turn.context.desk is None or turn.state.slots.get("role") == "admin":
        return False
    domain = sender_help.recipient_domain(turn)
    status = turn.fact("status")
    if not domain or domain not in turn.context.org_domains or not status:
        return False
    entry = turn.knowledge.code(status, turn.fact("resolver"), turn.fact("diagnostic") or "")
    return getattr(entry, "fix", "") == "same"


def note_options(turn: Turn) -> tuple[Option, ...]:
    """The choices beside the note: "No note", "Ask the helpdesk to change it" (when they may
    ask for it) and "Don't open a ticket"."""
    options = turn.choice_options("escalate_note")
    if not can_ask_fix(turn):
        return options
    return (options[0], *turn.choice_options("ask_fix"), *options[1:])


def _nothing_known(turn: Turn) -> bool:
    state = turn.state
    return (
        not state.bounce
        and not turn.recipients
        and not state.slots.get("about")
        and not ({"recipient_type", "type_family"} & state.slots.keys())
    )


def take_about(turn: Turn, text: str) -> None:
    """The answer to "what is it about?": a bounce, an address, or a sentence; then the note."""
    bounce = turn.intent.bounce
    if bounce is not None and bounce.is_bounce:
        turn.state.bounce = triage.kept_facts(bounce)
    else:
        reading = turn.reading
        address = reading.value("recipient") if reading is not None else None
        if address and "@" in address and "." in address.rsplit("@", 1)[1]:
            turn.state.slots["recipient"] = address
        turn.state.slots["about"] = " ".join(text.split())[:_MAX_ABOUT]
    start(turn)


async def take_note(turn: Turn, text: str) -> None:
    """The answer to "anything to add?": a note, "no note", or "cancel"; then open the ticket."""
    # Only an exact choice counts: a note may well say "don't" or "stop" in passing.
    choice = match_exact(text, note_options(turn)) if text else None
    if turn.message.value and turn.message.value.get("slot") == "escalate_note":
        choice = str(turn.message.value.get("answer"))
    reading = turn.reading
    if choice is None and reading is not None and len(text.split()) <= _SHORT_REPLY_WORDS:
        # "nah nothing to add", "no thanks just send it": no note; "forget it": no ticket.
        if reading.intent == "deny" and reading.confidence >= _SURE:
            choice = "no_note"
        elif reading.intent == "cancel" and reading.confidence >= _SURE:
            choice = "cancel"
    if choice == "cancel":
        turn.say("escalate_cancelled")
        resume(turn)
        return
    if choice == "ask_fix" and can_ask_fix(turn):
        await open_ticket(turn, None, fix=True)
        return
    note = None if choice in ("no_note", "ask_fix") or not text.strip() else text.strip()
    await open_ticket(turn, note[:_MAX_NOTE] if note else None)


async def open_ticket(turn: Turn, note: str | None, *, fix: bool = False) -> None:
    """Open (or join) the ticket through the desk and tell the user which one. ``fix``: the
    ticket asks the admins to let outside senders reach the recipient (method 1: a sender
    cannot judge whom to list), which an admin approves and the bot applies."""
    desk = turn.context.desk
    if desk is None:
        turn.say("escalate_unavailable")
        return
    bounce = dict(turn.state.bounce or {})
    if turn.state.slots.get("about"):
        bounce["about"] = turn.state.slots["about"]
    if not bounce.get("recipients") and turn.recipients:
        bounce["recipients"] = list(turn.recipients)
    recipient, status = turn.recipient, turn.fact("status")
    path = {k: v for k, v in turn.state.slots.items() if k in _PATH_SLOTS}
    if fix and recipient:
        path |= {"fix": "allow_all", "fix_recipient": recipient}
    request = TicketRequest(
        note=note,
        bounce=bounce,
        path=path,
        dedupe_key=f"{recipient.lower()}|{status}" if recipient and status else None,
    )
    try:
        receipt = await desk.open_ticket(turn.message, request)
    except Exception:  # the desk's failure must not lose the conversation
        log.exception("opening a ticket failed")
        turn.say("escalate_failed")
        resume(turn)
        return
    key = "escalate_opened" if receipt.created else "escalate_joined"
    if "fix" in path:
        key = "escalate_fix_opened" if receipt.created else "escalate_fix_joined"
    said = turn.text(key, ticket=receipt.ticket_id, recipient=recipient or "")
    turn.replies.append(TicketNotice(receipt.ticket_id, said))
    turn.escalated = True
    turn.state.flow, turn.state.pending, turn.state.resume = "done", None, {}


def resume(turn: Turn) -> None:
    """Go back to where the conversation was before "escalate" (its question is asked again)."""
    state = turn.state
    state.flow = state.resume.get("flow") or "done"
    state.pending = state.resume.get("pending") or None
    state.resume = {}


def ask_if_fixed(
    state: dict[str, Any] | None, ticket_id: str, admin: str, note: str, knowledge: KnowledgeBase
) -> tuple[dict[str, Any], tuple[Reply, ...]]:
    """A ticket was resolved: the requester's new state and the news with "did that fix it?".

    Pure, like the flows: ``bot/`` saves the state into the requester's conversation and sends
    the replies there, so a typed "no" (or the button) reopens the ticket.
    """
    words = knowledge.conversation
    dialog = DialogState.from_json(state)
    dialog.slots["ticket"] = ticket_id
    dialog.pending, dialog.misses = "ticket_fixed", 0
    choices = words.choices["ticket_fixed"]
    dialog.offered = [choice.value for choice in choices]
    news = Text(words.text("ticket_resolved", ticket=ticket_id, admin=admin, text=note))
    question = Question(
        words.text("ticket_ask_fixed"),
        "ticket_fixed",
        tuple(Choice(choice.value, choice.label) for choice in choices),
    )
    return dialog.to_json(), (news, question)


async def ticket_fixed(turn: Turn, answer: str) -> None:
    """The requester's answer to "did that fix it?" after a resolution: "no" reopens."""
    ticket_id = turn.state.slots.pop("ticket", "")
    if answer == "yes":
        turn.say("ticket_fixed_yes")
        return
    desk = turn.context.desk
    reopened = False
    if desk is not None and ticket_id:
        try:
            reopened = await desk.reopen_ticket(turn.message, ticket_id)
        except Exception:  # the desk's failure must not lose the conversation
            log.exception("reopening a ticket failed")
    turn.say("ticket_reopened" if reopened else "ticket_reopen_failed", ticket=ticket_id)
