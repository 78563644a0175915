"""Who the bounce is about: the failed recipients with each one's own code, and the sender.

The machine part names the recipients when there is one; else an SMTP session's refusals, the
``##rfc822;`` diagnostics, the labelled and the plain addresses. A recipient named on its own
line takes the code of the diagnostic line that follows it; one without a code of its own gets
the bounce's only when it cannot be anyone else's. In a question, an address after "from" is the
sender.
"""

from __future__ import annotations

import re

from knowledge.ndr.addresses import find_addresses, is_system_address
from knowledge.ndr.mime import MimeFacts
from knowledge.ndr.scan import RFC822_RECIPIENT, Scan, before_headers, dedupe, first
from knowledge.ndr.status import (
    StatusHit,
    clean_status,
    is_failure,
    lines_with_offsets,
    status_hits,
)
from knowledge.ndr.transcripts import Transcript
from knowledge.words import lexicon as _lexicon

_ADDRESS_LINE_WORDS = 4  # what may stand beside an address on a line that only names a recipient
_PENDING_LINES = 4  # non-empty lines a named recipient waits for its diagnostic line
_LEADING_ADDRESS = re.compile(r"^[\s*_\[(]*<?[^\s<>@]{1,64}@[^\s<>]{1,255}>?\s*:")


_ADDRESS_LINE_MAX = 400  # characters: a longer line is prose, not a recipient's name


def _names_only_recipients(line: str, found: list[tuple[int, str]]) -> bool:
    """A line that names recipients and says nothing else: "sales@contoso.com",
    "Sales Team<mailto:sales@contoso.com>", "Recipient Address: a@b.com", "<a@b.com>: host ...".
    ``found`` is what ``find_addresses(line)`` gives, found once by the caller."""
    if _LEADING_ADDRESS.match(line):
        return True
    if len(line) > _ADDRESS_LINE_MAX:
        return False
    lex = _lexicon()
    label = lex.label_pattern.match(line.strip().lower())
    if label and label.group(1) in lex.recipient_labels:
        return True
    rest: list[str] = []
    position = 0
    for start, address in found:
        rest.append(line[position:start])
        position = start + len(address)
    rest.append(line[position:])
    words = " ".join(rest).replace("mailto:", " ")
    return len(words.split()) <= _ADDRESS_LINE_WORDS and not any(c in words for c in ".!?")


def _paired_codes(text: str, hits: list[StatusHit]) -> dict[str, str]:
    """Per recipient, the code of its own diagnostic line in a text bounce.

    The older Exchange format names each failed recipient on a line of its own, followed by its
    "Remote Server returned '550 5.7.x ...'" line; "#550 5.7.x ... ##rfc822;addr" names it on the
    diagnostic line itself; Postfix writes "<addr>: host ... said:" above the reply; the newer
    format's "Recipient Address:" line stands above "Reported error: 550 ...".
    """
    failing: dict[int, StatusHit] = {}
    for hit in hits:
        if hit.strong and is_failure(hit):
            failing.setdefault(hit.line_start, hit)
    codes: dict[str, str] = {}
    if not failing:
        return codes
    pending: list[str] = []
    waited = 0
    for offset, line in lines_with_offsets(before_headers(text)):
        if not line.strip():
            continue
        line_hit = failing.get(offset)
        if line_hit is not None:
            own = [
                a for m in RFC822_RECIPIENT.finditer(line) for _, a in find_addresses(m.group(1))
            ]
            leading = _LEADING_ADDRESS.match(line)
            if not own and leading:
                own = [a for _, a in find_addresses(leading.group(0))]
            for address in own or pending:
                codes.setdefault(address, line_hit.status)
            pending, waited = [], 0
            continue
        if "@" in line:
            found = list(find_addresses(line))
            addresses = [a for _, a in found if not is_system_address(a)]
            if addresses and _names_only_recipients(line, found):
                pending, waited = addresses, 0
                continue
        waited += 1
        if waited > _PENDING_LINES:
            pending = []
    return codes


def recipient_codes(
    text: str,
    hits: list[StatusHit],
    dsn_recipients: list[tuple[str, str | None, str | None]],
    transcript: Transcript,
) -> dict[str, str]:
    """Each failed recipient's own code: the machine part's, the SMTP session's, the text's."""
    codes: dict[str, str] = {}
    for address, dsn_status, dsn_diagnostic in dsn_recipients:
        found = clean_status(dsn_status)
        if found is None and dsn_diagnostic:
            found = next((h.status for h in status_hits(dsn_diagnostic)), None)
        for _, clean in find_addresses(address):
            if found:
                codes.setdefault(clean, found)
    if dsn_recipients:
        return codes
    for address, hit in transcript.refusals:
        codes.setdefault(address, hit.status)
    for address, found in _paired_codes(text, hits).items():
        codes.setdefault(address, found)
    return codes


def per_recipient_failures(
    recipients: tuple[str, ...],
    codes: dict[str, str],
    status: str | None,
    strong: list[StatusHit],
) -> tuple[tuple[str, str | None], ...]:
    """(address, status) per failed recipient. A recipient without a code of its own gets the
    bounce's code only when that cannot be anyone else's: it is the only recipient, or the
    bounce gives one failure code for all."""
    distinct = {hit.status for hit in strong if is_failure(hit)}
    shared = status if len(recipients) == 1 or distinct <= {status} else None
    out: list[tuple[str, str | None]] = []
    for index, address in enumerate(recipients):
        own = codes.get(address)
        if index == 0 and status is not None:
            own = status  # the first failure's code is the bounce's status
        out.append((address, own or shared))
    return tuple(out)


def failed_recipients(
    scan: Scan,
    dsn_recipients: list[tuple[str, str | None, str | None]],
    transcript: Transcript,
) -> tuple[str, ...]:
    """The failed recipients: the machine part's, else those an SMTP session refused, else the
    diagnostic's, else the labelled ones."""
    dsn = [a for address, *_ in dsn_recipients for _, a in find_addresses(address)]
    if dsn:
        return dedupe(dsn)
    if transcript.refusals:
        return dedupe(address for address, _ in transcript.refusals)
    if scan.rfc822_recipients:
        return dedupe(scan.rfc822_recipients)
    candidates = [*scan.labelled_recipients, *scan.body_addresses]
    return dedupe(
        a for a in candidates if not is_system_address(a) and a not in scan.labelled_senders
    )


def bounced_sender(
    scan: Scan, header_scan: Scan, mime: MimeFacts | None, transcript: Transcript
) -> str | None:
    """Who sent the message that bounced: the bounce's own addressee, or the original From."""
    ndr_to = None
    if mime and mime.is_ndr and mime.ndr_to:
        ndr_to = first(a for _, a in find_addresses(mime.ndr_to))
    candidates = [
        *scan.labelled_senders,
        ndr_to,
        *scan.wrapper_senders,
        *header_scan.header_from,
        *scan.header_from,
        transcript.mail_from,
    ]
    return first(a for a in candidates if a and not is_system_address(a))


_QUESTION_FROM = re.compile(r"\b(?:from|de|von|da|van|desde)\s+\S{0,80}$", re.IGNORECASE)


def question_addresses(text: str) -> tuple[tuple[str, ...], str | None]:
    """In a question, an address after "from" is the sender; the others are recipients."""
    recipients: list[str] = []
    sender: str | None = None
    for position, address in find_addresses(text):
        before = text[max(0, position - 40) : position]
        if sender is None and _QUESTION_FROM.search(before):
            sender = address
        else:
            recipients.append(address)
    return dedupe(recipients), sender
