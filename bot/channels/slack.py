"""Slack through slack-bolt: the only module that imports it."""

from __future__ import annotations

import logging

from aiohttp import web

from bot.config import Settings

log = logging.getLogger(__name__)


def mount(app: web.Application, settings: Settings) -> None:
    """Add /slack/events (or a Socket Mode connection) to the app."""
    if not settings.slack_enabled:
        log.warning("Slack is off: SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are not set")
