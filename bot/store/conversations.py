"""Conversations: each one's state (versioned), each person's profile, and each conversation's
reference on its platform.

Its own room because this is what one turn reads and writes (``bot/turns.py``), and a
platform's reference is what the bot needs to write into that conversation later; none of it
knows about tickets. A turn's conversation row says whose turn was saved last, so that reading
the row brings that person's profile along (one statement for a turn of the same person), and a
turn writes its state and a changed profile in one transaction (``save_turn``). The statements
are built once, here, with their parameters bound per call, and each of a turn's transactions is a
plain function handed whole to ``Transactions`` (one hand-off, not one per statement).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.engine import Aggregate, StaleState, Transactions
from bot.store.records import Saved
from bot.store.schema import conversation_refs, conversations, profiles

# A conversation's row, with the profile of the person whose turn was saved last (in a chat of
# one person, the one talking now): a turn of theirs reads both in one statement.
_STATE_READ = (
    select(
        conversations.c.state,
        conversations.c.version,
        conversations.c.applied,
        conversations.c.user_key,
        profiles.c.profile,
    )
    .select_from(conversations.outerjoin(profiles, profiles.c.key == conversations.c.user_key))
    .where(conversations.c.key == bindparam("conversation_key"))
)
_PROFILE_READ = select(profiles.c.profile).where(profiles.c.key == bindparam("user_key"))
_STATE_INSERT = conversations.insert()
# The conditional write: only the version read may be replaced. Its parameters are named apart
# from the columns (SQLAlchemy keeps a column's own name for the SET clause).
_STATE_UPDATE = (
    conversations.update()
    .where(conversations.c.key == bindparam("conversation_key"))
    .where(conversations.c.version == bindparam("expected_version"))
    .values(
        state=bindparam("new_state"),
        version=bindparam("new_version"),
        updated_at=bindparam("now"),
    )
)
# Keyed by which optional columns a turn gives (applied, user_key): what is not given is left
# as it was. Each is set from its "new_<column>" parameter.
_OPTIONAL = ("applied", "user_key")
_STATE_UPDATES = {
    frozenset(given): _STATE_UPDATE.values({name: bindparam(f"new_{name}") for name in given})
    for given in ((), ("applied",), ("user_key",), _OPTIONAL)
}


class ConversationStore(Aggregate):
    """Conversation state, profiles and conversation references (``store.conversations``)."""

    def __init__(
        self, engine: AsyncEngine, clock: Callable[[], datetime], transactions: Transactions
    ) -> None:
        super().__init__(engine, clock, transactions)
        insert = self._insert(profiles)
        self._profile_upsert = insert.on_conflict_do_update(
            index_elements=[profiles.c.key],
            set_={"profile": insert.excluded.profile, "updated_at": insert.excluded.updated_at},
        )

    # -- one turn: each a plain function, run whole (``Transactions``) ------------------------

    async def load_turn(self, conversation_key: str, user_key: str) -> tuple[Saved, dict[str, Any]]:
        """What a turn of ``user_key`` reads, in one transaction: the conversation as
        ``load_state`` gives it, and that person's profile ({} if nothing), read apart only when
        the last turn saved was someone else's."""

        def read(conn: Connection) -> tuple[Saved, dict[str, Any]]:
            saved = _read_state(conn, conversation_key)
            if saved.user_key == user_key and saved.profile is not None:
                return saved, saved.profile
            return saved, _read_profile(conn, user_key)

        return await self._transactions.read(read)

    async def save_turn(
        self,
        conversation_key: str,
        state: dict[str, Any],
        expected_version: int,
        *,
        applied: dict[str, Any] | None = None,
        user_key: str | None = None,
        profile: dict[str, Any] | None = None,
    ) -> int:
        """``save_state``, with ``user_key`` (when given) as the person whose turn this is, and
        ``profile`` (when given) saved as theirs, in one transaction: the profile is stored only
        with the state. The row's next read brings that person's profile along."""
        if expected_version < 0:
            raise ValueError(f"expected_version must be 0 or more, not {expected_version}")
        if profile is not None and user_key is None:
            raise ValueError("a profile is saved with the user_key it belongs to")
        now = self._clock()

        def write(conn: Connection) -> int:
            new_version = _write_state(
                conn,
                conversation_key,
                state,
                expected_version,
                now,
                applied=applied,
                user_key=user_key,
            )
            if profile is not None:
                values = {"key": user_key, "profile": profile, "updated_at": now}
                conn.execute(self._profile_upsert, values)
            return new_version

        try:
            return await self._transactions.write(write)
        except IntegrityError:  # only an insert can meet one: the row was created meanwhile
            raise StaleState(
                f"conversation {conversation_key!r} was saved by someone else first"
            ) from None

    # -- conversation state -------------------------------------------------------------------

    async def load_state(self, conversation_key: str) -> Saved:
        """The conversation's state and version; Saved({}, 0) when nothing is stored. With
        them, whose turn was saved last and that person's profile, when a turn said so."""
        return await self._transactions.read(lambda conn: _read_state(conn, conversation_key))

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
        return await self.save_turn(conversation_key, state, expected_version, applied=applied)

    # -- profiles -----------------------------------------------------------------------------

    async def load_profile(self, user_key: str) -> dict[str, Any]:
        """What the bot remembers about a person ("platform:user_id"); {} if nothing."""
        return await self._transactions.read(lambda conn: _read_profile(conn, user_key))

    async def save_profile(self, user_key: str, profile: dict[str, Any]) -> None:
        """Store the person's profile, replacing any earlier one."""
        values = {"key": user_key, "profile": profile, "updated_at": self._clock()}
        async with self._engine.begin() as conn:
            await conn.execute(self._profile_upsert, values)

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


