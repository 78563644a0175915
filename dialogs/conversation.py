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

from dialogs import admin_fix, escalation, facts, sender_help, topics, triage
from dialogs.answers import Option, core, find_mention, is_number, match_answer, match_exact
from dialogs.intent import TOPIC_OF, Intent, IntentName, recognise
from dialogs.messages import Message
from dialogs.reading import Expectation, Reading, SlotValue
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
    spec = _SLOTS.get(pending) if pending else None
    if spec is None or spec.free_text:
        return None
    shown = [o for o in spec.options(turn) if o.value in turn.state.offered]
    return turn.expectation(tuple(shown))


def error_reply(context: DialogContext) -> Reply:
    """What to say when a turn failed on our side (the state is left as it was)."""
    return Text(context.knowledge.conversation.text("turn_error"))


# ---- one turn ---------------------------------------------------------------------------------


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
        await _answer(turn, slot, answer)
        return
    if turn.state.pending == "escalate_about":
        await _pending_answer(turn)  # a bounce, an address or a sentence: all are answers
        return
    if turn.state.pending == "escalate_note" and intent.name not in _BOUNCES:
        # A note for the admins may say "restart" or "stop" without meaning it to the bot.
        await _pending_answer(turn)
        return
    if intent.name not in _BOUNCES and _answers_pending(turn):
        await _pending_answer(turn)  # a choice of the question asked ("try the other method")
        return
    interruption = _INTERRUPTIONS.get(intent.name)
    facts_said = turn.reading is not None and bool(turn.reading.slots)
    sure = _SURE_TO_WIPE if intent.name in _WIPES else _SURE
    if intent.name in _WIPES and facts_said and intent.confidence < _VERY_SURE:
        interruption = None  # "eac new" is a fact, not a reason to forget them all
    elif interruption is not None and (intent.confidence >= sure or intent.name in _BOUNCES):
        await interruption(turn)
        return
    if intent.name in _CONFIRMABLE and _MAYBE <= intent.confidence < sure and not facts_said:
        _propose_intent(turn, intent.name)  # "Do you want to start over?", rather than guess
        return
    if intent.name in TOPIC_OF and intent.confidence >= _SURE:
        topics.answer(turn, TOPIC_OF[intent.name])
        ask_again(turn)
        return
    if intent.name is IntentName.GO_BACK and intent.confidence >= _SURE:
        _go_back(turn)
        return
    if turn.state.pending is not None:
        await _pending_answer(turn)
        return
    _fresh(turn)


def _answers_pending(turn: Turn) -> bool:
    """Whether the words name one of the pending question's own choices."""
    pending = turn.state.pending
    spec = _SLOTS.get(pending) if pending else None
    if spec is None or spec.free_text or turn.reading is None:
        return False
    answer = _match(turn, spec, turn.message.text)
    return answer is not None and not _negated(turn, pending or "", answer)


# How sure the language layer must be before a command (cancel, start over) is acted on; between
# _MAYBE and _SURE the bot asks whether that is what the person wants.
_SURE = 0.45
_MAYBE = 0.25
_SURE_TO_WIPE = 0.6  # cancel and start over forget everything: below this, ask first
_VERY_SURE = 0.8  # what a command needs to wipe the facts said with it
_WIPES = frozenset({IntentName.CANCEL, IntentName.START_OVER})
_BOUNCES = frozenset({IntentName.BOUNCE_5712, IntentName.BOUNCE_OTHER})


