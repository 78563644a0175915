"""Pasted SMTP sessions: which command each reply answered, and which recipients were refused.

In a transcript the reply that matters is the one to RCPT TO (or to DATA, for the recipients
accepted before it), not an earlier 4xx/5xx to EHLO, STARTTLS or MAIL FROM; Postfix's "(in reply
to RCPT TO command)" says the same in a text bounce. This ties each status hit to its command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from knowledge.ndr.addresses import find_addresses
from knowledge.ndr.status import StatusHit, is_failure

# A command line of a pasted SMTP session: ">>> RCPT TO:<x@y>" (the reader has already taken
# the ">" quoting off), "C: MAIL FROM:<a@b>", "-> EHLO host", or the bare command. Verbs other than
# MAIL FROM / RCPT TO are matched in capitals only, so prose ("Data: ...") is no command.
# Both are searched in the whole text at once (MULTILINE: "^" is a line's start), not line by line.
_SMTP_COMMAND = re.compile(
    r"^[ \t]*(?:(?:<<<?|>>>?|->|<-|[CS]:)[ \t]*)?"
    r"(?:(?i:(mail[ \t]+from|rcpt[ \t]+to))[ \t]*:"
    r"|(EHLO|HELO|LHLO|STARTTLS|AUTH|DATA|BDAT|QUIT|RSET|NOOP|VRFY|EXPN|XCLIENT|XFORWARD)\b)",
    re.MULTILINE,
)
_SMTP_REPLY = re.compile(r"^[ \t]*(?:(?:<<<?|<-|S:)[ \t]*)?([2-5])\d\d(?:[ \t]|$)", re.MULTILINE)
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
    accepted: list[str] = []
    rcpt: str | None = None
    index = 0
    # Only the command lines are found, by one search over the text. The text from one command
    # line to the next is that command's stretch of the session: its hits answer that command,
    # and after RCPT TO a 2xx reply in it accepts the recipient.
    commands = list(_SMTP_COMMAND.finditer(text))
    first_command = commands[0].start() if commands else len(text)
    while index < len(hits) and hits[index].position < first_command:
        out.append(hits[index])
        index += 1
    for number, match in enumerate(commands):
        command = _command_name(match.group(1) or match.group(2))
        line_end = text.find("\n", match.start())
        line_end = len(text) if line_end < 0 else line_end
        address = next((a for _, a in find_addresses(text[match.start() : line_end])), None)
        if command == "MAIL FROM":
            accepted, rcpt = [], None
            transcript.mail_from = transcript.mail_from or address
        elif command == "RCPT TO":
            rcpt = address
        stop = commands[number + 1].start() if number + 1 < len(commands) else len(text)
        while index < len(hits) and hits[index].position < stop:
            hit = hits[index]
            index += 1
            if command != "QUIT":
                addresses: tuple[str, ...] = ()
                if command == "RCPT TO" and rcpt:
                    addresses = (rcpt,)
                elif command == "DATA":
                    addresses = tuple(accepted)
                hit = replace(hit, command=command, command_addresses=addresses)
            out.append(hit)
        if command == "RCPT TO" and rcpt and rcpt not in accepted:
            replies = _SMTP_REPLY.finditer(text, line_end + 1, stop)
            if any(reply.group(1) == "2" for reply in replies):
                accepted.append(rcpt)
    out.extend(hits[index:])
    # No "reply" anywhere, no "in reply to" to look for after each hit (no letter that the
    # pattern's ignore-case match takes for one of r, e, p, l, y lowers to anything else).
    replies_named = "reply" in text.lower()
    for position, hit in enumerate(out if replies_named else ()):
        stop = out[position + 1].position if position + 1 < len(out) else len(text)
        stop = min(stop, hit.position + _REPLY_CONTEXT_WINDOW)
        reply_to = _IN_REPLY_TO.search(text, hit.position, stop)
        if reply_to:
            out[position] = replace(hit, command=_command_name(reply_to.group(1)))
    for hit in out:
        if refuses_recipient(hit):
            transcript.refusals.extend((address, hit) for address in hit.command_addresses)
    return out, transcript
