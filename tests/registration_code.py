"""The one-time registration code a server prints at start, read back from the captured log,
for the tests that register the admins' channel with it (Teams and Slack alike)."""

from __future__ import annotations

import logging
import re

import pytest

_CODE = re.compile(r'"register admins (\d{3}-\d{3})"')


def logged_code(caplog: pytest.LogCaptureFixture) -> str:
    """The one-time registration code the server printed at start (its one WARNING line)."""
    found = [
        match.group(1)
        for record in caplog.records
        if record.levelno == logging.WARNING
        for match in [_CODE.search(record.getMessage())]
        if match
    ]
    assert len(found) == 1, f"expected one code in the log, found {found}"
    return found[0]
