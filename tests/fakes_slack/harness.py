"""The bot under test, over real HTTP: ``create_app`` on a TestServer, requests signed as Slack
signs them, the Web API pointed at the fake, and helpers to build payloads from the recorded
JSON in tests/payloads/slack/."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.signature import SignatureVerifier

from bot.app import BACKGROUND, TICKET_TIMING, create_app
from bot.config import load_settings
from bot.tickets import TicketTiming
from tests.fakes_slack.web_api import Call, FakeSlackWebAPI

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "slack"
CORPUS = Path(__file__).resolve().parents[1] / "corpus"
SIGNING_SECRET = "test-signing-secret-0123456789abcdef"  # noqa: S105 - a test value
BOT_TOKEN = "xoxb-test-0000-token"  # noqa: S105 - a test value
APP_TOKEN = "xapp-test-0000-token"  # noqa: S105 - a test value
# What bolt and slack_sdk would read from the environment: tests must not see the real ones.
SLACK_ENV_VARS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    "SLACK_VERIFICATION_TOKEN",
)


def payload(name: str) -> dict[str, Any]:
    """A recorded payload, as a fresh copy to change."""
    return copy.deepcopy(json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8")))


def corpus(name: str) -> str:
    """A message of tests/corpus."""
    return (CORPUS / name).read_text(encoding="utf-8")


class SlackBot:
    """The running app and the ways Slack talks to it."""

    def __init__(
        self,
        api: FakeSlackWebAPI,
        database_url: str,
        *,
        socket_mode: bool = False,
        env: Mapping[str, str] | None = None,
        timing: TicketTiming | None = None,
    ) -> None:
        values = {
            "DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": api.api_url,
            **(env or {}),
        }
        if socket_mode:  # no signing secret: nothing comes in over HTTP
            values["SLACK_APP_TOKEN"] = APP_TOKEN
            del values["SLACK_SIGNING_SECRET"]
        self.settings = load_settings(values, env_file=None)
        self.app = create_app(self.settings)
        if timing is not None:  # how fast the tickets' job worker delivers
            self.app[TICKET_TIMING] = timing
        self.api = api
        self.client = TestClient(TestServer(self.app, host="127.0.0.1"))
        self._event_ids = iter(range(1000, 10**9))

    async def start(self) -> None:
        """Start serving (runs the app's startup: store, Slack client, Socket Mode)."""
        await self.client.start_server()

    async def close(self) -> None:
        """Stop serving (runs the app's cleanup, background turns finished)."""
        await self.client.close()

    # -- signed requests ------------------------------------------------------------------------

    def headers(
        self,
        body: str | bytes,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str = "",
    ) -> dict[str, str]:
        """Slack's headers for a body: content type, timestamp and signature."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(secret or SIGNING_SECRET).generate_signature(
            timestamp=stamp, body=body
        )
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature,
        }

    async def post(
        self,
        body: str | bytes,
        content_type: str,
        *,
        extra: Mapping[str, str] | None = None,
        **sign: Any,
    ) -> ClientResponse:
        """POST a raw body to /slack/events, signed."""
        headers = {**self.headers(body, content_type, **sign), **(extra or {})}
        data = body.encode() if isinstance(body, str) else body
        return await self.client.post("/slack/events", data=data, headers=headers)

    async def event(
        self, envelope: dict[str, Any], *, retry_num: int | None = None, **sign: Any
    ) -> ClientResponse:
        """Deliver an Events API envelope (as Slack retries it, with ``retry_num``)."""
        extra = {}
        if retry_num is not None:
            extra = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return await self.post(json.dumps(envelope), "application/json", extra=extra, **sign)

    async def command(self, form: dict[str, str]) -> ClientResponse:
        """A slash command, as the form Slack posts."""
        return await self.post(urlencode(form), "application/x-www-form-urlencoded")

    async def interaction(self, payload: dict[str, Any]) -> ClientResponse:
        """A button click or a shortcut: ``payload=<json>`` in a form."""
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded")

    # -- payloads -------------------------------------------------------------------------------

    def dm(
        self, text: str, *, user: str = "U0ADMIN01", channel: str = "D0ADMIN01"
    ) -> dict[str, Any]:
        """A message.im envelope with a fresh event id."""
        envelope = payload("message_im")
        number = next(self._event_ids)
        envelope["event_id"] = f"Ev{number:010d}"
        envelope["event"].update(
            text=text, user=user, channel=channel, ts=f"1700001000.{number:06d}"
        )
        return envelope

    def mention(
        self, text: str, *, user: str = "U0SENDER1", thread_ts: str | None = None
    ) -> dict[str, Any]:
        """An app_mention envelope (in a thread when ``thread_ts``) with a fresh event id."""
        envelope = payload("app_mention")
        number = next(self._event_ids)
        envelope["event_id"] = f"Ev{number:010d}"
        event = envelope["event"]
        event.update(text=text, user=user, ts=f"1700002000.{number:06d}")
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        return envelope

    def click(self, posted: Call, label: str, *, user: str = "U0ADMIN01") -> dict[str, Any]:
        """The block_actions payload of clicking the button ``label`` of a posted message."""
        for block in posted.blocks:
            if block.get("type") != "actions":
                continue
            for button in block["elements"]:
                if button["text"]["text"] == label:
                    click = payload("block_actions")
                    number = next(self._event_ids)
                    channel = str(posted.params["channel"])
                    thread = posted.params.get("thread_ts")
                    click["user"]["id"] = user
                    click["trigger_id"] = f"{number}.{number}.trigger"
                    click["container"].update(channel_id=channel, message_ts=f"1.{number}")
                    click["channel"]["id"] = channel
                    click["message"].update(
                        ts=f"1.{number}", blocks=posted.blocks, text=posted.text
                    )
                    if thread:
                        click["container"]["thread_ts"] = thread
                        click["message"]["thread_ts"] = thread
                    click["actions"] = [
                        {
                            **button,
                            "block_id": block["block_id"],
                            "action_ts": f"1700003000.{number:06d}",
                        }
                    ]
                    return click
        raise AssertionError(f"no button {label!r} in {posted.blocks}")

    def submit(self, opened: Call, value: str | None, *, user: str = "U0ADMIN01") -> dict[str, Any]:
        """The view_submission payload of the modal ``opened`` (a views.open call) filled in
        with ``value`` (the text typed, or the user picked in a users_select)."""
        view = opened.view
        number = next(self._event_ids)
        values: dict[str, dict[str, Any]] = {}
        for block in view.get("blocks", ()):
            if block.get("type") != "input":
                continue
            element = block["element"]
            if element["type"] == "users_select":
                field = {"type": "users_select", "selected_user": value}
            else:
                field = {"type": element["type"], "value": value}
            values[block["block_id"]] = {element["action_id"]: field}
        return {
            "type": "view_submission",
            "team": {"id": "T0TEAM001", "domain": "example-team"},
            "user": {"id": user, "username": user.lower(), "name": user.lower()},
            "api_app_id": "A0APP0001",
            "token": "scrubbed",
            "trigger_id": f"{number}.{number}.submit",
            "view": {
                **view,
                "id": self.api.view_id(opened),
                "team_id": "T0TEAM001",
                "state": {"values": values},
                "hash": f"{number}.hash",
                "app_id": "A0APP0001",
                "bot_id": "B0BOT0001",
            },
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }


def buttons(call: Call) -> list[str]:
    """The labels of a posted message's buttons."""
    return [
        element["text"]["text"]
        for block in call.blocks
        if block.get("type") == "actions"
        for element in block["elements"]
    ]


def all_text(call: Call) -> str:
    """Everything a posted message says: fallback text and every block's text."""
    return call.text + "\n" + json.dumps(call.blocks, ensure_ascii=False)


async def until(what: str, condition: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll ``condition`` until it is truthy (and return it); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def settle(bot: SlackBot) -> None:
    """Let the app's background work finish (so a test can assert that nothing more was sent, or
    that nothing failed); gives up after two seconds."""
    for _ in range(100):
        await asyncio.sleep(0.02)
        if not len(bot.app[BACKGROUND]):
            return
