"""The bounce's diagnosis: its status, SMTP code, resolver and diagnostic line, and the words
beside its code.

Of all the status hits in a bounce, the machine part's comes first, then the first failed
recipient's, then the most telling line (a resolver, words after the code). The words written
beside the chosen code (and the lines a server wrapped it onto) are what tell its meaning.
"""

from __future__ import annotations

import re

from knowledge.ndr.mime import MimeFacts
from knowledge.ndr.scan import Scan, first
from knowledge.ndr.status import (
    DIAGNOSTIC_WINDOW,
    STATUS,
    StatusHit,
    clean_status,
    is_failure,
    status_hits,
)
from knowledge.ndr.transcripts import RECIPIENT_COMMANDS

_NEAR_MAX_CHARS = 20_000  # of the lines beside a code, passed on to tell its meaning


_CONTINUATION_LINES = 2  # indented lines after a diagnostic line that carry on its text


def _continuation(text: str, hit: StatusHit) -> str:
    """The indented lines a server wrapped the hit's diagnostic line onto (Postfix: "550 5.7.13
    User account\n    disabled (in reply to RCPT TO command)"), as one line."""
    line_end = text.find("\n", hit.position, hit.position + DIAGNOSTIC_WINDOW)
    parts: list[str] = []
    for _ in range(_CONTINUATION_LINES):
        if line_end < 0 or text[line_end + 1 : line_end + 2] not in (" ", "\t"):
            break
        start = line_end + 1
        line_end = text.find("\n", start, start + DIAGNOSTIC_WINDOW)
        part = text[start : line_end if line_end >= 0 else start + DIAGNOSTIC_WINDOW].strip()
        if not part or STATUS.search(part):
            break  # a blank line, or another diagnostic
        parts.append(part)
    return " ".join(parts)


def words_beside(
    status: str,
    text: str,
    hits: list[StatusHit],
    dsn_recipients: list[tuple[str, str | None, str | None]],
) -> str:
    """The words written beside ``status``: what follows the code on each of its diagnostic
    lines (and on the indented lines a server wraps them onto), and the machine part's
    Diagnostic-Code. Words elsewhere in the bounce ("public folder" in a cause line about another
    recipient, the original message) are not the code's."""
    parts = [
        diagnostic
        for _, dsn_status, diagnostic in dsn_recipients
        if diagnostic and (clean_status(dsn_status) or clean_status(diagnostic)) == status
    ]
    size = sum(len(part) for part in parts)
    for hit in hits:
        if hit.status != status or size >= _NEAR_MAX_CHARS:
            continue
        line_end = text.find("\n", hit.position, hit.position + DIAGNOSTIC_WINDOW)
        own = text[hit.position : line_end if line_end >= 0 else hit.position + DIAGNOSTIC_WINDOW]
        part = f"{own.strip()} {_continuation(text, hit)}".strip()
        parts.append(part)
        size += len(part)
    return "\n".join(parts)[:_NEAR_MAX_CHARS]


def sent_date(scan: Scan, header_scan: Scan, mime: MimeFacts | None) -> str | None:
    """When the message that bounced was sent: its details' "Created Date", its own Date:
    header, the DSN's Arrival-Date; else the bounce's own date, or the forwarding block's."""
    return first(
        (
            scan.created,
            header_scan.header_date,
            scan.header_date,
            mime.arrival_date if mime else None,
            mime.ndr_date if mime else None,
            scan.date,
        )
    )


def diagnosis(
    hits: list[StatusHit],
    strong: list[StatusHit],
    dsn_recipients: list[tuple[str, str | None, str | None]],
    preferred: str | None = None,
    text: str = "",
) -> tuple[str | None, str | None, str | None, str | None]:
    """Status, SMTP code, resolver and diagnostic line of a bounce: the machine part first, then
    the code of the first failed recipient, then the most telling diagnostic line."""
    status = smtp_code = resolver = diagnostic = None
    if dsn_recipients:
        _, dsn_status, dsn_diagnostic = dsn_recipients[0]
        status = clean_status(dsn_status)
        if dsn_diagnostic:
            diagnostic = dsn_diagnostic.split(";", 1)[-1].strip()
            diagnostic_hit = next(status_hits(diagnostic), None)
            if diagnostic_hit:
                status = status or diagnostic_hit.status
                smtp_code, resolver = diagnostic_hit.smtp_code, diagnostic_hit.resolver
    status = status or preferred
    if strong:
        best = best_hit(strong, status)
        status = status or best.status
        if best.status == status:
            smtp_code = smtp_code or best.smtp_code
            resolver = resolver or best.resolver
            diagnostic = diagnostic or f"{best.line} {_continuation(text, best)}".strip()
    if status is None and hits:
        status = hits[0].status
    return status, smtp_code, resolver, diagnostic


def _hit_rank(hit: StatusHit) -> int:
    """Failures before successes; in an SMTP session, the reply that refused a recipient first."""
    if not is_failure(hit):
        return 3
    if hit.command in RECIPIENT_COMMANDS:
        return 0
    return 1 if hit.command is None else 2


_PROSE_AFTER = re.compile(r"\d\s+[A-Za-zÀ-ÿ]{2,}")


def best_hit(hits: list[StatusHit], status: str | None) -> StatusHit:
    """The diagnostic line most worth reporting: the one for ``status``, with a resolver if any,
    else one with words after the code (not a bare "Status code: 550 5.7.13")."""
    same = [hit for hit in hits if status is None or hit.status == status] or hits
    top = min(_hit_rank(hit) for hit in same)
    same = [hit for hit in same if _hit_rank(hit) == top]
    return (
        next((hit for hit in same if hit.resolver and hit.smtp_code), None)
        or next((hit for hit in same if hit.resolver), None)
        or next((hit for hit in same if _says_more(hit)), same[0])
    )


def _says_more(hit: StatusHit) -> bool:
    at = hit.line.find(hit.status)
    return at >= 0 and _PROSE_AFTER.match(hit.line, at + len(hit.status) - 1) is not None
