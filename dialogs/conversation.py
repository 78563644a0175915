"""The conversation engine: one user turn in, the new state and the replies out.

Interruptions (cancel, start over, help, escalate, a new bounce) are caught here, in one place,
before any question's answer is read; then the pending question gets its answer, or a polite
re-ask; then a fresh message starts a flow. The flows live in triage, admin_fix, sender_help and
escalation; none of them does I/O (the ticket desk is a protocol that ``bot/`` implements).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dialogs import admin_fix, escalation, sender_help, triage
from dialogs.answers import Option, find_mention, is_number, match_answer
from dialogs.intent import IntentName, recognise
from dialogs.messages import Message
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
        intent=recognise(message, context.knowledge),
        context=context,
    )
    await _respond(turn)
    return TurnResult(
        state=turn.state.to_json(),
        profile=turn.profile,
        replies=tuple(turn.replies),
        intent=turn.intent.name,
        finished=turn.finished,
        escalated=turn.escalated,
    )


def error_reply(context: DialogContext) -> Reply:
    """What to say when a turn failed on our side (the state is left as it was)."""
    return Text(context.knowledge.conversation.text("turn_error"))


# ---- one turn ---------------------------------------------------------------------------------


async def _respond(turn: Turn) -> None:
    intent = turn.intent
    if intent.rejected:
        turn.say("file_refused", reason=intent.rejected)
        ask_again(turn)
        return
    clicked = _clicked(turn)
    if clicked is not None:
        slot, answer = clicked
        await _answer(turn, slot, answer)
        return
    interruption = _INTERRUPTIONS.get(intent.name)
    if interruption is not None and turn.state.pending != "escalate_note":
        # (a note for the admins may say "restart" or "stop" without meaning it to the bot)
        await interruption(turn)
        return
    if turn.state.pending is not None:
        await _pending_answer(turn)
        return
    _fresh(turn)


def _clicked(turn: Turn) -> tuple[str, str] | None:
    """The button pressed, if the payload names a real choice (forged or garbled ones: None)."""
    value = turn.message.value or {}
    slot, answer = value.get("slot"), value.get("answer")
    if not (isinstance(slot, str) and isinstance(answer, str) and slot in _SLOTS):
        return None
    spec = _SLOTS[slot]
    if not spec.free_text and answer not in {option.value for option in spec.options(turn)}:
        return None
    return slot, answer


# ---- interruptions ----------------------------------------------------------------------------


async def _cancel(turn: Turn) -> None:
    if turn.state.flow in (None, "done") and turn.state.pending is None:
        turn.say("nothing_to_cancel")
    else:
        turn.say("cancelled")
    turn.state.reset()


async def _start_over(turn: Turn) -> None:
    turn.state.reset(keep_role=False)
    turn.profile.pop("role", None)
    turn.say("started_over")
    turn.replies.append(Text(turn.knowledge.help_text.greeting))


async def _help(turn: Turn) -> None:
    turn.replies.append(Text(turn.knowledge.help_text.help))
    ask_again(turn)


async def _escalate(turn: Turn) -> None:
    escalation.start(turn)


async def _my_tickets(turn: Turn) -> None:
    desk = turn.context.desk
    if desk is None:
        turn.say("escalate_unavailable")
        return
    tickets = await desk.my_tickets(turn.message)
    if not tickets:
        turn.say("my_tickets_none")
    else:
        lines = [turn.text("my_tickets_heading")]
        lines += [
            turn.text(
                "my_ticket_line",
                ticket=t.ticket_id,
                status=t.status,
                code=t.code or "?",
                recipient=t.recipient or "?",
            )
            for t in tickets
        ]
        turn.replies.append(Text("\n".join(lines)))
    ask_again(turn)  # the question they were on, if any


async def _new_bounce(turn: Turn) -> None:
    if turn.state.flow not in (None, "done"):
        turn.say("new_bounce")
    triage.start(turn)


async def _other_code(turn: Turn) -> None:
    bounce = turn.intent.bounce
    status = bounce.status if bounce else None
    entry = (
        turn.knowledge.code(status, bounce.resolver, bounce.diagnostic or "")
        if (bounce and status)
        else None
    )
    if entry is not None and hasattr(entry, "explanation"):
        turn.say(
            "other_code", status=status or "", title=entry.title, explanation=entry.explanation
        )
    else:
        turn.say("other_code_unknown", status=status or "?")
    turn.state.reset()


_INTERRUPTIONS: dict[IntentName, Callable[[Turn], Awaitable[None]]] = {
    IntentName.CANCEL: _cancel,
    IntentName.START_OVER: _start_over,
    IntentName.HELP: _help,
    IntentName.ESCALATE: _escalate,
    IntentName.MY_TICKETS: _my_tickets,
    IntentName.BOUNCE_5712: _new_bounce,
    IntentName.BOUNCE_OTHER: _other_code,
}


# ---- answers to the pending question ----------------------------------------------------------


@dataclass(frozen=True)
class _Slot:
    """A question: the options its answer is matched against, and what an answer does."""

    options: Callable[[Turn], tuple[Option, ...]]
    accept: Callable[[Turn, str], Awaitable[None]]
    ask: Callable[[Turn], None]
    free_text: bool = False  # any text is an answer (an address, a note)
    # Whether a choice that was not shown may be named anyway ("security group" when the
    # question grouped it under "Distribution group or mail-enabled security group").
    allowed: Callable[[Turn, str], bool] = lambda turn, value: False
    # For free text: whether the text answers at all (an address, or "don't know").
    valid: Callable[[Turn, str], bool] = lambda turn, text: True


def _set_slot(name: str) -> Callable[[Turn, str], Awaitable[None]]:
    async def accept(turn: Turn, answer: str) -> None:
        if name == "role":
            triage.set_role(turn, answer)
        else:
            turn.state.slots[name] = answer
        triage.advance(turn)

    return accept


async def _accept_recipient(turn: Turn, text: str) -> None:
    sender_help.take_recipient(turn, text)
    triage.advance(turn)


async def _accept_fixed(turn: Turn, answer: str) -> None:
    if not {"recipient_type", "method", "centre"} <= turn.state.slots.keys():
        turn.say("fallback")  # a click on an old card after the conversation moved on
        return
    if admin_fix.after_fixed(turn, answer):
        escalation.start(turn, came_from="fixed")


async def _accept_after_failure(turn: Turn, answer: str) -> None:
    if answer == "escalate":
        escalation.start(turn, came_from="after_failure")
    elif answer == "start_over":
        await _start_over(turn)
    elif {"recipient_type", "method"} <= turn.state.slots.keys():
        admin_fix.switch_method(turn)
    else:
        turn.say("fallback")


async def _accept_own_domain(turn: Turn, answer: str) -> None:
    if answer == "escalate":
        escalation.start(turn, came_from="sender_own_domain")
    else:
        turn.say("escalate_cancelled")
        turn.state.flow, turn.state.pending = "done", None


async def _accept_note(turn: Turn, text: str) -> None:
    await escalation.take_note(turn, text)
    ask_again(turn)  # cancelled or failed: back to the question they were on, if any


def _ask_fixed(turn: Turn) -> None:
    turn.ask("fixed", turn.text("ask_fixed"), turn.choice_options("fixed"))


def _ask_after_failure(turn: Turn) -> None:
    turn.ask("after_failure", turn.text("fixed_no"), turn.choice_options("after_failure"))


_SLOTS: dict[str, _Slot] = {
    "role": _Slot(triage.role_options, _set_slot("role"), triage.advance),
    "recipient": _Slot(
        lambda turn: (),
        _accept_recipient,
        triage.advance,
        free_text=True,
        valid=lambda turn, text: sender_help.recipient_in(turn, text) is not None,
    ),
    "recipient_type": _Slot(
        admin_fix.type_options,
        _set_slot("recipient_type"),
        triage.advance,
        allowed=admin_fix.type_allowed,
    ),
    "method": _Slot(admin_fix.method_options, _set_slot("method"), triage.advance),
    "centre": _Slot(admin_fix.centre_options, _set_slot("centre"), triage.advance),
    "fixed": _Slot(lambda turn: turn.choice_options("fixed"), _accept_fixed, _ask_fixed),
    "after_failure": _Slot(
        lambda turn: turn.choice_options("after_failure"), _accept_after_failure, _ask_after_failure
    ),
    "sender_own_domain": _Slot(
        lambda turn: turn.choice_options("sender_own_domain"),
        _accept_own_domain,
        sender_help.advance,
    ),
    "ticket_fixed": _Slot(
        lambda turn: turn.choice_options("ticket_fixed"),
        escalation.ticket_fixed,
        lambda turn: turn.ask(
            "ticket_fixed", turn.text("ticket_ask_fixed"), turn.choice_options("ticket_fixed")
        ),
    ),
    "escalate_note": _Slot(
        lambda turn: turn.choice_options("escalate_note"),
        _accept_note,
        escalation.start,
        free_text=True,
    ),
}


async def _answer(turn: Turn, slot: str, answer: str) -> None:
    turn.state.pending, turn.state.misses = None, 0
    await _SLOTS[slot].accept(turn, answer)


async def _pending_answer(turn: Turn) -> None:
    slot_name = turn.state.pending
    assert slot_name is not None  # noqa: S101 - the caller checked
    slot = _SLOTS.get(slot_name)
    if slot is None:  # a state written by an older version of the bot
        turn.state.reset()
        _fresh(turn)
        return
    text = turn.message.text
    if slot.free_text:
        if slot_name == "recipient" and _role_changed(turn):
            turn.state.pending = None
            triage.advance(turn)
            return
        if slot.valid(turn, text):
            await _answer(turn, slot_name, text)
        else:
            await _miss(turn)
        return
    answer = _match(turn, slot, text)
    before = dict(turn.state.slots)
    _fill_from_sentence(turn)
    if answer is not None:
        await _answer(turn, slot_name, answer)
    elif turn.state.slots != before:
        turn.state.pending = None
        triage.advance(turn)
    elif turn.intent.name is IntentName.QUESTION_5712 and turn.intent.bounce is not None:
        triage.start(turn)  # a new question about the code: begin again with it
    elif turn.intent.name in (IntentName.GREETING, IntentName.FEEDBACK):
        _small_talk(turn)
        ask_again(turn)
    else:
        await _miss(turn)


def _match(turn: Turn, slot: _Slot, text: str) -> str | None:
    """The choice an answer picks: among those shown first (a number counts only there)."""
    every = slot.options(turn)
    shown = [option for option in every if option.value in turn.state.offered]
    if shown:
        shown.sort(key=lambda option: turn.state.offered.index(option.value))
    answer = match_answer(text, shown or every)
    if answer is None and shown and not is_number(text):
        other = match_answer(text, every)
        if other is not None and slot.allowed(turn, other):
            answer = other
    return answer


def _role_changed(turn: Turn) -> bool:
    """ "I'm the admin" in answer to a sender's question: switch paths."""
    role = find_mention(turn.message.text, triage.role_options(turn))
    if role is None or role == turn.state.slots.get("role"):
        return False
    triage.set_role(turn, role)
    return True


