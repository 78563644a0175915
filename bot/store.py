"""The one Store: conversation state, profiles, seen event ids and tickets, in SQLite or PostgreSQL.

SQLAlchemy 2 async Core. Several bot processes may share one PostgreSQL database, so every write is
one short transaction guarded by a constraint or a version column, never a read-then-write.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Row, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

DEFAULT_URL: Final = "sqlite+aiosqlite:///./ndrbot.db"
TICKET_PREFIX: Final = "NDR-"
TICKET_OFFSET: Final = 1000
TICKET_STATUSES: Final = frozenset({"open", "assigned", "resolved"})

_SQLITE_BUSY_TIMEOUT_MS: Final = 5000
_PG_CONNECT_TIMEOUT_S: Final = 10
_PG_CREATE_LOCK: Final = 0x4E4452  # advisory lock id ("NDR") held while creating tables
_MAX_INT4: Final = 2**31 - 1
_TICKET_ID = re.compile(r"\s*NDR-(\d{1,10})\s*", re.IGNORECASE)


class StoreError(Exception):
    """Anything the store cannot do: unreachable database, bad arguments, broken invariants."""


class StaleState(StoreError):
    """A save lost a race: someone else saved a newer version first. Reload and try again."""


class UnknownTicket(StoreError):
    """No ticket has that id."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware DateTime stored as UTC; SQLite's naive values come back as aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# The tables. To add one, define it here on `metadata`; Store.open creates it on the next start.
metadata = MetaData()

