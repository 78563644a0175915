"""The records the store hands out and takes in: frozen dataclasses, and ticket ids.

Its own room because every aggregate and every caller speaks in these: a conversation's
``Saved`` state, a ``TicketRecord`` with its ``Requester``s and ``TicketEvent``s, an
``AdminChannel``, the jobs (``NewJob`` in, ``TicketJob`` out), the ``TicketChange`` a change's
jobs are built from. None of them knows a connection; ``ticket_from_row`` is the one reading a row.
"""

from __future__ import annotations

import enum
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.engine import Row

from bot.store.engine import UnknownTicket
from dialogs.messages import Platform

TICKET_PREFIX: Final = "NDR-"
TICKET_OFFSET: Final = 1000
TICKET_STATUSES: Final = frozenset({"open", "assigned", "resolved"})
#: Where a job goes: a platform (its notifier delivers it), or the webhook to an outside tracker.
JOB_TARGETS: Final = frozenset({*Platform, "webhook"})
JOB_KINDS: Final = frozenset(
    {"post_card", "update_card", "note", "tell_requester", "remind", "event", "reply"}
)
#: The kind of a turn's reply kept in the outbox because it could not be sent within the turn.
REPLY_JOB: Final = "reply"

_MAX_INT4: Final = 2**31 - 1
_TICKET_ID = re.compile(r"\s*NDR-(\d{1,10})\s*", re.IGNORECASE)
#: The bytes of randomness in a ticket's public reference (16 URL-safe characters).
TICKET_REF_BYTES: Final = 12
_TICKET_REF = re.compile(r"[A-Za-z0-9_-]{16,32}")


@dataclass(frozen=True)
class Saved:
    """A conversation's stored state and its version ({} and 0 when nothing is stored yet)."""

    state: dict[str, Any]
    version: int
    applied: dict[str, Any] | None = None  # what bot.turns saved with it: deliveries, replies
    # Whose turn was saved last ("platform:user_id", None if no turn said), and that person's
    # profile as it is now ({} when they have none): a turn of theirs need not read it again.
    user_key: str | None = None
    profile: dict[str, Any] | None = None


