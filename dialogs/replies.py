"""What goes out, in the conversation's own words: replies that each channel renders its own way
(an Adaptive Card in Teams, Block Kit in Slack, plain text in the terminal)."""

from __future__ import annotations

from dataclasses import dataclass


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
