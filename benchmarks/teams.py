"""Benchmark of the Teams endpoint: turns per second and CPU per turn, over real HTTP.

The bot runs in a child process on 127.0.0.1 (so its CPU time is measured alone); this process
drives it with concurrent users and runs the fake Bot Connector the replies go to. Each user holds
the admin conversation by card clicks (question, four clicks, the steps card, "It worked"), so
every turn reads and saves state and renders Adaptive Cards. Variants:

  plain  botbuilder as its samples use it: CloudAdapter.process + an ActivityHandler that runs the
         same turn and sends the same cards through TurnContext (local mode, no tokens)
  ours   create_app's /api/messages (local mode): CloudAdapter.process_activity too, with our
         BotFrameworkAuthentication (clients cached per service URL, sent over one aiohttp session)
  auth   create_app's /api/messages with an app id: every request's JWT validated by botbuilder
         against a fake OpenID issuer (the bot's own token comes from a stub)
  turn   the turn alone, no HTTP (Turns.handle + rendering), for reference

Run: ``python benchmarks/teams.py [--turns 1200] [--users 8] [--variants plain,ours,auth,turn]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from botbuilder.core import ActivityHandler, CardFactory, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication

from bot.app import create_app
from bot.channels import teams
from bot.channels.teams import Labels, render_replies
from bot.config import Settings, load_settings
from bot.runtime import open_runtime
from dialogs.messages import Message

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.fakes

from benchmarks.harness import cpu_seconds, listen  # noqa: E402
from tests.fakes.bot_connector import FakeBotConnector  # noqa: E402
from tests.fakes.openid_issuer import FakeOpenIdIssuer  # noqa: E402

APP_ID = "00000000-0000-4000-8000-0000000000b0"
BOT = {"id": f"28:{APP_ID}", "name": "NDR Helper"}
# One user's conversation: what they type or click, turn by turn.
SCRIPT: list[tuple[str, dict[str, str] | None]] = [
    ("how do I fix 5.7.12", None),
    ("", {"slot": "role", "answer": "admin"}),
    ("", {"slot": "recipient_type", "answer": "shared_mailbox"}),
    ("", {"slot": "method", "answer": "allow_all"}),
    ("", {"slot": "centre", "answer": "powershell"}),
    ("", {"slot": "fixed", "answer": "yes"}),
]


# ---- the bot, in the child process ------------------------------------------------------------


def _serve(variant: str, database: str, metadata_url: str) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{database}", "LOG_LEVEL": "WARNING"}
    if variant == "auth":
        env |= {"MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_PASSWORD": "benchmark-only"}
    settings = load_settings(env, env_file=None)
    if variant == "plain":
        app = _plain_app(settings)
    else:
        app = create_app(settings)
        if variant == "auth":

            async def token() -> str:
                return "benchmark-bot-token"

            app[teams.OPTIONS] = teams.TeamsOptions(
                channel_openid_metadata_url=metadata_url,
                emulator_openid_metadata_url=metadata_url,
                token_source=token,
            )

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(listen(app))


def _plain_app(settings: Settings) -> web.Application:
    """botbuilder as documented: CloudAdapter.process, ActivityHandler, TurnContext sends."""

    class Config:
        APP_ID = ""
        APP_PASSWORD = ""

    runtime_key = web.AppKey("runtime", object)

    class Bot(ActivityHandler):  # type: ignore[misc]
        def __init__(self, app: web.Application) -> None:
            self.app = app

        async def on_message_activity(self, turn_context: TurnContext) -> None:
            activity = turn_context.activity
            message = Message(
                text=activity.text or "",
                user_id=activity.from_property.aad_object_id or activity.from_property.id,
                user_name=activity.from_property.name or "",
                conversation_id=activity.conversation.id,
                platform=activity.channel_id,
                value=activity.value,
            )
            runtime = self.app[runtime_key]
            outcome = await runtime.turns.handle(message)  # type: ignore[attr-defined]
            labels = Labels.of(runtime.knowledge.conversation)  # type: ignore[attr-defined]
            for rendered in render_replies(outcome.replies, labels):
                if rendered.get("attachments"):
                    card = rendered["attachments"][0]["content"]
                    reply = MessageFactory.attachment(CardFactory.adaptive_card(card))
                    reply.summary = rendered.get("summary")
                else:
                    reply = MessageFactory.text(rendered["text"])
                await turn_context.send_activity(reply)

    app = web.Application()
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(Config()))
    bot = Bot(app)

    async def messages(request: web.Request) -> web.StreamResponse:
        return await adapter.process(request, bot)  # type: ignore[no-any-return]

    async def runtime(app: web.Application) -> Any:
        async with open_runtime(settings) as opened:
            app[runtime_key] = opened
            yield

    app.cleanup_ctx.append(runtime)
    app.router.add_post("/api/messages", messages)
    return app


# ---- the load, in this process ----------------------------------------------------------------


def activity(
    service_url: str,
    *,
    activity_id: str,
    conversation: str,
    user: str,
    text: str,
    value: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A personal-chat message activity as Teams sends it (a card click when ``value`` is set)."""
    body: dict[str, Any] = {
        "type": "message",
        "id": activity_id,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "timestamp": "2025-03-04T09:15:02.123Z",
        "from": {"id": f"29:{user}", "name": f"User {user}", "aadObjectId": f"aad-{user}"},
        "recipient": BOT,
        "conversation": {
            "id": f"a:{conversation}",
            "conversationType": "personal",
            "tenantId": "tenant",
        },
        "text": text,
        "locale": "en-US",
        "entities": [{"type": "clientInfo", "locale": "en-US", "platform": "Web"}],
    }
    if value is not None:
        body["value"] = value
    return body


