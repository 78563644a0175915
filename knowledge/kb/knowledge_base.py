"""The knowledge base itself: every file's entries, checked, with the lookups the dialogs need.

It is built by :func:`knowledge.kb.loader.load_knowledge` and answers questions about what it
holds (which procedures for a method and a recipient type, which entry for a bounce's code, what
people may answer); it reads no file and checks nothing itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from knowledge.kb.conversation import ConversationText
from knowledge.kb.models import (
    Centre,
    CodeEntry,
    FamilyCode,
    HelpText,
    Hint,
    Lookalike,
    Method,
    Note,
    Procedure,
    RecipientType,
    SenderGuidance,
    Topic,
)
from knowledge.kb.vocabulary import CENTRE_IDS, CentreId, Placement, StepFlag, parse_status


class KnowledgeBase:
    """All the knowledge, checked, with the lookups the dialogs need."""

    def __init__(
        self,
        *,
        recipient_types: tuple[RecipientType, ...],
        methods: tuple[Method, ...],
        centres: tuple[Centre, ...],
        notes: tuple[Note, ...],
        procedures: tuple[Procedure, ...],
        family: tuple[FamilyCode, ...],
        lookalikes: tuple[Lookalike, ...],
        sender_guidance: SenderGuidance,
        help_text: HelpText,
        conversation: ConversationText,
        topics: tuple[Topic, ...] = (),
        hints: Mapping[str, Hint] | None = None,
    ) -> None:
        self.recipient_types = recipient_types
        self.methods = methods
        self.centres = centres
        self.notes = notes
        self.procedures = procedures
        self.family = family
        self.lookalikes = lookalikes
        self.sender_guidance = sender_guidance
        self.help_text = help_text
        self.conversation = conversation
        self.topics = topics
        self.hints: Mapping[str, Hint] = dict(hints or {})
        self._topics: dict[str, Topic] = {t.id: t for t in topics}
        self._recipient_types: dict[str, RecipientType] = {r.id: r for r in recipient_types}
        self._methods: dict[str, Method] = {m.id: m for m in methods}
        self._centres: dict[str, Centre] = {c.id: c for c in centres}
        self._notes: dict[str, Note] = {n.id: n for n in notes}

    @property
    def article_url(self) -> str:
        """The Microsoft article this knowledge base is built from."""
        return self.sender_guidance.article_url

    def recipient_type(self, type_id: str) -> RecipientType:
        """The recipient type with this id (KeyError if unknown)."""
        return self._recipient_types[type_id]

    def recipient_types_in_family(self, family: str | None) -> tuple[RecipientType, ...]:
        """The recipient types a bounce's coarse type can stand for (all of them for None)."""
        if family is None:
            return self.recipient_types
        return tuple(r for r in self.recipient_types if r.family == family)

    def method(self, method_id: str) -> Method:
        """The method with this id (KeyError if unknown)."""
        return self._methods[method_id]

    def centre(self, centre_id: str) -> Centre:
        """The admin centre with this id (KeyError if unknown)."""
        return self._centres[centre_id]

    def note(self, note_id: str) -> Note:
        """The note with this id (KeyError if unknown)."""
        return self._notes[note_id]

    def procedures_for(
        self, method: str, recipient_type: str, centre: str | None = None
    ) -> tuple[Procedure, ...]:
        """Procedures for a method and recipient type, new EAC first, then classic, then PowerShell.

        An empty result means the knowledge base has no steps for that combination (for example
        method 2 for a group in the EAC); the dialog then offers PowerShell.
        """
        found = [
            p
            for p in self.procedures
            if p.method == method
            and recipient_type in p.recipient_types
            and (centre is None or p.centre == centre)
        ]
        found.sort(key=lambda p: CENTRE_IDS.index(p.centre))
        return tuple(found)

    def centres_for(self, method: str, recipient_type: str) -> tuple[CentreId, ...]:
        """The admin centres that have steps for this method and recipient type."""
        return tuple(dict.fromkeys(p.centre for p in self.procedures_for(method, recipient_type)))

    def notes_for(
        self,
        procedure: Procedure,
        flags: frozenset[str] | None = None,
        placement: Placement | None = None,
    ) -> tuple[Note, ...]:
        """The notes a procedure points to, in its order.

        ``flags`` (the conditions that hold, as for :meth:`Procedure.steps_for`) leaves out the
        notes whose ``when`` conditions do not all hold; None keeps every note. ``placement``
        keeps only the notes shown ``"before"`` the steps (prerequisites) or ``"after"`` them;
        None keeps both, in the procedure's order. So a dialog shows
        ``notes_for(p, flags, "before")``, then ``p.steps_for(flags)``, then
        ``notes_for(p, flags, "after")``.
        """
        notes = (self._notes[n] for n in procedure.notes)
        return tuple(
            note
            for note in notes
            if (flags is None or note.applies(flags))
            and (placement is None or note.placement == placement)
        )

    def step_flags(
        self,
        status: str | None = None,
        resolver: str | None = None,
        text: str = "",
        *,
        sender_inside: bool | None = None,
    ) -> frozenset[StepFlag]:
        """The conditions that hold for a bounce, to pass to :meth:`Procedure.steps_for` and
        :meth:`notes_for`.

        ``auth_required`` holds unless the bounce's code is a related one (``fix: related`` in
        codes.yaml: 5.7.124, 5.7.129), whose recipient already has an allowed senders list; with
        no code, or one this knowledge base doesn't know, it holds. ``outside_sender`` holds
        unless ``sender_inside`` is True (the sender is known to be inside the recipient's
        organization).
        """
        flags: set[StepFlag] = set()
        entry = self.code(status, resolver, text) if status else None
        if not (isinstance(entry, FamilyCode) and entry.fix == "related"):
            flags.add("auth_required")
        if sender_inside is not True:
            flags.add("outside_sender")
        return frozenset(flags)

    def topic(self, topic_id: str) -> Topic:
        """The topic with this id (KeyError if unknown)."""
        return self._topics[topic_id]

    def hint(self, slot: str) -> Hint:
        """The "I don't know" hint for a question's slot (KeyError if unknown)."""
        return self.hints[slot]

    def _entries(
        self, kind: Literal["recipient_type", "method", "centre"]
    ) -> tuple[RecipientType | Method | Centre, ...]:
        if kind == "recipient_type":
            return self.recipient_types
        if kind == "method":
            return self.methods
        return self.centres

    def synonyms(
        self, kind: Literal["recipient_type", "method", "centre"]
    ) -> dict[str, tuple[str, ...]]:
        """What users may answer for each id of a kind, the label included."""
        return {e.id: (e.label, *e.synonyms) for e in self._entries(kind)}

    def mentions(
        self, kind: Literal["recipient_type", "method", "centre"]
    ) -> dict[str, tuple[str, ...]]:
        """Phrases that name each id inside a longer sentence (specific ones only)."""
        return {
            e.id: e.mentions if e.mentions is not None else (e.label, *e.synonyms)
            for e in self._entries(kind)
        }

    def code(self, status: str, resolver: str | None = None, text: str = "") -> CodeEntry | None:
        """The family or look-alike entry for a bounce's status, or None if it is not known.

        Several entries can share a status (5.7.1 has many meanings): an entry with
        ``markers_required`` matches only when the resolver or the text contains one of its markers
        (or its resolver). Statuses compare as numbers, so 5.7.124 is never 5.7.12.
        """
        parsed = parse_status(status)
        if parsed is None:
            return None
        haystack = f"{resolver or ''}\n{text}".casefold()
        candidates: list[CodeEntry] = [
            *(f for f in self.family if parse_status(f.status) == parsed),
            *(lk for lk in self.lookalikes if lk.covers(parsed)),
        ]
        marked: list[CodeEntry] = []
        plain: list[CodeEntry] = []
        for entry in candidates:
            markers = list(entry.text_markers)
            if isinstance(entry, FamilyCode) and entry.resolver:
                markers.append(entry.resolver)
            if any(m.casefold() in haystack for m in markers):
                marked.append(entry)
            elif not entry.markers_required:
                plain.append(entry)
        found = marked or plain
        return found[0] if found else None

    def is_family(self, status: str, resolver: str | None = None, text: str = "") -> bool:
        """Whether the bounce is one of the 5.7.12 family (fix same or related)."""
        return isinstance(self.code(status, resolver, text), FamilyCode)
