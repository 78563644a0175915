"""The terminal channel on a real pseudo-terminal: ``python -m bot chat`` with its input and
output on a pty, so it reads with prompt_toolkit as it does for a person at a terminal. This test
plays the terminal: it pastes in brackets (``ESC[200~`` ... ``ESC[201~``) as terminals do once
prompt_toolkit asks for bracketed paste, types keys and reads the screen. Every wait is bounded."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.transcripts import ASK_ROLE, ASK_TYPE, REASK

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")

REPO = Path(__file__).resolve().parent.parent
BOUNCE = REPO / "tests/corpus/en-new-57133-group.txt"
START_TIMEOUT_S = 30.0  # up to the first prompt: Python, the knowledge base, the database
TURN_TIMEOUT_S = 15.0
EXIT_TIMEOUT_S = 10.0
ROWS, COLUMNS = 40, 120
# What the bot says when it understood nothing (conversation.yaml's fallback, help.yaml's greeting).
INTRODUCTION = "I help with Exchange Online bounces"
PASTE_START, PASTE_END = b"\x1b[200~", b"\x1b[201~"
ENTER, CTRL_C, CTRL_D = b"\r", b"\x03", b"\x04"
# Escape sequences (CSI, OSC, two-byte ones), and the controls left that a screen doesn't show.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _screen_text(raw: bytes) -> str:
    """The output without escape sequences and controls: the words a person would read."""
    return _CONTROLS.sub("", _ESCAPES.sub("", raw.decode("utf-8", errors="replace")))


def _env(database: Path, term: str | None) -> dict[str, str]:
    """The bot's environment, built explicitly: no stray settings from the caller."""
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LOG_LEVEL": "INFO",
        "LINES": str(ROWS),
        "COLUMNS": str(COLUMNS),
    }
    if term is not None:
        env["TERM"] = term
    for name in ("TMPDIR", "TEMP", "TMP"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


class Terminal:
    """``python -m bot chat`` on a pseudo-terminal, and what it has shown so far."""

    def __init__(self, folder: Path, term: str | None = "xterm") -> None:
        import fcntl
        import struct
        import termios

        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self._master = master
        self._stderr_path = folder / "stderr.txt"
        with self._stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "chat", "--user", "pat", "--conversation", "c1"],
                stdin=slave,
                stdout=slave,
                stderr=stderr,
                env=_env(folder / "bot.db", term),
                cwd=folder,  # a scratch folder: no .env file of the repository is read
                start_new_session=True,  # the pty is not the test's own terminal
            )
        os.close(slave)
        self.raw = b""
        self._seen = 0  # how much of the screen text expect() has gone past
        self._closed = False

    @property
    def text(self) -> str:
        return _screen_text(self.raw)

    @property
    def stderr(self) -> str:
        return self._stderr_path.read_text(encoding="utf-8", errors="replace")

    def send(self, data: bytes) -> None:
        os.write(self._master, data)

    def expect(self, fragment: str, timeout: float = TURN_TIMEOUT_S) -> None:
        """Wait until ``fragment`` is on the screen after what the last expect() saw."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.text.find(fragment, self._seen)
            if found >= 0:
                self._seen = found + len(fragment)
                return
            if self._closed or time.monotonic() >= deadline:
                pytest.fail(
                    f"no {fragment!r} within {timeout} s"
                    f"{' (the output ended)' if self._closed else ''}; the screen after position "
                    f"{self._seen}:\n{self.text[self._seen :]}\nstderr:\n{self.stderr}"
                )
            self._read(deadline)

    def prompt(self, timeout: float = TURN_TIMEOUT_S) -> None:
        """Wait for the prompt (drawn after the replies: the bot is reading now)."""
        self.expect("you>", timeout)

    def wait_exit(self, timeout: float = EXIT_TIMEOUT_S) -> int:
        """The exit status, reading the screen meanwhile so the bot never blocks on a write."""
        deadline = time.monotonic() + timeout
        while (status := self.process.poll()) is None:
            if time.monotonic() >= deadline:
                pytest.fail(f"still running after {timeout} s; the screen:\n{self.text}")
            if self._closed:
                time.sleep(0.02)
            else:
                self._read(deadline)
        while not self._closed:  # what it wrote last
            self._read(time.monotonic() + 1)
        return status

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=EXIT_TIMEOUT_S)
        os.close(self._master)

    def _read(self, deadline: float) -> None:
        ready, _, _ = select.select([self._master], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO on Linux once the bot has closed its end
            data = b""
        if data:
            self.raw += data
        else:
            self._closed = True
            time.sleep(0.02)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(tmp_path)
    try:
        term.expect('Say "help"', START_TIMEOUT_S)  # the help the terminal starts with
        term.prompt(START_TIMEOUT_S)
        yield term
    finally:
        term.close()


def _assert_clean(term: Terminal) -> None:
    """No prompt_toolkit warning on the screen, no cursor position request, nothing on stderr."""
    assert "WARNING" not in term.text, term.text
    assert b"\x1b[6n" not in term.raw  # nobody would answer it in a terminal without CPR
    assert term.stderr.strip() == "", term.stderr


def test_pasted_bounce_is_one_message(terminal: Terminal) -> None:
    bounce = BOUNCE.read_bytes()
    lines = len(bounce.decode().strip("\n").splitlines())
    assert lines > 50  # a real paste of many lines

    terminal.send(PASTE_START + bounce.replace(b"\n", b"\r") + PASTE_END)  # as terminals paste
    terminal.expect(f"[pasted {lines} lines]")  # the line shows the paste, compactly
    terminal.send(ENTER)
    terminal.expect(f"you> [pasted {lines} lines]")  # the line as sent stays on the screen
    terminal.expect("That's 5.7.133")
    terminal.expect(ASK_ROLE)
    terminal.prompt()

    terminal.send(b"admin" + ENTER)  # a line typed as usual answers the question
    terminal.expect("you> admin")
    terminal.expect("sales@contoso.com")  # the next question: the recipient the bounce names
    terminal.expect("  1. ")  # and its buttons
    terminal.prompt()

    terminal.send(CTRL_D)
    assert terminal.wait_exit() == 0
    text = terminal.text
    assert text.count(ASK_ROLE) == 1, text  # answered once, not once per pasted line
    assert text.count("That's 5.7.133") == 1, text
    assert INTRODUCTION not in text, text
    assert REASK not in text, text
    assert "Original Message Details" not in text  # the pasted text itself is not shown
    _assert_clean(terminal)


def test_typed_lines_and_ctrl_c(terminal: Terminal) -> None:
    terminal.send(b"how do I fix 5.7.12" + ENTER)
    terminal.expect("That's 5.7.12")
    terminal.expect(ASK_ROLE)
    terminal.prompt()

    terminal.send(b"no idea what to say")
    terminal.expect("no idea what to say")
    terminal.send(CTRL_C)  # clears the line: nothing is sent
    terminal.send(b"/click 2" + ENTER)  # the terminal's commands work as before
    terminal.expect("you> /click 2")  # the line as sent: the text before Ctrl-C is gone
    terminal.expect(ASK_TYPE)
    terminal.prompt()

    terminal.send(CTRL_C)  # on an empty line: leaves
    assert terminal.wait_exit() == 0
    text = terminal.text
    assert text.count(ASK_ROLE) == 1, text
    assert REASK not in text, text
    assert INTRODUCTION not in text, text
    _assert_clean(terminal)


def test_paste_block_command_still_works(terminal: Terminal) -> None:
    """``/paste`` ... ``/end``, typed line by line (a terminal without bracketed paste)."""
    terminal.send(b"/paste" + ENTER)
    terminal.expect("...")
    for line in BOUNCE.read_bytes().splitlines()[:30]:
        terminal.send(line + ENTER)
    terminal.send(b"/end" + ENTER)
    terminal.expect("That's 5.7.133")
    terminal.expect(ASK_ROLE)
    terminal.prompt()
    terminal.send(b"/quit" + ENTER)
    assert terminal.wait_exit() == 0
    assert terminal.text.count(ASK_ROLE) == 1, terminal.text
    _assert_clean(terminal)


@pytest.mark.parametrize("term", [None, "dumb"], ids=["TERM-unset", "TERM-dumb"])
def test_unknown_or_dumb_terminal_prints_no_warning(tmp_path: Path, term: str | None) -> None:
    """Unset TERM: prompt_toolkit still (as for xterm). ``TERM=dumb``: a plain ``you> `` prompt
    that reads lines, with no escape sequences of prompt_toolkit's at all."""
    terminal = Terminal(tmp_path, term)
    try:
        terminal.expect('Say "help"', START_TIMEOUT_S)
        terminal.expect("you>", START_TIMEOUT_S)
        terminal.send(b"how do I fix 5.7.12" + ENTER)
        terminal.expect(ASK_ROLE)
        terminal.expect("you>")
        terminal.send(CTRL_D)
        assert terminal.wait_exit() == 0
    finally:
        terminal.close()
    _assert_clean(terminal)
    bracketed_paste_on = b"\x1b[?2004h" in terminal.raw
    assert bracketed_paste_on == (term is None), terminal.raw
    if term == "dumb":
        assert b"you> how do I fix 5.7.12" in terminal.raw.replace(b"\r", b"")  # the tty echoes