def _read_state(conn: Connection, conversation_key: str) -> Saved:
    """The conversation's row as ``load_state`` gives it."""
    row = conn.execute(_STATE_READ, {"conversation_key": conversation_key}).first()
    if row is None:
        return Saved(state={}, version=0)
    applied = dict(row.applied) if isinstance(row.applied, dict) else None
    profile = None
    if row.user_key is not None:
        profile = dict(row.profile) if row.profile is not None else {}
    return Saved(
        state=dict(row.state),
        version=int(row.version),
        applied=applied,
        user_key=row.user_key,
        profile=profile,
    )


def _read_profile(conn: Connection, user_key: str) -> dict[str, Any]:
    """The person's profile; {} if nothing."""
    profile = conn.execute(_PROFILE_READ, {"user_key": user_key}).scalar_one_or_none()
    return dict(profile) if profile is not None else {}


def _write_state(
    conn: Connection,
    conversation_key: str,
    state: dict[str, Any],
    expected_version: int,
    now: datetime,
    *,
    applied: dict[str, Any] | None,
    user_key: str | None,
) -> int:
    """Insert (version 0) or update the row if still at ``expected_version``; the new version.
    An insert that lost its race raises IntegrityError; an update, StaleState."""
    new_version = expected_version + 1
    given = {
        name: value
        for name, value in zip(_OPTIONAL, (applied, user_key), strict=True)
        if value is not None
    }
    if expected_version == 0:
        values = {"key": conversation_key, "state": state, "version": new_version}
        conn.execute(_STATE_INSERT, {**values, "updated_at": now, **given})
        return new_version
    parameters = {
        "conversation_key": conversation_key,
        "expected_version": expected_version,
        "new_state": state,
        "new_version": new_version,
        "now": now,
        **{f"new_{name}": value for name, value in given.items()},
    }
    result = conn.execute(_STATE_UPDATES[frozenset(given)], parameters)
    if result.rowcount != 1:
        raise StaleState(
            f"conversation {conversation_key!r} is no longer at version {expected_version}"
        )
    return new_version


__all__ = ["ConversationStore"]
