"""The store's migrations (Alembic): the first release's database upgraded with its data, the
head equal to schema.py, the start-up check (empty: created; behind or ahead: refused), and
processes starting together. SQLite files, and PostgreSQL databases of their own when
TEST_POSTGRES_URL is set."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store import SchemaMismatch, Store, migrate
from bot.store.migrations import first_release
from bot.store.schema import metadata

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
SKIP_POSTGRES = "TEST_POSTGRES_URL is not set: PostgreSQL migration tests skipped"
HERE = Path(__file__).parent / "migrations"
BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES)),
]
ADD_A_REVISION = (
    "bot/store/schema.py differs from the schema the migrations build: add a revision in "
    "bot/store/migrations/versions/ (see ARCHITECTURE.md, 'a new table or column')"
)
WHEN = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of the test's own: a SQLite file, or a new PostgreSQL database (the
    CLI reads only DATABASE_URL, so a schema of its own would not do)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        return
    name = f"t_{uuid.uuid4().hex}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def bot(url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "DATABASE_URL": url,
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "NDRBOT_CACHE_DIR": os.environ.get("NDRBOT_CACHE_DIR", str(cwd / "cache")),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=cwd,  # no .env file of the repository is read
        timeout=120,
        check=False,
    )


async def execute(url: str, *statements: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def first_release_ddl(dialect: str) -> list[str]:
    """The CREATE statements 93423b7's create_all emitted (generated from that commit)."""
    lines = (HERE / f"first_release.{dialect}.sql").read_text(encoding="utf-8").splitlines()
    body = "\n".join(line for line in lines if not line.startswith("--"))
    return [statement.strip() for statement in body.split(";") if statement.strip()]


def dialect_of(url: str) -> str:
    return make_url(url).get_backend_name()


ROWS: dict[str, list[dict[str, Any]]] = {
    "conversations": [
        {
            "key": "msteams:19:alice",
            "state": {"step": "ask_role", "facts": {"status": "5.7.12"}, "lang": "en"},
            "version": 3,
            "updated_at": WHEN,
        }
    ],
    "profiles": [{"key": "msteams:29:alice", "profile": {"role": "sender"}, "updated_at": WHEN}],
    "conversation_refs": [
        {
            "key": "msteams:19:alice",
            "reference": {"conversation": {"id": "19:alice"}, "serviceUrl": "https://x/"},
            "updated_at": WHEN,
        }
    ],
    "seen_events": [{"event_id": "slack:Ev01", "seen_at": WHEN}],
    "tickets": [
        {
            "status": "assigned",
            "requester": {
                "platform": "msteams",
                "user_id": "29:alice",
                "name": "Alice",
                "conversation_key": "msteams:19:alice",
            },
            "conversation_key": "msteams:19:alice",
            "bounce": {"status": "5.7.12", "recipients": ["sales@fabrikam.com"]},
            "path": {"role": "sender", "recipient_type": "group"},
            "note": "Since Monday",
            "dedupe_key": "5.7.12:sales@fabrikam.com",
            "assignee": {"platform": "slack", "user_id": "U0ADA", "name": "Ada"},
            "created_at": WHEN,
            "updated_at": WHEN,
            "version": 2,
        }
    ],
    "ticket_requesters": [
        {
            "ticket_number": 1,
            "user_key": "msteams:29:alice",
            "requester": {
                "platform": "msteams",
                "user_id": "29:alice",
                "name": "Alice",
                "conversation_key": "msteams:19:alice",
            },
            "added_at": WHEN,
        }
    ],
    "ticket_events": [
        {
            "ticket_number": 1,
            "at": WHEN,
            "actor": "msteams:29:alice",
            "kind": "opened",
            "detail": {},
        },
        {
            "ticket_number": 1,
            "at": WHEN,
            "actor": "slack:U0ADA",
            "kind": "assigned",
            "detail": {"status": "assigned"},
        },
    ],
    "admin_channels": [
        {
            "platform": "slack",
            "channel": {"channel": "C0ADMINS"},
            "registered_by": "slack:U0ADA",
            "registered_at": WHEN,
        }
    ],
    "ticket_cards": [{"ticket_number": 1, "platform": "slack", "ref": {"ts": "1.2"}}],
    "ticket_jobs": [
        {
            "ticket_number": 1,
            "target": "slack",
            "kind": "update_card",
            "seq": 1,
            "payload": {"version": 2},
            "created_at": WHEN,
            "attempts": 0,
            "next_attempt_at": WHEN,
            "done_at": None,
            "last_error": None,
        }
    ],
    "ticket_reminders": [{"ticket_number": 1, "last_reminded_at": WHEN}],
}


