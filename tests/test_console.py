"""The terminal channel, ``python -m bot chat``: every transcript in-process and from a subprocess,
state that survives a restart, and the terminal's own commands."""

from __future__ import annotations

import asyncio
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
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from bot.channels.console import ConsoleChannel, TerminalPrompt
from bot.config import load_settings
from bot.store import Store
from bot.tickets import StoreTicketDesk, Tickets
from bot.turns import Turns
from dialogs.turn import DialogContext
from dialogs.understanding.layer import build_understanding
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
async def _conversations(database: Path, org_domains: Sequence[str] = ()) -> AsyncIterator[Turns]:
    """The conversation service as bot/runtime.py builds it, on a SQLite file."""
    store = await Store.open(_database_url(database))
    try:
        knowledge = default_knowledge()
        tickets = Tickets(store, knowledge, load_settings({}, env_file=None))
        context = DialogContext(
            knowledge=knowledge,
            org_domains=frozenset(org_domains),
            desk=StoreTicketDesk(store, tickets),
            understanding=build_understanding(),
        )
        yield Turns(store, context)
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
    extra: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bot chat`` with ``stdin`` piped in."""
    return subprocess.run(
        [
            sys.executable,
            *("-m", "bot", "chat", "--user", user, "--conversation", conversation),
            *extra,
        ],
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
        ["That's 5.7.133: The recipient is a group", ASK_ROLE, "Where will you"],
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
        missed = await _say(channel, "the weather is lovely today")
        answered = await _say(channel, "bob@fabrikam.com")
    assert "Sorry, I didn't catch that." in missed
    assert "Which address did you send to?" in missed, missed
    assert "Note for the email admin at fabrikam.com:" in answered, answered


# ---- (e) the prompt on a terminal, in-process (tests/test_console_pty.py uses a real pty) ------

PROMPT_TIMEOUT_S = 10


def _pasted(text: str) -> str:
    """A bracketed paste, as a terminal sends it (here with the \\r\\n some terminals use)."""
    return "\x1b[200~" + text.replace("\n", "\r\n") + "\x1b[201~"


@pytest.fixture
def keys() -> Iterator[PipeInput]:
    with create_pipe_input() as pipe:
        yield pipe


def _terminal_prompt(keys: PipeInput) -> TerminalPrompt:
    return TerminalPrompt(terminal_input=keys, terminal_output=DummyOutput())


async def _read(prompt: TerminalPrompt) -> str | None:
    return await asyncio.wait_for(prompt.read("you> "), PROMPT_TIMEOUT_S)


async def test_prompt_takes_a_paste_of_many_lines_as_one(keys: PipeInput) -> None:
    prompt = _terminal_prompt(keys)
    keys.send_text("here it is: " + _pasted("first\nsecond\n\nfourth\n") + "\r")
    assert await _read(prompt) == "here it is: first\nsecond\n\nfourth"
    keys.send_text(_pasted("bob@fabrikam.com") + "\r")  # one line goes in as it is
    assert await _read(prompt) == "bob@fabrikam.com"
    keys.send_text(_pasted("a\nb") + " and " + _pasted("c\nd") + "\r")  # [pasted 2 lines #2]
    assert await _read(prompt) == "a\nb and c\nd"
    keys.send_text("\x1b[A\r")  # Up recalls the last line, placeholders and all
    assert await _read(prompt) == "a\nb and c\nd"


async def test_prompt_backspace_removes_a_whole_paste(keys: PipeInput) -> None:
    prompt = _terminal_prompt(keys)
    keys.send_text("see " + _pasted("one\ntwo") + "\x7f" + "this\r")
    assert await _read(prompt) == "see this"
    keys.send_text(_pasted("one\ntwo") + "\x7f\x7f" + "\r")  # then Backspace as usual
    assert await _read(prompt) == ""


async def test_prompt_ctrl_c_clears_the_line_or_leaves(keys: PipeInput) -> None:
    prompt = _terminal_prompt(keys)
    keys.send_text("half a thought\x03admin\r")
    assert await _read(prompt) == "admin"
    keys.send_text("\x03")
    assert await _read(prompt) is None
    keys.send_text("\x04")
    assert await _read(prompt) is None


async def test_channel_on_a_terminal_answers_a_pasted_bounce_once(
    keys: PipeInput, tmp_path: Path
) -> None:
    bounce = (REPO / "tests/corpus/en-new-57133-group.txt").read_text(encoding="utf-8")
    keys.send_text(_pasted(bounce) + "\r")
    keys.send_text("admin\r")
    keys.send_text("/paste\r" + _pasted("how do I fix\n5.7.12\n/end\nnot sent") + "\r")
    keys.send_text("\x04")
    stdout = io.StringIO()
    async with _conversations(tmp_path / "bot.db") as conversations:
        channel = ConsoleChannel(
            conversations,
            stdin=io.StringIO(),
            stdout=stdout,
            interactive=True,
            reader=_terminal_prompt(keys),
        )
        assert await asyncio.wait_for(channel.run(), PROMPT_TIMEOUT_S * 3) == 0
    output = stdout.getvalue()
    _assert_in_order(
        output,
        # After the role, the next question is about the recipient the pasted bounce names.
        ["That's 5.7.133", ASK_ROLE, "sales@contoso.com", "  1. ", "That's 5.7.12"],
        "on a terminal",
    )
    assert output.count("That's 5.7.133") == 1, output
    assert "Sorry, I didn't catch that" not in output
    assert "not sent" not in output  # what followed /end in the paste
    assert "you> " not in output  # the prompt is prompt_toolkit's to draw


def test_piped_input_is_echoed_and_a_remembered_role_does_not_slip_a_line(tmp_path: Path) -> None:
    """A piped transcript shows what the user typed, and runs the same the second time,
    although the bot then remembers the user is an admin."""
    database = tmp_path / "bot.db"
    script = "how do I fix 5.7.133\nadmin\nallow everyone\nclassic\n"
    for run in (1, 2):
        result = _chat(script, database=database, cwd=tmp_path)
        _assert_clean_exit(result)
        _assert_in_order(
            result.stdout,
            [
                "you> how do I fix 5.7.133",
                "you> admin",
                "you> allow everyone",
                "you> classic",
                "Let everyone mail a group (classic EAC)",
            ],
            f"run {run}",
        )
        assert "Sorry, I didn't catch that." not in result.stdout, result.stdout
    quiet = _chat("hi\n", database=database, cwd=tmp_path, extra=["--no-echo"])
    assert "you> hi" not in quiet.stdout
