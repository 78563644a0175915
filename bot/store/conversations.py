"""Conversations: each one's state (versioned), each person's profile, and each conversation's
reference on its platform.

Its own room because this is what one turn reads and writes (``bot/turns.py``), and a
platform's reference is what the bot needs to write into that conversation later; none of it
knows about tickets.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.store.engine import Aggregate, StaleState
from bot.store.records import Saved
from bot.store.schema import conversation_refs, conversations, profiles


class ConversationStore(Aggregate):
    """Conversation state, profiles and conversation references (``store.conversations``)."""

    # -- conversation state -------------------------------------------------------------------

    async def load_state(self, conversation_key: str) -> Saved:
        """The conversation's state and version; Saved({}, 0) when nothing is stored."""
        query = select(
            conversations.c.state, conversations.c.version, conversations.c.applied
        ).where(conversations.c.key == conversation_key)
        async with self._engine.begin() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return Saved(state={}, version=0)
        applied = dict(row.applied) if isinstance(row.applied, dict) else None
        return Saved(state=dict(row.state), version=int(row.version), applied=applied)

    async def save_state(
        self,
        conversation_key: str,
        state: dict[str, Any],
        expected_version: int,
        *,
        applied: dict[str, Any] | None = None,
    ) -> int:
        """Save the state if the stored version is still ``expected_version``; return the new one.
        ``applied`` (when given) replaces what the row remembers of the deliveries applied to
        it, in the same write; else that is left as it was.

        Raises StaleState when someone saved in between (or, for version 0, created it first).
        """
        if expected_version < 0:
            raise ValueError(f"expected_version must be 0 or more, not {expected_version}")
        now = self._clock()
        new_version = expected_version + 1
        values: dict[str, Any] = {"state": state, "version": new_version, "updated_at": now}
        if applied is not None:
            values["applied"] = applied
        if expected_version == 0:
            insert = self._insert(conversations).values(key=conversation_key, **values)
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(insert)
            except IntegrityError:
                raise StaleState(
                    f"conversation {conversation_key!r} was saved by someone else first"
                ) from None
            return new_version
        update = (
            conversations.update()
            .where(conversations.c.key == conversation_key)
            .where(conversations.c.version == expected_version)
            .values(**values)
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(update)
        if result.rowcount != 1:
            raise StaleState(
                f"conversation {conversation_key!r} is no longer at version {expected_version}"
            )
        return new_version

    # -- profiles -----------------------------------------------------------------------------

    async def load_profile(self, user_key: str) -> dict[str, Any]:
        """What the bot remembers about a person ("platform:user_id"); {} if nothing."""
        query = select(profiles.c.profile).where(profiles.c.key == user_key)
        async with self._engine.begin() as conn:
            profile = (await conn.execute(query)).scalar_one_or_none()
        return dict(profile) if profile is not None else {}

    async def save_profile(self, user_key: str, profile: dict[str, Any]) -> None:
        """Store the person's profile, replacing any earlier one."""
        now = self._clock()
        insert = self._insert(profiles).values(key=user_key, profile=profile, updated_at=now)
        upsert = insert.on_conflict_do_update(
            index_elements=[profiles.c.key],
            set_={"profile": insert.excluded.profile, "updated_at": insert.excluded.updated_at},
        )
        async with self._engine.begin() as conn:
            await conn.execute(upsert)

    # -- conversation references --------------------------------------------------------------

    async def save_reference(self, conversation_key: str, reference: dict[str, Any]) -> None:
        """Store where a conversation lives ("platform:conversation id"), replacing the old one."""
        now = self._clock()
        insert = self._insert(conversation_refs).values(
            key=conversation_key, reference=reference, updated_at=now
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[conversation_refs.c.key],
            set_={"reference": insert.excluded.reference, "updated_at": insert.excluded.updated_at},
        )
        async with self._engine.begin() as conn:
            await conn.execute(upsert)

    async def load_reference(self, conversation_key: str) -> dict[str, Any] | None:
        """The conversation's stored reference; None if the bot never saw it."""
        query = select(conversation_refs.c.reference).where(
            conversation_refs.c.key == conversation_key
        )
        async with self._engine.begin() as conn:
            reference = (await conn.execute(query)).scalar_one_or_none()
        return dict(reference) if reference is not None else None


__all__ = ["ConversationStore"]
