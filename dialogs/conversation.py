"""The conversation engine: one user turn in, the new state and the replies out.

This room holds the turn's order, in one place: ticket news first; a button pressed, a note
for the admins, or words that name one of the pending question's own choices are answers; then
interruptions (cancel, start over, help, escalate, a new bounce: :mod:`dialogs.interruptions`)
are caught before any other answer is read; then the pending question gets its answer, or a
polite re-ask (:mod:`dialogs.pending`); then a fresh message starts a flow
(:mod:`dialogs.fresh_message`); last, a recipient the admin's path stopped for is looked up in
the organization's directory, and the path goes on. The flows live in triage,
admin_fix, sender_help and escalation; none of them does I/O (the ticket desk and the directory
are protocols that ``bot/`` implements).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dialogs import admin_fix, topics, triage
from dialogs.asking import CONFIRMABLE, ask_again, propose_intent
from dialogs.fresh_message import fresh
from dialogs.intent import TOPIC_OF, Intent, IntentName, recognise
from dialogs.interruptions import (
    BOUNCES,
    INTERRUPTIONS,
    MAYBE,
    SURE,
    SURE_TO_WIPE,
    VERY_SURE,
    WIPES,
    go_back,
)
from dialogs.messages import Message
from dialogs.pending import match, negated, pending_answer
from dialogs.questions import SLOTS, take_answer
from dialogs.reading import Expectation
from dialogs.replies import Reply, Text
from dialogs.state import DialogState
from dialogs.turn import DialogContext, Turn


@dataclass(frozen=True)
class TurnResult:
    """What one turn produced: the state and profile to save, the replies to send."""

    state: dict[str, Any]
    profile: dict[str, Any]
    replies: tuple[Reply, ...]
    intent: IntentName
    finished: bool  # a flow reached its answer (steps, or the sender's note)
    escalated: bool  # a ticket was opened or joined


async def handle_turn(
    state: dict[str, Any] | None,
    profile: dict[str, Any] | None,
    message: Message,
    context: DialogContext,
) -> TurnResult:
    """Run one user turn. ``state`` and ``profile`` are the stored JSON (None for new ones)."""
    turn = Turn(
        state=DialogState.from_json(state),
        profile=dict(profile or {}),
        message=message,
        intent=Intent(IntentName.OTHER),
        context=context,
    )
    turn.intent = recognise(message, context.knowledge, context.understanding, _expecting(turn))
    await _respond(turn)
    await _look_up(turn)
    return TurnResult(
        state=turn.state.to_json(),
        profile=turn.profile,
        replies=tuple(turn.replies),
        intent=turn.intent.name,
        finished=turn.finished,
        escalated=turn.escalated,
    )


def _expecting(turn: Turn) -> Expectation | None:
    """The pending question and the choices it showed, for the language layer."""
    pending = turn.state.pending
    spec = SLOTS.get(pending) if pending else None
    if spec is None or spec.free_text:
        return None
    shown = [o for o in spec.options(turn) if o.value in turn.state.offered]
    return turn.expectation(tuple(shown))


def error_reply(context: DialogContext) -> Reply:
    """What to say when a turn failed on our side (the state is left as it was)."""
    return Text(context.knowledge.conversation.text("turn_error"))


def unavailable_reply(context: DialogContext) -> Reply:
    """What to say when the turn could not be handled because the bot's database did not
    answer (nothing was done: the same message a moment later will work)."""
    return Text(context.knowledge.conversation.text("turn_unavailable"))


# ---- one turn ---------------------------------------------------------------------------------

_MAX_LOOK_UPS = 3  # recipients looked up in one turn (the path goes on after each)


async def _look_up(turn: Turn) -> None:
    """The admin's path stopped for a recipient to look up in the directory (the flows are not
    async): look it up, say what was found, and go on from where the path stopped."""
    for _ in range(_MAX_LOOK_UPS):
        if not await admin_fix.look_up(turn):
            return
        triage.advance(turn)


async def _respond(turn: Turn) -> None:
    if turn.state.inbox:  # ticket news that came while they were away (the terminal has no push)
        turn.replies.extend(Text(text) for text in turn.state.inbox)
        turn.state.inbox = []
    intent = turn.intent
    if intent.rejected:
        turn.say("file_refused", reason=intent.rejected)
        ask_again(turn)
        return
    clicked = _clicked(turn)
    if clicked is not None:
        slot, answer = clicked
        await take_answer(turn, slot, answer)
        return
    if turn.state.pending == "escalate_about":
        await pending_answer(turn)  # a bounce, an address or a sentence: all are answers
        return
    if turn.state.pending == "escalate_note" and intent.name not in BOUNCES:
        # A note for the admins may say "restart" or "stop" without meaning it to the bot.
        await pending_answer(turn)
        return
    if intent.name not in BOUNCES and _answers_pending(turn):
        await pending_answer(turn)  # a choice of the question asked ("try the other method")
        return
    interruption = INTERRUPTIONS.get(intent.name)
    facts_said = turn.reading is not None and bool(turn.reading.slots)
    sure = SURE_TO_WIPE if intent.name in WIPES else SURE
    if intent.name in WIPES and facts_said and intent.confidence < VERY_SURE:
        interruption = None  # "eac new" is a fact, not a reason to forget them all
    elif interruption is not None and (intent.confidence >= sure or intent.name in BOUNCES):
        await interruption(turn)
        return
    if intent.name in CONFIRMABLE and MAYBE <= intent.confidence < sure and not facts_said:
        propose_intent(turn, intent.name)  # "Do you want to start over?", rather than guess
        return
    if intent.name in TOPIC_OF and intent.confidence >= SURE:
        topics.answer(turn, TOPIC_OF[intent.name])
        ask_again(turn)
        return
    if intent.name is IntentName.GO_BACK and intent.confidence >= SURE:
        go_back(turn)
        return
    if turn.state.pending is not None:
        await pending_answer(turn)
        return
    fresh(turn)


def _answers_pending(turn: Turn) -> bool:
    """Whether the words name one of the pending question's own choices."""
    pending = turn.state.pending
    spec = SLOTS.get(pending) if pending else None
    if spec is None or spec.free_text or turn.reading is None:
        return False
    answer = match(turn, spec, turn.message.text)
    return answer is not None and not negated(turn, pending or "", answer)


def _clicked(turn: Turn) -> tuple[str, str] | None:
    """The button pressed, if the payload names a real choice (forged or garbled ones: None)."""
    value = turn.message.value or {}
    slot, answer = value.get("slot"), value.get("answer")
    if not (isinstance(slot, str) and isinstance(answer, str) and slot in SLOTS):
        return None
    spec = SLOTS[slot]
    offered_escalation = answer == "escalate" and "escalate" in turn.state.offered
    if (
        not spec.free_text
        and answer not in {option.value for option in spec.options(turn)}
        and not offered_escalation
    ):
        return None
    return slot, answer
