"""End to end with Microsoft's own Teams client: the Microsoft 365 Agents Playground.

The bot (``python -m bot serve``) and the Playground (npm ``@microsoft/m365agentsplayground``) run
as they would on an admin's machine; headless Chromium drives the Playground's web UI through
``playground_driver.mjs`` (Playwright): paste a bounce, click the card buttons, read the steps in
the rendered chat; or ask, pick the recipient type in the card's list and press Choose (pressed
with nothing picked, it must send nothing). Faster tests use the Playground's HTTP API without a
browser and check the card payloads themselves.

The Playground phones home (telemetry) even when told not to, so these tests run only inside a
loopback-only network namespace: ``scripts/e2e-teams`` installs Chromium and the npm packages and
runs them under ``unshare -n``. Anywhere else they skip and say why; with NDRBOT_E2E_REQUIRED=1
(set by scripts/e2e-teams) a missing prerequisite fails instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest

from knowledge.kb import default_knowledge

pytestmark = pytest.mark.slow

E2E_DIR = Path(__file__).resolve().parent
CORPUS = E2E_DIR.parent / "corpus"
BOUNCE = CORPUS / "en-old-57133-group-display-name.txt"
DRIVER = E2E_DIR / "playground_driver.mjs"
PLAYGROUND_BIN = E2E_DIR / "node_modules" / ".bin" / "agentsplayground"
PLAYWRIGHT = E2E_DIR / "node_modules" / "playwright-core" / "package.json"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
REQUIRED = os.environ.get("NDRBOT_E2E_REQUIRED") == "1"
RUN_IT = (
    "run scripts/e2e-teams, which installs what is missing and runs these tests under unshare -n"
)

# The path through the cards, and what the admin must then read (the knowledge base's own steps).
ROLE_BUTTON = "I'm an email admin"
CHOOSE_BUTTON = default_knowledge().conversation.text("button_choose")
ASK_TYPE = "What kind of recipient is"
ASK_METHOD = "How do you want to let outside senders reach"
METHOD_BUTTON = "Allow everyone"
CENTRE_BUTTON = "New Exchange admin center (new EAC)"
PROCEDURE = "allow_all.groups.new_eac"
# The path README.md's "Microsoft Teams" section walks: ask, then pick the type in the list.
QUESTION = "how do I fix 5.7.12"
TYPE_CHOICE = "Shared mailbox"
TYPE_PROCEDURE = "allow_all.shared_mailbox.new_eac"
FACTS_UNASKED = "I'm an admin of a shared mailbox, I use PowerShell"
# What the Playground writes under every card: it does not render msteams.width "Full" (Teams
# does). README.md tells people it is harmless; if the Playground starts rendering it, say so.
FULL_WIDTH_WARNING = "Full width control is not supported"
START_SECONDS = 30.0
DRIVER_SECONDS = 150.0
STEP_MS = 20_000


def _missing(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"NDRBOT_E2E_REQUIRED is set but {reason}")
    pytest.skip(reason)


def _loopback_only() -> str | None:
    """None if this process sits in a network namespace with only an up loopback; else why not."""
    # socket.if_nameindex() asks the kernel about this process's own namespace (/sys/class/net
    # shows the namespace that mounted /sys instead).
    interfaces = sorted(name for _, name in socket.if_nameindex())
    if interfaces != ["lo"]:
        return (
            f"this network namespace has interfaces {', '.join(interfaces)}, not only lo: the "
            "Playground phones home, so it runs only where nothing but loopback exists"
        )
    with socket.socket() as server, socket.socket() as client:
        try:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            client.settimeout(2)
            client.connect(server.getsockname())
        except OSError:
            return "the loopback interface is down (run `ip link set lo up` in the namespace)"
    return None


@pytest.fixture(scope="module")
def prerequisites() -> None:
    if not sys.platform.startswith("linux"):
        _missing(f"needs Linux network namespaces, this is {sys.platform}")
    why = _loopback_only()
    if why is not None:
        hint = "" if shutil.which("unshare") else " (and unshare(1) is not installed)"
        _missing(f"{why}{hint}; {RUN_IT}")
    if shutil.which("node") is None:
        _missing(f"node is not installed (apt-get install nodejs); {RUN_IT}")
    if not PLAYGROUND_BIN.exists() or not PLAYWRIGHT.exists():
        _missing(f"the npm packages are not installed in {E2E_DIR} (npm ci there); {RUN_IT}")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no Chromium at {CHROMIUM} (apt-get install chromium); {RUN_IT}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (loopback only)
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(f"{what} did not answer {url} within {START_SECONDS:.0f} s:\n{_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class Stack:
    """The bot and the Playground, both running, and where their logs go."""

    bot_url: str
    playground_url: str
    bot_log: Path
    playground_log: Path
    work: Path

    def logs(self) -> str:
        return (
            f"--- bot log ({self.bot_log}):\n{_tail(self.bot_log)}\n"
            f"--- Playground log ({self.playground_log}):\n{_tail(self.playground_log, 20)}"
        )


@pytest.fixture
def stack(prerequisites: None, tmp_path: Path) -> Iterator[Stack]:
    """A fresh bot (its own SQLite file, local mode) and a fresh Playground pointed at it."""
    bot_port, playground_port = _free_port(), _free_port()
    bot_log, playground_log = tmp_path / "bot.log", tmp_path / "playground.log"
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MICROSOFT_APP_", "SLACK_", "TEAMS_", "TICKET_WEBHOOK"))
    }
    bot_env = {
        **environment,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    playground_env = {
        **environment,
        "TEAMSAPPTESTER_BROWSER": "none",
        "APPLICATION_INSIGHTS_NO_STATSBEAT": "1",
    }
    processes: list[subprocess.Popen[bytes]] = []
    handles: list[IO[bytes]] = []
    try:
        handles.append(bot_log.open("wb"))
        # The bot runs in tmp_path, so no .env file of the developer's is read.
        bot = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--port", str(bot_port)],
            cwd=tmp_path,
            env=bot_env,
            stdout=handles[-1],
            stderr=subprocess.STDOUT,
        )
        processes.append(bot)
        bot_url = f"http://127.0.0.1:{bot_port}"
        _wait_http(f"{bot_url}/healthz", bot, bot_log, "the bot")

        handles.append(playground_log.open("wb"))
        playground = subprocess.Popen(
            [
                str(PLAYGROUND_BIN),
                "-e",
                f"{bot_url}/api/messages",
                "-c",
                "msteams",
                "-p",
                str(playground_port),
                "--disable-telemetry",
            ],
            cwd=tmp_path,
            env=playground_env,
            stdout=handles[-1],
            stderr=subprocess.STDOUT,
        )
        processes.append(playground)
        playground_url = f"http://127.0.0.1:{playground_port}"
        _wait_http(f"{playground_url}/_internal/v1/config", playground, playground_log, "The UI")
        # A taken port makes the Playground choose another one silently: make sure it is ours.
        assert f"Listening on {playground_port}" in playground_log.read_text(errors="replace")
        yield Stack(bot_url, playground_url, bot_log, playground_log, tmp_path)
    finally:
        for process in reversed(processes):
            _stop(process)
        for handle in handles:
            handle.close()


def _expected_steps(procedure_id: str = PROCEDURE) -> list[str]:
    """The steps the admin must read, as plain text (the cards show **labels** in bold)."""
    (procedure,) = (p for p in default_knowledge().procedures if p.id == procedure_id)
    return [step.text.replace("**", "") for step in procedure.steps]


def _say(key: str) -> str:
    """What the knowledge base has the bot say for ``key``."""
    return default_knowledge().conversation.text(key)


def _drive(stack: Stack, steps: list[dict[str, Any]], shots: Path) -> dict[str, Any]:
    """Run the browser driver on these steps; its last JSON line (``ok``, ``transcript``...)."""
    scenario = {
        "url": stack.playground_url + "/",
        "out": str(shots),
        "timeout_ms": STEP_MS,
        "steps": steps,
    }
    scenario_file = stack.work / "scenario.json"
    scenario_file.write_text(json.dumps(scenario), encoding="utf-8")
    try:
        done = subprocess.run(
            ["node", str(DRIVER), str(scenario_file)],
            cwd=E2E_DIR,
            capture_output=True,
            text=True,
            timeout=DRIVER_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the browser driver ran over {DRIVER_SECONDS:.0f} s\n{stack.logs()}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    result: dict[str, Any] = (
        json.loads(lines[-1]) if lines else {"ok": False, "error": done.stderr[-3000:]}
    )
    assert result.get("ok"), (
        f"the Playground UI did not show what a person should see: {result.get('error')}\n"
        f"step {result.get('step')}: {result.get('failed')}\n"
        f"screenshots: {shots}\nchat as rendered:\n{result.get('transcript', '')[-3000:]}\n"
        f"{stack.logs()}"
    )
    # Nothing but the Playground itself was fetched (its web fonts on a CDN were refused).
    assert result["pageErrors"] == [], result["pageErrors"]
    return result


def _flat(text: str) -> str:
    """Text with its whitespace runs made one space, and markdown bold marks dropped."""
    return re.sub(r"\s+", " ", text.replace("**", "")).strip()


def _in_order(text: str, parts: list[str]) -> list[str]:
    """The parts not found in ``text`` in this order (empty: all there, in order)."""
    missing, position = [], 0
    flat = _flat(text)
    for part in parts:
        found = flat.find(_flat(part), position)
        if found < 0:
            missing.append(part)
        else:
            position = found + len(_flat(part))
    return missing


def test_admin_fixes_a_group_bounce_in_the_rendered_chat(stack: Stack) -> None:
    """A person's path: paste a 5.7.133 bounce, click through the cards, read the EAC steps."""
    greeting = " ".join(default_knowledge().help_text.greeting.split()[:6])
    steps = _expected_steps()
    shots = stack.work / "screenshots"
    shots.mkdir()
    shown = [
        {"do": "open_chat", "name": "Personal Chat"},
        # Opening the page sent installationUpdate and conversationUpdate: the bot says hello.
        {"do": "expect_text", "text": greeting},
        {"do": "paste", "text": BOUNCE.read_text(encoding="utf-8")},
        {"do": "click", "button": ROLE_BUTTON},
        {"do": "click", "button": METHOD_BUTTON},
        {"do": "click", "button": CENTRE_BUTTON},
        {"do": "expect_text", "text": "Edit delivery management"},
        {"do": "expect_text", "text": steps[-1]},
        {"do": "screenshot", "name": "steps"},
    ]
    transcript = str(_drive(stack, shown, shots)["transcript"])
    assert _in_order(transcript, steps) == [], f"steps missing or out of order:\n{transcript}"
    assert "Allow messages from people inside and outside my organization" in transcript


