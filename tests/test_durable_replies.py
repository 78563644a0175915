"""Durable replies (issue 12, finding 4) over real HTTP: a turn answered 201 whose replies then
meet a Bot Connector (or Slack Web API) outage longer than the turn's retry budget. The finding's
probes re-run: 50 Teams turns with a window of 500s then 429s, 10 turns during an outage; and the
same for Slack. Every reply must arrive once, in order per conversation, the first late one after
the line saying why it is late.

The figures are scaled down by ``DURABLE_PROBE_SCALE`` (0.2 by default: the outage, the turn's
budget and the retries' waits all shrink together, so the outage stays longer than the budget);
``DURABLE_PROBE_SCALE=1`` runs the issue's own figures (a 5 s window, a 30 s outage, the
production budget and backoff), and ``-s`` prints "tried N, held N".
"""

from __future__ import annotations

import asyncio
import copy
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.app import RUNTIME
from bot.store import REPLY_JOB, Store
from bot.tickets import TicketTiming
from knowledge.kb import default_knowledge
from tests.fakes.bot_connector import Posted
from tests.fakes.teams_harness import TeamsBot, teams_bot, words
from tests.fakes_slack.harness import SlackBot, settle
from tests.fakes_slack.web_api import FakeSlackWebAPI

SCALE = float(os.environ.get("DURABLE_PROBE_SCALE", "0.2"))
FULL = SCALE >= 1.0
# The job worker: the production pacing for the issue's own figures, else quick.
TIMING = (
    TicketTiming()
    if FULL
    else TicketTiming(poll_seconds=0.05, retry_base_seconds=0.05, retry_cap_seconds=0.5)
)
# What one person says in a row (answers differ from turn to turn, so order shows).
TURNS = ("how do I fix 5.7.12", "I sent the message", "help", "hi", "thanks, bye")
LATE = default_knowledge().conversation.text("reply_late")


@dataclass
class Tally:
    """What a probe found: replies expected (tried), arrived once and in order (held)."""

    tried: int = 0
    held: int = 0
    late_lines: int = 0

    def add(self, expected: Sequence[str], got: Sequence[str]) -> None:
        """One conversation: ``got`` should be ``expected`` with late lines in between."""
        self.tried += len(expected)
        replies = [each for each in got if each != LATE]
        self.late_lines += len(got) - len(replies)
        if replies == list(expected):
            self.held += len(expected)
            return
        have, want = Counter(replies), Counter(expected)
        self.held += sum(n for text, n in want.items() if have[text] == n and replies)

    def report(self, probe: str, kept: int) -> None:
        said = f"replies tried {self.tried}, held {self.held}; {kept} messages kept in the outbox"
        print(f"\n{probe} (scale {SCALE:g}): {said}")


def late_lines_precede_replies(got: Sequence[str]) -> bool:
    """Every late line is followed by a reply (it says the next one is late)."""
    return all(
        k + 1 < len(got) and got[k + 1] != LATE for k, each in enumerate(got) if each == LATE
    )


async def drained(store: Store, done: object, timeout: float) -> None:
    """Wait until the outage is over and the outbox is empty."""
    async with asyncio.timeout(timeout):
        while not (callable(done) and done()) or await store.jobs.ticket_jobs(pending=True):
            await asyncio.sleep(0.05)


async def kept_replies(store: Store) -> int:
    return sum(job.kind == REPLY_JOB for job in await store.jobs.ticket_jobs())


# ---- Teams ------------------------------------------------------------------------------------


def teams_options() -> dict[str, float]:
    """The turn's retries at production values times SCALE (10 s budget, 0.5 s first wait)."""
    return {
        "retry_budget_seconds": 10.0 * SCALE,
        "retry_base_seconds": 0.5 * SCALE,
        "job_retry_budget_seconds": 60.0 * SCALE,
    }


def teams_person(bot: TeamsBot, number: int, text: str) -> dict[str, object]:
    activity = bot.activity(text=text)
    activity["conversation"] = {**activity["conversation"], "id": f"a:durable-{number}"}
    activity["from"] = {**copy.deepcopy(activity["from"]), "id": f"29:person-{number}"}
    return activity


