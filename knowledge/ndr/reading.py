"""The reading itself: which form a message is in, and the facts of the bounce it holds.

:func:`read_bounce` decodes the input, tells MIME from HTML from Slack markup from text, turns it
into readable lines, and puts together what the rooms beside it find (the MIME facts, the status
hits and transcript, the scan, the recipients, the diagnosis, the codes a question names) into
one :class:`Bounce`. Absent facts stay absent: nothing is guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from knowledge.kb import FamilyCode, KnowledgeBase, default_knowledge
from knowledge.language import detect_language
from knowledge.ndr.addresses import find_addresses
from knowledge.ndr.diagnosis import best_hit, diagnosis, sent_date, words_beside
from knowledge.ndr.input import SNIFF_BYTES, decode_input
from knowledge.ndr.mentions import SENTENCE_END, is_version, listed_codes, mentions
from knowledge.ndr.mime import MimeFacts, looks_like_mime, read_mime
from knowledge.ndr.recipients import (
    bounced_sender,
    failed_recipients,
    per_recipient_failures,
    question_addresses,
    recipient_codes,
)
from knowledge.ndr.scan import RAW_HEADER, Scan, before_headers, scan_text, strip_subject
from knowledge.ndr.status import lines_with_offsets, status_hits, status_matches
from knowledge.ndr.text_forms import HTML_TAG, SLACK_ONLY, html_to_text, normalise, slack_to_text
from knowledge.ndr.transcripts import refuses_recipient, with_commands
from knowledge.words import lexicon as _lexicon
from knowledge.words import phrase_key


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


def _detect_format(text: str, given_as_bytes: bool) -> str:
    head = text[:SNIFF_BYTES]
    if looks_like_mime(head):
        return "eml"
    if HTML_TAG.search(head):
        return "html"
    if SLACK_ONLY.search(head) or (
        re.search(r"&(?:lt|gt|amp);", head) and "<" not in head and not given_as_bytes
    ):
        return "slack"
    return "text"


def read_bounce(data: str | bytes, knowledge: KnowledgeBase | None = None) -> Bounce:
    """Read one message (text, HTML, Slack markup or MIME) and return the bounce's facts."""
    text, given_as_bytes = decode_input(data)
    kind = _detect_format(text, given_as_bytes)
    mime: MimeFacts | None = None
    if kind == "eml":
        raw: bytes | str = data if isinstance(data, bytes) else text
        mime = read_mime(raw)
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
    mime: MimeFacts | None,
    knowledge: KnowledgeBase,
) -> Bounce:
    lex = _lexicon()
    scan = scan_text(readable)
    hits, transcript = with_commands(readable, list(status_hits(readable)))
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
        or any(refuses_recipient(hit) for hit in strong)
        or (restricted and (marker_found or strong or next(find_addresses(readable), None)))
    )
    if (
        is_bounce
        and not dsn_recipients
        and not (mime and mime.is_ndr)
        and not scan.rfc822_recipients
        and not any(refuses_recipient(hit) for hit in strong)
        and listed_codes([hit for hit in hits if not is_version(hit, readable)], readable)
    ):
        is_bounce = False  # a documentation page or a table of codes, not a bounce

    mentioned: tuple[str, ...] = ()
    listed: tuple[str, ...] = ()
    failures: tuple[tuple[str, str | None], ...] = ()
    header_scan = Scan()
    if is_bounce:
        header_scan = scan_text(header_text) if header_text else header_scan
        sender = bounced_sender(scan, header_scan, mime, transcript)
        recipients = tuple(
            r for r in failed_recipients(scan, dsn_recipients, transcript) if r != sender
        )
        codes = recipient_codes(readable, hits, dsn_recipients, transcript)
        preferred = codes.get(recipients[0]) if len(recipients) > 1 else None
        if transcript.refusals and not dsn_recipients and recipients:
            preferred = codes.get(recipients[0])
        status, smtp_code, resolver, diagnostic = diagnosis(
            hits, strong, dsn_recipients, preferred, readable
        )
        failures = per_recipient_failures(recipients, codes, status, strong)
        subject = scan.subject or header_scan.header_subject or scan.header_subject
        bounce_subject = scan.wrapper_subject or (mime.ndr_subject if mime else None)
        if (
            not subject
            and bounce_subject
            and not lex.marker_pattern.search(strip_subject(bounce_subject).lower())
        ):
            subject = bounce_subject  # "Undeliverable: Q3 plan" -> "Q3 plan"
        near = words_beside(status, readable, hits, dsn_recipients) if status else ""
    else:
        mentioned, listed = mentions(hits, readable, knowledge)
        status = mentioned[0] if mentioned else None
        asked = (
            best_hit(strong, status) if status and any(h.status == status for h in strong) else None
        )
        smtp_code, resolver = (asked.smtp_code, asked.resolver) if asked else (None, None)
        diagnostic = None
        recipients, sender = question_addresses(readable)
        subject = None
        near = words_beside(status, readable, hits, []) if status else ""

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
        subject=strip_subject(subject) if subject else None,
        date=sent_date(scan, header_scan, mime) if is_bounce else None,
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


_SUBJECT_WINDOW = 200  # characters before "only accepts" read for the recipient's kind


def _named_type(text: str) -> str | None:
    """The kind of recipient the bounce's cause sentence names ("The group X only accepts
    messages from people in its organization ..."), read from the words before the restriction
    phrase in that sentence only, never from the original message's headers or hop tables."""
    lex = _lexicon()
    text = before_headers(text)
    # One search of the whole text first: a phrase found on a line is found in the text, so
    # none there means none on any line.
    if lex.restriction_pattern.search(text.lower()) is None:
        return None
    for _, line in lines_with_offsets(text):
        if ":" in line and RAW_HEADER.match(line):
            continue
        lowered = line.lower()
        restriction = lex.restriction_pattern.search(lowered)
        if restriction is None:
            continue
        window = lowered[max(0, restriction.start() - _SUBJECT_WINDOW) : restriction.start()]
        sentence_start = max((m.end() for m in SENTENCE_END.finditer(window)), default=0)
        window = window[sentence_start:]
        named = [m.group(0) for m in lex.named_type_pattern.finditer(window)]
        if named:
            longest = max(named, key=len)
            return lex.named_type_ids.get(phrase_key(longest))
    return None


def _human_part(text: str, *, is_bounce: bool) -> str:
    """The text without headers, hop tables and diagnostic lines, to tell its language by.

    Exchange leaves the diagnostic line ("Remote Server returned '550 5.7.133 ...'") in English
    whatever the language of the bounce around it.
    """
    text = before_headers(text)
    # The lines that hold a code, from one search of the text rather than one per line.
    coded = (
        {text.rfind("\n", 0, start) + 1 for start, *_ in status_matches(text)}
        if is_bounce
        else set()
    )
    kept: list[str] = []
    for offset, line in lines_with_offsets(text):
        if (":" in line and RAW_HEADER.match(line)) or offset in coded:
            continue
        kept.append(line)
        if len(kept) > 400:
            break
    return "\n".join(kept)
