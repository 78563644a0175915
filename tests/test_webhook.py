"""TICKET_WEBHOOK_URL: every ticket event reaches an outside tracker as signed JSON, in order per
ticket, through the job queue; the receiver (a local aiohttp server) is down at first, then
fails, then comes up, and the bot restarts in between on the same SQLite file."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import FIX_RUNNER, RUNTIME, TICKET_TIMING, create_app
from bot.config import load_settings
from bot.store import Requester, Store
from bot.tickets import Action, ActionRequest, Actor, Tickets, TicketTiming
from tests.fake_directory import FakeFixRunner, command_for, group

SECRET = "s3cret-for-the-tracker"  # noqa: S105 - the test tracker's key
TERMINAL = Actor("console", "ops", "Ops")
CAROL = Requester("console", "carol", "Carol", "console:carol")
DAN = Requester("console", "dan", "Dan", "console:dan")
FAST = TicketTiming(
    poll_seconds=0.05, retry_base_seconds=0.05, retry_cap_seconds=0.3, reminder_check_seconds=60
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Tracker:
    """The outside tracker: accepts events once ``failures`` 500 answers are used up."""

    port: int
    failures: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)
    answered_500: int = 0
    problems: list[str] = field(default_factory=list)
    server: TestServer | None = None

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.text()
        timestamp = request.headers.get("X-NDRBot-Timestamp", "")
        expected = hmac.new(
            SECRET.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256
        ).hexdigest()
        if request.headers.get("X-NDRBot-Signature") != f"sha256={expected}":
            self.problems.append("bad signature")
        if request.content_type != "application/json":
            self.problems.append(f"content type {request.content_type}")
        if abs(time.time() - int(timestamp or 0)) > 300:
            self.problems.append("stale timestamp")
        if self.failures:
            self.failures -= 1
            self.answered_500 += 1
            return web.Response(status=500, text="tracker trouble")
        event = json.loads(body)
        if request.headers.get("X-NDRBot-Event-Id") != event["event_id"]:
            self.problems.append("event id header differs")
        self.accepted.append(event)
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.receive)
        self.server = TestServer(app, host="127.0.0.1", port=self.port)
        await self.server.start_server()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()


@pytest.fixture
async def tracker() -> AsyncIterator[Tracker]:
    receiver = Tracker(free_port())
    yield receiver
    await receiver.stop()


def bot_app(database: Path, tracker: Tracker, timing: TicketTiming = FAST) -> web.Application:
    settings = load_settings(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "TICKET_WEBHOOK_URL": f"http://127.0.0.1:{tracker.port}/hook",
            "TICKET_WEBHOOK_SECRET": SECRET,
        },
        env_file=None,
    )
    app = create_app(settings)
    app[TICKET_TIMING] = timing
    return app


async def until(condition: Callable[[], Awaitable[bool]], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def act(escalations: Tickets, ticket: str, action: Action, **kwargs: Any) -> None:
    result = await escalations.act(ActionRequest(ticket, action, TERMINAL, None, **kwargs))
    assert result.applied, result.message


async def open_ticket(escalations: Tickets, who: Requester, dedupe: str) -> str:
    ticket, _ = await escalations.open_or_join(
        who, bounce={"status": "5.7.12"}, path={}, note=None, dedupe_key=dedupe
    )
    return ticket.id


async def tried_every_ticket(store: Store) -> bool:
    """Each ticket's first undelivered event failed at least once (the later ones wait)."""
    jobs = await store.jobs.ticket_jobs(pending=True)
    first: dict[str, str | None] = {}
    for job in jobs:
        first.setdefault(job.ticket_id, job.last_error)
    return bool(first) and all(error is not None for error in first.values())


async def test_every_event_arrives_in_order_signed_once_across_a_restart(
    tmp_path: Path, tracker: Tracker
) -> None:
    database = tmp_path / "bot.db"

    # The tracker is down (connection refused) while the first events happen.
    async with TestServer(bot_app(database, tracker)) as first:
        escalations = first.app[RUNTIME].tickets
        one = await open_ticket(escalations, CAROL, "a")
        assert await open_ticket(escalations, DAN, "a") == one  # joined
        two = await open_ticket(escalations, DAN, "b")
        await act(escalations, one, Action.ASSIGN_ME)
        await act(escalations, one, Action.REPLY, text="Looking into it.")
        await until(lambda: tried_every_ticket(first.app[RUNTIME].store))
        pending = await first.app[RUNTIME].store.jobs.ticket_jobs(pending=True)
        assert len(pending) == 5
        assert {job.last_error for job in pending if job.last_error} == {
            "webhook unreachable: ClientConnectorError"
        }

    # The bot restarts; the tracker comes up, answers 500 three times, then takes everything.
    tracker.failures = 3
    await tracker.start()
    async with TestServer(bot_app(database, tracker)) as second:
        escalations = second.app[RUNTIME].tickets
        await act(escalations, one, Action.RESOLVE, text="Allowed outside senders.")
        await act(escalations, two, Action.ASSIGN, assignee=Actor("console", "ana", "Ana"))
        assert await escalations.reopen_by_requester(DAN.key, one)
        store = second.app[RUNTIME].store

        async def all_delivered() -> bool:
            return await store.jobs.ticket_jobs(pending=True) == []

        await until(all_delivered)

    assert tracker.problems == []
    assert tracker.answered_500 == 3
    ids = [event["event_id"] for event in tracker.accepted]
    assert len(ids) == len(set(ids)) == 8  # each event once
    by_ticket: dict[str, list[tuple[int, str]]] = {}
    for event in tracker.accepted:
        by_ticket.setdefault(event["ticket_id"], []).append((event["sequence"], event["event"]))
    assert by_ticket[one] == list(
        enumerate(["opened", "joined", "assigned", "replied", "resolved", "reopened"], start=1)
    )
    assert by_ticket[two] == [(1, "opened"), (2, "assigned")]

    reopened = next(e for e in tracker.accepted if e["event"] == "reopened")
    assert reopened["actor"] == {"key": DAN.key, "name": "Dan"}
    assert reopened["ticket"]["status"] == "open"
    assert reopened["ticket"]["requesters"] == [
        {"platform": "console", "user_id": "carol", "name": "Carol"},
        {"platform": "console", "user_id": "dan", "name": "Dan"},
    ]
    resolved = next(e for e in tracker.accepted if e["event"] == "resolved")
    assert resolved["detail"]["note"] == "Allowed outside senders."
    assert resolved["actor"]["name"] == "Ops"
    assert "conversation_key" not in json.dumps(resolved)


