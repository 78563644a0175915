"""Where the admins see tickets: their channel on each platform, and each ticket's card there.

Its own room because a channel is registered once per platform for every ticket, and a card is
where the bot updates a ticket in place; what a ticket says is the tickets' room, where it is
shown is this one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.store.engine import Aggregate
from bot.store.records import AdminChannel, known_number, ticket_number
from bot.store.schema import admin_channels, ticket_cards


class ChannelStore(Aggregate):
    """The admins' channels and the ticket cards posted in them (``store.channels``)."""

    async def save_admin_channel(
        self, platform: str, channel: dict[str, Any], registered_by: str
    ) -> AdminChannel:
        """Make ``channel`` the admins' channel of ``platform`` (replacing any earlier one)."""
        now = self._clock()
        values = {"channel": channel, "registered_by": registered_by, "registered_at": now}
        upsert = (
            self._insert(admin_channels)
            .values(platform=platform, **values)
            .on_conflict_do_update(index_elements=[admin_channels.c.platform], set_=values)
        )
        async with self._engine.begin() as conn:
            await conn.execute(upsert)
        return AdminChannel(platform, channel, registered_by, now)

    async def admin_channels(self) -> dict[str, AdminChannel]:
        """The registered admins' channels, by platform."""
        async with self._engine.begin() as conn:
            rows = (await conn.execute(select(admin_channels))).all()
        return {
            row.platform: AdminChannel(
                row.platform, dict(row.channel), row.registered_by, row.registered_at
            )
            for row in rows
        }

    async def save_card(self, ticket_id: str, platform: str, ref: dict[str, Any]) -> None:
        """Remember where the ticket's card was posted on ``platform``."""
        number = known_number(ticket_id)
        upsert = (
            self._insert(ticket_cards)
            .values(ticket_number=number, platform=platform, ref=ref)
            .on_conflict_do_update(
                index_elements=[ticket_cards.c.ticket_number, ticket_cards.c.platform],
                set_={"ref": ref},
            )
        )
        async with self._engine.begin() as conn:
            await conn.execute(upsert)

    async def ticket_cards(self, ticket_id: str) -> dict[str, dict[str, Any]]:
        """Where the ticket's cards are, by platform ({} if none was posted yet)."""
        number = ticket_number(ticket_id)
        if number is None:
            return {}
        query = select(ticket_cards).where(ticket_cards.c.ticket_number == number)
        async with self._engine.begin() as conn:
            rows = (await conn.execute(query)).all()
        return {row.platform: dict(row.ref) for row in rows}


__all__ = ["ChannelStore"]
