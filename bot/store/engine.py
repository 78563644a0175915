"""The engine under every aggregate: creating it (SQLite tuning, PostgreSQL pool and schema),
checking it answers, the store's errors, and the base each aggregate is built on. Its tables are
``bot.store.migrate``'s business (Alembic's revisions).

Its own room because it is the one module that tells the two databases apart: the aggregates
write portable SQLAlchemy Core and ask ``Aggregate._insert`` for an INSERT that knows
ON CONFLICT in the store's dialect. Its engines hide a statement's parameters
(``hide_parameters``): a failed save's error, and so its log line, never carries the message
text or the e-mail addresses it was saving.

The transactions a turn runs go through ``Transactions``: each is a plain function over a sync
connection, handed whole to where the database is (on a SQLite file, one of a few threads of its
own with a sync engine; else one greenlet of the async engine), not a hand-off per statement.

Every wait on the database is bounded by one timeout (``DATABASE_TIMEOUT_SECONDS``): a
connection taken from the pool (or SQLite's threads), a connect, a statement (asyncpg's command
timeout and the server's ``statement_timeout``), a lock SQLite waits for (its busy timeout). A
database that stalls or is gone then fails a turn within seconds, and ``unavailable`` tells such
a failure from a bug, so the channels can say "try again in a moment" rather than hang.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from sqlalchemy import ColumnElement, Table, event, select, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.config import hide_url

DEFAULT_URL: Final = "sqlite+aiosqlite:///./ndrbot.db"

DEFAULT_TIMEOUT_SECONDS: Final = 5.0
"""The longest the store waits for the database (a connection, a statement, a lock)."""


class StoreError(Exception):
    """Anything the store cannot do: unreachable database, bad arguments, broken invariants."""


class StaleState(StoreError):
    """A save lost a race: someone else saved a newer version first. Reload and try again."""


class UnknownTicket(StoreError):
    """No ticket has that id."""


class StoreUnavailable(StoreError):
    """The database did not answer in time, or not at all: try again in a moment."""


_GONE_KINDS: Final = frozenset(
    {
        # asyncpg: the server's statement_timeout, a connection lost or refused, a server going
        "QueryCanceledError",
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "CannotConnectNowError",
        "TooManyConnectionsError",
        "AdminShutdownError",
        "CrashShutdownError",
    }
)
_SQLITE_BUSY: Final = ("database is locked", "database table is locked", "disk i/o error")


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) says the database is stalled or gone, rather than
    a bug: a pool or statement timeout, a refused or broken connection, SQLite's lock. A bad
    statement (no such table, a constraint) is not: that is a bug to log with its traceback."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, StoreUnavailable | PoolTimeout | InterfaceError):
            return True
        if isinstance(cause, DBAPIError) and cause.connection_invalidated:
            return True
        if isinstance(cause, OSError | TimeoutError) and _raised_in_the_driver(cause):
            return True  # a refused connect, asyncpg's command timeout (asyncio's TimeoutError)
        if type(cause).__name__ in _GONE_KINDS:
            return True
        if isinstance(cause, OperationalError) and str(cause.orig).lower().startswith(_SQLITE_BUSY):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


_DRIVERS: Final = ("sqlalchemy", "asyncpg", "aiosqlite", "sqlite3")


def _raised_in_the_driver(error: BaseException) -> bool:
    """Whether ``error`` came through the database's code: asyncpg raises a refused connect or
    its own timeout as they are, and an aiohttp download's OSError must not pass for one."""
    trace = error.__traceback__
    while trace is not None:
        module = str(trace.tb_frame.f_globals.get("__name__", ""))
        if module.split(".", 1)[0] in _DRIVERS:
            return True
        trace = trace.tb_next
    return False


T = TypeVar("T")