conversations = Table(
    "conversations",
    metadata,
    Column("key", String, primary_key=True),
    Column("state", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

profiles = Table(
    "profiles",
    metadata,
    Column("key", String, primary_key=True),
    Column("profile", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

seen_events = Table(
    "seen_events",
    metadata,
    Column("event_id", String, primary_key=True),
    Column("seen_at", UTCDateTime, nullable=False, index=True),
)

tickets = Table(
    "tickets",
    metadata,
    Column("number", Integer, primary_key=True, autoincrement=True),
    Column("status", String(16), nullable=False),
    Column("requester", JSON, nullable=False),
    Column("conversation_key", String, nullable=False),
    Column("bounce", JSON, nullable=False),
    Column("path", JSON, nullable=False),
    Column("note", Text, nullable=True),
    Column("dedupe_key", String, nullable=True),
    Column("assignee", JSON(none_as_null=True), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    sqlite_autoincrement=True,  # never reuse a ticket number, even after a delete
)

# At most one unresolved ticket per dedupe key: the database settles simultaneous escalations.
Index(
    "uq_tickets_unresolved_dedupe_key",
    tickets.c.dedupe_key,
    unique=True,
    sqlite_where=tickets.c.status != "resolved",
    postgresql_where=tickets.c.status != "resolved",
)

# Where a conversation lives on its platform (a Bot Framework conversation reference), so the bot
# can write to it later on its own: a ticket's news for its requester.
conversation_refs = Table(
    "conversation_refs",
    metadata,
    Column("key", String, primary_key=True),
    Column("reference", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

ticket_requesters = Table(
    "ticket_requesters",
    metadata,
    Column("ticket_number", Integer, ForeignKey("tickets.number"), nullable=False),
    Column("user_key", String, nullable=False),
    Column("requester", JSON, nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("ticket_number", "user_key"),
)

ticket_events = Table(
    "ticket_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_number", Integer, ForeignKey("tickets.number"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("detail", JSON, nullable=False),
)


@dataclass(frozen=True)
class Saved:
    """A conversation's stored state and its version ({} and 0 when nothing is stored yet)."""

    state: dict[str, Any]
    version: int


@dataclass(frozen=True)
class Requester:
    """Someone who asked for help on a ticket, and where to tell them about changes."""

    platform: str  # "console" | "msteams" | "slack"
    user_id: str
    name: str
    conversation_key: str

    @property
    def key(self) -> str:
        """The person's key across conversations, "platform:user_id"."""
        return f"{self.platform}:{self.user_id}"

    def as_json(self) -> dict[str, str]:
        """The requester as a JSON object, as stored."""
        return {
            "platform": self.platform,
            "user_id": self.user_id,
            "name": self.name,
            "conversation_key": self.conversation_key,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Requester:
        """The requester back from its stored JSON object."""
        return cls(
            platform=str(data["platform"]),
            user_id=str(data["user_id"]),
            name=str(data["name"]),
            conversation_key=str(data["conversation_key"]),
        )


@dataclass(frozen=True)
class TicketRecord:
    """An escalation to the helpdesk admins, as stored."""

    id: str  # "NDR-1001": number + 1000
    number: int
    status: str  # "open" | "assigned" | "resolved"
    requester: Requester  # the one who opened it
    bounce: dict[str, Any]  # all the reader's facts and the original text
    path: dict[str, Any]  # role, recipient_type, method, centre so far
    note: str | None
    dedupe_key: str | None
    assignee: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True)
class TicketEvent:
    """One line of a ticket's history: who did what, when."""

    at: datetime
    actor: str
    kind: str
    detail: dict[str, Any]


class Keep(enum.Enum):
    """Marks an update_ticket field that stays as it is."""

    KEEP = enum.auto()


KEEP: Final = Keep.KEEP


def ticket_id(number: int) -> str:
    """The ticket id people see for a ticket number: 1 -> "NDR-1001"."""
    return f"{TICKET_PREFIX}{number + TICKET_OFFSET}"


def ticket_number(ticket_id: str) -> int | None:
    """The number in a ticket id such as "ndr-1042 " (case, spaces forgiven); None if malformed."""
    match = _TICKET_ID.fullmatch(ticket_id)
    if match is None:
        return None
    number = int(match.group(1)) - TICKET_OFFSET
    if not 1 <= number <= _MAX_INT4:
        return None
    return number


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _readable(error: BaseException) -> str:
    """One line about a driver error, without SQLAlchemy's background link and the SQL."""
    cause: BaseException = error
    if isinstance(error, DBAPIError) and error.orig is not None:
        cause = error.orig
    message = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    kind = type(cause).__name__
    if not message:
        return kind
    return message if kind == "Error" else f"{kind}: {message}"


class Store:
    """Conversation state, profiles, seen event ids and tickets, on one AsyncEngine.

    Build it with ``await Store.open(url)``; every method is its own short transaction.
    """

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] | None = None) -> None:
        """Wrap an engine as it is (no tables are created); most callers want Store.open."""
        self._engine = engine
        self._clock = clock or _utcnow
        self._dialect = engine.dialect.name

    @classmethod
    async def open(
        cls,
        url: str = DEFAULT_URL,
        *,
        schema: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> Store:
        """Create the engine and any missing tables (idempotent).

        SQLite connections get WAL, foreign keys and a busy timeout. ``schema`` (PostgreSQL only)
        puts the tables in that schema, created if missing. ``clock`` returns aware UTC "now".
        """
        engine = _create_engine(url, schema)
        store = cls(engine, clock=clock)
        try:
            await store._create_tables(schema)
        except (SQLAlchemyError, OSError, TimeoutError) as error:
            await engine.dispose()
            raise StoreError(
                f"cannot open the store at {_safe_url(url)}: {_readable(error)}"
            ) from error
        except BaseException:
            await engine.dispose()
            raise
        return store

    async def _create_tables(self, schema: str | None) -> None:
        if self._dialect == "postgresql":
            async with self._engine.begin() as conn:
                # Processes starting together take turns; DDL is transactional in PostgreSQL.
                await conn.execute(select(func.pg_advisory_xact_lock(_PG_CREATE_LOCK)))
                if schema is not None:
                    quoted = self._engine.dialect.identifier_preparer.quote_identifier(schema)
                    await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
                await conn.run_sync(metadata.create_all)
            return
        for attempt in range(2):  # another process may create the same table in between
            try:
                async with self._engine.begin() as conn:
                    await conn.run_sync(metadata.create_all)
                return
            except SQLAlchemyError:
                if attempt == 1:
                    raise

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def ping(self) -> None:
        """Check the database answers; raise StoreError saying why not."""
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError, TimeoutError) as error:
            raise StoreError(
                f"the store at {_safe_url(self._engine.url)} is unreachable: {_readable(error)}"
            ) from error

    # -- conversation state -------------------------------------------------------------------

    async def load_state(self, conversation_key: str) -> Saved:
        """The conversation's state and version; Saved({}, 0) when nothing is stored."""
        query = select(conversations.c.state, conversations.c.version).where(
            conversations.c.key == conversation_key
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return Saved(state={}, version=0)
        return Saved(state=dict(row.state), version=int(row.version))

    async def save_state(
        self, conversation_key: str, state: dict[str, Any], expected_version: int
    ) -> int:
        """Save the state if the stored version is still ``expected_version``; return the new one.

        Raises StaleState when someone saved in between (or, for version 0, created it first).
        """
        if expected_version < 0:
            raise ValueError(f"expected_version must be 0 or more, not {expected_version}")
        now = self._clock()
        new_version = expected_version + 1
        if expected_version == 0:
            insert = self._insert(conversations).values(
                key=conversation_key, state=state, version=new_version, updated_at=now
            )
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
            .values(state=state, version=new_version, updated_at=now)
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(update)
        if result.rowcount != 1:
            raise StaleState(
                f"conversation {conversation_key!r} is no longer at version {expected_version}"
            )
        return new_version

    async def delete_state(self, conversation_key: str) -> None:
        """Forget the conversation's state (no error if there is none)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                conversations.delete().where(conversations.c.key == conversation_key)
            )

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

    # -- platform retries ---------------------------------------------------------------------

    async def first_time_seen(self, event_id: str) -> bool:
        """True the first time an event id is offered (across processes), False afterwards."""
        insert = (
            self._insert(seen_events)
            .values(event_id=event_id, seen_at=self._clock())
            .on_conflict_do_nothing(index_elements=[seen_events.c.event_id])
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(insert)
        return result.rowcount == 1

    async def forget_seen_before(self, cutoff: datetime) -> int:
        """Delete event ids first seen before ``cutoff`` (timezone-aware); return how many."""
        if cutoff.tzinfo is None:
            raise ValueError("cutoff must be timezone-aware")
        async with self._engine.begin() as conn:
            result = await conn.execute(seen_events.delete().where(seen_events.c.seen_at < cutoff))
        return int(result.rowcount)

    # -- tickets ------------------------------------------------------------------------------

    async def open_ticket(
        self,
        *,
        requester: Requester,
        conversation_key: str,
        bounce: dict[str, Any],
        path: dict[str, Any],
        note: str | None,
        dedupe_key: str | None,
    ) -> tuple[TicketRecord, bool]:
        """Open a ticket, or join the unresolved one with the same ``dedupe_key``.

        Returns (ticket, True) for a new ticket, (ticket, False) when the requester joined one.
        """
        for _ in range(5):
            if dedupe_key is not None:
                joined = await self._join_ticket(dedupe_key, requester)
                if joined is not None:
                    return joined, False
            try:
                created = await self._create_ticket(
                    requester=requester,
                    conversation_key=conversation_key,
                    bounce=bounce,
                    path=path,
                    note=note,
                    dedupe_key=dedupe_key,
                )
            except IntegrityError:
                if dedupe_key is None:
                    raise
                continue  # another process opened it a moment ago: join that one
            return created, True
        raise StoreError(f"could not open or join a ticket for dedupe key {dedupe_key!r}")

    async def _create_ticket(
        self,
        *,
        requester: Requester,
        conversation_key: str,
        bounce: dict[str, Any],
        path: dict[str, Any],
        note: str | None,
        dedupe_key: str | None,
    ) -> TicketRecord:
        now = self._clock()
        async with self._engine.begin() as conn:
            result = await conn.execute(
                tickets.insert().values(
                    status="open",
                    requester=requester.as_json(),
                    conversation_key=conversation_key,
                    bounce=bounce,
                    path=path,
                    note=note,
                    dedupe_key=dedupe_key,
                    assignee=None,
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
            )
            inserted = result.inserted_primary_key
            assert inserted is not None  # noqa: S101 - an INSERT always has one
            number = int(inserted[0])
            await conn.execute(
                ticket_requesters.insert().values(
                    ticket_number=number,
                    user_key=requester.key,
                    requester=requester.as_json(),
                    added_at=now,
                )
            )
            await self._add_event(
                conn, number, actor=requester.key, kind="opened", detail={"note": note}, at=now
            )
            row = await self._ticket_row(conn, number)
        assert row is not None  # noqa: S101 - inserted in this very transaction
        return _ticket(row)

    async def _join_ticket(self, dedupe_key: str, requester: Requester) -> TicketRecord | None:
        now = self._clock()
        async with self._engine.begin() as conn:
            query = (
                select(tickets.c.number)
                .where(tickets.c.dedupe_key == dedupe_key)
                .where(tickets.c.status != "resolved")
                .with_for_update()
            )
            number = (await conn.execute(query)).scalar_one_or_none()
            if number is None:
                return None
            added = await conn.execute(
                self._insert(ticket_requesters)
                .values(
                    ticket_number=number,
                    user_key=requester.key,
                    requester=requester.as_json(),
                    added_at=now,
                )
                .on_conflict_do_nothing(
                    index_elements=[ticket_requesters.c.ticket_number, ticket_requesters.c.user_key]
                )
            )
            if added.rowcount == 1:
                detail = {"user_key": requester.key, "name": requester.name}
                await self._add_event(
                    conn, number, actor=requester.key, kind="joined", detail=detail, at=now
                )
                await conn.execute(
                    tickets.update().where(tickets.c.number == number).values(updated_at=now)
                )
            row = await self._ticket_row(conn, number)
        return _ticket(row) if row is not None else None

    async def update_ticket(
        self,
        ticket_id: str,
        *,
        expected_version: int,
        actor: str,
        kind: str,
        status: str | None = None,
        assignee: dict[str, Any] | Keep | None = KEEP,
        note: str | Keep | None = KEEP,
        detail: dict[str, Any] | None = None,
    ) -> TicketRecord:
        """Change a ticket if it is still at ``expected_version``, and record a ``kind`` event.

        Raises UnknownTicket, StaleState when someone changed it first, or StoreError when
        reopening it would make two unresolved tickets with one dedupe key.
        """
        number = ticket_number(ticket_id)
        if number is None:
            raise UnknownTicket(f"{ticket_id!r} is not a ticket id")
        if status is not None and status not in TICKET_STATUSES:
            raise ValueError(f"status must be one of {sorted(TICKET_STATUSES)}, not {status!r}")
        now = self._clock()
        changes: dict[str, Any] = {"version": expected_version + 1, "updated_at": now}
        if status is not None:
            changes["status"] = status
        if assignee is not KEEP:
            changes["assignee"] = assignee
        if note is not KEEP:
            changes["note"] = note
        update = (
            tickets.update()
            .where(tickets.c.number == number)
            .where(tickets.c.version == expected_version)
            .values(**changes)
        )
        event_detail = dict(detail or {})
        if status is not None:
            event_detail.setdefault("status", status)
        if assignee is not KEEP:
            event_detail.setdefault("assignee", assignee)
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(update)
                if result.rowcount == 1:
                    await self._add_event(
                        conn, number, actor=actor, kind=kind, detail=event_detail, at=now
                    )
                row = await self._ticket_row(conn, number)
        except IntegrityError:
            raise StoreError(
                f"{ticket_id} cannot be reopened: another unresolved ticket has its dedupe key"
            ) from None
        if row is None:
            raise UnknownTicket(f"there is no ticket {ticket_id}")
        if result.rowcount != 1:
            raise StaleState(f"{ticket_id} is no longer at version {expected_version}")
        return _ticket(row)

    async def get_ticket(self, ticket_id: str) -> TicketRecord | None:
        """The ticket with this id ("NDR-1042"); None if there is none or the id is malformed."""
        number = ticket_number(ticket_id)
        if number is None:
            return None
        async with self._engine.begin() as conn:
            row = await self._ticket_row(conn, number)
        return _ticket(row) if row is not None else None

    async def list_tickets(
        self, *, status: str | None = None, requester_key: str | None = None, limit: int = 50
    ) -> list[TicketRecord]:
        """Tickets, newest first, optionally only those with a status or a requester."""
        query = select(tickets).order_by(tickets.c.number.desc()).limit(limit)
        if status is not None:
            query = query.where(tickets.c.status == status)
        if requester_key is not None:
            asked = select(ticket_requesters.c.ticket_number).where(
                ticket_requesters.c.user_key == requester_key
            )
            query = query.where(tickets.c.number.in_(asked))
        async with self._engine.begin() as conn:
            rows = (await conn.execute(query)).all()
        return [_ticket(row) for row in rows]

    async def ticket_events(self, ticket_id: str) -> list[TicketEvent]:
        """The ticket's history, oldest first ([] for an unknown or malformed id)."""
        number = ticket_number(ticket_id)
        if number is None:
            return []
        query = (
            select(ticket_events)
            .where(ticket_events.c.ticket_number == number)
            .order_by(ticket_events.c.id)
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(query)).all()
        return [
            TicketEvent(at=row.at, actor=row.actor, kind=row.kind, detail=dict(row.detail))
            for row in rows
        ]

    async def ticket_requesters(self, ticket_id: str) -> list[Requester]:
        """Everyone waiting on the ticket; the first is the one who opened it."""
        number = ticket_number(ticket_id)
        if number is None:
            return []
        async with self._engine.begin() as conn:
            opener = (
                await conn.execute(select(tickets.c.requester).where(tickets.c.number == number))
            ).scalar_one_or_none()
            rows = (
                await conn.execute(
                    select(ticket_requesters.c.user_key, ticket_requesters.c.requester)
                    .where(ticket_requesters.c.ticket_number == number)
                    .order_by(ticket_requesters.c.added_at, ticket_requesters.c.user_key)
                )
            ).all()
        if opener is None:
            return []
        first = Requester.from_json(opener)
        others = [Requester.from_json(row.requester) for row in rows if row.user_key != first.key]
        return [first, *others]

    # -- helpers ------------------------------------------------------------------------------

    def _insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        """An INSERT that knows ON CONFLICT in this store's dialect."""
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def _ticket_row(self, conn: AsyncConnection, number: int) -> Row[Any] | None:
        return (await conn.execute(select(tickets).where(tickets.c.number == number))).first()

    async def _add_event(
        self,
        conn: AsyncConnection,
        number: int,
        *,
        actor: str,
        kind: str,
        detail: dict[str, Any],
        at: datetime,
    ) -> None:
        await conn.execute(
            ticket_events.insert().values(
                ticket_number=number, at=at, actor=actor, kind=kind, detail=detail
            )
        )


def _ticket(row: Row[Any]) -> TicketRecord:
    return TicketRecord(
        id=ticket_id(row.number),
        number=int(row.number),
        status=row.status,
        requester=Requester.from_json(row.requester),
        bounce=dict(row.bounce),
        path=dict(row.path),
        note=row.note,
        dedupe_key=row.dedupe_key,
        assignee=dict(row.assignee) if row.assignee is not None else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=int(row.version),
    )


def _safe_url(url: str | URL) -> str:
    """The URL with any password hidden, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def _create_engine(url: str, schema: str | None) -> AsyncEngine:
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StoreError(f"not a database URL: {error}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if schema is not None:
            raise StoreError("schema= is for PostgreSQL only")
        folder = Path(parsed.database).parent if parsed.database else None
        if folder is not None and parsed.database != ":memory:" and not folder.is_dir():
            # Said here rather than by a failed connect, which leaves aiosqlite's thread behind.
            raise StoreError(
                f"cannot open the store at {_safe_url(parsed)}: there is no folder {folder}"
            )
        engine = create_async_engine(parsed)
        event.listen(engine.sync_engine, "connect", _tune_sqlite_connection)
        return engine
    if backend == "postgresql":
        engine = create_async_engine(
            parsed,
            pool_size=5,
            max_overflow=10,
            pool_pre_ping=True,
            pool_recycle=1800,
            connect_args={"timeout": _PG_CONNECT_TIMEOUT_S},
        )
        if schema is not None:
            engine = engine.execution_options(schema_translate_map={None: schema})
        return engine
    raise StoreError(
        f"unsupported database {backend!r}: use sqlite+aiosqlite:// or postgresql+asyncpg://"
    )


def _tune_sqlite_connection(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


__all__ = [
    "DEFAULT_URL",
    "KEEP",
    "Keep",
    "Requester",
    "Saved",
    "StaleState",
    "Store",
    "StoreError",
    "TicketEvent",
    "TicketRecord",
    "UnknownTicket",
    "metadata",
    "ticket_id",
    "ticket_number",
]
