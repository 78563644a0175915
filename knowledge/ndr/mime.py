"""MIME messages (.eml files): the facts a bounce's structure gives, before any text is read.

An RFC 3464 report has a ``message/delivery-status`` part with each failed recipient, its status
and diagnostic; the human-readable parts and the original message's headers are collected for
the text reader. A bounce forwarded as an attachment is read as the attached bounce. Headers the
email package cannot parse are taken as they were written, never raised.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, Message

from knowledge.ndr.addresses import is_system_address_text
from knowledge.ndr.input import SNIFF_BYTES
from knowledge.ndr.text_forms import html_to_text

_MIME_HEADER_NAMES = frozenset(
    {
        "mime-version",
        "content-type",
        "received",
        "return-path",
        "message-id",
        "dkim-signature",
        "authentication-results",
        "delivered-to",
        "x-ms-exchange-message-is-ndr",
        "arc-seal",
        "x-mailer",
        "content-transfer-encoding",
    }
)
_HEADER_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,76}):[ \t]?")


def looks_like_mime(text: str) -> bool:
    """True when the text starts with an RFC 5322 header block (an .eml file)."""
    names: set[str] = set()
    lines = text.lstrip("\n")[:SNIFF_BYTES].split("\n", 200)
    if lines and lines[0].startswith("From "):
        lines = lines[1:]  # mbox separator
    for index, line in enumerate(lines[:200]):
        if not line.strip():
            break
        if line[:1] in " \t" and index:
            continue  # folded header
        match = _HEADER_LINE.match(line)
        if not match:
            if index == 0:
                return False
            break  # a damaged header further down: judge by what came before it
        names.add(match.group(1).lower())
    return bool(names & _MIME_HEADER_NAMES) or any(n.startswith("x-ms-exchange") for n in names)


def _part_text(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else None
    except (LookupError, ValueError, AssertionError):
        content = None
    if isinstance(content, str):
        return content
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def _header_blocks(text: str) -> Iterator[dict[str, str]]:
    """Split a delivery-status body into its blocks of ``Name: value`` fields."""
    block: dict[str, str] = {}
    last: str | None = None
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if block:
                yield block
            block, last = {}, None
        elif line[:1] in " \t" and last:
            block[last] += " " + line.strip()
        else:
            name, sep, value = line.partition(":")
            if sep:
                last = name.strip().lower()
                block[last] = value.strip()
    if block:
        yield block


@dataclass
class MimeFacts:
    human: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)  # original message headers, as text
    dsn_recipients: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    reporting_server: str | None = None
    arrival_date: str | None = None
    ndr_to: str | None = None
    ndr_subject: str | None = None
    ndr_date: str | None = None
    is_ndr: bool = False
    language: str | None = None
    forwarded: bool = False
    attached_ndr: MimeFacts | None = None


def _dsn_fields(part: Message) -> Iterator[dict[str, str]]:
    payload = part.get_payload()
    if isinstance(payload, list):
        for block in payload:
            if isinstance(block, Message):
                yield {k.lower(): _header(block, k) for k in block}
    else:
        yield from _header_blocks(_part_text(part))


def read_mime(raw: bytes | str) -> MimeFacts:
    policy = email.policy.default
    message = (
        email.message_from_bytes(raw, policy=policy)
        if isinstance(raw, bytes)
        else email.message_from_string(raw, policy=policy)
    )
    return _mime_facts(message, depth=0)


def _header(message: Message, name: str) -> str:
    """A header's value as text. One the email package cannot parse (it raises all kinds of
    errors on malformed addresses) is taken as it was written."""
    try:
        return str(message.get(name, "") or "")
    except Exception:  # any parsing failure: fall back to the raw text
        wanted = name.lower()
        return next((str(v) for k, v in message.raw_items() if k.lower() == wanted), "")


def _headers_text(message: Message) -> str:
    """All headers as "Name: value" lines, each read as safely as ``_header``."""
    return "\n".join(f"{name}: {_header(message, name)}" for name in dict.fromkeys(message.keys()))


def _is_ndr(message: Message) -> bool:
    return bool(
        "X-MS-Exchange-Message-Is-Ndr" in message
        or message.get_content_type() == "multipart/report"
        or is_system_address_text(_header(message, "From"))
    )


def _mime_facts(message: Message, depth: int) -> MimeFacts:
    facts = MimeFacts()
    facts.is_ndr = _is_ndr(message)
    facts.ndr_to = _header(message, "To") or None
    facts.ndr_subject = _header(message, "Subject") or None
    facts.ndr_date = _header(message, "Date") or None
    content_language = _header(message, "Content-Language").strip()
    if content_language:
        facts.language = content_language.split(",")[0].split("-")[0].strip().lower() or None
    if not facts.is_ndr:
        facts.headers.append(f"From: {_header(message, 'From')}")
    _walk(message, facts, depth)
    if not facts.is_ndr and facts.attached_ndr is not None:
        # A bounce forwarded as an attachment: the attached bounce is the message to read,
        # and the forwarder's own words come after it.
        attached = facts.attached_ndr
        attached.human.extend(facts.human)
        attached.forwarded = True
        return attached
    return facts


def _walk(part: Message, facts: MimeFacts, depth: int) -> None:
    if depth > 8:
        return
    content_type = part.get_content_type()
    if content_type in ("message/delivery-status", "message/global-delivery-status"):
        for block in _dsn_fields(part):
            if "reporting-mta" in block:
                facts.reporting_server = block["reporting-mta"].split(";")[-1].strip()
            if "arrival-date" in block:
                facts.arrival_date = block["arrival-date"]
            recipient = block.get("final-recipient") or block.get("original-recipient")
            if recipient:
                action = block.get("action", "failed").lower()
                if action in ("failed", ""):
                    address = recipient.split(";")[-1].strip().strip("<>")
                    facts.dsn_recipients.append(
                        (address, block.get("status"), block.get("diagnostic-code"))
                    )
        return
    if content_type in ("text/rfc822-headers", "message/rfc822-headers"):
        facts.headers.append(_part_text(part))
        return
    if content_type in ("message/rfc822", "message/global"):
        inner = part.get_payload()
        for message in inner if isinstance(inner, list) else [inner]:
            if not isinstance(message, Message):
                continue
            if not facts.is_ndr and facts.attached_ndr is None and _is_ndr(message):
                facts.attached_ndr = _mime_facts(message, depth + 1)
            else:
                facts.headers.append(_headers_text(message))
        return
    if part.is_multipart():
        payload = part.get_payload()
        if isinstance(payload, list):
            alternatives = [p for p in payload if isinstance(p, Message)]
            if content_type == "multipart/alternative":
                plain = [p for p in alternatives if p.get_content_type() == "text/plain"]
                alternatives = plain[:1] or alternatives[:1]
            for sub in alternatives:
                _walk(sub, facts, depth + 1)
        return
    if content_type == "text/plain":
        facts.human.append(_part_text(part))
    elif content_type == "text/html":
        facts.human.append(html_to_text(_part_text(part)))
