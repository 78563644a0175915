"""``python -m bot manifest slack``: the Slack app manifest with the request URLs filled in.

Its own room because it runs without the bot: no Slack library, no server, only the template in
``manifest/slack/`` (the events path is the one ``endpoint.py`` serves).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

TEMPLATE: Final = Path(__file__).resolve().parents[3] / "manifest" / "slack" / "manifest.yml"
EVENTS_PATH: Final = "/slack/events"
_HEADER: Final = (
    "# Slack app manifest of the NDR helpdesk bot, written by `python -m bot manifest slack`.\n"
    "# At https://api.slack.com/apps: Create New App > From a manifest > paste this YAML.\n"
)


class ManifestError(Exception):
    """The manifest cannot be written; the message says why."""


def render_manifest(*, url: str | None, socket_mode: bool, template: Path = TEMPLATE) -> str:
    """manifest/slack/manifest.yml with the request URLs (or Socket Mode) filled in."""
    if socket_mode and url:
        raise ManifestError("give --url (HTTP mode) or --socket-mode, not both")
    if not socket_mode and not url:
        raise ManifestError(
            "give --url https://YOUR-HOST (Slack posts to YOUR-HOST/slack/events), "
            "or --socket-mode when the bot has no public address"
        )
    manifest = load_template(template)
    try:
        settings = manifest["settings"]
        commands = manifest["features"].get("slash_commands", [])
        if socket_mode:
            settings["socket_mode_enabled"] = True
            settings["event_subscriptions"].pop("request_url", None)
            settings["interactivity"].pop("request_url", None)
            for command in commands:
                command.pop("url", None)
        else:
            assert url is not None  # noqa: S101 - checked above
            events_url = request_url(url)
            settings["socket_mode_enabled"] = False
            settings["event_subscriptions"]["request_url"] = events_url
            settings["interactivity"]["request_url"] = events_url
            for command in commands:
                command["url"] = events_url
    except (KeyError, TypeError, AttributeError) as error:
        raise ManifestError(f"{template}: not the expected manifest ({error!r} missing)") from None
    return _HEADER + yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=100)


def request_url(url: str) -> str:
    """The events URL for the bot's public base URL (``https://host[/prefix]``)."""
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise ManifestError(
            f"{url!r}: Slack needs a public https:// URL, e.g. https://bot.contoso.com"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ManifestError(f"{url!r}: give only the scheme, host and path (no ?query, #, user)")
    path = parts.path.rstrip("/")
    if not path.endswith(EVENTS_PATH):
        path += EVENTS_PATH
    host = parts.netloc.split("@")[-1]
    return f"https://{host}{path}"


def load_template(template: Path = TEMPLATE) -> dict[str, Any]:
    """The manifest template, parsed."""
    try:
        manifest = yaml.safe_load(template.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{template}: the manifest template is missing") from None
    except yaml.YAMLError as error:
        raise ManifestError(f"{template}: not valid YAML ({error})") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{template}: not a manifest")
    return manifest
