"""What runs in the side-by-side benchmark's child processes, each alone so that its CPU time and
memory are its own: the five servers ``run.py`` loads, and the long in-process run whose memory
is read after 10,000 conversations.

Run by ``run.py`` as ``python benchmarks/servers.py KIND DATABASE EXTRA``; a server prints its
port and stops when its stdin closes; ``conversations`` prints one JSON line with its figures.
Each kind imports only what it serves (the imports are inside its function), so the baselines'
RSS is theirs, not our bot's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks.harness import listen, rss_mb

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"
BOUNCE = (CORPUS / "en-new-5712-mailbox.txt").read_text(encoding="utf-8")


def bare_app() -> web.Application:
    """The floor of this stack: an aiohttp POST handler that reads the body and answers 200."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/api/messages", handle)
    return app


def teams_echo_app() -> web.Application:
    """botbuilder's stock echo bot, as its samples write it: CloudAdapter.process in local mode
    (no app id) and an ActivityHandler that sends the text back through TurnContext."""
    from botbuilder.core import ActivityHandler, MessageFactory, TurnContext  # noqa: PLC0415
    from botbuilder.integration.aiohttp import (  # noqa: PLC0415
        CloudAdapter,
        ConfigurationBotFrameworkAuthentication,
    )

    class Config:
        APP_ID = ""
        APP_PASSWORD = ""

    class Echo(ActivityHandler):  # type: ignore[misc]
        async def on_message_activity(self, turn_context: TurnContext) -> None:
            text = turn_context.activity.text or ""
            await turn_context.send_activity(MessageFactory.text(f"Echo: {text}"))

    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(Config()))
    bot = Echo()

    async def messages(request: web.Request) -> web.StreamResponse:
        return await adapter.process(request, bot)  # type: ignore[no-any-return]

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    return app


def bolt_echo_app(api_url: str) -> web.Application:
    """bolt's echo app, as its samples write it: an AsyncApp whose message listener replies with
    say() (bolt acknowledges the event before the listener runs), its Web API at ``api_url``."""
    from slack_bolt.async_app import AsyncApp, AsyncSay  # noqa: PLC0415
    from slack_sdk.web.async_client import AsyncWebClient  # noqa: PLC0415

    from benchmarks.slack_wire import SECRET, TOKEN  # noqa: PLC0415

    app = AsyncApp(
        token=TOKEN,
        signing_secret=SECRET,
        client=AsyncWebClient(token=TOKEN, base_url=api_url),
    )

    @app.event("message")
    async def echo(event: dict[str, Any], say: AsyncSay) -> None:
        await say(f"Echo: {event.get('text', '')}")

    return app.web_app(path="/slack/events")


def ours_app(database: str, api_url: str, *, slack: bool) -> web.Application:
    """Our whole app, as ``python -m bot serve`` builds it: local mode (no app id), SQLite; with
    Slack over signed HTTP whose Web API is the fake at ``api_url``."""
    from benchmarks.slack_wire import SECRET, TOKEN  # noqa: PLC0415
    from bot.app import create_app  # noqa: PLC0415
    from bot.config import load_settings  # noqa: PLC0415

    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{database}", "LOG_LEVEL": "WARNING"}
    if slack:
        env |= {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": api_url}
    return create_app(load_settings(env, env_file=None))


async def conversations(database: str, count: int, seconds: float) -> dict[str, Any]:
    """``count`` people each pasting a bounce in a new conversation, one turn after another
    through ``Turns.handle`` with the SQLite store (no HTTP), for ``seconds`` at most; the RSS
    once imported, once the runtime is open, and along the way (after a warm-up first). It
    imports what a server without Slack settings does (the app, and the Teams package with it:
    the runtime no longer imports the platforms), so that its RSS is a server's."""
    import bot.app  # noqa: F401, PLC0415 - see the docstring
    from bot.config import load_settings  # noqa: PLC0415
    from bot.runtime import open_runtime  # noqa: PLC0415
    from dialogs.messages import Message  # noqa: PLC0415

    started = time.perf_counter()
    settings = load_settings({"DATABASE_URL": f"sqlite+aiosqlite:///{database}"}, env_file=None)
    imported = rss_mb()
    points: list[tuple[int, float]] = []
    marks = {min(500, count), *(count * step // 4 for step in range(1, 5))}
    done = 0
    async with open_runtime(settings) as runtime:
        opened = rss_mb()
        until = time.perf_counter() + seconds
        while done < count and time.perf_counter() < until:
            message = Message(
                text=BOUNCE,
                user_id=f"user-{done}",
                conversation_id=f"conversation-{done}",
                platform="msteams",
            )
            await runtime.turns.handle(message)
            done += 1
            if done in marks:
                points.append((done, rss_mb()))
        if done not in marks:
            points.append((done, rss_mb()))
    return {
        "done": done,
        "imported": imported,
        "opened": opened,
        "rss": points,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    """Be the server (or the in-process run) that ``sys.argv`` names."""
    kind, database, extra = sys.argv[1:4]
    logging.basicConfig(level=logging.WARNING)
    if kind == "conversations":
        count, seconds = extra.split(":")
        figures = asyncio.run(conversations(database, int(count), float(seconds)))
        print(json.dumps(figures), flush=True)
        sys.stdin.read()  # until the parent has read it and closes our stdin
        return
    apps: dict[str, Callable[[], web.Application]] = {
        "bare": bare_app,
        "teams-echo": teams_echo_app,
        "bolt-echo": lambda: bolt_echo_app(extra),
        "ours-teams": lambda: ours_app(database, extra, slack=False),
        "ours-slack": lambda: ours_app(database, extra, slack=True),
    }
    asyncio.run(listen(apps[kind]()))


if __name__ == "__main__":
    main()
