"""A message with nothing pending: a question starts triage, facts start it with them (or
correct the answer already given), a guess is checked ("did you mean"), small talk is answered;
and going on after facts changed, which may come back here.
"""

from __future__ import annotations

from dialogs import facts, sender_help, triage
from dialogs.answers import find_mention
from dialogs.asking import propose
from dialogs.intent import IntentName
from dialogs.interruptions import small_talk
from dialogs.questions import FACT_SLOTS
from dialogs.reading import Reading, SlotValue
from dialogs.turn import Turn


def fresh(turn: Turn) -> None:
    """Start from the message: no question waits for an answer."""
    name = turn.intent.name
    reading = turn.reading
    if name is IntentName.QUESTION_5712 and _asks_again_for_the_note(turn):
        sender_help.give_answer(turn)  # "what do I tell their admin?": the note, again
    elif name is IntentName.QUESTION_5712:
        triage.start(turn)
    elif name in (IntentName.GREETING, IntentName.FEEDBACK):
        small_talk(turn)
    elif reading is not None and name is IntentName.INFORM and _guess(reading) is not None:
        guess = _guess(reading)
        assert guess is not None  # noqa: S101 - just checked
        if turn.state.flow is None:
            turn.state.flow = "admin"
        propose(turn, guess.slot, guess.value)  # "I think it's a shared mailbox"
    elif (
        reading is not None
        and name in (IntentName.INFORM, IntentName.DONT_KNOW)
        and (reading.slots or reading.negated)
    ):
        if turn.state.flow == "done" and (turn.state.bounce or turn.state.slots):
            taken = facts.take(turn)  # a correction after the answer: the answer again
            if taken.any:
                advance_and_acknowledge(turn, taken)
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
    guesses = [v for v in reading.unsure if v.slot in FACT_SLOTS and not v.value.startswith("any_")]
    return guesses[0] if len(guesses) == 1 else None


def advance_and_acknowledge(turn: Turn, taken: facts.Taken, *, answered: str | None = None) -> None:
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
        fresh(turn)
        return
    if turn.state.flow in ("done", None):
        turn.state.flow = "admin"
    triage.advance(turn)
