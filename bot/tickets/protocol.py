"""What a platform and the tickets say to each other: who acts (``Actor``), what they ask
(``ActionRequest``), what came of it, and what a platform does for tickets (``TicketNotifier``).

A room of its own because both sides import it: the channels (bot/channels/) implement the
protocol and send the requests; the service, the rules and the worker use it. It holds no
platform's name and does no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol

from dialogs.directory import FixMethod, FixOutcome, FixPlan, Lookup
from dialogs.messages import Platform

if TYPE_CHECKING:
    from bot.store import Requester, TicketRecord
    from bot.tickets.card import TicketCard
    from dialogs.replies import Reply

TERMINAL: Final = Platform.CONSOLE  # the terminal's actor (python -m bot tickets ...)


class Action(StrEnum):
    """What an admin can do to a ticket from its card (or the terminal)."""

    ASSIGN_ME = "assign_me"
    ASSIGN = "assign"  # to someone else: ActionRequest.assignee
    REPLY = "reply"  # a message relayed to the requester: ActionRequest.text
    RESOLVE = "resolve"  # with a resolution note: ActionRequest.text
    REOPEN = "reopen"
    APPLY_FIX = "apply_fix"  # approve the change the requester asked for, and make it


class FixRunner(Protocol):
    """The organization's directory as the tickets use it to make a change a requester asked
    for (``bot/exchange/`` implements it). Trusted: the tickets service has already checked
    that the one approving is an admin, so it is asked for no person. Never raises: what went
    wrong is in the ``Lookup`` or the ``FixOutcome``."""

    async def plan(self, address: str, method: FixMethod, sender: str | None) -> FixPlan | Lookup:
        """The change that fixes the bounce for ``address`` by ``method`` (``sender``: who is
        added to the accept list, for method 2); a Lookup when it cannot be planned."""
        ...

    async def apply(self, plan: FixPlan, who: str) -> FixOutcome:
        """Run ``plan`` and read the recipient back; ``who``: the approving admin's key, for the
        change's own log line."""
        ...


@dataclass(frozen=True)
class Actor:
    """Someone acting on a ticket: an admin on a platform, or the terminal; who they are is
    (platform, tenant, user id), each read from where the activity really came from (the
    channel it came on, the Teams tenant or Slack team it came from), never from what the
    sender could choose."""

    platform: str  # a Platform (dialogs/messages.py), or another Bot Framework channel's id
    user_id: str
    name: str
    tenant: str = ""  # the Teams tenant id or Slack team id; "" where there is none (terminal)

    @property
    def key(self) -> str:
        """``platform:user_id``, as ADMIN_USERS and requester keys are written."""
        return f"{self.platform}:{self.user_id}"


@dataclass(frozen=True)
class ActionRequest:
    """One click (or command) on a ticket."""

    ticket_id: str
    action: Action
    actor: Actor
    seen_version: int | None  # the ticket version the card showed; None: act on the current one
    assignee: Actor | None = None
    text: str | None = None


@dataclass(frozen=True)
class ActionResult:
    """What came of an action: the ticket as it is now, and a line for the admin."""

    applied: bool
    ticket: TicketRecord | None
    message: str
    stale: bool = False  # the card was out of date (the result says what was done about it)


@dataclass(frozen=True)
class CardRef:
    """Where a ticket's card was posted on one platform (opaque to the tickets)."""

    platform: str
    ref: dict[str, Any]


class TicketNotifier(Protocol):
    """What one platform does for tickets. Built by the platform's channel module; the cards it
    draws come as a ``TicketCard`` (built once by the service from the stored ticket)."""

    platform: str

    async def post_card(self, admin_channel: dict[str, Any], ticket: TicketCard) -> CardRef:
        """Post the ticket's card in the admins' channel; return where it went."""
        ...

    async def update_card(self, card: CardRef, ticket: TicketCard) -> None:
        """Update the card in place to show the ticket as it is now."""
        ...

    async def post_note(self, card: CardRef, text: str) -> None:
        """Add a line in the card's thread ("Ana assigned it to herself")."""
        ...

    async def tell_requester(self, requester: Requester, replies: Sequence[Reply]) -> None:
        """Send replies into the requester's own conversation (a proactive message)."""
        ...

    async def is_admin_channel_member(self, admin_channel: dict[str, Any], user_id: str) -> bool:
        """Whether the user is a member of the admins' channel."""
        ...

    async def remind(self, card: CardRef, ticket: TicketCard, text: str) -> None:
        """Announce again in the admins' channel that the ticket waits for someone to take it
        (a note in the card's thread, or the card re-posted: the platform's choice)."""
        ...

    def channel_identity(self, channel: dict[str, Any]) -> str:
        """Which channel a registration names, whatever else its reference holds (the message
        it came in, who sent it): two registrations of one channel have the same identity."""
        ...


class LateReplies(Protocol):
    """What one platform does with a turn's replies kept in the outbox because they could not
    be sent within the turn: the job worker hands each one back, in order per conversation, to
    be sent into the conversation it was meant for. The payload is the platform's own (it
    rendered it when it kept it)."""

    platform: str

    async def send_late(self, payload: dict[str, Any]) -> None:
        """Send one kept message; ``PermanentFailure`` when trying again cannot help."""
        ...


class PermanentFailure(Exception):
    """A notifier raises this when trying again cannot help (the card is gone, a 4xx other than
    429): the job is given up and logged, and the ticket's next job goes ahead. Anything else a
    notifier raises is retried with backoff."""


class RetryLater(Exception):
    """The tickets' own deliveries raise this when a job cannot be done here and now (no
    notifier in this process, the webhook down): it is retried, after ``after`` seconds when
    the other side said how long to wait."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


__all__ = [
    "TERMINAL",
    "Action",
    "ActionRequest",
    "ActionResult",
    "Actor",
    "CardRef",
    "FixRunner",
    "LateReplies",
    "PermanentFailure",
    "RetryLater",
    "TicketNotifier",
]
