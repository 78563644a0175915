"""One turn of a conversation as the flows see it: the state, what came in, what goes out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dialogs.answers import Option
from dialogs.desk import TicketDesk
from dialogs.directory import RecipientDirectory
from dialogs.intent import Intent
from dialogs.messages import Message
from dialogs.reading import Expectation, Reading, Understanding
from dialogs.replies import Choice, Fact, Question, Reply, Text
from dialogs.state import DialogState
from knowledge.kb import KnowledgeBase

# Questions where "Escalate to an admin" is already a choice, or makes no sense.
_NO_ESCALATION_OFFER = frozenset(
    {
        "fixed",
        "after_failure",
        "sender_own_domain",
        "escalate_note",
        "ticket_fixed",
        "confirm",
        "setting_fine",
        "apply_confirm",
    }
)


@dataclass(frozen=True)
class DialogContext:
    """What the flows may consult: the knowledge base, our own domains, the ticket desk, the
    language layer that reads people's words (without one, words are read by pattern tables), and
    the organization's directory (Exchange Online), when one is connected."""

    knowledge: KnowledgeBase
    org_domains: frozenset[str] = frozenset()
    desk: TicketDesk | None = None
    understanding: Understanding | None = None
    directory: RecipientDirectory | None = None


@dataclass
class Turn:
    """The working set of one turn. Flows read and change it; ``bot/`` saves what is left."""

    state: DialogState
    profile: dict[str, Any]
    message: Message
    intent: Intent
    context: DialogContext
    replies: list[Reply] = field(default_factory=list)
    escalated: bool = False  # a ticket was opened or joined this turn
    finished: bool = False  # a flow reached its answer this turn
    # A recipient the admin's path waits to have looked up in the directory: the flows are not
    # async, so dialogs.conversation looks it up after the turn's flow and goes on from there.
    look_up: str | None = None

    @property
    def reading(self) -> Reading | None:
        """What the language layer read in this turn's words, if it read them."""
        return self.intent.reading

    @property
    def knowledge(self) -> KnowledgeBase:
        """The knowledge base."""
        return self.context.knowledge

    def text(self, key: str, **values: str) -> str:
        """A sentence from conversation.yaml with its placeholders filled."""
        return self.knowledge.conversation.text(key, **values)

    def say(self, key: str, **values: str) -> None:
        """Send a sentence from conversation.yaml."""
        self.replies.append(Text(self.text(key, **values)))

    def say_once(self, key: str, **values: str) -> None:
        """Send a remark only the first time in this conversation."""
        if key not in self.state.shown:
            self.state.shown.append(key)
            self.say(key, **values)

    def ask(self, slot: str, text: str, options: tuple[Option, ...] = ()) -> None:
        """Ask for ``slot``; the next turn's answer is matched against ``options`` (less any
        the person ruled out). After two answers that fitted nothing, escalation is offered."""
        if self.state.pending not in (slot, None):  # None: asked again after a miss
            self.state.misses = 0
        if slot != "apply_confirm":
            self.state.fix_plan = {}  # a change waits for its confirmation only while asked
        excluded = set(self.state.excluded.get(slot, ()))
        kept = tuple(o for o in options if o.value not in excluded)
        options = kept if len(kept) >= 2 or (kept and len(options) == 1) else options
        if self.state.misses >= 2 and options and slot not in _NO_ESCALATION_OFFER:
            options = (*options, *self.choice_options("stuck"))
        self.state.pending = slot
        self.state.offered = [option.value for option in options]
        choices = tuple(Choice(option.value, option.label) for option in options)
        self.replies.append(Question(text, slot, choices))

    def expectation(self, options: tuple[Option, ...]) -> Expectation:
        """What the pending question waits for, for the language layer."""
        return Expectation(self.state.pending, options)

    def choice_options(self, name: str) -> tuple[Option, ...]:
        """A choice set of conversation.yaml as options to match answers against."""
        return tuple(
            Option(c.value, c.label, c.synonyms, c.mentions)
            for c in self.knowledge.conversation.choices[name]
        )

    @property
    def recipient(self) -> str | None:
        """The address of the recipient the bounce is about, if known."""
        recipients = self.recipients
        return recipients[0] if recipients else None

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every failed recipient of the bounce (or the one the person named)."""
        bounce = self.state.bounce or {}
        found = tuple(r for r in bounce.get("recipients") or () if isinstance(r, str) and r)
        named = self.state.slots.get("recipient")
        return found or ((named,) if named else ())

    @property
    def recipient_label(self) -> str:
        """The recipient's address, or "it"."""
        return self.recipient or "it"

    def fact(self, name: str) -> str | None:
        """One fact of the bounce (status, sender, subject, ...), if known; the sender may also
        have been named in the conversation."""
        value = (self.state.bounce or {}).get(name)
        if name == "sender" and not value:
            value = self.state.slots.get("sender")
        return value if isinstance(value, str) and value else None

    def bounce_facts(self, type_label: str | None = None) -> tuple[Fact, ...]:
        """The bounce's facts worth showing beside an answer."""
        status = self.fact("status")
        smtp = self.fact("smtp_code")
        rows = [
            ("facts_recipient", self.recipient),
            ("facts_sender", self.fact("sender")),
            ("facts_status", f"{smtp} {status}" if smtp and status else status),
            ("facts_subject", self.fact("subject")),
            ("facts_date", self.fact("date")),
            ("facts_type", type_label),
        ]
        return tuple(Fact(self.text(key), value) for key, value in rows if value)
