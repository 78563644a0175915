"""Benchmark of one in-process turn: ``Turns.handle`` with the SQLite file store, no HTTP.

The runtime is the bot's own (``open_runtime``: knowledge base, language layer, store, ticket
desk). Two kinds of conversation, each a new one every time: a "help" turn, and the admin's
(a pasted 5.7.12 bounce, "I'm the admin", the recipient's type, the steps, "it worked"). Prints
the median and 99th percentile per turn, the CPU per turn, and where a turn's time goes: the
dialogs (of which the language layer) and the rest (the store and the thin bot around it).
With ``--profile`` (pyinstrument installed), prints the profile of the admin conversations.

Run: ``python benchmarks/turn.py [--conversations 300] [--profile]``
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import bot.turns
from bot.config import load_settings
from bot.runtime import Runtime, open_runtime
from dialogs.messages import Message
from dialogs.reading import Expectation, Reading, Understanding

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"
BOUNCE = (CORPUS / "en-new-5712-mailbox.txt").read_text(encoding="utf-8")
ADMIN = (BOUNCE, "I'm the admin", "a shared mailbox", "it worked")
HELP = ("help",)


class Clock:
    """Seconds spent in one part of the turn, summed over the turns measured."""

    def __init__(self) -> None:
        self.seconds = 0.0


class TimedUnderstanding:
    """The language layer, with the time its reads take added to a clock."""

    def __init__(self, inner: Understanding, clock: Clock) -> None:
        self.inner = inner
        self.clock = clock

    def read(self, text: str, expecting: Expectation | None = None) -> Reading:
        started = time.perf_counter()
        try:
            return self.inner.read(text, expecting)
        finally:
            self.clock.seconds += time.perf_counter() - started


def _timed(function: Callable[..., Awaitable[Any]], clock: Clock) -> Callable[..., Awaitable[Any]]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await function(*args, **kwargs)
        finally:
            clock.seconds += time.perf_counter() - started

    return timed


def _percentile(times: list[float], share: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def _conversations(
    runtime: Runtime, script: tuple[str, ...], count: int, name: str
) -> list[float]:
    """Run ``count`` new conversations of ``script``; the seconds of each turn."""
    times: list[float] = []
    for number in range(count):
        for text in script:
            message = Message(
                text=text,
                user_id=f"{name}-user-{number}",
                conversation_id=f"{name}-{number}",
                platform="msteams",
            )
            started = time.perf_counter()
            outcome = await runtime.turns.handle(message)
            times.append(time.perf_counter() - started)
            if outcome.failed:
                raise RuntimeError(f"a turn failed: {text[:40]!r}")
    return times


async def _measure(runtime: Runtime, script: tuple[str, ...], count: int, name: str) -> None:
    dialogs, language = Clock(), Clock()
    turns = runtime.turns
    plain_context = turns.context
    plain_handle_turn = bot.turns.handle_turn
    assert plain_context.understanding is not None
    turns.context = dataclasses.replace(
        plain_context, understanding=TimedUnderstanding(plain_context.understanding, language)
    )
    bot.turns.handle_turn = _timed(plain_handle_turn, dialogs)  # type: ignore[assignment]
    try:
        cpu = time.process_time()
        times = await _conversations(runtime, script, count, name)
        cpu = time.process_time() - cpu
    finally:
        turns.context = plain_context
        bot.turns.handle_turn = plain_handle_turn
    total = sum(times)
    ms = 1000 / len(times)
    print(
        f"{name:<6} {len(times):5d} turns: median {statistics.median(times) * 1000:6.3f} ms, "
        f"p99 {_percentile(times, 0.99) * 1000:6.3f} ms, CPU {cpu * ms:6.3f} ms/turn; "
        f"dialogs {dialogs.seconds * ms:.3f} ms (language layer {language.seconds * ms:.3f} ms), "
        f"store and the rest {(total - dialogs.seconds) * ms:.3f} ms"
    )


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(
            {"DATABASE_URL": f"sqlite+aiosqlite:///{folder}/bot.db", "LOG_LEVEL": "WARNING"},
            env_file=None,
        )
        async with open_runtime(settings) as runtime:
            await _conversations(runtime, ADMIN, 20, "warm")  # lazy loads, caches, the file
            await _conversations(runtime, HELP, 20, "warm-help")
            if args.profile:
                from pyinstrument import Profiler  # noqa: PLC0415 - optional, for --profile

                with Profiler(interval=0.0002, async_mode="enabled") as profiler:
                    await _conversations(runtime, ADMIN, args.conversations, "profile")
                print(profiler.output_text(unicode=False, color=False, show_all=False))
                return
            await _measure(runtime, HELP, args.conversations, "help")
            await _measure(runtime, ADMIN, args.conversations, "admin")


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--conversations", type=int, default=300, help="of each kind")
    parser.add_argument("--profile", action="store_true", help="pyinstrument's profile instead")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