def test_admin_picks_the_recipient_type_from_the_list_in_the_rendered_chat(stack: Stack) -> None:
    """README.md's path: ask, pick the type in the list (more choices than a card has buttons),
    Choose. Nothing is picked beforehand, and Choose with nothing picked sends nothing."""
    steps = _expected_steps(TYPE_PROCEDURE)
    shots = stack.work / "screenshots"
    shots.mkdir()
    shown = [
        {"do": "open_chat", "name": "Personal Chat"},
        {"do": "paste", "text": QUESTION},
        {"do": "click", "button": ROLE_BUTTON},
        {"do": "expect_text", "text": ASK_TYPE},
        {"do": "expect_unchecked", "choice": TYPE_CHOICE},
        {"do": "click", "button": CHOOSE_BUTTON},
        # The card says why; nothing reached the bot: no "didn't catch that", no next question.
        {"do": "expect_text", "text": _say("teams_ticket_required")},
        {"do": "expect_no_text", "text": _say("reask"), "ms": 3000},
        {"do": "expect_no_text", "text": ASK_METHOD, "ms": 0},
        {"do": "screenshot", "name": "nothing-chosen"},
        {"do": "pick", "choice": TYPE_CHOICE},
        {"do": "click", "button": CHOOSE_BUTTON},
        {"do": "click", "button": METHOD_BUTTON},
        {"do": "click", "button": CENTRE_BUTTON},
        {"do": "expect_text", "text": steps[-1]},
        {"do": "screenshot", "name": "steps"},
    ]
    transcript = str(_drive(stack, shown, shots)["transcript"])
    assert _in_order(transcript, steps) == [], f"steps missing or out of order:\n{transcript}"
    assert FULL_WIDTH_WARNING in transcript, "README.md explains a warning no longer shown"