async def teams_talk(bot: TeamsBot, number: int, turns: Sequence[str]) -> list[int]:
    """One person's turns in a row, each after the last was answered; the HTTP statuses."""
    statuses = []
    for text in turns:
        response = await bot.post(teams_person(bot, number, text))
        statuses.append(response.status)
    return statuses


def messages(posted: Sequence[Posted]) -> list[Posted]:
    """What the bot sent but "typing...", in the order the connector took it."""
    return [each for each in posted if each.activity["type"] != "typing"]


def teams_said(posted: Sequence[Posted], number: int) -> list[str]:
    """What the bot said in one person's conversation, in the order the connector took it."""
    conversation = f"a:durable-{number}"
    return [words([each]) for each in messages(posted) if each.conversation_id == conversation]


async def teams_expected(tmp_path: Path, turns: Sequence[str]) -> list[str]:
    """The replies of ``turns`` with nothing failing: what every conversation must read."""
    (tmp_path / "healthy").mkdir()
    async with teams_bot(tmp_path / "healthy", **teams_options()) as bot:
        await teams_talk(bot, 0, turns)
        return teams_said(bot.connector.log, 0)


async def teams_probe(
    tmp_path: Path, people: int, turns: Sequence[str], outage: list[tuple[float, int, str | None]]
) -> tuple[Tally, int, list[int]]:
    expected = await teams_expected(tmp_path, turns)
    (tmp_path / "outage").mkdir()
    async with teams_bot(tmp_path / "outage", ticket_timing=TIMING, **teams_options()) as bot:
        for seconds, status, retry_after in outage:  # from the first reply sent, not from now
            bot.connector.down_from_first_call(seconds, status, retry_after=retry_after)
        talks = [teams_talk(bot, number, turns) for number in range(people)]
        statuses = [status for each in await asyncio.gather(*talks) for status in each]
        store = bot.app[RUNTIME].store
        await drained(store, lambda: bot.connector.outage_over, timeout=20 + 120 * SCALE)
        tally = Tally()
        for number in range(people):
            got = teams_said(bot.connector.log, number)
            assert late_lines_precede_replies(got), got
            tally.add(expected, got)
        return tally, await kept_replies(store), statuses


async def test_50_teams_turns_through_a_window_of_500s_then_429s(tmp_path: Path) -> None:
    window = 5.0 * SCALE
    outage = [(window / 2, 500, None), (window / 2, 429, f"{1.0 * SCALE:g}")]
    tally, kept, statuses = await teams_probe(tmp_path, 10, TURNS, outage)
    tally.report("teams, 50 turns, a window of 500s then 429s", kept)
    assert statuses == [201] * 50
    assert kept > 0, "the window outlasted no turn's budget: the probe proved nothing"
    assert tally.late_lines > 0
    assert tally.held == tally.tried


async def test_10_teams_turns_during_an_outage(tmp_path: Path) -> None:
    outage = [(30.0 * SCALE, 503, None)]
    tally, kept, statuses = await teams_probe(tmp_path, 5, TURNS[:2], outage)
    tally.report("teams, 10 turns during an outage", kept)
    assert statuses == [201] * 10
    assert tally.late_lines == 5  # one per conversation: its first late reply
    assert tally.held == tally.tried


# ---- Slack ------------------------------------------------------------------------------------


def slack_dm(bot: SlackBot, number: int, text: str) -> dict[str, object]:
    return bot.dm(text, user=f"U0PERSON{number:02d}", channel=f"D0DURABLE{number:02d}")


async def slack_talk(
    bot: SlackBot, api: FakeSlackWebAPI, number: int, turns: Sequence[str]
) -> None:
    """One person's DMs in a row, each once the reply before it was posted or kept."""
    for text in turns:
        response = await bot.event(slack_dm(bot, number, text))
        assert response.status == 200
        await settle(bot)


