"""The knowledge base: loads and checks the YAML files in ``knowledge/data`` and answers lookups.

Nothing is read at import time; call :func:`load_knowledge` or :func:`default_knowledge`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias, TypeVar, get_args
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "HINT_SLOTS",
    "PROCEDURE_PLACEHOLDERS",
    "RECIPIENT_TYPE_IDS",
    "SENDER_PLACEHOLDERS",
    "STEP_FLAGS",
    "TOPIC_IDS",
    "TOPIC_PLACEHOLDERS",
    "Centre",
    "CentreId",
    "ChoiceText",
    "CodeEntry",
    "ConversationText",
    "Family",
    "FamilyCode",
    "HelpText",
    "Hint",
    "HintSlot",
    "KnowledgeBase",
    "KnowledgeError",
    "Lookalike",
    "Method",
    "MethodId",
    "Note",
    "Placement",
    "Procedure",
    "RecipientType",
    "RecipientTypeId",
    "SenderGuidance",
    "Step",
    "StepFlag",
    "Topic",
    "TopicId",
    "default_knowledge",
    "fill_placeholders",
    "load_knowledge",
    "parse_status",
    "placeholders_in",
]

DATA_DIR = Path(__file__).parent / "data"

MethodId: TypeAlias = Literal["allow_all", "allowed_senders"]
CentreId: TypeAlias = Literal["new_eac", "classic_eac", "powershell"]
RecipientTypeId: TypeAlias = Literal[
    "user_mailbox",
    "shared_mailbox",
    "distribution_group",
    "security_group",
    "dynamic_distribution_group",
    "m365_group",
    "mail_user",
    "public_folder",
]
Family: TypeAlias = Literal["mailbox", "group", "m365_group", "mail_user", "public_folder"]
Confidence: TypeAlias = Literal["confirmed", "uncertain"]
#: Conditions a procedure step or a note can be shown under (see :meth:`Procedure.steps_for`):
#: ``outside_sender``: the sender is outside the recipient's organization, or not known;
#: ``auth_required``: the bounce means the recipient requires authenticated senders (the 5.7.12
#: family proper, not the related 5.7.124/5.7.129, whose recipient already has a senders list).
StepFlag: TypeAlias = Literal["outside_sender", "auth_required"]
#: Where a note goes: ``before`` the steps (a prerequisite) or ``after`` them (the default).
Placement: TypeAlias = Literal["before", "after"]
#: The questions people ask in the middle of a conversation, answered in topics.yaml.
TopicId: TypeAlias = Literal["why", "risk", "find_type", "delay", "mail_user", "methods"]
#: The questions the dialogs ask, each with a hint for someone who doesn't know the answer.
HintSlot: TypeAlias = Literal["role", "recipient_type", "method", "centre", "recipient"]

# The same ids as tuples, in order, read off the types so the two cannot drift apart.
FAMILIES: tuple[Family, ...] = get_args(Family)
METHOD_IDS: tuple[MethodId, ...] = get_args(MethodId)
CENTRE_IDS: tuple[CentreId, ...] = get_args(CentreId)
RECIPIENT_TYPE_IDS: tuple[RecipientTypeId, ...] = get_args(RecipientTypeId)
STEP_FLAGS: frozenset[StepFlag] = frozenset(get_args(StepFlag))
TOPIC_IDS: tuple[TopicId, ...] = get_args(TopicId)
HINT_SLOTS: tuple[HintSlot, ...] = get_args(HintSlot)

#: Placeholders allowed in procedure steps and commands.
PROCEDURE_PLACEHOLDERS: frozenset[str] = frozenset({"recipient", "sender"})
#: Placeholders allowed in the sender's texts and the note for the recipient's admin.
SENDER_PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "recipient",
        "recipient_domain",
        "sender",
        "status",
        "smtp_code",
        "date",
        "subject",
        "article_url",
    }
)

#: Placeholders allowed in topics (text and command) and in hints.
TOPIC_PLACEHOLDERS: frozenset[str] = frozenset({"recipient"})

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_STATUS = re.compile(r"(?:[245]\d\d[ -])?([245])\.(\d{1,3})\.(\d{1,3})")

FILES = {
    "recipient_types": "recipient_types.yaml",
    "methods": "methods.yaml",
    "centres": "centres.yaml",
    "notes": "notes.yaml",
    "procedures": "procedures.yaml",
    "codes": "codes.yaml",
    "sender": "sender.yaml",
    "help": "help.yaml",
    "conversation": "conversation.yaml",
    "topics": "topics.yaml",
}

# libyaml's safe loader where PyYAML was built with it (ten times faster), else the pure one.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class KnowledgeError(Exception):
    """The knowledge data is missing or wrong; the message names the file and the field."""


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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- recipient_types.yaml -----------------------------------------------------------------------


class PowerShellCmdlets(_Model):
    """The cmdlets that change and show one recipient type."""

    set_cmdlet: Text
    get_cmdlet: Text
    allowed_senders_parameters: tuple[Text, ...] = Field(min_length=1)
    source: Source


class RecipientType(_Model):
    """A kind of recipient an admin can fix (user mailbox, distribution group, ...)."""

    id: RecipientTypeId
    label: Text
    family: Family
    synonyms: tuple[Text, ...]
    mentions: tuple[Text, ...] | None = None  # found inside sentences; default: the synonyms
    centres: tuple[CentreId, ...] = Field(min_length=1)
    powershell: PowerShellCmdlets
    source: Source


class _RecipientTypesFile(_Model):
    recipient_types: tuple[RecipientType, ...]


# ---- methods.yaml, centres.yaml, notes.yaml ----------------------------------------------------


class Method(_Model):
    """One of the two ways to let an outside sender through."""

    id: MethodId
    label: Text
    short_label: Text
    tradeoff: Text
    synonyms: tuple[Text, ...]
    mentions: tuple[Text, ...] | None = None  # found inside sentences; default: the synonyms
    source: Source


class _MethodsFile(_Model):
    methods: tuple[Method, ...]


class Centre(_Model):
    """Where an admin makes the change: the new EAC, the classic EAC or PowerShell."""

    id: CentreId
    label: Text
    synonyms: tuple[Text, ...]
    mentions: tuple[Text, ...] | None = None  # found inside sentences; default: the synonyms
    url: Source | None = None
    connect_command: Text | None = None
    how_to_open: Text
    source: Source


class _CentresFile(_Model):
    centres: tuple[Centre, ...]


class Note(_Model):
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


class _NotesFile(_Model):
    notes: tuple[Note, ...]


# ---- procedures.yaml ----------------------------------------------------------------------------


class Step(_Model):
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


class Procedure(_Model):
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


class _ProceduresFile(_Model):
    procedures: tuple[Procedure, ...]


# ---- codes.yaml ---------------------------------------------------------------------------------


class FamilyCode(_Model):
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


class Lookalike(_Model):
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


class _CodesFile(_Model):
    family: tuple[FamilyCode, ...] = Field(min_length=1)
    lookalikes: tuple[Lookalike, ...]


# ---- sender.yaml, help.yaml ---------------------------------------------------------------------


class SourcedText(_Model):
    text: Text
    source: Source


class AdminNote(_Model):
    subject: Text
    body: Text
    source: Source


class OwnOrganization(_Model):
    text: Text
    offer_escalation: bool
    source: Source


class SenderGuidance(_Model):
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


class HelpText(_Model):
    """The bot's greeting and help text."""

    greeting: Text
    help: Text
    capabilities: tuple[Text, ...]


