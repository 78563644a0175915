"""The Slack channel over real HTTP: signed requests into the running app at /slack/events, and a
fake Slack Web API on 127.0.0.1 that records every call the bot makes."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.channels.slack import SLACK
from dialogs.replies import Text
from knowledge.kb import default_knowledge
from tests.fakes_slack import BOT_ID, BOT_USER_ID, Call, FakeSlackWebAPI
from tests.fakes_slack.harness import (
    BOT_TOKEN,
    SlackBot,
    all_text,
    buttons,
    corpus,
    payload,
    settle,
)

BOUNCE = "en-new-5712-mailbox.txt"
ADMIN_DM = "D0ADMIN01"


@pytest.fixture
async def bot(api: FakeSlackWebAPI, database_url: str) -> AsyncIterator[SlackBot]:
    running = SlackBot(api, database_url)
    await running.start()
    yield running
    await running.close()


async def say(bot: SlackBot, text: str, *, expect: int = 1) -> list[Call]:
    """DM the bot; return the messages it posted for that turn."""
    before = len(bot.api.of("chat.postMessage"))
    response = await bot.event(bot.dm(text))
    assert response.status == 200
    return (await bot.api.wait_for("chat.postMessage", before + expect))[before:]


async def click(
    bot: SlackBot, posted: Call, label: str, *, expect: int = 1, user: str = "U0ADMIN01"
) -> list[Call]:
    """Click a button of a posted message; return the messages posted for that turn."""
    before = len(bot.api.of("chat.postMessage"))
    response = await bot.interaction(bot.click(posted, label, user=user))
    assert response.status == 200
    return (await bot.api.wait_for("chat.postMessage", before + expect))[before:]


def steps_message(calls: list[Call]) -> Call:
    return next(call for call in calls if any(b["type"] == "header" for b in call.blocks))


# ---- whole conversations ----------------------------------------------------------------------


async def test_admin_conversation_in_a_dm_by_text(bot: SlackBot) -> None:
    (first,) = await say(bot, corpus(BOUNCE))
    assert first.params["channel"] == ADMIN_DM
    assert "thread_ts" not in first.params
    assert "5.7.12" in first.text
    assert buttons(first) == ["I sent the message", "I'm an email admin"]

    (second,) = await say(bot, "I'm an email admin")
    assert "ana.lopez@contoso.com" in second.text
    assert "User mailbox" in buttons(second)

    # The bounce's own "allowed senders list" is Microsoft's wording, not the admin's choice.
    (third,) = await say(bot, "user mailbox")
    assert "Allow everyone" in buttons(third)

    (fourth,) = await say(bot, "allow everyone")
    assert "Exchange Online PowerShell" in buttons(fourth)

    answer = await say(bot, "PowerShell", expect=1)
    steps = steps_message(answer)
    _assert_within_limits(steps)
    preformatted = [
        element["elements"][0]["text"]
        for block in steps.blocks
        if block["type"] == "rich_text"
        for element in block["elements"]
        if element["type"] == "rich_text_preformatted"
    ]
    assert any("Set-Mailbox" in code or "Get-Mailbox" in code for code in preformatted)
    facts = [b for b in steps.blocks if b["type"] == "section" and "fields" in b]
    assert facts, "the bounce's facts are shown beside the steps"
    assert "alex.kim@fabrikam.com" in json.dumps(facts)
    assert "It worked" in buttons(answer[-1])

    (done,) = await say(bot, "it worked")
    assert not buttons(done)


async def test_admin_conversation_in_a_dm_by_buttons(bot: SlackBot) -> None:
    (first,) = await say(bot, corpus(BOUNCE))
    (second,) = await click(bot, first, "I'm an email admin")
    update = (await bot.api.wait_for("chat.update"))[0]
    assert update.params["channel"] == ADMIN_DM
    assert "I'm an email admin" in json.dumps(update.blocks)
    assert not [b for b in update.blocks if b["type"] == "actions"], "the clicked buttons go"

    (third,) = await click(bot, second, "User mailbox")
    (fourth,) = await click(bot, third, "Allow everyone")
    answer = await click(bot, fourth, "Exchange Online PowerShell")
    steps = steps_message(answer)
    assert "User mailbox" in all_text(steps)
    _assert_within_limits(steps)
    (done,) = await click(bot, answer[-1], "It worked")
    assert "glad" in done.text.lower()
    assert len(bot.api.of("chat.update")) == 5


async def test_sender_conversation_from_a_mention_is_answered_in_the_thread(
    bot: SlackBot,
) -> None:
    before = len(bot.api.of("chat.postMessage"))
    envelope = bot.mention(f"<@{BOT_USER_ID}> what does this mean?\n{corpus(BOUNCE)}")
    ts = envelope["event"]["ts"]
    assert (await bot.event(envelope)).status == 200
    (first,) = (await bot.api.wait_for("chat.postMessage", before + 1))[before:]
    assert first.params["channel"] == "C0HELP0001"
    assert first.params["thread_ts"] == ts
    assert "5.7.12" in first.text

    # The answer comes back in the thread, by a mention there or by a button.
    reply = bot.mention(f"<@{BOT_USER_ID}> I sent the message", thread_ts=ts)
    assert (await bot.event(reply)).status == 200
    answer = (await bot.api.wait_for("chat.postMessage", before + 2))[before + 1 :]
    assert all(call.params["thread_ts"] == ts for call in answer)
    text = all_text(answer[0])
    assert "contoso.com" in text
    assert "Subject: Mail from alex.kim@fabrikam.com" in text  # the note, preformatted


async def test_a_button_in_a_thread_answers_in_that_thread(bot: SlackBot) -> None:
    envelope = bot.mention(f"<@{BOT_USER_ID}> {corpus(BOUNCE)}")
    ts = envelope["event"]["ts"]
    await bot.event(envelope)
    (first,) = await bot.api.wait_for("chat.postMessage")
    (second,) = await click(bot, first, "I'm an email admin", user="U0SENDER1")
    assert second.params["thread_ts"] == ts
    assert second.params["channel"] == "C0HELP0001"


# ---- the other surfaces -----------------------------------------------------------------------


async def test_the_slash_command_answers_in_a_direct_message(bot: SlackBot) -> None:
    response = await bot.command(payload("slash_command"))
    assert response.status == 200
    assert "direct message" in (await response.json())["text"]
    (opened,) = await bot.api.wait_for("conversations.open")
    assert opened.params["users"] == "U0SENDER1"
    (posted,) = await bot.api.wait_for("chat.postMessage")
    assert posted.params["channel"] == "D0SENDER1"
    assert "5.7.12" in posted.text

    # Once the DM is known, /ndr typed in it is answered there without a word about it.
    again = payload("slash_command")
    again.update(channel_id="D0SENDER1", channel_name="directmessage", trigger_id="2.2.t", text="")
    response = await bot.command(again)
    assert response.status == 200
    assert not await response.text()
    (_, help_reply) = await bot.api.wait_for("chat.postMessage", 2)
    assert "Here is what I can do" in help_reply.text
    assert len(bot.api.of("conversations.open")) == 1


async def test_the_shortcut_takes_a_pasted_bounce_into_a_dm(bot: SlackBot) -> None:
    shortcut = payload("message_action")
    shortcut["message"]["text"] = corpus("en-slack-codeblock-57133.txt")
    response = await bot.interaction(shortcut)
    assert response.status == 200
    (posted,) = await bot.api.wait_for("chat.postMessage")
    assert posted.params["channel"] == "D0SENDER1"
    text = all_text(posted)
    assert "5.7.133" in text
    assert "I sent the message" in buttons(posted)


@pytest.mark.parametrize(
    ("name", "status", "recipient"),
    [
        ("en-slack-codeblock-57133.txt", "5.7.133", "sales@contoso.com"),
        ("es-slack-new-57134.txt", "5.7.134", "lucia.garcia@contoso.com"),
    ],
)
async def test_slack_markup_is_undone_before_the_bounce_is_read(
    bot: SlackBot, name: str, status: str, recipient: str
) -> None:
    (first,) = await say(bot, corpus(name))
    assert status in first.text
    (second,) = await say(bot, "I'm an email admin")
    assert recipient in second.text
    assert "mailto" not in all_text(second)
    assert "&amp;lt;" not in all_text(second)


async def test_an_eml_file_in_the_dm_is_downloaded_with_the_bot_token(bot: SlackBot) -> None:
    eml = (Path(__file__).parent / "corpus" / "en-eml-57129-mailbox-7bit.eml").read_bytes()
    envelope = payload("message_file_share")
    shared = envelope["event"]["files"][0]
    shared["size"] = len(eml)
    shared["url_private_download"] = bot.api.add_file("bounce.eml", eml)
    assert (await bot.event(envelope)).status == 200
    (download,) = await bot.api.wait_for("files.download")
    assert download.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    (posted,) = await bot.api.wait_for("chat.postMessage")
    assert "5.7.129" in posted.text or "5.7.12" in posted.text
    assert "I'm an email admin" in buttons(posted)


async def test_a_file_over_the_cap_is_refused_politely(
    api: FakeSlackWebAPI, database_url: str
) -> None:
    bot = SlackBot(api, database_url, env={"FILE_MAX_BYTES": "1000"})
    await bot.start()
    try:
        big = b"From: a@b.c\n\n" + b"x" * 5000
        envelope = payload("message_file_share")
        # Slack says the file is small, but it is not: the download stops at the cap.
        envelope["event"]["files"][0]["url_private_download"] = api.add_file("big.eml", big)
        envelope["event"]["files"][0]["size"] = 500
        await bot.event(envelope)
        (posted,) = await api.wait_for("chat.postMessage")
        assert "bounce.eml" in posted.text
        assert "1000 bytes" in posted.text

        told = payload("message_file_share")  # Slack says it is too large: not even fetched
        told["event_id"] = "Ev0000000099"
        told["event"]["files"][0]["size"] = 2000
        await bot.event(told)
        await api.wait_for("chat.postMessage", 2)
        assert len(api.of("files.download")) == 1
    finally:
        await bot.close()


async def test_the_bot_token_goes_to_slack_file_hosts_only(bot: SlackBot) -> None:
    envelope = payload("message_file_share")
    url = bot.api.add_file("bounce.eml", b"x").replace("127.0.0.1", "localhost")
    envelope["event"]["files"][0]["url_private_download"] = url
    await bot.event(envelope)
    (posted,) = await bot.api.wait_for("chat.postMessage")
    assert posted.text == default_knowledge().conversation.text(
        "file_download_failed", name="bounce.eml"
    )
    assert not bot.api.of("files.download")


async def test_app_home_shows_how_to_use_the_bot_and_open_tickets(bot: SlackBot) -> None:
    await say(bot, corpus(BOUNCE))
    await say(bot, "escalate")
    (opened,) = await say(bot, "no note")
    assert "NDR-1001" in opened.text

    assert (await bot.event(payload("app_home_opened"))).status == 200
    (published,) = await bot.api.wait_for("views.publish")
    assert published.params["user_id"] == "U0ADMIN01"
    view = published.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["type"] == "home"
    text = json.dumps(view)
    assert "/ndr" in text
    assert "Ask the NDR helpdesk" in text
    assert "NDR-1001" in text


# ---- reliability ------------------------------------------------------------------------------


async def test_a_retried_event_is_answered_once(bot: SlackBot) -> None:
    envelope = bot.dm("hello")
    assert (await bot.event(envelope)).status == 200
    assert (await bot.event(envelope, retry_num=1)).status == 200
    assert (await bot.event(envelope, retry_num=2)).status == 200
    await bot.api.wait_for("chat.postMessage")
    await settle(bot)
    assert len(bot.api.of("chat.postMessage")) == 1


async def test_a_retry_that_reaches_another_instance_is_answered_once(
    api: FakeSlackWebAPI, database_url: str
) -> None:
    first, second = SlackBot(api, database_url), SlackBot(api, database_url)
    await first.start()
    await second.start()
    try:
        envelope = first.dm("hello")
        assert (await first.event(envelope)).status == 200
        await api.wait_for("chat.postMessage")
        assert (await second.event(envelope, retry_num=1)).status == 200
        await settle(second)
        assert len(api.of("chat.postMessage")) == 1
    finally:
        await first.close()
        await second.close()


async def test_every_event_is_acknowledged_at_once_whatever_the_turn_costs(
    bot: SlackBot,
) -> None:
    bot.api.delay("chat.postMessage", 3.5)  # a slow Slack: the turn takes seconds
    started = time.monotonic()
    response = await bot.event(bot.dm(corpus(BOUNCE)))
    assert response.status == 200
    assert time.monotonic() - started < 1.0
    await bot.api.wait_for("chat.postMessage")


async def test_a_bad_signature_or_a_stale_timestamp_is_refused(bot: SlackBot) -> None:
    envelope = bot.dm("hello")
    wrong = "not-the-signing-secret"
    assert (await bot.event(envelope, secret=wrong)).status == 401
    stale = int(time.time()) - 10 * 60
    assert (await bot.event(envelope, timestamp=stale)).status == 401
    body = json.dumps(envelope)
    unsigned = await bot.client.post(
        "/slack/events", data=body, headers={"Content-Type": "application/json"}
    )
    assert unsigned.status == 401
    await settle(bot)
    assert not bot.api.of("chat.postMessage")
    metrics = await (await bot.client.get("/metrics")).text()
    assert 'ndrbot_errors_total{channel="slack",kind="signature"} 3.0' in metrics


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("{not json", "application/json"),
        ("[1, 2, 3]", "application/json"),
        ('{"type": "event_callback", "event_id": "Ev1"}', "application/json"),
        ('{"type": "event_callback", "event": {"type": "message"}}', "application/json"),
        ("payload=%7Bnot+json", "application/x-www-form-urlencoded"),
        ("payload=%7B%22type%22%3A%22block_actions%22%7D", "application/x-www-form-urlencoded"),
        ("command=%2Fndr", "application/x-www-form-urlencoded"),
        ('{"type": "event_callback"}', "text/plain"),
        ("", "application/json"),
    ],
)
async def test_a_malformed_payload_is_refused_and_the_server_keeps_serving(
    bot: SlackBot, body: str, content_type: str
) -> None:
    response = await bot.post(body, content_type)
    assert response.status == 400
    assert (await response.json())["error"]
    # A malformed body that is not signed is refused for its signature first.
    unsigned = await bot.client.post(
        "/slack/events", data=body, headers={"Content-Type": content_type}
    )
    assert unsigned.status == 401

    assert (await bot.client.get("/healthz")).status == 200
    (posted,) = await say(bot, "hello")
    assert "bounce" in posted.text.lower()


async def test_a_body_that_is_not_utf8_or_a_bad_timestamp_is_refused(bot: SlackBot) -> None:
    headers = bot.headers("{}", "application/json")
    response = await bot.client.post("/slack/events", data=b'{"type": "\xff\xfe"}', headers=headers)
    assert response.status == 401
    headers["X-Slack-Request-Timestamp"] = "yesterday"
    response = await bot.client.post("/slack/events", data=b"{]", headers=headers)
    assert response.status == 401
    assert (await bot.client.get("/healthz")).status == 200


async def test_replies_can_be_sent_later_into_a_conversation(bot: SlackBot) -> None:
    # What the escalation side needs to tell a requester about their ticket.
    channel = bot.app[SLACK]
    assert await channel.send("C0HELP0001:1700002000.000001", [Text("Ticket **NDR-1001**")])
    assert await channel.send("D0ADMIN01", [Text("Resolved")])
    thread, dm = await bot.api.wait_for("chat.postMessage", 2)
    assert thread.params["channel"] == "C0HELP0001"
    assert thread.params["thread_ts"] == "1700002000.000001"
    assert thread.text == "Ticket *NDR-1001*"
    assert dm.params["channel"] == "D0ADMIN01"
    assert "thread_ts" not in dm.params


async def test_url_verification_is_answered(bot: SlackBot) -> None:
    response = await bot.event({"type": "url_verification", "challenge": "abc123", "token": "x"})
    assert response.status == 200
    assert (await response.json())["challenge"] == "abc123"


@pytest.mark.parametrize(
    "change",
    [
        {"bot_id": BOT_ID, "user": BOT_USER_ID},  # the bot itself
        {"bot_id": "B0OTHER01", "subtype": "bot_message"},  # another bot
        {"user": BOT_USER_ID},  # the bot's user, without a bot id
        {"subtype": "message_changed"},  # an edit
        {"channel_type": "channel", "channel": "C0HELP0001"},  # not a DM, no mention
    ],
)
async def test_the_bot_ignores_itself_other_bots_and_edits(
    bot: SlackBot, change: dict[str, str]
) -> None:
    envelope = bot.dm(corpus(BOUNCE))
    envelope["event"].update(change)
    assert (await bot.event(envelope)).status == 200
    await settle(bot)
    assert not bot.api.of("chat.postMessage")


async def test_a_rate_limited_post_is_retried_after_retry_after(bot: SlackBot) -> None:
    bot.api.rate_limit("chat.postMessage", times=1, retry_after=1)
    await bot.event(bot.dm("hello"))
    first, second = await bot.api.wait_for("chat.postMessage", 2, timeout=10)
    assert second.at - first.at >= 1.0
    assert first.params == second.params
    metrics = await (await bot.client.get("/metrics")).text()
    assert 'ndrbot_outbound_retries_total{channel="slack"} 1.0' in metrics
    assert 'ndrbot_turns_total{channel="slack",intent="greeting"} 1.0' in metrics


async def test_one_http_session_serves_every_web_api_call(bot: SlackBot) -> None:
    channel = bot.app[SLACK]
    assert channel.client.session is channel.session
    for text in ("hello", "help", "thanks", "hello"):
        await say(bot, text)
    calls = bot.api.calls
    assert len(calls) >= 5  # auth.test and the four answers
    # Kept-alive connections of one pool, not one connection per call.
    assert len({call.peer for call in calls}) <= 2


def _assert_within_limits(call: Call) -> None:
    assert call.text.strip(), "every message has a text fallback"
    assert len(call.blocks) <= 50
    for block in call.blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000


async def test_without_slack_settings_the_endpoint_is_off(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from bot.app import create_app
    from bot.config import load_settings

    app = create_app(load_settings({"DATABASE_URL": database_url}, env_file=None))
    assert "Slack is off" in caplog.text
    async with TestClient(TestServer(app)) as client:
        assert (await client.post("/slack/events", data="{}")).status == 404
        assert (await client.get("/healthz")).status == 200
