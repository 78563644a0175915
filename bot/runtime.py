"""What a running bot is made of, built from the settings: nothing exists before this is called."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.config import Settings
from bot.conversation import Conversations
from bot.escalation import StoreTicketDesk
from bot.store import Store
from dialogs.turn import DialogContext
from knowledge.kb import KnowledgeBase, default_knowledge


@dataclass(frozen=True)
class Runtime:
    """The settings, the store and the conversation service of one bot process."""

    settings: Settings
    knowledge: KnowledgeBase
    store: Store
    conversations: Conversations


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Load the knowledge base, open the store, and close it all afterwards."""
    knowledge = default_knowledge()
    store = await Store.open(settings.database_url)
    try:
        context = DialogContext(
            knowledge=knowledge,
            org_domains=frozenset(settings.org_domains),
            desk=StoreTicketDesk(store),
        )
        yield Runtime(settings, knowledge, store, Conversations(store, context))
    finally:
        await store.close()