# ---- the Playground's HTTP API: no browser, the bot's own payloads ----------------------------


class PlaygroundApi:
    """The Playground's chat API: send messages, press card buttons, read the bot's replies."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.replies: list[dict[str, Any]] = []
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self.conversation = ""
        self.user = ""

    async def open(self) -> None:
        async with self.session.get(f"{self.base}/_internal/v1/config") as answer:
            config = (await answer.json())["config"]
        self.conversation = config["personalChat"]["id"]
        self.user = config["currentUser"]["id"]
        ws_base = self.base.replace("http://", "ws://")
        self._socket = await self.session.ws_connect(
            f"{ws_base}/_ws_conversation/v1/conversations/stream"
        )

    async def say(self, text: str) -> None:
        body = {"from": {"id": self.user}, "text": text, "textFormat": "plain"}
        url = f"{self.base}/_conversation/v1/conversations/{self.conversation}/messages"
        async with self.session.post(url, json=body) as answer:
            assert answer.status < 300, await answer.text()

    async def press(self, title: str, inputs: dict[str, Any] | None = None) -> None:
        """Press the newest button ``title``; ``inputs``: the card's inputs as a client merges
        them into the button's data (the Playground's UI checks them first; this does not)."""
        card_message, action = self.button(title)
        body = {
            "conversation": {"id": self.conversation},
            "from": {"id": self.user},
            "replyToId": card_message.get("messageId") or card_message["id"],
            "value": {**action["data"], **(inputs or {})},
        }
        async with self.session.post(f"{self.base}/_conversation/v1/submit", json=body) as answer:
            assert answer.status < 300, await answer.text()

    def button(self, title: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The newest card message with an Action.Submit of this title, and that action."""
        for message in reversed(self.replies):
            for action in _actions(message):
                if action.get("title") == title and action.get("type") == "Action.Submit":
                    return message, action
        raise AssertionError(f"no card button {title!r} in:\n{self.texts()}")

    async def wait_for(self, predicate: Any, what: str, seconds: float = 20.0) -> None:
        assert self._socket is not None
        deadline = time.monotonic() + seconds
        while not any(predicate(message) for message in self.replies):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no reply with {what} within {seconds:.0f} s:\n{self.texts()}"
                )
            try:
                frame = await self._socket.receive(timeout=left)
            except TimeoutError:
                continue
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            event = json.loads(frame.data)
            if event.get("action") in ("createMessage", "updateMessage") and event.get("message"):
                self.replies.append(event["message"])

    def texts(self) -> str:
        return "\n---\n".join(_all_text(message) for message in self.replies)


