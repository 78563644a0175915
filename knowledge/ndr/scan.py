"""The structure of a bounce's text: forwarding blocks, pasted headers, labelled addresses.

A bounce pasted into chat is often forwarded ("From: Microsoft Outlook ... Subject: Undeliverable:
..."), carries the original message's headers below it, and labels its addresses in one of
several languages. :func:`scan_text` reads every line once and sorts what it finds by the part of
the bounce it is in, so the sender is never taken for a recipient.

Most lines of a bounce hold no label, header, address or separator: every one of those has a
":", an "@", or a run of "-" or "_". A line without them is only checked for the start of the
headers section (found by one search of the whole text), never put through the other patterns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache

from knowledge.ndr.addresses import find_addresses, is_system_address_text
from knowledge.words import lexicon as _lexicon

_FORWARD_SEPARATOR = re.compile(
    r"^\s*(?:-{3,}\s*[^-\n]{3,60}?\s*-{3,}|_{10,}|Begin forwarded message:|"
    r"On .{5,200} wrote:|Le .{5,200} a écrit\s*:|Am .{5,200} schrieb .{1,200}:)\s*$",
    re.MULTILINE,
)
_WRAPPER_FIELDS = {
    "from": "from",
    "de": "from",
    "von": "from",
    "da": "from",
    "van": "from",
    "to": "to",
    "à": "to",
    "a": "to",
    "an": "to",
    "para": "to",
    "aan": "to",
    "cc": "cc",
    "subject": "subject",
    "objet": "subject",
    "betreff": "subject",
    "asunto": "subject",
    "oggetto": "subject",
    "onderwerp": "subject",
    "assunto": "subject",
    "sent": "date",
    "date": "date",
    "envoyé": "date",
    "gesendet": "date",
    "datum": "date",
    "enviado": "date",
    "enviado el": "date",
    "enviada em": "date",
    "inviato": "date",
    "verzonden": "date",
    "fecha": "date",
    "data": "date",
}
_WRAPPER_LINE = re.compile(
    r"^[\s*]{0,4}([A-Za-zÀ-ÿ]{1,10}(?: [a-zé]{1,3})?)[\s*]{0,2}:[\s*]{0,3}(.*)$"
)


def _wrapper_blocks(lines: list[str]) -> Iterator[tuple[dict[str, str], range]]:
    """Yield the From/To/Subject blocks that forwarding puts above a quoted message, with the
    indexes of their lines."""
    block: dict[str, str] = {}
    start = 0
    for index, line in enumerate([*lines, ""]):
        match = _WRAPPER_LINE.match(line) if ":" in line else None
        key = _WRAPPER_FIELDS.get(match.group(1).strip().lower()) if match else None
        if match and key:
            if not block:
                start = index
            block.setdefault(key, match.group(2).strip())
            continue
        if len(block) >= 2 and "from" in block:
            yield block, range(start, index)
        block = {}


def strip_subject(subject: str) -> str:
    prefixes = _lexicon().subject_prefixes
    changed = True
    subject = subject.strip()
    while changed and subject:
        changed = False
        lowered = subject.lower()
        for prefix in prefixes:
            if lowered.startswith(prefix):
                subject = subject[len(prefix) :].strip()
                changed = True
                break
    return subject


@dataclass
class Scan:
    """Addresses and labels found in the readable text, by the part of the bounce they are in."""

    labelled_senders: list[str] = field(default_factory=list)
    labelled_recipients: list[str] = field(default_factory=list)
    header_from: list[str] = field(default_factory=list)
    body_addresses: list[str] = field(default_factory=list)
    wrapper_senders: list[str] = field(default_factory=list)
    rfc822_recipients: list[str] = field(default_factory=list)
    subject: str | None = None
    header_subject: str | None = None  # the Subject: line among the original message's headers
    wrapper_subject: str | None = None  # the bounce's own subject, from its forwarding headers
    server: str | None = None
    date: str | None = None  # the forwarding block's date (when the bounce was forwarded)
    created: str | None = None  # "Created Date:" of the original message's details
    header_date: str | None = None  # the Date: line among the original message's headers
    forwarded: bool = False


RFC822_RECIPIENT = re.compile(r"##\s*(?:rfc822;)?\s*([^\s#>]{3,320})", re.IGNORECASE)
_HEADER_FROM = re.compile(r"^\s*(?:from|de|von|da|van)\s*:", re.IGNORECASE)
RAW_HEADER = re.compile(
    r"^(?:received|return-path|message-id|x-[\w-]{1,60}|authentication-results|dkim-signature"
    r"|arc-[\w-]{1,20}|content-[\w-]{1,30}|mime-version|in-reply-to|references|thread-[\w-]{1,20}"
    r"|reply-to|cc|bcc|to|from|date|subject|importance|accept-language|sender)\s*:",
    re.IGNORECASE,
)


@cache
def _header_section_starts() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The lexicon's headers-section pattern, to search a whole lowered text at once: for the
    first line, and for a line after a line break (a literal the regex engine scans for fast,
    where a MULTILINE "^" is tried at every position). A line's leading spaces are
    ``[^\\S\\n]*``, where ``\\s*`` would run on across line breaks."""
    pattern = _lexicon().header_section_pattern.pattern
    if not pattern.startswith("^\\s*"):
        raise ValueError(f"unexpected headers-section pattern: {pattern[:40]}")
    markers = pattern[len("^\\s*") :]
    return re.compile(r"[^\S\n]*" + markers), re.compile(r"\n[^\S\n]*" + markers)