class Transactions:
    """One transaction as one hand-off: ``work`` is a plain function over a sync ``Connection``,
    run whole where the database is (the hot statements of a turn: its read, its conditional
    write, a seen event id, the outbox's look for waiting replies).

    On a SQLite file it runs on one of a few threads of its own with a sync engine on the same
    file, tuned the same way: one executor call per transaction, where aiosqlite hands every
    connect, execute, fetch and commit to its thread and back. A few, not one: a write waiting
    for SQLite's lock (its busy handler sleeps) holds up only its own thread, as it held up
    only its own connection before. Elsewhere (PostgreSQL; SQLite in memory, which a second
    engine would not see) it runs on the async engine in one greenlet (``run_sync``). Its waits
    are the engine's: a transaction queued behind others for longer than ``timeout`` fails as a
    pool timeout would, and SQLite's busy timeout bounds a lock.
    """

    def __init__(self, engine: AsyncEngine, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        """Work on ``engine`` (and, for a SQLite file, a sync twin of it) within ``timeout``."""
        self._engine = engine
        self._threads = _SQLiteThreads.on(engine.url, timeout)

    async def read(self, work: Callable[[Connection], T]) -> T:
        """``work``'s result, in a transaction rolled back at its end (nothing to commit)."""
        if self._threads is not None:
            return await self._threads.run(work, commit=False)
        async with self._engine.connect() as conn:
            return await conn.run_sync(work)

    async def write(self, work: Callable[[Connection], T]) -> T:
        """``work``'s result, in a transaction committed at its end (rolled back if it raises)."""
        if self._threads is not None:
            return await self._threads.run(work, commit=True)
        async with self._engine.begin() as conn:
            return await conn.run_sync(work)

    async def close(self) -> None:
        """Close the SQLite threads' connections and let the threads end."""
        if self._threads is not None:
            await self._threads.close()


_SQLITE_THREADS: Final = 4
"""Threads (and connections) for a SQLite file's transactions run whole: a turn needs one."""


class _SQLiteThreads:
    """A sync engine on a SQLite file and the few threads it is used on, each with a connection
    of its own, kept from one transaction to the next (taking one from the pool and giving it
    back costs more than a short read)."""

    def __init__(self, engine: Engine, timeout: float) -> None:
        self._engine = engine
        self._timeout = timeout
        self._executor: ThreadPoolExecutor | None = None  # started by the first transaction
        self._local = threading.local()
        self._connections: list[Connection] = []  # every thread's, to close them all

    @classmethod
    def on(cls, url: URL, timeout: float) -> _SQLiteThreads | None:
        """One for the SQLite file at ``url``, its engine tuned as ``create_engine`` tunes the
        async one; None for any other database (and for SQLite in memory, which a second
        engine would not see)."""
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        if url.query.get("mode") == "memory":
            return None
        engine = create_sync_engine(
            url.set(drivername="sqlite+pysqlite"),
            hide_parameters=True,
            connect_args={"timeout": timeout},
            pool_size=_SQLITE_THREADS,
            max_overflow=0,
            pool_timeout=timeout,
        )
        event.listen(engine, "connect", _sqlite_tuning(timeout))
        return cls(engine, timeout)

    async def run(self, work: Callable[[Connection], T], *, commit: bool) -> T:
        """``work`` in one transaction on one of the threads, committed if ``commit``."""
        deadline = time.monotonic() + self._timeout

        def transaction() -> T:
            if time.monotonic() > deadline:  # waited for a thread as long as for a pool
                raise PoolTimeout(f"the database's threads were busy for {self._timeout:g} s")
            conn = self._connection()
            with conn.begin() as begun:  # rolled back if ``work`` raises
                result = work(conn)
                if not commit:
                    begun.rollback()
                return result

        if self._executor is None:
            self._executor = ThreadPoolExecutor(_SQLITE_THREADS, thread_name_prefix="ndrbot-sqlite")
        # A call not yet started when its caller is cancelled is cancelled with it; one started
        # runs to its end (bounded by the busy timeout), as a statement in aiosqlite's would.
        return await asyncio.get_running_loop().run_in_executor(self._executor, transaction)

    def _connection(self) -> Connection:
        """This thread's connection; a new one when there is none yet or the last was lost."""
        conn: Connection | None = getattr(self._local, "connection", None)
        if conn is not None and not conn.invalidated:
            return conn
        if conn is not None:
            conn.close()
            self._connections.remove(conn)
        conn = self._local.connection = self._engine.connect()
        self._connections.append(conn)
        return conn

    async def close(self) -> None:
        """Close the connections (once the transactions started are done), then let the
        threads end; a transaction run after this starts them again, as the async engine
        reconnects after ``dispose``."""
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def finish() -> None:
            executor.shutdown(wait=True)  # its threads end: the next ones open their own
            connections, self._connections = self._connections, []
            for conn in connections:
                conn.close()
            self._engine.dispose()

        await asyncio.to_thread(finish)  # waits for a commit: not on the event loop


def utcnow() -> datetime:
    """Aware UTC now: the store's clock unless a test gives it another."""
    return datetime.now(UTC)


class Aggregate:
    """What every aggregate shares: the store's engine, its dialect and its clock.

    Every method of an aggregate is its own short transaction (``self._engine.begin()``; a
    read may use ``connect()``, rolled back on close, one round trip fewer than a commit),
    guarded by a constraint or a version column, never a read-then-write. The few a turn runs
    are written as plain functions handed whole to ``self._transactions``.
    """

    def __init__(
        self, engine: AsyncEngine, clock: Callable[[], datetime], transactions: Transactions
    ) -> None:
        """Work on ``engine`` as it is, and through the store's one ``transactions``; ``clock``
        returns aware UTC "now"."""
        self._engine = engine
        self._clock = clock
        self._transactions = transactions
        self._dialect = engine.dialect.name

    def _insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        """An INSERT that knows ON CONFLICT in this store's dialect."""
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def _delete_where(
        self, table: Table, where: ColumnElement[bool], limit: int | None
    ) -> int:
        """Delete the rows of ``table`` that match, at most ``limit`` of them (by primary key:
        a batch keeps each transaction, and the locks it holds, short); return how many."""
        if limit is None:
            statement = table.delete().where(where)
        else:
            (key,) = table.primary_key.columns
            statement = table.delete().where(key.in_(select(key).where(where).limit(limit)))
        async with self._engine.begin() as conn:
            result = await conn.execute(statement)
        return int(result.rowcount)


async def ping_engine(engine: AsyncEngine) -> None:
    """Check the database answers; raise StoreUnavailable saying why not. On SQLite it reads
    the schema, which needs the file (``SELECT 1`` would not even open it)."""
    probe = "SELECT count(*) FROM sqlite_master" if engine.dialect.name == "sqlite" else "SELECT 1"
    try:
        async with engine.connect() as conn:
            await conn.execute(text(probe))
    except (SQLAlchemyError, OSError, TimeoutError) as error:
        raise StoreUnavailable(
            f"the store at {_safe_url(engine.url)} is unreachable: {_readable(error)}"
        ) from error


def failure_reason(error: BaseException) -> str:
    """One line about a database failure, fit for a log line at WARNING: the driver's own
    words (or the error's kind), never the SQL nor its parameters."""
    return _readable(error)


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


def create_engine(
    url: str, schema: str | None, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> AsyncEngine:
    """The engine for ``url`` (no connection yet, no tables); StoreError for a URL it cannot use.

    SQLite connections get WAL, foreign keys and a busy timeout. ``schema`` (PostgreSQL only)
    puts the tables in that schema (``bot.store.migrate`` creates it). ``timeout`` bounds every
    wait (pool, connect, statement, lock).
    """
    if not timeout > 0:
        raise StoreError("the database timeout must be a positive number of seconds")
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
        pooled = {"pool_timeout": timeout} if parsed.database not in (None, "", ":memory:") else {}
        engine = create_async_engine(
            parsed, hide_parameters=True, connect_args={"timeout": timeout}, **pooled
        )
        event.listen(engine.sync_engine, "connect", _sqlite_tuning(timeout))
        return engine
    if backend == "postgresql":
        engine = create_async_engine(
            parsed,
            hide_parameters=True,
            pool_size=5,
            max_overflow=10,
            pool_pre_ping=True,
            pool_recycle=1800,
            pool_timeout=timeout,
            connect_args={
                "timeout": timeout,  # to connect
                "command_timeout": timeout,  # asyncpg: each statement, from the client's side
                # and from the server's: a statement the client gave up on does not run on
                "server_settings": {"statement_timeout": str(max(1, round(timeout * 1000)))},
            },
        )
        if schema is not None:
            engine = engine.execution_options(schema_translate_map={None: schema})
        return engine
    raise StoreError(
        f"unsupported database {backend!r}: use sqlite+aiosqlite:// or postgresql+asyncpg://"
    )


def _sqlite_tuning(timeout: float) -> Callable[[Any, Any], None]:
    """What each new SQLite connection is set to: WAL, foreign keys, and a busy timeout."""
    busy_ms = max(1, round(timeout * 1000))

    def tune(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")  # first: WAL itself may wait
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    return tune


__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "DEFAULT_URL",
    "Aggregate",
    "StaleState",
    "StoreError",
    "StoreUnavailable",
    "Transactions",
    "UnknownTicket",
    "create_engine",
    "failure_reason",
    "ping_engine",
    "unavailable",
    "utcnow",
]
