"""``python -m bot classify``: one message in, one JSON object of what the bot read out."""

from __future__ import annotations

from typing import Any

from dialogs.intent import recognise_content
from knowledge.ndr import InputRejected


def classify_bytes(data: bytes | str) -> dict[str, Any]:
    """The facts and intent of one message, as the JSON object ``classify`` prints.

    Raises :class:`InputRejected` for binary or over-size input.
    """
    intent = recognise_content(data)
    if intent.rejected:
        raise InputRejected(intent.rejected)
    bounce = intent.bounce
    assert bounce is not None  # noqa: S101 - recognise_content sets it whenever it accepts input
    return {
        "intent": intent.name.value,
        "status": bounce.status,
        "smtp_code": bounce.smtp_code,
        "resolver": bounce.resolver,
        "recipients": list(bounce.recipients),
        "sender": bounce.sender,
        "recipient_domain": bounce.recipient_domain,
        "recipient_type": bounce.recipient_type,
        "language": bounce.language,
        "format": bounce.format,
        "is_bounce": bounce.is_bounce,
        "subject": bounce.subject,
        "date": bounce.date,
        "reporting_server": bounce.reporting_server,
        "forwarded": bounce.forwarded,
        "failures": [{"address": address, "status": status} for address, status in bounce.failures],
        "named_type": bounce.named_type,
        "listed_statuses": list(bounce.listed_statuses),
    }
