"""The one benchmark: our Teams and Slack endpoints side by side with the stack's baselines, in
one run on 127.0.0.1, and the in-process costs under them, each figure beside its target
(issue 11).

Each server runs alone in a child process (its CPU and RSS read from /proc); this process is the
load generator (an aiohttp client, ``--connections`` keep-alive connections, each phase
``--seconds`` long) and the fakes the replies go to:

  (a) a bare aiohttp POST handler: the floor of the stack
  (b) botbuilder's stock echo bot: CloudAdapter, ActivityHandler, local mode, replies to a fake
      Bot Connector
  (c) bolt's echo app: AsyncApp acking, then replying with say() to a fake Slack Web API
  (d) our /api/messages (create_app, local mode, SQLite): "help" turns, then real conversations
      (a pasted bounce, two card clicks, the steps, "it worked") with replies to the fake connector
  (e) our /slack/events the same conversations as signed DM events, replies to the fake Web API

Slack acknowledges before it works, so for (c) and (e) the clients post events as fast as the
acks come back (a burst, as in an outage), and what counts is the replies reaching the fake Web
API: replies/s, and when the last one came after the burst ended. A conversation's next turn is
sent only once its previous one was answered (as a person would); until then its client starts
a new conversation. Then, with no HTTP: one turn with the SQLite store, the reader, the language
layer, and the RSS of a process after 10,000 conversations.

Run: ``python benchmarks/run.py [--seconds 6] [--connections 32] [--conversations 10000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.signature import SignatureVerifier

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks import language as language_bench
from benchmarks import reader as reader_bench
from benchmarks import servers
from benchmarks import teams as teams_bench
from benchmarks.harness import (
    Child,
    Phase,
    Request,
    ServerFailed,
    child,
    cpu_seconds,
    load,
    median,
    percentile,
    process_age,
    rss_mb,
    serve_here,
)
from benchmarks.slack_wire import SECRET, FakeWebAPI, signed_event
from knowledge.ndr import read_bounce
from tests.fakes.bot_connector import FakeBotConnector

SERVERS = servers.__file__
BOUNCE = servers.BOUNCE
Script = list[tuple[str, dict[str, str] | None]]
HELP: Script = [("help", None)]
ECHO: Script = [("hello", None)]
# A pasted 5.7.12 bounce (a mailbox), answered by card clicks: an admin, a shared mailbox; the
# steps come; "it worked".
TEAMS_CONVERSATION: Script = [
    (BOUNCE, None),
    ("", {"slot": "role", "answer": "admin"}),
    ("", {"slot": "recipient_type", "answer": "shared_mailbox"}),
    ("", {"slot": "fixed", "answer": "yes"}),
]
# The same in words, as a Slack user types the answers.
SLACK_CONVERSATION = [BOUNCE, "admin", "shared mailbox", "it worked"]


# ---- what one row measured --------------------------------------------------------------------


@dataclass
class Row:
    """One server under one load."""

    label: str
    phase: Phase
    cpu: float  # the server's CPU seconds over the phase (and, for Slack, its drain)
    rss_before: float
    rss_after: float
    replies: int  # replies that reached the fake
    reply_seconds: float  # from the phase's start to the last reply
    slack: bool = False
    expected: int = 0  # replies the burst asked for (Slack)
    last_after_end: float = float("nan")  # seconds from the burst's end to the last reply

    @property
    def cpu_ms(self) -> float:
        """The server's CPU per request, in ms."""
        return self.cpu / self.phase.requests * 1000 if self.phase.requests else float("nan")

    @property
    def reply_rate(self) -> float:
        """Replies per second, over the time they took to arrive."""
        return self.replies / self.reply_seconds if self.reply_seconds > 0 else 0.0

    @property
    def rate(self) -> float:
        """What the ratios compare: requests/s for Teams, replies/s for Slack."""
        return self.reply_rate if self.slack else self.phase.rate


# ---- traffic: what each client sends next -----------------------------------------------------


