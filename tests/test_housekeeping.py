"""Housekeeping over real HTTP: /metrics labels bounded to known values, and Slack's
``ssl_check`` answered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.fakes.teams_harness import TeamsBot, teams_bot
from tests.fakes_slack import FakeSlackWebAPI
from tests.fakes_slack.harness import SlackBot


def _series(metrics: str) -> list[str]:
    """The sample lines of a /metrics page (comments left out)."""
    return [line for line in metrics.splitlines() if line and not line.startswith("#")]


async def _metrics_page(bot: TeamsBot) -> str:
    response = await bot.client.get("/metrics")
    assert response.status == 200
    return await response.text()


async def test_made_up_channel_ids_leave_the_metrics_series_count_flat(tmp_path: Path) -> None:
    async with teams_bot(tmp_path) as bot:  # local mode: the channelId is whatever is sent
        assert (await bot.post(bot.activity(text="hello", channelId="made-up-0"))).status == 201
        before = _series(await _metrics_page(bot))
        for number in range(1, 200):
            response = await bot.post(bot.activity(text="hello", channelId=f"made-up-{number}"))
            assert response.status == 201
        after = _series(await _metrics_page(bot))
    assert len(after) == len(before)
    assert not [line for line in after if "made-up" in line]
    assert 'ndrbot_turns_total{channel="other",intent="greeting"} 200.0' in after


# ---- Slack's ssl_check ----------------------------------------------------------------------


@pytest.fixture
async def slack(tmp_path: Path) -> AsyncIterator[SlackBot]:
    api = FakeSlackWebAPI()
    await api.start()
    bot = SlackBot(api, f"sqlite+aiosqlite:///{tmp_path / 'slack.db'}")
    await bot.start()
    yield bot
    await bot.close()
    await api.close()


FORM = "application/x-www-form-urlencoded"


async def test_ssl_check_is_answered_200_signed_or_not(slack: SlackBot) -> None:
    body = urlencode({"ssl_check": "1", "token": "legacy-verification-token"})
    calls = len(slack.api.calls)
    unsigned = await slack.client.post("/slack/events", data=body, headers={"Content-Type": FORM})
    assert unsigned.status == 200
    assert await unsigned.read() == b""
    signed = await slack.post(body, FORM)
    assert signed.status == 200
    assert len(slack.api.calls) == calls  # nothing done


async def test_a_form_that_is_not_an_ssl_check_is_still_checked(slack: SlackBot) -> None:
    body = urlencode({"ssl_check": "1", "command": "/ndr", "user_id": "U1", "channel_id": "C1"})
    unsigned = await slack.client.post("/slack/events", data=body, headers={"Content-Type": FORM})
    assert unsigned.status == 401  # a command is signed, whatever else it says
    other = urlencode({"ssl_check": "0", "token": "t"})
    response = await slack.client.post("/slack/events", data=other, headers={"Content-Type": FORM})
    assert response.status == 401