def _activity(service_url: str, user: int, turn: int, round_: int) -> dict[str, Any]:
    text, value = SCRIPT[turn % len(SCRIPT)]
    return activity(
        service_url,
        activity_id=f"m-{round_}-{user}-{turn}",
        conversation=f"conversation-{round_}-{user}",
        user=f"user-{user}",
        text=text,
        value=value,
    )


async def _drive(
    *,
    url: str,
    service_url: str,
    users: int,
    turns_each: int,
    round_: int,
    token: str | None,
) -> None:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connector = aiohttp.TCPConnector(limit=users)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def user(number: int) -> None:
            for turn in range(turns_each):
                body = json.dumps(_activity(service_url, number, turn, round_))
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status not in (200, 201):
                        raise RuntimeError(f"HTTP {response.status}: {await response.text()}")

        await asyncio.gather(*(user(number) for number in range(users)))


async def _run_server_variant(variant: str, turns: int, users: int) -> tuple[float, float]:
    connector = await FakeBotConnector(record=False).start()
    issuer = await FakeOpenIdIssuer().start()
    token = issuer.token(APP_ID, connector.url) if variant == "auth" else None
    with tempfile.TemporaryDirectory() as folder:
        child = subprocess.Popen(  # noqa: S603 - this very script, with our own arguments
            [sys.executable, __file__, "--serve", variant, f"{folder}/bot.db", issuer.metadata_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            assert child.stdout is not None
            port = int(await asyncio.to_thread(child.stdout.readline))
            url = f"http://127.0.0.1:{port}/api/messages"
            await _drive(  # warm up
                url=url,
                service_url=connector.url,
                users=users,
                turns_each=len(SCRIPT) * 2,
                round_=0,
                token=token,
            )
            turns_each = max(turns // users, 1)
            cpu_before, started = cpu_seconds(child.pid), time.perf_counter()
            await _drive(
                url=url,
                service_url=connector.url,
                users=users,
                turns_each=turns_each,
                round_=1,
                token=token,
            )
            elapsed = time.perf_counter() - started
            cpu = cpu_seconds(child.pid) - cpu_before
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=30)
    await connector.close()
    await issuer.close()
    done = turns_each * users
    return done / elapsed, cpu / done * 1000


async def in_process_turns(
    script: list[tuple[str, dict[str, str] | None]],
    *,
    turns: int,
    seconds: float = float("inf"),
    render: bool = True,
) -> tuple[list[float], float]:
    """Each turn's seconds (``turns`` of them, or fewer if ``seconds`` run out) of users going
    through ``script`` in new conversations, through ``Turns.handle`` with the SQLite store and
    no HTTP (and rendered as Teams cards if ``render``), after a warm-up; and the CPU seconds
    they took."""
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(
            {"DATABASE_URL": f"sqlite+aiosqlite:///{folder}/bot.db"}, env_file=None
        )
        async with open_runtime(settings) as runtime:
            labels = Labels.of(runtime.knowledge.conversation)

            async def run(count: int, round_: int, until: float) -> list[float]:
                times = []
                for number in range(count):
                    if time.perf_counter() > until:
                        break
                    text, value = script[number % len(script)]
                    message = Message(
                        text=text,
                        value=value,
                        user_id="u",
                        conversation_id=f"c-{round_}-{number // len(script)}",
                        platform="msteams",
                    )
                    started = time.perf_counter()
                    outcome = await runtime.turns.handle(message)
                    if render:
                        json.dumps(render_replies(outcome.replies, labels))
                    times.append(time.perf_counter() - started)
                return times

            await run(len(script) * 4, 0, float("inf"))
            cpu_before = time.process_time()
            times = await run(turns, 1, time.perf_counter() + seconds)
            cpu = time.process_time() - cpu_before
    return times, cpu


async def _run_turn_only(turns: int) -> tuple[float, float]:
    times, cpu = await in_process_turns(SCRIPT, turns=turns)
    return len(times) / sum(times), cpu / len(times) * 1000


LABELS = {
    "plain": "(a) plain CloudAdapter + ActivityHandler",
    "ours": "(b) ours (CloudAdapter, cached clients), local",
    "auth": "(b) ours, JWT validated on every request",
    "turn": "    the turn alone (no HTTP), for reference",
}


async def _main(args: argparse.Namespace) -> None:
    print(f"{args.turns} turns, {args.users} concurrent users, {os.cpu_count()} CPUs")
    for variant in args.variants.split(","):
        if variant == "turn":
            rate, cpu_ms = await _run_turn_only(args.turns)
        else:
            rate, cpu_ms = await _run_server_variant(variant, args.turns, args.users)
        print(f"{LABELS[variant]:<46} {rate:7.0f} turns/s  {cpu_ms:6.2f} ms CPU/turn (bot)")


def main() -> None:
    """Parse the arguments and run the benchmark (or, with --serve, be the bot)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--turns", type=int, default=1200)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--variants", default="plain,ours,auth,turn")
    parser.add_argument("--serve", nargs=3, metavar=("VARIANT", "DATABASE", "METADATA_URL"))
    args = parser.parse_args()
    if args.serve:
        _serve(*args.serve)
        return
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
