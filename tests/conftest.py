"""Fixtures every test module may use: a bot database of its own, and no Slack settings leaking
in from the developer's environment (slack-bolt reads some of them by itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes_slack.harness import SLACK_ENV_VARS
from tests.kb_copies import copy_data


@pytest.fixture(autouse=True)
def _no_slack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SLACK_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A SQLite file of the test's own."""
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A copy of knowledge/data for a test to break on purpose."""
    return copy_data(tmp_path)
