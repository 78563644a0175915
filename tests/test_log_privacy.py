"""Logs without secrets or personal data: a failed save does not log the values it was saving,
the start-up settings line hides every secret and every URL's password and query, and a whole
scenario over real HTTP (a signed Slack event, a Teams turn in local mode, an escalation with the
webhook on) logs none of its known secrets or the requester's address at INFO or above."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bot.app import create_app
from bot.config import describe, load_settings
from bot.logs import JsonFormatter
from bot.store import Store
from bot.tickets import StoreTicketDesk, Tickets, TicketTiming
from bot.turns import Turns
from dialogs.messages import Message
from dialogs.turn import DialogContext
from knowledge.kb import default_knowledge
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.teams_harness import payload as teams_payload
from tests.fakes_slack import BOT_USER_ID, FakeSlackWebAPI
from tests.fakes_slack.harness import BOT_TOKEN, SIGNING_SECRET, SlackBot, corpus, until

ADDRESS = "ana.secret@contoso.com"
WORDS = "the quarterly pricing sheet for the Lisbon office"
WEBHOOK_CODE = "webhook-code-7f3a9c"
WEBHOOK_SIG = "webhook-sig-b81d44"
WEBHOOK_SECRET = "webhook-hmac-key-55e0"  # noqa: S105 - a test value
WEBHOOK_PATH = "T0HELP/B0DESK/path-secret-9d1c"  # as Slack's incoming webhooks carry theirs
APP_PASSWORD = "teams-app-password-9c1e"  # noqa: S105 - a test value
DB_PASSWORD = "p@ss:w/rd-1d2e"  # noqa: S105 - holds @, : and /
ADMINS = "C0ADMINS01"
ANA = ("U0ASKER01", "D0ASKER01", "Ana Asker")
FAST = TicketTiming(
    poll_seconds=0.05, retry_base_seconds=0.05, retry_cap_seconds=0.3, reminder_check_seconds=60
)


def logged(records: list[logging.LogRecord], level: int = logging.INFO) -> str:
    """Every record at ``level`` or above as the bot writes it (JSON, extras and traceback).

    aiohttp's access lines are left out: they are the test servers' (the fakes', the tracker's);
    the bot's own server logs none (``run`` passes ``access_log=None``).
    """
    formatter = JsonFormatter()
    return "\n".join(
        formatter.format(record)
        for record in records
        if record.levelno >= level and record.name != "aiohttp.access"
    )


# ---- a failed save ----------------------------------------------------------------------------


async def test_a_failed_save_logs_neither_the_address_nor_the_words_it_was_saving(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = await Store.open(database_url)
    try:
        knowledge = default_knowledge()
        tickets = Tickets(store, knowledge, load_settings({}, env_file=None))
        turns = Turns(
            store, DialogContext(knowledge=knowledge, desk=StoreTicketDesk(store, tickets))
        )
        # Every save of a new conversation now fails inside SQLite, parameters and all.
        async with store._engine.begin() as conn:
            await conn.execute(
                text(
                    "CREATE TRIGGER broken BEFORE INSERT ON conversations "
                    "BEGIN INSERT INTO no_such_table VALUES (1); END"
                )
            )
        said = f"My mail bounced with 550 5.7.12: {WORDS}, sent to {ADDRESS}"
        with caplog.at_level(logging.INFO):
            outcome = await turns.handle(
                Message(text=said, user_id="pat", user_name="pat", conversation_id="c1")
            )
    finally:
        await store.close()
    assert outcome.failed
    failures = [r for r in caplog.records if r.getMessage() == "turn failed"]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    lines = logged(caplog.records) + caplog.text
    assert "no such table" in lines  # the error itself is still told
    assert ADDRESS not in lines
    assert "quarterly pricing" not in lines
    assert "Lisbon" not in lines


class UniqueViolationError(Exception):
    """What asyncpg raises for a duplicate key: its message ends with the key's values."""

    __module__ = "asyncpg.exceptions"


def test_a_database_errors_detail_is_cut_from_the_logged_traceback() -> None:
    detail = f"DETAIL:  Key (email)=({ADDRESS}) already exists."
    try:
        try:
            raise UniqueViolationError(f'duplicate key value violates "requesters_pkey"\n{detail}')
        except UniqueViolationError as driver_error:
            raise IntegrityError(
                "INSERT INTO requesters (email) VALUES ($1)",
                None,
                driver_error,
                hide_parameters=True,
            ) from driver_error
    except IntegrityError:
        record = logging.LogRecord(
            "bot.turns", logging.ERROR, __file__, 1, "turn failed", None, None
        )
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert 'duplicate key value violates \\"requesters_pkey\\"' in line
    assert "UniqueViolationError" in line
    assert "IntegrityError" in line
    assert "Traceback (most recent call last)" in line
    assert ADDRESS not in line
    assert "DETAIL" not in line


# ---- the settings line ------------------------------------------------------------------------


