"""Answering the pending question in words: a choice named, a yes or a no, a fact given in
passing, a question about a code, a value only guessed at or ruled out; else a polite re-ask.

The table of questions (:mod:`dialogs.questions`) says what an answer does; this room finds the
answer in what was said, with the language layer's reading or, without one, the pattern tables.
"""

from __future__ import annotations

from dialogs import admin_fix, facts, topics, triage
from dialogs.answers import core, find_mention, is_number, match_answer, match_exact
from dialogs.asking import ask_again, miss, propose
from dialogs.fresh_message import advance_and_acknowledge, fresh
from dialogs.intent import TOPIC_OF, IntentName
from dialogs.interruptions import INTERRUPTIONS, SURE, explain_code, small_talk
from dialogs.questions import FACT_SLOTS, SLOTS, Slot, take_answer
from dialogs.turn import Turn

# Questions a plain "yes" or "no" answers: the choice for each.
_YES_NO = {
    "fixed": ("yes", "no"),
    "ticket_fixed": ("yes", "no"),
    "sender_own_domain": ("escalate", "no"),
    "confirm": ("yes", "no"),
    "setting_fine": ("escalate", "steps"),
    "apply_confirm": ("yes", "no"),
}


async def pending_answer(turn: Turn) -> None:
    """Read the message as the answer to the pending question."""
    slot_name = turn.state.pending
    assert slot_name is not None  # noqa: S101 - the caller checked
    slot = SLOTS.get(slot_name)
    if slot is None:  # a state written by an older version of the bot
        turn.state.reset()
        fresh(turn)
        return
    text = turn.message.text
    if slot.free_text:
        await _free_text_answer(turn, slot_name, slot, text)
        return
    answer = match(turn, slot, text)
    if answer is not None and negated(turn, slot_name, answer):
        answer = None  # "not the first one", "no powershell": never the value ruled out
    if answer is not None:
        taken = facts.take(turn) if turn.reading and slot.takes_facts else facts.Taken()
        role_changed = any(slot == "role" for slot, _ in taken.changed)
        if role_changed and slot_name not in FACT_SLOTS:
            # "no, I'm the admin actually": the new role decides what comes next.
            turn.state.pending, turn.state.misses = None, 0
            advance_and_acknowledge(turn, taken)
            return
        if slot_name in FACT_SLOTS:
            turn.state.slots.pop(slot_name, None)  # the answer itself, below, decides it
        facts.acknowledge(turn, taken, answered=slot_name)
        await take_answer(turn, slot_name, answer)
        return
    yes_no = _YES_NO.get(slot_name)
    thumb = turn.reading is None and turn.intent.name in (IntentName.AFFIRM, IntentName.DENY)
    if yes_no is not None and thumb:  # a thumb up or down, no words
        await take_answer(turn, slot_name, yes_no[turn.intent.name is IntentName.DENY])
        return
    if turn.reading is None:
        await (_pattern_answer(turn, slot_name) if slot.takes_facts else miss(turn))
        return
    taken = facts.take(turn) if slot.takes_facts else facts.Taken()
    name = turn.intent.name
    if taken.any:
        turn.state.pending, turn.state.misses = None, 0
        advance_and_acknowledge(turn, taken, answered=slot_name)
        return
    if slot_name == "after_failure" and (
        name is IntentName.AFFIRM or (name is IntentName.FEEDBACK and turn.intent.feedback_positive)
    ):
        await take_answer(turn, "fixed", "yes")  # "works now, cheers": it was fixed after all
        return
    if yes_no is not None and name is IntentName.FEEDBACK and not _also_says_yes(turn):
        small_talk(turn)  # "thanks" alone: not yet "it worked"
        ask_again(turn)
        return
    if yes_no is not None and name in (IntentName.AFFIRM, IntentName.DENY, IntentName.FEEDBACK):
        positive = name is IntentName.AFFIRM or (
            name is IntentName.FEEDBACK and turn.intent.feedback_positive is True
        )
        await take_answer(turn, slot_name, yes_no[0] if positive else yes_no[1])
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
        propose(turn, slot_name, unsure)
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
                explain_code(turn, status)
            ask_again(turn)
            return
        triage.start(turn)  # a new question about a code: begin again with it
        return
    if name in (IntentName.GREETING, IntentName.FEEDBACK):
        small_talk(turn)
        ask_again(turn)
        return
    await miss(turn)


async def _free_text_answer(turn: Turn, slot_name: str, slot: Slot, text: str) -> None:
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
                await take_answer(turn, slot_name, "")
                return
            if _restates(turn):
                ask_again(turn)  # "it was me who sent it", again: not a wrong answer
                return
            if turn.intent.name in (IntentName.GREETING, IntentName.FEEDBACK):
                small_talk(turn)
                ask_again(turn)
                return
        elif _role_changed(turn):
            turn.state.pending = None
            triage.advance(turn)
            return
    if slot.valid(turn, text):
        await take_answer(turn, slot_name, text)
    elif slot_name == "recipient" and turn.state.misses >= 1:
        # No address after asking twice: the advice does not depend on it, so give it.
        await take_answer(turn, slot_name, "")
    else:
        await miss(turn)


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
        small_talk(turn)
        ask_again(turn)
    else:
        await miss(turn)


def _also_says_yes(turn: Turn) -> bool:
    """Whether thanks come with a yes ("thanks, that did it") or a no ("thanks but no")."""
    reading = turn.reading
    if reading is None or turn.intent.feedback_positive is False:
        return True
    return any(intent in ("affirm", "deny") and p >= 0.2 for intent, p in reading.ranking[1:])


def _restates(turn: Turn) -> bool:
    """Whether the words only say again what the conversation already holds."""
    reading = turn.reading
    said = [v for v in reading.slots if v.slot in FACT_SLOTS] if reading else []
    return bool(said) and all(turn.state.slots.get(v.slot) == v.value for v in said)


def negated(turn: Turn, slot: str, value: str) -> bool:
    """Whether the words ruled ``value`` out for ``slot``."""
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


def match(turn: Turn, slot: Slot, text: str) -> str | None:
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
        asking = turn.intent.name in TOPIC_OF or turn.intent.name in INTERRUPTIONS
        if asking and turn.intent.confidence >= SURE:
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
