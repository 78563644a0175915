"""The Teams endpoint's HTTP contract: tokens checked by botbuilder against a fake OpenID issuer
(401 for missing, forged, expired or misaddressed tokens), local mode (loopback only, no tokens),
malformed requests (400, 415) that leave the server serving, and replies retried on 429/5xx."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from knowledge.kb import default_knowledge
from tests.fakes.openid_issuer import FakeOpenIdIssuer
from tests.fakes.teams_harness import APP_ID, BOT_TOKEN, TeamsBot, teams_bot, words
from tests.transcripts import ASK_ROLE


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[TeamsBot]:
    async with teams_bot(tmp_path, app_id=APP_ID) as running:
        yield running


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[TeamsBot]:
    async with teams_bot(tmp_path, retry_budget_seconds=2.0) as running:
        yield running


def say(key: str) -> str:
    return default_knowledge().conversation.text(key)


def _issuer(bot: TeamsBot) -> FakeOpenIdIssuer:
    assert bot.issuer is not None
    return bot.issuer


# ---- with an app id: every request's token is validated --------------------------------------


async def test_a_valid_token_is_accepted_and_replies_carry_the_bots_token(
    secured: TeamsBot,
) -> None:
    posted = await secured.say("how do I fix 5.7.12")
    assert ASK_ROLE in words(posted)
    assert {each.headers["Authorization"] for each in posted} == {f"Bearer {BOT_TOKEN}"}


async def test_signing_keys_are_fetched_once(secured: TeamsBot) -> None:
    for _ in range(3):
        await secured.say("help")
    assert _issuer(secured).key_fetches == 1


async def test_a_missing_token_gets_401(secured: TeamsBot) -> None:
    response = await secured.post(secured.activity(text="help"), signed=False)
    assert response.status == 401
    assert "no Authorization" in (await response.json())["error"]
    assert secured.connector.take() == []
    assert 'ndrbot_errors_total{channel="msteams",kind="auth"} 1.0' in secured.metrics_text


@pytest.mark.parametrize(
    "make_header",
    [
        pytest.param(lambda issuer, url: f"Bearer {issuer.forge(APP_ID, url)}", id="forged"),
        pytest.param(
            lambda issuer, url: f"Bearer {issuer.forge(APP_ID, url, kid='unknown-key')}",
            id="unknown-key",
        ),
        pytest.param(lambda issuer, url: f"Bearer {issuer.token('other-app', url)}", id="audience"),
        pytest.param(
            lambda issuer, url: f"Bearer {issuer.token(APP_ID, 'https://evil.example/')}",
            id="service-url",
        ),
        pytest.param(
            lambda issuer, url: f"Bearer {issuer.token(APP_ID, url, lifetime=-3600)}",
            id="expired",
        ),
        pytest.param(
            lambda issuer, url: f"Bearer {issuer.token(APP_ID, url, issuer='https://x.example')}",
            id="issuer",
        ),
        pytest.param(lambda issuer, url: "Bearer not.a.jwt", id="garbage"),
        pytest.param(lambda issuer, url: "Bearer ", id="empty"),
        pytest.param(lambda issuer, url: "Basic dXNlcjpwYXNz", id="basic"),
    ],
)
async def test_a_bad_token_gets_401(secured: TeamsBot, make_header: Any) -> None:
    activity = secured.activity(text="help")
    header = make_header(_issuer(secured), activity["serviceUrl"])
    response = await secured.post(activity, authorization=header)
    assert response.status == 401, await response.text()
    assert secured.connector.take() == []
    # The server goes on serving.
    assert "Here is what I can do" in words(await secured.say("help"))


async def test_a_token_accepted_once_is_checked_again_for_another_service_url(
    secured: TeamsBot,
) -> None:
    activity = secured.activity(text="help")
    header = f"Bearer {secured.token(activity)}"
    assert (await secured.post(activity, authorization=header)).status == 201
    secured.connector.take()
    elsewhere = {**secured.activity(text="help"), "serviceUrl": f"{secured.connector.url}/x"}
    response = await secured.post(elsewhere, authorization=header)
    assert response.status == 401, await response.text()
    assert secured.connector.take() == []
    assert (await secured.post(secured.activity(text="help"), authorization=header)).status == 201


async def test_with_credentials_any_address_may_call(tmp_path: Path) -> None:
    async with teams_bot(tmp_path, app_id=APP_ID, middlewares=(_from_afar,)) as bot:
        assert ASK_ROLE in words(await bot.say("how do I fix 5.7.12"))


# ---- local mode -------------------------------------------------------------------------------


async def test_local_mode_refuses_a_token(local: TeamsBot) -> None:
    response = await local.post(local.activity(text="help"), authorization="Bearer bogus")
    assert response.status == 401
    assert "local mode" in (await response.json())["error"]


@web.middleware
async def _from_afar(request: web.Request, handler: Any) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request.clone(remote="203.0.113.9"))
    return response


async def test_local_mode_refuses_remote_addresses(tmp_path: Path) -> None:
    async with teams_bot(tmp_path, middlewares=(_from_afar,)) as bot:
        response = await bot.post(bot.activity(text="help"))
        assert response.status == 403
        assert "loopback" in (await response.json())["error"]
        assert bot.connector.take() == []


async def test_local_mode_serves_remote_addresses_when_allowed(tmp_path: Path) -> None:
    env = {"TEAMS_LOCAL_ALLOW_REMOTE": "true"}
    async with teams_bot(tmp_path, env=env, middlewares=(_from_afar,)) as bot:
        assert ASK_ROLE in words(await bot.say("how do I fix 5.7.12"))


# ---- malformed requests -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"text": "hi"}', "no type"),
        (b'{"type": "message", "text": "hi"}', "no serviceUrl"),
        (
            b'{"type": "message", "serviceUrl": "http://127.0.0.1:1", "from": {"id": "u"}}',
            "no conversation.id",
        ),
        (
            b'{"type": "message", "serviceUrl": "http://127.0.0.1:1", "from": {"id": "u"},'
            b' "conversation": {"id": "c"}, "entities": "x"}',
            "entities is not a list",
        ),
    ],
)
async def test_a_malformed_body_gets_400_and_the_server_keeps_serving(
    local: TeamsBot, body: bytes, reason: str
) -> None:
    response = await local.post(None, raw=body)
    assert response.status == 400
    assert reason in (await response.json())["error"]
    assert ASK_ROLE in words(await local.say("how do I fix 5.7.12"))


async def test_a_wrong_content_type_gets_415(local: TeamsBot) -> None:
    response = await local.post(local.activity(text="help"), content_type="text/plain")
    assert response.status == 415


async def test_other_methods_get_405(local: TeamsBot) -> None:
    response = await local.client.get("/api/messages")
    assert response.status == 405


async def test_an_activity_type_the_bot_ignores_gets_201(local: TeamsBot) -> None:
    response = await local.post({"type": "messageReaction", "reactionsAdded": []})
    assert response.status == 201
    assert local.connector.take() == []


# ---- replies: retries -------------------------------------------------------------------------


async def test_a_429_is_retried_after_what_retry_after_says(local: TeamsBot) -> None:
    local.connector.fail_next(429, retry_after="0.2")
    posted = await local.say("how do I fix 5.7.12")
    assert ASK_ROLE in words(posted)
    assert len(posted) == 2
    assert local.connector.attempts == 3
    assert 'ndrbot_outbound_retries_total{channel="msteams"} 1.0' in local.metrics_text


async def test_5xx_answers_are_retried_with_backoff(local: TeamsBot) -> None:
    local.connector.fail_next(503, times=2)
    posted = await local.say("how do I fix 5.7.12")
    assert len(posted) == 2
    assert 'ndrbot_outbound_retries_total{channel="msteams"} 2.0' in local.metrics_text


async def test_a_reply_not_taken_within_the_turn_is_kept_and_sent_later(
    local: TeamsBot, caplog: pytest.LogCaptureFixture
) -> None:
    local.connector.fail_next(500, times=5)  # every attempt of the first reply
    with caplog.at_level(logging.INFO):
        response = await local.post(local.activity(text="how do I fix 5.7.12"))
    assert response.status == 201  # the reply is kept: the turn was answered
    kept = [r for r in caplog.records if r.getMessage().startswith("reply not taken")]
    assert len(kept) == 1
    handled = next(r for r in caplog.records if r.getMessage() == "turn handled")
    assert kept[0].turn_id == handled.turn_id  # type: ignore[attr-defined]
    assert kept[0].levelno == logging.WARNING
    assert not any(r.getMessage() == "reply not delivered" for r in caplog.records)
    # The job worker sends them into the conversation: why late, then both replies in order.
    posted = await local.connector.wait_for(3)
    assert [each.kind for each in posted] == ["send", "send", "send"]
    assert posted[0].text == say("reply_late")
    assert ASK_ROLE in words(posted[1:])
    assert 'ndrbot_errors_total{channel="msteams",kind="send"}' not in local.metrics_text


async def test_a_retry_after_beyond_the_budget_keeps_the_replies_at_once(
    local: TeamsBot, caplog: pytest.LogCaptureFixture
) -> None:
    local.connector.fail_next(429, retry_after="60")
    response = await local.post(local.activity(text="how do I fix 5.7.12"))
    assert response.status == 201
    assert local.connector.attempts == 1  # the refused reply, once; the next one queued behind
    posted = await local.connector.wait_for(3)
    assert posted[0].text == say("reply_late")
    assert ASK_ROLE in words(posted)
    assert not any(r.getMessage() == "reply not delivered" for r in caplog.records)


async def test_a_4xx_answer_is_not_retried(local: TeamsBot) -> None:
    local.connector.fail_next(400, body='{"error": {"code": "BadArgument"}}')
    await local.post(local.activity(text="how do I fix 5.7.12"))
    assert local.connector.attempts == 2
    assert "ndrbot_outbound_retries_total{" not in local.metrics_text
