"""Asking the pending question again, and the "did you mean" questions.

Every part of a turn may have to ask again the question the person was on: after help or the
list of their tickets, after an answer that fitted nothing, after a "no" to "did you mean".
So how each question is asked is a room of its own, below what its answer does
(:mod:`dialogs.questions`): an answer may lead to a command, and a command asks again.
"""

from __future__ import annotations

from collections.abc import Callable

from dialogs import admin_fix, escalation, facts, fix_for_me, sender_help, triage
from dialogs.intent import IntentName
from dialogs.turn import Turn


def _ask_after_failure(turn: Turn) -> None:
    turn.ask("after_failure", turn.text("fixed_no"), turn.choice_options("after_failure"))


# How each question is asked (again); the same questions as dialogs.questions.SLOTS, whose
# entries say what an answer to each does.
ASKS: dict[str, Callable[[Turn], None]] = {
    "role": triage.advance,
    "recipient": triage.advance,
    "recipient_type": triage.advance,
    "target_type": triage.advance,
    "method": triage.advance,
    "centre": triage.advance,
    "fixed": admin_fix.ask_fixed,
    "setting_fine": triage.advance,
    "apply_confirm": fix_for_me.ask_confirm,
    "after_failure": _ask_after_failure,
    "sender_own_domain": sender_help.advance,
    "ticket_fixed": lambda turn: turn.ask(
        "ticket_fixed", turn.text("ticket_ask_fixed"), turn.choice_options("ticket_fixed")
    ),
    "confirm": lambda turn: ask_confirm(turn),  # noqa: PLW0108 - defined below
    "escalate_about": escalation.start,
    "escalate_note": escalation.start,
}


def ask_again(turn: Turn) -> None:
    """Repeat the pending question, if there is one."""
    pending = turn.state.pending
    if pending is None or pending not in ASKS:
        return
    turn.state.pending = None
    misses = turn.state.misses
    turn.state.misses = misses
    ASKS[pending](turn)
    turn.state.misses = misses


async def miss(turn: Turn) -> None:
    """An answer that fitted nothing: "Sorry", and the question again (escalation is offered
    after two)."""
    turn.state.misses += 1
    turn.say("reask" if turn.state.misses == 1 else "reask_again")
    misses = turn.state.misses
    ask_again(turn)
    turn.state.misses = misses


# ---- "did you mean" ---------------------------------------------------------------------------


# Commands worth a question when the words only half say them, with the question's text.
CONFIRM_TEXTS = {
    "cancel": "confirm_cancel",
    "start_over": "confirm_start_over",
    "escalate": "confirm_escalate",
    "go_back": "confirm_go_back",
}
CONFIRMABLE = frozenset(IntentName(name) for name in CONFIRM_TEXTS)


def propose(turn: Turn, slot: str, value: str) -> None:
    """ "Did you mean a shared mailbox?", with yes and no."""
    turn.state.proposal = {"slot": slot, "value": value, "pending": turn.state.pending or slot}
    turn.ask(
        "confirm",
        turn.text("did_you_mean", value=facts.label(turn, slot, value)),
        turn.choice_options("confirm"),
    )


def propose_intent(turn: Turn, name: IntentName) -> None:
    """ "Do you want to start over?", with yes and no."""
    turn.state.proposal = {"intent": name.value, "pending": turn.state.pending or ""}
    turn.ask("confirm", turn.text(CONFIRM_TEXTS[name.value]), turn.choice_options("confirm"))


def ask_confirm(turn: Turn) -> None:
    """Ask the pending "did you mean" question again."""
    proposal = turn.state.proposal
    if proposal.get("intent") in CONFIRM_TEXTS:
        propose_intent(turn, IntentName(proposal["intent"]))
    elif proposal.get("slot") in ASKS and proposal.get("value"):
        propose(turn, proposal["slot"], proposal["value"])