async def build_first_release(url: str) -> None:
    """The database a first-release bot left: its create_all DDL, then rows in every table."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in first_release_ddl(dialect_of(url)):
                await conn.execute(text(statement))
            for table in first_release.metadata.sorted_tables:
                await conn.execute(insert(table), ROWS[table.name])
    finally:
        await engine.dispose()


async def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every first-release column of every table, in key order."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            found = {}
            for table in first_release.metadata.sorted_tables:
                rows = await conn.execute(select(table).order_by(*table.primary_key.columns))
                found[table.name] = [tuple(row) for row in rows]
            return found
    finally:
        await engine.dispose()


async def differences_from_schema_py(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts=migrate.context_options(sync)), metadata
                )
            )
    finally:
        await engine.dispose()


async def test_the_first_release_is_upgraded_with_its_data(
    database_url: str, tmp_path: Path
) -> None:
    await build_first_release(database_url)
    before = await dump(database_url)
    assert all(before[name] for name in ROWS)

    current = bot(database_url, "db", "current", cwd=tmp_path)
    assert current.returncode == 1, current.stderr
    assert "made before migrations, its tables match 0001" in current.stdout

    upgraded = bot(database_url, "db", "upgrade", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Recognised a database made before migrations as 0001" in upgraded.stdout

    assert await dump(database_url) == before
    assert await differences_from_schema_py(database_url) == [], ADD_A_REVISION
    current = bot(database_url, "db", "current", cwd=tmp_path)
    assert (current.returncode, current.stdout.strip()) == (0, f"{current_head()} (the latest)")

    async with await Store.open(database_url) as store:
        ticket = await store.tickets.get_ticket("NDR-1001")
        assert ticket is not None
        assert (ticket.status, ticket.note, ticket.version) == ("assigned", "Since Monday", 2)
        assert [e.kind for e in await store.tickets.ticket_events(ticket.id)] == [
            "opened",
            "assigned",
        ]
        assert [r.name for r in await store.tickets.ticket_requesters(ticket.id)] == ["Alice"]
        assert await store.channels.ticket_cards(ticket.id) == {"slack": {"ts": "1.2"}}
        assert [j.kind for j in await store.jobs.ticket_jobs(pending=True)] == ["update_card"]
        assert (await store.channels.admin_channels())["slack"].channel == {"channel": "C0ADMINS"}
        saved = await store.conversations.load_state("msteams:19:alice")
        assert (saved.version, saved.state["step"]) == (3, "ask_role")
        # New rows still get new numbers after the old ones.
        second, _ = await store.tickets.open_or_join_ticket(
            requester=ticket.requester,
            conversation_key="msteams:19:alice",
            bounce={},
            path={},
            note=None,
            dedupe_key=None,
        )
        assert second.id == "NDR-1002"


def current_head() -> str:
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert head is not None
    return head


HEAD = current_head()  # this code's latest revision
PROBE = f"{int(HEAD) + 1:04d}"  # the test's own revision after it (tests/migrations/probe_0002.py)


async def test_the_migrations_build_what_schema_py_says(database_url: str) -> None:
    """Every revision run on an empty database builds what schema.py says (Store.open makes a
    new database from schema.py and stamps it at the head: this is what makes that right)."""
    done = await migrate.upgrade(database_url)
    assert done.before.state is migrate.State.EMPTY
    assert await differences_from_schema_py(database_url) == [], ADD_A_REVISION


async def test_an_empty_database_is_created_at_the_latest_revision(
    database_url: str, tmp_path: Path
) -> None:
    async with await Store.open(database_url) as store:
        assert await store.tickets.list_tickets() == []
    assert (await migrate.status(database_url)).state is migrate.State.LATEST
    again = bot(database_url, "db", "upgrade", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout


async def test_a_database_of_a_newer_bot_is_refused_at_start(
    database_url: str, tmp_path: Path
) -> None:
    async with await Store.open(database_url):
        pass
    await execute(database_url, "UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(SchemaMismatch, match=rf"revision 0099, which this version .* is {HEAD}"):
        await Store.open(database_url)
    refused = bot(database_url, "tickets", "list", cwd=tmp_path)
    assert refused.returncode == 3
    assert "Refused to start" in refused.stderr
    assert "0099" in refused.stderr
    assert HEAD in refused.stderr
    assert "Traceback" not in refused.stderr
    with pytest.raises(SchemaMismatch, match="0099"):
        await migrate.upgrade(database_url)


def test_serve_refuses_a_database_of_a_newer_bot(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"

    async def stamp_ahead() -> None:
        async with await Store.open(url):
            pass
        await execute(url, "UPDATE alembic_version SET version_num = '0099'")

    asyncio.run(stamp_ahead())
    with socket.socket() as probe:  # a free port: the server listens before it opens the store
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    served = bot(url, "serve", "--port", str(port), cwd=tmp_path)
    assert served.returncode == 3, served.stderr
    assert "refused to start" in served.stderr
    assert "0099" in served.stderr
    assert "listening" not in served.stderr


@pytest.fixture
def with_a_second_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This code's revisions and one more (tests/migrations/probe_0002.py): an ALTER of a
    table others refer to, which SQLite does by copying the table (batch mode)."""
    location = tmp_path / "migrations"
    shutil.copytree(migrate.SCRIPT_LOCATION, location, ignore=shutil.ignore_patterns("__pycache__"))
    probe = (HERE / "probe_0002.py").read_text()
    probe = probe.replace('revision: str = "0002"', f'revision: str = "{PROBE}"')
    probe = probe.replace(
        'down_revision: str | None = "0001"', f'down_revision: str | None = "{HEAD}"'
    )
    (location / "versions" / f"{PROBE}_probe.py").write_text(probe)
    monkeypatch.setattr(migrate, "SCRIPT_LOCATION", location)
    return location


