"""Who acts, from where (issue 12, findings 1 and 2), over real HTTP with the fakes: an actor is
(platform, tenant, user id) read from the channel the activity really came on; ticket work on
Teams only from ``msteams``; ADMIN_USERS entries always platform-qualified; ALLOWED_TENANTS and
the app's own tenant; the first "register admins" only for ADMIN_USERS or with the one-time
code printed in the server's log."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.channels.teams import TICKET_REFRESH_VERB
from bot.config import SettingsError, load_settings
from bot.store import Requester, Store
from bot.tenants import Tenants
from bot.tickets import Tickets, TicketTiming
from bot.tickets.registration import WRONG_CODES_ALLOWED, Registration, code_hash
from dialogs.intent import is_register_admins, register_admins_code
from knowledge.kb import default_knowledge
from tests.fakes.teams_harness import APP_ID, RUNTIME, TeamsBot, payload, teams_bot, words
from tests.fakes_slack import BOT_USER_ID, FakeSlackWebAPI
from tests.fakes_slack.harness import SlackBot, settle, until
from tests.fakes_slack.harness import payload as slack_payload
from tests.registration_code import logged_code

KNOWLEDGE = default_knowledge()
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
MENTION = payload("channel_mention")
CHANNEL = MENTION["conversation"]["id"].split(";")[0]
TENANT = MENTION["channelData"]["tenant"]["id"]
FOREIGN = "11111111-2222-4333-8444-555555555555"
ANA = {"id": "29:ana", "name": "Ana Ortiz", "aadObjectId": "00000000-0000-4000-8000-000000000a0a"}
EVE = {"id": "29:eve", "name": "Eve Stone", "aadObjectId": "00000000-0000-4000-8000-000000000e0e"}
ADMINS = {"ADMIN_USERS": f"msteams:{ANA['aadObjectId']}"}
OTHER_CHANNELS = ("webchat", "directline")
TICKET = "NDR-1001"
FAST = TicketTiming(poll_seconds=0.05, retry_base_seconds=0.05, reminder_check_seconds=3600)


def say(key: str, **values: str) -> str:
    return KNOWLEDGE.conversation.text(key, **values)


def wrong_code(code: str) -> str:
    digits = f"{(int(code.replace('-', '')) + 1) % 10**6:06d}"
    return f"{digits[:3]}-{digits[3:]}"


def in_channel(
    user: dict[str, Any], channel: str = CHANNEL, tenant: str = TENANT
) -> dict[str, Any]:
    """Who and where: ``user`` in the channel ``channel``, of Teams tenant ``tenant``."""
    data = copy.deepcopy(MENTION["channelData"])
    data["tenant"] = {"id": tenant}
    conversation = {**MENTION["conversation"], "id": f"{channel};messageid=17", "tenantId": tenant}
    return {"from": copy.deepcopy(user), "conversation": conversation, "channelData": data}


async def register(
    bot: TeamsBot, user: dict[str, Any], text: str = "register admins", **where: Any
) -> str:
    changes = {**in_channel(user), **where}
    activity = bot.activity("channel_mention", text=f"<at>NDR Helper</at> {text}", **changes)
    return words(await bot.send(activity))


async def execute(
    bot: TeamsBot, user: dict[str, Any], verb: str, data: dict[str, Any], **where: Any
) -> dict[str, Any]:
    """A ticket card's Action.Execute (or Teams' refresh), as ``user``."""
    activity = bot.activity(
        "invoke_card_action",
        value={"action": {"type": "Action.Execute", "verb": verb, "data": data}},
        **{**in_channel(user), **where},
    )
    response = await bot.post(activity)
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def open_ticket(bot: TeamsBot) -> None:
    requester = Requester("msteams", "29:alex", "Alex", "msteams:a:alex")
    await bot.app[RUNTIME].tickets.open_or_join(
        requester,
        bounce={"status": "5.7.12", "smtp_code": "550", "recipients": ["ana@contoso.com"]},
        path={"role": "sender"},
        note=None,
        dedupe_key="ana@contoso.com|5.7.12",
    )


async def drained(bot: TeamsBot) -> None:
    """Wait until the tickets' jobs are delivered, and forget what they sent."""
    store = bot.app[RUNTIME].store
    async with asyncio.timeout(10):
        while await store.jobs.ticket_jobs(pending=True):
            await asyncio.sleep(0.02)
    bot.connector.take()


