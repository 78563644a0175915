"""The bounce reader: finds the facts of a non-delivery report in whatever shape it arrives.

It reads pasted text, Teams HTML, Slack markup, quoted or forwarded mail and MIME messages
(``.eml``, with or without the RFC 3464 ``message/delivery-status`` part), and returns a
:class:`Bounce`. Every step is linear in the size of the input, and input over
:data:`MAX_INPUT_BYTES` is refused before it is read in full.
"""

from __future__ import annotations

import email
import email.policy
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage, Message
from html import unescape
from typing import IO

from knowledge.kb import FamilyCode, KnowledgeBase, default_knowledge, parse_status
from knowledge.language import detect_language
from knowledge.words import lexicon as _lexicon
from knowledge.words import phrase_key

MAX_INPUT_BYTES = 5 * 1024 * 1024
"""The largest message the reader accepts (5 MiB): a bounce with its headers is a few KB."""

_SNIFF_BYTES = 64 * 1024


class InputRejected(ValueError):
    """The input cannot be read as a message. ``str(error)`` is one line to show the user."""


class InputTooLarge(InputRejected):
    """The input is over :data:`MAX_INPUT_BYTES`."""


class BinaryInput(InputRejected):
    """The input is a binary file (an image, a PDF, an Outlook .msg, ...), not a message."""


@dataclass(frozen=True)
class Bounce:
    """What the reader found. Absent facts are None or empty, never guessed."""

    is_bounce: bool
    format: str  # "eml" | "html" | "slack" | "text"
    status: str | None = None  # enhanced status code, e.g. "5.7.12"
    smtp_code: str | None = None  # e.g. "550"
    resolver: str | None = None  # e.g. "RESOLVER.RST.SenderNotAuthenticatedForGroup"
    diagnostic: str | None = None  # the diagnostic line as the bounce wrote it
    recipients: tuple[str, ...] = ()
    sender: str | None = None
    subject: str | None = None
    date: str | None = None
    reporting_server: str | None = None
    recipient_domain: str | None = None
    recipient_type: str | None = None  # mailbox | group | m365_group | mail_user | public_folder
    in_family: bool = False  # the status is one of the 5.7.12 family
    language: str | None = None
    forwarded: bool = False
    mentioned_statuses: tuple[str, ...] = ()  # codes named outside a bounce ("how do I fix 5.7.12")
    # (address, status) of each failed recipient, in the order of ``recipients``; the status is
    # None where the bounce gives none for that recipient.
    failures: tuple[tuple[str, str | None], ...] = ()
    # The kind of recipient the bounce's cause sentence names ("The group X only accepts ..."),
    # when the code does not tell it: a family (group, mailbox, m365_group, mail_user,
    # public_folder) or a precise type id (shared_mailbox, distribution_group, security_group,
    # dynamic_distribution_group).
    named_type: str | None = None
    # Codes a text lists (a documentation page, a table, "5.7.1, 5.7.12 and 5.7.124 are ..."),
    # which are not a question about any of them; mentioned_statuses is empty then.
    listed_statuses: tuple[str, ...] = ()
    text: str = field(default="", repr=False)  # the readable text the facts were taken from


# --------------------------------------------------------------------------- input


