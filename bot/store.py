"""The one Store: conversation state, profiles, seen event ids and tickets, in SQLite or PostgreSQL.

SQLAlchemy 2 async Core. Several bot processes may share one PostgreSQL database, so every write is
one short transaction guarded by a constraint or a version column, never a read-then-write.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    UniqueConstraint,
    event,
    exists,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Row, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.expression import Executable

from dialogs.messages import Platform

DEFAULT_URL: Final = "sqlite+aiosqlite:///./ndrbot.db"
TICKET_PREFIX: Final = "NDR-"
TICKET_OFFSET: Final = 1000
TICKET_STATUSES: Final = frozenset({"open", "assigned", "resolved"})
JOB_TARGETS: Final = frozenset({Platform.TEAMS, Platform.SLACK, "webhook"})
JOB_KINDS: Final = frozenset(
    {"post_card", "update_card", "note", "tell_requester", "remind", "event"}
)

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

# The admins' channel per platform (a Teams conversation reference, a Slack channel id, ...).
admin_channels = Table(
    "admin_channels",
    metadata,
    Column("platform", String(16), primary_key=True),
    Column("channel", JSON, nullable=False),
    Column("registered_by", String, nullable=False),
    Column("registered_at", UTCDateTime, nullable=False),
)

# Where each ticket's card was posted, per platform, so it can be updated in place.
ticket_cards = Table(
    "ticket_cards",
    metadata,
    Column("ticket_number", Integer, ForeignKey("tickets.number"), nullable=False),
    Column("platform", String(16), nullable=False),
    Column("ref", JSON, nullable=False),
    PrimaryKeyConstraint("ticket_number", "platform"),
)

# Everything that must reach a platform or the webhook, in order per (ticket, target): a durable
# queue. ``seq`` counts a ticket's jobs per target (1, 2, ...); a job is delivered only after
# every earlier one of its ticket and target is done. A claimed job has next_attempt_at pushed
# out by a lease, so another process takes it over only if this one dies.
ticket_jobs = Table(
    "ticket_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_number", Integer, ForeignKey("tickets.number"), nullable=False),
    Column("target", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("done_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    UniqueConstraint("ticket_number", "target", "seq", name="uq_ticket_jobs_order"),
    sqlite_autoincrement=True,
)

Index(
    "ix_ticket_jobs_pending",
    ticket_jobs.c.next_attempt_at,
    sqlite_where=ticket_jobs.c.done_at.is_(None),
    postgresql_where=ticket_jobs.c.done_at.is_(None),
)
Index("ix_ticket_jobs_done_at", ticket_jobs.c.done_at)

# When an open ticket was last announced again to the admins.
ticket_reminders = Table(
    "ticket_reminders",
    metadata,
    Column("ticket_number", Integer, ForeignKey("tickets.number"), primary_key=True),
    Column("last_reminded_at", UTCDateTime, nullable=False),
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


@dataclass(frozen=True)
class AdminChannel:
    """The admins' channel of one platform, and who registered it when."""

    platform: str
    channel: dict[str, Any]
    registered_by: str
    registered_at: datetime


@dataclass(frozen=True)
class NewJob:
    """A job to enqueue for a ticket: deliver ``kind`` with ``payload`` to ``target``."""

    target: str  # "msteams" | "slack" | "webhook"
    kind: str  # "post_card" | "update_card" | "note" | "tell_requester" | "remind" | "event"
    payload: dict[str, Any]


@dataclass(frozen=True)
class TicketJob:
    """A queued job, as stored."""

    id: int
    ticket_id: str
    target: str
    kind: str
    seq: int  # its place among the ticket's jobs for this target: 1, 2, ...
    payload: dict[str, Any]
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    done_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class TicketChange:
    """A ticket as a change just left it, read inside the changing transaction, for deciding
    which jobs to enqueue with it (see ``JobsFor``)."""

    ticket: TicketRecord
    kind: str  # the event just recorded: "opened", "joined", "assigned", ...
    actor: str
    at: datetime
    detail: dict[str, Any]
    requesters: list[Requester]
    admin_platforms: frozenset[str]  # platforms with a registered admins' channel
    card_platforms: frozenset[str]  # platforms where the ticket's card was posted