async def ticket_ref(bot: TeamsBot) -> str:
    """The ticket's public reference, as its card's payloads carry it."""
    record = await bot.app[RUNTIME].store.tickets.get_ticket(TICKET)
    assert record is not None
    return record.ref


async def ticket_state(bot: TeamsBot) -> tuple[int, list[str], int]:
    """What an action would change: the ticket's version, its events, and its jobs."""
    store = bot.app[RUNTIME].store
    record = await store.tickets.get_ticket(TICKET)
    assert record is not None
    events = [event.kind for event in await store.tickets.ticket_events(TICKET)]
    return record.version, events, len(await store.jobs.ticket_jobs(TICKET))


# ---- finding 1: identity from the channel it really came on -------------------------------------


@pytest.fixture
async def signed_bot(tmp_path: Path) -> AsyncIterator[TeamsBot]:
    """A bot with an app id: every activity carries a valid Bot Framework token, endorsed for
    Teams, Web Chat and Direct Line alike (as the Bot Framework's keys are)."""
    async with teams_bot(
        tmp_path,
        app_id=APP_ID,
        env={"ORG_DOMAINS": "contoso.com", **ADMINS},
        endorsements=("msteams", "webchat", "directline", "emulator"),
        ticket_timing=FAST,
    ) as running:
        yield running


async def test_web_chat_and_direct_line_cannot_work_tickets_with_an_admins_id(
    signed_bot: TeamsBot,
) -> None:
    """The finding's probe: each ticket action, with a valid token of another channel and the
    admin's own from.id and aadObjectId, is refused and changes nothing. Tried 12, held 12."""
    bot = signed_bot
    assert await register(bot, ANA) == say("admins_registered")
    await open_ticket(bot)
    await drained(bot)
    before = await ticket_state(bot)
    refused = {
        "statusCode": 200,
        "type": "application/vnd.microsoft.activity.message",
        "value": say("teams_tickets_teams_only"),
    }
    data = {"ref": await ticket_ref(bot), "version": before[0]}
    attempts = [
        ("assign_me", data),
        ("assign", {**data, "assignee": f"{ANA['aadObjectId']}|Ana Ortiz"}),
        ("reply", {**data, "reply": "This is your admin speaking."}),
        ("resolve", {**data, "resolution": "Nothing was wrong."}),
        (TICKET_REFRESH_VERB, data),
    ]
    tried = held = 0
    for channel in OTHER_CHANNELS:
        for verb, values in attempts:
            tried += 1
            answer = await execute(bot, ANA, verb, values, channelId=channel)
            ok = answer == refused and await ticket_state(bot) == before
            held += ok
        tried += 1
        said = await register(bot, ANA, channelId=channel, **in_channel(ANA, "19:elsewhere"))
        channels = await bot.app[RUNTIME].tickets.admin_channels()
        held += said == say("teams_tickets_teams_only") and (
            channels["msteams"]["conversation"] == {"id": CHANNEL}
        )
    assert (tried, held) == (12, 12)
    # From Teams itself the same admin acts, so the refusals were the channel's doing.
    answer = await execute(bot, ANA, "assign_me", data)
    assert answer["type"] == "application/vnd.microsoft.card.adaptive"
    assert (await ticket_state(bot))[1] == ["opened", "assigned"]


async def test_a_web_chat_conversation_still_gets_answers(signed_bot: TeamsBot) -> None:
    activity = signed_bot.activity(text="how do I fix 5.7.12", channelId="webchat")
    assert words(await signed_bot.send(activity)), "an ordinary turn from Web Chat is answered"


def test_a_bare_admin_users_id_is_a_settings_error() -> None:
    for bare in ("29:eve", "00000000-0000-4000-8000-000000000e0e", "U0SAM", "console:me"):
        with pytest.raises(SettingsError) as raised:
            load_settings({"ADMIN_USERS": f"slack:U0OK, {bare}"}, env_file=None)
        (problem,) = raised.value.problems
        assert problem.startswith("ADMIN_USERS: ")
        assert f'"{bare}"' in problem
        assert '"slack:U0OK"' not in problem
    settings = load_settings({"ADMIN_USERS": "msteams:29:eve slack:U0SAM"}, env_file=None)
    assert settings.is_listed_admin("msteams", "29:eve")
    assert not settings.is_listed_admin("slack", "29:eve")
    assert not settings.is_listed_admin("webchat", "29:eve")
    assert settings.listed_admins("slack") == ("U0SAM",)


