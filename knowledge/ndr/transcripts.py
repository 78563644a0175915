"""Pasted SMTP sessions: which command each reply answered, and which recipients were refused.

In a transcript the reply that matters is the one to RCPT TO (or to DATA, for the recipients
accepted before it), not an earlier 4xx/5xx to EHLO, STARTTLS or MAIL FROM; Postfix's "(in reply
to RCPT TO command)" says the same in a text bounce. This ties each status hit to its command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from knowledge.ndr.addresses import find_addresses
from knowledge.ndr.status import StatusHit, is_failure, lines_with_offsets

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
RECIPIENT_COMMANDS = frozenset({"RCPT TO", "DATA"})
_REPLY_CONTEXT_WINDOW = 400  # characters after a reply searched for "in reply to ... command"


def _command_name(raw: str) -> str:
    name = " ".join(raw.upper().split())
    return "DATA" if name in ("BDAT", "END OF DATA") else name


def refuses_recipient(hit: StatusHit) -> bool:
    """A 4xx/5xx reply to RCPT TO or DATA: a recipient was refused."""
    return hit.strong and is_failure(hit) and hit.command in RECIPIENT_COMMANDS


@dataclass
class Transcript:
    """What a pasted SMTP session says: who sent, and which recipients were refused with what."""

    mail_from: str | None = None
    refusals: list[tuple[str, StatusHit]] = field(default_factory=list)


def with_commands(text: str, hits: list[StatusHit]) -> tuple[list[StatusHit], Transcript]:
    """Tie each status to the SMTP command it answered, in one pass over the lines.

    The reply that matters in a session is the one that refused a recipient (to RCPT TO, or to
    DATA for the recipients accepted before it), not an earlier reply to EHLO, STARTTLS, AUTH or
    MAIL FROM, even when that one is a 4xx/5xx too.
    """
    transcript = Transcript()
    out: list[StatusHit] = []
    command: str | None = None
    rcpt: str | None = None
    accepted: list[str] = []
    index = 0
    for offset, line in lines_with_offsets(text):
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
        if refuses_recipient(hit):
            transcript.refusals.extend((address, hit) for address in hit.command_addresses)
    return out, transcript
