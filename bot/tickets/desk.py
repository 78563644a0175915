"""The ticket desk the escalation flow asks for (``dialogs/desk.py``'s ``TicketDesk``): the
requester's side of the tickets, through the tickets service, in the bot's own database.

Its own room because it is the seam the dialogs see: it turns a conversation's message into
a requester, and hands the rest to the service.
"""

from __future__ import annotations

from bot.store import Requester, Store
from bot.tickets.service import Tickets
from bot.turns import conversation_key, user_key
from dialogs.desk import TicketReceipt, TicketRequest, TicketSummary
from dialogs.messages import Message


class StoreTicketDesk:
    """Opens tickets in the store; a second escalation for the same recipient and code joins.

    Each ticket opened or joined queues its card for the admins' channels (and its webhook
    event) in the same transaction, and a requester's "still failing" reopens it with the
    cards and the other requesters told.
    """

    def __init__(self, store: Store, tickets: Tickets) -> None:
        self._store = store
        self._tickets = tickets

    async def open_ticket(self, message: Message, request: TicketRequest) -> TicketReceipt:
        """Open or join the ticket for this request."""
        requester = Requester(
            platform=message.platform,
            user_id=message.user_id,
            name=message.user_name or message.user_id,
            conversation_key=conversation_key(message),
        )
        ticket, outcome = await self._tickets.open_or_join(
            requester,
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
        return await self._tickets.reopen_by_requester(user_key(message), ticket_id)


__all__ = ["StoreTicketDesk"]
