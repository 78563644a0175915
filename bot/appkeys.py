"""The typed keys under which the app keeps its shared parts (set by ``bot.app.create_app``).

A module of its own so that the channels, which the app mounts, can name them without
importing the app itself.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from aiohttp import web

from bot.background import BackgroundTasks
from bot.config import Settings
from bot.housekeeping import Purge, PurgeTiming
from bot.metrics import Metrics
from bot.runtime import Runtime
from bot.tickets import FixRunner, TicketTiming

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
RUNTIME = web.AppKey("runtime", Runtime)
BACKGROUND = web.AppKey("background", BackgroundTasks)
TICKET_TIMING = web.AppKey("ticket_timing", TicketTiming)
PURGE_TIMING = web.AppKey("purge_timing", PurgeTiming)
PURGE = web.AppKey("purge", Purge)
#: The organization's directory the tickets make approved changes through; None (the default):
#: no card offers "Approve and apply". Set before the app starts.
FIX_RUNNER: web.AppKey[FixRunner | None] = web.AppKey("fix_runner")
#: The conversation texts each mounted platform's package declares (its ``TEXTS``), by the
#: package's name: checked against the knowledge base when the runtime opens.
PLATFORM_TEXTS = web.AppKey("platform_texts", dict[str, AbstractSet[str]])
