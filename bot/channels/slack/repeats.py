"""A delivery Slack retries is answered once, across every instance sharing the store.

Slack delivers an event again when it did not hear back in time, and a retry may land on
another instance of the bot: the ids of what was handled live in the store (``store.seen``).
Its own room because the turns and the admins' ticket actions both ask it first.
"""

from __future__ import annotations

import logging

from bot.store import Store
from dialogs.messages import Platform

log = logging.getLogger("bot.channels.slack")


async def first_time(store: Store, kind: str, delivery_id: object) -> bool:
    """True the first time Slack delivers this ``kind`` ("event", "trigger", "action", "view")
    with this id (and for a delivery without an id, which cannot be told apart from another)."""
    if not isinstance(delivery_id, str) or not delivery_id:
        return True
    if await store.seen.first_time_seen(f"{Platform.SLACK}:{kind}:{delivery_id}"):
        return True
    log.info("dropped a repeated Slack delivery", extra={"event_id": delivery_id})
    return False
