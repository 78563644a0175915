"""The ticket desk the escalation flow asks for: tickets stored in the bot's own database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.store import Requester, Store, StoreError
from dialogs.desk import TicketReceipt, TicketRequest, TicketSummary
from dialogs.messages import Message

if TYPE_CHECKING:
    from bot.tickets import Escalations


def conversation_key(message: Message) -> str:
    """Where a conversation's state is kept: the channel and the platform's conversation id."""
    return f"{message.platform}:{message.conversation_id}"


def user_key(message: Message) -> str:
    """Who is talking, across conversations: the channel and the platform's user id."""
    return f"{message.platform}:{message.user_id}"


class StoreTicketDesk:
    """Opens tickets in the store; a second escalation for the same recipient and code joins.

    With the escalations service, each ticket opened or joined queues its card for the admins'
    channels (and its webhook event) in the same transaction, and a requester's "still failing"
    reopens it with the cards and the other requesters told; without it, only the store changes.
    """

    def __init__(self, store: Store, escalations: Escalations | None = None) -> None:
        self._store = store
        self._escalations = escalations

    async def open_ticket(self, message: Message, request: TicketRequest) -> TicketReceipt:
        """Open or join the ticket for this request."""
        requester = Requester(
            platform=message.platform,
            user_id=message.user_id,
            name=message.user_name or message.user_id,
            conversation_key=conversation_key(message),
        )
        if self._escalations is not None:
            ticket, outcome = await self._escalations.open_or_join(
                requester,
                bounce=request.bounce,
                path=dict(request.path),
                note=request.note,
                dedupe_key=request.dedupe_key,
            )
        else:
            ticket, outcome = await self._store.tickets.open_or_join_ticket(
                requester=requester,
                conversation_key=requester.conversation_key,
                bounce=request.bounce,
                path=dict(request.path),
                note=request.note,
                dedupe_key=request.dedupe_key,
            )
        return TicketReceipt(ticket.id, outcome == "opened")

    async def my_tickets(self, message: Message) -> list[TicketSummary]:
        """The tickets this person opened or joined, newest first."""
        tickets = await self._store.tickets.list_tickets(requester_key=user_key(message))
        summaries = []
        for ticket in tickets:
            recipients = ticket.bounce.get("recipients") or []
            summaries.append(
                TicketSummary(
                    ticket_id=ticket.id,
                    status=ticket.status,
                    code=ticket.bounce.get("status"),
                    recipient=recipients[0] if recipients else None,
                    about=ticket.bounce.get("about") or None,
                )
            )
        return summaries

    async def reopen_ticket(self, message: Message, ticket_id: str) -> bool:
        """Reopen a resolved ticket of this person's; False if it is not theirs, not resolved,
        or cannot be reopened."""
        who = user_key(message)
        if self._escalations is not None:
            return await self._escalations.reopen_by_requester(who, ticket_id)
        ticket = await self._store.tickets.get_ticket(ticket_id)
        if ticket is None or ticket.status != "resolved":
            return False
        if who not in {r.key for r in await self._store.tickets.ticket_requesters(ticket.id)}:
            return False
        try:
            await self._store.tickets.update_ticket(
                ticket.id,
                expected_version=ticket.version,
                actor=who,
                kind="reopened",
                status="open",
                assignee=None,
                detail={"by": message.user_name or message.user_id, "requester": True},
            )
        except StoreError:  # changed meanwhile, or another open ticket took its place
            return False
        return True
