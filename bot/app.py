"""The aiohttp app: Teams at /api/messages, Slack at /slack/events, and /healthz, /readyz,
/metrics. ``create_app(settings)`` builds everything; nothing exists at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bot.appkeys import BACKGROUND, METRICS, RUNTIME, SETTINGS, TICKET_TIMING
from bot.background import BackgroundTasks
from bot.channels import slack, teams
from bot.config import Settings, describe
from bot.metrics import CONTENT_TYPE, Metrics
from bot.runtime import open_runtime
from bot.store import StoreError
from bot.tickets import TicketTiming

log = logging.getLogger(__name__)

__all__ = ["BACKGROUND", "METRICS", "RUNTIME", "SETTINGS", "TICKET_TIMING", "create_app", "run"]

# Requests carry a chat message (a pasted bounce is tens of KB); files are fetched separately.
_MAX_REQUEST_BYTES = 2 * 1024 * 1024
_SHUTDOWN_GRACE_SECONDS = 25.0


def create_app(settings: Settings) -> web.Application:
    """Build the whole server app for these settings."""
    app = web.Application(client_max_size=_MAX_REQUEST_BYTES)
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[BACKGROUND] = BackgroundTasks()
    app[TICKET_TIMING] = TicketTiming()
    app.cleanup_ctx.append(_runtime)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    teams.mount(app, settings)
    slack.mount(app, settings)
    # After the channels: they add their ticket notifiers first, and stop after the worker.
    app.cleanup_ctx.append(_ticket_work)
    return app


async def _runtime(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    log.info("starting", extra={"settings": describe(settings)})
    async with open_runtime(settings, ticket_timing=app[TICKET_TIMING]) as runtime:
        app[RUNTIME] = runtime
        yield
        # Shutting down: requests in flight were drained by aiohttp; let background turns end.
        await app[BACKGROUND].wait(_SHUTDOWN_GRACE_SECONDS)
    log.info("stopped")


async def _ticket_work(app: web.Application) -> AsyncIterator[None]:
    """The tickets' job worker and reminders, for as long as the server runs."""
    escalations = app[RUNTIME].escalations
    await escalations.start()
    try:
        yield
    finally:
        await escalations.stop()


def run(app: web.Application, settings: Settings) -> None:
    """Serve until SIGTERM or Ctrl-C; requests in flight and background turns finish first."""
    if not settings.teams_credentials:
        log.warning(
            "LOCAL MODE: no MICROSOFT_APP_ID is set, so /api/messages accepts unauthenticated "
            "requests for the Agents Playground and the Bot Framework Emulator%s",
            "" if settings.teams_local_allow_remote else ", from loopback addresses only",
        )
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        shutdown_timeout=_SHUTDOWN_GRACE_SECONDS,
        access_log=None,
        print=lambda text: log.info(text.strip()),
    )


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    try:
        await request.app[RUNTIME].store.ping()
    except (StoreError, KeyError) as error:
        return web.json_response({"status": "unavailable", "reason": str(error)}, status=503)
    return web.json_response({"status": "ready"})


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
