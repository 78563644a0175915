"""The questions the flows ask, by slot: the choices an answer is matched against, and what an
answer (a click, a choice named, a yes to "did you mean") does.

How an answer is read from people's words is :mod:`dialogs.pending`; how a question is asked
again is :mod:`dialogs.asking`. This room is the table between them: one entry per question.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dialogs import admin_fix, admin_targets, escalation, facts, fix_for_me, sender_help, triage
from dialogs.answers import Option
from dialogs.asking import CONFIRM_TEXTS, ask_again, miss
from dialogs.intent import IntentName
from dialogs.interruptions import INTERRUPTIONS, SURE, go_back, start_over
from dialogs.turn import Turn

# Slots that facts fill (the rest are yes/no and menus of the flow itself).
FACT_SLOTS = frozenset({"role", "recipient_type", "method", "centre"})


@dataclass(frozen=True)
class Slot:
    """A question: the options its answer is matched against, and what an answer does (how it
    is asked is in :data:`dialogs.asking.ASKS`)."""

    options: Callable[[Turn], tuple[Option, ...]]
    accept: Callable[[Turn, str], Awaitable[None]]
    free_text: bool = False  # any text is an answer (an address, a note)
    # Whether a choice that was not shown may be named anyway ("security group" when the
    # question grouped it under "Distribution group or mail-enabled security group").
    allowed: Callable[[Turn, str], bool] = lambda turn, value: False
    # For free text: whether the text answers at all (an address, or "don't know").
    valid: Callable[[Turn, str], bool] = lambda turn, text: True
    # Whether facts said in passing count ("I'm the admin actually"); not in the answer to
    # "shall I run it?", where "don't run it" says nothing of who is talking.
    takes_facts: bool = True


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
    admin_targets.set_target_type(turn, answer)
    triage.advance(turn)


async def _accept_recipient(turn: Turn, text: str) -> None:
    sender_help.take_recipient(turn, text)
    triage.advance(turn)


async def _accept_fixed(turn: Turn, answer: str) -> None:
    if not {"recipient_type", "method", "centre"} <= turn.state.slots.keys():
        turn.say("fallback")  # a click on an old card after the conversation moved on
        return
    if answer == "apply":
        await fix_for_me.offer(turn)
    elif admin_fix.after_fixed(turn, answer):
        escalation.start(turn, came_from="fixed")


async def _accept_setting_fine(turn: Turn, answer: str) -> None:
    if answer == "escalate":
        escalation.start(turn, came_from="setting_fine")
    else:
        admin_fix.steps_anyway(turn)


async def _accept_apply_confirm(turn: Turn, answer: str) -> None:
    said_yes = fix_for_me.confirmed(turn)
    if answer == "yes" and said_yes is None:
        # Words that only came close to a yes ("never run it" without the language layer):
        # asked again, never taken for the yes that changes the recipient.
        turn.state.pending = "apply_confirm"
        await miss(turn)
        return
    await fix_for_me.confirm(turn, "yes" if answer == "yes" and said_yes else "no")


async def _accept_after_failure(turn: Turn, answer: str) -> None:
    if answer == "escalate":
        escalation.start(turn, came_from="after_failure")
    elif answer == "start_over":
        await start_over(turn)
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
    if turn.intent.name is IntentName.CANCEL and turn.intent.confidence >= SURE:
        turn.say("escalate_cancelled")
        escalation.resume(turn)
        ask_again(turn)
        return
    escalation.take_about(turn, text)


async def _accept_note(turn: Turn, text: str) -> None:
    await escalation.take_note(turn, text)
    ask_again(turn)  # cancelled or failed: back to the question they were on, if any


async def _accept_confirm(turn: Turn, answer: str) -> None:
    proposal, turn.state.proposal = turn.state.proposal, {}
    command = proposal.get("intent")
    if command in CONFIRM_TEXTS:
        turn.state.pending = proposal.get("pending") or None
        name = IntentName(command)
        if answer == "yes":
            if name is IntentName.GO_BACK:
                go_back(turn)
            else:
                await INTERRUPTIONS[name](turn)
        else:
            ask_again(turn)
        return
    slot, value = proposal.get("slot"), proposal.get("value")
    if answer == "yes" and slot in SLOTS and value:
        await take_answer(turn, slot, value)
        return
    turn.state.pending = proposal.get("pending") or None
    if slot and value:
        turn.state.excluded.setdefault(slot, []).append(value)
    ask_again(turn)


SLOTS: dict[str, Slot] = {
    "role": Slot(triage.role_options, _set_slot("role")),
    "recipient": Slot(
        lambda turn: (),
        _accept_recipient,
        free_text=True,
        valid=lambda turn, text: sender_help.recipient_in(turn, text) is not None,
    ),
    "recipient_type": Slot(
        admin_fix.type_options, _set_slot("recipient_type"), allowed=admin_fix.type_allowed
    ),
    "target_type": Slot(admin_fix.target_type_options, _accept_target_type),
    "method": Slot(admin_fix.method_options, _set_slot("method")),
    "centre": Slot(admin_fix.centre_options, _set_slot("centre")),
    "fixed": Slot(admin_fix.fixed_options, _accept_fixed),
    "setting_fine": Slot(lambda turn: turn.choice_options("setting_fine"), _accept_setting_fine),
    "apply_confirm": Slot(
        lambda turn: turn.choice_options("apply_confirm"), _accept_apply_confirm, takes_facts=False
    ),
    "after_failure": Slot(lambda turn: turn.choice_options("after_failure"), _accept_after_failure),
    "sender_own_domain": Slot(
        lambda turn: turn.choice_options("sender_own_domain"), _accept_own_domain
    ),
    "ticket_fixed": Slot(lambda turn: turn.choice_options("ticket_fixed"), escalation.ticket_fixed),
    "confirm": Slot(lambda turn: turn.choice_options("confirm"), _accept_confirm),
    "escalate_about": Slot(
        lambda turn: (),
        _accept_about,
        free_text=True,
        valid=lambda turn, text: bool(text.strip()) or bool(turn.message.files),
    ),
    "escalate_note": Slot(
        lambda turn: turn.choice_options("escalate_note"), _accept_note, free_text=True
    ),
}

# Questions whose own choices include "escalate" (their accept() handles it).
_ESCALATE_IS_AN_ANSWER = frozenset({"fixed", "after_failure", "sender_own_domain", "setting_fine"})


async def take_answer(turn: Turn, slot: str, answer: str) -> None:
    """Take ``answer`` as the answer to the question ``slot``."""
    turn.state.pending, turn.state.misses = None, 0
    if answer == "escalate" and slot not in _ESCALATE_IS_AN_ANSWER:
        escalation.start(turn, came_from=slot)  # the offer made after two misses
        return
    await SLOTS[slot].accept(turn, answer)
