"""Finding 9 of issue 12, over real HTTP: the bot reaches only the hosts it should.

- Files come only from the platform's own hosts (TEAMS_ATTACHMENT_HOSTS, SLACK_FILE_HOSTS): a
  Teams ``downloadUrl`` or ``contentUrl``, or a Slack ``url_private_download``, on a host off the
  list is never requested (a second server on a port no list names counts what reaches it), a
  redirect from a listed host to another is not followed, no token leaves, and the person gets
  the usual polite refusal; the log line names the host, never the path or the query.
- Local mode (no MICROSOFT_APP_ID) replies only to loopback service URLs and serves only
  requests addressed to a loopback ``Host`` (a page whose DNS name was rebound to 127.0.0.1
  reaches the bot from loopback, with its own Host), unless TEAMS_LOCAL_ALLOW_REMOTE.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.channels import teams
from bot.channels.teams.activities import reference_of
from bot.config import SettingsError, load_settings
from knowledge.kb import default_knowledge
from tests.fakes.teams_harness import APP_ID, TeamsBot, teams_bot, words
from tests.fakes_slack import FakeSlackWebAPI
from tests.fakes_slack.harness import BOT_TOKEN as SLACK_TOKEN
from tests.fakes_slack.harness import SlackBot
from tests.file_hosts import CountingHost, own_address
from tests.transcripts import ASK_ROLE

CORPUS = Path(__file__).resolve().parent / "corpus"
EML = (CORPUS / "en-eml-57133-group-qp.eml").read_bytes()
SECRET_QUERY = "tempauth=secret-query-value"  # noqa: S105 - a test value
OWN_ADDRESS = own_address()
needs_own_address = pytest.mark.skipif(
    OWN_ADDRESS is None, reason="this machine has no non-loopback address to listen on"
)


def addressed(bot: TeamsBot, service_url: str, **changes: Any) -> dict[str, Any]:
    """A message activity whose replies go to ``service_url``."""
    activity = bot.activity(**changes)
    activity["serviceUrl"] = service_url
    return activity


def refusal(name: str) -> str:
    return default_knowledge().conversation.text("file_download_failed", name=name)


@pytest.fixture
async def foreign() -> AsyncIterator[CountingHost]:
    """A host off every list: 127.0.0.1 on a port of its own."""
    host = await CountingHost().start()
    yield host
    await host.close()


@pytest.fixture
async def listed() -> AsyncIterator[CountingHost]:
    """A host a test puts on the list."""
    host = await CountingHost().start()
    yield host
    await host.close()


@pytest.fixture
async def remote() -> AsyncIterator[CountingHost]:
    """A host on this machine's non-loopback address: what a foreign serviceUrl reaches."""
    if OWN_ADDRESS is None:
        pytest.skip("this machine has no non-loopback address to listen on")
    host = await CountingHost(address=OWN_ADDRESS).start()
    yield host
    await host.close()


def logged_everything(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)


# ---- Teams: files -----------------------------------------------------------------------------


def _file_activity(bot: TeamsBot, url: str) -> dict[str, Any]:
    activity = bot.activity("file_download_info")
    activity["attachments"][0]["content"]["downloadUrl"] = url
    return activity


async def test_a_download_url_off_the_list_is_never_requested_with_auth_on(
    tmp_path: Path, foreign: CountingHost, caplog: pytest.LogCaptureFixture
) -> None:
    async with teams_bot(tmp_path, app_id=APP_ID) as bot:
        activity = _file_activity(bot, foreign.url(f"/personal/priya/bounce.eml?{SECRET_QUERY}"))
        with caplog.at_level(logging.INFO):
            posted = await bot.send(activity)
        assert refusal("bounce.eml") in words(posted)
        assert foreign.requests == []
        assert 'ndrbot_errors_total{channel="msteams",kind="download"} 1.0' in bot.metrics_text
    (line,) = [r for r in caplog.records if r.getMessage() == "file not read"]
    assert line.__dict__["reason"] == "not_allowed"
    assert foreign.origin in line.__dict__["detail"]
    everything = logged_everything(caplog)
    assert "secret-query-value" not in everything
    assert "/personal/priya" not in everything


async def test_a_content_url_off_the_list_is_never_requested(
    tmp_path: Path, foreign: CountingHost
) -> None:
    async with teams_bot(tmp_path) as bot:
        attachment = {
            "contentType": "text/plain",
            "contentUrl": foreign.url("/b.eml"),
            "name": "b.eml",
        }
        posted = await bot.send(bot.activity(text="", attachments=[attachment]))
        assert refusal("b.eml") in words(posted)
        assert foreign.requests == []


