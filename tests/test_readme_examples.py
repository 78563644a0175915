"""README.md works top to bottom as written: its shell examples (the ```sh blocks) run from the
repository as shown, twice over on one database.

Which examples run here is decided by what each command is, once ``scripts/run`` (or
``.venv/bin/python -m bot``) and any ``VAR=value`` in front are taken off:

- run here (no credentials, no network, no server): ``classify``; ``chat`` fed by a pipe;
  ``tickets`` (every action: they work on the database); ``nlu check``; ``manifest slack`` and
  ``manifest teams`` (the files they write into the repository are removed afterwards, and a file
  of yours by that name is put back); ``nlu test`` too, in a slow test of its own (once).
- skipped, each for the reason in ``_SKIPPED``: the server (``scripts/run`` alone, ``serve``,
  ``scripts/playground``), ``scripts/test`` (it runs this test), Node.js (``npm``, ``npx``, ``cd``
  into its folder), the benchmarks, and a ``chat`` that would wait for a person.

A command neither rule knows fails the test: a new example is either run here or skipped on
purpose. ``python -m bot ...`` fails it too, since it only works inside the virtualenv.

Each command runs with ``bash -c`` (``pipefail``) in the repository, in an environment of its own:
no Slack or Teams credentials, every setting at its default (a ``.env`` file cannot change them)
but ``DATABASE_URL``, a SQLite file of the test's. The whole set runs twice on that database; the
second time a piped conversation has to go as the first did (the same questions, with the same
choices, and the same steps), although the bot now remembers who the user is.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import Settings, env_var

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
_TIMEOUT_SECONDS = 900  # the first scripts/run may install the bot into .venv

_FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_BOT = (("scripts/run",), (".venv/bin/python", "-m", "bot"))
_NOT_IN_THE_VENV = (("python", "-m", "bot"), ("python3", "-m", "bot"))
_INPUT_ONLY = frozenset({"printf", "echo", "cat"})  # what may feed a pipe into the bot
# The bot's commands that run here, by their first words (a chat needs piped input).
_RUNNABLE = (
    ("classify",),
    ("chat",),
    ("tickets",),
    ("nlu", "check"),
    ("manifest", "slack"),
    ("manifest", "teams"),
)
_SLOW = (("nlu", "test"),)  # 5-fold cross-validation: about 15 s, in a test of its own
# What is skipped, and why: the bot's commands, then other programs, by their first words.
_SKIPPED_BOT = {
    (): "starts the server, which runs until it is stopped",
    ("serve",): "starts the server, which runs until it is stopped",
    ("exchange",): "needs an Exchange Online tenant (tests/test_cli_exchange.py runs it on a fake)",
}
_SKIPPED = {
    ("scripts/test",): "runs the whole test suite, this test included",
    ("scripts/playground",): "starts the bot and the Agents Playground (servers, Node.js)",
    ("scripts/e2e-teams",): "the Teams end-to-end test (Node.js, Chromium, root)",
    ("npm",): "Node.js packages from the network",
    ("npx",): "Node.js packages from the network",
    ("cd",): "a folder for the Node.js commands after it",
    ("openssl",): "makes a key pair for Entra ID: nothing to check here",
    ("cat",): "joins the key pair made above",
    (".venv/bin/python", "benchmarks/run.py"): "a benchmark: measures, checks nothing",
    (".venv/bin/python", "benchmarks/turn.py"): "a benchmark: measures, checks nothing",
    (".venv/bin/python", "benchmarks/reader.py"): "a benchmark: measures, checks nothing",
    (".venv/bin/python", "benchmarks/language.py"): "a benchmark: measures, checks nothing",
    (".venv/bin/python", "benchmarks/teams.py"): "a benchmark: measures, checks nothing",
    (".venv/bin/python", "benchmarks/slack.py"): "a benchmark: measures, checks nothing",
}
# The environment's variables a command may see: where programs are, and how pip installs
# on this machine (scripts/run may install); never the bot's settings.
_PASSED_ON = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHON", "NDRBOT_CACHE_DIR", "USER")
_PASSED_ON_PREFIXES = ("PIP_", "SSL_CERT_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


@dataclass(frozen=True)
class Example:
    """One command of a ```sh block, with what decides whether and how it runs here."""

    line: int  # in README.md
    command: str  # as written (continuation lines joined)
    shown_output: str  # what the README shows after a "$ " command, else ""
    skip: str | None  # why it does not run here; None: it runs
    slow: bool
    piped_chat: bool
    writes: tuple[str, ...]  # files it writes (--out), relative to the repository


def _sh_blocks(text: str) -> Iterator[tuple[int, str]]:
    for match in _FENCE.finditer(text):
        if match.group(1) == "sh":
            yield text.count("\n", 0, match.start(2)) + 1, match.group(2)


def _commands(first_line: int, block: str) -> Iterator[tuple[int, str, str]]:
    """(line, command, output shown) for each command of a block; in a block with "$ " prompts
    only those lines are commands and the lines after one are its output."""
    lines = block.splitlines()
    prompted = any(line.startswith("$ ") for line in lines)
    index = 0
    while index < len(lines):
        start, line = index, lines[index]
        index += 1
        if prompted:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        while line.rstrip().endswith("\\") and index < len(lines):
            line = line.rstrip()[:-1] + " " + lines[index].strip()
            index += 1
        output = []
        while prompted and index < len(lines) and not lines[index].startswith("$ "):
            output.append(lines[index])
            index += 1
        if line.strip() and not line.lstrip().startswith("#"):
            yield first_line + start, line.strip(), "\n".join(output)


def _segments(command: str) -> list[list[str]]:
    """The simple commands of a line (split at | && || ;), each as its words, comments off."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    segments: list[list[str]] = [[]]
    for token in lexer:
        if token in ("|", "&&", "||", ";"):
            segments.append([])
        else:
            segments[-1].append(token)
    # VAR=value before a program sets its environment: not part of what it is.
    return [
        [word for i, word in enumerate(words) if not _is_assignment(words[: i + 1])]
        for words in segments
        if words
    ]


def _is_assignment(words: list[str]) -> bool:
    return all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", word) for word in words)


def _starts(words: list[str] | tuple[str, ...], prefix: tuple[str, ...]) -> bool:
    return tuple(words[: len(prefix)]) == prefix


def _bot_args(words: list[str]) -> list[str] | None:
    for prefix in _BOT:
        if _starts(words, prefix):
            return words[len(prefix) :]
    return None


def _example(line: int, command: str, shown_output: str) -> Example:
    segments = _segments(command)
    for words in segments:
        for prefix in _NOT_IN_THE_VENV:
            assert not _starts(words, prefix), (
                f"README.md:{line}: `{command}` works only inside the virtualenv: "
                "write `scripts/run ...`"
            )
    skip, slow, piped_chat, writes, runnable = None, False, False, [], False
    for position, words in enumerate(segments):
        args = _bot_args(words)
        if args is None:
            reason = next((why for key, why in _SKIPPED.items() if _starts(words, key)), None)
            if reason is not None:
                skip = skip or reason
            elif not (words[0] in _INPUT_ONLY and position < len(segments) - 1):
                pytest.fail(f"README.md:{line}: no rule for `{command}`: run it here or skip it")
            continue
        words_of_command = tuple(word for word in args if not word.startswith("-"))
        if _SKIPPED_BOT.get(words_of_command[:1]) is not None:
            skip = skip or _SKIPPED_BOT[words_of_command[:1]]
        elif words_of_command[:1] == ("chat",) and position == 0:
            skip = skip or "a conversation that waits for a person at the keyboard"
        elif any(_starts(words_of_command, key) for key in _SLOW):
            slow = runnable = True
        elif any(_starts(words_of_command, key) for key in _RUNNABLE):
            runnable = True
            piped_chat = piped_chat or words_of_command[:1] == ("chat",)
        else:
            pytest.fail(f"README.md:{line}: no rule for `{command}`: run it here or skip it")
        if "--out" in args[:-1] and args[args.index("--out") + 1] != "-":
            writes.append(args[args.index("--out") + 1])
    assert skip or runnable, f"README.md:{line}: `{command}` runs nothing of the bot's"
    return Example(line, command, shown_output, skip, slow, piped_chat, tuple(writes))


def readme_examples() -> list[Example]:
    """Every command of README.md's ```sh blocks, in order."""
    text = README.read_text(encoding="utf-8")
    return [
        _example(line, command, output)
        for first, block in _sh_blocks(text)
        for line, command, output in _commands(first, block)
    ]


def _environment(database: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name in _PASSED_ON or name.startswith(_PASSED_ON_PREFIXES)
    }
    for name, field in Settings.model_fields.items():  # every setting at its default
        default = field.default
        if default is None:
            text = ""
        elif isinstance(default, bool):
            text = str(default).lower()
        elif isinstance(default, tuple):
            text = ",".join(default)
        else:
            text = str(default)
        env[env_var(name)] = text
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{database}"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def run_example(example: Example, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command as written, by bash, in the repository."""
    return subprocess.run(
        ["bash", "-c", "set -o pipefail\n" + example.command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_SECONDS,
        check=False,
    )


def _shape(output: str) -> tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]:
    """What a conversation came to, wording aside: the choices of each question in turn (the
    indented numbered lines) and the sources of the steps given."""
    questions: list[list[str]] = []
    previous_was_choice = False
    for line in output.splitlines():
        choice = re.fullmatch(r" {2}\d+\. (.+)", line)
        if choice:
            if not previous_was_choice:
                questions.append([])
            questions[-1].append(choice.group(1).strip())
        previous_was_choice = choice is not None
    sources = tuple(line for line in output.splitlines() if line.startswith("Source: "))
    return tuple(tuple(question) for question in questions), sources


