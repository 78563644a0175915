"""What the escalation flow needs from outside: a place to open tickets. `bot/` implements it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from dialogs.messages import Message


@dataclass(frozen=True)
class TicketRequest:
    """Everything the helpdesk admins need to pick the case up."""

    note: str | None
    bounce: dict[str, Any]  # the reader's facts and the original text
    # role, recipient_type, method, centre: the conversation so far; "fix" (a method id) and
    # "fix_recipient" when the requester asks the admins to make that change for them
    path: dict[str, str]
    dedupe_key: str | None  # same recipient and code: join the open ticket instead


@dataclass(frozen=True)
class TicketReceipt:
    """The ticket the request landed in, and whether it was new or joined."""

    ticket_id: str
    created: bool


@dataclass(frozen=True)
class TicketSummary:
    """One of the user's tickets, as "my tickets" lists it."""

    ticket_id: str
    status: str  # open | assigned | resolved
    code: str | None
    recipient: str | None
    about: str | None = None  # what the requester said it is about, when no bounce tells


class TicketDesk(Protocol):
    """Opens (or joins) a ticket for the person who sent ``message``, and lists theirs."""

    async def open_ticket(self, message: Message, request: TicketRequest) -> TicketReceipt:
        """Open or join a ticket; raise on failure (the dialog tells the user to try again)."""
        ...

    async def my_tickets(self, message: Message) -> list[TicketSummary]:
        """The tickets the person who sent ``message`` opened or joined, newest first."""
        ...

    async def reopen_ticket(self, message: Message, ticket_id: str) -> bool:
        """Reopen a resolved ticket because its requester says it still fails; False if it
        cannot be (unknown, not theirs, or not resolved)."""
        ...
