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


def status_hits(text: str) -> Iterator[StatusHit]:
    previous = ""
    for offset, line in lines_with_offsets(text):
        if "." in line:
            for match in STATUS.finditer(line):
                hit = _status_hit(line, match, offset, previous)
                if hit is not None:
                    yield hit
        previous = line


def _status_hit(
    line: str, match: re.Match[str], offset: int, previous: str = ""
) -> StatusHit | None:
    klass, subject, detail = match.groups()
    if int(subject) > 7:
        return None
    start, end = match.span()
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
