"""Nothing acknowledged is lost (issue 12, "done when"): a burst of Teams turns, Slack events and
escalations against real server processes (``python -m bot serve``), the Bot Connector down for
30 s in the middle, and a server killed with SIGKILL during the burst. After recovery every
acknowledged Teams turn's reply (201) has arrived exactly once, every acknowledged escalation's
ticket exactly once, and every acknowledged Slack question's answer exactly once unless the
killed server was working on it.

One window of the kill is left, and measured here rather than hidden: what the killed server
had sent but not yet marked done is sent again by another run, at least once. A card it had
posted but not marked done is posted again; a Slack turn whose answer it had posted is answered
again, with the same answer (the turn saved with its delivery is not run again, ``bot.turns``).
Neither Slack's chat.postMessage nor the Bot Connector takes an idempotency key, so a send and
its record cannot be made one step. The test reads which deliveries and card posts were tried
more than once (``kept_events.attempts``, ``ticket_jobs.attempts``) and allows a repeat only
there; everything else, and every answer's content, must be exactly once.

On SQLite one server is killed and started again on the same file; on PostgreSQL two servers
share the database, one is killed and the other carries on (then the killed one starts again).
Teams runs in local mode (loopback, no tokens) against a fake Bot Connector; Slack over signed
HTTP against the fake Web API. Every wait is bounded; each run takes about a minute, the 30 s
outage included.

A Teams reply that meets the outage is delivered later only through the durable outbox of
replies (issue 12, item 4): without it those replies are lost and this test says which."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.store import Store
from tests.fakes.bot_connector import FakeBotConnector, Posted
from tests.fakes_slack import BOT_USER_ID, Call, FakeSlackWebAPI
from tests.fakes_slack.harness import corpus
from tests.server_process import (
    POSTGRES_URL,
    ServerProcess,
    SlackSender,
    postgres_database,
    slack_env,
)

PAYLOADS = Path(__file__).resolve().parent / "payloads" / "teams"
ADMINS = "C0ADMINS01"
OUTAGE_SECONDS = 30.0
LEASE_SECONDS = "3"
BOUNCE = corpus("en-new-5712-mailbox.txt")
TEAMS_TEXT = "how do I fix 5.7.12"
SLACK_TEXT = "how do I fix 5.7.12"
_numbers: Iterator[int] = itertools.count(1)


class DownConnector(FakeBotConnector):
    """The fake Bot Connector, which can be down (every activity call 503) for a while."""

    down_until: float = 0.0

    async def _record(self, request: web.Request, kind: str) -> web.Response:
        if time.monotonic() < self.down_until:
            self.attempts += 1
            await request.read()
            return web.json_response({"error": {"code": "ServiceUnavailable"}}, status=503)
        return await super()._record(request, kind)


# ---- what was sent and acknowledged, and what arrived --------------------------------------


@dataclass
class Ledger:
    """Every acknowledged delivery, by where its effect must show."""

    teams: list[str] = field(default_factory=list)  # conversation ids, one turn each, 201
    slack: list[str] = field(default_factory=list)  # DM channels, one question each, 200
    escalations: list[str] = field(default_factory=list)  # requesters' user ids, 200
    refused: int = 0  # deliveries not acknowledged (the server was killed under them)


def teams_activity(connector: FakeBotConnector, conversation: str) -> dict[str, Any]:
    activity: dict[str, Any] = json.loads((PAYLOADS / "personal_message.json").read_text())
    activity = copy.deepcopy(activity)
    number = next(_numbers)
    activity.update(id=f"act-{number}", serviceUrl=connector.url, text=TEAMS_TEXT)
    activity["conversation"]["id"] = conversation
    return activity


async def teams_turn(
    session: aiohttp.ClientSession, server: ServerProcess, activity: dict[str, Any]
) -> int | None:
    """POST one activity; its status, or None when the server died under it."""
    try:
        async with session.post(
            f"{server.url}/api/messages",
            json=activity,
            timeout=aiohttp.ClientTimeout(total=40),
        ) as answer:
            await answer.read()
            return answer.status
    except (aiohttp.ClientError, TimeoutError):
        return None


async def slack_event(
    sender: SlackSender, server: ServerProcess, envelope: dict[str, Any]
) -> int | None:
    try:
        return await sender.event(server.url, envelope)
    except (aiohttp.ClientError, TimeoutError):
        return None


def posted_in(api: FakeSlackWebAPI, channel: str) -> list[Call]:
    return [c for c in api.of("chat.postMessage") if c.ok and c.params.get("channel") == channel]


def channel_of(body: dict[str, Any]) -> str:
    """The channel a kept Slack delivery's answer goes to (its event's)."""
    event = body.get("event") or {}
    return str(event.get("channel") or "")


def cards_by_ticket(api: FakeSlackWebAPI) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in posted_in(api, ADMINS):
        header = next((b for b in call.blocks if b.get("type") == "header"), None)
        if header is not None and not call.params.get("thread_ts"):
            ticket = str(header["text"]["text"]).split(" ", 1)[0]
            counts[ticket] = counts.get(ticket, 0) + 1
    return counts


def said(posted: Posted) -> str:
    """What one activity says: its text and its cards' fallback text."""
    return posted.text + "|" + "|".join(str(c.get("fallbackText", "")) for c in posted.cards)


