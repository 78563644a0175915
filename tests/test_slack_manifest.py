"""The Slack app manifest: `python -m bot manifest slack` fills in the request URLs (or switches
Socket Mode on), and the manifest asks for what the Slack channel listens to and calls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.channels.slack import SHORTCUT_CALLBACK_ID, SLASH_COMMAND
from bot.channels.slack.manifest import (
    ManifestError,
    load_template,
    render_manifest,
    request_url,
)

ROOT = Path(__file__).resolve().parent.parent
_CLI = [sys.executable, "-m", "bot", "manifest", "slack"]


def _rendered(**kwargs: Any) -> dict[str, Any]:
    manifest = yaml.safe_load(render_manifest(**kwargs))
    assert isinstance(manifest, dict)
    return manifest


def test_http_mode_fills_every_request_url() -> None:
    manifest = _rendered(url="https://bot.contoso.com", socket_mode=False)
    wanted = "https://bot.contoso.com/slack/events"
    settings = manifest["settings"]
    assert settings["event_subscriptions"]["request_url"] == wanted
    assert settings["interactivity"]["request_url"] == wanted
    assert settings["interactivity"]["is_enabled"] is True
    assert [c["url"] for c in manifest["features"]["slash_commands"]] == [wanted]
    assert settings["socket_mode_enabled"] is False
    assert "YOUR-HOST" not in render_manifest(url="https://bot.contoso.com", socket_mode=False)


def test_socket_mode_needs_no_request_url() -> None:
    manifest = _rendered(url=None, socket_mode=True)
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert "request_url" not in settings["event_subscriptions"]
    assert "request_url" not in settings["interactivity"]
    assert all("url" not in c for c in manifest["features"]["slash_commands"])


@pytest.mark.parametrize(
    ("given", "wanted"),
    [
        ("https://bot.contoso.com", "https://bot.contoso.com/slack/events"),
        ("https://bot.contoso.com/", "https://bot.contoso.com/slack/events"),
        ("https://bot.contoso.com:8443/ndr", "https://bot.contoso.com:8443/ndr/slack/events"),
        ("https://bot.contoso.com/slack/events", "https://bot.contoso.com/slack/events"),
    ],
)
def test_the_request_url_is_the_base_url_and_slack_events(given: str, wanted: str) -> None:
    assert request_url(given) == wanted


@pytest.mark.parametrize(
    ("url", "socket_mode", "reason"),
    [
        ("http://bot.contoso.com", False, "https://"),
        ("bot.contoso.com", False, "https://"),
        ("https://bot.contoso.com/?x=1", False, "query"),
        (None, False, "--socket-mode"),
        ("https://bot.contoso.com", True, "not both"),
    ],
)
def test_a_bad_request_is_explained(url: str | None, socket_mode: bool, reason: str) -> None:
    with pytest.raises(ManifestError, match=reason):
        render_manifest(url=url, socket_mode=socket_mode)


def test_the_manifest_asks_for_what_the_channel_uses() -> None:
    manifest = load_template()
    features = manifest["features"]
    assert [c["command"] for c in features["slash_commands"]] == [SLASH_COMMAND]
    (shortcut,) = features["shortcuts"]
    assert shortcut["callback_id"] == SHORTCUT_CALLBACK_ID
    assert shortcut["type"] == "message"
    assert shortcut["name"] == "Ask the NDR helpdesk"
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is True
    assert features["app_home"]["messages_tab_read_only_enabled"] is False
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert events == {"app_home_opened", "app_mention", "message.im"}
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # chat.postMessage/update, files (download), conversations.open, the events, the command.
    assert {
        "chat:write",
        "files:read",
        "im:write",
        "im:history",
        "app_mentions:read",
        "commands",
    } <= scopes
    # The tickets: who is in the admins' channel (public or private), and the admins' names.
    assert {"channels:read", "groups:read", "users:read"} <= scopes


def test_the_cli_writes_the_manifest(tmp_path: Path) -> None:
    out = tmp_path / "manifest.yml"
    done = subprocess.run(
        [*_CLI, "--url", "https://bot.contoso.com", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    written = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert written["settings"]["event_subscriptions"]["request_url"] == (
        "https://bot.contoso.com/slack/events"
    )

    refused = subprocess.run(
        _CLI,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2
    assert "--socket-mode" in refused.stderr
