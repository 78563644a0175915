"""The first hour with the bot: the scripts install only when the project changed and say nothing
of pip's unless it fails; the metadata builds without warnings; every log line is JSON, the
"listening" line included; a partial Slack configuration names what is missing, bolt's notices
stay out of the log, and Slack is said to be on only once it is.

(That the README's examples run as written is tests/test_readme_examples.py.)"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import bot.channels.slack.connection as slack_connection
from bot.app import create_app
from bot.channels.slack import SLACK
from bot.config import load_settings
from bot.logs import configure_logging
from tests.fakes_slack import FakeSlackWebAPI, FakeSocketModeServer
from tests.fakes_slack.harness import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, SlackBot

ROOT = Path(__file__).resolve().parent.parent
BOUNCE = "tests/corpus/en-new-57133-group.txt"
STAMP = ".venv/.ndrbot-install-stamp"
INSTALLING = "Installing the bot into .venv (first run, or pyproject.toml changed) ...\n"
INSTALLING_DEV = (
    "Installing the bot and its dev tools into .venv (first run, or pyproject.toml changed) ...\n"
)


# ---- 1. scripts/run and scripts/test install only when the project changed ----------------------


def copy_of_the_repository(destination: Path) -> Path:
    """The working tree as a fresh clone of it would be (tracked and new files, nothing ignored:
    no .venv, no database), uncommitted changes included."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.exists() and not source.is_symlink():  # deleted, not yet committed
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return destination


_PYTHON_STAND_IN = """#!/bin/sh
# The venv's python for the test: pip is recorded and chatters as pip does (and fails when asked);
# pytest passes; anything else is the real interpreter.
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  echo "$*" >>"$PIP_CALLS"
  echo "Collecting PyYAML>=6.0.1 (pip on stdout)"
  echo "WARNING: pip on stderr" >&2
  if [ -e "$PIP_FAILS" ]; then
    echo "ERROR: No matching distribution found for aiohttp>=99" >&2
    exit 1
  fi
  exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "pytest" ]; then
  echo "pytest stand-in"
  exit 0
fi
exec {python} "$@"
"""


