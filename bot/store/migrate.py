"""The schema's version: Alembic's revisions (``bot/store/migrations/``), run from code.

Its own room because it decides what a database may be when the bot starts: empty (created at
the latest revision, so a fresh clone runs with no extra command), at the latest revision
(opened), made before migrations (recognised by its tables and stamped), behind (refused, naming
``python -m bot db upgrade``) or ahead (refused: a newer bot upgraded it). Every check and change
runs in one transaction that holds a lock (PostgreSQL: an advisory lock; SQLite: ``BEGIN
IMMEDIATE``), so processes starting together on a new version take turns and the schema is
made once; an upgrade that fails half-way leaves nothing changed.
"""

from __future__ import annotations

import enum
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, event, func, inspect, select, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from bot.store import schema
from bot.store.engine import (
    DEFAULT_TIMEOUT_SECONDS,
    StoreError,
    _readable,
    _safe_url,
    create_engine,
)
from bot.store.migrations import first_release

log = logging.getLogger(__name__)

UPGRADE_COMMAND: Final = "python -m bot db upgrade"
FIRST_RELEASE: Final = "0001"  # the revision a database made before migrations is stamped at
SCRIPT_LOCATION: Path = Path(__file__).with_name("migrations")  # a test may point elsewhere

_PG_MIGRATION_LOCK: Final = 0x4E4452  # advisory lock id ("NDR"): the one create_all took before
_SQLITE_LOCK_WAIT_MS: Final = 30_000  # a second process waits this long for the first's upgrade
_SQLITE_ATTEMPTS: Final = 3
# Schema work may wait for another process's upgrade and rewrite whole tables: it gets longer
# than DATABASE_TIMEOUT_SECONDS, which bounds the store's own statements.
_MIGRATION_TIMEOUT_S: Final = 120.0

T = TypeVar("T")


class SchemaMismatch(StoreError):
    """The database's schema is not the one this version of the bot needs; says what to do."""


class State(enum.StrEnum):
    """Where a database stands against this code's revisions."""

    EMPTY = "empty"  # none of the store's tables: created at the latest revision on start
    LATEST = "latest"
    BEHIND = "behind"  # an older revision: python -m bot db upgrade
    AHEAD = "ahead"  # a revision this code does not know: a newer bot upgraded it
    UNVERSIONED = "unversioned"  # tables but no alembic_version: made before migrations


@dataclass(frozen=True)
class SchemaStatus:
    """What ``db current`` prints and what the start-up check decides on."""

    state: State
    current: str | None  # the revision stamped (None: empty, or made before migrations)
    head: str  # the latest revision this code knows
    recognised: str | None = None  # UNVERSIONED: the revision its tables match, if any
    missing: tuple[str, ...] = ()  # UNVERSIONED: tables it lacks (create_all made them at start)
    differences: tuple[str, ...] = ()  # UNVERSIONED and not recognised: what differs

    def describe(self) -> str:
        """One line: the revision and whether it is the latest, and what to do if not."""
        if self.state is State.LATEST:
            return f"{self.current} (the latest)"
        if self.state is State.BEHIND:
            return f"{self.current} (behind: the latest is {self.head}; run {UPGRADE_COMMAND})"
        if self.state is State.AHEAD:
            return f"{self.current} (unknown to this version of the bot: its latest is {self.head})"
        if self.state is State.EMPTY:
            return (
                f"none: the database is empty (the latest is {self.head}; the server creates "
                f"it at start, or run {UPGRADE_COMMAND})"
            )
        if self.recognised is None:
            return f"none: tables this bot does not recognise ({'; '.join(self.differences)})"
        return (
            f"none: made before migrations, its tables match {self.recognised} (the latest is "
            f"{self.head}; {UPGRADE_COMMAND} stamps it and upgrades it)"
        )

    def refusal(self) -> str:
        """Why the server will not start on this database, and what to do."""
        if self.state is State.AHEAD:
            return (
                f"the database's schema is at revision {self.current}, which this version of "
                f"the bot does not know (its latest is {self.head}): a newer version upgraded "
                "it. Run that version, or restore the backup taken before the upgrade"
            )
        if self.state is State.UNVERSIONED and self.recognised is None:
            return (
                "the database has tables this bot did not make as they are "
                f"({'; '.join(self.differences)}): it cannot be upgraded automatically"
            )
        at = (
            f"was made before migrations (its tables match revision {self.recognised})"
            if self.state is State.UNVERSIONED
            else f"is at revision {self.current}"
        )
        return (
            f"the database's schema {at}, and this version of the bot needs {self.head}: back "
            f"up the database, run `{UPGRADE_COMMAND}`, then start again"
        )


