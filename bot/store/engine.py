"""The engine under every aggregate: creating it (SQLite tuning, PostgreSQL pool and schema) and
its tables, checking it answers, the store's errors, and the base each aggregate is built on.

Its own room because it is the one module that tells the two databases apart: the aggregates
write portable SQLAlchemy Core and ask ``Aggregate._insert`` for an INSERT that knows
ON CONFLICT in the store's dialect. Its engines hide a statement's parameters
(``hide_parameters``): a failed save's error, and so its log line, never carries the message
text or the e-mail addresses it was saving.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Table, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.config import hide_url
from bot.store.schema import metadata

DEFAULT_URL: Final = "sqlite+aiosqlite:///./ndrbot.db"

_SQLITE_BUSY_TIMEOUT_MS: Final = 5000
_PG_CONNECT_TIMEOUT_S: Final = 10
_PG_CREATE_LOCK: Final = 0x4E4452  # advisory lock id ("NDR") held while creating tables


class StoreError(Exception):
    """Anything the store cannot do: unreachable database, bad arguments, broken invariants."""


class StaleState(StoreError):
    """A save lost a race: someone else saved a newer version first. Reload and try again."""


class UnknownTicket(StoreError):
    """No ticket has that id."""


def utcnow() -> datetime:
    """Aware UTC now: the store's clock unless a test gives it another."""
    return datetime.now(UTC)


class Aggregate:
    """What every aggregate shares: the store's engine, its dialect and its clock.

    Every method of an aggregate is its own short transaction (``self._engine.begin()``),
    guarded by a constraint or a version column, never a read-then-write.
    """

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime]) -> None:
        """Work on ``engine`` as it is; ``clock`` returns aware UTC "now"."""
        self._engine = engine
        self._clock = clock
        self._dialect = engine.dialect.name

    def _insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        """An INSERT that knows ON CONFLICT in this store's dialect."""
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)


async def open_engine(url: str, schema: str | None) -> AsyncEngine:
    """Create the engine and any missing tables (idempotent); StoreError saying why not.

    SQLite connections get WAL, foreign keys and a busy timeout. ``schema`` (PostgreSQL only)
    puts the tables in that schema, created if missing.
    """
    engine = _create_engine(url, schema)
    try:
        await _create_tables(engine, schema)
    except (SQLAlchemyError, OSError, TimeoutError) as error:
        await engine.dispose()
        raise StoreError(
            f"cannot open the store at {_safe_url(url)}: {_readable(error)}"
        ) from error
    except BaseException:
        await engine.dispose()
        raise
    return engine


async def ping_engine(engine: AsyncEngine) -> None:
    """Check the database answers; raise StoreError saying why not."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError) as error:
        raise StoreError(
            f"the store at {_safe_url(engine.url)} is unreachable: {_readable(error)}"
        ) from error


async def _create_tables(engine: AsyncEngine, schema: str | None) -> None:
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            # Processes starting together take turns; DDL is transactional in PostgreSQL.
            await conn.execute(select(func.pg_advisory_xact_lock(_PG_CREATE_LOCK)))
            if schema is not None:
                quoted = engine.dialect.identifier_preparer.quote_identifier(schema)
                await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
            await conn.run_sync(metadata.create_all)
        return
    for attempt in range(2):  # another process may create the same table in between
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
            return
        except SQLAlchemyError:
            if attempt == 1:
                raise


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


def _safe_url(url: str | URL) -> str:
    """The URL with its password and query values hidden (``hide_url``, the settings' own
    rule), fit for messages and logs."""
    try:
        return hide_url(make_url(url).render_as_string(hide_password=False))
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
        engine = create_async_engine(parsed, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _tune_sqlite_connection)
        return engine
    if backend == "postgresql":
        engine = create_async_engine(
            parsed,
            hide_parameters=True,
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
    "Aggregate",
    "StaleState",
    "StoreError",
    "UnknownTicket",
    "open_engine",
    "ping_engine",
    "utcnow",
]