def teams_replies(connector: FakeBotConnector, conversation: str) -> list[str]:
    return [
        said(p)
        for p in connector.log
        if p.conversation_id == conversation and p.activity.get("type") == "message"
    ]


# ---- the servers -------------------------------------------------------------------------------


@dataclass
class Fleet:
    """The servers of one run, the fakes they talk to, and the clients of the test."""

    servers: list[ServerProcess]
    database_url: str
    api: FakeSlackWebAPI
    connector: DownConnector
    session: aiohttp.ClientSession
    sender: SlackSender

    def server(self, number: int) -> ServerProcess:
        """The server that gets delivery ``number`` (round-robin over those listed)."""
        return self.servers[number % len(self.servers)]


@asynccontextmanager
async def fleet(tmp_path: Path, database_url: str, processes: int) -> AsyncIterator[Fleet]:
    api, connector = FakeSlackWebAPI(), DownConnector()
    api.members[ADMINS] = ["U0ADMIN01", BOT_USER_ID]
    await api.start()
    await connector.start()
    env = slack_env(
        api.api_url,
        database_url,
        SLACK_ADMIN_CHANNEL=ADMINS,
        KEPT_EVENT_LEASE_SECONDS=LEASE_SECONDS,
    )
    servers = [ServerProcess(env, tmp_path, f"server{n}") for n in range(processes)]
    started: list[ServerProcess] = []
    async with aiohttp.ClientSession() as session:
        try:
            for server in servers:
                server.start()
                started.append(server)
            await asyncio.gather(*(server.ready(session) for server in servers))
            yield Fleet(servers, database_url, api, connector, session, SlackSender(session))
        finally:
            for server in started:
                server.stop()
            await connector.close()
            await api.close()