def read_limited(stream: IO[bytes], limit: int = MAX_INPUT_BYTES) -> bytes:
    """Read at most ``limit`` bytes of ``stream``; refuse a longer input without reading it all."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise InputTooLarge(_too_large_message(limit))
    return data


def _too_large_message(limit: int) -> str:
    return (
        f"That message is over {limit // (1024 * 1024)} MB, too large for a bounce. "
        "Paste only the bounce's text, or send the .eml file of the bounce itself."
    )


_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Outlook .msg file"),
    (b"%PDF", "a PDF"),
    (b"PK\x03\x04", "a ZIP or Office document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"MZ", "a program"),
    (b"\x7fELF", "a program"),
)


# Every byte but the control characters that never appear in text (tab, newlines, escape do).
_NOT_CONTROL_BYTES = bytes(b for b in range(256) if b >= 32 or b in b"\t\n\r\f\v\x1b")


def decode_input(data: str | bytes) -> tuple[str, bool]:
    """Return the input as text and whether it was given as bytes; refuse binary or huge input."""
    if isinstance(data, str):
        if len(data) > MAX_INPUT_BYTES or len(data.encode("utf-8", "surrogatepass")) > (
            MAX_INPUT_BYTES
        ):
            raise InputTooLarge(_too_large_message(MAX_INPUT_BYTES))
        if "\x00" in data[:_SNIFF_BYTES]:
            raise BinaryInput(_binary_message("a binary file"))
        return data, False
    if len(data) > MAX_INPUT_BYTES:
        raise InputTooLarge(_too_large_message(MAX_INPUT_BYTES))
    for signature, what in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise BinaryInput(_binary_message(what))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), True
    head = data[:_SNIFF_BYTES]
    controls = len(head.translate(None, _NOT_CONTROL_BYTES))
    if b"\x00" in head or controls > len(head) // 20:
        raise BinaryInput(_binary_message("a binary file"))
    try:
        return data.decode("utf-8-sig"), True
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), True


def _binary_message(what: str) -> str:
    return (
        f"That looks like {what}, not an email message. "
        "Paste the bounce's text, or send the bounce saved as an .eml file."
    )


# --------------------------------------------------------------------------- text forms


_HTML_TAG = re.compile(
    r"</?(?:html|head|body|div|p|br|table|tbody|thead|tr|td|th|span|font|a|b|i|u|strong|em|ul|ol|li"
    r"|h[1-6]|pre|code|blockquote|hr|meta|img|style|o:p)(?:\s[^<>@]{0,2048})?/?>"
    r"|<!doctype|<!--",
    re.IGNORECASE,
)
_SLACK_LINK = re.compile(r"<(?:mailto:|https?://|[@#!])[^<>|\s]{1,2048}(?:\|[^<>]{0,2048})?>")
# What only Slack writes: labelled links <target|label>, user, channel and special mentions.
_SLACK_ONLY = re.compile(
    r"<(?:mailto:|https?://)[^<>|\s]{1,2048}\|[^<>]{0,2048}>|<@[UW][A-Z0-9]{2,20}>"
    r"|<#C[A-Z0-9]{2,20}(?:\|[^<>]{0,200})?>|<!(?:here|channel|everyone|subteam)[^<>]{0,100}>"
)

_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "tr", "li", "ul", "ol", "table", "tbody", "thead", "pre", "blockquote"}
    | {"hr", "title", "h1", "h2", "h3", "h4", "h5", "h6"}
)
_CELL_TAGS = frozenset(("td", "th"))
_SKIP_TAGS = frozenset(("style", "script", "head", "title"))
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:]{0,30})([^<>]{0,4096})>|<!--|<!\w[^<>]{0,4096}>")
_HREF_MAILTO = re.compile(r"""href\s*=\s*["']?mailto:([^"'\s>?]{3,320})""", re.IGNORECASE)


def html_to_text(html: str) -> str:
    """Turn HTML (a Teams message, an Outlook body) into text with one line per block."""
    out: list[str] = []
    position = 0
    skip_until: str | None = None
    pending_mailto: str | None = None
    link_text_start = 0
    for match in _TAG.finditer(html):
        start, end = match.span()
        if start < position:
            continue  # inside a comment already skipped
        if match.group(0) == "<!--":
            if skip_until is None:
                out.append(html[position:start])
            close = html.find("-->", end)
            position = len(html) if close < 0 else close + 3
            continue
        if skip_until is None:
            out.append(html[position:start])
        position = end
        closing, name = match.group(1), (match.group(2) or "").lower()
        if skip_until is not None:
            if closing and name == skip_until:
                skip_until = None
            continue
        if not name:
            continue  # <!DOCTYPE ...>
        if name in _SKIP_TAGS and not closing:
            skip_until = name
        elif name in _BLOCK_TAGS:
            out.append("\n")
        elif name in _CELL_TAGS:
            out.append("\t" if not closing else "")
        elif name == "a" and not closing:
            mailto = _HREF_MAILTO.search(match.group(3) or "")
            pending_mailto = mailto.group(1) if mailto else None
            link_text_start = len(out)
        elif name == "a" and closing and pending_mailto:
            link_text = "".join(out[link_text_start:])
            if pending_mailto.lower() not in unescape(link_text).lower():
                out.append(f" <{pending_mailto}>")
            pending_mailto = None
    if skip_until is None:
        out.append(html[position:])
    return unescape("".join(out))


def _slack_link(match: re.Match[str]) -> str:
    inner = match.group(0)[1:-1]
    target, _, label = inner.partition("|")
    if target.startswith("mailto:"):
        address = target[len("mailto:") :]
        return label if label and "@" in label else address
    if target[:1] in "@#!":
        return label or target
    return label or target


def slack_to_text(text: str) -> str:
    """Undo Slack's message markup: links, mailto links, entities and code fences."""
    text = _SLACK_LINK.sub(_slack_link, text)
    text = text.replace("```", "\n")
    return unescape(text)


_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = dict.fromkeys(map(ord, "\u00a0\u2007\u202f\u2009\u200a\u3000"), " ")
_QUOTE_PREFIX = re.compile(r"^[ \t]{0,8}(?:>[ \t]?){1,32}", re.MULTILINE)


def normalise(text: str) -> str:
    """Line endings, invisible characters, odd spaces and ``>`` quoting removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.translate(_INVISIBLE).translate(_SPACES)
    text = unicodedata.normalize("NFC", text)
    return _QUOTE_PREFIX.sub("", text)


# --------------------------------------------------------------------------- MIME


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
    lines = text.lstrip("\n")[:_SNIFF_BYTES].split("\n", 200)
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
class _MimeFacts:
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
    attached_ndr: _MimeFacts | None = None


_SYSTEM_LOCAL = re.compile(
    r"^(?:postmaster|mailer-daemon|microsoftexchange[0-9a-f]{32}|no-?reply|"
    r"mail-?delivery|maildelivery|mailerdaemon)$",
    re.IGNORECASE,
)


def _dsn_fields(part: Message) -> Iterator[dict[str, str]]:
    payload = part.get_payload()
    if isinstance(payload, list):
        for block in payload:
            if isinstance(block, Message):
                yield {k.lower(): _header(block, k) for k in block}
    else:
        yield from _header_blocks(_part_text(part))


def _read_mime(raw: bytes | str) -> _MimeFacts:
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
        or _is_system_address_text(_header(message, "From"))
    )


def _mime_facts(message: Message, depth: int) -> _MimeFacts:
    facts = _MimeFacts()
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


def _walk(part: Message, facts: _MimeFacts, depth: int) -> None:
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


# --------------------------------------------------------------------------- addresses


_LOCAL_RUN = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$")
_DOMAIN_RUN = re.compile(r"[A-Za-z0-9.-]{1,253}")


def find_addresses(text: str) -> Iterator[tuple[int, str]]:
    """Yield (position, lower-cased address) for each email address, in linear time."""
    at = text.find("@")
    while at >= 0:
        local_match = _LOCAL_RUN.search(text, max(0, at - 64), at)
        domain_match = _DOMAIN_RUN.match(text, at + 1)
        end = domain_match.end() if domain_match else at + 1
        if local_match and domain_match:
            local = local_match.group(0).lstrip(".'`{|}~!#$%&*+/=?^")
            domain = domain_match.group(0).rstrip(".-")
            if local and "." in domain and _valid_domain(domain):
                yield (
                    local_match.start() + (len(local_match.group(0)) - len(local)),
                    (f"{local}@{domain}".lower()),
                )
        at = text.find("@", max(end, at + 1))


def _valid_domain(domain: str) -> bool:
    labels = domain.split(".")
    return (
        all(labels)
        and labels[-1].isalpha()
        and len(labels[-1]) >= 2
        and all(not label.startswith("-") and not label.endswith("-") for label in labels)
    )


def _is_system_address(address: str) -> bool:
    return bool(_SYSTEM_LOCAL.match(address.split("@", 1)[0]))


def _is_system_address_text(text: str) -> bool:
    return any(_is_system_address(a) for _, a in find_addresses(text)) or (
        "microsoft outlook" in text.lower() and "@" not in text
    )


# --------------------------------------------------------------------------- status codes


_STATUS = re.compile(r"(?<![\w.#-])#?([245])\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)")
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
class _StatusHit:
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


def _lines_with_offsets(text: str) -> Iterator[tuple[int, str]]:
    position = 0
    while position <= len(text):
        end = text.find("\n", position)
        end = len(text) if end < 0 else end
        yield position, text[position:end]
        position = end + 1


_DIAGNOSTIC_WINDOW = 600  # characters of a (possibly huge) line kept as the diagnostic line


def _status_hits(text: str) -> Iterator[_StatusHit]:
    previous = ""
    for offset, line in _lines_with_offsets(text):
        if "." in line:
            for match in _STATUS.finditer(line):
                hit = _status_hit(line, match, offset, previous)
                if hit is not None:
                    yield hit
        previous = line


def _status_hit(
    line: str, match: re.Match[str], offset: int, previous: str = ""
) -> _StatusHit | None:
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
    return _StatusHit(
        status=f"{klass}.{subject}.{detail}",
        position=offset + start,
        smtp_code=smtp.group(1) if smtp else None,
        resolver=resolver,
        line=line[max(0, start - _DIAGNOSTIC_WINDOW // 4) : end + _DIAGNOSTIC_WINDOW].strip(),
        strong=bool(smtp or status_label or resolver),
        line_start=offset,
    )


# --------------------------------------------------------------------------- SMTP transcripts


# A command line of a pasted SMTP session: ">>> RCPT TO:<x@y>" (the reader has already taken
# the ">" quoting off), "C: MAIL FROM:<a@b>", "-> EHLO host", or the bare command. Verbs other than
# MAIL FROM / RCPT TO are matched in capitals only, so prose ("Data: ...") is no command.
_SMTP_COMMAND = re.compile(
    r"^[ \t]*(?:(?:<<<?|>>>?|->|<-|[CS]:)[ \t]*)?"
    r"(?:(?i:(mail[ \t]+from|rcpt[ \t]+to))[ \t]*:"
    r"|(EHLO|HELO|LHLO|STARTTLS|AUTH|DATA|BDAT|QUIT|RSET|NOOP|VRFY|EXPN|XCLIENT|XFORWARD)\b)"
)
_SMTP_REPLY = re.compile(r"^[ \t]*(?:(?:<<<?|<-|S:)[ \t]*)?([2-5])\d\d(?:[ \t]|$)")
# Postfix and others name the command a reply answered: "(in reply to RCPT TO command)", often
# wrapped over two lines.
_IN_REPLY_TO = re.compile(
    r"\bin\s+reply\s+to\s+(rcpt\s+to|mail\s+from|end\s+of\s+data|data|bdat|ehlo|helo|lhlo"
    r"|starttls|auth|xforward|xclient|quit)\b",
    re.IGNORECASE,
)
_RECIPIENT_COMMANDS = frozenset({"RCPT TO", "DATA"})
_REPLY_CONTEXT_WINDOW = 400  # characters after a reply searched for "in reply to ... command"


def _command_name(raw: str) -> str:
    name = " ".join(raw.upper().split())
    return "DATA" if name in ("BDAT", "END OF DATA") else name


def _is_failure(hit: _StatusHit) -> bool:
    return hit.status[0] in "45"


def _refuses_recipient(hit: _StatusHit) -> bool:
    """A 4xx/5xx reply to RCPT TO or DATA: a recipient was refused."""
    return hit.strong and _is_failure(hit) and hit.command in _RECIPIENT_COMMANDS


@dataclass
class _Transcript:
    """What a pasted SMTP session says: who sent, and which recipients were refused with what."""

    mail_from: str | None = None
    refusals: list[tuple[str, _StatusHit]] = field(default_factory=list)


def _with_commands(text: str, hits: list[_StatusHit]) -> tuple[list[_StatusHit], _Transcript]:
    """Tie each status to the SMTP command it answered, in one pass over the lines.

    The reply that matters in a session is the one that refused a recipient (to RCPT TO, or to
    DATA for the recipients accepted before it), not an earlier reply to EHLO, STARTTLS, AUTH or
    MAIL FROM, even when that one is a 4xx/5xx too.
    """
    transcript = _Transcript()
    out: list[_StatusHit] = []
    command: str | None = None
    rcpt: str | None = None
    accepted: list[str] = []
    index = 0
    for offset, line in _lines_with_offsets(text):
        match = _SMTP_COMMAND.match(line)
        if match:
            command = _command_name(match.group(1) or match.group(2))
            address = next((a for _, a in find_addresses(line)), None)
            if command == "MAIL FROM":
                accepted, rcpt = [], None
                transcript.mail_from = transcript.mail_from or address
            elif command == "RCPT TO":
                rcpt = address
        end = offset + len(line)
        while index < len(hits) and hits[index].position <= end:
            hit = hits[index]
            index += 1
            if command is not None and command != "QUIT":
                addresses: tuple[str, ...] = ()
                if command == "RCPT TO" and rcpt:
                    addresses = (rcpt,)
                elif command == "DATA":
                    addresses = tuple(accepted)
                hit = replace(hit, command=command, command_addresses=addresses)
            out.append(hit)
        if command == "RCPT TO" and rcpt and not match:
            reply = _SMTP_REPLY.match(line)
            if reply and reply.group(1) == "2" and rcpt not in accepted:
                accepted.append(rcpt)
    out.extend(hits[index:])
    for position, hit in enumerate(out):
        stop = out[position + 1].position if position + 1 < len(out) else len(text)
        stop = min(stop, hit.position + _REPLY_CONTEXT_WINDOW)
        reply_to = _IN_REPLY_TO.search(text, hit.position, stop)
        if reply_to:
            out[position] = replace(hit, command=_command_name(reply_to.group(1)))
    for hit in out:
        if _refuses_recipient(hit):
            transcript.refusals.extend((address, hit) for address in hit.command_addresses)
    return out, transcript


# --------------------------------------------------------------------------- text structure


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
        match = _WRAPPER_LINE.match(line)
        key = _WRAPPER_FIELDS.get(match.group(1).strip().lower()) if match else None
        if match and key:
            if not block:
                start = index
            block.setdefault(key, match.group(2).strip())
            continue
        if len(block) >= 2 and "from" in block:
            yield block, range(start, index)
        block = {}


def _strip_subject(subject: str) -> str:
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
class _Scan:
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


_RFC822_RECIPIENT = re.compile(r"##\s*(?:rfc822;)?\s*([^\s#>]{3,320})", re.IGNORECASE)
_HEADER_FROM = re.compile(r"^\s*(?:from|de|von|da|van)\s*:", re.IGNORECASE)
_RAW_HEADER = re.compile(
    r"^(?:received|return-path|message-id|x-[\w-]{1,60}|authentication-results|dkim-signature"
    r"|arc-[\w-]{1,20}|content-[\w-]{1,30}|mime-version|in-reply-to|references|thread-[\w-]{1,20}"
    r"|reply-to|cc|bcc|to|from|date|subject|importance|accept-language|sender)\s*:",
    re.IGNORECASE,
)


def _scan(text: str) -> _Scan:
    lex = _lexicon()
    scan = _Scan()
    lines = text.split("\n")
    # Forwarding headers stand above the bounce; the original message's headers come after it.
    header_section = next(
        (i for i, line in enumerate(lines) if lex.header_section_pattern.match(line.lower())),
        len(lines),
    )
    raw_headers = _raw_header_lines(lines)
    above = ["" if i in raw_headers else line for i, line in enumerate(lines[:header_section])]
    wrapper_lines: set[int] = set()
    for block, indexes in _wrapper_blocks(above):
        wrapper_lines.update(indexes)
        scan.forwarded = True
        from_addresses = [a for _, a in find_addresses(block["from"])]
        to_addresses = [a for _, a in find_addresses(block.get("to", ""))]
        if _is_system_address_text(block["from"]) or not from_addresses:
            scan.wrapper_senders.extend(to_addresses)
            if block.get("subject") and scan.wrapper_subject is None:
                scan.wrapper_subject = _strip_subject(block["subject"])
            if block.get("date") and scan.date is None:
                scan.date = block["date"]
    in_headers = False
    for index, line in enumerate(lines):
        lowered = line.strip().lower()
        if not lowered:
            continue
        if not in_headers and lex.header_section_pattern.match(lowered):
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
            a for m in _RFC822_RECIPIENT.finditer(line) for _, a in find_addresses(m.group(1))
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
        if _RAW_HEADER.match(line) and line[:1] not in " \t":
            run.append(index)
            machine = machine or bool(_MACHINE_HEADER.match(line))
        elif run and line[:1] in (" ", "\t") and line.strip():
            run.append(index)  # a folded header line
        else:
            if machine and len(run) >= 2:
                marked.update(run)
            run, machine = [], False
    return marked


def _first(items: Iterable[str | None]) -> str | None:
    return next((item for item in items if item), None)


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


# --------------------------------------------------------------------------- reading


def _detect_format(text: str, given_as_bytes: bool) -> str:
    head = text[:_SNIFF_BYTES]
    if looks_like_mime(head):
        return "eml"
    if _HTML_TAG.search(head):
        return "html"
    if _SLACK_ONLY.search(head) or (
        re.search(r"&(?:lt|gt|amp);", head) and "<" not in head and not given_as_bytes
    ):
        return "slack"
    return "text"


def read_bounce(data: str | bytes, knowledge: KnowledgeBase | None = None) -> Bounce:
    """Read one message (text, HTML, Slack markup or MIME) and return the bounce's facts."""
    text, given_as_bytes = decode_input(data)
    kind = _detect_format(text, given_as_bytes)
    mime: _MimeFacts | None = None
    if kind == "eml":
        raw: bytes | str = data if isinstance(data, bytes) else text
        mime = _read_mime(raw)
        readable = normalise("\n".join(mime.human))
        header_text = normalise("\n".join(mime.headers))
    else:
        if kind == "html":
            text = html_to_text(text)
        elif kind == "slack":
            text = slack_to_text(text)
        else:
            text = text.replace("<mailto:", " <")
        readable = normalise(text)
        header_text = ""
    return _facts(readable, header_text, kind, mime, knowledge or default_knowledge())


def _facts(
    readable: str,
    header_text: str,
    kind: str,
    mime: _MimeFacts | None,
    knowledge: KnowledgeBase,
) -> Bounce:
    lex = _lexicon()
    scan = _scan(readable)
    hits, transcript = _with_commands(readable, list(_status_hits(readable)))
    strong = [hit for hit in hits if hit.strong]
    lowered = readable.lower()
    marker_found = lex.marker_wrapped_pattern.search(lowered) is not None
    # The older Exchange text "delivery to this address is restricted": this problem, code or not.
    restricted = lex.restricted_delivery_pattern.search(lowered) is not None
    dsn_recipients = mime.dsn_recipients if mime else []
    is_bounce = bool(
        dsn_recipients
        or (mime and mime.is_ndr and (strong or marker_found or restricted))
        or (strong and (marker_found or scan.rfc822_recipients or any(h.resolver for h in strong)))
        or any(_refuses_recipient(hit) for hit in strong)
        or (restricted and (marker_found or strong or next(find_addresses(readable), None)))
    )
    if (
        is_bounce
        and not dsn_recipients
        and not (mime and mime.is_ndr)
        and not scan.rfc822_recipients
        and not any(_refuses_recipient(hit) for hit in strong)
        and _listed([hit for hit in hits if not _is_version(hit, readable)], readable)
    ):
        is_bounce = False  # a documentation page or a table of codes, not a bounce

    mentioned: tuple[str, ...] = ()
    listed: tuple[str, ...] = ()
    failures: tuple[tuple[str, str | None], ...] = ()
    header_scan = _Scan()
    if is_bounce:
        header_scan = _scan(header_text) if header_text else header_scan
        sender = _sender(scan, header_scan, mime, transcript)
        recipients = tuple(r for r in _recipients(scan, dsn_recipients, transcript) if r != sender)
        codes = _recipient_codes(readable, hits, dsn_recipients, transcript)
        preferred = codes.get(recipients[0]) if len(recipients) > 1 else None
        if transcript.refusals and not dsn_recipients and recipients:
            preferred = codes.get(recipients[0])
        status, smtp_code, resolver, diagnostic = _diagnosis(
            hits, strong, dsn_recipients, preferred, readable
        )
        failures = _failures(recipients, codes, status, strong)
        subject = scan.subject or header_scan.header_subject or scan.header_subject
        bounce_subject = scan.wrapper_subject or (mime.ndr_subject if mime else None)
        if (
            not subject
            and bounce_subject
            and not lex.marker_pattern.search(_strip_subject(bounce_subject).lower())
        ):
            subject = bounce_subject  # "Undeliverable: Q3 plan" -> "Q3 plan"
        near = _words_beside(status, readable, hits, dsn_recipients) if status else ""
    else:
        mentioned, listed = _mentions(hits, readable, knowledge)
        status = mentioned[0] if mentioned else None
        asked = (
            _best_hit(strong, status)
            if status and any(h.status == status for h in strong)
            else None
        )
        smtp_code, resolver = (asked.smtp_code, asked.resolver) if asked else (None, None)
        diagnostic = None
        recipients, sender = _question_addresses(readable)
        subject = None
        near = _words_beside(status, readable, hits, []) if status else ""

    # A code's meaning is told by the words beside it (shared codes such as 5.7.13 mean other
    # things on other servers), never by words elsewhere in a long bounce.
    entry = knowledge.code(status, resolver=resolver, text=near) if status else None
    in_family = isinstance(entry, FamilyCode) or (is_bounce and restricted and entry is None)
    recipient_type = entry.recipient_family if isinstance(entry, FamilyCode) else None
    named_type = _named_type(readable) if is_bounce and recipient_type is None else None
    language = mime.language if mime and mime.language else None
    return Bounce(
        is_bounce=is_bounce,
        format=kind,
        status=status,
        smtp_code=smtp_code,
        resolver=resolver,
        diagnostic=diagnostic,
        recipients=recipients,
        sender=sender,
        subject=_strip_subject(subject) if subject else None,
        date=_sent_date(scan, header_scan, mime) if is_bounce else None,
        reporting_server=(mime.reporting_server if mime else None) or scan.server,
        recipient_domain=recipients[0].split("@", 1)[1] if recipients else None,
        recipient_type=recipient_type,
        in_family=in_family,
        language=language or detect_language(_human_part(readable, is_bounce=is_bounce)),
        forwarded=scan.forwarded or bool(mime and mime.forwarded),
        mentioned_statuses=mentioned,
        failures=failures,
        named_type=named_type,
        listed_statuses=listed,
        text=readable,
    )


_NEAR_MAX_CHARS = 20_000  # of the lines beside a code, passed on to tell its meaning


_CONTINUATION_LINES = 2  # indented lines after a diagnostic line that carry on its text


def _continuation(text: str, hit: _StatusHit) -> str:
    """The indented lines a server wrapped the hit's diagnostic line onto (Postfix: "550 5.7.13
    User account\n    disabled (in reply to RCPT TO command)"), as one line."""
    line_end = text.find("\n", hit.position, hit.position + _DIAGNOSTIC_WINDOW)
    parts: list[str] = []
    for _ in range(_CONTINUATION_LINES):
        if line_end < 0 or text[line_end + 1 : line_end + 2] not in (" ", "\t"):
            break
        start = line_end + 1
        line_end = text.find("\n", start, start + _DIAGNOSTIC_WINDOW)
        part = text[start : line_end if line_end >= 0 else start + _DIAGNOSTIC_WINDOW].strip()
        if not part or _STATUS.search(part):
            break  # a blank line, or another diagnostic
        parts.append(part)
    return " ".join(parts)


def _words_beside(
    status: str,
    text: str,
    hits: list[_StatusHit],
    dsn_recipients: list[tuple[str, str | None, str | None]],
) -> str:
    """The words written beside ``status``: what follows the code on each of its diagnostic
    lines (and on the indented lines a server wraps them onto), and the machine part's
    Diagnostic-Code. Words elsewhere in the bounce ("public folder" in a cause line about another
    recipient, the original message) are not the code's."""
    parts = [
        diagnostic
        for _, dsn_status, diagnostic in dsn_recipients
        if diagnostic and (_clean_status(dsn_status) or _clean_status(diagnostic)) == status
    ]
    size = sum(len(part) for part in parts)
    for hit in hits:
        if hit.status != status or size >= _NEAR_MAX_CHARS:
            continue
        line_end = text.find("\n", hit.position, hit.position + _DIAGNOSTIC_WINDOW)
        own = text[hit.position : line_end if line_end >= 0 else hit.position + _DIAGNOSTIC_WINDOW]
        part = f"{own.strip()} {_continuation(text, hit)}".strip()
        parts.append(part)
        size += len(part)
    return "\n".join(parts)[:_NEAR_MAX_CHARS]


def _sent_date(scan: _Scan, header_scan: _Scan, mime: _MimeFacts | None) -> str | None:
    """When the message that bounced was sent: its details' "Created Date", its own Date:
    header, the DSN's Arrival-Date; else the bounce's own date, or the forwarding block's."""
    return _first(
        (
            scan.created,
            header_scan.header_date,
            scan.header_date,
            mime.arrival_date if mime else None,
            mime.ndr_date if mime else None,
            scan.date,
        )
    )


def _diagnosis(
    hits: list[_StatusHit],
    strong: list[_StatusHit],
    dsn_recipients: list[tuple[str, str | None, str | None]],
    preferred: str | None = None,
    text: str = "",
) -> tuple[str | None, str | None, str | None, str | None]:
    """Status, SMTP code, resolver and diagnostic line of a bounce: the machine part first, then
    the code of the first failed recipient, then the most telling diagnostic line."""
    status = smtp_code = resolver = diagnostic = None
    if dsn_recipients:
        _, dsn_status, dsn_diagnostic = dsn_recipients[0]
        status = _clean_status(dsn_status)
        if dsn_diagnostic:
            diagnostic = dsn_diagnostic.split(";", 1)[-1].strip()
            diagnostic_hit = next(_status_hits(diagnostic), None)
            if diagnostic_hit:
                status = status or diagnostic_hit.status
                smtp_code, resolver = diagnostic_hit.smtp_code, diagnostic_hit.resolver
    status = status or preferred
    if strong:
        best = _best_hit(strong, status)
        status = status or best.status
        if best.status == status:
            smtp_code = smtp_code or best.smtp_code
            resolver = resolver or best.resolver
            diagnostic = diagnostic or f"{best.line} {_continuation(text, best)}".strip()
    if status is None and hits:
        status = hits[0].status
    return status, smtp_code, resolver, diagnostic


# --------------------------------------------------------------------------- failed recipients


_ADDRESS_LINE_WORDS = 4  # what may stand beside an address on a line that only names a recipient
_PENDING_LINES = 4  # non-empty lines a named recipient waits for its diagnostic line
_LEADING_ADDRESS = re.compile(r"^[\s*_\[(]*<?[^\s<>@]{1,64}@[^\s<>]{1,255}>?\s*:")


_ADDRESS_LINE_MAX = 400  # characters: a longer line is prose, not a recipient's name


def _names_only_recipients(line: str) -> bool:
    """A line that names recipients and says nothing else: "sales@contoso.com",
    "Sales Team<mailto:sales@contoso.com>", "Recipient Address: a@b.com", "<a@b.com>: host ..."."""
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
    for start, address in find_addresses(line):
        rest.append(line[position:start])
        position = start + len(address)
    rest.append(line[position:])
    words = " ".join(rest).replace("mailto:", " ")
    return len(words.split()) <= _ADDRESS_LINE_WORDS and not any(c in words for c in ".!?")


def _paired_codes(text: str, hits: list[_StatusHit]) -> dict[str, str]:
    """Per recipient, the code of its own diagnostic line in a text bounce.

    The older Exchange format names each failed recipient on a line of its own, followed by its
    "Remote Server returned '550 5.7.x ...'" line; "#550 5.7.x ... ##rfc822;addr" names it on the
    diagnostic line itself; Postfix writes "<addr>: host ... said:" above the reply; the newer
    format's "Recipient Address:" line stands above "Reported error: 550 ...".
    """
    lex = _lexicon()
    failing: dict[int, _StatusHit] = {}
    for hit in hits:
        if hit.strong and _is_failure(hit):
            failing.setdefault(hit.line_start, hit)
    codes: dict[str, str] = {}
    if not failing:
        return codes
    pending: list[str] = []
    waited = 0
    for offset, line in _lines_with_offsets(text):
        stripped = line.strip()
        if not stripped:
            continue
        if lex.header_section_pattern.match(stripped.lower()):
            break
        line_hit = failing.get(offset)
        if line_hit is not None:
            own = [
                a for m in _RFC822_RECIPIENT.finditer(line) for _, a in find_addresses(m.group(1))
            ]
            leading = _LEADING_ADDRESS.match(line)
            if not own and leading:
                own = [a for _, a in find_addresses(leading.group(0))]
            for address in own or pending:
                codes.setdefault(address, line_hit.status)
            pending, waited = [], 0
            continue
        if "@" in line:
            addresses = [a for _, a in find_addresses(line) if not _is_system_address(a)]
            if addresses and _names_only_recipients(line):
                pending, waited = addresses, 0
                continue
        waited += 1
        if waited > _PENDING_LINES:
            pending = []
    return codes


def _recipient_codes(
    text: str,
    hits: list[_StatusHit],
    dsn_recipients: list[tuple[str, str | None, str | None]],
    transcript: _Transcript,
) -> dict[str, str]:
    """Each failed recipient's own code: the machine part's, the SMTP session's, the text's."""
    codes: dict[str, str] = {}
    for address, dsn_status, dsn_diagnostic in dsn_recipients:
        found = _clean_status(dsn_status)
        if found is None and dsn_diagnostic:
            found = next((h.status for h in _status_hits(dsn_diagnostic)), None)
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


def _failures(
    recipients: tuple[str, ...],
    codes: dict[str, str],
    status: str | None,
    strong: list[_StatusHit],
) -> tuple[tuple[str, str | None], ...]:
    """(address, status) per failed recipient. A recipient without a code of its own gets the
    bounce's code only when that cannot be anyone else's: it is the only recipient, or the
    bounce gives one failure code for all."""
    distinct = {hit.status for hit in strong if _is_failure(hit)}
    shared = status if len(recipients) == 1 or distinct <= {status} else None
    out: list[tuple[str, str | None]] = []
    for index, address in enumerate(recipients):
        own = codes.get(address)
        if index == 0 and status is not None:
            own = status  # the first failure's code is the bounce's status
        out.append((address, own or shared))
    return tuple(out)


# --------------------------------------------------------------------------- named recipient type


_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_SUBJECT_WINDOW = 200  # characters before "only accepts" read for the recipient's kind


def _named_type(text: str) -> str | None:
    """The kind of recipient the bounce's cause sentence names ("The group X only accepts
    messages from people in its organization ..."), read from the words before the restriction
    phrase in that sentence only, never from the original message's headers or hop tables."""
    lex = _lexicon()
    for _, line in _lines_with_offsets(text):
        lowered = line.lower()
        if lex.header_section_pattern.match(lowered.strip()):
            return None
        if _RAW_HEADER.match(line):
            continue
        restriction = lex.restriction_pattern.search(lowered)
        if restriction is None:
            continue
        window = lowered[max(0, restriction.start() - _SUBJECT_WINDOW) : restriction.start()]
        sentence_start = max((m.end() for m in _SENTENCE_END.finditer(window)), default=0)
        window = window[sentence_start:]
        named = [m.group(0) for m in lex.named_type_pattern.finditer(window)]
        if named:
            longest = max(named, key=len)
            return lex.named_type_ids.get(phrase_key(longest))
    return None


# --------------------------------------------------------------------------- codes in a question


# A code named in a message is a code asked about when its line speaks of a problem, or when the
# message is short ("5.7.12?"), or when it is a code the knowledge base knows; a code in a
# changelog heading or a version list is not.
_TROUBLE_WORDS = re.compile(
    r"\?|\b(?:how|what|why|fix|solve|resolve|mean|means|meaning|error|errors|code|ndr|bounce[sd]?"
    r"|bouncing|getting|get|got|gets|receive|received|receiving|help|explain|issue|problem|fail"
    r"|failed|failing|rejected|undeliverable|status|wie|was|warum|fehler|beheben|comment|pourquoi"
    r"|erreur|corriger|cómo|como|qué|solucion\w*|come|cosa|errore|risolv\w*|hoe|wat|fout|oplossen"
    r"|erro|corrigir|resolver)\b",
    re.IGNORECASE,
)
_SHORT_MESSAGE_WORDS = 14
# A number that is a version, not a code: followed by a date ("5.7.12 (2024-03-01)", a release
# heading) or a pre-release tag, or after "bump ... to", "depends on", "requires".
_DATE = (
    r"(?:(?:19|20)\d\d[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.](?:19|20)\d\d"
    r"|(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?\s+\d{1,2}\b)"
)
_VERSION_AFTER = re.compile(
    r"^\s*(?:[(\[]|[-–—:]\s|released\b)\s*(?:on\s+)?" + _DATE + r"|^\s+(?:19|20)\d\d-\d\d-\d\d\b"
    r"|^[-+~.](?:rc|beta|alpha|dev|snapshot|final|lts|ga)\d*\b",
    re.IGNORECASE,
)
_VERSION_BEFORE = re.compile(
    r"\b(?:bump(?:s|ed)?|upgrad\w*|downgrad\w*|updat\w*|migrat\w*|pinn?(?:ed)?)\b[^\n,;]{0,40}?"
    r"\b(?:to|from)\s+(?:v(?:ersion)?\s*)?$"
    r"|\b(?:dependenc(?:y|ies)|depends\s+on|requires?|install(?:s|ed|ing)?|version)\s*[:>=~^]*\s*$",
    re.IGNORECASE,
)
_VERSION_LOOKBACK = 60
# What may stand before a code that opens a list item or a table row: bullets, numbering, pipes,
# tabs, markup, an SMTP reply code ("- 5.7.12: ...", "| 550 5.7.12 | ...", "3. 5.7.133").
_ITEM_PREFIX = re.compile(r"[\s\-*+•·|#>`_\[\](){}\d.:]*")
_LIST_MIN_CODES = 3  # a sentence or a list of lines naming this many codes lists them


def _is_version(hit: _StatusHit, text: str) -> bool:
    """Whether the number is a version ("### 5.7.12 (2024-03-01)", "bump dependency to 5.7.124")."""
    around = text[hit.position : hit.position + _VERSION_LOOKBACK]
    at = around.find(hit.status)
    after = around[at + len(hit.status) :] if at >= 0 else ""
    before = text[max(hit.line_start, hit.position - _VERSION_LOOKBACK) : hit.position]
    return bool(_VERSION_AFTER.match(after) or _VERSION_BEFORE.search(before))


def _knows(knowledge: KnowledgeBase, status: str) -> bool:
    parsed = parse_status(status)
    return parsed is not None and (
        any(parse_status(entry.status) == parsed for entry in knowledge.family)
        or any(lookalike.covers(parsed) for lookalike in knowledge.lookalikes)
    )


def _mentions(
    hits: list[_StatusHit], text: str, knowledge: KnowledgeBase
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The codes a message asks about, and the codes it merely lists.

    A text that lists codes (three or more in one sentence that is not a question, or three or
    more opening the items of a bullet list or the rows of a table) is documentation, not a
    question about any of them: its codes are listed and none is mentioned.
    """
    short = len(text.split(None, _SHORT_MESSAGE_WORDS + 1)) <= _SHORT_MESSAGE_WORDS
    kept: list[_StatusHit] = []
    troubled: dict[int, bool] = {}  # per line: one search, however many codes it holds
    known: dict[str, bool] = {}
    for hit in hits:
        if _is_version(hit, text):
            continue
        if not (hit.strong or short):
            if hit.status not in known:
                known[hit.status] = _knows(knowledge, hit.status)
            if not known[hit.status]:
                if hit.line_start not in troubled:
                    troubled[hit.line_start] = _TROUBLE_WORDS.search(hit.line) is not None
                if not troubled[hit.line_start]:
                    continue
        kept.append(hit)
    listed = _listed(kept, text)
    if listed:
        return (), listed
    return _dedupe(hit.status for hit in kept), ()


def _listed(hits: list[_StatusHit], text: str) -> tuple[str, ...]:
    """The codes a text lists (see ``_mentions``), in order; empty when it lists none."""
    sentences: dict[tuple[int, int], set[str]] = {}
    ends: dict[int, tuple[list[int], list[str]]] = {}  # per line: its sentences' ends and marks
    items: set[str] = set()
    for hit in hits:
        if hit.line_start not in ends:
            line_end = text.find("\n", hit.line_start)
            line = text[hit.line_start : line_end if line_end >= 0 else len(text)]
            found = [
                (hit.line_start + m.start(), m.group(0)[0]) for m in _SENTENCE_END.finditer(line)
            ]
            ends[hit.line_start] = ([end for end, _ in found], [mark for _, mark in found])
        positions, marks = ends[hit.line_start]
        index = bisect_left(positions, hit.position + len(hit.status) + 1)
        end, mark = (positions[index], marks[index]) if index < len(positions) else (-1, ".")
        if mark != "?":
            sentences.setdefault((hit.line_start, end), set()).add(hit.status)
        prefix = text[hit.line_start : hit.position] if hit.position - hit.line_start < 80 else "x"
        if "|" in prefix or "\t" in prefix or _ITEM_PREFIX.fullmatch(prefix):
            items.add(hit.status)
    chosen: set[str] = set()
    for codes in sentences.values():
        if len(codes) >= _LIST_MIN_CODES:
            chosen |= codes
    if len(items) >= _LIST_MIN_CODES:
        chosen |= items
    return _dedupe(hit.status for hit in hits if hit.status in chosen)


def _clean_status(value: str | None) -> str | None:
    if not value:
        return None
    match = _STATUS.search(value.strip())
    return f"{match.group(1)}.{match.group(2)}.{match.group(3)}" if match else None


def _hit_rank(hit: _StatusHit) -> int:
    """Failures before successes; in an SMTP session, the reply that refused a recipient first."""
    if not _is_failure(hit):
        return 3
    if hit.command in _RECIPIENT_COMMANDS:
        return 0
    return 1 if hit.command is None else 2


_PROSE_AFTER = re.compile(r"\d\s+[A-Za-zÀ-ÿ]{2,}")


def _best_hit(hits: list[_StatusHit], status: str | None) -> _StatusHit:
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


def _says_more(hit: _StatusHit) -> bool:
    at = hit.line.find(hit.status)
    return at >= 0 and _PROSE_AFTER.match(hit.line, at + len(hit.status) - 1) is not None


def _recipients(
    scan: _Scan,
    dsn_recipients: list[tuple[str, str | None, str | None]],
    transcript: _Transcript,
) -> tuple[str, ...]:
    """The failed recipients: the machine part's, else those an SMTP session refused, else the
    diagnostic's, else the labelled ones."""
    dsn = [a for address, *_ in dsn_recipients for _, a in find_addresses(address)]
    if dsn:
        return _dedupe(dsn)
    if transcript.refusals:
        return _dedupe(address for address, _ in transcript.refusals)
    if scan.rfc822_recipients:
        return _dedupe(scan.rfc822_recipients)
    candidates = [*scan.labelled_recipients, *scan.body_addresses]
    return _dedupe(
        a for a in candidates if not _is_system_address(a) and a not in scan.labelled_senders
    )


def _sender(
    scan: _Scan, header_scan: _Scan, mime: _MimeFacts | None, transcript: _Transcript
) -> str | None:
    """Who sent the message that bounced: the bounce's own addressee, or the original From."""
    ndr_to = None
    if mime and mime.is_ndr and mime.ndr_to:
        ndr_to = _first(a for _, a in find_addresses(mime.ndr_to))
    candidates = [
        *scan.labelled_senders,
        ndr_to,
        *scan.wrapper_senders,
        *header_scan.header_from,
        *scan.header_from,
        transcript.mail_from,
    ]
    return _first(a for a in candidates if a and not _is_system_address(a))


_QUESTION_FROM = re.compile(r"\b(?:from|de|von|da|van|desde)\s+\S{0,80}$", re.IGNORECASE)


def _question_addresses(text: str) -> tuple[tuple[str, ...], str | None]:
    """In a question, an address after "from" is the sender; the others are recipients."""
    recipients: list[str] = []
    sender: str | None = None
    for position, address in find_addresses(text):
        before = text[max(0, position - 40) : position]
        if sender is None and _QUESTION_FROM.search(before):
            sender = address
        else:
            recipients.append(address)
    return _dedupe(recipients), sender


def _human_part(text: str, *, is_bounce: bool) -> str:
    """The text without headers, hop tables and diagnostic lines, to tell its language by.

    Exchange leaves the diagnostic line ("Remote Server returned '550 5.7.133 ...'") in English
    whatever the language of the bounce around it.
    """
    lex = _lexicon()
    kept: list[str] = []
    for line in text.split("\n"):
        lowered = line.strip().lower()
        if lex.header_section_pattern.match(lowered):
            break
        if _RAW_HEADER.match(line) or (is_bounce and _STATUS.search(line)):
            continue
        kept.append(line)
        if len(kept) > 400:
            break
    return "\n".join(kept)
