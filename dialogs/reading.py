"""The seam between the flows and the language layer: what a person's words were read as.

The flows only see a :class:`Reading` and ask for one through the :class:`Understanding`
protocol; the trained backend lives in ``dialogs/understanding/`` (which imports scikit-learn and
rapidfuzz, the flows do not), and another backend can be put in its place by ``bot/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from dialogs.answers import Option

#: Slots whose value is one of a closed set of ids (the knowledge base's).
CLOSED_SLOTS = ("role", "recipient_type", "method", "centre")
#: Slots whose value is the words themselves (an address, part of one, a domain).
OPEN_SLOTS = ("recipient", "sender", "domain")

#: The intents of people's words (the bounce reader adds the bounce intents).
INTENTS = (
    "question",
    "inform",
    "ask_why",
    "ask_risk",
    "ask_find_type",
    "ask_delay",
    "ask_mail_user",
    "ask_methods",
    "dont_know",
    "go_back",
    "affirm",
    "deny",
    "escalate",
    "my_tickets",
    "help",
    "greeting",
    "thanks",
    "complain",
    "cancel",
    "start_over",
    "out_of_scope",
)


@dataclass(frozen=True)
class SlotValue:
    """One fact read from the words: ``slot`` is ``value``, said as ``words``."""

    slot: str
    value: str
    words: str
    score: float = 1.0  # 1.0 for an exact match; lower when read through a typo


@dataclass(frozen=True)
class Reading:
    """What one message says: its intent (with a confidence) and the facts in it.

    ``slots`` are the values said; ``negated`` the values ruled out ("not a shared mailbox"),
    which the flows must never choose; ``unsure`` the values read too loosely to act on without
    asking ("Did you mean a shared mailbox?").
    """

    intent: str
    confidence: float
    ranking: tuple[tuple[str, float], ...] = ()
    slots: tuple[SlotValue, ...] = ()
    negated: tuple[SlotValue, ...] = ()
    unsure: tuple[SlotValue, ...] = ()
    language: str | None = None

    def value(self, slot: str) -> str | None:
        """The value said for ``slot`` (the first, if several), or None."""
        return next((s.value for s in self.slots if s.slot == slot), None)

    def values(self, slot: str) -> tuple[str, ...]:
        """Every value said for ``slot``, in order, without repeats."""
        return tuple(dict.fromkeys(s.value for s in self.slots if s.slot == slot))

    def ruled_out(self, slot: str) -> frozenset[str]:
        """The values of ``slot`` the words exclude."""
        return frozenset(s.value for s in self.negated if s.slot == slot)


@dataclass(frozen=True)
class Expectation:
    """What the bot is waiting for: the pending question's slot and the choices it showed, so
    that partial button words ("chosen senders") and the choices' own labels are understood."""

    slot: str | None = None
    choices: tuple[Option, ...] = field(default=())


class Understanding(Protocol):
    """Reads a person's words. Implementations must be safe to call from any turn."""

    def read(self, text: str, expecting: Expectation | None = None) -> Reading:
        """The reading of ``text``; ``expecting`` tells the pending question, if any."""
        ...