class Checkout:
    """A copy of the repository whose .venv has a stand-in python: the scripts' install logic
    runs for real, pip does not."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pip_calls = root.parent / "pip-calls.txt"
        self.pip_fails = root.parent / "pip-fails"
        venv_bin = root / ".venv" / "bin"
        venv_bin.mkdir(parents=True)
        python = venv_bin / "python"
        python.write_text(_PYTHON_STAND_IN.format(python=sys.executable), encoding="utf-8")
        for tool in ("ruff", "mypy"):
            (venv_bin / tool).write_text("#!/bin/sh\necho ok\n", encoding="utf-8")
        for path in venv_bin.iterdir():
            path.chmod(0o755)
        self.pip_calls.write_text("", encoding="utf-8")

    def run(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": os.environ.get("HOME", str(self.root)),
            "PIP_CALLS": str(self.pip_calls),
            "PIP_FAILS": str(self.pip_fails),
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.root.parent / 'bot.db'}",
        }
        return subprocess.run(
            [str(self.root / "scripts" / script), *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def pip(self) -> list[str]:
        """The pip commands run so far."""
        return self.pip_calls.read_text(encoding="utf-8").splitlines()

    def stamp(self) -> str:
        return (self.root / STAMP).read_text(encoding="utf-8").strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Checkout:
    return Checkout(copy_of_the_repository(tmp_path / "ndrbot"))


def test_the_scripts_install_once_then_only_when_the_project_changes(checkout: Checkout) -> None:
    first = checkout.run("run", "classify", BOUNCE)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["status"] == "5.7.133"
    assert first.stderr == INSTALLING  # our one line; nothing of pip's
    assert checkout.pip() == [
        "-m pip install --quiet --disable-pip-version-check --upgrade pip",
        "-m pip install --quiet --disable-pip-version-check -e .",
    ]
    assert checkout.stamp().endswith(" .")

    again = checkout.run("run", "classify", BOUNCE)
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout == first.stdout
    assert len(checkout.pip()) == 2  # no pip at all the second time

    # scripts/test needs the dev tools: it installs .[dev] once; scripts/run is content with that.
    tested = checkout.run("test")
    assert tested.returncode == 0, tested.stderr
    assert tested.stderr == INSTALLING_DEV
    assert checkout.pip()[-1].endswith("-e .[dev]")
    assert "== pytest" in tested.stdout
    assert "pip on" not in tested.stdout
    assert checkout.run("test").stderr == ""
    assert checkout.run("run", "classify", BOUNCE).stderr == ""
    assert len(checkout.pip()) == 4

    # A change to pyproject.toml, or a requirements/lock file appearing, installs again.
    with (checkout.root / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write("\n# a change\n")
    assert checkout.run("run", "classify", BOUNCE).stderr == INSTALLING
    assert len(checkout.pip()) == 6
    (checkout.root / "requirements.txt").write_text("PyYAML==6.0.2\n", encoding="utf-8")
    assert checkout.run("run", "classify", BOUNCE).stderr == INSTALLING
    assert checkout.run("run", "classify", BOUNCE).stderr == ""
    assert len(checkout.pip()) == 8


def test_when_pip_fails_its_output_is_shown_and_nothing_runs(checkout: Checkout) -> None:
    checkout.pip_fails.touch()
    failed = checkout.run("run", "classify", BOUNCE)
    assert failed.returncode != 0
    assert failed.stdout == ""  # the bot did not start
    assert "Collecting PyYAML" in failed.stderr  # all of pip's output, its stdout too
    assert "ERROR: No matching distribution found for aiohttp>=99" in failed.stderr
    assert "pip could not install the bot into .venv" in failed.stderr
    assert not (checkout.root / STAMP).exists()  # so the next start tries again

    checkout.pip_fails.unlink()
    fixed = checkout.run("run", "classify", BOUNCE)
    assert (fixed.returncode, fixed.stderr) == (0, INSTALLING)
    assert checkout.run("run", "classify", BOUNCE).stderr == ""


@pytest.mark.slow
def test_a_fresh_clone_starts_in_under_two_seconds_the_second_time(tmp_path: Path) -> None:
    """The real thing: a new .venv, pip and all (about 20 s with pip's cache warm)."""
    root = copy_of_the_repository(tmp_path / "ndrbot")
    env = {
        name: value
        for name, value in os.environ.items()
        if name in ("PATH", "HOME", "LANG", "PYTHON", "TMPDIR") or name.startswith("PIP_")
    }

    def start() -> tuple[subprocess.CompletedProcess[str], float]:
        began = time.monotonic()
        done = subprocess.run(
            ["scripts/run", "classify", BOUNCE],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        return done, time.monotonic() - began

    first, _ = start()
    assert first.returncode == 0, first.stderr
    assert first.stderr == INSTALLING
    second, seconds = start()
    assert (second.returncode, second.stderr) == (0, "")
    assert second.stdout == first.stdout
    assert seconds < 2.0

    # The project's own metadata builds without a warning (setuptools' deprecations, notices).
    built = subprocess.run(
        [str(root / ".venv/bin/python"), "-m", "pip", "install", "--no-deps", "-e", "."],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    said = built.stdout + built.stderr
    warned = re.search(r"BuildBackendWarning|SetuptoolsDeprecationWarning|deprecat", said, re.I)
    assert warned is None, said


def test_the_metadata_uses_the_spdx_license_form() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["license"] == "MIT"  # a table is deprecated by setuptools
    (setuptools,) = [r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    minimum = re.fullmatch(r"setuptools>=(\d+).*", setuptools)
    assert minimum is not None
    assert int(minimum.group(1)) >= 77  # the first release that reads an SPDX string
    # A plain .pth for the editable install: setuptools' finder would print a notice.
    assert pyproject["tool"]["setuptools"]["package-dir"] == {"": "."}


# ---- 2. the README's Slack path (its examples run in tests/test_readme_examples.py) ----------


def test_the_readme_keeps_the_server_on_loopback_and_says_where_channel_ids_are() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "--host 0.0.0.0" not in readme  # /metrics is not for the world
    assert "HOST=0.0.0.0" not in readme
    slack = readme[readme.index("## Slack") : readme.index("## Tickets")]
    assert "```sh\nscripts/run serve\n```" in slack
    assert "Channel ID" in slack
    assert "Copy link" in slack


# ---- 3. logs: every line JSON, the start included ----------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _serve_env(tmp_path: Path, port: int) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "PORT": str(port),
        "PYTHONIOENCODING": "utf-8",
    }


def _json_lines(text: str) -> list[dict[str, object]]:
    lines = text.splitlines()
    assert lines
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}\n--- all of it\n{text}")
    return parsed


def test_serve_logs_json_lines_only_and_one_listening_line(tmp_path: Path) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        cwd=tmp_path,  # no .env of anyone's
        env=_serve_env(tmp_path, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as ok:
                    assert ok.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err
    assert out == ""  # nothing on stdout: no banner
    lines = _json_lines(err)
    assert "Running on" not in err
    listening = [line for line in lines if line["message"] == "listening"]
    assert listening == [
        {
            **listening[0],
            "level": "INFO",
            "logger": "bot.app",
            "host": "127.0.0.1",
            "port": port,
            "urls": [f"http://127.0.0.1:{port}"],
        }
    ]
    messages = [line["message"] for line in lines]
    # Said once the start-up work is done, as the last line before the stop.
    assert messages.index("starting") < messages.index("listening") < messages.index("stopped")


def test_a_port_in_use_is_one_json_error_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "bot", "serve"],
            cwd=tmp_path,
            env=_serve_env(tmp_path, port),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert done.stdout == ""
    errors = [line for line in _json_lines(done.stderr) if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert str(errors[0]["message"]).startswith(f"cannot listen on 127.0.0.1 port {port}: ")
    assert "Traceback" not in done.stderr


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.usefixtures("restored_logging")
def test_python_warnings_become_json_lines_too() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a library's notice", DeprecationWarning, stacklevel=1)
    (line,) = _json_lines(stream.getvalue())
    assert line["level"] == "WARNING"
    assert line["logger"] == "py.warnings"
    assert "a library's notice" in str(line["message"])


# ---- 4. Slack: what is missing, no bolt notices, on only when it is -----------------------------


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (
            {},
            "Slack is off: set SLACK_BOT_TOKEN, and SLACK_SIGNING_SECRET (HTTP at /slack/events) "
            "or SLACK_APP_TOKEN (Socket Mode)",
        ),
        (
            {"SLACK_BOT_TOKEN": BOT_TOKEN},
            "Slack is off: SLACK_SIGNING_SECRET is missing "
            "(or set SLACK_APP_TOKEN for Socket Mode)",
        ),
        (
            {"SLACK_SIGNING_SECRET": SIGNING_SECRET},
            "Slack is off: SLACK_BOT_TOKEN is missing (the Bot User OAuth Token, xoxb-...)",
        ),
        (
            {"SLACK_APP_TOKEN": APP_TOKEN},
            "Slack is off: SLACK_BOT_TOKEN is missing (the Bot User OAuth Token, xoxb-...)",
        ),
        (
            {"SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_APP_TOKEN": APP_TOKEN},
            "Slack is off: SLACK_BOT_TOKEN is missing (the Bot User OAuth Token, xoxb-...)",
        ),
    ],
)
def test_a_partial_slack_configuration_names_what_is_missing(
    database_url: str, caplog: pytest.LogCaptureFixture, given: dict[str, str], said: str
) -> None:
    caplog.set_level(logging.INFO)
    create_app(load_settings({"DATABASE_URL": database_url, **given}, env_file=None))
    slack = [r.getMessage() for r in caplog.records if r.name == "bot.channels.slack"]
    assert slack == [said]


def test_without_slack_settings_neither_its_package_nor_its_sdks_are_imported(
    database_url: str,
) -> None:
    """A bot without Slack (local mode, here) imports neither the Slack package nor its SDKs,
    and keeps none of their memory."""
    code = (
        "import sys\n"
        "from bot.app import create_app\n"
        "from bot.config import load_settings\n"
        f"create_app(load_settings({{'DATABASE_URL': {database_url!r}}}, env_file=None))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('slack_bolt', 'slack_sdk')"
        " or m.startswith('bot.channels.slack')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _slack_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "bot.channels.slack" and r.getMessage().startswith("Slack ")
    ]


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_bolt_does_not_warn_about_the_token_it_read_itself(
    database_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bolt reads SLACK_BOT_TOKEN from the environment by itself, as in production.
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    caplog.set_level(logging.INFO)
    api = FakeSlackWebAPI()
    await api.start()
    bot = SlackBot(api, database_url)
    await bot.start()
    try:
        assert _slack_lines(caplog) == ["Slack is on: HTTP at /slack/events"]
        loud = [r for r in caplog.records if r.levelno >= logging.INFO]
        assert not [r for r in loud if "will be unused" in r.getMessage()]
    finally:
        await bot.close()
        await api.close()

    # At DEBUG it is still there, for whoever looks into bolt.
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="bot.channels.slack.bolt")
    api = FakeSlackWebAPI()
    await api.start()
    bot = SlackBot(api, database_url)
    await bot.start()
    try:
        notices = [r for r in caplog.records if "will be unused" in r.getMessage()]
        assert [r.levelname for r in notices] == ["DEBUG"]
    finally:
        await bot.close()
        await api.close()


async def test_socket_mode_is_not_said_on_while_auth_test_fails(
    database_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slack_connection, "_AUTH_RETRY_FIRST_SECONDS", 0.05)
    caplog.set_level(logging.INFO)  # "Slack is on" would be an INFO line
    api = FakeSlackWebAPI()
    await api.start()
    bot = SlackBot(api, database_url, socket_mode=True)
    await api.close()  # Slack is unreachable
    await bot.start()
    try:
        assert (await bot.client.get("/healthz")).status == 200  # the server is up regardless
        await _until(lambda: any("trying again in 0.1 s" in m for m in caplog.messages))
        lines = _slack_lines(caplog)
        assert lines[0].startswith("Slack is not on yet: auth.test failed (")
        assert lines[0].endswith("; trying again in 0.05 s, then Socket Mode connects")
        assert not [line for line in lines if line.startswith("Slack is on")]
        assert bot.app[SLACK].connection._socket_mode is None  # not connecting either
    finally:
        await bot.close()


async def test_slack_is_said_on_when_auth_test_answers_at_last(
    database_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slack_connection, "_AUTH_RETRY_FIRST_SECONDS", 0.05)
    caplog.set_level(logging.INFO)
    api, sockets = FakeSlackWebAPI(), FakeSocketModeServer()
    await api.start()
    await sockets.start()
    api.socket_mode_url = sockets.url
    api.fail("auth.test", "invalid_auth")
    bot = SlackBot(api, database_url, socket_mode=True)
    await bot.start()
    try:
        await sockets.wait_connected()
        await _until(lambda: "Slack is on: Socket Mode" in _slack_lines(caplog))
        assert _slack_lines(caplog) == [
            "Slack is not on yet: auth.test failed (invalid_auth: SLACK_BOT_TOKEN is wrong or "
            "revoked); trying again in 0.05 s, then Socket Mode connects",
            "Slack is on: Socket Mode",
        ]
        # Socket Mode connected only after auth.test answered.
        methods = [call.method for call in api.calls]
        assert methods[:3] == ["auth.test", "auth.test", "apps.connections.open"]
    finally:
        await bot.close()
        await sockets.close()
        await api.close()
