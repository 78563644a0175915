"""The terminal channel, ``python -m bot chat``: every transcript in-process and from a subprocess,
state that survives a restart, and the terminal's own commands."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.channels.console import ConsoleChannel
from bot.conversation import Conversations
from bot.escalation import StoreTicketDesk
from bot.store import Store
from dialogs.turn import DialogContext
from knowledge.kb import default_knowledge
from tests.transcripts import ASK_ROLE, ASK_TYPE, TRANSCRIPTS, Step, Transcript, prepare_tmp

REPO = Path(__file__).resolve().parent.parent
SUBPROCESS_TIMEOUT_S = 60
ALLOWED_LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING"})


# ---- helpers ------------------------------------------------------------------------------------


def _line(text: str, tmp: Path) -> str:
    """A transcript line as typed: ``{tmp}`` filled in, relative ``/file`` paths made absolute."""
    text = text.replace("{tmp}", str(tmp))
    if text.startswith("/file "):
        path = Path(text.removeprefix("/file ").strip())
        if not path.is_absolute():
            text = f"/file {REPO / path}"
    return text


def _expected(step: Step) -> list[str]:
    return list(step[1])


def _absent(step: Step) -> list[str]:
    return list(step[2]) if len(step) == 3 else []


def _assert_in_order(output: str, expected: Sequence[str], where: str) -> None:
    position = 0
    for fragment in expected:
        found = output.find(fragment, position)
        assert found >= 0, (
            f"{where}: expected {fragment!r} (after position {position}) in:\n{output}"
        )
        position = found + len(fragment)


def _database_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@asynccontextmanager
async def _conversations(
    database: Path, org_domains: Sequence[str] = ()
) -> AsyncIterator[Conversations]:
    """The conversation service as bot/runtime.py builds it, on a SQLite file."""
    store = await Store.open(_database_url(database))
    try:
        context = DialogContext(
            knowledge=default_knowledge(),
            org_domains=frozenset(org_domains),
            desk=StoreTicketDesk(store),
        )
        yield Conversations(store, context)
    finally:
        await store.close()


async def _say(channel: ConsoleChannel, line: str) -> str:
    """Type one line (or one /paste block) into the channel; return what it printed."""
    stdout = channel.stdout
    assert isinstance(stdout, io.StringIO)
    start = len(stdout.getvalue())
    channel.stdin = io.StringIO(line + "\n")
    assert await channel.run() == 0
    return stdout.getvalue()[start:]


def _chat_env(database: Path, org_domains: Sequence[str] = ()) -> dict[str, str]:
    """The subprocess's environment, built explicitly: no stray settings from the caller."""
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "DATABASE_URL": _database_url(database),
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LOG_LEVEL": "INFO",
    }
    if org_domains:
        env["ORG_DOMAINS"] = ",".join(org_domains)
    for name in ("SYSTEMROOT", "TMPDIR", "TEMP", "TMP"):  # what the OS itself needs
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _chat(
    stdin: str,
    *,
    database: Path,
    cwd: Path,
    user: str = "pat",
    conversation: str = "c1",
    org_domains: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bot chat`` with ``stdin`` piped in."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--user", user, "--conversation", conversation],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=_chat_env(database, org_domains),
        cwd=cwd,  # a scratch folder: no .env file of the repository is read
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )


def _assert_clean_exit(result: subprocess.CompletedProcess[str]) -> None:
    """Status 0, and stderr holds nothing but JSON log lines below ERROR."""
    assert result.returncode == 0, f"status {result.returncode}; stderr:\n{result.stderr}"
    for line in result.stderr.splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"unexpected stderr line: {line!r}\n{result.stderr}")
        assert isinstance(entry, dict), line
        assert entry.get("level") in ALLOWED_LOG_LEVELS, f"log line on stderr: {line}"


def _stdin_of(transcript: Transcript, tmp: Path) -> str:
    return "".join(_line(step[0], tmp) + "\n" for step in transcript.steps)


# ---- (a) every transcript in-process, one turn at a time ----------------------------------------


@pytest.mark.parametrize("transcript", TRANSCRIPTS, ids=lambda t: t.name)
async def test_transcript_in_process(transcript: Transcript, tmp_path: Path) -> None:
    prepare_tmp(tmp_path)
    async with _conversations(tmp_path / "bot.db", transcript.org_domains) as conversations:
        channel = ConsoleChannel(
            conversations,
            stdin=io.StringIO(),
            stdout=io.StringIO(),
            user_id="pat",
            conversation_id=transcript.name,
        )
        for number, step in enumerate(transcript.steps, 1):
            line = _line(step[0], tmp_path)
            output = await _say(channel, line)
            where = f"{transcript.name}, turn {number} ({line.splitlines()[0]!r})"
            _assert_in_order(output, _expected(step), where)
            for fragment in _absent(step):
                assert fragment not in output, f"{where}: {fragment!r} should not be in:\n{output}"