@dataclass(frozen=True)
class Upgraded:
    """What ``db upgrade`` found and left: the status before, the revision after."""

    before: SchemaStatus
    after: str


def alembic_config() -> Config:
    """Alembic's configuration, in code: the script directory inside the package, no ini file."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return config


def context_options(connection: Connection) -> dict[str, Any]:
    """The migration context's options, the same for upgrades and schema comparisons. SQLite
    alters a table by copying it (Alembic's batch mode); types are compared."""
    return {"render_as_batch": connection.dialect.name == "sqlite", "compare_type": True}


async def open_engine(
    url: str, schema: str | None, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> AsyncEngine:
    """The store's engine (every wait bounded by ``timeout``) on a database whose schema is
    this code's: an empty one is created at the latest revision, any other that is not at it is
    refused (``SchemaMismatch``). The check runs on an engine of its own, with the longer
    timeout schema work needs."""
    engine = create_engine(url, schema, timeout)
    try:
        await _on_engine(url, schema, _prepare)
    except SchemaMismatch:
        await engine.dispose()
        raise
    except (SQLAlchemyError, OSError, TimeoutError) as error:
        await engine.dispose()
        raise StoreError(
            f"cannot open the store at {_safe_url(url)}: {_readable(error)}"
        ) from error
    except BaseException:
        await engine.dispose()
        raise
    return engine


async def upgrade(url: str, schema: str | None = None) -> Upgraded:
    """Bring the database to the latest revision (``python -m bot db upgrade``); one made
    before migrations is recognised and stamped first. All of it or nothing."""
    return await _on_engine(url, schema, _upgrade)


async def status(url: str, schema: str | None = None) -> SchemaStatus:
    """Where the database stands (``python -m bot db current``); changes nothing."""
    return await _on_engine(url, schema, _status)


async def new_revision(message: str) -> Path:
    """Write the next revision (``python -m bot db revision``): ``versions/NNNN_message.py``
    with the operations Alembic finds between the head (built in a scratch SQLite file) and
    ``schema.py``, in batch mode. A developer reads it over before committing it."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'head.db'}"
        await upgrade(url)

        def write(conn: Connection) -> Path:
            config = alembic_config()
            config.attributes["connection"] = conn
            made = command.revision(config, message, autogenerate=True, rev_id=_next_id())
            if made is None or isinstance(made, list):
                raise StoreError("Alembic wrote no revision")
            return Path(made.path)

        return await _on_engine(url, None, write)


def _next_id() -> str:
    numbers = [
        int(r.revision) for r in _script(SCRIPT_LOCATION).walk_revisions() if r.revision.isdigit()
    ]
    return f"{max(numbers, default=0) + 1:04d}"


async def _on_engine(url: str, schema: str | None, work: Callable[[Connection], T]) -> T:
    engine = create_engine(url, schema, _MIGRATION_TIMEOUT_S)
    try:
        return await _locked(engine, schema, work)
    except (SQLAlchemyError, OSError, TimeoutError) as error:
        raise StoreError(
            f"cannot open the store at {_safe_url(url)}: {_readable(error)}"
        ) from error
    finally:
        await engine.dispose()


async def _locked(engine: AsyncEngine, schema: str | None, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in one transaction that no other process's migration runs beside."""
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(select(func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
            if schema is not None:
                quoted = engine.dialect.identifier_preparer.quote_identifier(schema)
                await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
                # Alembic and reflection see the schema as the default one.
                await conn.execute(text(f"SET LOCAL search_path TO {quoted}"))
            return await conn.run_sync(work)
    if engine.url.database in (None, "", ":memory:"):  # one connection, no other process
        async with engine.begin() as conn:
            return await conn.run_sync(work)
    return await _sqlite_locked(engine, work)


async def _sqlite_locked(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    """``work`` in a ``BEGIN IMMEDIATE`` transaction of a connection of its own (the store's
    engine keeps the driver's transactions and foreign keys on)."""
    locking = create_async_engine(engine.url, poolclass=NullPool, hide_parameters=True)
    event.listen(locking.sync_engine, "connect", _tune_migration_connection)
    event.listen(locking.sync_engine, "begin", _begin_immediate)
    try:
        attempts = 1
        while True:
            try:
                async with locking.begin() as conn:
                    return await conn.run_sync(work)
            except OperationalError as error:
                # SQLite answers "locked" without waiting when two connections switch a new
                # file to WAL at once; the work reads the state again, so trying again is safe.
                if attempts == _SQLITE_ATTEMPTS or "locked" not in str(error.orig):
                    raise
                attempts += 1
    finally:
        await locking.dispose()


def _tune_migration_connection(dbapi_connection: Any, connection_record: Any) -> None:
    # The driver would BEGIN only before a DML statement; _begin_immediate takes the lock first.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_LOCK_WAIT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        # Batch mode copies a table and drops the old one: checked after (_check_foreign_keys).
        cursor.execute("PRAGMA foreign_keys=OFF")
    finally:
        cursor.close()


def _begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _prepare(conn: Connection) -> None:
    """The start-up check: create an empty database, stamp a recognised one at the latest
    revision, refuse anything else that is not at it."""
    found = _status(conn)
    if found.state is State.LATEST:
        return
    if found.state is State.EMPTY:
        # Made from schema.py and stamped, as Alembic advises for a new database: the same
        # tables as running every revision (tests/test_migrations.py checks it), in a tenth
        # of the time, which every test's fresh database pays.
        schema.metadata.create_all(conn)
        MigrationContext.configure(conn).stamp(_script(SCRIPT_LOCATION), "head")
        log.info("database schema created", extra={"revision": found.head})
        return
    if found.state is State.UNVERSIONED and found.recognised == found.head:
        _adopt(conn, found)
        return
    raise SchemaMismatch(found.refusal())


def _upgrade(conn: Connection) -> Upgraded:
    found = _status(conn)
    if found.state is State.AHEAD or (
        found.state is State.UNVERSIONED and found.recognised is None
    ):
        raise SchemaMismatch(found.refusal())
    if found.state is State.UNVERSIONED:
        _adopt(conn, found)
    if found.state is not State.LATEST:
        _run_upgrade(conn)
        log.info("database schema upgraded", extra={"from": found.current, "to": found.head})
    return Upgraded(found, found.head)


def _status(conn: Connection) -> SchemaStatus:
    script = _script(SCRIPT_LOCATION)
    head = script.get_current_head()
    if head is None:
        raise StoreError(f"no revisions in {SCRIPT_LOCATION}")
    stamped = MigrationContext.configure(conn).get_current_heads()
    if stamped:
        current = ",".join(stamped)
        if current == head:
            return SchemaStatus(State.LATEST, current, head)
        known = len(stamped) == 1 and _known(script, current)
        return SchemaStatus(State.BEHIND if known else State.AHEAD, current, head)
    if not set(inspect(conn).get_table_names()) & first_release.TABLES:
        return SchemaStatus(State.EMPTY, None, head)
    return _recognise(conn, head)


def _recognise(conn: Connection, head: str) -> SchemaStatus:
    """A database made before migrations, by ``create_all`` at 93423b7 or later (the schema did
    not change until migrations came): its tables, columns, types, indexes and keys are compared
    with the first release's (``first_release``, Alembic's ``compare_metadata``), tables of other
    applications aside. Tables it lacks only are fine: the old start created them."""
    context = MigrationContext.configure(
        conn, opts={**context_options(conn), "include_name": _first_release_tables}
    )
    differences = compare_metadata(context, first_release.metadata)
    missing = tuple(sorted(d[1].name for d in differences if _kind(d) == "add_table"))
    others = [d for d in differences if not _belongs_to_missing(d, missing)]
    if others:
        shown = tuple(_describe(d) for d in others[:5])
        return SchemaStatus(State.UNVERSIONED, None, head, differences=shown)
    return SchemaStatus(State.UNVERSIONED, None, head, recognised=FIRST_RELEASE, missing=missing)


def _adopt(conn: Connection, found: SchemaStatus) -> None:
    """Create the tables a database made before migrations lacks, then stamp its revision."""
    revision = found.recognised or FIRST_RELEASE
    if found.missing:
        tables = [first_release.metadata.tables[name] for name in found.missing]
        first_release.metadata.create_all(conn, tables=tables, checkfirst=True)
    MigrationContext.configure(conn).stamp(_script(SCRIPT_LOCATION), revision)
    log.info(
        "database made before migrations recognised and stamped",
        extra={"revision": revision, "created": list(found.missing)},
    )


def _run_upgrade(conn: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
    if conn.dialect.name == "sqlite":
        _check_foreign_keys(conn)


def _check_foreign_keys(conn: Connection) -> None:
    """SQLite migrates with foreign keys off (a batch copy drops the old table): check them
    before the commit, so a revision that broke one changes nothing."""
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise StoreError(
            f"the upgrade would leave {len(broken)} rows with a broken foreign key (first in "
            f"table {broken[0][0]}): nothing was changed"
        )


@cache
def _script(location: Path) -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(location))
    return ScriptDirectory.from_config(config)


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def _first_release_tables(name: str | None, type_: str, parent_names: Any) -> bool:
    return type_ != "table" or name in first_release.TABLES


def _kind(difference: Any) -> str:
    first = difference[0] if isinstance(difference, list) else difference
    return str(first[0])


def _belongs_to_missing(difference: Any, missing: tuple[str, ...]) -> bool:
    kind = _kind(difference)
    if kind == "add_table":
        return True
    table = getattr(difference[1], "table", None) if isinstance(difference, tuple) else None
    return kind in ("add_index", "add_fk", "add_constraint") and getattr(table, "name", None) in (
        missing
    )


_SAID: Final = {  # a difference as the database has it (Alembic says what it would do)
    "add_column": "no column {}",
    "remove_column": "an extra column {}",
    "add_index": "no index {}",
    "remove_index": "an extra index {}",
    "add_fk": "no foreign key on {}",
    "remove_fk": "an extra foreign key on {}",
    "add_constraint": "no constraint {}",
    "remove_constraint": "an extra constraint {}",
    "modify_type": "another type for {}",
    "modify_nullable": "another nullability for {}",
    "modify_default": "another default for {}",
}


def _describe(difference: Any) -> str:
    """One difference in the database's terms: ``no column tickets.note``."""
    first = difference[0] if isinstance(difference, list) else difference
    kind = str(first[0])
    if kind in ("add_column", "remove_column"):
        name = f"{first[2]}.{first[3].name}"
    elif kind.startswith("modify_"):
        name = f"{first[2]}.{first[3]}"
    else:
        item = first[1]
        name = str(getattr(item, "name", None) or getattr(getattr(item, "table", None), "name", ""))
    return _SAID.get(kind, kind + " {}").format(name)


__all__ = [
    "FIRST_RELEASE",
    "UPGRADE_COMMAND",
    "SchemaMismatch",
    "SchemaStatus",
    "State",
    "Upgraded",
    "alembic_config",
    "context_options",
    "new_revision",
    "open_engine",
    "status",
    "upgrade",
]
