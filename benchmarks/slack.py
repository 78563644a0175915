"""Benchmark of a Slack direct-message turn, end to end over real HTTP.

The whole app runs (``create_app``, SQLite in a temporary file) with a minimal fake Slack Web API
on 127.0.0.1. Each turn is one signed ``message.im`` event posted to /slack/events; the turn is
done when the bot's ``chat.postMessage`` reaches the fake. Prints turns per second, one at a time
and with several users at once, and the time Slack waits for its acknowledgement.

Run: ``python benchmarks/slack.py [--turns N] [--users U]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from slack_sdk.signature import SignatureVerifier

from benchmarks.harness import serve_here
from benchmarks.slack_wire import SECRET, TOKEN, FakeWebAPI, signed_event
from bot.app import create_app
from bot.config import load_settings

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"
BOUNCE = (CORPUS / "en-new-5712-mailbox.txt").read_text(encoding="utf-8")


class Driver:
    """Posts signed DM events and waits for the bot's answers."""

    def __init__(self, bot_url: str, fake: FakeWebAPI, session: aiohttp.ClientSession) -> None:
        self.bot_url = bot_url
        self.fake = fake
        self.session = session
        self.verifier = SignatureVerifier(SECRET)
        self.acks: list[float] = []
        self.events = 0

    async def turn(self, user: int, text: str) -> None:
        self.events += 1
        channel = f"D{user:08d}"
        body, headers = signed_event(
            self.verifier,
            event_id=f"Ev{self.events:012d}",
            user=f"U{user:08d}",
            channel=channel,
            text=text,
            ts=f"1700000000.{self.events:06d}",
        )
        answered = asyncio.get_running_loop().create_future()
        self.fake.waiting[channel] = answered
        started = time.perf_counter()
        async with self.session.post(
            f"{self.bot_url}/slack/events", data=body, headers=headers
        ) as response:
            assert response.status == 200, response.status
        self.acks.append(time.perf_counter() - started)
        async with asyncio.timeout(30):
            await answered


async def _run(turns: int, users: int) -> None:
    fake = FakeWebAPI()
    api_runner, api_url = await serve_here(fake.app())
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(
            {
                "DATABASE_URL": f"sqlite+aiosqlite:///{folder}/bench.db",
                "SLACK_BOT_TOKEN": TOKEN,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": f"{api_url}/api/",
                "LOG_LEVEL": "WARNING",
            },
            env_file=None,
        )
        bot_runner, bot_url = await serve_here(create_app(settings))
        try:
            async with aiohttp.ClientSession() as session:
                driver = Driver(bot_url, fake, session)
                await driver.turn(0, BOUNCE)  # warm up: knowledge base, store, connections
                for label, text in (("pasted bounce", BOUNCE), ('"hello"', "hello")):
                    driver.acks.clear()
                    started = time.perf_counter()
                    for n in range(turns):
                        await driver.turn(1_000 + n, text)
                    one = turns / (time.perf_counter() - started)
                    acks = sorted(driver.acks)
                    driver.acks.clear()

                    async def user(number: int, text: str = text) -> None:
                        for n in range(turns // users):
                            await driver.turn(100_000 * (number + 1) + n, text)

                    started = time.perf_counter()
                    await asyncio.gather(*(user(number) for number in range(users)))
                    many = (turns // users) * users / (time.perf_counter() - started)
                    acks_many = sorted(driver.acks)
                    print(
                        f"{label:>14}: {one:6.1f} turns/s one at a time "
                        f"(ack median {statistics.median(acks) * 1000:.1f} ms), "
                        f"{many:6.1f} turns/s with {users} users at once "
                        f"(ack median {statistics.median(acks_many) * 1000:.1f} ms, "
                        f"worst {acks_many[-1] * 1000:.1f} ms)"
                    )
        finally:
            await bot_runner.cleanup()
            await api_runner.cleanup()


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200, help="turns per measurement")
    parser.add_argument("--users", type=int, default=20, help="users talking at once")
    args = parser.parse_args()
    asyncio.run(_run(args.turns, args.users))


if __name__ == "__main__":
    main()
