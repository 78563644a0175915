"""The pydantic models of the data files, one section per file, and the field types they share.

Each model says what one YAML file may hold (``extra="forbid"``: an unknown field is an error, not
a silence) and checks what it can alone; what needs several files is :mod:`knowledge.kb.checks`.
The conversation texts have a room of their own (:mod:`knowledge.kb.conversation`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal, TypeAlias
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from knowledge.kb.vocabulary import (
    CentreId,
    Confidence,
    Family,
    MethodId,
    Placement,
    RecipientTypeId,
    StepFlag,
    TopicId,
    parse_status,
)


def _check_https(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc or any(c.isspace() for c in value):
        raise ValueError(f"must be an https URL, got {value!r}")
    return value


def _check_status(value: str) -> str:
    if parse_status(value) is None:
        raise ValueError(f"not an enhanced status code like 5.7.12: {value!r}")
    return value


def _check_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Source = Annotated[str, AfterValidator(_check_https)]
Status = Annotated[str, AfterValidator(_check_status)]
Text = Annotated[str, AfterValidator(_check_text)]


class Model(BaseModel):
    """The base of every model of the data: an unknown field is an error, and nothing changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- recipient_types.yaml -----------------------------------------------------------------------


class PowerShellCmdlets(Model):
    """The cmdlets that change and show one recipient type."""

    set_cmdlet: Text
    get_cmdlet: Text
    allowed_senders_parameters: tuple[Text, ...] = Field(min_length=1)
    source: Source


class RecipientType(Model):
    """A kind of recipient an admin can fix (user mailbox, distribution group, ...)."""

    id: RecipientTypeId
    label: Text
    family: Family
    synonyms: tuple[Text, ...]
    mentions: tuple[Text, ...] | None = None  # found inside sentences; default: the synonyms
    centres: tuple[CentreId, ...] = Field(min_length=1)
    powershell: PowerShellCmdlets
    source: Source


class RecipientTypesFile(Model):
    recipient_types: tuple[RecipientType, ...]


# ---- methods.yaml, centres.yaml, notes.yaml ----------------------------------------------------


class Method(Model):
    """One of the two ways to let an outside sender through."""

    id: MethodId
    label: Text
    short_label: Text
    tradeoff: Text
    synonyms: tuple[Text, ...]
    mentions: tuple[Text, ...] | None = None  # found inside sentences; default: the synonyms
    source: Source


class MethodsFile(Model):
    methods: tuple[Method, ...]


class Centre(Model):
    """Where an admin makes the change: the new EAC, the classic EAC or PowerShell."""

    id: CentreId
    label: Text
    synonyms: tuple[Text, ...]
    mentions: tuple[Text, ...] | None = None  # found inside sentences; default: the synonyms
    url: Source | None = None
    connect_command: Text | None = None
    how_to_open: Text
    source: Source


class CentresFile(Model):
    centres: tuple[Centre, ...]


class Note(Model):
    """A remark that procedures point to by id.

    ``placement`` says whether it is shown before the steps (a prerequisite) or after them;
    ``when`` lists the conditions it needs, as for a :class:`Step`.
    """

    id: Text
    text: Text
    placement: Placement = "after"
    when: tuple[StepFlag, ...] = ()
    confidence: Confidence = "confirmed"
    source: Source

    def applies(self, flags: frozenset[str]) -> bool:
        """Whether every condition of this note holds in ``flags``."""
        return set(self.when) <= flags


class NotesFile(Model):
    notes: tuple[Note, ...]


# ---- procedures.yaml ----------------------------------------------------------------------------


class Step(Model):
    """One step: text with **bold** UI labels, optional sub-steps, optional command.

    ``when`` lists the conditions (:data:`StepFlag`) under which the step is shown; a step
    without any is always shown.
    """

    text: Text
    substeps: tuple[Text, ...] = ()
    code: Text | None = None
    when: tuple[StepFlag, ...] = ()
    source: Source | None = None

    def applies(self, flags: frozenset[str]) -> bool:
        """Whether every condition of this step holds in ``flags``."""
        return set(self.when) <= flags


class Procedure(Model):
    """The steps for one method, in one admin centre, for one or more recipient types."""

    id: Text
    method: MethodId
    recipient_types: tuple[RecipientTypeId, ...] = Field(min_length=1)
    centre: CentreId
    title: Text
    steps: tuple[Step, ...] = Field(min_length=1)
    notes: tuple[Text, ...] = ()
    check: Text | None = None
    source: Source

    @field_validator("steps", mode="before")
    @classmethod
    def _plain_steps(cls, value: Any) -> Any:
        """A step written as a plain string is a step with only text."""
        if isinstance(value, list):
            return [{"text": item} if isinstance(item, str) else item for item in value]
        return value

    def steps_for(self, flags: frozenset[str]) -> tuple[Step, ...]:
        """The steps to show when the conditions in ``flags`` hold, in order.

        ``flags`` holds the :data:`StepFlag` values that are true for this bounce: for a 5.7.12
        from an outside (or unknown) sender, ``{"outside_sender", "auth_required"}``, which
        shows every step. :meth:`KnowledgeBase.step_flags` works them out from a bounce.
        """
        return tuple(step for step in self.steps if step.applies(flags))

    def texts(self) -> Iterable[str]:
        """Every piece of text and code in the procedure, for placeholder checks."""
        for step in self.steps:
            yield step.text
            yield from step.substeps
            if step.code is not None:
                yield step.code
        if self.check is not None:
            yield self.check


