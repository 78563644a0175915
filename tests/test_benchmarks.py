"""The side-by-side benchmark (benchmarks/run.py) works: its pieces with tiny sizes, over real
HTTP, in child processes, and the report it prints. Figures are not asserted (they are timings);
what is asserted is that requests were answered and replies counted."""

from __future__ import annotations

import json

import pytest

from benchmarks import run
from benchmarks.harness import ServerFailed, child
from benchmarks.slack_wire import FakeWebAPI


def test_a_slack_conversation_goes_on_only_once_its_last_turn_was_answered() -> None:
    api = FakeWebAPI()
    traffic = run.SlackTraffic(api, ["paste", "admin"], replies=[1, 2], prefix="T")
    first = channel_of(traffic(0))  # a first conversation starts
    second = channel_of(traffic(0))  # the first is not answered yet: a second one starts
    assert first != second
    assert traffic.expected == 2
    api.by_channel[first] += 1  # the first one's reply
    body = traffic(0)
    assert channel_of(body) == first
    assert json.loads(body[0])["event"]["text"] == "admin"
    assert traffic.expected == 4
    assert channel_of(traffic(0)) not in (first, second)  # the second still waits


def channel_of(request: tuple[bytes, object]) -> str:
    """The DM channel of a signed event."""
    return str(json.loads(request[0])["event"]["channel"])


async def test_a_server_that_does_not_start_is_named_with_its_error() -> None:
    with pytest.raises(ServerFailed, match=r"(?s)did not start.*no such kind"):
        async with child("broken", ["-c", "import sys; sys.exit('no such kind')"]):
            pass


async def test_a_server_deaf_to_its_stdin_is_ended_when_the_block_ends() -> None:
    sleeper = ["-c", "print(1, flush=True); import time; time.sleep(60)"]
    async with child("sleeper", sleeper, stop_seconds=0.5) as started:
        assert started.port == 1
    assert started.process.poll() is not None


async def test_the_baselines_under_tiny_loads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = run.parse_args(["--seconds=0.5", "--connections=4", "--drain=5", "--only=a,c"])
    rows, found = await run.run(args)
    assert found is None
    bare, bolt = rows["a"], rows["c"]
    assert bare.phase.requests > 0
    assert bare.phase.errors == 0
    assert bolt.phase.requests > 0
    assert bolt.replies == bolt.expected == bolt.phase.requests  # one say() per event
    printed = capsys.readouterr().out
    assert "(a) bare aiohttp POST" in printed
    assert "(c) bolt AsyncApp echo" in printed
    assert "total time" in printed
