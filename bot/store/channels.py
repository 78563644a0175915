"""Where the admins see tickets: their channel on each platform, and each ticket's card there.

Its own room because a channel is registered once per platform for every ticket, and a card is
where the bot updates a ticket in place; what a ticket says is the tickets' room, where it is
shown is this one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from bot.store.engine import Aggregate
from bot.store.records import AdminChannel, known_number, ticket_number
from bot.store.schema import admin_channels, admin_codes, ticket_cards


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

    async def issue_admin_code(self, code_hash: str, expires_at: datetime) -> None:
        """Keep a one-time registration code (its hash only) until ``expires_at``."""
        now = self._clock()
        values = {"code_hash": code_hash, "issued_at": now, "expires_at": expires_at}
        insert = (
            self._insert(admin_codes)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[admin_codes.c.code_hash])
        )
        async with self._engine.begin() as conn:
            await conn.execute(admin_codes.delete().where(admin_codes.c.expires_at <= now))
            await conn.execute(insert)

    async def use_admin_code(self, code_hash: str) -> bool:
        """Use up a registration code: True once, for a code issued and not expired; every
        process sharing the store agrees (one guarded DELETE)."""
        used = delete(admin_codes).where(
            admin_codes.c.code_hash == code_hash, admin_codes.c.expires_at > self._clock()
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(used)
        return result.rowcount == 1

    async def drop_admin_codes(self, code_hash: str | None = None) -> None:
        """Forget one registration code (a process stopping), or all of them (a channel is
        registered: the codes have done their work)."""
        dropped = admin_codes.delete()
        if code_hash is not None:
            dropped = dropped.where(admin_codes.c.code_hash == code_hash)
        async with self._engine.begin() as conn:
            await conn.execute(dropped)

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