ROLE_CHOICES = ("I sent the message", "I'm an email admin")


def _remembered(
    shape: tuple[tuple[tuple[str, ...], ...], tuple[str, ...]],
) -> tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]:
    """The shape as a returning user sees it: the role question is skipped (the bot remembers
    it), and saying the role again only repeats the question that was waiting."""
    questions: list[tuple[str, ...]] = []
    for question in shape[0]:
        if question != ROLE_CHOICES and (not questions or questions[-1] != question):
            questions.append(question)
    return tuple(questions), shape[1]


@dataclass
class Pass:
    """One run of every example that runs here: the finished processes, by example."""

    results: list[tuple[Example, subprocess.CompletedProcess[str]]]


@pytest.fixture(scope="module")
def two_passes(tmp_path_factory: pytest.TempPathFactory) -> list[Pass]:
    """Every quick example, in README order, twice on one database."""
    examples = [example for example in readme_examples() if not example.skip and not example.slow]
    database = tmp_path_factory.mktemp("readme") / "bot.db"
    env = _environment(database)
    with _outputs_put_back(examples, tmp_path_factory.mktemp("kept")):
        return [Pass([(example, run_example(example, env)) for example in examples]) for _ in "12"]


@contextlib.contextmanager
def _outputs_put_back(examples: list[Example], keep: Path) -> Iterator[None]:
    """The files examples write into the repository: removed afterwards; yours put back."""
    paths = sorted({ROOT / name for example in examples for name in example.writes})
    kept = []
    for number, path in enumerate(paths):
        if path.exists():
            aside = keep / f"{number}-{path.name}"
            shutil.move(path, aside)
            kept.append((aside, path))
    try:
        yield
    finally:
        for path in paths:
            path.unlink(missing_ok=True)
        for aside, path in kept:
            shutil.move(aside, path)