class ProceduresFile(Model):
    procedures: tuple[Procedure, ...]


# ---- codes.yaml ---------------------------------------------------------------------------------


class FamilyCode(Model):
    """A bounce code of the 5.7.12 family (fix ``same``) or next to it (fix ``related``)."""

    status: Status
    resolver: Text | None
    recipient_family: Family | None
    title: Text
    meaning: Text
    fix: Literal["same", "related"]
    note: Text | None = None
    text_markers: tuple[Text, ...] = ()
    markers_required: bool = False
    confidence: Confidence = "confirmed"
    source: Source


class Lookalike(Model):
    """A code that looks like 5.7.12 but is a different problem."""

    status: Status | None = None
    range: tuple[Status, Status] | None = None
    title: Text
    explanation: Text
    text_markers: tuple[Text, ...] = ()
    markers_required: bool = False
    source: Source

    @model_validator(mode="after")
    def _status_or_range(self) -> Lookalike:
        if (self.status is None) == (self.range is None):
            raise ValueError("give exactly one of status or range")
        if self.range is not None:
            low, high = (parse_status(s) for s in self.range)
            if low is None or high is None or low > high:
                raise ValueError("range must go from low to high")
        return self

    def covers(self, status: tuple[int, int, int]) -> bool:
        """Whether this entry is about ``status`` (numerically: 5.7.124 is never 5.7.12)."""
        if self.status is not None:
            return parse_status(self.status) == status
        if self.range is None:
            return False
        low, high = parse_status(self.range[0]), parse_status(self.range[1])
        return low is not None and high is not None and low <= status <= high


CodeEntry: TypeAlias = FamilyCode | Lookalike


class CodesFile(Model):
    family: tuple[FamilyCode, ...] = Field(min_length=1)
    lookalikes: tuple[Lookalike, ...]


# ---- sender.yaml, help.yaml ---------------------------------------------------------------------


class SourcedText(Model):
    text: Text
    source: Source


class AdminNote(Model):
    subject: Text
    body: Text
    source: Source


class OwnOrganization(Model):
    text: Text
    offer_escalation: bool
    source: Source


class SenderGuidance(Model):
    """What the bot tells the person whose message bounced."""

    article_title: Text
    article_url: Source
    who_can_fix: SourcedText
    what_to_do: SourcedText
    admin_note: AdminNote
    # For 5.7.124 and 5.7.129 the recipient has an allowed senders list: ask to be put on it.
    admin_note_related: AdminNote | None = None
    own_organization: OwnOrganization

    def texts(self) -> Iterable[tuple[str, str]]:
        """(field path, text) for every template, for placeholder checks."""
        yield "who_can_fix.text", self.who_can_fix.text
        yield "what_to_do.text", self.what_to_do.text
        yield "admin_note.subject", self.admin_note.subject
        yield "admin_note.body", self.admin_note.body
        if self.admin_note_related is not None:
            yield "admin_note_related.subject", self.admin_note_related.subject
            yield "admin_note_related.body", self.admin_note_related.body
        yield "own_organization.text", self.own_organization.text


class HelpText(Model):
    """The bot's greeting and help text."""

    greeting: Text
    help: Text
    capabilities: tuple[Text, ...]


# ---- topics.yaml --------------------------------------------------------------------------------


class Topic(Model):
    """The answer to a question people ask in the middle of a conversation ("why?", "is it risky?").

    ``text`` is a few plain sentences with **bold** UI labels; ``code`` is an optional command to
    copy, which may use ``{recipient}``. ``sources`` adds pages beyond ``source``.
    """

    id: TopicId
    title: Text
    text: Text
    code: Text | None = None
    confidence: Confidence = "confirmed"
    source: Source
    sources: tuple[Source, ...] = ()

    def texts(self) -> Iterable[tuple[str, str]]:
        """(field, text) for the text and the command, for placeholder checks."""
        yield "text", self.text
        if self.code is not None:
            yield "code", self.code


class Hint(Model):
    """What to tell someone who doesn't know the answer to one of the bot's questions.

    ``topic`` names a topic that says more.
    """

    text: Text
    source: Source
    topic: TopicId | None = None


class TopicsFile(Model):
    topics: tuple[Topic, ...]
    # Checked against HINT_SLOTS after loading, for a message that names the slot.
    hints: dict[str, Hint]