# ---- (b) every transcript through `python -m bot chat`, all lines piped at once ----------------


@pytest.fixture(scope="module")
def chat_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    """Start the selected transcripts' subprocesses at once (slow to start, quick to run)."""
    selected = {
        str(getattr(item.callspec.params["transcript"], "name", ""))
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_transcript_through_subprocess"
    }
    folder = tmp_path_factory.mktemp("chat")
    prepare_tmp(folder)
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield {
            t.name: pool.submit(
                _chat,
                _stdin_of(t, folder),
                database=folder / f"{t.name}.db",
                cwd=folder,
                conversation=t.name,
                org_domains=t.org_domains,
            )
            for t in TRANSCRIPTS
            if t.name in selected
        }


@pytest.mark.parametrize("transcript", TRANSCRIPTS, ids=lambda t: t.name)
def test_transcript_through_subprocess(
    transcript: Transcript, chat_runs: dict[str, Future[subprocess.CompletedProcess[str]]]
) -> None:
    result = chat_runs[transcript.name].result()
    _assert_clean_exit(result)
    expected = [fragment for step in transcript.steps for fragment in _expected(step)]
    _assert_in_order(result.stdout, expected, f"{transcript.name} (subprocess)")
    assert "Sorry, something went wrong on my side" not in result.stdout


# ---- (c) restart persistence with a real SQLite file ------------------------------------------


def test_conversation_survives_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "bot.db"
    bounce = REPO / "tests/corpus/en-new-57133-group.txt"

    first = _chat(
        f"/file {bounce}\n/click admin\nallow everyone\n", database=database, cwd=tmp_path
    )
    _assert_clean_exit(first)
    _assert_in_order(
        first.stdout,
        ["That's 5.7.133", ASK_ROLE, "tells me sales@contoso.com is a group", "Where will you"],
        "before the restart",
    )
    assert "Let everyone mail" not in first.stdout  # stopped with the question pending

    # A new process: the buttons it printed are gone, so /click sends the number as the answer.
    second = _chat("/click 3\ndistribution group\n", database=database, cwd=tmp_path)
    _assert_clean_exit(second)
    _assert_in_order(
        second.stdout,
        [
            "The steps differ between these kinds of group",
            "Let everyone mail a distribution group (PowerShell)",
            "Set-DistributionGroup -Identity sales@contoso.com",
            "Did that fix it?",
        ],
        "after the restart",
    )
    for fragment in (ASK_ROLE, "Sorry, I didn't catch that", "That's 5.7.133"):
        assert fragment not in second.stdout

    # Another conversation of the same person starts fresh but remembers they are an admin.
    third = _chat("how do I fix 5.7.12\n", database=database, cwd=tmp_path, conversation="c2")
    _assert_clean_exit(third)
    _assert_in_order(
        third.stdout,
        ["That's 5.7.12", "Last time you told me you're an email admin", ASK_TYPE],
        "another conversation",
    )
    assert ASK_ROLE not in third.stdout
    assert "sales@contoso.com" not in third.stdout

    # Someone else is asked who they are.
    other = _chat(
        "how do I fix 5.7.12\n", database=database, cwd=tmp_path, user="sam", conversation="c3"
    )
    _assert_clean_exit(other)
    assert ASK_ROLE in other.stdout
    assert "Last time you told me" not in other.stdout


# ---- (d) the terminal's own commands ------------------------------------------------------------