def slack_said(api: FakeSlackWebAPI, number: int) -> list[str]:
    channel = f"D0DURABLE{number:02d}"
    return [
        call.text
        for call in api.of("chat.postMessage")
        if call.ok and call.params.get("channel") == channel
    ]


async def slack_bot(tmp_path: Path, api: FakeSlackWebAPI, name: str) -> SlackBot:
    bot = SlackBot(api, f"sqlite+aiosqlite:///{tmp_path / name}.db", timing=TIMING)
    await bot.start()
    return bot


async def slack_probe(
    tmp_path: Path, people: int, turns: Sequence[str], outage: list[tuple[float, int]]
) -> tuple[Tally, int]:
    healthy_api = FakeSlackWebAPI()
    await healthy_api.start()
    healthy = await slack_bot(tmp_path, healthy_api, "healthy")
    try:
        await slack_talk(healthy, healthy_api, 0, turns)
        expected = slack_said(healthy_api, 0)
    finally:
        await healthy.close()
        await healthy_api.close()
    api = FakeSlackWebAPI()
    await api.start()
    bot = await slack_bot(tmp_path, api, "outage")
    try:
        for seconds, status in outage:
            api.down_for("chat.postMessage", seconds, status, retry_after=1)
        await asyncio.gather(*(slack_talk(bot, api, n, turns) for n in range(people)))
        store = bot.app[RUNTIME].store
        await drained(store, lambda: api.outage_over("chat.postMessage"), timeout=20 + 120 * SCALE)
        tally = Tally()
        for number in range(people):
            got = slack_said(api, number)
            assert late_lines_precede_replies(got), got
            tally.add(expected, got)
        return tally, await kept_replies(store)
    finally:
        await bot.close()
        await api.close()


async def test_slack_replies_through_a_window_of_500s_then_429s(tmp_path: Path) -> None:
    # The 5 s at any scale: slack_sdk's own retries within a turn (a 5xx twice, a 429
    # three times after its whole-second Retry-After) are not scaled, and outlast less.
    window = 5.0
    tally, kept = await slack_probe(tmp_path, 10, TURNS, [(window / 2, 500), (window / 2, 429)])
    tally.report("slack, 50 turns, a window of 500s then 429s", kept)
    assert kept > 0, "the window outlasted no turn's retries: the probe proved nothing"
    assert tally.late_lines > 0
    assert tally.held == tally.tried


async def test_slack_replies_during_an_outage(tmp_path: Path) -> None:
    tally, kept = await slack_probe(tmp_path, 5, TURNS[:2], [(max(30.0 * SCALE, 3.0), 503)])
    tally.report("slack, 10 turns during an outage", kept)
    assert tally.late_lines == 5
    assert tally.held == tally.tried


async def test_a_later_reply_queues_behind_those_waiting_even_once_teams_is_back(
    tmp_path: Path,
) -> None:
    # The worker's retry waits a second or two: long enough for the next turn to come first.
    timing = TicketTiming(poll_seconds=0.05, retry_base_seconds=2.0, retry_cap_seconds=2.0)
    options = {"retry_budget_seconds": 0.3, "job_retry_budget_seconds": 0.2}
    async with teams_bot(tmp_path, ticket_timing=timing, **options) as bot:
        store = bot.app[RUNTIME].store
        bot.connector.down_for(600, 503)
        assert (await bot.post(teams_person(bot, 1, TURNS[0]))).status == 201
        async with asyncio.timeout(10):  # the worker tried the first kept reply once, in vain
            while not any(job.last_error for job in await store.jobs.ticket_jobs(pending=True)):
                await asyncio.sleep(0.02)
        bot.connector.up()
        assert (await bot.post(teams_person(bot, 1, TURNS[1]))).status == 201
        assert not messages(bot.connector.log), "the second turn's reply went ahead of the first's"
        await drained(store, lambda: True, timeout=10)
    got = teams_said(bot.connector.log, 1)
    assert [each.kind for each in messages(bot.connector.log)] == ["send"] * len(got)  # all late
    assert got[0] == LATE
    assert got.count(LATE) == 1
    expected = await teams_expected(tmp_path, TURNS[:2])
    assert got[1:] == expected
