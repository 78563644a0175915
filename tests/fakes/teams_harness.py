"""The whole server over real HTTP for Teams tests: ``create_app`` on 127.0.0.1, a fake Bot
Connector the replies go to, and (with an app id) a fake OpenID issuer botbuilder validates
tokens against. Activities come from the recorded payloads in ``tests/payloads/teams``."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import FIX_RUNNER, METRICS, RUNTIME, TICKET_TIMING, create_app
from bot.channels import teams
from bot.config import load_settings
from bot.tickets import FixRunner, TicketTiming
from tests.fakes.bot_connector import FakeBotConnector, Posted
from tests.fakes.openid_issuer import FakeOpenIdIssuer

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads" / "teams"
APP_ID = "00000000-0000-4000-8000-0000000000b0"  # matches the payloads' "28:<app id>"
BOT_TOKEN = "test-bot-token"  # noqa: S105 - what the bot sends the fake Bot Connector
_ids: Iterator[int] = itertools.count(1)


def payload(kind: str, /, **changes: Any) -> dict[str, Any]:
    """A recorded activity, with top-level fields changed and a fresh id."""
    activity: dict[str, Any] = json.loads((PAYLOADS / f"{kind}.json").read_text("utf-8"))
    activity["id"] = f"{activity.get('id', 'act')}-{next(_ids)}"
    activity.update(changes)
    return activity


@dataclass
class TeamsBot:
    """A running bot and its fakes."""

    app: web.Application
    client: TestClient[web.Request, web.Application]
    connector: FakeBotConnector
    issuer: FakeOpenIdIssuer | None = None
    conversation: dict[str, Any] | None = None  # sent with every activity when set
    last_card: dict[str, Any] | None = field(default=None, repr=False)

    def activity(self, kind: str = "personal_message", /, **changes: Any) -> dict[str, Any]:
        """A payload (named after its file) addressed to this bot's fake connector."""
        activity = payload(kind, serviceUrl=self.connector.url, **changes)
        if self.conversation is not None:
            activity["conversation"] = copy.deepcopy(self.conversation)
        return activity

    def token(self, activity: Mapping[str, Any]) -> str:
        """A valid Bot Framework token for this activity."""
        assert self.issuer is not None
        return self.issuer.token(APP_ID, str(activity["serviceUrl"]))

    async def post(
        self,
        activity: Any,
        *,
        authorization: str | None = None,
        signed: bool | None = None,
        content_type: str = "application/json",
        raw: bytes | None = None,
    ) -> ClientResponse:
        """POST /api/messages; signed (with a valid token) by default when there is an app id."""
        headers = {"Content-Type": content_type}
        if signed is None:
            signed = self.issuer is not None
        if signed:
            headers["Authorization"] = f"Bearer {self.token(activity)}"
        if authorization is not None:
            headers["Authorization"] = authorization
        body = raw if raw is not None else json.dumps(activity).encode()
        response = await self.client.post("/api/messages", data=body, headers=headers)
        await response.read()
        return response

    async def send(self, activity: dict[str, Any]) -> list[Posted]:
        """Send an activity; return what the bot posted back (typing indicators left out)."""
        response = await self.post(activity)
        assert response.status in (200, 201), (response.status, await response.text())
        posted = [each for each in self.connector.take() if each.activity["type"] != "typing"]
        for each in posted:
            if each.cards:
                self.last_card = each.cards[-1]
        return posted

    async def say(
        self, text: str, kind: str = "personal_message", /, **changes: Any
    ) -> list[Posted]:
        """The user types ``text``."""
        return await self.send(self.activity(kind, text=text, **changes))

    async def click(self, title: str) -> list[Posted]:
        """The user presses the button ``title`` of the last card (or picks it from its list)."""
        assert self.last_card is not None, "no card was shown"
        value = button_value(self.last_card, title)
        activity = self.activity("card_submit", value={**value, "msteams": {"type": "x"}})
        return await self.send(activity)

    @property
    def metrics_text(self) -> str:
        """The /metrics page as text."""
        return self.app[METRICS].render().decode()


def button_value(card: Mapping[str, Any], title: str) -> dict[str, Any]:
    """What Teams sends when ``title`` is pressed (or chosen in the card's list and submitted)."""
    for action in card.get("actions", []):
        if action.get("title") == title:
            return dict(action["data"])
    for element in card.get("body", []):
        if element.get("type") == "Input.ChoiceSet":
            for choice in element["choices"]:
                if choice["title"] == title:
                    submit = card["actions"][0]["data"]
                    return {**submit, element["id"]: choice["value"]}
    raise AssertionError(f"no button {title!r} on the card")


def words(posted: list[Posted]) -> str:
    """Everything the bot said, as text: messages' text and cards' fallback text."""
    parts = []
    for each in posted:
        if each.text:
            parts.append(each.text)
        parts += [str(card.get("fallbackText", "")) for card in each.cards]
    return "\n".join(parts)


@asynccontextmanager
async def teams_bot(
    tmp_path: Path,
    *,
    app_id: str | None = None,
    env: Mapping[str, str] | None = None,
    middlewares: tuple[Any, ...] = (),
    ticket_timing: TicketTiming | None = None,
    endorsements: tuple[str, ...] | None = None,
    fix_runner: FixRunner | None = None,
    **options: Any,
) -> AsyncIterator[TeamsBot]:
    """Start the server (local mode, or with ``app_id`` and a fake issuer whose key is endorsed
    for ``endorsements``, the issuer's default channels if None) and its fakes; ``fix_runner``:
    the directory the tickets make approved changes through."""
    connector = await FakeBotConnector().start()
    issuer = None
    if app_id:
        fake = (
            FakeOpenIdIssuer()
            if endorsements is None
            else FakeOpenIdIssuer(endorsements=endorsements)
        )
        issuer = await fake.start()
    values = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'teams.db'}",
        # The fake connector serves the files (as the Bot Connector serves attachments).
        "TEAMS_ATTACHMENT_HOSTS": connector.url,
        **(env or {}),
    }
    if app_id:
        values |= {"MICROSOFT_APP_ID": app_id, "MICROSOFT_APP_PASSWORD": "not-a-real-secret"}
    app = create_app(load_settings(values, env_file=None))
    app.middlewares.extend(middlewares)
    if ticket_timing is not None:
        app[TICKET_TIMING] = ticket_timing
    app[FIX_RUNNER] = fix_runner
    tuned: dict[str, Any] = {"retry_base_seconds": 0.01, **options}
    if issuer is not None:
        tuned |= {
            "channel_openid_metadata_url": issuer.metadata_url,
            "emulator_openid_metadata_url": issuer.metadata_url,
            "token_source": _bot_token,
        }
    app[teams.OPTIONS] = replace(app[teams.OPTIONS], **tuned)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield TeamsBot(app, client, connector, issuer)
    finally:
        await client.close()
        await connector.close()
        if issuer is not None:
            await issuer.close()


async def _bot_token() -> str:
    return BOT_TOKEN


__all__ = ["APP_ID", "RUNTIME", "TeamsBot", "button_value", "payload", "teams_bot", "words"]
