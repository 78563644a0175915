"""Tickets worked by the helpdesk admins: the admins' channels, the ticket cards there, the
admins' actions, the requester's news, reminders, and the webhook to an outside tracker.

The rooms: ``protocol`` (what a platform and the tickets say to each other), ``card`` (a ticket
as the cards draw it), ``rules`` (what an action does: no I/O), ``service`` (``Tickets``: load,
apply the rules, store with the jobs), ``worker`` (delivers the jobs), ``webhook``, ``news``
(what a requester is told), ``reminders``, ``desk`` (the dialogs' ticket desk) and ``terminal``
(the CLI's view). Every delivery goes through the store's outbox (``ticket_jobs``), queued
in the same transaction as the ticket change: at least once, in order per ticket and target.
The same worker delivers a turn's replies that could not be sent within the turn (a platform's
``LateReplies``), in order per conversation.
"""

from __future__ import annotations

from bot.tickets.card import TicketCard, describe_path
from bot.tickets.desk import StoreTicketDesk
from bot.tickets.protocol import (
    TERMINAL,
    Action,
    ActionRequest,
    ActionResult,
    Actor,
    CardRef,
    FixRunner,
    LateReplies,
    PermanentFailure,
    RetryLater,
    TicketNotifier,
)
from bot.tickets.service import Tickets
from bot.tickets.timing import TicketTiming
from bot.tickets.webhook import WEBHOOK, public_ticket, sign

__all__ = [
    "TERMINAL",
    "WEBHOOK",
    "Action",
    "ActionRequest",
    "ActionResult",
    "Actor",
    "CardRef",
    "FixRunner",
    "LateReplies",
    "PermanentFailure",
    "RetryLater",
    "StoreTicketDesk",
    "TicketCard",
    "TicketNotifier",
    "TicketTiming",
    "Tickets",
    "describe_path",
    "public_ticket",
    "sign",
]