async def test_the_starting_line_shows_no_secret_no_password_and_no_query_value(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    database = f"postgresql+asyncpg://bot:{quote(DB_PASSWORD, safe='')}@db.internal:5432/ndrbot"
    raw_database = f"postgresql+asyncpg://bot:{DB_PASSWORD}@db.internal:5432/ndrbot"
    secrets = {
        "MICROSOFT_APP_PASSWORD": APP_PASSWORD,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_APP_TOKEN": "xapp-1-secret-app-token",
        "TICKET_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    webhook = f"https://tracker.example/api/{WEBHOOK_PATH}?code={WEBHOOK_CODE}&sig={WEBHOOK_SIG}"
    for url in (database, raw_database):
        settings = load_settings(
            {"DATABASE_URL": url, "TICKET_WEBHOOK_URL": webhook, **secrets}, env_file=None
        )
        shown = describe(settings)
        assert shown["DATABASE_URL"] == "postgresql+asyncpg://bot:***@db.internal:5432/ndrbot"
        assert shown["TICKET_WEBHOOK_URL"] == "https://tracker.example/***?code=***&sig=***"
        for name in secrets:
            assert shown[name] == "(set)"
        everything = f"{shown} {settings!r} {settings}"
        forbidden = [
            *secrets.values(),
            WEBHOOK_CODE,
            WEBHOOK_SIG,
            "path-secret-9d1c",
            DB_PASSWORD,
            quote(DB_PASSWORD, safe=""),
            "w/rd",
            "rd-1d2e",
            "ss:w",
        ]
        for value in forbidden:
            assert value not in everything, value
    # And as the server logs it when it starts (on SQLite: the PostgreSQL URL is not reachable).
    settings = load_settings(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
            "TICKET_WEBHOOK_URL": webhook,
            **secrets,
        },
        env_file=None,
    )
    with caplog.at_level(logging.INFO):
        async with TestServer(create_app(settings)):
            pass
    starting = [r for r in caplog.records if r.getMessage() == "starting"]
    assert len(starting) == 1
    lines = logged(caplog.records)
    assert "code=***&sig=***" in lines
    for value in (*secrets.values(), WEBHOOK_CODE, WEBHOOK_SIG):
        assert value not in lines, value


# ---- a whole scenario over HTTP ---------------------------------------------------------------


class Tracker:
    """The outside tracker the webhook posts to: takes every event."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.queries: list[str] = []
        self.server: TestServer | None = None

    async def receive(self, request: web.Request) -> web.Response:
        self.queries.append(request.query_string)
        self.events.append(await request.text())
        return web.Response(status=204)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self.receive)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return str(self.server.make_url("/hook"))

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


@pytest.fixture
async def tracker() -> AsyncIterator[Tracker]:
    receiver = Tracker()
    yield receiver
    await receiver.close()


async def test_a_whole_scenario_logs_no_secret_and_no_address(
    database_url: str, tracker: Tracker, caplog: pytest.LogCaptureFixture
) -> None:
    api = FakeSlackWebAPI()
    api.members[ADMINS] = ["U0ADMIN01", BOT_USER_ID]
    api.users.update({"U0ADMIN01": "Robin Admin"})
    await api.start()
    connector = await FakeBotConnector().start()
    hook = await tracker.start()
    env = {
        "SLACK_ADMIN_CHANNEL": ADMINS,
        "TICKET_WEBHOOK_URL": f"{hook}?code={WEBHOOK_CODE}&sig={WEBHOOK_SIG}",
        "TICKET_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MICROSOFT_APP_PASSWORD": APP_PASSWORD,  # no app id: Teams stays in local mode
    }
    bot = SlackBot(api, database_url, env=env, timing=FAST)
    user, channel, name = ANA
    with caplog.at_level(logging.INFO):
        await bot.start()
        try:
            # A Teams turn in local mode, the address in the words.
            activity = teams_payload(
                "personal_message", serviceUrl=connector.url, text=f"{WORDS}: {ADDRESS}"
            )
            response = await bot.client.post("/api/messages", json=activity)
            assert response.status in (200, 201)
            await until("the Teams reply", connector.take)
            # Ana escalates on Slack, over signed events; her note holds her address.
            for said in (corpus("en-new-5712-mailbox.txt"), "I sent the message", "escalate"):
                await _dm(bot, user, channel, name, said)
            await _dm(bot, user, channel, name, f"please call me back, {ADDRESS}, about {WORDS}")
            await until("the webhook's events", lambda: tracker.events)
            await until("the admins' card", lambda: _posted(api, ADMINS))
        finally:
            await bot.close()
            await connector.close()
            await api.close()
    assert any(ADDRESS in event for event in tracker.events), "the note reached the tracker"
    assert tracker.queries[0] == f"code={WEBHOOK_CODE}&sig={WEBHOOK_SIG}"
    lines = logged(caplog.records)
    assert "turn handled" in lines
    for value in (
        BOT_TOKEN,
        SIGNING_SECRET,
        WEBHOOK_SECRET,
        WEBHOOK_CODE,
        WEBHOOK_SIG,
        APP_PASSWORD,
        ADDRESS,
        "quarterly pricing",
    ):
        assert value not in lines, value


async def _dm(bot: SlackBot, user: str, channel: str, name: str, said: str) -> None:
    """``user`` says ``said`` in their DM, signed as Slack signs it; wait for an answer."""
    before = len(_posted(bot.api, channel))
    envelope = bot.dm(said, user=user, channel=channel)
    envelope["event"]["user_profile"] = {"real_name": name, "display_name": "", "name": user}
    assert (await bot.event(envelope)).status == 200
    await until(f"an answer in {channel}", lambda: len(_posted(bot.api, channel)) > before)


def _posted(api: FakeSlackWebAPI, channel: str) -> list[Any]:
    return [
        call
        for call in api.of("chat.postMessage")
        if call.ok and call.params.get("channel") == channel and not call.params.get("thread_ts")
    ]