# ---- finding 2: tenants ------------------------------------------------------------------------


def test_allowed_tenants_are_read_per_platform_with_the_apps_own_as_default() -> None:
    guid = "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"
    settings = load_settings({"ALLOWED_TENANTS": f"{guid}, slack:T0ONE T0TWO"}, env_file=None)
    tenants = Tenants(settings)
    assert tenants.allows("msteams", guid.lower())
    assert not tenants.allows("msteams", FOREIGN)
    assert tenants.allows("slack", "T0TWO")
    assert not tenants.allows("slack", "T0OTHER")
    assert tenants.allows("webchat", ""), "channels without tenants are not refused for it"
    with pytest.raises(SettingsError) as raised:
        load_settings({"ALLOWED_TENANTS": "contoso.com"}, env_file=None)
    assert raised.value.problems[0].startswith('ALLOWED_TENANTS: "contoso.com"')

    single = load_settings(
        {
            "MICROSOFT_APP_ID": APP_ID,
            "MICROSOFT_APP_PASSWORD": "x",
            "MICROSOFT_APP_TYPE": "SingleTenant",
            "MICROSOFT_APP_TENANT_ID": TENANT,
        },
        env_file=None,
    )
    own = Tenants(single)
    assert own.allows("msteams", TENANT)
    assert not own.allows("msteams", FOREIGN)
    assert not own.allows("msteams", "")
    assert not own.allows("slack", "T0TEAM001"), "Slack's own team is not known yet"
    own.learn_own("slack", "T0TEAM001")
    assert own.allows("slack", "T0TEAM001")
    assert not own.allows("slack", "T0OTHER")
    local = Tenants(load_settings({}, env_file=None))
    assert local.allows("msteams", FOREIGN), "local mode with nothing set: any tenant"
    assert local.describe()["msteams"].startswith("any")


@pytest.fixture
async def fenced_bot(tmp_path: Path) -> AsyncIterator[TeamsBot]:
    env = {"ORG_DOMAINS": "contoso.com", "ALLOWED_TENANTS": f"msteams:{TENANT}", **ADMINS}
    async with teams_bot(tmp_path, env=env, ticket_timing=FAST) as running:
        yield running


async def test_a_foreign_tenant_is_refused_and_touches_nothing(fenced_bot: TeamsBot) -> None:
    bot = fenced_bot
    runtime = bot.app[RUNTIME]
    assert await register(bot, ANA) == say("admins_registered")
    await open_ticket(bot)
    await drained(bot)  # the card is posted first: the refusals below are all there is to hear
    before = await ticket_state(bot)
    outside = {"tenantId": FOREIGN}

    # A message in a personal chat, from a tenant the bot does not serve.
    chat = {**payload("personal_message")["conversation"], "id": "a:outsider", **outside}
    message = bot.activity(
        text="escalate", conversation=chat, channelData={"tenant": {"id": FOREIGN}}
    )
    message["from"] = copy.deepcopy(EVE)
    assert words(await bot.send(message)) == say("tenant_refused")
    assert (await runtime.store.conversations.load_state("msteams:a:outsider")).version == 0
    assert await runtime.store.conversations.load_reference("msteams:a:outsider") is None

    # The admin's own id, from the foreign tenant: no card action, no registration.
    data = {"ref": await ticket_ref(bot), "version": before[0]}
    answer = await execute(
        bot, ANA, "resolve", {**data, "resolution": "x"}, **in_channel(ANA, tenant=FOREIGN)
    )
    assert answer["value"] == say("tenant_refused")
    elsewhere = in_channel(ANA, "19:foreign-channel", tenant=FOREIGN)
    assert await register(bot, ANA, **elsewhere) == say("tenant_refused")
    assert await ticket_state(bot) == before
    channels = await runtime.tickets.admin_channels()
    assert channels["msteams"]["conversation"] == {"id": CHANNEL}
    # Two tenants that disagree are no tenant.
    mixed = in_channel(ANA, tenant=TENANT)
    mixed["conversation"]["tenantId"] = FOREIGN
    answer = await execute(bot, ANA, "assign_me", data, **mixed)
    assert answer["value"] == say("tenant_refused")
    assert await ticket_state(bot) == before