async def test_a_redirect_from_a_listed_host_to_another_is_not_followed(
    tmp_path: Path, listed: CountingHost, foreign: CountingHost
) -> None:
    env = {"TEAMS_ATTACHMENT_HOSTS": listed.origin}
    async with teams_bot(tmp_path, env=env) as bot:
        posted = await bot.send(_file_activity(bot, listed.hop(foreign.url("/bounce.eml"))))
        assert refusal("bounce.eml") in words(posted)
        assert [path for path, _ in listed.requests] == ["/hop"]
        assert foreign.requests == []


async def test_a_file_on_a_listed_host_is_read(tmp_path: Path) -> None:
    async with teams_bot(tmp_path) as bot:  # the harness lists the fake connector's origin
        posted = await bot.send(_file_activity(bot, bot.connector.serve_file("b.eml", EML)))
        assert "That's 5.7.133" in words(posted)
        assert bot.connector.downloads == 1


# ---- Teams: local mode's service URLs ---------------------------------------------------------


@pytest.mark.parametrize(
    "service_url",
    [
        "https://smba.trafficmanager.net/amer/",
        "http://192.0.2.10:3978/",  # TEST-NET-1
        "http://169.254.169.254/",  # the cloud's metadata address
        "http://127.0.0.1.rebound.example/",
        "http://[::ffff:10.0.0.1]/",
    ],
)
async def test_local_mode_refuses_a_service_url_that_is_not_loopback(
    tmp_path: Path, service_url: str
) -> None:
    async with teams_bot(tmp_path) as bot:
        response = await bot.post(addressed(bot, service_url, text="help"))
        assert response.status == 403
        assert "loopback service URLs" in (await response.json())["error"]
        assert bot.connector.attempts == 0


@needs_own_address
async def test_local_mode_sends_nothing_to_a_reachable_address_that_is_not_loopback(
    tmp_path: Path, remote: CountingHost
) -> None:
    async with teams_bot(tmp_path) as bot:
        activity = addressed(bot, remote.origin, text="how do I fix 5.7.12")
        response = await bot.post(activity)
        assert response.status == 403
        # A reference saved elsewhere (another mode, an old database): proactive sends hold too.
        sender = bot.app[teams.TEAMS].sender
        with pytest.raises(teams.SendFailed) as failed:
            await sender.post(reference_of(activity), {"type": "message", "text": "hi"})
        assert failed.value.status == 403
        assert failed.value.permanent
    assert remote.requests == [], "nothing reached the address"


async def test_local_mode_replies_to_localhost_by_name(tmp_path: Path) -> None:
    """The Agents Playground's serviceUrl is http://localhost:PORT/_connector."""
    async with teams_bot(tmp_path) as bot:
        by_name = bot.connector.url.replace("127.0.0.1", "localhost")
        posted = await bot.send(addressed(bot, by_name, text="how do I fix 5.7.12"))
        assert ASK_ROLE in words(posted)


@needs_own_address
async def test_local_mode_replies_anywhere_when_remote_is_allowed(
    tmp_path: Path, remote: CountingHost
) -> None:
    env = {"TEAMS_LOCAL_ALLOW_REMOTE": "true"}
    async with teams_bot(tmp_path, env=env) as bot:
        response = await bot.post(addressed(bot, remote.origin, text="how do I fix 5.7.12"))
        assert response.status == 201
    assert [path for path, _ in remote.requests if "/activities" in path], "the replies went"


# ---- Teams: local mode's Host header ----------------------------------------------------------


async def _post_with_host(bot: TeamsBot, host: str, **changes: Any) -> tuple[int, Any]:
    activity = bot.activity(text="how do I fix 5.7.12", **changes)
    headers = {"Content-Type": "application/json", "Host": host}
    if bot.issuer is not None:
        headers["Authorization"] = f"Bearer {bot.token(activity)}"
    response = await bot.client.post("/api/messages", json=activity, headers=headers)
    return response.status, await response.json() if response.status >= 400 else None


@pytest.mark.parametrize(
    "host",
    [
        "rebound.example",
        "rebound.example:3978",
        "localhost.rebound.example",
        "127.0.0.1.nip.io:3978",
        "10.0.0.5:3978",
        "[::2]:3978",
        "localhost:x",
    ],
)
async def test_local_mode_refuses_a_foreign_host_header(tmp_path: Path, host: str) -> None:
    async with teams_bot(tmp_path) as bot:
        status, answer = await _post_with_host(bot, host)
        assert status == 421
        assert "Host header" in answer["error"]
        assert bot.connector.attempts == 0


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:3978",
        "LocalHost:3978",
        "127.0.0.1",
        "127.0.0.1:3978",
        "[::1]",
        "[::1]:3978",
    ],
)
async def test_local_mode_serves_a_loopback_host_header(tmp_path: Path, host: str) -> None:
    async with teams_bot(tmp_path) as bot:
        status, _ = await _post_with_host(bot, host)
        assert status == 201
        assert ASK_ROLE in words(bot.connector.take())


