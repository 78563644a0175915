"""Escalation: from any point of a conversation, hand the case to the helpdesk admins."""

from __future__ import annotations

import logging
from typing import Any

from dialogs import triage
from dialogs.answers import match_exact
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
    turn.ask("escalate_note", turn.text("escalate_ask_note"), turn.choice_options("escalate_note"))


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
    choice = match_exact(text, turn.choice_options("escalate_note")) if text else None
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
    note = None if choice == "no_note" or not text.strip() else text.strip()[:_MAX_NOTE]
    await open_ticket(turn, note)


async def open_ticket(turn: Turn, note: str | None) -> None:
    """Open (or join) the ticket through the desk and tell the user which one."""
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
    request = TicketRequest(
        note=note,
        bounce=bounce,
        path={k: v for k, v in turn.state.slots.items() if k in _PATH_SLOTS},
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
    turn.replies.append(TicketNotice(receipt.ticket_id, turn.text(key, ticket=receipt.ticket_id)))
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