async def test_a_foreign_slack_team_is_refused_and_touches_nothing(
    api: FakeSlackWebAPI, database_url: str
) -> None:
    """No ALLOWED_TENANTS: Slack's default is the bot's own team, as auth.test says it."""
    bot = SlackBot(api, database_url, env={"SLACK_ADMIN_CHANNEL": "C0ADMINS01"})
    await bot.start()
    try:
        envelope = bot.dm("escalate", user="U0OUTSIDE", channel="D0OUTSIDE")
        envelope["team_id"] = "T0OTHER99"
        envelope["event"]["team"] = "T0OTHER99"
        envelope["authorizations"][0]["team_id"] = "T0OTHER99"
        assert (await bot.event(envelope)).status == 200
        (answer,) = await api.wait_for("chat.postMessage")
        assert answer.params["channel"] == "D0OUTSIDE"
        assert answer.text == say("tenant_refused")
        # Someone of another organisation in a shared channel, saying "register admins".
        shared = bot.mention(f"<@{BOT_USER_ID}> register admins", user="U0OUTSIDE")
        shared["event"]["user_team"] = "T0OTHER99"
        shared["event"]["channel"] = "C0SHARED01"
        await bot.event(shared)
        await until("the refusal", lambda: len(api.of("chat.postMessage")) >= 2)
        await settle(bot)
        assert api.of("chat.postMessage")[1].text == say("tenant_refused")
        # /ndr from another team: the refusal is the acknowledgement itself.
        command = {**slack_payload("slash_command"), "team_id": "T0OTHER99"}
        response = await bot.command(command)
        assert response.status == 200
        assert (await response.json())["text"] == say("tenant_refused")
        # A ticket card's button pressed by another team's user: refused, nothing opened.
        click = slack_payload("block_actions")
        click["user"]["team_id"] = click["team"]["id"] = "T0OTHER99"
        value = json.dumps({"ticket": TICKET, "version": 1})
        click["actions"] = [{"action_id": "ticket:resolve", "value": value, "type": "button"}]
        assert (await bot.interaction(click)).status == 200
        await until("the refusal", lambda: api.of("chat.postEphemeral"))
        assert api.of("chat.postEphemeral")[0].text == say("tenant_refused")
        await settle(bot)
        assert api.of("views.open") == []
        runtime = bot.app[RUNTIME]
        assert (await runtime.store.conversations.load_state("slack:D0OUTSIDE")).version == 0
        assert await runtime.store.tickets.list_tickets() == []
        assert "slack" not in await runtime.store.channels.admin_channels()
        # The bot's own team is served as before.
        await bot.event(bot.dm("how do I fix 5.7.12", user="U0INSIDE", channel="D0INSIDE"))
        await until("an answer", lambda: len(api.of("chat.postMessage")) >= 3)
        assert api.of("chat.postMessage")[2].text != say("tenant_refused")
    finally:
        await bot.close()


# ---- finding 2: the first "register admins" -----------------------------------------------------


async def test_the_first_registration_needs_the_code_from_the_log_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with teams_bot(tmp_path, env={"ORG_DOMAINS": "contoso.com"}) as bot:
        code = logged_code(caplog)
        line = next(r for r in caplog.records if code in r.getMessage())
        assert line.levelno == logging.WARNING
        runtime = bot.app[RUNTIME]
        assert await register(bot, EVE) == say("admins_refused_code"), "no first-comer wins"
        assert code not in say("admins_refused_code")
        assert await register(bot, EVE, f"register admins {wrong_code(code)}") == say(
            "admins_refused_code"
        )
        assert await runtime.tickets.admin_channels() == {}
        assert await register(bot, ANA, f"register admins {code}") == say("admins_registered")
        channels = await runtime.store.channels.admin_channels()
        assert channels["msteams"].registered_by == f"msteams:{ANA['aadObjectId']}"
        # The code has done its work: it moves nothing, and is gone from the store.
        elsewhere = in_channel(EVE, "19:elsewhere@thread.tacv2")
        assert await register(bot, EVE, f"register admins {code}", **elsewhere) == say(
            "admins_refused"
        )
        assert not await runtime.store.channels.use_admin_code(code_hash(code))
        assert (await runtime.tickets.admin_channels())["msteams"]["conversation"] == {
            "id": CHANNEL
        }