# ---- topics.yaml --------------------------------------------------------------------------------


class Topic(_Model):
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


class Hint(_Model):
    """What to tell someone who doesn't know the answer to one of the bot's questions.

    ``topic`` names a topic that says more.
    """

    text: Text
    source: Source
    topic: TopicId | None = None


class _TopicsFile(_Model):
    topics: tuple[Topic, ...]
    # Checked against HINT_SLOTS after loading, for a message that names the slot.
    hints: dict[str, Hint]


# ---- conversation.yaml --------------------------------------------------------------------------

#: The texts the dialogs say; conversation.yaml must define each of them.
CONVERSATION_TEXTS: frozenset[str] = frozenset(
    {
        "ask_role",
        "role_remembered_sender",
        "role_remembered_admin",
        "ask_recipient_address",
        "ask_recipient_type",
        "ask_recipient_type_narrow",
        "code_tells_type",
        "ask_method",
        "ask_centre",
        "mail_user_classic_only",
        "centre_not_available",
        "only_centre",
        "only_centre_ruled_out",
        "steps_intro",
        "ask_fixed",
        "fixed_yes",
        "fixed_no",
        "sender_own_domain",
        "sender_unknown_recipient",
        "sender_done",
        "reask",
        "reask_again",
        "cancelled",
        "nothing_to_cancel",
        "started_over",
        "new_bounce",
        "feedback_thanks",
        "feedback_sorry",
        "fallback",
        "other_code",
        "other_code_unknown",
        "family_intro",
        "related_code",
        "noted",
        "noted_not",
        "changed",
        "type_conflicts_code",
        "related_code_list_only",
        "bounce_names_type",
        "did_you_mean",
        "confirm_cancel",
        "confirm_start_over",
        "confirm_escalate",
        "confirm_go_back",
        "already_noted",
        "going_back",
        "nothing_to_go_back",
        "dont_know_generic",
        "ask_target_type",
        "steps_each_recipient",
        "several_recipients",
        "before_you_start",
        "facts_recipient",
        "facts_about",
        "facts_sender",
        "facts_status",
        "facts_subject",
        "facts_date",
        "facts_type",
        "facts_notes",
        "facts_check",
        "facts_source",
        "sender_note_heading",
        "turn_error",
        "file_refused",
        "escalate_ask_note",
        "escalate_ask_about",
        "my_ticket_line_about",
        "escalate_opened",
        "escalate_joined",
        "escalate_cancelled",
        "escalate_failed",
        "escalate_unavailable",
        "ticket_assigned",
        "ticket_reply",
        "ticket_resolved",
        "ticket_reopened",
        "ticket_ask_fixed",
        "ticket_fixed_yes",
        "ticket_reopen_failed",
        "ticket_note_took",
        "ticket_note_assigned",
        "ticket_note_replied",
        "ticket_note_resolved",
        "ticket_note_reopened",
        "ticket_note_requester_reopened",
        "ticket_note_joined",
        "ticket_reminder",
        "ticket_done_took",
        "ticket_done_assigned",
        "ticket_done_replied",
        "ticket_done_resolved",
        "ticket_done_reopened",
        "ticket_done_on_current",
        "ticket_refused_not_admin",
        "ticket_refused_unknown",
        "ticket_refused_yours",
        "ticket_refused_assigned",
        "ticket_refused_resolved",
        "ticket_refused_not_resolved",
        "ticket_refused_no_assignee",
        "ticket_refused_no_text",
        "ticket_refused_no_note",
        "ticket_refused_busy",
        "ticket_refused_duplicate",
        "admins_registered",
        "admins_moved",
        "admins_already",
        "admins_refused",
        "my_tickets_heading",
        "my_ticket_line",
        "my_tickets_none",
        "file_too_large",
        "file_download_failed",
        "button_choose",
        "button_help",
        "note_subject_label",
        "clicked_choice",
        "answer_in_dm",
        "home_title",
        "home_how_to",
        "home_tickets_title",
        "home_no_tickets",
        "home_more_tickets",
        # Slack tickets
        "slack_ticket_header",
        "slack_ticket_status_open",
        "slack_ticket_status_assigned",
        "slack_ticket_status_resolved",
        "slack_ticket_fallback",
        "slack_ticket_requesters",
        "slack_ticket_assignee",
        "slack_ticket_nobody",
        "slack_ticket_path",
        "ticket_role_sender",
        "ticket_role_admin",
        "slack_ticket_note",
        "slack_ticket_unknown",
        "slack_ticket_times",
        "slack_ticket_assign_me",
        "slack_ticket_assign",
        "slack_ticket_reply",
        "slack_ticket_resolve",
        "slack_ticket_reopen",
        "slack_modal_assign_title",
        "slack_modal_assign_label",
        "slack_modal_assign_submit",
        "slack_modal_reply_title",
        "slack_modal_reply_label",
        "slack_modal_reply_hint",
        "slack_modal_reply_submit",
        "slack_modal_resolve_title",
        "slack_modal_resolve_label",
        "slack_modal_resolve_hint",
        "slack_modal_resolve_submit",
        "slack_modal_cancel",
        "slack_modal_required",
        # Teams tickets
        "teams_ticket_title",
        "teams_ticket_status_open",
        "teams_ticket_status_assigned",
        "teams_ticket_status_resolved",
        "teams_ticket_unknown",
        "teams_ticket_more",
        "teams_ticket_nobody",
        "teams_ticket_fact_requesters",
        "teams_ticket_fact_assignee",
        "teams_ticket_fact_recipient",
        "teams_ticket_fact_about",
        "teams_ticket_fact_sender",
        "teams_ticket_fact_code",
        "teams_ticket_fact_subject",
        "teams_ticket_fact_date",
        "teams_ticket_fact_path",
        "teams_ticket_note",
        "teams_ticket_admins_act",
        "teams_ticket_refresh",
        "teams_ticket_assign_me",
        "teams_ticket_assign",
        "teams_ticket_assign_label",
        "teams_ticket_assign_submit",
        "teams_ticket_reply",
        "teams_ticket_reply_label",
        "teams_ticket_reply_hint",
        "teams_ticket_reply_submit",
        "teams_ticket_resolve",
        "teams_ticket_resolve_label",
        "teams_ticket_resolve_hint",
        "teams_ticket_resolve_submit",
        "teams_ticket_reopen",
        "teams_ticket_required",
        "teams_register_in_channel",
    }
)
#: The choice sets the dialogs offer, with the values each must have.
CONVERSATION_CHOICES: dict[str, frozenset[str]] = {
    "role": frozenset({"sender", "admin"}),
    "fixed": frozenset({"yes", "no", "escalate"}),
    "after_failure": frozenset({"other_method", "escalate", "start_over"}),
    "sender_own_domain": frozenset({"escalate", "no"}),
    "escalate_note": frozenset({"no_note", "cancel"}),
    "ticket_fixed": frozenset({"yes", "no"}),
    "confirm": frozenset({"yes", "no"}),
    "stuck": frozenset({"escalate"}),
}


