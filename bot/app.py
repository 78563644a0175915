"""The aiohttp app: Teams at /api/messages, Slack at /slack/events (its package imported only
when Slack is configured), and /healthz, /readyz, /metrics. ``create_app(settings)`` builds
everything; nothing exists at import time."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from collections.abc import Set as AbstractSet

from aiohttp import web

from bot.appkeys import (
    BACKGROUND,
    FIX_RUNNER,
    METRICS,
    PLATFORM_TEXTS,
    PURGE,
    PURGE_TIMING,
    RUNTIME,
    SETTINGS,
    TICKET_TIMING,
)
from bot.background import BackgroundTasks
from bot.channels import teams
from bot.config import Settings, describe
from bot.exchange import announce as announce_exchange
from bot.housekeeping import Purge, PurgeTiming
from bot.metrics import CONTENT_TYPE, Metrics
from bot.runtime import open_runtime
from bot.store import SchemaMismatch, StoreError
from bot.tickets import TicketTiming
from knowledge.kb import KnowledgeError

log = logging.getLogger(__name__)

__all__ = [
    "BACKGROUND",
    "FIX_RUNNER",
    "METRICS",
    "PURGE",
    "PURGE_TIMING",
    "RUNTIME",
    "SETTINGS",
    "TICKET_TIMING",
    "create_app",
    "run",
]

# Requests carry a chat message (a pasted bounce is tens of KB); files are fetched separately.
_MAX_REQUEST_BYTES = 2 * 1024 * 1024
_SHUTDOWN_GRACE_SECONDS = 25.0
_READY_WITHIN_SECONDS = 1.5  # /readyz answers within 2 s, whatever the database does


def create_app(settings: Settings) -> web.Application:
    """Build the whole server app for these settings."""
    app = web.Application(client_max_size=_MAX_REQUEST_BYTES)
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[BACKGROUND] = BackgroundTasks()
    app[TICKET_TIMING] = TicketTiming(lease_seconds=settings.job_lease_seconds)
    app[PURGE_TIMING] = PurgeTiming()
    app[FIX_RUNNER] = None  # the Exchange directory, when one is configured (issue 13)
    app.cleanup_ctx.append(_runtime)
    app.cleanup_ctx.append(_purge)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    declared: dict[str, AbstractSet[str]] = {teams.__name__: teams.TEXTS}
    app[PLATFORM_TEXTS] = declared
    teams.mount(app, settings)  # always: in local mode without Teams settings
    _mount_slack(app, settings)
    # After the channels: they add their ticket notifiers first, and stop after the worker.
    app.cleanup_ctx.append(_ticket_work)
    return app


def _mount_slack(app: web.Application, settings: Settings) -> None:
    """Slack's package is imported only when Slack is configured: with slack_bolt and slack_sdk
    it adds about 6 MB to a running server, which a bot without Slack would keep for nothing.
    The reason it is off is said in the package's log, as its ``mount`` would."""
    missing = settings.slack_missing
    if missing is not None:
        logging.getLogger("bot.channels.slack").warning("Slack is off: %s", missing)
        return
    from bot.channels import slack  # noqa: PLC0415 - see the docstring

    app[PLATFORM_TEXTS][slack.__name__] = slack.TEXTS
    slack.mount(app, settings)


async def _runtime(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    log.info("starting", extra={"settings": describe(settings)})
    async with open_runtime(
        settings,
        ticket_timing=app[TICKET_TIMING],
        fix_runner=app[FIX_RUNNER],
        platform_texts=app[PLATFORM_TEXTS],
    ) as runtime:
        app[RUNTIME] = runtime
        runtime.tenants.announce()
        announce_exchange(settings)
        yield
        # Shutting down: requests in flight were drained by aiohttp; let background turns end.
        await app[BACKGROUND].wait(_SHUTDOWN_GRACE_SECONDS)
    log.info("stopped")


async def _purge(app: web.Application) -> AsyncIterator[None]:
    """The retention purge (``RETENTION_DAYS``), at start and then every hour."""
    purge = Purge(app[RUNTIME].store, app[SETTINGS].retention_days, app[PURGE_TIMING])
    app[PURGE] = purge
    purge.start()
    try:
        yield
    finally:
        await purge.stop()


async def _ticket_work(app: web.Application) -> AsyncIterator[None]:
    """The tickets' job worker and reminders, for as long as the server runs."""
    tickets = app[RUNTIME].tickets
    await tickets.start()
    try:
        yield
    finally:
        await tickets.stop()


def run(app: web.Application, settings: Settings) -> int:
    """Serve until SIGTERM or Ctrl-C; requests in flight and background turns finish first.

    Returns the exit status: 0 after a graceful stop, 1 when the address cannot be listened on
    (or the server failed), 3 when the database is not reachable or its schema is not this
    version's (``python -m bot db upgrade``), or the knowledge base lacks a text a platform needs
    (as the other commands).
    Every line it logs is JSON: aiohttp's banner is replaced by one "listening" line, logged
    once the start-up work is done and the sockets listen."""
    if not settings.teams_credentials:
        log.warning(
            "LOCAL MODE: no MICROSOFT_APP_ID is set, so /api/messages accepts unauthenticated "
            "requests for the Agents Playground%s",
            ""
            if settings.teams_local_allow_remote
            else ", from and to loopback addresses only (Host and serviceUrl included)",
        )
    try:
        sockets = _listen(settings.host, settings.port)
    except OSError as error:
        log.error(
            "cannot listen on %s port %s: %s",
            settings.host,
            settings.port,
            error.strerror or error,
            extra={"host": settings.host, "port": settings.port},
        )
        return 1

    async def listening(app: web.Application) -> None:
        addresses = [sock.getsockname() for sock in sockets]
        log.info(
            "listening",
            extra={
                "host": settings.host,
                "port": addresses[0][1],
                "urls": [_url(address[0], address[1]) for address in addresses],
            },
        )

    app.on_startup.append(listening)  # after the cleanup contexts: the runtime is ready then
    try:
        web.run_app(
            app,
            sock=sockets,
            shutdown_timeout=_SHUTDOWN_GRACE_SECONDS,
            access_log=None,
            print=None,
        )
    except SchemaMismatch as error:
        log.error("refused to start: %s", error)
        return 3
    except StoreError as error:
        log.error("the database is not reachable: %s", error)
        return 3
    except KnowledgeError as error:  # a text a platform declares is missing (see open_runtime)
        log.error("the knowledge base is not valid: %s", error)
        return 3
    except Exception:  # a traceback, as the "error" of one JSON line like every other line
        log.exception("the server stopped on an error")
        return 1
    return 0


def _listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address ``host`` stands for, as aiohttp would bind them; bound
    before the start-up work so that a port in use stops the start at once."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, address in dict.fromkeys((info[0], info[4]) for info in found):
            sockets.append(socket.create_server(address, family=family, backlog=128))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    """200 when the database answers; 503 with the reason when it fails or does not answer
    within a moment and a half (a stalled database: a load balancer must hear it in time)."""
    try:
        await request.app[RUNTIME].store.ping(within=_READY_WITHIN_SECONDS)
    except (StoreError, KeyError) as error:
        return web.json_response({"status": "unavailable", "reason": str(error)}, status=503)
    return web.json_response({"status": "ready"})


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