async def test_a_database_behind_is_refused_then_upgraded_with_its_data(
    database_url: str, with_a_second_revision: Path
) -> None:
    await build_first_release(database_url)
    before = await dump(database_url)
    with pytest.raises(SchemaMismatch) as refused:
        await Store.open(database_url)
    message = str(refused.value)
    assert "match revision 0001" in message
    assert f"needs {PROBE}" in message
    assert "python -m bot db upgrade" in message

    done = await migrate.upgrade(database_url)
    assert (done.before.recognised, done.after) == ("0001", PROBE)
    assert await dump(database_url) == before
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            probes = (await conn.execute(text("SELECT probe FROM tickets"))).scalars().all()
    finally:
        await engine.dispose()
    assert probes == ["kept"]
    async with await Store.open(database_url) as store:
        assert [e.kind for e in await store.tickets.ticket_events("NDR-1001")] == [
            "opened",
            "assigned",
        ]


async def test_a_stamped_database_behind_is_refused_at_start(
    database_url: str, with_a_second_revision: Path
) -> None:
    await build_first_release(database_url)
    await migrate.upgrade(database_url)
    await execute(database_url, "UPDATE alembic_version SET version_num = '0001'")
    with pytest.raises(SchemaMismatch, match=rf"is at revision 0001, .* needs {PROBE}: back up"):
        await Store.open(database_url)
    found = await migrate.status(database_url)
    assert found.describe() == (
        f"0001 (behind: the latest is {PROBE}; run python -m bot db upgrade)"
    )


async def test_two_processes_upgrading_at_once_upgrade_once(
    database_url: str, with_a_second_revision: Path
) -> None:
    await build_first_release(database_url)
    results = await asyncio.gather(*(migrate.upgrade(database_url) for _ in range(3)))
    assert sorted(r.before.state for r in results) == sorted(
        [migrate.State.UNVERSIONED, migrate.State.LATEST, migrate.State.LATEST]
    )
    assert (await migrate.status(database_url)).state is migrate.State.LATEST


async def test_processes_opening_a_fresh_database_at_once_all_start(database_url: str) -> None:
    stores = await asyncio.gather(*(Store.open(database_url) for _ in range(4)))
    try:
        for store in stores:
            await store.ping()
    finally:
        for store in stores:
            await store.close()
    assert (await migrate.status(database_url)).state is migrate.State.LATEST


def test_two_upgrade_commands_at_once_on_a_fresh_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "DATABASE_URL": url,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "bot", "db", "upgrade"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    said = sorted(out for out, _ in outputs)
    assert "Created the database's tables" in said[0]
    assert "nothing to do" in said[1]


async def test_a_database_this_bot_did_not_make_is_not_stamped(
    database_url: str, tmp_path: Path
) -> None:
    await build_first_release(database_url)
    await execute(database_url, "ALTER TABLE tickets DROP COLUMN note")
    with pytest.raises(SchemaMismatch, match=r"no column tickets\.note"):
        await Store.open(database_url)
    current = bot(database_url, "db", "current", cwd=tmp_path)
    assert current.returncode == 1
    assert "does not recognise (no column tickets.note)" in current.stdout
    assert (await migrate.status(database_url)).current is None


@pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES)
async def test_processes_opening_a_fresh_postgresql_schema_at_once_all_start() -> None:
    schema = f"t_{uuid.uuid4().hex}"
    try:
        stores = await asyncio.gather(*(Store.open(POSTGRES_URL, schema=schema) for _ in range(4)))
        for store in stores:
            await store.ping()
            await store.close()
        async with await Store.open(POSTGRES_URL, schema=schema) as store:
            assert await store.tickets.list_tickets() == []
    finally:
        await execute(POSTGRES_URL, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_a_new_revision_is_written_after_the_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = tmp_path / "migrations"
    shutil.copytree(migrate.SCRIPT_LOCATION, location, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(migrate, "SCRIPT_LOCATION", location)
    written = await migrate.new_revision("ticket public ref")
    assert written == location / "versions" / f"{PROBE}_ticket_public_ref.py"
    source = written.read_text(encoding="utf-8")
    assert f"down_revision: str | None = '{HEAD}'" in source
    assert "op." not in source.split("def upgrade")[1].split("def downgrade")[0]  # nothing changed
