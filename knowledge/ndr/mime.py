"""MIME messages (.eml files): the facts a bounce's structure gives, before any text is read.

An RFC 3464 report has a ``message/delivery-status`` part with each failed recipient, its status
and diagnostic; the human-readable parts and the original message's headers are collected for
the text reader. A bounce forwarded as an attachment is read as the attached bounce. Headers the
email package cannot parse are taken as they were written, never raised.

The message is parsed with the ``compat32`` policy, which keeps each header as the raw text it
was written in: the default policy's header registry parses every header the parser touches and
costs about ten times the parse itself. The values the reader reads are then decoded one by one,
as the default policy would decode them (RFC 2047 words, address lists, dates), so the facts are
the same; a plain ASCII header the registry would leave as it is skips the registry.
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.headerregistry import HeaderRegistry, UnstructuredHeader
from email.message import Message
from email.parser import BytesParser, Parser

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


def _content(part: Message) -> object:
    """What ``EmailMessage.get_content()`` returns under the default policy, for the text parts
    (the only ones whose content the reader takes as it is): the decoded payload in the part's
    charset, ASCII when it names none. Other parts give None: their payload is read raw."""
    if part.get_content_maintype() != "text":
        return None
    payload = part.get_payload(decode=True)
    charset = part.get_param("charset", "ASCII")
    return payload.decode(charset, errors="replace")  # type: ignore[union-attr, arg-type]


def _part_text(part: Message) -> str:
    try:
        content = _content(part)
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


_COMPAT32 = email.policy.compat32
_BYTES_PARSER = BytesParser(policy=_COMPAT32)
_TEXT_PARSER = Parser(policy=_COMPAT32)


def read_mime(raw: bytes | str) -> MimeFacts:
    message = (
        _BYTES_PARSER.parsebytes(raw) if isinstance(raw, bytes) else _TEXT_PARSER.parsestr(raw)
    )
    return _mime_facts(message, depth=0)


# Headers the default policy gives a class of their own (addresses, dates, MIME parameters):
# their text as that policy shows it may differ from the raw text, so they go through it.
_STRUCTURED_HEADERS = frozenset(
    name
    for name, kind in HeaderRegistry().registry.items()
    if not issubclass(kind, UnstructuredHeader)
)
_LINE_BREAK = re.compile(r"\n|\r")  # what the default policy takes out of a header's value


def _decoded(name: str, value: object) -> str:
    """A raw header value as the default policy shows it. An unstructured ASCII value without
    encoded words is shown as written, less its line breaks; any other goes through the
    policy's header registry."""
    if (
        isinstance(value, str)
        and value.isascii()
        and "=?" not in value
        and name.lower() not in _STRUCTURED_HEADERS
    ):
        return _LINE_BREAK.sub("", value)
    return str(email.policy.default.header_fetch_parse(name, str(value)))


def _header(message: Message, name: str) -> str:
    """A header's value as text. One the email package cannot parse (it raises all kinds of
    errors on malformed addresses) is taken as it was written."""
    wanted = name.lower()
    # The first header of that name, as ``Message.get`` would pick it.
    found = next(((k, v) for k, v in message.raw_items() if k.lower() == wanted), None)
    if found is None:
        return ""
    try:
        return _decoded(*found) or ""
    except Exception:  # any parsing failure: fall back to the raw text
        return str(found[1])


# The headers whose values the reader takes from an original message's header block: its
# sender (under any of the names ``scan.scan_text`` reads a From: line by), subject and date.
_READ_HEADERS = frozenset({"from", "de", "von", "da", "van", "subject", "date"})
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


def _header_line_value(message: Message, name: str) -> str:
    """A header's value for the "Name: value" lines of a header block.

    Of such a block the reader takes the From, Subject and Date values, and only the names and
    the lines of the others. Those others are given with their line breaks taken out (as the
    default policy gives every value) but not put through the policy's registry, which would
    parse every address and date for nothing; one with an encoded word (which may decode to a
    line break) or with 8-bit bytes (which the policy shows as U+FFFD) still goes through it.
    """
    if name.lower() in _READ_HEADERS or not _PLAIN_NAME.fullmatch(name):
        return _header(message, name)
    wanted = name.lower()
    value = next((v for k, v in message.raw_items() if k.lower() == wanted), "")
    if isinstance(value, str) and value.isascii() and "=?" not in value:
        return _LINE_BREAK.sub("", value)
    return _header(message, name)


def _headers_text(message: Message) -> str:
    """All headers as "Name: value" lines, each read as safely as ``_header``."""
    return "\n".join(
        f"{name}: {_header_line_value(message, name)}" for name in dict.fromkeys(message.keys())
    )


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