def _fill_from_sentence(turn: Turn) -> None:
    """Answers given in passing ("shared mailbox, PowerShell") while another question waits."""
    text = turn.message.text
    _role_changed(turn)
    admin_fix.fill_from_sentence(turn, text)


async def _miss(turn: Turn) -> None:
    turn.state.misses += 1
    turn.say("reask" if turn.state.misses == 1 else "reask_again")
    misses = turn.state.misses
    ask_again(turn)
    turn.state.misses = misses


def ask_again(turn: Turn) -> None:
    """Repeat the pending question, if there is one."""
    pending = turn.state.pending
    if pending is None or pending not in _SLOTS:
        return
    turn.state.pending = None
    misses = turn.state.misses
    _SLOTS[pending].ask(turn)
    turn.state.misses = misses


# ---- a message with nothing pending -----------------------------------------------------------


def _fresh(turn: Turn) -> None:
    name = turn.intent.name
    if name is IntentName.QUESTION_5712:
        triage.start(turn)
    elif name in (IntentName.GREETING, IntentName.FEEDBACK):
        _small_talk(turn)
    else:
        role = find_mention(turn.message.text, triage.role_options(turn))
        if role is not None:
            triage.set_role(turn, role)
        turn.say("fallback")


def _small_talk(turn: Turn) -> None:
    if turn.intent.name is IntentName.GREETING:
        turn.replies.append(Text(turn.knowledge.help_text.greeting))
    elif turn.intent.feedback_positive is False:
        turn.say("feedback_sorry")
    else:
        turn.say("feedback_thanks")