class TeamsTraffic:
    """Each client goes through ``script`` in one new conversation after another."""

    def __init__(self, service_url: str, script: Script, prefix: str) -> None:
        self.service_url = service_url
        self.script = script
        self.prefix = prefix
        self.sent: dict[int, int] = {}

    def __call__(self, client: int) -> Request:
        number = self.sent.get(client, 0)
        self.sent[client] = number + 1
        text, value = self.script[number % len(self.script)]
        conversation = number // len(self.script)
        activity = teams_bench.activity(
            self.service_url,
            activity_id=f"{self.prefix}-{client}-{number}",
            conversation=f"{self.prefix}-{client}-{conversation}",
            user=f"{self.prefix}-{client}-{conversation}",
            text=text,
            value=value,
        )
        return json.dumps(activity).encode(), {"Content-Type": "application/json"}


@dataclass
class _Conversation:
    channel: str
    user: str
    sent: int = 0  # turns sent
    answered_at: int = 0  # the channel's reply count once the last turn sent is answered


@dataclass
class SlackTraffic:
    """Signed DM events: each client sends a conversation's next turn once its previous turn's
    replies (``replies[turn]`` of them) reached the fake, and starts a new one when none is
    ready; ``expected`` counts the replies asked for so far."""

    fake: FakeWebAPI
    script: Sequence[str]
    replies: Sequence[int]
    prefix: str
    verifier: SignatureVerifier = field(default_factory=lambda: SignatureVerifier(SECRET))
    expected: int = 0
    events: int = 0
    _open: dict[int, list[_Conversation]] = field(default_factory=dict)
    _started: dict[int, int] = field(default_factory=dict)

    def __call__(self, client: int) -> Request:
        mine = self._open.setdefault(client, [])
        ready = next((c for c in mine if self.fake.by_channel[c.channel] >= c.answered_at), None)
        if ready is None:
            number = self._started.get(client, 0)
            self._started[client] = number + 1
            name = f"{self.prefix}{client:03d}X{number:07d}"
            ready = _Conversation(channel=f"D{name}", user=f"U{name}")
            mine.append(ready)
        turn = ready.sent
        ready.sent += 1
        ready.answered_at += self.replies[turn]
        self.expected += self.replies[turn]
        if ready.sent == len(self.script):
            mine.remove(ready)
        self.events += 1
        return signed_event(
            self.verifier,
            event_id=f"Ev{self.prefix}{self.events:010d}",
            user=ready.user,
            channel=ready.channel,
            text=self.script[turn],
            ts=f"1700000000.{self.events:06d}",
        )


# ---- the servers ------------------------------------------------------------------------------


@dataclass
class Fakes:
    """What the servers reply to, in this process."""

    connector: FakeBotConnector
    web_api: FakeWebAPI
    api_url: str


@contextlib.asynccontextmanager
async def fakes() -> AsyncIterator[Fakes]:
    """The fake Bot Connector and the fake Slack Web API, on free ports of 127.0.0.1."""
    connector = await FakeBotConnector(record=False).start()
    web_api = FakeWebAPI()
    runner, url = await serve_here(web_api.app())
    try:
        yield Fakes(connector, web_api, f"{url}/api/")
    finally:
        await runner.cleanup()
        await connector.close()


@contextlib.asynccontextmanager
async def server(kind: str, api_url: str) -> AsyncIterator[Child]:
    """One of servers.py's servers in its own process, with its own SQLite file."""
    with tempfile.TemporaryDirectory() as folder:
        async with child(kind, [SERVERS, kind, f"{folder}/bot.db", api_url]) as started:
            yield started


async def teams_phase(
    started: Child,
    key: str,
    label: str,
    script: Script,
    fakes: Fakes,
    *,
    seconds: float,
    connections: int,
) -> Row:
    """Warm up, then load a Teams-shaped server with ``script`` for ``seconds``."""
    url = f"http://127.0.0.1:{started.port}/api/messages"
    rss_before = rss_mb(started.pid)
    replies_before = fakes.connector.attempts
    warm = await load(
        url,
        TeamsTraffic(fakes.connector.url, script, f"warm{key}"),
        connections=connections,
        seconds=min(1.5, seconds / 4),
    )
    started.check_alive()
    if not warm.requests:
        raise ServerFailed(f"{label}: no request answered in the warm-up ({warm.first_error})")
    if started.name != "bare" and fakes.connector.attempts == replies_before:
        raise ServerFailed(f"{label}: no reply reached the fake Bot Connector in the warm-up")
    replies_before, cpu_before = fakes.connector.attempts, cpu_seconds(started.pid)
    phase = await load(
        url,
        TeamsTraffic(fakes.connector.url, script, key),
        connections=connections,
        seconds=seconds,
    )
    started.check_alive()
    return Row(
        label,
        phase,
        cpu=cpu_seconds(started.pid) - cpu_before,
        rss_before=rss_before,
        rss_after=rss_mb(started.pid),
        replies=fakes.connector.attempts - replies_before,
        reply_seconds=phase.seconds,
    )