async def test_no_code_is_printed_with_admin_users(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with teams_bot(tmp_path, env=ADMINS) as bot:
        assert not re.search(r"register admins \d", caplog.text)
        assert await register(bot, EVE, "register admins 123-456") == say(
            "admins_refused_not_listed"
        )


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not POSTGRES_URL, reason="TEST_POSTGRES_URL is not set"),
        ),
    ],
)
async def test_a_code_works_once_in_any_process_sharing_the_store(
    backend: str, tmp_path: Path
) -> None:
    """Two processes on one store: each prints its own code, both accept either, each once."""
    schema = f"t_{uuid.uuid4().hex}" if backend == "postgresql" else None
    url = POSTGRES_URL if schema else f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    settings = load_settings({}, env_file=None)
    stores = [await Store.open(url, schema=schema) for _ in range(2)]
    try:
        tickets = [Tickets(store, KNOWLEDGE, settings) for store in stores]
        codes = []
        for each in tickets:
            registration = Registration(each.store, settings, each.admin_channels)
            code = await registration.issue(["msteams"])
            assert code is not None
            assert re.fullmatch(r"\d{3}-\d{3}", code)
            codes.append((registration, code))
        (first, code_a), (second, code_b) = codes
        assert await second.use(code_a.replace("-", ""))  # "123456" is the same code
        assert not await first.use(code_a), "used once, in another process: gone"
        assert await first.use(code_b)
        assert not await second.use(code_b)
        # Wrong codes are counted: this process takes no more codes after a few.
        third = Registration(stores[0], settings, tickets[0].admin_channels)
        code_c = await third.issue(["msteams"])
        assert code_c is not None
        for _ in range(WRONG_CODES_ALLOWED):
            assert not await first.use(wrong_code(code_c))
        assert not await first.use(code_c), "too many wrong codes here"
        assert await second.use(code_c), "another process still takes it"
    finally:
        for store in stores:
            await store.close()
        if schema:
            engine = create_async_engine(POSTGRES_URL)
            async with engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await engine.dispose()


def test_register_admins_takes_the_code_and_nothing_else() -> None:
    assert register_admins_code("register admins 123-456") == "123-456"
    assert register_admins_code("Register the admins channel: 123 456.") == "123 456"
    assert register_admins_code("register admins") is None
    assert is_register_admins("register admins 123456")
    assert not is_register_admins("register admins 12-3456")
    assert not is_register_admins("register admins please 123-456")


async def test_a_ticket_opened_from_web_chat_can_still_be_worked(signed_bot: TeamsBot) -> None:
    """A requester on another Bot Framework channel is a user of that channel (never an
    msteams one), and their news still goes out through the Teams room's notifier, the one
    that speaks the Bot Framework: an admin's action on their ticket is applied."""
    bot = signed_bot
    assert await register(bot, ANA) == say("admins_registered")
    requester = Requester("webchat", "dl_alex", "Alex", "webchat:dl_conversation")
    await bot.app[RUNTIME].tickets.open_or_join(
        requester,
        bounce={"status": "5.7.12", "smtp_code": "550", "recipients": ["ana@contoso.com"]},
        path={"role": "sender"},
        note=None,
        dedupe_key=None,
    )
    await drained(bot)
    before = await ticket_state(bot)
    answer = await execute(bot, ANA, "assign_me", {"ref": await ticket_ref(bot), "version": 1})
    assert answer["type"] == "application/vnd.microsoft.card.adaptive", answer
    after = await ticket_state(bot)
    assert after[1] == [*before[1], "assigned"]
    jobs = await bot.app[RUNTIME].store.jobs.ticket_jobs(TICKET)
    assert {job.target for job in jobs} <= {"msteams", "slack", "webhook"}
