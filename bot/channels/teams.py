"""Microsoft Teams through the Bot Framework (botbuilder): the only module that imports it."""

from __future__ import annotations

import logging

from aiohttp import web

from bot.config import Settings

log = logging.getLogger(__name__)


def mount(app: web.Application, settings: Settings) -> None:
    """Add /api/messages to the app."""
    log.warning("Teams endpoint not built yet")