def _card_nodes(message: dict[str, Any], keep: Callable[[dict[str, Any]], bool]) -> list[Any]:
    """Every node of a message's cards that ``keep`` picks, depth first."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if keep(node):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.get("attachments", []))
    return found


def _actions(message: dict[str, Any]) -> list[dict[str, Any]]:
    return _card_nodes(message, lambda node: str(node.get("type", "")).startswith("Action."))


def _all_text(message: dict[str, Any]) -> str:
    parts: list[str] = [str(message.get("text") or "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("text", "title", "value"):
                if isinstance(node.get(key), str):
                    parts.append(node[key])
            for value in node.values():
                if isinstance(value, dict | list):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.get("attachments", []))
    return "\n".join(part for part in parts if part)


def _has(text: str) -> Any:
    return lambda message: _flat(text) in _flat(_all_text(message))


def _has_button(title: str) -> Any:
    return lambda message: any(action.get("title") == title for action in _actions(message))


def test_card_buttons_carry_slot_and_answer_through_the_playground_api(stack: Stack) -> None:
    """The same path without a browser: the bounce keeps its line breaks, and every button the
    bot sends is an Action.Submit whose data is {"slot": ..., "answer": ...}."""
    steps = _expected_steps()

    async def conversation() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            api = PlaygroundApi(session, stack.playground_url)
            await api.open()
            await api.say(BOUNCE.read_text(encoding="utf-8"))
            await api.wait_for(_has_button(ROLE_BUTTON), f"the button {ROLE_BUTTON!r}")
            for pressed, following in (
                (ROLE_BUTTON, _has_button(METHOD_BUTTON)),
                (METHOD_BUTTON, _has_button(CENTRE_BUTTON)),
                (CENTRE_BUTTON, _has(steps[-1])),
            ):
                _, action = api.button(pressed)
                assert set(action["data"]) >= {"slot", "answer"}, action
                await api.press(pressed)
                await api.wait_for(following, f"what follows {pressed!r}")
            assert _in_order(api.texts(), steps) == [], api.texts()
            # The bounce kept its line breaks, so the reader found the one failed recipient.
            assert "sales@contoso.com" in api.texts()

    try:
        asyncio.run(asyncio.wait_for(conversation(), timeout=90))
    except (AssertionError, TimeoutError) as error:
        pytest.fail(f"{error}\n{stack.logs()}")


def test_the_type_list_starts_empty_and_an_empty_choose_is_asked_again(stack: Stack) -> None:
    """The many-choice question through the Playground: nothing is picked in the list, a Choose
    that arrives with nothing picked anyway (from a client that does not check) makes the bot ask
    again rather than pick for the person, and a real pick goes on."""

    async def conversation() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            api = PlaygroundApi(session, stack.playground_url)
            await api.open()
            await api.say(QUESTION)
            await api.wait_for(_has_button(ROLE_BUTTON), f"the button {ROLE_BUTTON!r}")
            await api.press(ROLE_BUTTON)
            await api.wait_for(_has_button(CHOOSE_BUTTON), f"the list and {CHOOSE_BUTTON!r}")
            card, _ = api.button(CHOOSE_BUTTON)
            (choice_set,) = _choice_sets(card)
            assert "value" not in choice_set, choice_set
            assert choice_set["isRequired"] is True, choice_set
            asked = len(api.replies)
            await api.press(CHOOSE_BUTTON, {"answer": ""})
            await api.wait_for(
                lambda message: message in api.replies[asked:] and _has(ASK_TYPE)(message),
                "the type question again",
            )
            assert not any(_has(ASK_METHOD)(message) for message in api.replies), api.texts()
            await api.press(CHOOSE_BUTTON, {"answer": "shared_mailbox"})
            await api.wait_for(_has(ASK_METHOD), "the method question")

    try:
        asyncio.run(asyncio.wait_for(conversation(), timeout=60))
    except (AssertionError, TimeoutError) as error:
        pytest.fail(f"{error}\n{stack.logs()}")


def test_facts_said_unasked_are_noted_through_the_playground_api(stack: Stack) -> None:
    """README.md's example: what the admin says unasked is taken and acknowledged ("Noted: ..."),
    and only the questions left are asked."""
    noted = default_knowledge().conversation.text(
        "noted", facts="**Shared mailbox**, **Exchange Online PowerShell**"
    )

    async def conversation() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            api = PlaygroundApi(session, stack.playground_url)
            await api.open()
            await api.say(QUESTION)
            await api.wait_for(_has_button(ROLE_BUTTON), f"the button {ROLE_BUTTON!r}")
            await api.say(FACTS_UNASKED)
            await api.wait_for(_has(noted), repr(noted))
            await api.wait_for(_has_button(METHOD_BUTTON), "the method question")
            assert not any(_has_button(CHOOSE_BUTTON)(message) for message in api.replies)

    try:
        asyncio.run(asyncio.wait_for(conversation(), timeout=60))
    except (AssertionError, TimeoutError) as error:
        pytest.fail(f"{error}\n{stack.logs()}")


def _choice_sets(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The Input.ChoiceSets of a message's cards."""
    return _card_nodes(message, lambda node: node.get("type") == "Input.ChoiceSet")
