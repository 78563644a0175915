"""What goes out, in the conversation's own words: replies that each channel renders its own way
(an Adaptive Card in Teams, Block Kit in Slack, plain text in the terminal)."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, is_dataclass
from typing import Any, Final


@dataclass(frozen=True)
class Choice:
    """One button: ``value`` goes back in the click's payload, ``label`` is what people see."""

    value: str
    label: str


@dataclass(frozen=True)
class Text:
    """A plain message. ``**bold**`` marks the few words that matter."""

    text: str


@dataclass(frozen=True)
class Question:
    """A question the next turn answers. A click sends ``{"slot": slot, "answer": value}``."""

    text: str
    slot: str
    choices: tuple[Choice, ...] = ()


@dataclass(frozen=True)
class Fact:
    """One fact read from the bounce, shown beside an answer."""

    label: str
    value: str


@dataclass(frozen=True)
class Step:
    """One numbered step. UI labels are in ``**bold**``; ``code`` is a command to copy."""

    text: str
    substeps: tuple[str, ...] = ()
    code: str | None = None


@dataclass(frozen=True)
class StepsAnswer:
    """The admin's answer: the steps for one recipient type, method and admin centre."""

    title: str
    intro: str
    facts: tuple[Fact, ...]
    steps: tuple[Step, ...]
    notes_label: str
    notes: tuple[str, ...]
    check_label: str
    check: str | None
    source_label: str
    source: str


@dataclass(frozen=True)
class SenderAnswer:
    """The sender's answer: who can fix it, and a note to send that admin."""

    who_can_fix: str
    what_to_do: str
    facts: tuple[Fact, ...]
    note_heading: str
    note_subject_label: str  # "Subject", in the knowledge base's words
    note_subject: str
    note_body: str
    source_label: str
    source: str


@dataclass(frozen=True)
class TicketNotice:
    """A ticket was opened or joined for the user."""

    ticket_id: str
    text: str


Reply = Text | Question | StepsAnswer | SenderAnswer | TicketNotice


# ---- replies as JSON data (kept with a conversation's state, see bot.turns) ---------------------

_KINDS: Final[dict[str, type[Reply]]] = {
    kind.__name__: kind for kind in (Text, Question, StepsAnswer, SenderAnswer, TicketNotice)
}


def replies_data(replies: Iterable[Reply]) -> list[dict[str, Any]]:
    """Replies as JSON-ready data: each a dict of its fields and its ``kind``."""
    return [{"kind": type(reply).__name__, **asdict(reply)} for reply in replies]


def replies_of(data: Iterable[Mapping[str, Any]]) -> tuple[Reply, ...]:
    """The replies ``replies_data`` made (lists read back as tuples); ValueError when the data
    is not such replies (a kind or a field this version does not know, or one missing)."""
    replies: list[Reply] = []
    for item in data:
        kind = _KINDS.get(str(item.get("kind")))
        if kind is None:
            raise ValueError(f"not a kind of reply: {item.get('kind')!r}")
        values = {name: value for name, value in item.items() if name != "kind"}
        replies.append(_build(kind, values))
    return tuple(replies)


def _build(kind: type[Any], values: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(kind)
    known = {field.name for field in fields(kind)}
    if not set(values) <= known:
        raise ValueError(f"{kind.__name__} has no field {sorted(set(values) - known)}")
    try:
        return kind(**{name: _value(hints[name], value) for name, value in values.items()})
    except TypeError as error:  # a field missing
        raise ValueError(f"not a {kind.__name__}: {error}") from None


def _value(hint: Any, value: Any) -> Any:
    """``value`` read back as ``hint`` says: a tuple of parts, a part, or as it is."""
    if typing.get_origin(hint) is tuple and isinstance(value, list | tuple):
        (part, _) = typing.get_args(hint)
        return tuple(_value(part, item) for item in value)
    if isinstance(hint, type) and is_dataclass(hint) and isinstance(value, Mapping):
        return _build(hint, value)
    if isinstance(hint, types.UnionType) or value is None or isinstance(value, str | int | bool):
        return value
    raise ValueError(f"not a reply's field: {value!r}")
