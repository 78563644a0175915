"""Socket Mode: with SLACK_APP_TOKEN set the bot connects out. The fake Web API answers
apps.connections.open with a local fake Socket Mode server, which delivers the envelopes and
checks that each one is acknowledged in time; the replies go to the fake Web API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import BACKGROUND
from tests.fakes_slack import Call, FakeSlackWebAPI, FakeSocketModeServer
from tests.fakes_slack.harness import (
    APP_TOKEN,
    SlackBot,
    buttons,
    corpus,
    payload,
)

ACK_WITHIN_SECONDS = 3.0


@pytest.fixture
async def slack(tmp_path: Path) -> AsyncIterator[tuple[SlackBot, FakeSocketModeServer]]:
    api, sockets = FakeSlackWebAPI(), FakeSocketModeServer()
    await api.start()
    await sockets.start()
    api.socket_mode_url = sockets.url
    bot = SlackBot(api, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", socket_mode=True)
    await bot.start()
    try:
        yield bot, sockets
    finally:
        await bot.close()
        await sockets.close()
        await api.close()


async def deliver_dm(
    bot: SlackBot, sockets: FakeSocketModeServer, text: str, *, expect: int = 1
) -> list[Call]:
    before = len(bot.api.of("chat.postMessage"))
    envelope_id = await sockets.deliver("events_api", bot.dm(text))
    await sockets.wait_ack(envelope_id, ACK_WITHIN_SECONDS)
    return (await bot.api.wait_for("chat.postMessage", before + expect))[before:]


async def test_one_conversation_over_socket_mode(
    slack: tuple[SlackBot, FakeSocketModeServer],
) -> None:
    bot, sockets = slack
    await sockets.wait_connected()
    (opened,) = bot.api.of("apps.connections.open")
    assert opened.headers["Authorization"] == f"Bearer {APP_TOKEN}"
    # No public endpoint in Socket Mode.
    assert (await bot.client.post("/slack/events", data="{}")).status == 404

    # A bounce by direct message.
    (first,) = await deliver_dm(bot, sockets, corpus("en-new-5712-mailbox.txt"))
    assert first.params["channel"] == "D0ADMIN01"
    assert buttons(first) == ["I sent the message", "I'm an email admin"]

    # A button click, as an interactive envelope.
    envelope_id = await sockets.deliver("interactive", bot.click(first, "I'm an email admin"))
    await sockets.wait_ack(envelope_id, ACK_WITHIN_SECONDS)
    (second,) = (await bot.api.wait_for("chat.postMessage", 2))[1:]
    assert "User mailbox" in buttons(second)
    await bot.api.wait_for("chat.update")

    # Text answers, to the steps.
    await deliver_dm(bot, sockets, "user mailbox")
    await deliver_dm(bot, sockets, "allow everyone")
    answer = await deliver_dm(bot, sockets, "powershell")
    assert any(block["type"] == "header" for call in answer for block in call.blocks)
    assert "It worked" in buttons(answer[-1])

    # Slack retries an envelope it thinks was lost: acknowledged, answered once.
    retried = bot.dm("thanks")
    posted = len(bot.api.of("chat.postMessage"))
    for attempt in (0, 1):
        envelope_id = await sockets.deliver("events_api", retried, retry_attempt=attempt)
        await sockets.wait_ack(envelope_id, ACK_WITHIN_SECONDS)
    await bot.api.wait_for("chat.postMessage", posted + 1)
    for _ in range(50):
        await asyncio.sleep(0.02)
        if not len(bot.app[BACKGROUND]):
            break
    assert len(bot.api.of("chat.postMessage")) == posted + 1

    # The slash command is acknowledged with a word about where the answer goes.
    envelope_id = await sockets.deliver("slash_commands", payload("slash_command"))
    ack = await sockets.wait_ack(envelope_id, ACK_WITHIN_SECONDS)
    assert "direct message" in ack["payload"]["text"]
    await bot.api.wait_for("conversations.open")
    assert sockets.connections == 1


async def test_the_server_starts_while_slack_is_unreachable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api = FakeSlackWebAPI()
    await api.start()
    bot = SlackBot(api, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", socket_mode=True)
    await api.close()  # nothing listens at SLACK_API_URL any more
    started = asyncio.get_running_loop().time()
    await bot.start()
    try:
        assert asyncio.get_running_loop().time() - started < 5
        assert (await bot.client.get("/healthz")).status == 200
        assert "auth.test failed" in caplog.text
    finally:
        await bot.close()
