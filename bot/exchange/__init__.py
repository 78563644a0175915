"""Exchange Online: the recipients the admin's path reads and fixes (issue 13).

``tokens.py`` the app's token (MSAL, client credentials), ``client.py`` cmdlets over the admin
API's ``InvokeCommand`` (paging, throttling, one bounded call), ``answers.py`` its errors read
into a line and a problem, ``recipients.py`` the kinds of recipient and the change as a
PowerShell line, ``directory.py`` the dialogs' ``RecipientDirectory`` (admins only, our domains
only) over ``Recipients``, ``terminal.py`` ``python -m bot exchange``.
"""

from __future__ import annotations

import logging

from bot.config import Settings, hide_url
from bot.exchange.client import CmdletClient, CmdletFailed
from bot.exchange.directory import TEXTS, ExchangeDirectory, Recipients, actor_of
from bot.exchange.tokens import AppToken, TokenFailed

log = logging.getLogger(__name__)


def announce(settings: Settings) -> None:
    """Say at start, in one line, whether the bot reads Exchange Online (never a secret)."""
    if settings.exchange_enabled:
        log.info(
            "exchange online on",
            extra={
                "exchange": "on",
                "tenant": settings.exchange_tenant_id,
                "client_id": settings.exchange_client_id,
                "credential": "certificate" if settings.exchange_certificate_path else "secret",
                "api": hide_url(settings.exchange_api_url),
            },
        )
    else:
        log.info(
            "exchange online off: no EXCHANGE_TENANT_ID, EXCHANGE_CLIENT_ID and credential set",
            extra={"exchange": "off"},
        )


__all__ = [
    "TEXTS",
    "AppToken",
    "CmdletClient",
    "CmdletFailed",
    "ExchangeDirectory",
    "Recipients",
    "TokenFailed",
    "actor_of",
    "announce",
]
