"""Status codes in text: every ``5.7.12`` a line holds, with what stands beside it.

Each hit keeps its SMTP reply code, its resolver (``RESOLVER.RST....``), its line and whether a
mail server wrote it (a reply code or a DSN label: *strong*); a version number or a section of a
document ("MySQL 5.7.12", "section 5.1.1") is not a hit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

STATUS = re.compile(r"(?<![\w.#-])#?([245])\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)")
# STATUS as the reader searches a whole text for it: from the dot after the class digit. A pattern
# that starts with a lookbehind is tried at every position of the text; one that starts with a
# literal is found by the regex engine's fast scan, some twenty times quicker on a bounce. The
# class digit and the lookbehind are then checked at the few places found (``status_matches``).
_STATUS_TAIL = re.compile(r"\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)")
_NOT_BEFORE_STATUS = re.compile(r"[\w.#-]")
_SMTP_BEFORE = re.compile(r"(?:^|[^\d.])#?([245]\d\d)[ \t-]{1,3}#?$")
_STATUS_LABEL_BEFORE = re.compile(r"(?:status|statut)\s*:\s*$", re.IGNORECASE)
_RESOLVER = re.compile(
    r"^[\s;:'\"-]{1,3}((?:[A-Za-z][A-Za-z0-9]*)(?:\.[A-Za-z][A-Za-z0-9]*){1,6}"
    r"|[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*){1,8}(?=;))"
)
_NOT_A_STATUS_BEFORE = re.compile(
    r"(?:mysql|mariadb|postgres(?:ql)?|python|php|node(?:js)?|java|version|ver\.?|release|build"
    r"|kernel|firmware|ios|android|chrome|firefox|windows|ubuntu|debian|centos|rhel|nginx|apache"
    r"|openssl|update|upgraded? to|patch|sdk|api|app|v|ip|address|host|server|cu|rollup"
    # numbered parts of a document: "section 5.1.1", "§ 4.2.1", "Abschnitt 5.7.1"
    r"|section|sect?\.|chapter|clause|paragraph|article|§|figure|fig\.|appendix|annex|abschnitt"
    r"|kapitel|chapitre|capítulo|capitolo|hoofdstuk)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class StatusHit:
    status: str
    position: int
    smtp_code: str | None
    resolver: str | None
    line: str
    strong: bool  # carries an SMTP reply code or a DSN label: written by a mail server
    line_start: int = 0  # where the hit's line starts in the text
    # In an SMTP transcript: the command this is the reply to ("RCPT TO", "DATA", "MAIL FROM",
    # "EHLO", ...), and the recipients that command was about (the RCPT TO address; for DATA,
    # the recipients accepted before it).
    command: str | None = None
    command_addresses: tuple[str, ...] = ()


def lines_with_offsets(text: str) -> Iterator[tuple[int, str]]:
    position = 0
    while position <= len(text):
        end = text.find("\n", position)
        end = len(text) if end < 0 else end
        yield position, text[position:end]
        position = end + 1


DIAGNOSTIC_WINDOW = 600  # characters of a (possibly huge) line kept as the diagnostic line


def status_matches(text: str) -> Iterator[tuple[int, int, str, str, str]]:
    """(start, end, class, subject, detail) of each match of :data:`STATUS` in the text, the
    same and in the same order as ``STATUS.finditer`` gives them, found from their tails."""
    position = 0
    while (tail := _STATUS_TAIL.search(text, position)) is not None:
        dot = tail.start()
        position = dot + 1  # no match here: look again from the next character
        klass = text[dot - 1] if dot else ""
        if klass and klass in "245":
            start = dot - 1
            if start and _NOT_BEFORE_STATUS.match(text, start - 1):
                # "#5.7.1" counts when the "#" stands where the code may start.
                free = text[start - 1] == "#" and not (
                    start > 1 and _NOT_BEFORE_STATUS.match(text, start - 2)
                )
                start = start - 1 if free else -1
            if start >= 0:
                position = tail.end()
                yield start, position, klass, tail.group(1), tail.group(2)


def status_hits(text: str) -> Iterator[StatusHit]:
    """Every status code in the text, in order.

    One search over the whole text, not one per line: a code never spans a line break, and the
    lookarounds see a line break as they see a line's start or end, so the hits are the same.
    Only the lines that hold a code are cut out of the text.
    """
    line_start = line_end = -1
    line = previous = ""
    for start, end, klass, subject, detail in status_matches(text):
        if start > line_end:
            line_start = text.rfind("\n", 0, start) + 1
            line_end = text.find("\n", start)
            if line_end < 0:
                line_end = len(text)
            line = text[line_start:line_end]
            # The line before (for a reply wrapped after its SMTP code), empty for the first.
            previous = (
                text[text.rfind("\n", 0, line_start - 1) + 1 : line_start - 1] if line_start else ""
            )
        groups = (klass, subject, detail)
        hit = _status_hit(
            line, groups, start - line_start, end - line_start, offset=line_start, previous=previous
        )
        if hit is not None:
            yield hit


def _status_hit(
    line: str,
    groups: tuple[str, str, str],
    start: int,
    end: int,
    *,
    offset: int,
    previous: str,
) -> StatusHit | None:
    """The hit of the code at ``line[start:end]`` (its class, subject and detail digits; the
    line starts at ``offset`` of the text), or None when the number is no status code."""
    klass, subject, detail = groups
    if int(subject) > 7:
        return None
    before = line[max(0, start - 40) : start]
    tail = previous[-60:].rstrip() if not before.strip() else ""
    if tail[-1:].isdigit():
        # A server wrapped its reply after the SMTP code (Postfix: "... said: 550\n    5.7.13 ...").
        before = tail[-40:] + " "
    after = line[end : end + 160]
    if after.startswith("-") and after[1:2].isalpha():
        return None  # "5.7.12-log": a version string
    smtp = _SMTP_BEFORE.search(before)
    status_label = _STATUS_LABEL_BEFORE.search(before)
    if not smtp and not status_label and _NOT_A_STATUS_BEFORE.search(before):
        return None
    resolver_match = _RESOLVER.match(after)
    resolver = resolver_match.group(1) if resolver_match else None
    if resolver and resolver.lower().startswith(("smtp", "dns", "rfc822")):
        resolver = None
    return StatusHit(
        status=f"{klass}.{subject}.{detail}",
        position=offset + start,
        smtp_code=smtp.group(1) if smtp else None,
        resolver=resolver,
        line=line[max(0, start - DIAGNOSTIC_WINDOW // 4) : end + DIAGNOSTIC_WINDOW].strip(),
        strong=bool(smtp or status_label or resolver),
        line_start=offset,
    )


def is_failure(hit: StatusHit) -> bool:
    return hit.status[0] in "45"


def clean_status(value: str | None) -> str | None:
    if not value:
        return None
    match = STATUS.search(value.strip())
    return f"{match.group(1)}.{match.group(2)}.{match.group(3)}" if match else None
