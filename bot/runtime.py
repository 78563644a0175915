"""What a running bot is made of, built from the settings: nothing exists before this is called."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from collections.abc import Set as AbstractSet
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import aiohttp

from bot.config import Settings
from bot.exchange import TEXTS as EXCHANGE_TEXTS
from bot.exchange import CmdletClient, ExchangeDirectory, Recipients
from bot.store import Store
from bot.tenants import Tenants
from bot.tickets import FixRunner, StoreTicketDesk, Tickets, TicketTiming
from bot.turns import Turns
from dialogs.turn import DialogContext
from dialogs.understanding.layer import build_understanding
from knowledge.kb import KnowledgeBase, default_knowledge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """The settings, the store, the turns (the thin bot around the dialogs) and the tickets
    service of one bot process. ``tickets`` runs its job worker only once started (the server
    does; the CLI only queues jobs); the channels add their ticket notifiers to it at start."""

    settings: Settings
    knowledge: KnowledgeBase
    store: Store
    turns: Turns
    tickets: Tickets

    @property
    def tenants(self) -> Tenants:
        """Which tenants may use the bot (the tickets service's, so both sides ask one)."""
        return self.tickets.tenants


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    ticket_timing: TicketTiming | None = None,
    conversing: bool = True,
    fix_runner: FixRunner | None = None,
    platform_texts: Mapping[str, AbstractSet[str]] | None = None,
) -> AsyncIterator[Runtime]:
    """Load the knowledge base (and check it holds the ``platform_texts`` the mounted
    platforms declare, by their package's name), open the store (its schema checked first: a
    database this version cannot use stops the start before the language layer is built), load
    the language layer (unless the command holds no conversation), and close it all
    afterwards. ``fix_runner``: through which the tickets make the changes requesters ask for
    once an admin approves; None: Exchange Online when it is configured, else no such button
    (tests give a directory of their own here)."""
    knowledge = default_knowledge()
    _require_platform_texts(knowledge, platform_texts or {})
    store = await Store.open(settings.database_url, timeout=settings.database_timeout_seconds)
    exits = AsyncExitStack()
    try:
        understanding = None
        if conversing:
            started = time.perf_counter()
            understanding = await asyncio.to_thread(build_understanding, knowledge)
            log.info(
                "language layer ready",
                extra={
                    "examples": len(understanding.data.examples),
                    "ms": round((time.perf_counter() - started) * 1000),
                },
            )
        recipients = None
        if settings.exchange_enabled:
            # A session of its own, as the tickets' worker has: each channel keeps its own, and
            # the terminal's chat has none; it is closed with the runtime.
            session = await exits.enter_async_context(aiohttp.ClientSession())
            recipients = Recipients(
                CmdletClient(settings, session), knowledge, settings.org_domains
            )
        tickets = Tickets(
            store, knowledge, settings, timing=ticket_timing, fix_runner=fix_runner or recipients
        )
        directory = ExchangeDirectory(recipients, tickets) if recipients is not None else None
        context = DialogContext(
            knowledge=knowledge,
            org_domains=frozenset(settings.org_domains),
            desk=StoreTicketDesk(store, tickets),
            understanding=understanding,
            directory=directory,
        )
        turns = Turns(store, context)
        yield Runtime(settings, knowledge, store, turns, tickets)
    finally:
        await exits.aclose()
        await store.close()


def _require_platform_texts(
    knowledge: KnowledgeBase, platform_texts: Mapping[str, AbstractSet[str]]
) -> None:
    """Stop at start when conversation.yaml lacks a text a platform's module (or the Exchange
    directory) declares (its ``TEXTS``): the knowledge base checks only the dialogs' own texts
    when it loads. The app hands over the texts of the platforms it mounted: a platform that is
    off is not imported (its package and SDK would take memory for nothing)."""
    for package, texts in platform_texts.items():
        knowledge.conversation.require(texts, package)
    knowledge.conversation.require(EXCHANGE_TEXTS, "bot.exchange")
