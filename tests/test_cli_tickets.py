"""``python -m bot tickets assign|reply|resolve|reopen`` as an admin runs them: a subprocess on
the bot's database, one line out, the jobs queued for the running server to deliver."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.store import Requester, Store
from bot.tickets import Tickets
from knowledge.kb import default_knowledge

KNOWLEDGE = default_knowledge()
ALICE = Requester("msteams", "29:alice", "Alice", "msteams:a:alice")


def say(key: str, **values: str) -> str:
    return KNOWLEDGE.conversation.text(key, **values)


def url(database: Path) -> str:
    return f"sqlite+aiosqlite:///{database}"


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A bot database with one open ticket of Alice's and a Teams admins' channel."""
    path = tmp_path / "bot.db"

    async def prepare() -> None:
        store = await Store.open(url(path))
        try:
            await store.channels.save_admin_channel(
                "msteams", {"conversation": {"id": "19:a"}}, "x:y"
            )
            escalations = Tickets(store, KNOWLEDGE, load_settings({}, env_file=None))
            await escalations.open_or_join(
                ALICE, bounce={"status": "5.7.12"}, path={}, note=None, dedupe_key="k"
            )
        finally:
            await store.close()

    asyncio.run(prepare())
    return path


def tickets(database: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "DATABASE_URL": url(database),
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "tickets", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=database.parent,  # no .env file of the repository is read
        timeout=120,
        check=False,
    )


def jobs(database: Path) -> list[tuple[str, str, dict[str, object]]]:
    async def read() -> list[tuple[str, str, dict[str, object]]]:
        store = await Store.open(url(database))
        try:
            return [
                (j.target, j.kind, j.payload) for j in await store.jobs.ticket_jobs(pending=True)
            ]
        finally:
            await store.close()

    return asyncio.run(read())


def test_assign_reply_resolve_and_reopen_from_the_terminal(database: Path) -> None:
    result = tickets(database, "assign", "NDR-1001", "--to", "Ana", "--as", "Bo")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == say("ticket_done_assigned", ticket="NDR-1001", assignee="Ana")
    queued = jobs(database)
    note = say("ticket_note_assigned", admin="Bo", assignee="Ana")
    assert ("msteams", "note", {"text": note}) in queued
    news = [payload for _, kind, payload in queued if kind == "tell_requester"]
    assert [(n["news"], n["admin"]) for n in news] == [("assigned", "Ana")]

    result = tickets(database, "reply", "NDR-1001", "--text", "Which sender?", "--as", "Ana")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == say("ticket_done_replied", ticket="NDR-1001")

    result = tickets(database, "resolve", "ndr-1001", "--note", "Allowed outside senders.")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == say("ticket_done_resolved", ticket="NDR-1001")

    shown = tickets(database, "show", "NDR-1001")
    assert "[resolved]" in shown.stdout
    assert "assignee: Ana" in shown.stdout
    # No server ran: everything queued still waits, and `show` says so.
    assert "waiting to be delivered:" in shown.stdout
    assert "    msteams post_card  attempts 0" in shown.stdout
    as_json = json.loads(tickets(database, "show", "NDR-1001", "--json").stdout)
    waiting = [(job["target"], job["kind"]) for job in as_json["pending_deliveries"]]
    assert waiting[:2] == [("msteams", "post_card"), ("msteams", "update_card")]

    result = tickets(database, "reopen", "NDR-1001", "--as", "Ana")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == say("ticket_done_reopened", ticket="NDR-1001")
    listed = tickets(database, "list", "--status", "open")
    assert "NDR-1001" in listed.stdout


def test_a_refusal_says_why_and_exits_non_zero(database: Path) -> None:
    assert (
        tickets(database, "resolve", "NDR-1001", "--note", "Done.", "--as", "Ana").returncode == 0
    )
    again = tickets(database, "resolve", "NDR-1001", "--note", "Done too.")
    assert again.returncode == 1
    assert again.stdout == ""
    assert again.stderr.strip() == say("ticket_refused_resolved", ticket="NDR-1001", admin="Ana")

    unknown = tickets(database, "assign", "NDR-4242")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == say("ticket_refused_unknown", ticket="NDR-4242")


def test_assign_without_to_takes_it_and_twice_is_refused(database: Path) -> None:
    first = tickets(database, "assign", "NDR-1001", "--as", "Ana")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == say("ticket_done_took", ticket="NDR-1001")
    second = tickets(database, "assign", "NDR-1001", "--to", "Ana", "--as", "Ana")
    assert second.returncode == 1
    assert second.stderr.strip() == say("ticket_refused_yours", ticket="NDR-1001")


def test_missing_words_are_a_usage_error(database: Path) -> None:
    result = tickets(database, "resolve", "NDR-1001")
    assert result.returncode == 2
    assert "--note" in result.stderr


def test_a_terminal_requester_hears_the_news_the_next_time_they_chat(tmp_path: Path) -> None:
    """The terminal has no push: the admin's reply and the resolution wait in the requester's
    conversation, shown on their next turn, and a 'no' to 'did that fix it?' reopens."""
    database = tmp_path / "bot.db"
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "DATABASE_URL": url(database),
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }

    def chat(stdin: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "bot", "chat", "--user", "sam", "--conversation", "c1"],
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    opened = chat("escalate\ninfo@contoso.com bounces the auditors' mail\nNo note\n")
    assert "Ticket NDR-1001 is open" in opened
    assert tickets(database, "reply", "NDR-1001", "--text", "Looking at it now").returncode == 0
    assert tickets(database, "resolve", "NDR-1001", "--note", "Opened it up").returncode == 0
    later = chat("hi\nno, still bouncing\n")
    assert "replied on ticket NDR-1001: Looking at it now" in later
    assert "resolved ticket NDR-1001: Opened it up" in later
    assert say("ticket_ask_fixed") in later
    assert say("ticket_reopened", ticket="NDR-1001") in later
    shown = tickets(database, "show", "NDR-1001")
    assert "Looking at it now" in shown.stdout
