"""Backpressure (issue 11): a burst of Slack deliveries larger than ``SLACK_MAX_WORK_IN_FLIGHT``
is answered in full, with never more than the bound worked on at once: a delivery over it waits
for a slot before it is acknowledged, and one that gets none in time is acknowledged all the same
and waits in the store, kept, until work ends. Over real HTTP, against the fake Web API, which
answers chat.postMessage slowly so that the work piles up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.app import RUNTIME
from bot.channels.slack import SLACK
from tests.fakes_slack import FakeSlackWebAPI
from tests.fakes_slack.harness import SlackBot, until

BOUND = 3
BURST = 4 * BOUND + 2


@pytest.fixture
async def bot(api: FakeSlackWebAPI, database_url: str) -> AsyncIterator[SlackBot]:
    running = SlackBot(api, database_url, env={"SLACK_MAX_WORK_IN_FLIGHT": str(BOUND)})
    await running.start()
    yield running
    await running.close()


async def test_a_burst_over_the_bound_is_all_answered_never_more_than_the_bound_at_once(
    bot: SlackBot, api: FakeSlackWebAPI
) -> None:
    api.delay("chat.postMessage", 0.5)  # each turn holds its slot while its reply is posted
    inbox = bot.app[SLACK].inbox
    channels = {f"D0BURST{n:03d}" for n in range(BURST)}
    envelopes = [bot.dm("hello", user=f"U0BURST{c[-3:]}", channel=c) for c in sorted(channels)]

    responses = await asyncio.gather(*(bot.event(envelope) for envelope in envelopes))
    assert [response.status for response in responses] == [200] * BURST  # all acknowledged

    store = bot.app[RUNTIME].store

    def answered() -> set[str]:
        return {str(call.params.get("channel")) for call in api.of("chat.postMessage")}

    await until("every DM of the burst answered", lambda: answered() >= channels, timeout=30)
    assert inbox.most_in_flight == BOUND  # the bound was reached, and never passed
    await until("every kept delivery done", lambda: inbox.in_flight == 0)
    assert await store.kept.kept_events(pending=True) == []
    done = await store.kept.kept_events()
    assert len(done) == BURST
    assert all(kept.last_error is None and kept.attempts == 1 for kept in done)