async def _calibrate(url: str, fakes: Fakes, script: Sequence[str], label: str) -> list[int]:
    """Replies per turn of ``script``, from conversations held one turn at a time (the second's
    counts, the first being the warm-up)."""
    api = fakes.web_api
    verifier = SignatureVerifier(SECRET)
    counts: list[int] = []
    async with aiohttp.ClientSession() as session:
        for round_ in range(2):
            counts = []
            channel = f"DCALIBRATE{round_}"
            for turn, text in enumerate(script):
                before = api.by_channel[channel]
                body, headers = signed_event(
                    verifier,
                    event_id=f"EvCalibrate{round_}x{turn}",
                    user=f"UCALIBRATE{round_}",
                    channel=channel,
                    text=text,
                    ts=f"1600000000.{round_}{turn:05d}",
                )
                async with session.post(url, data=body, headers=headers) as response:
                    if response.status != 200:
                        raise ServerFailed(f"{label}: HTTP {response.status} to an event")
                try:
                    async with asyncio.timeout(30):
                        while api.by_channel[channel] == before:
                            await asyncio.sleep(0.01)
                except TimeoutError:
                    raise ServerFailed(
                        f"{label}: no reply reached the fake Web API within 30 s of turn {turn}"
                    ) from None
                seen = -1
                while seen != api.by_channel[channel]:  # until it has been quiet a while
                    seen = api.by_channel[channel]
                    await asyncio.sleep(0.15)
                counts.append(seen - before)
    return counts


async def slack_phase(
    started: Child,
    key: str,
    label: str,
    script: Sequence[str],
    fakes: Fakes,
    *,
    seconds: float,
    connections: int,
    drain: float,
) -> Row:
    """Calibrate (which warms up), then a burst of ``seconds``, then wait for its replies (for
    ``drain`` seconds at most after the burst's end)."""
    url = f"http://127.0.0.1:{started.port}/slack/events"
    rss_before = rss_mb(started.pid)
    replies = await _calibrate(url, fakes, script, label)
    started.check_alive()
    api = fakes.web_api
    traffic = SlackTraffic(api, script, replies, prefix=key.upper())
    posts_before, cpu_before = api.posts, cpu_seconds(started.pid)
    burst_start = time.perf_counter()
    phase = await load(url, traffic, connections=connections, seconds=seconds)
    burst_end = time.perf_counter()
    while api.posts - posts_before < traffic.expected:
        now = time.perf_counter()
        quiet = now - max(api.last_post, burst_end)
        if now - burst_end > drain or quiet > 5 or started.process.poll() is not None:
            break  # the rest is not coming (in time)
        await asyncio.sleep(0.02)
    started.check_alive()
    delivered = api.posts - posts_before
    return Row(
        label,
        phase,
        cpu=cpu_seconds(started.pid) - cpu_before,
        rss_before=rss_before,
        rss_after=rss_mb(started.pid),
        replies=delivered,
        reply_seconds=(api.last_post - burst_start) if delivered else 0.0,
        slack=True,
        expected=traffic.expected,
        last_after_end=(api.last_post - burst_end) if delivered else float("nan"),
    )


@dataclass(frozen=True)
class Part:
    """One phase of the table: which server, under what."""

    key: str
    server: str  # a kind of servers.py
    label: str
    teams: Script = field(default_factory=list)  # for a Teams-shaped server
    slack: Sequence[str] = ()  # for a Slack one