#: Builds the jobs to enqueue in the same transaction as a ticket change.
JobsFor = Callable[[TicketChange], Sequence[NewJob]]


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
        ticket, outcome = await self.open_or_join_ticket(
            requester=requester,
            conversation_key=conversation_key,
            bounce=bounce,
            path=path,
            note=note,
            dedupe_key=dedupe_key,
        )
        return ticket, outcome == "opened"

    async def open_or_join_ticket(
        self,
        *,
        requester: Requester,
        conversation_key: str,
        bounce: dict[str, Any],
        path: dict[str, Any],
        note: str | None,
        dedupe_key: str | None,
        jobs: JobsFor | None = None,
    ) -> tuple[TicketRecord, str]:
        """Like open_ticket, saying what happened: "opened", "joined", or "already" (the
        requester was on that ticket already). ``jobs`` builds the jobs to enqueue in the same
        transaction when it "opened" or "joined"."""
        for _ in range(5):
            if dedupe_key is not None:
                joined = await self._join_ticket(dedupe_key, requester, jobs)
                if joined is not None:
                    return joined
            try:
                created = await self._create_ticket(
                    requester=requester,
                    conversation_key=conversation_key,
                    bounce=bounce,
                    path=path,
                    note=note,
                    dedupe_key=dedupe_key,
                    jobs=jobs,
                )
            except IntegrityError:
                if dedupe_key is None:
                    raise
                continue  # another process opened it a moment ago: join that one
            return created, "opened"
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
        jobs: JobsFor | None,
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
            detail = {"note": note}
            await self._add_event(
                conn, number, actor=requester.key, kind="opened", detail=detail, at=now
            )
            row = await self._ticket_row(conn, number)
            assert row is not None  # noqa: S101 - inserted in this very transaction
            ticket = _ticket(row)
            if jobs is not None:
                change = await self._change(
                    conn, ticket, kind="opened", actor=requester.key, at=now, detail=detail
                )
                await self._insert_jobs(conn, number, jobs(change), now)
        return ticket

    async def _join_ticket(
        self, dedupe_key: str, requester: Requester, jobs: JobsFor | None
    ) -> tuple[TicketRecord, str] | None:
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
            detail = {"user_key": requester.key, "name": requester.name}
            if added.rowcount == 1:
                await self._add_event(
                    conn, number, actor=requester.key, kind="joined", detail=detail, at=now
                )
                await conn.execute(
                    tickets.update().where(tickets.c.number == number).values(updated_at=now)
                )
            row = await self._ticket_row(conn, number)
            if row is None:
                return None
            ticket = _ticket(row)
            if added.rowcount == 1 and jobs is not None:
                change = await self._change(
                    conn, ticket, kind="joined", actor=requester.key, at=now, detail=detail
                )
                await self._insert_jobs(conn, number, jobs(change), now)
        return ticket, "joined" if added.rowcount == 1 else "already"

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
        jobs: JobsFor | None = None,
    ) -> TicketRecord:
        """Change a ticket if it is still at ``expected_version``, and record a ``kind`` event;
        ``jobs`` builds the jobs to enqueue in the same transaction.

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
                if result.rowcount == 1 and row is not None and jobs is not None:
                    change = await self._change(
                        conn, _ticket(row), kind=kind, actor=actor, at=now, detail=event_detail
                    )
                    await self._insert_jobs(conn, number, jobs(change), now)
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
            return await self._requesters(conn, number)

    async def _requesters(self, conn: AsyncConnection, number: int) -> list[Requester]:
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

    # -- admins' channels and ticket cards ----------------------------------------------------

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
        number = _known_number(ticket_id)
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

    # -- the job queue ------------------------------------------------------------------------

    async def enqueue_jobs(self, ticket_id: str, jobs: Sequence[NewJob]) -> int:
        """Queue jobs for a ticket, after any queued before for the same target; return how many.

        (A ticket change queues its jobs with ``update_ticket(jobs=...)``, in its transaction.)
        """
        number = _known_number(ticket_id)
        if not jobs:
            return 0
        async with self._engine.begin() as conn:
            if self._dialect == "postgresql":
                # Jobs of one ticket are numbered one transaction at a time.
                lock = select(tickets.c.number).where(tickets.c.number == number).with_for_update()
                if (await conn.execute(lock)).first() is None:
                    raise UnknownTicket(f"there is no ticket {ticket_id}")
            await self._insert_jobs(conn, number, jobs, self._clock())
        return len(jobs)

    async def claim_jobs(
        self, targets: Sequence[str], *, lease: timedelta, limit: int = 50
    ) -> list[TicketJob]:
        """Take the due jobs for ``targets`` that are first in line for their ticket and target
        (every earlier job of theirs is done), oldest first, for ``lease``: no other process
        takes them meanwhile. Each claim counts as an attempt."""
        if not targets:
            return []
        now = self._clock()
        job, earlier = ticket_jobs.alias("job"), ticket_jobs.alias("earlier")
        first_in_line = (
            select(job.c.id)
            .where(job.c.done_at.is_(None))
            .where(job.c.target.in_(list(targets)))
            .where(job.c.next_attempt_at <= now)
            .where(
                ~exists()
                .where(earlier.c.ticket_number == job.c.ticket_number)
                .where(earlier.c.target == job.c.target)
                .where(earlier.c.done_at.is_(None))
                .where(earlier.c.seq < job.c.seq)
            )
            .order_by(job.c.id)
            .limit(limit)
            .with_for_update(of=job, skip_locked=True)  # PostgreSQL: leave them to the other
        )
        # One statement: on SQLite it holds the write lock from the start; on PostgreSQL jobs
        # another process is claiming are skipped, and one it claimed meanwhile fails the
        # re-checked WHERE.
        claim = (
            ticket_jobs.update()
            .where(ticket_jobs.c.id.in_(first_in_line.scalar_subquery()))
            .where(ticket_jobs.c.done_at.is_(None))
            .where(ticket_jobs.c.next_attempt_at <= now)
            .values(attempts=ticket_jobs.c.attempts + 1, next_attempt_at=now + lease)
            .returning(*ticket_jobs.c)
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(claim)).all()
        return sorted((_job(row) for row in rows), key=lambda job: job.id)

    async def finish_job(self, job_id: int, *, error: str | None = None) -> None:
        """Mark a job done (``error``: it was given up on, and why)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                ticket_jobs.update()
                .where(ticket_jobs.c.id == job_id)
                .values(done_at=self._clock(), last_error=error)
            )

    async def retry_job(self, job_id: int, *, after: timedelta, error: str) -> None:
        """Try a job again ``after`` from now, noting why it failed."""
        async with self._engine.begin() as conn:
            await conn.execute(
                ticket_jobs.update()
                .where(ticket_jobs.c.id == job_id)
                .where(ticket_jobs.c.done_at.is_(None))
                .values(next_attempt_at=self._clock() + after, last_error=error[:2000])
            )

    async def release_jobs(self, job_ids: Sequence[int]) -> None:
        """Hand claimed jobs back at once (a worker stopping), without counting the attempt."""
        if not job_ids:
            return
        async with self._engine.begin() as conn:
            await conn.execute(
                ticket_jobs.update()
                .where(ticket_jobs.c.id.in_(list(job_ids)))
                .where(ticket_jobs.c.done_at.is_(None))
                .values(next_attempt_at=self._clock(), attempts=ticket_jobs.c.attempts - 1)
            )

    async def ticket_jobs(
        self, ticket_id: str | None = None, *, pending: bool = False
    ) -> list[TicketJob]:
        """Queued jobs, oldest first: of one ticket, or all; only those not done if ``pending``."""
        query = select(ticket_jobs).order_by(ticket_jobs.c.id)
        if ticket_id is not None:
            query = query.where(ticket_jobs.c.ticket_number == ticket_number(ticket_id))
        if pending:
            query = query.where(ticket_jobs.c.done_at.is_(None))
        async with self._engine.begin() as conn:
            rows = (await conn.execute(query)).all()
        return [_job(row) for row in rows]

    async def forget_jobs_done_before(self, cutoff: datetime) -> int:
        """Delete jobs done before ``cutoff`` (timezone-aware); return how many."""
        if cutoff.tzinfo is None:
            raise ValueError("cutoff must be timezone-aware")
        async with self._engine.begin() as conn:
            result = await conn.execute(ticket_jobs.delete().where(ticket_jobs.c.done_at < cutoff))
        return int(result.rowcount)

    # -- reminders ----------------------------------------------------------------------------

    async def tickets_to_remind(
        self, every: timedelta, *, limit: int = 100
    ) -> list[tuple[TicketRecord, datetime | None]]:
        """Open tickets (nobody took them) not announced for ``every`` since they were opened or
        last reminded of, with that last reminder (None: never), oldest first."""
        cutoff = self._clock() - every
        since = func.coalesce(ticket_reminders.c.last_reminded_at, tickets.c.created_at)
        query = (
            select(tickets, ticket_reminders.c.last_reminded_at)
            .select_from(tickets.outerjoin(ticket_reminders))
            .where(tickets.c.status == "open")
            .where(since <= cutoff)
            .order_by(tickets.c.number)
            .limit(limit)
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(query)).all()
        return [(_ticket(row), row.last_reminded_at) for row in rows]

    async def mark_reminded(
        self, ticket_id: str, last: datetime | None, jobs: Sequence[NewJob] = ()
    ) -> bool:
        """Record a reminder if the last one is still ``last`` (None: there was none), and queue
        ``jobs`` with it; False if another process reminded first (nothing is queued then)."""
        number = _known_number(ticket_id)
        now = self._clock()
        if last is None:
            claim: Executable = (
                self._insert(ticket_reminders)
                .values(ticket_number=number, last_reminded_at=now)
                .on_conflict_do_nothing(index_elements=[ticket_reminders.c.ticket_number])
            )
        else:
            claim = (
                ticket_reminders.update()
                .where(ticket_reminders.c.ticket_number == number)
                .where(ticket_reminders.c.last_reminded_at == last)
                .values(last_reminded_at=now)
            )
        async with self._engine.begin() as conn:
            result = await conn.execute(claim)
            if result.rowcount != 1:
                return False
            await self._insert_jobs(conn, number, jobs, now)
        return True

    async def restart_reminders(self, ticket_id: str) -> None:
        """Count the reminder interval from now (a ticket open again)."""
        number = _known_number(ticket_id)
        now = self._clock()
        upsert = (
            self._insert(ticket_reminders)
            .values(ticket_number=number, last_reminded_at=now)
            .on_conflict_do_update(
                index_elements=[ticket_reminders.c.ticket_number], set_={"last_reminded_at": now}
            )
        )
        async with self._engine.begin() as conn:
            await conn.execute(upsert)

    def now(self) -> datetime:
        """The store's clock: aware UTC now (a test's clock under test)."""
        return self._clock()

    # -- helpers ------------------------------------------------------------------------------

    def _insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        """An INSERT that knows ON CONFLICT in this store's dialect."""
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def _change(
        self,
        conn: AsyncConnection,
        ticket: TicketRecord,
        *,
        kind: str,
        actor: str,
        at: datetime,
        detail: dict[str, Any],
    ) -> TicketChange:
        platforms = (await conn.execute(select(admin_channels.c.platform))).scalars().all()
        cards = (
            (
                await conn.execute(
                    select(ticket_cards.c.platform).where(
                        ticket_cards.c.ticket_number == ticket.number
                    )
                )
            )
            .scalars()
            .all()
        )
        return TicketChange(
            ticket=ticket,
            kind=kind,
            actor=actor,
            at=at,
            detail=detail,
            requesters=await self._requesters(conn, ticket.number),
            admin_platforms=frozenset(platforms),
            card_platforms=frozenset(cards),
        )

    async def _insert_jobs(
        self, conn: AsyncConnection, number: int, jobs: Sequence[NewJob], now: datetime
    ) -> None:
        """Insert jobs, each numbered after the last of its ticket and target. The caller holds
        the ticket (a row lock, or SQLite's write lock), so numbers and commits stay in order."""
        for job in jobs:
            if job.target not in JOB_TARGETS or job.kind not in JOB_KINDS:
                raise ValueError(f"no such job: {job.kind} for {job.target}")
            next_seq = (
                select(func.coalesce(func.max(ticket_jobs.c.seq), 0) + 1)
                .where(ticket_jobs.c.ticket_number == number)
                .where(ticket_jobs.c.target == job.target)
                .scalar_subquery()
            )
            await conn.execute(
                ticket_jobs.insert().values(
                    ticket_number=number,
                    target=job.target,
                    kind=job.kind,
                    seq=next_seq,
                    payload=job.payload,
                    created_at=now,
                    attempts=0,
                    next_attempt_at=now,
                    done_at=None,
                    last_error=None,
                )
            )

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


def _job(row: Row[Any]) -> TicketJob:
    return TicketJob(
        id=int(row.id),
        ticket_id=ticket_id(row.ticket_number),
        target=row.target,
        kind=row.kind,
        seq=int(row.seq),
        payload=dict(row.payload),
        created_at=row.created_at,
        attempts=int(row.attempts),
        next_attempt_at=row.next_attempt_at,
        done_at=row.done_at,
        last_error=row.last_error,
    )


def _known_number(ticket_id: str) -> int:
    number = ticket_number(ticket_id)
    if number is None:
        raise UnknownTicket(f"{ticket_id!r} is not a ticket id")
    return number


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
    "JOB_KINDS",
    "JOB_TARGETS",
    "KEEP",
    "AdminChannel",
    "JobsFor",
    "Keep",
    "NewJob",
    "Requester",
    "Saved",
    "StaleState",
    "Store",
    "StoreError",
    "TicketChange",
    "TicketEvent",
    "TicketJob",
    "TicketRecord",
    "UnknownTicket",
    "metadata",
    "ticket_id",
    "ticket_number",
]