class ChoiceText(_Model):
    """One answer the bot offers, with the words that choose it."""

    value: Text
    label: Text
    synonyms: tuple[Text, ...] = ()
    mentions: tuple[Text, ...] = ()


class FamilyText(_Model):
    """How the bot names a coarse recipient type: as a label, and in a sentence."""

    label: Text
    description: Text


class ConversationText(_Model):
    """The bot's own questions, replies and choices."""

    texts: dict[str, Text]
    families: dict[Family, FamilyText]
    choices: dict[str, tuple[ChoiceText, ...]]

    @model_validator(mode="after")
    def _complete(self) -> ConversationText:
        missing = sorted(CONVERSATION_TEXTS - self.texts.keys())
        if missing:
            raise ValueError(f"texts: missing {missing}")
        missing = sorted(set(FAMILIES) - self.families.keys())
        if missing:
            raise ValueError(f"families: missing {missing}")
        for name, values in CONVERSATION_CHOICES.items():
            have = {choice.value for choice in self.choices.get(name, ())}
            if have != values:
                raise ValueError(
                    f"choices.{name}: values must be {sorted(values)}, not {sorted(have)}"
                )
        return self

    def family(self, family: str) -> FamilyText:
        """How to name a coarse recipient type, as a label and in a sentence."""
        found = next((text for key, text in self.families.items() if key == family), None)
        return found or FamilyText(label=family, description=family)

    def text(self, key: str, **values: str) -> str:
        """The text ``key`` with its placeholders filled in."""
        return fill_placeholders(self.texts[key], values)