@dataclass(frozen=True)
class Requester:
    """Someone who asked for help on a ticket, and where to tell them about changes."""

    platform: str  # a Platform (dialogs/messages.py)
    user_id: str
    name: str
    conversation_key: str

    @property
    def key(self) -> str:
        """The person's key across conversations, "platform:user_id"."""
        return f"{self.platform}:{self.user_id}"

    def as_json(self) -> dict[str, str]:
        """The requester as a JSON object, as stored."""
        return {
            "platform": self.platform,
            "user_id": self.user_id,
            "name": self.name,
            "conversation_key": self.conversation_key,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Requester:
        """The requester back from its stored JSON object."""
        return cls(
            platform=str(data["platform"]),
            user_id=str(data["user_id"]),
            name=str(data["name"]),
            conversation_key=str(data["conversation_key"]),
        )


@dataclass(frozen=True)
class TicketRecord:
    """An escalation to the helpdesk admins, as stored."""

    id: str  # "NDR-1001": number + 1000
    number: int
    status: str  # "open" | "assigned" | "resolved"
    requester: Requester  # the one who opened it
    bounce: dict[str, Any]  # all the reader's facts and the original text
    path: dict[str, Any]  # role, recipient_type, method, centre so far
    note: str | None
    dedupe_key: str | None
    assignee: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    version: int
    # The public reference card payloads carry instead of the number (``new_ticket_ref``); every
    # stored ticket has one, "" only in a record built by hand.
    ref: str = ""


@dataclass(frozen=True)
class TicketEvent:
    """One line of a ticket's history: who did what, when."""

    at: datetime
    actor: str
    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class AdminChannel:
    """The admins' channel of one platform, and who registered it when."""

    platform: str
    channel: dict[str, Any]
    registered_by: str
    registered_at: datetime


@dataclass(frozen=True)
class NewJob:
    """A job to enqueue for a ticket: deliver ``kind`` with ``payload`` to ``target``."""

    target: str  # a Platform with a notifier, or "webhook"
    kind: str  # "post_card" | "update_card" | "note" | "tell_requester" | "remind" | "event"
    payload: dict[str, Any]


@dataclass(frozen=True)
class TicketJob:
    """A queued job, as stored: a ticket's (``ticket_id`` set), or a turn's late reply (kind
    "reply", ``ticket_id`` None, its lane the conversation's)."""

    id: int
    ticket_id: str | None
    lane: str  # what keeps it in order: ticket_lane(number) or conversation_lane(key)
    target: str
    kind: str
    seq: int  # its place among its lane's jobs for this target: 1, 2, ...
    payload: dict[str, Any]
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    done_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class TicketChange:
    """A ticket as a change just left it, read inside the changing transaction, for deciding
    which jobs to enqueue with it (see ``JobsFor``)."""

    ticket: TicketRecord
    kind: str  # the event just recorded: "opened", "joined", "assigned", ...
    actor: str
    at: datetime
    detail: dict[str, Any]
    requesters: list[Requester]
    admin_platforms: frozenset[str]  # platforms with a registered admins' channel
    card_platforms: frozenset[str]  # platforms where the ticket's card was posted


#: Builds the jobs to enqueue in the same transaction as a ticket change.
JobsFor = Callable[[TicketChange], Sequence[NewJob]]


class Keep(enum.Enum):
    """Marks an update_ticket field that stays as it is."""

    KEEP = enum.auto()


KEEP: Final = Keep.KEEP


def ticket_lane(number: int) -> str:
    """The outbox lane of a ticket's jobs: they are delivered in order per lane and target."""
    return f"ticket:{number}"


#: The outbox lane of the changes made to recipients outside a ticket (an admin's "Apply it for
#: me" in a chat): their webhook events, in order.
CHANGES_LANE: Final = "changes"


def conversation_lane(conversation_key: str) -> str:
    """The outbox lane of a conversation's late replies ("platform:conversation id" key)."""
    return f"conversation:{conversation_key}"


def ticket_id(number: int) -> str:
    """The ticket id people see for a ticket number: 1 -> "NDR-1001"."""
    return f"{TICKET_PREFIX}{number + TICKET_OFFSET}"


def ticket_number(ticket_id: str) -> int | None:
    """The number in a ticket id such as "ndr-1042 " (case, spaces forgiven); None if malformed."""
    match = _TICKET_ID.fullmatch(ticket_id)
    if match is None:
        return None
    number = int(match.group(1)) - TICKET_OFFSET
    if not 1 <= number <= _MAX_INT4:
        return None
    return number


def known_number(ticket_id: str) -> int:
    """The number in a ticket id, for a write that needs a ticket: UnknownTicket if malformed."""
    number = ticket_number(ticket_id)
    if number is None:
        raise UnknownTicket(f"{ticket_id!r} is not a ticket id")
    return number


def new_ticket_ref() -> str:
    """A fresh public reference for a ticket: random, so that nobody outside can name a ticket
    they were not shown (the numbers are sequential, and people see them)."""
    return secrets.token_urlsafe(TICKET_REF_BYTES)


def is_ticket_ref(value: object) -> bool:
    """Whether ``value`` has the shape of a ticket's public reference (not whether one exists)."""
    return isinstance(value, str) and _TICKET_REF.fullmatch(value) is not None


def ticket_from_row(row: Row[Any]) -> TicketRecord:
    """The ticket as stored in a row of ``tickets``."""
    return TicketRecord(
        id=ticket_id(row.number),
        number=int(row.number),
        status=row.status,
        requester=Requester.from_json(row.requester),
        bounce=dict(row.bounce),
        path=dict(row.path),
        note=row.note,
        dedupe_key=row.dedupe_key,
        assignee=dict(row.assignee) if row.assignee is not None else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=int(row.version),
        ref=str(row.ref),
    )


__all__ = [
    "JOB_KINDS",
    "JOB_TARGETS",
    "KEEP",
    "REPLY_JOB",
    "TICKET_OFFSET",
    "TICKET_PREFIX",
    "TICKET_REF_BYTES",
    "TICKET_STATUSES",
    "AdminChannel",
    "JobsFor",
    "Keep",
    "NewJob",
    "Requester",
    "Saved",
    "TicketChange",
    "TicketEvent",
    "TicketJob",
    "TicketRecord",
    "conversation_lane",
    "is_ticket_ref",
    "known_number",
    "new_ticket_ref",
    "ticket_from_row",
    "ticket_id",
    "ticket_lane",
    "ticket_number",
]
