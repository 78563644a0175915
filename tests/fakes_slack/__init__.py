"""Fake Slack for the Slack channel's tests: a Web API on 127.0.0.1 that records every call
(and answers 429 on demand), file downloads, and a Socket Mode WebSocket server."""

from tests.fakes_slack.socket_mode import FakeSocketModeServer
from tests.fakes_slack.web_api import BOT_ID, BOT_USER_ID, TEAM_ID, Call, FakeSlackWebAPI

__all__ = [
    "BOT_ID",
    "BOT_USER_ID",
    "TEAM_ID",
    "Call",
    "FakeSlackWebAPI",
    "FakeSocketModeServer",
]
