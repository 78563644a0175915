"""Replies as plain text: the terminal channel, and every card's text fallback."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from dialogs.replies import (
    Fact,
    Question,
    Reply,
    SenderAnswer,
    StepsAnswer,
    Text,
    TicketNotice,
)

_BOLD = re.compile(r"\*\*(.+?)\*\*")


def render_text(reply: Reply, *, bold: tuple[str, str] = ("", "")) -> str:
    """One reply as text. ``bold`` wraps what the reply marks as bold (e.g. ANSI codes)."""

    def b(text: str) -> str:
        return _BOLD.sub(lambda m: f"{bold[0]}{m.group(1)}{bold[1]}", text)

    if isinstance(reply, Text | TicketNotice):
        return b(reply.text)
    if isinstance(reply, Question):
        lines = [b(reply.text)]
        lines += [f"  {number}. {choice.label}" for number, choice in enumerate(reply.choices, 1)]
        return "\n".join(lines)
    if isinstance(reply, StepsAnswer):
        return "\n".join(_steps(reply, b))
    return "\n".join(_sender(reply, b))


def render_all(replies: Iterable[Reply], *, bold: tuple[str, str] = ("", "")) -> str:
    """Several replies, separated by blank lines."""
    return "\n\n".join(render_text(reply, bold=bold) for reply in replies)


def _facts(facts: tuple[Fact, ...]) -> list[str]:
    return [f"  {fact.label}: {fact.value}" for fact in facts]


def _steps(reply: StepsAnswer, b: Callable[[str], str]) -> list[str]:
    lines = [b(f"**{reply.title}**"), b(reply.intro), *_facts(reply.facts), ""]
    for number, step in enumerate(reply.steps, 1):
        lines.append(f"{number}. {b(step.text)}")
        lines += [f"   - {b(sub)}" for sub in step.substeps]
        if step.code:
            lines += [f"      {line}" for line in step.code.splitlines()]
    if reply.notes:
        lines += ["", f"{reply.notes_label}:"]
        lines += [f"  - {b(note)}" for note in reply.notes]
    if reply.check:
        lines += ["", f"{reply.check_label}:", f"      {reply.check}"]
    lines += ["", f"{reply.source_label}: {reply.source}"]
    return lines


def _sender(reply: SenderAnswer, b: Callable[[str], str]) -> list[str]:
    lines = [b(reply.who_can_fix), b(reply.what_to_do), *_facts(reply.facts), ""]
    lines += [reply.note_heading, "", f"  {reply.note_subject_label}: {reply.note_subject}", ""]
    lines += [f"  {line}".rstrip() for line in reply.note_body.splitlines()]
    lines += ["", f"{reply.source_label}: {reply.source}"]
    return lines
