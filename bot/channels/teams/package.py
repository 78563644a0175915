"""``python -m bot manifest teams``: the Teams app package (manifest.json and icons, zipped).

The template in ``manifest/teams/`` holds ``{{MICROSOFT_APP_ID}}`` where the bot's Microsoft App ID
goes. ``build_package`` fills it (and the name and domain, if given), checks the rules of the Teams
manifest that the package relies on by itself (the official JSON Schema is not shipped with the
bot), and writes a zip with ``manifest.json`` and the two icons at its root, ready to upload.
The icons' own checks (sizes, an outline white on transparent) are in ``package_icons.py``.

In the Teams package as the platform's own, but imported by itself (``bot/cli.py`` loads it
when the command runs): it needs nothing of botbuilder.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from bot.channels.teams.package_icons import check_icons

APP_ID_PLACEHOLDER: Final = "{{MICROSOFT_APP_ID}}"
TEMPLATE_DIR: Final = Path(__file__).resolve().parents[3] / "manifest" / "teams"

# Limits from the Teams app manifest reference (the schema allows longer command texts, Teams
# shows no more than these).
NAME_SHORT_MAX: Final = 30
NAME_FULL_MAX: Final = 100
DESCRIPTION_SHORT_MAX: Final = 80
DESCRIPTION_FULL_MAX: Final = 4000
DEVELOPER_NAME_MAX: Final = 32
COMMAND_TITLE_MAX: Final = 32
COMMAND_DESCRIPTION_MAX: Final = 128
COMMANDS_PER_LIST_MAX: Final = 10
COMMAND_LISTS_MAX: Final = 3
BOT_SCOPES: Final = frozenset({"personal", "team", "groupChat"})

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_SEMVER = re.compile(r"(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)")
_HTTP_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_DOMAIN_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# A fixed time stamp makes the same input give the same zip, byte for byte.
_ZIP_TIME: Final = (2024, 1, 1, 0, 0, 0)


class PackageError(Exception):
    """The package cannot be built; the message says why (one line per problem)."""


def build_package(
    *,
    app_id: str,
    out: Path,
    name: str | None,
    domain: str | None,
    template_dir: Path | None = None,
) -> Path:
    """Fill the app id into manifest/teams/, check it, zip it to ``out``; return ``out``.

    ``name`` replaces the app's short name, ``domain`` (a host name, or a URL whose host is
    taken) goes into validDomains. Raises PackageError with one line per problem.
    """
    folder = TEMPLATE_DIR if template_dir is None else template_dir
    app_id = _app_id(app_id)
    manifest = fill_manifest(load_template(folder), app_id=app_id, name=name, domain=domain)
    icons = _icon_files(manifest, folder)
    problems = check_manifest(manifest)
    problems += check_icons(icons)
    if problems:
        raise PackageError("\n".join(problems))
    return _write_zip(out, manifest, icons)


def load_template(folder: Path) -> dict[str, Any]:
    """The manifest template in ``folder`` (manifest.json), parsed."""
    path = folder / "manifest.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PackageError(f"{path}: the manifest template is missing.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PackageError(f"{path}: cannot be read ({error}).") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as error:
        raise PackageError(
            f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})."
        ) from None
    if not isinstance(manifest, dict):
        raise PackageError(f"{path}: must hold a JSON object.")
    return manifest


def fill_manifest(
    template: dict[str, Any], *, app_id: str, name: str | None, domain: str | None
) -> dict[str, Any]:
    """A copy of ``template`` with the app id, and the name and domain if given, filled in."""
    manifest: dict[str, Any] = json.loads(
        json.dumps(template).replace(APP_ID_PLACEHOLDER, _app_id(app_id))
    )
    if name is not None:
        short = name.strip()
        if not short:
            raise PackageError("--name must not be empty.")
        names = manifest.setdefault("name", {})
        if isinstance(names, dict):
            names["short"] = short
    if domain is not None:
        host = _domain(domain)
        domains = manifest.get("validDomains")
        domains = [d for d in domains if d != host] if isinstance(domains, list) else []
        manifest["validDomains"] = [*domains, host]
    return manifest


def check_manifest(manifest: dict[str, Any]) -> list[str]:
    """The broken rules of the manifest that the package relies on, one line each."""
    problems: list[str] = []

    def need_text(where: str, value: Any, limit: int) -> None:
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}: must be a non-empty text.")
        elif len(value) > limit:
            problems.append(f"{where}: {len(value)} characters, at most {limit} allowed.")

    if not isinstance(manifest.get("manifestVersion"), str):
        problems.append("manifestVersion: missing.")
    version = manifest.get("version")
    if not isinstance(version, str) or not _SEMVER.fullmatch(version):
        problems.append(f"version: {version!r} is not a version like 1.0.0.")
    app_id = manifest.get("id")
    if not isinstance(app_id, str) or not _GUID.fullmatch(app_id):
        problems.append(f"id: {app_id!r} is not a GUID.")

    developer = _object(manifest, "developer", problems)
    need_text("developer.name", developer.get("name"), DEVELOPER_NAME_MAX)
    for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        url = developer.get(key)
        if not isinstance(url, str) or not _HTTP_URL.fullmatch(url):
            problems.append(f"developer.{key}: {url!r} is not an https:// URL.")

    names = _object(manifest, "name", problems)
    need_text("name.short", names.get("short"), NAME_SHORT_MAX)
    if "full" in names:
        need_text("name.full", names.get("full"), NAME_FULL_MAX)
    description = _object(manifest, "description", problems)
    need_text("description.short", description.get("short"), DESCRIPTION_SHORT_MAX)
    need_text("description.full", description.get("full"), DESCRIPTION_FULL_MAX)

    colour = manifest.get("accentColor")
    if not isinstance(colour, str) or not _HEX_COLOR.fullmatch(colour):
        problems.append(f"accentColor: {colour!r} is not a colour like #2F5DA8.")

    bots = manifest.get("bots")
    if not isinstance(bots, list) or len(bots) != 1 or not isinstance(bots[0], dict):
        problems.append("bots: must list exactly one bot.")
    else:
        problems += _check_bot(bots[0], app_id)

    domains = manifest.get("validDomains", [])
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        problems.append("validDomains: must be a list of host names.")
    return problems


def _check_bot(bot: dict[str, Any], app_id: Any) -> list[str]:
    problems: list[str] = []
    if bot.get("botId") != app_id:
        problems.append("bots[0].botId: must be the app id (the bot's Microsoft App ID).")
    scopes = bot.get("scopes")
    if not isinstance(scopes, list) or not scopes:
        problems.append("bots[0].scopes: must list at least one scope.")
        scopes = []
    elif not set(scopes) <= BOT_SCOPES:
        unknown = sorted(set(map(str, scopes)) - BOT_SCOPES)
        problems.append(f"bots[0].scopes: {', '.join(unknown)} not among {_names(BOT_SCOPES)}.")
    lists = bot.get("commandLists", [])
    if not isinstance(lists, list) or len(lists) > COMMAND_LISTS_MAX:
        problems.append(f"bots[0].commandLists: at most {COMMAND_LISTS_MAX} lists.")
        return problems
    for number, entry in enumerate(lists):
        where = f"bots[0].commandLists[{number}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object.")
            continue
        list_scopes = entry.get("scopes")
        if not isinstance(list_scopes, list) or not list_scopes:
            problems.append(f"{where}.scopes: must list at least one scope.")
        elif not set(list_scopes) <= set(scopes):
            problems.append(f"{where}.scopes: must be among the bot's scopes ({_names(scopes)}).")
        commands = entry.get("commands")
        if not isinstance(commands, list) or not commands:
            problems.append(f"{where}.commands: must list at least one command.")
            continue
        if len(commands) > COMMANDS_PER_LIST_MAX:
            problems.append(
                f"{where}.commands: {len(commands)} commands, at most "
                f"{COMMANDS_PER_LIST_MAX} allowed."
            )
        titles: set[str] = set()
        for index, command in enumerate(commands):
            at = f"{where}.commands[{index}]"
            title = command.get("title") if isinstance(command, dict) else None
            if not isinstance(title, str) or not title.strip():
                problems.append(f"{at}.title: must be a non-empty text.")
                continue
            if len(title) > COMMAND_TITLE_MAX:
                problems.append(
                    f"{at}.title: {len(title)} characters, at most {COMMAND_TITLE_MAX} allowed."
                )
            if title.lower() in titles:
                problems.append(f"{at}.title: {title!r} is listed twice.")
            titles.add(title.lower())
            text = command.get("description", "")
            if not isinstance(text, str) or len(text) > COMMAND_DESCRIPTION_MAX:
                problems.append(
                    f"{at}.description: must be a text of at most "
                    f"{COMMAND_DESCRIPTION_MAX} characters."
                )
    return problems


def _object(manifest: dict[str, Any], key: str, problems: list[str]) -> dict[str, Any]:
    value = manifest.get(key)
    if isinstance(value, dict):
        return value
    problems.append(f"{key}: missing.")
    return {}


def _names(values: Any) -> str:
    return ", ".join(sorted(values))


def _app_id(value: str) -> str:
    app_id = value.strip()
    if not _GUID.fullmatch(app_id):
        raise PackageError(
            f"--app-id {value!r} is not a GUID: give the bot's Microsoft App ID, e.g. "
            "00000000-0000-0000-0000-000000000000 (Azure portal, the Azure Bot's Configuration)."
        )
    return app_id.lower()


def _domain(value: str) -> str:
    text = value.strip()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    host = text.lower().rstrip(".")
    plain = host.removeprefix("*.")
    try:
        ascii_form = plain.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_form = ""
    labels = ascii_form.split(".")
    if len(labels) < 2 or len(ascii_form) > 253 or not all(map(_DOMAIN_LABEL.fullmatch, labels)):
        raise PackageError(
            f"--domain {value!r} is not a host name: give the bot's public host name, "
            "e.g. ndrbot.contoso.com."
        )
    return host


def _icon_files(manifest: dict[str, Any], folder: Path) -> dict[str, Path]:
    icons = manifest.get("icons")
    if not isinstance(icons, dict):
        raise PackageError("icons: missing (the manifest needs icons.color and icons.outline).")
    files: dict[str, Path] = {}
    for role in ("color", "outline"):
        name = icons.get(role)
        if not isinstance(name, str) or not name or Path(name).name != name:
            raise PackageError(
                f"icons.{role}: {name!r} must be a file name in {folder} (no folders)."
            )
        files[role] = folder / name
    if files["color"].name == files["outline"].name:
        raise PackageError("icons: the colour and the outline icon must be two files.")
    return files


def _write_zip(out: Path, manifest: dict[str, Any], icons: dict[str, Path]) -> Path:
    folder = out.parent
    if not folder.is_dir():
        raise PackageError(f"--out {out}: the folder {folder} does not exist.")
    if out.is_dir():
        raise PackageError(f"--out {out}: is a folder; give a file name such as ndrbot-teams.zip.")
    entries = [("manifest.json", (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"))]
    handle, temporary = tempfile.mkstemp(prefix=".teams-package-", suffix=".zip", dir=folder)
    try:
        with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w") as archive:
            for name, text in entries:
                archive.writestr(_entry(name), text.encode("utf-8"))
            for path in icons.values():
                archive.writestr(_entry(path.name), path.read_bytes())
        Path(temporary).chmod(0o644)
        Path(temporary).replace(out)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise PackageError(f"--out {out}: cannot be written ({error.strerror or error}).") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return out


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


__all__ = [
    "APP_ID_PLACEHOLDER",
    "TEMPLATE_DIR",
    "PackageError",
    "build_package",
    "check_manifest",
    "fill_manifest",
    "load_template",
]