def _report(example: Example, done: subprocess.CompletedProcess[str]) -> str:
    return (
        f"README.md:{example.line}: `{example.command}` exited {done.returncode}\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )


def test_the_readme_has_examples_of_each_kind() -> None:
    examples = readme_examples()
    runnable = [example for example in examples if not example.skip]
    assert len(runnable) >= 10, [example.command for example in runnable]
    assert any(example.piped_chat for example in runnable)
    assert any("classify" in example.command for example in runnable)
    assert any("tickets list" in example.command for example in runnable)
    for example in examples:  # every skip says why
        assert example.skip is None or example.skip.strip()


@pytest.mark.slow  # the examples twice over: about 35 s, shared by three tests
def test_every_example_runs_twice_on_one_database(two_passes: list[Pass]) -> None:
    for number, done_pass in enumerate(two_passes, start=1):
        for example, done in done_pass.results:
            assert done.returncode == 0, f"pass {number}: " + _report(example, done)


@pytest.mark.slow  # the examples twice over: about 35 s, shared by three tests
def test_a_piped_conversation_goes_the_same_way_the_second_time(two_passes: list[Pass]) -> None:
    """The bot remembers the user (an admin, after the first run); the README's script still
    works: the second run asks the same questions, with the same choices, and gives the same
    steps. (The dialogs keep this; the test says what the README promises.)"""
    first, second = two_passes
    chats = [
        (example, one.stdout, two.stdout)
        for (example, one), (_, two) in zip(first.results, second.results, strict=True)
        if example.piped_chat
    ]
    assert chats
    for example, once, again in chats:
        assert _shape(once)[0], f"README.md:{example.line}: no question was asked:\n{once}"
        assert "Sorry, I didn't catch that" not in again, again
        assert _remembered(_shape(again)) == _remembered(_shape(once)), (
            f"README.md:{example.line}: `{example.command}` went another way the second time"
            f"\n--- first\n{once}\n--- second\n{again}"
        )


@pytest.mark.slow  # the examples twice over: about 35 s, shared by three tests
def test_what_classify_prints_is_what_the_readme_shows(two_passes: list[Pass]) -> None:
    shown = [
        (example, done)
        for example, done in two_passes[0].results
        if example.shown_output and "classify" in example.command
    ]
    assert shown
    for example, done in shown:
        printed = json.loads(done.stdout)
        pairs = re.findall(
            r'"(\w+)": ("[^"]*"|\[[^\]]*\]|null|true|false|-?\d+)', example.shown_output
        )
        assert pairs
        for key, value in pairs:
            assert printed.get(key) == json.loads(value), (
                f"README.md:{example.line}: shows {key}: {value}, the bot prints "
                f"{json.dumps(printed.get(key))}"
            )


@pytest.mark.slow
def test_the_slow_examples_run(tmp_path: Path) -> None:
    slow = [example for example in readme_examples() if example.slow and not example.skip]
    assert slow
    env = _environment(tmp_path / "bot.db")
    for example in slow:
        done = run_example(example, env)
        assert done.returncode == 0, _report(example, done)