TABLE = (
    Part("a", "bare", "(a) bare aiohttp POST", teams=ECHO),
    Part("b", "teams-echo", "(b) botbuilder CloudAdapter echo", teams=ECHO),
    Part("c", "bolt-echo", "(c) bolt AsyncApp echo", slack=["hello"]),
    Part("d-help", "ours-teams", '(d) ours /api/messages "help"', teams=HELP),
    Part("d-bounce", "ours-teams", "(d) ours /api/messages bounce", teams=TEAMS_CONVERSATION),
    Part("e", "ours-slack", "(e) ours /slack/events bounce", slack=SLACK_CONVERSATION),
)


async def run_servers(
    args: argparse.Namespace, only: set[str], say: Callable[[str], None]
) -> dict[str, Row]:
    """Each server in turn, alone, on loopback, under its loads: the rows by key."""
    rows: dict[str, Row] = {}
    sizes: dict[str, Any] = {"seconds": args.seconds, "connections": args.connections}
    async with fakes() as fake:
        for kind in dict.fromkeys(part.server for part in TABLE):
            parts = [part for part in TABLE if part.server == kind and part.key in only]
            if not parts:
                continue
            say(f"  {kind} ...")
            async with server(kind, fake.api_url) as started:
                for part in parts:
                    prefix = part.key.replace("-", "")  # each phase's conversations are new
                    if part.slack:
                        rows[part.key] = await slack_phase(
                            started, prefix, part.label, part.slack, fake, drain=args.drain, **sizes
                        )
                    else:
                        rows[part.key] = await teams_phase(
                            started, prefix, part.label, part.teams, fake, **sizes
                        )
    return rows


PARTS = {part.key for part in TABLE} | {"in-process"}


# ---- in-process figures -----------------------------------------------------------------------


@dataclass
class InProcess:
    """The costs under the servers, without HTTP."""

    turn_ms: list[float] = field(default_factory=list)
    reader: dict[str, tuple[int, list[float]]] = field(default_factory=dict)  # bytes, seconds
    language_ms: list[float] = field(default_factory=list)
    conversations: dict[str, Any] = field(default_factory=dict)


