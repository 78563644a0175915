"""``python -m bot manifest slack``: the Slack app manifest with the request URLs filled in."""

from __future__ import annotations


class ManifestError(Exception):
    """The manifest cannot be written; the message says why."""


def render_manifest(*, url: str | None, socket_mode: bool) -> str:
    """manifest/slack/manifest.yml with the request URLs (or Socket Mode) filled in."""
    raise ManifestError("not built yet")
