"""Fixtures every test module may use: a bot database of its own, and no Slack settings leaking
in from the developer's environment (slack-bolt reads some of them by itself)."""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes_slack import FakeSlackWebAPI
from tests.fakes_slack.harness import SLACK_ENV_VARS
from tests.kb_copies import copy_data


@pytest.fixture(autouse=True)
def _no_slack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SLACK_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def api() -> AsyncIterator[FakeSlackWebAPI]:
    """A fake Slack Web API on 127.0.0.1 (a test file that needs members or users in it
    defines its own)."""
    fake = FakeSlackWebAPI()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A SQLite file of the test's own."""
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A copy of knowledge/data for a test to break on purpose."""
    return copy_data(tmp_path)


# ---- a test that hangs says where ------------------------------------------------------------

HANG_SECONDS = float(os.environ.get("TEST_HANG_SECONDS", "600"))
"""After this long, a test's threads and asyncio tasks are printed and its tasks cancelled: a
hang fails that one test with the place it waited, instead of stalling the whole run."""


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    return [
        found
        for found in gc.get_objects()
        if isinstance(found, asyncio.AbstractEventLoop) and found.is_running()
    ]


def _awaiting(coro: Any) -> Iterator[str]:
    """Where a suspended coroutine waits: each frame down its chain of awaits."""
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            yield f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)


def _dump_and_cancel(name: str) -> None:
    """Runs on a timer thread: print every thread's stack, then (on each running loop, from that
    loop) every task's stack, and cancel the tasks."""
    out = sys.__stderr__ or sys.stderr
    print(f"\n=== {name} still running after {HANG_SECONDS:.0f} s ===", file=out, flush=True)
    faulthandler.dump_traceback(file=out, all_threads=True)

    def on_loop() -> None:
        for task in asyncio.all_tasks():
            print(f"--- {task.get_name()}", file=out)
            for where in _awaiting(task.get_coro()):
                print(f"    {where}", file=out)
        out.flush()
        for task in asyncio.all_tasks():
            task.cancel()

    for loop in _running_loops():
        loop.call_soon_threadsafe(on_loop)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    timer = threading.Timer(HANG_SECONDS, _dump_and_cancel, args=(item.nodeid,))
    timer.daemon = True
    timer.start()
    try:
        return (yield)  # setup, call and teardown
    finally:
        timer.cancel()
