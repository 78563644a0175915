"""The webhook to an outside tracker (TICKET_WEBHOOK_URL): every ticket event as signed JSON.

The event queued with each change (``event_jobs``), the ticket as the tracker sees it
(``public_ticket``: no internal keys), the HMAC signature (``sign``), and the client that POSTs
a queued event with its own timeout and reads the tracker's Retry-After. Its own room: the
only HTTP client of the tickets, and the one contract with a system outside the bot.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import aiohttp

from bot.config import Settings
from bot.store import NewJob, Requester, TicketChange, TicketJob, TicketRecord
from bot.tickets.protocol import Actor, RetryLater

WEBHOOK: Final = "webhook"  # the job target of the webhook's events


def sign(secret: str, timestamp: str, body: str) -> str:
    """The webhook signature: hex HMAC-SHA256 of ``"{timestamp}.{body}"`` keyed by the secret."""
    message = f"{timestamp}.{body}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def public_ticket(ticket: TicketRecord, requesters: Sequence[Requester]) -> dict[str, Any]:
    """The ticket as an outside tracker sees it (no internal keys)."""

    def person(requester: Requester) -> dict[str, str]:
        return {
            "platform": requester.platform,
            "user_id": requester.user_id,
            "name": requester.name,
        }

    return {
        "id": ticket.id,
        "status": ticket.status,
        "requester": person(ticket.requester),
        "requesters": [person(r) for r in requesters],
        "assignee": ticket.assignee,
        "bounce": ticket.bounce,
        "path": ticket.path,
        "note": ticket.note,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
        "version": ticket.version,
    }


def event_jobs(settings: Settings, change: TicketChange, actor_name: str) -> list[NewJob]:
    """The webhook's event for a ticket change, when TICKET_WEBHOOK_URL is set (else none)."""
    if not settings.ticket_webhook_url:
        return []
    event = {
        "event_id": uuid.uuid4().hex,
        "ticket_id": change.ticket.id,
        "event": change.kind,
        "at": change.at.isoformat(),
        "actor": {"key": change.actor, "name": actor_name},
        "detail": change.detail,
        "ticket": public_ticket(change.ticket, change.requesters),
    }
    return [NewJob(WEBHOOK, "event", event)]


def change_event_jobs(
    settings: Settings, actor: Actor, record: dict[str, Any], at: datetime
) -> list[NewJob]:
    """The webhook's event for a change the bot made to a recipient outside any ticket (an
    admin's "Apply it for me" in a chat), when TICKET_WEBHOOK_URL is set (else none): the same
    record a ticket's ``fix_applied`` event carries, with no ticket."""
    if not settings.ticket_webhook_url:
        return []
    event = {
        "event_id": uuid.uuid4().hex,
        "ticket_id": None,
        "event": "recipient_changed"
        if record.get("problem") is None
        else "recipient_change_failed",
        "at": at.isoformat(),
        "actor": {"key": actor.key, "name": actor.name},
        "detail": record,
        "ticket": None,
    }
    return [NewJob(WEBHOOK, "event", event)]


class WebhookClient:
    """POSTs the queued events, signed; anything but a 2xx is retried (``RetryLater``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def post(
        self, job: TicketJob, session: aiohttp.ClientSession | None, *, timeout_seconds: float
    ) -> None:
        """Deliver one event job through ``session`` (None: the worker is not running), giving
        the tracker ``timeout_seconds`` to answer."""
        url = self.settings.ticket_webhook_url
        secret = self.settings.ticket_webhook_secret
        if not url or secret is None:
            raise RetryLater("TICKET_WEBHOOK_URL is not set in this process")
        body = json.dumps({**job.payload, "sequence": job.seq}, ensure_ascii=False)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-NDRBot-Timestamp": timestamp,
            "X-NDRBot-Signature": "sha256=" + sign(secret.get_secret_value(), timestamp, body),
            "X-NDRBot-Event-Id": str(job.payload.get("event_id", job.id)),
        }
        if session is None:
            raise RetryLater("the worker is not running")
        timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        try:
            async with session.post(
                url, data=body.encode(), headers=headers, timeout=timeout
            ) as response:
                if 200 <= response.status < 300:
                    return
                raise RetryLater(
                    f"webhook answered {response.status}",
                    _retry_after(response.headers.get("Retry-After")),
                )
        except aiohttp.ClientError as error:
            raise RetryLater(f"webhook unreachable: {type(error).__name__}") from None


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


__all__ = [
    "WEBHOOK",
    "WebhookClient",
    "change_event_jobs",
    "event_jobs",
    "public_ticket",
    "sign",
]