async def until(what: str, condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


# ---- the burst ---------------------------------------------------------------------------------


async def slack_says(
    fleet: Fleet, user: str, channel: str, text: str, server: ServerProcess
) -> None:
    """A Slack user says something and waits for the answer (the preparations)."""
    before = len(posted_in(fleet.api, channel))
    assert await fleet.sender.event(server.url, fleet.sender.dm(text, user, channel)) == 200
    assert await until(
        f"an answer in {channel}", lambda: len(posted_in(fleet.api, channel)) > before, 30
    )


async def up_to_the_note(fleet: Fleet, number: int) -> None:
    user, channel = f"U0ESC{number:04d}", f"D0ESC{number:04d}"
    bounce = BOUNCE.replace("ana.lopez@contoso.com", f"burst{number}@contoso.com")
    for text in (bounce, "I sent the message", "escalate"):
        await slack_says(fleet, user, channel, text, fleet.server(number))


async def wave(fleet: Fleet, ledger: Ledger, name: str, size: int, escalating: range) -> None:
    """One wave of the burst, all at once: ``size`` Teams turns (new conversations), ``size``
    Slack questions (new DMs) and the final "escalate" (no note) of requesters ``escalating``;
    each acknowledged one is written down."""
    teams = [f"a:{name}-{n}" for n in range(size)]
    slack = [(f"U0{name.upper()}{n:03d}", f"D0{name.upper()}{n:03d}") for n in range(size)]
    escalations = [(f"U0ESC{n:04d}", f"D0ESC{n:04d}") for n in escalating]

    async def one_teams(n: int) -> None:
        status = await teams_turn(
            fleet.session, fleet.server(n), teams_activity(fleet.connector, teams[n])
        )
        if status in (200, 201):
            ledger.teams.append(teams[n])
        else:
            ledger.refused += 1

    async def one_slack(n: int, user: str, channel: str, text: str, into: list[str]) -> None:
        envelope = fleet.sender.dm(text, user, channel)
        status = await slack_event(fleet.sender, fleet.server(n), envelope)
        if status == 200:
            into.append(user if into is ledger.escalations else channel)
        else:
            ledger.refused += 1

    await asyncio.gather(
        *(one_teams(n) for n in range(size)),
        *(one_slack(n, u, c, SLACK_TEXT, ledger.slack) for n, (u, c) in enumerate(slack)),
        *(
            one_slack(n, u, c, "no note", ledger.escalations)
            for n, (u, c) in zip(escalating, escalations, strict=True)
        ),
    )


@dataclass(frozen=True)
class Baseline:
    """What one Teams turn and one Slack question are answered, measured before the burst."""

    teams: list[str]
    slack: list[str]


async def burst_with_outage_and_sigkill(fleet: Fleet, *, restart: bool) -> tuple[Ledger, Baseline]:
    """The whole run: the baseline, the preparations, then the burst in three waves (before,
    during the outage up to the SIGKILL, after it); returns what was acknowledged."""
    ledger = Ledger()
    # The baseline: one Teams turn and one Slack question, the connector up.
    base = teams_activity(fleet.connector, "a:baseline")
    assert await teams_turn(fleet.session, fleet.servers[0], base) == 201
    assert await until(
        "the baseline", lambda: bool(teams_replies(fleet.connector, "a:baseline")), 10
    )
    await slack_says(fleet, "U0BASE001", "D0BASE001", SLACK_TEXT, fleet.servers[0])
    baseline = Baseline(
        teams_replies(fleet.connector, "a:baseline"),
        [c.text for c in posted_in(fleet.api, "D0BASE001")],
    )

    await asyncio.gather(*(up_to_the_note(fleet, n) for n in range(12)))
    await wave(fleet, ledger, "up", 6, range(0, 4))  # the connector up

    fleet.connector.down_until = time.monotonic() + OUTAGE_SECONDS  # down for 30 s from now
    outage_ends = fleet.connector.down_until
    # During the outage: Teams turns whose replies cannot be delivered in the turn, Slack events,
    # escalations; the first server is killed right after the Slack acknowledgements.
    during = asyncio.create_task(wave(fleet, ledger, "down", 4, range(4, 8)))
    await until("the Slack acknowledgements", lambda: len(ledger.escalations) >= 8, 10)
    victim = fleet.servers[0]
    victim.kill()
    await during
    if restart:
        victim.start()
        await victim.ready(fleet.session)
    else:
        fleet.servers = fleet.servers[1:]  # the survivor gets everything from now on
    await wave(fleet, ledger, "after", 4, range(8, 12))  # still during the outage
    await asyncio.sleep(max(0.0, outage_ends - time.monotonic()))
    return ledger, baseline


def teams_reply_once(fleet: Fleet, baseline: Baseline, conversation: str) -> bool:
    """Whether the conversation got the baseline's reply exactly once (a word that the reply
    is late, said besides, is not counted)."""
    replies = teams_replies(fleet.connector, conversation)
    return sorted(r for r in replies if r in baseline.teams) == sorted(baseline.teams)


def once(said: list[str]) -> list[str]:
    """What was said, each thing said twice in a row counted once."""
    return [item for index, item in enumerate(said) if index == 0 or said[index - 1] != item]


def missing(fleet: Fleet, ledger: Ledger, baseline: Baseline) -> dict[str, list[str]]:
    """What has not arrived yet, by kind (empty lists when all is there): a Teams reply
    exactly once, a Slack answer and a ticket's card at least once (the check says when more
    than once is allowed)."""
    cards = cards_by_ticket(fleet.api)
    return {
        "teams": [c for c in ledger.teams if not teams_reply_once(fleet, baseline, c)],
        "slack": [c for c in ledger.slack if not posted_in(fleet.api, c)],
        "cards": [] if len(cards) == len(ledger.escalations) else [json.dumps(cards)],
    }


async def check_everything_arrived_once(fleet: Fleet, ledger: Ledger, baseline: Baseline) -> None:
    """Wait (bounded) until everything acknowledged has arrived, then check it came once."""
    await until("everything", lambda: not any(missing(fleet, ledger, baseline).values()), 30)
    await asyncio.sleep(1.0)  # anything that would arrive twice
    store = await Store.open(fleet.database_url)
    try:
        tickets = await store.tickets.list_tickets()
        kept = await store.kept.kept_events()
        all_jobs = await store.jobs.ticket_jobs()
    finally:
        await store.close()
    pending = [k for k in kept if k.done_at is None]
    jobs = [j for j in all_jobs if j.done_at is None]
    # What the killed server had started and another run took over: these alone may show the
    # kill (see the module's docstring); everything else must have arrived exactly once.
    rerun = {channel_of(k.body) for k in kept if k.attempts > 1}
    cards_retried = {j.ticket_id for j in all_jobs if j.kind == "post_card" and j.attempts > 1}
    print(
        f"acknowledged: {len(ledger.teams)} Teams turns, {len(ledger.slack)} Slack questions, "
        f"{len(ledger.escalations)} escalations; not acknowledged: {ledger.refused}; "
        f"still missing: {missing(fleet, ledger, baseline)}; ticket jobs pending: "
        f"{[(j.ticket_id, j.kind, j.attempts, j.next_attempt_at.isoformat()) for j in jobs]}; "
        f"Slack deliveries run again after the kill: {sorted(rerun)}; "
        f"card posts tried again: {sorted(t for t in cards_retried if t)}"
    )
    # Every acknowledged escalation: its ticket exactly once, its card, and the requester hears
    # back with its number. The window of the kill: a card the killed server posted but had not
    # marked done is posted again; an answer it posted but had not marked done, likewise.
    assert sorted(t.requester.user_id for t in tickets) == sorted(ledger.escalations)
    cards = cards_by_ticket(fleet.api)
    assert set(cards) == {t.id for t in tickets}
    twice = {ticket: n for ticket, n in cards.items() if n > 1}
    assert set(twice) <= cards_retried, (twice, cards_retried)
    unconfirmed = {}
    for ticket in tickets:
        channel = ticket.requester.conversation_key.removeprefix("slack:")
        heard = posted_in(fleet.api, channel)
        assert heard, f"the requester of {ticket.id} heard nothing"
        if not [c for c in heard if ticket.id in c.text]:
            unconfirmed[ticket.id] = channel
    said = {channel: [c.text for c in posted_in(fleet.api, channel)] for channel in rerun}
    said_twice = sorted(channel for channel, texts in said.items() if texts != once(texts))
    print(
        f"cards posted twice: {twice}; escalations not confirmed by number: {unconfirmed}; "
        f"Slack answers posted twice: {said_twice}"
    )
    assert unconfirmed == {}
    assert pending == []
    # Every acknowledged Slack question: its answer exactly once; where the killed server was
    # working on it, the same answer, perhaps said twice in a row.
    for channel in ledger.slack:
        answers = [c.text for c in posted_in(fleet.api, channel)]
        if channel in rerun:
            assert once(answers) == baseline.slack, channel
        else:
            assert answers == baseline.slack, channel
    # Every acknowledged Teams turn: its reply once; those acknowledged during the outage are
    # delivered afterwards by the durable outbox of replies (issue 12, item 4).
    assert [c for c in ledger.teams if not teams_reply_once(fleet, baseline, c)] == []


async def test_nothing_acknowledged_is_lost_on_sqlite_with_one_server_restarted(
    tmp_path: Path, database_url: str
) -> None:
    async with fleet(tmp_path, database_url, processes=1) as running:
        ledger, baseline = await burst_with_outage_and_sigkill(running, restart=True)
        await check_everything_arrived_once(running, ledger, baseline)


@pytest.mark.skipif(not POSTGRES_URL, reason="TEST_POSTGRES_URL is not set: PostgreSQL skipped")
async def test_nothing_acknowledged_is_lost_on_postgresql_with_two_servers(tmp_path: Path) -> None:
    async with postgres_database() as url, fleet(tmp_path, url, processes=2) as running:
        ledger, baseline = await burst_with_outage_and_sigkill(running, restart=False)
        await check_everything_arrived_once(running, ledger, baseline)