# ---- helpers ------------------------------------------------------------------------------------


def parse_status(status: str) -> tuple[int, int, int] | None:
    """``"5.7.12"`` or ``"550 5.7.12"`` -> ``(5, 7, 12)``; anything else -> None."""
    match = _STATUS.fullmatch(status.strip())
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3])


def placeholders_in(text: str) -> set[str]:
    """The ``{name}`` placeholders in a text (PowerShell's ``@{Add="..."}`` is not one)."""
    return set(_PLACEHOLDER.findall(text))


def fill_placeholders(template: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}`` with ``values[name]``; other braces are left alone (unlike str.format)."""

    def replace(match: re.Match[str]) -> str:
        return values.get(match[1], match[0])

    return _PLACEHOLDER.sub(replace, template)


def _display(path: Path) -> str:
    """The file as the error shows it: relative to the project for packaged data."""
    try:
        return path.resolve().relative_to(DATA_DIR.parent.parent.resolve()).as_posix()
    except ValueError:
        return str(path)


def _loc_path(loc: tuple[int | str, ...]) -> str:
    """``("procedures", 3, "steps", 0)`` -> ``"procedures[3].steps[0]"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


M = TypeVar("M", bound=BaseModel)


def _read(path: Path, model: type[M]) -> M:
    shown = _display(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KnowledgeError(f"{shown}: file not found") from None
    except OSError as exc:
        raise KnowledgeError(f"{shown}: cannot read: {exc}") from exc
    try:
        data = yaml.load(raw, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise KnowledgeError(f"{shown}: {where}YAML syntax error: {problem}") from exc
    if not isinstance(data, dict):
        raise KnowledgeError(f"{shown}: (top level): expected a mapping of fields")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"{shown}: {_loc_path(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise KnowledgeError("\n".join(lines)) from exc


def _fail(directory: Path, key: str, field: str, message: str) -> KnowledgeError:
    return KnowledgeError(f"{_display(directory / FILES[key])}: {field}: {message}")


# ---- the knowledge base -------------------------------------------------------------------------


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


# ---- loading and checking -----------------------------------------------------------------------


def _unique(directory: Path, key: str, list_name: str, ids: Iterable[str]) -> None:
    seen: set[str] = set()
    for index, item_id in enumerate(ids):
        if item_id in seen:
            raise _fail(directory, key, f"{list_name}[{index}].id", f"duplicate id {item_id!r}")
        seen.add(item_id)


def _exactly(
    directory: Path, key: str, list_name: str, ids: Iterable[str], expected: Iterable[str]
) -> None:
    have, want = set(ids), set(expected)
    if have != want:
        missing, extra = sorted(want - have), sorted(have - want)
        raise _fail(
            directory,
            key,
            list_name,
            f"ids must be {sorted(want)}; missing {missing}, unexpected {extra}",
        )


def _check(directory: Path, kb: KnowledgeBase) -> None:
    _unique(directory, "recipient_types", "recipient_types", (r.id for r in kb.recipient_types))
    _exactly(
        directory,
        "recipient_types",
        "recipient_types",
        (r.id for r in kb.recipient_types),
        RECIPIENT_TYPE_IDS,
    )
    _unique(directory, "methods", "methods", (m.id for m in kb.methods))
    _exactly(directory, "methods", "methods", (m.id for m in kb.methods), METHOD_IDS)
    _unique(directory, "centres", "centres", (c.id for c in kb.centres))
    _exactly(directory, "centres", "centres", (c.id for c in kb.centres), CENTRE_IDS)
    _unique(directory, "notes", "notes", (n.id for n in kb.notes))
    _unique(directory, "procedures", "procedures", (p.id for p in kb.procedures))

    note_ids = {n.id for n in kb.notes}
    for index, proc in enumerate(kb.procedures):
        where = f"procedures[{index}]"
        for n_index, note_id in enumerate(proc.notes):
            if note_id not in note_ids:
                raise _fail(
                    directory,
                    "procedures",
                    f"{where}.notes[{n_index}]",
                    f"unknown note id {note_id!r}",
                )
        for text in proc.texts():
            unknown = placeholders_in(text) - PROCEDURE_PLACEHOLDERS
            if unknown:
                raise _fail(
                    directory,
                    "procedures",
                    where,
                    f"unknown placeholder(s) {sorted(unknown)}; "
                    f"allowed: {sorted(PROCEDURE_PLACEHOLDERS)}",
                )
        for t_index, type_id in enumerate(proc.recipient_types):
            if proc.centre not in kb.recipient_type(type_id).centres:
                raise _fail(
                    directory,
                    "procedures",
                    f"{where}.recipient_types[{t_index}]",
                    f"{type_id!r} does not list centre {proc.centre!r} in recipient_types.yaml",
                )
        if proc.centre == "new_eac" and "mail_user" in proc.recipient_types:
            raise _fail(
                directory,
                "procedures",
                f"{where}.centre",
                "mail users cannot be changed in the new EAC",
            )

    for r_index, rtype in enumerate(kb.recipient_types):
        if not kb.procedures_for("allow_all", rtype.id):
            raise _fail(
                directory, "procedures", "procedures", f"no allow_all procedure for {rtype.id!r}"
            )
        for method_id in METHOD_IDS:
            if not kb.procedures_for(method_id, rtype.id, "powershell"):
                raise _fail(
                    directory,
                    "procedures",
                    "procedures",
                    f"no PowerShell procedure for {method_id!r} and {rtype.id!r}",
                )
        for c_index, centre_id in enumerate(rtype.centres):
            if not any(
                p.centre == centre_id for p in kb.procedures if rtype.id in p.recipient_types
            ):
                raise _fail(
                    directory,
                    "recipient_types",
                    f"recipient_types[{r_index}].centres[{c_index}]",
                    f"no procedure for {rtype.id!r} in {centre_id!r}",
                )

    for index, proc in enumerate(kb.procedures):
        if not proc.steps_for(frozenset()):
            raise _fail(
                directory,
                "procedures",
                f"procedures[{index}].steps",
                "every step has conditions (when); at least one must be shown always",
            )

    _check_topics(directory, kb)

    for field, text in kb.sender_guidance.texts():
        unknown = placeholders_in(text) - SENDER_PLACEHOLDERS
        if unknown:
            raise _fail(
                directory,
                "sender",
                field,
                f"unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(SENDER_PLACEHOLDERS)}",
            )


def _check_topics(directory: Path, kb: KnowledgeBase) -> None:
    _unique(directory, "topics", "topics", (t.id for t in kb.topics))
    _exactly(directory, "topics", "topics", (t.id for t in kb.topics), TOPIC_IDS)
    allowed = f"allowed: {sorted(TOPIC_PLACEHOLDERS)}"
    for index, topic in enumerate(kb.topics):
        for field, text in topic.texts():
            unknown = placeholders_in(text) - TOPIC_PLACEHOLDERS
            if unknown:
                raise _fail(
                    directory,
                    "topics",
                    f"topics[{index}].{field}",
                    f"unknown placeholder(s) {sorted(unknown)}; {allowed}",
                )
    for slot, hint in kb.hints.items():
        if slot not in HINT_SLOTS:
            raise _fail(
                directory,
                "topics",
                f"hints.{slot}",
                f"unknown slot {slot!r}; slots are {list(HINT_SLOTS)}",
            )
        unknown = placeholders_in(hint.text) - TOPIC_PLACEHOLDERS
        if unknown:
            raise _fail(
                directory,
                "topics",
                f"hints.{slot}.text",
                f"unknown placeholder(s) {sorted(unknown)}; {allowed}",
            )
    missing = [slot for slot in HINT_SLOTS if slot not in kb.hints]
    if missing:
        raise _fail(directory, "topics", "hints", f"missing hints for {missing}")


def load_knowledge(directory: Path | None = None) -> KnowledgeBase:
    """Read and check every knowledge file in ``directory`` (default: the packaged data)."""
    folder = DATA_DIR if directory is None else directory

    def path(key: str) -> Path:
        return folder / FILES[key]

    codes = _read(path("codes"), _CodesFile)
    topics = _read(path("topics"), _TopicsFile)
    kb = KnowledgeBase(
        recipient_types=_read(path("recipient_types"), _RecipientTypesFile).recipient_types,
        methods=_read(path("methods"), _MethodsFile).methods,
        centres=_read(path("centres"), _CentresFile).centres,
        notes=_read(path("notes"), _NotesFile).notes,
        procedures=_read(path("procedures"), _ProceduresFile).procedures,
        family=codes.family,
        lookalikes=codes.lookalikes,
        sender_guidance=_read(path("sender"), SenderGuidance),
        help_text=_read(path("help"), HelpText),
        conversation=_read(path("conversation"), ConversationText),
        topics=topics.topics,
        hints=topics.hints,
    )
    _check(folder, kb)
    return kb


@functools.cache
def default_knowledge() -> KnowledgeBase:
    """The packaged knowledge base, loaded once."""
    return load_knowledge()
