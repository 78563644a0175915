"""Triage: take a bounce or a question in, find out who is asking, and hand over to their path."""

from __future__ import annotations

from typing import Any

from dialogs import admin_fix, admin_targets, facts, sender_help
from dialogs.answers import Option, find_mention
from dialogs.turn import Turn
from knowledge.ndr import Bounce

# Bounce facts kept in the conversation state (the original text goes on a ticket, if any).
BOUNCE_FIELDS = (
    "status",
    "smtp_code",
    "resolver",
    "diagnostic",
    "recipients",
    "sender",
    "subject",
    "date",
    "reporting_server",
    "recipient_domain",
    "recipient_type",
    "language",
    "format",
    "is_bounce",
    "named_type",
)
_MAX_KEPT_TEXT = 20_000  # characters of the original message kept for a ticket


def start(turn: Turn) -> None:
    """Begin (or begin again) with the bounce or question this turn brought."""
    bounce = turn.intent.bounce
    turn.state.reset()
    turn.state.flow = "admin"  # replaced by the role's own flow in advance()
    if bounce is not None:
        turn.state.bounce = kept_facts(bounce)
        if not bounce.is_bounce and turn.reading is not None:
            _addresses_from_words(turn)
        admin_targets.plan_targets(turn)
    introduce_code(turn)
    if turn.reading is not None and not (bounce is not None and bounce.is_bounce):
        facts.acknowledge(turn, facts.take(turn), answered="role")
    else:
        # A bounce's own words are Microsoft's, not the person's choices: "on its allowed
        # senders list" is no answer to "allow everyone or a list?". Only a role said in a
        # note above the paste ("I'm the admin") is taken from it.
        fill_from_sentence(turn, choices=bounce is None or not bounce.is_bounce)
    advance(turn)


def _addresses_from_words(turn: Turn) -> None:
    """In a person's words the language layer tells the outside sender ("whitelist
    partner@fabrikam.com for sales@") from the recipient, which the reader cannot."""
    reading, kept = turn.reading, turn.state.bounce
    if reading is None or kept is None:
        return
    full = [
        v.value for v in reading.slots if v.slot == "recipient" and "." in v.value.split("@")[-1]
    ]
    senders = [v.value for v in reading.slots if v.slot == "sender" and "@" in v.value]
    if full or senders:
        kept["recipients"] = [r for r in full if r not in senders]
        kept["recipient_domain"] = full[0].split("@", 1)[1] if full else None
    if senders:
        kept["sender"] = senders[0]


def kept_facts(bounce: Bounce) -> dict[str, Any]:
    """The facts of a bounce as the conversation state keeps them (plain JSON)."""
    kept: dict[str, Any] = {name: getattr(bounce, name, None) for name in BOUNCE_FIELDS}
    kept["recipients"] = list(bounce.recipients)
    kept["failures"] = [list(failure) for failure in bounce.failures]
    kept["text"] = bounce.text[:_MAX_KEPT_TEXT]
    return kept


def introduce_code(turn: Turn) -> None:
    """Say what the bounce's code means, in a line (and which recipients failed, when several)."""
    failures = [f for f in (turn.state.bounce or {}).get("failures") or () if f]
    if len(failures) > 1:
        listed = [f"{f[0]} ({f[1]})" if len(f) > 1 and f[1] else str(f[0]) for f in failures]
        turn.say(
            "several_recipients",
            count=str(len(failures)),
            failures=", ".join(listed[:-1]) + " and " + listed[-1],
        )
    status = turn.fact("status")
    if status is None:
        return
    entry = turn.knowledge.code(status, turn.fact("resolver"), turn.fact("diagnostic") or "")
    meaning = getattr(entry, "meaning", None)
    if meaning is None:
        return
    key = "related_code" if getattr(entry, "fix", "same") == "related" else "family_intro"
    turn.say(key, status=status, meaning=meaning)
    if getattr(entry, "recipient_family", None):
        turn.state.shown.append("code_tells_type")  # the meaning already says what kind it is


def role_options(turn: Turn) -> tuple[Option, ...]:
    """Sender or admin."""
    return turn.choice_options("role")


def ask_role(turn: Turn) -> None:
    """Ask whether they sent the message or administer the recipient."""
    turn.ask("role", turn.text("ask_role"), role_options(turn))


def set_role(turn: Turn, role: str) -> None:
    """Record the role for this conversation and remember it for the person."""
    turn.state.slots["role"] = role
    turn.profile["role"] = role


def fill_from_sentence(turn: Turn, *, choices: bool = True) -> None:
    """Take every answer the message already gives ("I'm the admin, shared mailbox, new EAC");
    the role alone without ``choices``."""
    text = turn.message.text
    if not text:
        return
    role = find_mention(text, role_options(turn))
    if role is not None:
        set_role(turn, role)
    if choices:
        admin_fix.fill_from_sentence(turn, text)


def advance(turn: Turn) -> None:
    """Ask the next question of the person's path, or give the answer when nothing is missing."""
    role = turn.state.slots.get("role")
    if role is None and turn.profile.get("role") in ("sender", "admin"):
        role = str(turn.profile["role"])
        turn.state.slots["role"] = role
        turn.say_once(f"role_remembered_{role}")
    if role is None:
        ask_role(turn)
    elif role == "sender":
        turn.state.flow = "sender"
        sender_help.advance(turn)
    else:
        turn.state.flow = "admin"
        admin_fix.advance(turn)
