"""The ticket desk the escalation flow asks for: tickets stored in the bot's own database."""

from __future__ import annotations

from bot.store import Requester, Store
from dialogs.desk import TicketReceipt, TicketRequest, TicketSummary
from dialogs.messages import Message


def conversation_key(message: Message) -> str:
    """Where a conversation's state is kept: the channel and the platform's conversation id."""
    return f"{message.channel}:{message.conversation_id}"


def user_key(message: Message) -> str:
    """Who is talking, across conversations: the channel and the platform's user id."""
    return f"{message.channel}:{message.user_id}"


class StoreTicketDesk:
    """Opens tickets in the store; a second escalation for the same recipient and code joins."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def open_ticket(self, message: Message, request: TicketRequest) -> TicketReceipt:
        """Open or join the ticket for this request."""
        requester = Requester(
            platform=message.channel,
            user_id=message.user_id,
            name=message.user_name or message.user_id,
            conversation_key=conversation_key(message),
        )
        ticket, created = await self._store.open_ticket(
            requester=requester,
            conversation_key=requester.conversation_key,
            bounce=request.bounce,
            path=dict(request.path),
            note=request.note,
            dedupe_key=request.dedupe_key,
        )
        return TicketReceipt(ticket.id, created)

    async def my_tickets(self, message: Message) -> list[TicketSummary]:
        """The tickets this person opened or joined, newest first."""
        tickets = await self._store.list_tickets(requester_key=user_key(message))
        summaries = []
        for ticket in tickets:
            recipients = ticket.bounce.get("recipients") or []
            summaries.append(
                TicketSummary(
                    ticket_id=ticket.id,
                    status=ticket.status,
                    code=ticket.bounce.get("status"),
                    recipient=recipients[0] if recipients else None,
                )
            )
        return summaries