def test_terminal_commands(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-bounce.eml"
    result = _chat(
        "how do I fix 5.7.12\n"
        "/click banana\n"
        f"/file {missing}\n"
        "/file\n"
        "/click 2\n"
        "/quit\n"
        "shared mailbox\n",
        database=tmp_path / "bot.db",
        cwd=tmp_path,
    )
    _assert_clean_exit(result)
    _assert_in_order(
        result.stdout,
        [
            ASK_ROLE,
            "No button 'banana' on the last question. The buttons are: "
            "1. I sent the message, 2. I'm an email admin",
            f"Can't read {missing}",
            "Usage: /file PATH",
            ASK_TYPE,
        ],
        "terminal commands",
    )
    # Neither the unknown button nor the missing file reached the bot, and /quit ended the chat.
    assert result.stdout.count(ASK_ROLE) == 1
    assert "Sorry, I didn't catch that" not in result.stdout
    assert "How do you want to let outside senders" not in result.stdout


def test_empty_input_ends_quietly(tmp_path: Path) -> None:
    result = _chat("", database=tmp_path / "bot.db", cwd=tmp_path)
    _assert_clean_exit(result)
    assert result.stdout == ""


async def test_click_without_a_question_sends_the_text(tmp_path: Path) -> None:
    """After a restart no buttons are known: /click passes its value on as the answer."""
    async with _conversations(tmp_path / "bot.db") as conversations:
        channel = ConsoleChannel(conversations, stdin=io.StringIO(), stdout=io.StringIO())
        assert ASK_ROLE in await _say(channel, "how do I fix 5.7.12")
        channel.last_question = None  # as in a new process
        assert ASK_TYPE in await _say(channel, "/click admin")


# ---- bugs found while writing these tests, fixed since -----------------------------------------


async def test_look_alike_answer_says_different_problem_once(tmp_path: Path) -> None:
    async with _conversations(tmp_path / "bot.db") as conversations:
        channel = ConsoleChannel(conversations, stdin=io.StringIO(), stdout=io.StringIO())
        bounce = REPO / "tests/corpus/en-eml-5110-recipient-not-found-b64.eml"
        output = await _say(channel, f"/file {bounce}")
    assert "That bounce says 5.1.10" in output
    assert output.count("different problem from 5.7.12") == 1, output


async def test_escalation_note_mentioning_restart_opens_the_ticket(tmp_path: Path) -> None:
    async with _conversations(tmp_path / "bot.db") as conversations:
        channel = ConsoleChannel(conversations, stdin=io.StringIO(), stdout=io.StringIO())
        await _say(channel, "how do I fix 5.7.12")
        await _say(channel, "admin")
        assert "Is there anything you'd like to add" in await _say(channel, "escalate")
        output = await _say(channel, "we tried to restart the transport service already")
    assert "Ticket NDR-" in output, output
    assert "Let's start over." not in output


async def test_steps_intro_keeps_proper_nouns(tmp_path: Path) -> None:
    async with _conversations(tmp_path / "bot.db") as conversations:
        channel = ConsoleChannel(conversations, stdin=io.StringIO(), stdout=io.StringIO())
        await _say(channel, "how do I fix 5.7.12")
        await _say(channel, "admin")
        await _say(channel, "M365 group")
        await _say(channel, "allow everyone")
        output = await _say(channel, "new EAC")
    assert "Let outside senders mail a Microsoft 365 group (new EAC)" in output
    assert "Steps for Microsoft 365 group:" in output, output


async def test_number_answers_the_narrowed_type_question(tmp_path: Path) -> None:
    async with _conversations(tmp_path / "bot.db") as conversations:
        channel = ConsoleChannel(conversations, stdin=io.StringIO(), stdout=io.StringIO())
        await _say(channel, f"/file {REPO / 'tests/corpus/en-new-57133-group.txt'}")
        await _say(channel, "admin")
        await _say(channel, "allow everyone")
        question = await _say(channel, "PS")
        assert "2. Dynamic distribution group" in question
        output = await _say(channel, "2")
    assert "Let everyone mail a dynamic distribution group (PowerShell)" in output, output
    assert "Set-Mailbox" not in output


async def test_number_answers_the_offered_centres(tmp_path: Path) -> None:
    async with _conversations(tmp_path / "bot.db") as conversations:
        channel = ConsoleChannel(conversations, stdin=io.StringIO(), stdout=io.StringIO())
        await _say(channel, f"/file {REPO / 'tests/corpus/en-new-57136-mailuser.txt'}")
        await _say(channel, "admin")
        question = await _say(channel, "allow everyone")
        assert "2. Exchange Online PowerShell" in question
        output = await _say(channel, "2")
    assert "Let everyone mail a mail user (PowerShell)" in output, output


async def test_recipient_question_is_asked_again_after_a_miss(tmp_path: Path) -> None:
    async with _conversations(tmp_path / "bot.db") as conversations:
        channel = ConsoleChannel(conversations, stdin=io.StringIO(), stdout=io.StringIO())
        await _say(channel, "how do I fix 5.7.12")
        assert "Which address did you send to?" in await _say(channel, "I sent it")
        missed = await _say(channel, "no clue what it was")
        answered = await _say(channel, "bob@fabrikam.com")
    assert "Sorry, I didn't catch that." in missed
    assert "Which address did you send to?" in missed, missed
    assert "Note for the email admin at fabrikam.com:" in answered, answered