async def test_a_foreign_host_header_is_served_when_remote_is_allowed(tmp_path: Path) -> None:
    async with teams_bot(tmp_path, env={"TEAMS_LOCAL_ALLOW_REMOTE": "true"}) as bot:
        status, _ = await _post_with_host(bot, "bot.lan:3978")
        assert status == 201


async def test_with_credentials_any_host_header_is_served(tmp_path: Path) -> None:
    """Behind a reverse proxy the Host is the bot's public name; the token is what counts."""
    async with teams_bot(tmp_path, app_id=APP_ID) as bot:
        status, _ = await _post_with_host(bot, "ndrbot.contoso.com")
        assert status == 201


# ---- Slack: files -----------------------------------------------------------------------------


async def _slack_file(
    api: FakeSlackWebAPI, database_url: str, url: str, env: dict[str, str] | None = None
) -> str:
    """Share a file at ``url`` in a DM with the bot; return what the bot answered."""
    from tests.fakes_slack.harness import payload

    bot = SlackBot(api, database_url, env=env)
    await bot.start()
    try:
        envelope = payload("message_file_share")
        envelope["event"]["files"][0]["url_private_download"] = url
        assert (await bot.event(envelope)).status == 200
        (posted,) = await api.wait_for("chat.postMessage")
        return posted.text
    finally:
        await bot.close()


async def test_a_slack_file_on_a_foreign_host_is_not_fetched_and_no_token_leaves(
    api: FakeSlackWebAPI,
    database_url: str,
    foreign: CountingHost,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = foreign.url(f"/files-pri/T0-F0/download/bounce.eml?{SECRET_QUERY}")
    with caplog.at_level(logging.INFO):
        said = await _slack_file(api, database_url, url)
    assert said == refusal("bounce.eml")
    assert foreign.requests == []
    assert SLACK_TOKEN not in logged_everything(caplog)
    assert "secret-query-value" not in logged_everything(caplog)


async def test_a_slack_redirect_to_a_foreign_host_is_not_followed(
    api: FakeSlackWebAPI, database_url: str, foreign: CountingHost
) -> None:
    url = api.redirect("bounce.eml", foreign.url("/stolen.eml"))
    assert await _slack_file(api, database_url, url) == refusal("bounce.eml")
    assert len(api.of("files.download")) == 1, "the API's own host was asked"
    assert foreign.requests == [], "the host it redirected to was not: no token left"


async def test_slack_file_hosts_add_a_host_the_token_may_go_to(
    api: FakeSlackWebAPI, database_url: str, listed: CountingHost
) -> None:
    env = {"SLACK_FILE_HOSTS": listed.origin}
    said = await _slack_file(api, database_url, listed.url("/files-pri/bounce.eml"), env)
    assert said != refusal("bounce.eml")
    ((_, headers),) = listed.requests
    assert headers["Authorization"] == f"Bearer {SLACK_TOKEN}"


# ---- the settings -----------------------------------------------------------------------------


def test_the_defaults_are_the_platforms_own_hosts() -> None:
    settings = load_settings({})
    assert settings.teams_attachment_hosts == (
        ".sharepoint.com",
        "smba.trafficmanager.net",
        ".asm.skype.com",
        ".botframework.com",
    )
    assert settings.slack_file_hosts == (".slack.com",)


@pytest.mark.parametrize(
    "value",
    [
        "https://files.example.com/path",  # no path
        "http://.example.com",  # no plain-http wildcard
        "ftp://files.example.com",
        ".com",  # a wildcard over a whole top-level domain
        "*.1.2.3.4",
        "user@files.example.com",
        "files.example.com:99999",
    ],
)
def test_a_bad_host_entry_is_a_settings_error(value: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({"TEAMS_ATTACHMENT_HOSTS": value, "SLACK_FILE_HOSTS": value})
    problems = error.value.problems
    assert [problem.split(":", 1)[0] for problem in problems] == [
        "TEAMS_ATTACHMENT_HOSTS",
        "SLACK_FILE_HOSTS",
    ]


def test_host_entries_are_read_comma_or_space_separated() -> None:
    settings = load_settings(
        {"TEAMS_ATTACHMENT_HOSTS": "*.Contoso.com, http://127.0.0.1:8080 [::1]:9"}
    )
    assert settings.teams_attachment_hosts == ("*.contoso.com", "http://127.0.0.1:8080", "[::1]:9")