def _clicked(turn: Turn) -> tuple[str, str] | None:
    """The button pressed, if the payload names a real choice (forged or garbled ones: None)."""
    value = turn.message.value or {}
    slot, answer = value.get("slot"), value.get("answer")
    if not (isinstance(slot, str) and isinstance(answer, str) and slot in _SLOTS):
        return None
    spec = _SLOTS[slot]
    offered_escalation = answer == "escalate" and "escalate" in turn.state.offered
    if (
        not spec.free_text
        and answer not in {option.value for option in spec.options(turn)}
        and not offered_escalation
    ):
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
            if t.code or t.recipient or not t.about
            else turn.text(
                "my_ticket_line_about", ticket=t.ticket_id, status=t.status, about=t.about
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
    if bounce is not None and bounce.status:
        _explain_code(turn, bounce.status, bounce.resolver, bounce.diagnostic or "")
    else:
        turn.say("other_code_unknown", status="?")
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
            if name == "recipient_type":
                turn.state.slots.pop("type_family", None)
            facts.forget_chosen_for(turn, name)
        if name in turn.state.answered:
            turn.state.answered.remove(name)
        turn.state.answered.append(name)
        triage.advance(turn)

    return accept


async def _accept_target_type(turn: Turn, answer: str) -> None:
    admin_fix.set_target_type(turn, answer)
    triage.advance(turn)


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


async def _accept_about(turn: Turn, text: str) -> None:
    if turn.intent.name is IntentName.CANCEL and turn.intent.confidence >= _SURE:
        turn.say("escalate_cancelled")
        escalation.resume(turn)
        ask_again(turn)
        return
    escalation.take_about(turn, text)


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
    "target_type": _Slot(admin_fix.target_type_options, _accept_target_type, triage.advance),
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
    "confirm": _Slot(
        lambda turn: turn.choice_options("confirm"),
        lambda turn, answer: _accept_confirm(turn, answer),  # noqa: PLW0108 - defined below
        lambda turn: _ask_confirm(turn),  # noqa: PLW0108 - defined below
    ),
    "escalate_about": _Slot(
        lambda turn: (),
        lambda turn, text: _accept_about(turn, text),  # noqa: PLW0108 - defined below
        escalation.start,
        free_text=True,
        valid=lambda turn, text: bool(text.strip()) or bool(turn.message.files),
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
    if answer == "escalate" and slot not in _ESCALATE_IS_AN_ANSWER:
        escalation.start(turn, came_from=slot)  # the offer made after two misses
        return
    await _SLOTS[slot].accept(turn, answer)


# Questions whose own choices include "escalate" (their accept() handles it).
_ESCALATE_IS_AN_ANSWER = frozenset({"fixed", "after_failure", "sender_own_domain"})


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
        await _free_text_answer(turn, slot_name, slot, text)
        return
    answer = _match(turn, slot, text)
    if answer is not None and _negated(turn, slot_name, answer):
        answer = None  # "not the first one", "no powershell": never the value ruled out
    if answer is not None:
        taken = facts.take(turn) if turn.reading else facts.Taken()
        role_changed = any(slot == "role" for slot, _ in taken.changed)
        if role_changed and slot_name not in _FACT_SLOTS:
            # "no, I'm the admin actually": the new role decides what comes next.
            turn.state.pending, turn.state.misses = None, 0
            _advance_and_acknowledge(turn, taken)
            return
        if slot_name in _FACT_SLOTS:
            turn.state.slots.pop(slot_name, None)  # the answer itself, below, decides it
        facts.acknowledge(turn, taken, answered=slot_name)
        await _answer(turn, slot_name, answer)
        return
    yes_no = _YES_NO.get(slot_name)
    thumb = turn.reading is None and turn.intent.name in (IntentName.AFFIRM, IntentName.DENY)
    if yes_no is not None and thumb:  # a thumb up or down, no words
        await _answer(turn, slot_name, yes_no[turn.intent.name is IntentName.DENY])
        return
    if turn.reading is None:
        await _pattern_answer(turn, slot_name)
        return
    taken = facts.take(turn)
    name = turn.intent.name
    if taken.any:
        turn.state.pending, turn.state.misses = None, 0
        _advance_and_acknowledge(turn, taken, answered=slot_name)
        return
    if slot_name == "after_failure" and (
        name is IntentName.AFFIRM or (name is IntentName.FEEDBACK and turn.intent.feedback_positive)
    ):
        await _answer(turn, "fixed", "yes")  # "works now, cheers": it was fixed after all
        return
    if yes_no is not None and name is IntentName.FEEDBACK and not _also_says_yes(turn):
        _small_talk(turn)  # "thanks" alone: not yet "it worked"
        ask_again(turn)
        return
    if yes_no is not None and name in (IntentName.AFFIRM, IntentName.DENY, IntentName.FEEDBACK):
        positive = name is IntentName.AFFIRM or (
            name is IntentName.FEEDBACK and turn.intent.feedback_positive is True
        )
        await _answer(turn, slot_name, yes_no[0] if positive else yes_no[1])
        return
    if taken.remarks:
        facts.acknowledge(turn, taken, answered=slot_name)
        ask_again(turn)
        return
    if _restates(turn):
        ask_again(turn)  # "admin" again, to a bot that remembered it: not a wrong answer
        return
    unsure = _unsure_value(turn, slot_name)
    if unsure is not None:
        _propose(turn, slot_name, unsure)
        return
    if name is IntentName.DONT_KNOW or _ruled_out_only(turn, slot_name):
        if name is IntentName.DONT_KNOW:
            topics.hint(turn, slot_name)
        turn.state.misses += 1
        ask_again(turn)
        return
    ruled_out = turn.reading.negated if turn.reading is not None else ()
    if ruled_out and turn.reading is not None and not turn.reading.slots:
        # "no powershell" while the method is asked: kept for later, and no "Sorry".
        labels = dict.fromkeys(facts.label(turn, v.slot, v.value) for v in ruled_out)
        turn.say("noted_not", facts=", ".join(f"**{label}**" for label in labels))
        ask_again(turn)
        return
    if (
        name is IntentName.QUESTION_5712
        and turn.intent.bounce is not None
        and (turn.intent.bounce.mentioned_statuses)
    ):
        asks_how_to_fix = turn.reading is not None and turn.reading.intent == "question"
        if (turn.state.bounce or {}).get("is_bounce") and not asks_how_to_fix:
            # "is 5.7.12 different from what I got?": explained, the bounce's facts kept.
            asked = list(turn.intent.bounce.mentioned_statuses[:3])
            own = turn.fact("status")
            for status in [*asked, *([own] if own and own not in asked else [])]:
                _explain_code(turn, status)
            ask_again(turn)
            return
        triage.start(turn)  # a new question about a code: begin again with it
        return
    if name in (IntentName.GREETING, IntentName.FEEDBACK):
        _small_talk(turn)
        ask_again(turn)
        return
    await _miss(turn)


# Slots that facts fill (the rest are yes/no and menus of the flow itself).
_FACT_SLOTS = frozenset({"role", "recipient_type", "method", "centre"})
# Questions a plain "yes" or "no" answers: the choice for each.
_YES_NO = {
    "fixed": ("yes", "no"),
    "ticket_fixed": ("yes", "no"),
    "sender_own_domain": ("escalate", "no"),
    "confirm": ("yes", "no"),
}


async def _free_text_answer(turn: Turn, slot_name: str, slot: _Slot, text: str) -> None:
    if slot_name == "recipient":
        reading = turn.reading
        if reading is not None:
            taken = facts.take(turn)
            if "role" in {s for s, _ in taken.changed}:
                turn.state.pending = None
                triage.advance(turn)
                return
            if turn.state.slots.get("recipient"):
                turn.state.pending, turn.state.misses = None, 0
                triage.advance(turn)
                return
            if turn.intent.name is IntentName.DONT_KNOW:
                await _answer(turn, slot_name, "")
                return
            if _restates(turn):
                ask_again(turn)  # "it was me who sent it", again: not a wrong answer
                return
            if turn.intent.name in (IntentName.GREETING, IntentName.FEEDBACK):
                _small_talk(turn)
                ask_again(turn)
                return
        elif _role_changed(turn):
            turn.state.pending = None
            triage.advance(turn)
            return
    if slot.valid(turn, text):
        await _answer(turn, slot_name, text)
    elif slot_name == "recipient" and turn.state.misses >= 1:
        # No address after asking twice: the advice does not depend on it, so give it.
        await _answer(turn, slot_name, "")
    else:
        await _miss(turn)


async def _pattern_answer(turn: Turn, slot_name: str) -> None:
    """Without a language layer: answers given in passing, read by the pattern tables."""
    before = dict(turn.state.slots)
    _fill_from_sentence(turn)
    if turn.state.slots != before:
        turn.state.pending = None
        triage.advance(turn)
    elif turn.intent.name is IntentName.QUESTION_5712 and turn.intent.bounce is not None:
        triage.start(turn)
    elif turn.intent.name in (IntentName.GREETING, IntentName.FEEDBACK):
        _small_talk(turn)
        ask_again(turn)
    else:
        await _miss(turn)


def _advance_and_acknowledge(
    turn: Turn, taken: facts.Taken, *, answered: str | None = None
) -> None:
    """Go on with the new facts, and say first what was noted of them."""
    start = len(turn.replies)
    _advance(turn, taken)
    facts.acknowledge(turn, taken, answered=answered, at=start)


def _advance(turn: Turn, taken: facts.Taken) -> None:
    """Go on after facts changed: the answer again if it was given, else the next question."""
    if (
        turn.state.flow == "done"
        and turn.state.slots.get("role") == "sender"
        and not ({"role"} & {s for s, _ in taken.changed})
    ):
        sender_help.give_answer(turn)
        return
    if turn.state.flow == "done" and not turn.state.bounce and not turn.state.slots:
        _fresh(turn)
        return
    if turn.state.flow in ("done", None):
        turn.state.flow = "admin"
    triage.advance(turn)


def _also_says_yes(turn: Turn) -> bool:
    """Whether thanks come with a yes ("thanks, that did it") or a no ("thanks but no")."""
    reading = turn.reading
    if reading is None or turn.intent.feedback_positive is False:
        return True
    return any(intent in ("affirm", "deny") and p >= 0.2 for intent, p in reading.ranking[1:])


def _restates(turn: Turn) -> bool:
    """Whether the words only say again what the conversation already holds."""
    reading = turn.reading
    said = [v for v in reading.slots if v.slot in _FACT_SLOTS] if reading else []
    return bool(said) and all(turn.state.slots.get(v.slot) == v.value for v in said)


def _negated(turn: Turn, slot: str, value: str) -> bool:
    reading = turn.reading
    return reading is not None and value in reading.ruled_out(slot)


def _ruled_out_only(turn: Turn, slot: str) -> bool:
    """The message only ruled values out ("not a shared mailbox"): ask again, without them."""
    reading = turn.reading
    return reading is not None and bool(reading.ruled_out(slot)) and not reading.slots


def _unsure_value(turn: Turn, slot: str) -> str | None:
    reading = turn.reading
    if reading is None:
        return None
    values = {v.value for v in reading.unsure if v.slot == slot}
    values -= reading.ruled_out(slot)
    values -= {"any_group", "any_mailbox"}
    offered = set(turn.state.offered)
    if offered:
        values &= offered | set(admin_fix.candidate_types(turn) if slot == "recipient_type" else ())
    return values.pop() if len(values) == 1 else None


def _propose(turn: Turn, slot: str, value: str) -> None:
    """ "Did you mean a shared mailbox?", with yes and no."""
    turn.state.proposal = {"slot": slot, "value": value, "pending": turn.state.pending or slot}
    turn.ask(
        "confirm",
        turn.text("did_you_mean", value=facts.label(turn, slot, value)),
        turn.choice_options("confirm"),
    )


async def _accept_confirm(turn: Turn, answer: str) -> None:
    proposal, turn.state.proposal = turn.state.proposal, {}
    command = proposal.get("intent")
    if command in _CONFIRM_TEXTS:
        turn.state.pending = proposal.get("pending") or None
        name = IntentName(command)
        if answer == "yes":
            if name is IntentName.GO_BACK:
                _go_back(turn)
            else:
                await _INTERRUPTIONS[name](turn)
        else:
            ask_again(turn)
        return
    slot, value = proposal.get("slot"), proposal.get("value")
    if answer == "yes" and slot in _SLOTS and value:
        await _answer(turn, slot, value)
        return
    turn.state.pending = proposal.get("pending") or None
    if slot and value:
        turn.state.excluded.setdefault(slot, []).append(value)
    ask_again(turn)


# Commands worth a question when the words only half say them, with the question's text.
_CONFIRM_TEXTS = {
    "cancel": "confirm_cancel",
    "start_over": "confirm_start_over",
    "escalate": "confirm_escalate",
    "go_back": "confirm_go_back",
}
_CONFIRMABLE = frozenset(IntentName(name) for name in _CONFIRM_TEXTS)


def _propose_intent(turn: Turn, name: IntentName) -> None:
    """ "Do you want to start over?", with yes and no."""
    turn.state.proposal = {"intent": name.value, "pending": turn.state.pending or ""}
    turn.ask("confirm", turn.text(_CONFIRM_TEXTS[name.value]), turn.choice_options("confirm"))


def _ask_confirm(turn: Turn) -> None:
    """Ask the pending "did you mean" question again."""
    proposal = turn.state.proposal
    if proposal.get("intent") in _CONFIRM_TEXTS:
        _propose_intent(turn, IntentName(proposal["intent"]))
    elif proposal.get("slot") in _SLOTS and proposal.get("value"):
        _propose(turn, proposal["slot"], proposal["value"])


def _go_back(turn: Turn) -> None:
    """Undo the last answer and ask its question again (after the answer too)."""
    state = turn.state
    while state.answered:
        slot = state.answered.pop()
        if slot in state.slots:
            del state.slots[slot]
            facts.forget_chosen_for(turn, slot)
            if slot == "role":
                turn.profile.pop("role", None)
            turn.say("going_back")
            state.pending, state.misses, state.proposal = None, 0, {}
            if state.flow in ("done", None) and (state.bounce or state.slots or slot == "role"):
                state.flow = "admin"
            triage.advance(turn)
            return
    turn.say("nothing_to_go_back")
    ask_again(turn)


def _match(turn: Turn, slot: _Slot, text: str) -> str | None:
    """The choice an answer picks: among those shown first (a number counts only there)."""
    every = slot.options(turn)
    shown = [option for option in every if option.value in turn.state.offered]
    if shown:
        shown.sort(key=lambda option: turn.state.offered.index(option.value))
    if turn.reading is not None:
        exact = match_exact(text, shown or every)
        if exact is not None or is_number(text):
            return exact
        stuck = turn.choice_options("stuck")
        if "escalate" in turn.state.offered and match_exact(text, stuck):
            return "escalate"
        values = [v for v in turn.reading.slots if v.slot == turn.state.pending]
        asking = turn.intent.name in TOPIC_OF or turn.intent.name in _INTERRUPTIONS
        if asking and turn.intent.confidence >= _SURE:
            # "is it safe to allow everyone?" asks; it does not choose. Only words that are a
            # choice's name and nothing more ("the safer one") answer.
            values = [v for v in values if core(v.words) == core(text)]
        said = {v.value for v in values}
        said &= {o.value for o in shown or every}
        return said.pop() if len(said) == 1 else None
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
    turn.state.misses = misses
    _SLOTS[pending].ask(turn)
    turn.state.misses = misses


# ---- a message with nothing pending -----------------------------------------------------------


def _fresh(turn: Turn) -> None:
    name = turn.intent.name
    reading = turn.reading
    if name is IntentName.QUESTION_5712 and _asks_again_for_the_note(turn):
        sender_help.give_answer(turn)  # "what do I tell their admin?": the note, again
    elif name is IntentName.QUESTION_5712:
        triage.start(turn)
    elif name in (IntentName.GREETING, IntentName.FEEDBACK):
        _small_talk(turn)
    elif reading is not None and name is IntentName.INFORM and _guess(reading) is not None:
        guess = _guess(reading)
        assert guess is not None  # noqa: S101 - just checked
        if turn.state.flow is None:
            turn.state.flow = "admin"
        _propose(turn, guess.slot, guess.value)  # "I think it's a shared mailbox"
    elif (
        reading is not None
        and name in (IntentName.INFORM, IntentName.DONT_KNOW)
        and (reading.slots or reading.negated)
    ):
        if turn.state.flow == "done" and (turn.state.bounce or turn.state.slots):
            taken = facts.take(turn)  # a correction after the answer: the answer again
            if taken.any:
                _advance_and_acknowledge(turn, taken)
            elif taken.remarks:
                facts.acknowledge(turn, taken)
            else:
                turn.say("already_noted")  # the facts they gave are the ones it went by
        elif reading.slots:
            triage.start(turn)  # "I'm the admin, it's a shared mailbox": begin with those
        else:
            turn.say("fallback")
    elif reading is not None and name is IntentName.AFFIRM and turn.state.flow == "done":
        turn.say("feedback_thanks")
    else:
        if reading is None:
            role = find_mention(turn.message.text, triage.role_options(turn))
            if role is not None:
                triage.set_role(turn, role)
        turn.say("fallback")


def _asks_again_for_the_note(turn: Turn) -> bool:
    """After the sender's answer, a question that brings nothing new asks for it again."""
    bounce = turn.intent.bounce
    new_words = turn.reading is not None and any(
        v.slot in ("recipient", "recipient_type") for v in turn.reading.slots
    )
    return (
        turn.state.flow == "done"
        and turn.state.slots.get("role") == "sender"
        and bool(turn.recipients)
        and not (bounce is not None and (bounce.mentioned_statuses or bounce.is_bounce))
        and not new_words
    )


def _guess(reading: Reading) -> SlotValue | None:
    """The one value a message only guesses at ("I think it's a DL"), when it says nothing else."""
    if reading.slots:
        return None
    guesses = [
        v for v in reading.unsure if v.slot in _FACT_SLOTS and not v.value.startswith("any_")
    ]
    return guesses[0] if len(guesses) == 1 else None


def _explain_code(turn: Turn, status: str, resolver: str | None = None, text: str = "") -> None:
    """What a code means, in a line (a family code, a related one, or another problem)."""
    entry = turn.knowledge.code(status, resolver, text)
    meaning = getattr(entry, "meaning", None)
    if meaning is not None:
        key = "related_code" if getattr(entry, "fix", "same") == "related" else "family_intro"
        turn.say(key, status=status, meaning=meaning)
    elif entry is not None and hasattr(entry, "explanation"):
        turn.say("other_code", status=status, title=entry.title, explanation=entry.explanation)
    else:
        turn.say("other_code_unknown", status=status)


def _small_talk(turn: Turn) -> None:
    if turn.intent.name is IntentName.GREETING:
        turn.replies.append(Text(turn.knowledge.help_text.greeting))
    elif turn.intent.feedback_positive is False:
        turn.say("feedback_sorry")
    else:
        turn.say("feedback_thanks")
