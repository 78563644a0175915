"""What may cut into any question: the commands (cancel, start over, help, escalate, my tickets,
go back), a new bounce or another code, and small talk; and how sure the language layer must be
before a command is acted on.

They are caught before any question's answer is read (:mod:`dialogs.conversation` decides when),
and each one leaves the person where it found them, or says where it took them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dialogs import escalation, facts, triage
from dialogs.asking import ask_again
from dialogs.intent import IntentName
from dialogs.replies import Text
from dialogs.turn import Turn

# How sure the language layer must be before a command (cancel, start over) is acted on; between
# MAYBE and SURE the bot asks whether that is what the person wants.
SURE = 0.45
MAYBE = 0.25
SURE_TO_WIPE = 0.6  # cancel and start over forget everything: below this, ask first
VERY_SURE = 0.8  # what a command needs to wipe the facts said with it
WIPES = frozenset({IntentName.CANCEL, IntentName.START_OVER})
BOUNCES = frozenset({IntentName.BOUNCE_5712, IntentName.BOUNCE_OTHER})


async def _cancel(turn: Turn) -> None:
    if turn.state.flow in (None, "done") and turn.state.pending is None:
        turn.say("nothing_to_cancel")
    else:
        turn.say("cancelled")
    turn.state.reset()


async def start_over(turn: Turn) -> None:
    """Forget the conversation and the role, and greet them again."""
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
        explain_code(turn, bounce.status, bounce.resolver, bounce.diagnostic or "")
    else:
        turn.say("other_code_unknown", status="?")
    turn.state.reset()


INTERRUPTIONS: dict[IntentName, Callable[[Turn], Awaitable[None]]] = {
    IntentName.CANCEL: _cancel,
    IntentName.START_OVER: start_over,
    IntentName.HELP: _help,
    IntentName.ESCALATE: _escalate,
    IntentName.MY_TICKETS: _my_tickets,
    IntentName.BOUNCE_5712: _new_bounce,
    IntentName.BOUNCE_OTHER: _other_code,
}


def go_back(turn: Turn) -> None:
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


def explain_code(turn: Turn, status: str, resolver: str | None = None, text: str = "") -> None:
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


def small_talk(turn: Turn) -> None:
    """A greeting, thanks or a complaint, answered in kind."""
    if turn.intent.name is IntentName.GREETING:
        turn.replies.append(Text(turn.knowledge.help_text.greeting))
    elif turn.intent.feedback_positive is False:
        turn.say("feedback_sorry")
    else:
        turn.say("feedback_thanks")