def header_section_lines(text: str) -> list[int]:
    """Indexes of the lines that open a headers section ("Original message headers:"), in order.

    The same lines as matching the lexicon's pattern line by line: lowering the whole text
    lowers each line as it would alone (no case rule looks across a line break).
    """
    first_line, other_lines = _header_section_starts()
    lowered = text.lower()
    found = [0] if first_line.match(lowered) else []
    line, counted = 0, 0
    for match in other_lines.finditer(lowered):
        line += lowered.count("\n", counted, match.start() + 1)
        counted = match.start() + 1
        found.append(line)
    return found


def before_headers(text: str) -> str:
    """The lines above the first headers section (all the text when it has none), without the
    line break that ends the last of them: what a reader that stops at that section reads."""
    first_line, other_lines = _header_section_starts()
    lowered = text.lower()
    if first_line.match(lowered):
        return ""
    found = other_lines.search(lowered)
    if found is None:
        return text
    if len(lowered) == len(text):
        return text[: found.start()]  # nothing lowered to more characters: the same offsets
    start = 0
    for _ in range(lowered.count("\n", 0, found.start() + 1)):
        start = text.index("\n", start) + 1
    return text[: start - 1]


def _plain(line: str) -> bool:
    """A line no label, header, address or forwarding separator can be in."""
    return ":" not in line and "@" not in line and "---" not in line and "__________" not in line


def scan_text(text: str) -> Scan:
    lex = _lexicon()
    scan = Scan()
    lines = text.split("\n")
    section_lines = header_section_lines(text)
    sections = frozenset(section_lines)
    # Forwarding headers stand above the bounce; the original message's headers come after it.
    header_section = section_lines[0] if section_lines else len(lines)
    raw_headers = _raw_header_lines(lines)
    above = ["" if i in raw_headers else line for i, line in enumerate(lines[:header_section])]
    wrapper_lines: set[int] = set()
    for block, indexes in _wrapper_blocks(above):
        wrapper_lines.update(indexes)
        scan.forwarded = True
        from_addresses = [a for _, a in find_addresses(block["from"])]
        to_addresses = [a for _, a in find_addresses(block.get("to", ""))]
        if is_system_address_text(block["from"]) or not from_addresses:
            scan.wrapper_senders.extend(to_addresses)
            if block.get("subject") and scan.wrapper_subject is None:
                scan.wrapper_subject = strip_subject(block["subject"])
            if block.get("date") and scan.date is None:
                scan.date = block["date"]
    in_headers = False
    for index, line in enumerate(lines):
        if _plain(line):
            if not in_headers and index in sections:
                in_headers = True
            continue
        lowered = line.strip().lower()
        if not lowered:
            continue
        if not in_headers and index in sections:
            in_headers = True
            continue
        if _FORWARD_SEPARATOR.match(line):
            scan.forwarded = True
            in_headers = False
            continue
        if index in wrapper_lines:
            continue  # forwarding headers: read above
        if in_headers or index in raw_headers:
            # The original message's headers: its From is the sender, the rest is not a recipient.
            if _HEADER_FROM.match(line):
                scan.header_from.extend(a for _, a in find_addresses(line))
            elif scan.header_subject is None and lowered.startswith("subject:"):
                scan.header_subject = line.split(":", 1)[1].strip() or None
            elif scan.header_date is None and lowered.startswith("date:"):
                scan.header_date = line.split(":", 1)[1].strip() or None
            continue
        label_match = lex.label_pattern.match(lowered)
        addresses = [a for _, a in find_addresses(line)]
        scan.rfc822_recipients.extend(
            a for m in RFC822_RECIPIENT.finditer(line) for _, a in find_addresses(m.group(1))
        )
        if label_match:
            label = label_match.group(1)
            value = line.strip()[label_match.end() :].strip(" *_\t")
            if label in lex.sender_labels:
                scan.labelled_senders.extend(addresses)
                continue
            if label in lex.recipient_labels:
                scan.labelled_recipients.extend(addresses)
                continue
            if label in lex.subject_labels and value and scan.subject is None:
                scan.subject = value
                continue
            if label in lex.date_labels and value and scan.created is None:
                scan.created = value
                continue
            if label in lex.server_labels and value and scan.server is None:
                scan.server = value.split()[0].strip(".,;")
                continue
        wrapper = _WRAPPER_LINE.match(line)
        if wrapper and wrapper.group(1).strip().lower() in _WRAPPER_FIELDS:
            continue
        scan.body_addresses.extend(addresses)
    return scan


_MACHINE_HEADER = re.compile(
    r"^(?:received|message-id|mime-version|return-path|authentication-results|dkim-signature"
    r"|arc-[\w-]{1,20}|x-ms-[\w-]{1,80}|x-originating-ip|content-type|thread-index)\s*:",
    re.IGNORECASE,
)


def _raw_header_lines(lines: list[str]) -> set[int]:
    """Indexes of lines in blocks of raw RFC 5322 headers (pasted "original message headers").

    A block is a run of header lines (with folded continuations) holding at least one header
    that only a mail server writes, such as Received: or Message-ID:; a forwarding block of
    From/Sent/To/Subject alone is not one.
    """
    marked: set[int] = set()
    run: list[int] = []
    machine = False
    for index, line in enumerate([*lines, ""]):
        if ":" in line and RAW_HEADER.match(line) and line[:1] not in " \t":
            run.append(index)
            machine = machine or bool(_MACHINE_HEADER.match(line))
        elif run and line[:1] in (" ", "\t") and line.strip():
            run.append(index)  # a folded header line
        else:
            if machine and len(run) >= 2:
                marked.update(run)
            run, machine = [], False
    return marked


def first(items: Iterable[str | None]) -> str | None:
    return next((item for item in items if item), None)


def dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
