"""``python -m bot manifest teams``: the Teams app package (manifest.json and icons, zipped)."""

from __future__ import annotations

from pathlib import Path


class PackageError(Exception):
    """The package cannot be built; the message says why."""


def build_package(*, app_id: str, out: Path, name: str | None, domain: str | None) -> Path:
    """Fill the app id into manifest/teams/, check it, zip it to ``out``; return ``out``."""
    raise PackageError("not built yet")