async def in_process(
    args: argparse.Namespace, deadline: float, say: Callable[[str], None]
) -> InProcess:
    """The turn, the reader, the language layer, here; the 10,000 conversations in a child."""
    found = InProcess()
    say("  one turn in process ...")
    times, _ = await teams_bench.in_process_turns(
        TEAMS_CONVERSATION, turns=args.turns, seconds=args.seconds, render=False
    )
    found.turn_ms = [t * 1000 for t in times]
    say("  reader ...")
    for name, data, runs in (
        ("text", reader_bench.typical_text(), args.reader_runs),
        ("eml", reader_bench.typical_eml(), args.reader_runs),
        ("1mb", reader_bench.big_paste(), max(args.reader_runs // 40, 2)),
    ):
        found.reader[name] = (len(data), reader_bench.measure(read_bounce, data, runs))
    say("  language layer ...")
    runs = max(args.reader_runs // 10, 1)
    found.language_ms = [t * 1000 for t in language_bench.message_times(runs)]
    say(f"  {args.conversations:,} conversations in a child process ...")
    with tempfile.TemporaryDirectory() as folder:
        # What is left of the run's budget (once the child has started and the report is
        # printed), so the whole benchmark stays within it on a slow or busy machine.
        seconds = max(10.0, deadline - time.perf_counter() - 15)
        budget = f"{args.conversations}:{seconds:.0f}"
        async with child(
            "conversations",
            [SERVERS, "conversations", f"{folder}/bot.db", budget],
            start_seconds=seconds + 120,
        ) as done:
            found.conversations = json.loads(done.first_line)
    return found


# ---- the report -------------------------------------------------------------------------------


def _f(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


@dataclass(frozen=True)
class Target:
    """One of the issue's targets, and the figure measured for it."""

    name: str
    figure: str  # as printed
    value: float
    limit: float
    at_least: bool  # the figure must be >= limit (else < limit)

    @property
    def verdict(self) -> str:
        """Met, or missed by how much."""
        if math.isnan(self.value):
            return "not measured"
        if self.value >= self.limit if self.at_least else self.value < self.limit:
            return "met"
        if not self.at_least:
            return f"MISSED by {self.value / self.limit:.1f}x"
        if self.value <= 0:
            return "MISSED: nothing measured"
        return f"MISSED: {self.value / self.limit:.0%} of it (needs {self.limit / self.value:.1f}x)"


def _server_lines(rows: dict[str, Row]) -> list[str]:
    lines = [
        f"{'server':<34} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU ms/req':>10} "
        f"{'RSS MB before>after':>19} {'replies':>9} {'replies/s':>9} {'last reply':>10} "
        f"{'errors':>6}"
    ]
    for row in rows.values():
        phase = row.phase
        last = f"+{_f(row.last_after_end)} s" if row.slack else ""
        replies = f"{row.replies}/{row.expected}" if row.slack else str(row.replies)
        rss = f"{row.rss_before:.0f} > {row.rss_after:.0f}"
        lines.append(
            f"{row.label:<34} {_f(phase.rate, 0):>8} "
            f"{_f(percentile(phase.latencies, 0.5) * 1000):>7} "
            f"{_f(percentile(phase.latencies, 0.99) * 1000):>7} {_f(row.cpu_ms, 2):>10} "
            f"{rss:>19} {replies:>9} {_f(row.reply_rate, 0):>9} {last:>10} {phase.errors:>6}"
        )
        if phase.errors:
            lines.append(f"    first error: {phase.first_error}")
    lines += [
        "  req/s: requests answered (Slack: events acked); p50/p99: their latency; CPU: the",
        "  server's; replies: reaching the fake (Slack: delivered/asked for by the burst, and",
        "  the last one's time after the burst's end)",
    ]
    ours = [key for key in ("d-help", "d-bounce", "e") if key in rows]
    bases = [key for key in ("a", "b", "c") if key in rows and rows[key].rate]
    if ours and bases:
        lines += ["", "ratios (Teams rows: requests/s; Slack rows: replies/s)"]
        lines.append(f"{'':<34}" + "".join(f"{'vs ' + rows[b].label[:3]:>10}" for b in bases))
        for key in ours:
            cells = "".join(f"{rows[key].rate / rows[b].rate:>9.2f}x" for b in bases)
            lines.append(f"{rows[key].label:<34}{cells}")
    return lines


def _server_targets(rows: dict[str, Row]) -> list[Target]:
    targets = []
    for key, base, limit in (("d-help", "b", 12), ("d-bounce", "b", 6), ("d-bounce", "c", 1),
                             ("e", "c", 0.8)):  # fmt: skip
        if key in rows and base in rows and rows[base].rate:
            value = rows[key].rate / rows[base].rate
            name = f"{rows[key].label[:3]} {rows[key].label.split()[-1]} >= {limit:g}x ({base})"
            targets.append(Target(name, f"{value:.2f}x", value, limit, at_least=True))
    if "e" in rows:
        e = rows["e"]
        p99 = percentile(e.phase.latencies, 0.99) * 1000
        targets.append(Target("(e) Slack ack p99 < 50 ms", f"{p99:.1f} ms", p99, 50, False))
        # A reply never delivered is as late as can be.
        late = e.last_after_end if e.replies >= e.expected else float("inf")
        shown = f"{e.replies}/{e.expected}, +{_f(e.last_after_end)} s"
        targets.append(Target("(e) every reply within 10 s of the burst", shown, late, 10, False))
    return targets


def _in_process_lines(found: InProcess, asked: int) -> tuple[list[str], list[Target]]:
    turn = median(found.turn_ms)
    size, times = found.reader["text"]
    text_rate = size / median(times) / 1e6
    eml_size, eml_times = found.reader["eml"]
    eml = median(eml_times) * 1000
    big = median(found.reader["1mb"][1]) * 1000
    runs = found.conversations
    points = runs["rss"]
    (warm_count, warm_rss), (last_count, last_rss) = points[0], points[-1]
    lines = [
        f"one turn in process (SQLite, no HTTP, {len(found.turn_ms)} turns): "
        f"median {turn:.2f} ms, p99 {percentile(found.turn_ms, 0.99):.2f} ms",
        f"reader: {size / 1024:.0f} KB bounce text {text_rate:.1f} MB/s "
        f"(median {median(times) * 1000:.2f} ms); {eml_size / 1024:.1f} KB .eml median "
        f"{eml:.2f} ms, p99 {percentile(eml_times, 0.99) * 1000:.2f} ms; "
        f"1 MB paste median {big:.1f} ms",
        f"language layer, one message ({len(found.language_ms)} reads): median "
        f"{median(found.language_ms):.3f} ms, p99 {percentile(found.language_ms, 0.99):.3f} ms",
        f"RSS of one process through {runs['done']:,} conversations (a pasted bounce each, "
        f"SQLite, {runs['seconds']:.0f} s): imported {runs['imported']:.0f} MB, runtime open "
        f"{runs['opened']:.0f} MB, then "
        + ", ".join(f"{count:,}: {mb:.0f} MB" for count, mb in points),
    ]
    if runs["done"] < asked:
        lines.append(f"    stopped by the time budget after {runs['done']:,} of {asked:,}")
    growth = last_rss - warm_rss
    targets = [
        Target("one turn in process, median < 1 ms", f"{turn:.2f} ms", turn, 1, False),
        Target("reader >= 50 MB/s on bounce text", f"{text_rate:.1f} MB/s", text_rate, 50, True),
        Target("reader: 1 MB paste < 20 ms", f"{big:.1f} ms", big, 20, False),
        Target("reader: 7 KB .eml < 1 ms", f"{eml:.2f} ms", eml, 1, False),
        Target(f"RSS < 150 MB after {last_count:,} conversations", f"{last_rss:.0f} MB",
               last_rss, 150, False),
        Target(f"RSS flat after warm-up ({warm_count:,} to {last_count:,}): < +10%",
               f"+{growth:.1f} MB", growth / warm_rss, 0.10, False),
    ]  # fmt: skip
    return lines, targets


def report(
    rows: dict[str, Row], found: InProcess | None, asked: int, say: Callable[[str], None]
) -> None:
    """The tables: servers and ratios, in-process figures, and the targets."""
    lines = ["", *_server_lines(rows)]
    targets = _server_targets(rows)
    if found is not None:
        more, found_targets = _in_process_lines(found, asked)
        lines += ["", *more]
        targets += found_targets
    if targets:
        lines += ["", f"{'target':<58} {'figure':>18}  verdict"]
        lines += [f"{t.name:<58} {t.figure:>18}  {t.verdict}" for t in targets]
    for line in lines:
        say(line)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The benchmark's arguments (``--only`` a set)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each load phase")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--drain", type=float, default=20.0, help="max wait for Slack replies")
    parser.add_argument("--turns", type=int, default=3000, help="in-process turns at most")
    parser.add_argument("--reader-runs", type=int, default=200, help="reads of each message")
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument(
        "--budget", type=float, default=270.0, help="seconds for the whole run, at most"
    )
    parser.add_argument(
        "--only",
        default=",".join(sorted(PARTS)),
        help="what to run, of: " + ",".join(sorted(PARTS)),
    )
    args = parser.parse_args(argv)
    args.only = set(args.only.split(","))
    if args.only - PARTS:
        parser.error(f"--only: unknown {', '.join(sorted(args.only - PARTS))}")
    return args


def main() -> None:
    """Parse the arguments and run the benchmark."""
    try:
        asyncio.run(run(parse_args()))
    except ServerFailed as error:
        sys.exit(f"benchmark stopped: {error}")


async def run(args: argparse.Namespace) -> tuple[dict[str, Row], InProcess | None]:
    """The whole benchmark, printed as it goes; its figures."""
    started = time.perf_counter() - process_age()  # the imports count too
    say = print
    load1, load5, _ = os.getloadavg()
    say(
        f"side-by-side benchmark: {os.cpu_count()} CPUs (load average {load1:.1f}, {load5:.1f}), "
        f"127.0.0.1, {args.connections} connections, {args.seconds:g} s per phase"
    )
    rows = await run_servers(args, args.only, say)
    wanted = "in-process" in args.only
    found = await in_process(args, started + args.budget, say) if wanted else None
    report(rows, found, args.conversations, say)
    say("")
    say(f"total time: {time.perf_counter() - started:.0f} s")
    return rows, found


if __name__ == "__main__":
    main()