async def test_a_change_made_on_approval_reaches_the_tracker_with_everything_recorded(
    tmp_path: Path, tracker: Tracker
) -> None:
    await tracker.start()
    directory = FakeFixRunner({"sales@contoso.com": group("sales@contoso.com")})
    app = bot_app(tmp_path / "bot.db", tracker)
    app[FIX_RUNNER] = directory
    async with TestServer(app) as bot:
        escalations = bot.app[RUNTIME].tickets
        ticket, _ = await escalations.open_or_join(
            CAROL,
            bounce={"status": "5.7.12", "recipients": ["sales@contoso.com"]},
            path={"role": "sender", "fix": "allow_all", "fix_recipient": "sales@contoso.com"},
            note=None,
            dedupe_key="sales",
        )
        await act(escalations, ticket.id, Action.APPLY_FIX)
        store = bot.app[RUNTIME].store

        async def all_delivered() -> bool:
            return await store.jobs.ticket_jobs(pending=True) == []

        await until(all_delivered)

    assert tracker.problems == []
    assert [e["event"] for e in tracker.accepted] == ["opened", "fix_approved", "fix_applied"]
    approved, applied = tracker.accepted[1:]
    assert approved["detail"]["approved_by"] == {"key": TERMINAL.key, "name": "Ops"}
    assert approved["ticket"]["status"] == "open"
    detail = applied["detail"]
    assert detail["asked_by"] == [{"key": CAROL.key, "name": "Carol"}]
    assert detail["approved_by"] == {"key": TERMINAL.key, "name": "Ops"}
    command = command_for(group("sales@contoso.com"))
    assert detail["command"] == command
    assert detail["cmdlet"] == "Set-DistributionGroup"
    assert detail["parameters"] == {
        "Identity": "sales@contoso.com",
        "RequireSenderAuthenticationEnabled": "$false",
    }
    assert detail["before"]["require_sender_authentication"] is True
    assert detail["after"]["require_sender_authentication"] is False
    assert approved["at"] <= detail["at"] <= applied["at"]  # made between claim and record
    assert applied["actor"] == {"key": TERMINAL.key, "name": "Ops"}
    assert applied["ticket"]["status"] == "resolved"
    assert applied["ticket"]["path"]["fix_command"] == command
    assert [plan.command for plan in directory.applied] == [command]


async def test_a_tracker_that_asks_to_wait_is_given_the_time_it_asks(
    tmp_path: Path, tracker: Tracker
) -> None:
    async def busy(request: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "120"})

    app = web.Application()
    app.router.add_post("/hook", busy)
    tracker.server = TestServer(app, host="127.0.0.1", port=tracker.port)
    await tracker.server.start_server()
    patient = TicketTiming(retry_base_seconds=0.05, retry_cap_seconds=600)
    async with TestServer(bot_app(tmp_path / "bot.db", tracker, patient)) as bot:
        escalations = bot.app[RUNTIME].tickets
        await open_ticket(escalations, CAROL, "a")
        store = bot.app[RUNTIME].store
        await until(lambda: tried_every_ticket(store))
        [job] = await store.jobs.ticket_jobs(pending=True)
        assert job.last_error == "webhook answered 429"
        wait = (job.next_attempt_at - store.now()).total_seconds()
        assert 110 < wait <= 120


def test_the_secret_is_required_with_the_url() -> None:
    from bot.config import SettingsError

    with pytest.raises(SettingsError, match=r"^TICKET_WEBHOOK_SECRET: required when"):
        load_settings({"TICKET_WEBHOOK_URL": "https://tracker.example/hook"}, env_file=None)
    with pytest.raises(SettingsError, match=r"^TICKET_WEBHOOK_URL: must be an http"):
        load_settings(
            {"TICKET_WEBHOOK_URL": "tracker.example", "TICKET_WEBHOOK_SECRET": "x"}, env_file=None
        )
