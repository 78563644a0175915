"""``python -m bot manifest teams``: the Teams app package, checked by itself and against the
official Teams manifest schema (kept outside the repository, in ../shared/schemas/teams/)."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from bot.channels.teams.package import (
    APP_ID_PLACEHOLDER,
    TEMPLATE_DIR,
    PackageError,
    build_package,
)
from bot.channels.teams.package_icons import png_info

REPO = Path(__file__).resolve().parents[1]
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "teams"
SCHEMA_FILE = SCHEMA_DIR / "MicrosoftTeams.v1.29.schema.json"
APP_ID = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
COMMANDS = ["help", "fix 5.7.12", "escalate", "my tickets"]


def _png(width: int, height: int, pixel: bytes, colour_type: int = 6) -> bytes:
    """A small PNG filled with one pixel value (RGBA for type 6, RGB for type 2)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    raw = b"".join(b"\x00" + pixel * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _manifest(zip_path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(zip_path) as archive:
        loaded: dict[str, Any] = json.loads(archive.read("manifest.json"))
    return loaded


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """A copy of manifest/teams/ that a test may spoil."""
    folder = tmp_path / "template"
    shutil.copytree(TEMPLATE_DIR, folder)
    return folder


def _edit(folder: Path, change: Any) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


@pytest.fixture(scope="module")
def schema_validator() -> Any:
    if not SCHEMA_FILE.is_file():
        pytest.skip(
            f"the official Teams manifest schema is not at {SCHEMA_FILE} (it is kept in the "
            "team's shared folder beside the repository, never copied into it; CI has it)"
        )
    jsonschema = pytest.importorskip(
        "jsonschema", reason="jsonschema is not installed: pip install -e '.[dev]'"
    )
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    # No check_schema(): a few patterns of parts this manifest does not use (Office add-in
    # extensions) use \p{L}, which Python's re does not know; they are never compiled here.
    return jsonschema.validators.validator_for(schema)(schema)


def _schema_errors(validator: Any, manifest: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(manifest), key=str)
    ]


def test_cli_writes_a_zip_with_the_manifest_and_icons_at_its_root(tmp_path: Path) -> None:
    out = tmp_path / "ndrbot-teams.zip"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "manifest", "teams", "--app-id", APP_ID, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        assert png_info(archive.read("color.png")).width == 192
        assert png_info(archive.read("outline.png")).width == 32
    manifest = _manifest(out)
    assert manifest["id"] == APP_ID
    assert manifest["bots"][0]["botId"] == APP_ID
    assert APP_ID_PLACEHOLDER not in json.dumps(manifest)


def test_cli_refuses_a_bad_app_id_with_a_clear_message(tmp_path: Path) -> None:
    out = tmp_path / "x.zip"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "manifest", "teams", "--app-id", "my-bot", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--app-id 'my-bot' is not a GUID" in done.stderr
    assert not out.exists()


def test_package_passes_the_official_schema(tmp_path: Path, schema_validator: Any) -> None:
    out = build_package(app_id=APP_ID, out=tmp_path / "plain.zip", name=None, domain=None)
    assert _schema_errors(schema_validator, _manifest(out)) == []


def test_package_with_name_and_domain_passes_the_official_schema(
    tmp_path: Path, schema_validator: Any
) -> None:
    out = build_package(
        app_id=APP_ID.upper(),
        out=tmp_path / "named.zip",
        name="Bounce Desk",
        domain="https://ndrbot.contoso.com/api/messages",
    )
    manifest = _manifest(out)
    assert _schema_errors(schema_validator, manifest) == []
    assert manifest["id"] == APP_ID  # lower case, as Azure shows it
    assert manifest["name"]["short"] == "Bounce Desk"
    assert manifest["validDomains"] == ["ndrbot.contoso.com"]


def test_schema_check_catches_a_broken_manifest(schema_validator: Any) -> None:
    # The schema test is worth something only if the schema does reject things.
    manifest = json.loads((TEMPLATE_DIR / "manifest.json").read_text(encoding="utf-8"))
    assert _schema_errors(schema_validator, manifest)  # the placeholder is not a GUID


def test_template_is_on_the_newest_schema_with_the_bot_the_issue_asks_for() -> None:
    manifest = json.loads((TEMPLATE_DIR / "manifest.json").read_text(encoding="utf-8"))
    if SCHEMA_DIR.is_dir():
        versions = [
            tuple(int(part) for part in path.name.split(".v")[1].split(".")[:2])
            for path in SCHEMA_DIR.glob("MicrosoftTeams.v*.schema.json")
        ]
        newest = ".".join(map(str, max(versions)))
        assert manifest["manifestVersion"] == newest
    else:
        assert manifest["manifestVersion"] == "1.29"
    assert manifest["id"] == APP_ID_PLACEHOLDER
    (bot,) = manifest["bots"]
    assert bot["botId"] == APP_ID_PLACEHOLDER
    assert sorted(bot["scopes"]) == ["groupChat", "personal", "team"]
    assert bot["supportsFiles"] is True
    covered = {scope for entry in bot["commandLists"] for scope in entry["scopes"]}
    assert covered == {"personal", "team", "groupChat"}
    for entry in bot["commandLists"]:
        assert [command["title"] for command in entry["commands"]] == COMMANDS
    assert manifest["validDomains"] == []


def test_the_same_input_gives_the_same_zip(tmp_path: Path) -> None:
    first = build_package(app_id=APP_ID, out=tmp_path / "a.zip", name=None, domain=None)
    second = build_package(app_id=APP_ID, out=tmp_path / "b.zip", name=None, domain=None)
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize(
    "app_id",
    [
        "",
        "not-a-guid",
        "6f1c2d3e4b5a4c6d8e7f9a0b1c2d3e4f",  # no dashes
        "{6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f}",
        "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4",  # one digit short
        "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4g",
        APP_ID + "\n" + APP_ID,
    ],
)
def test_bad_app_ids_are_refused(tmp_path: Path, app_id: str) -> None:
    with pytest.raises(PackageError, match="is not a GUID"):
        build_package(app_id=app_id, out=tmp_path / "x.zip", name=None, domain=None)
    assert not (tmp_path / "x.zip").exists()


@pytest.mark.parametrize(
    ("icon", "data", "message"),
    [
        ("color.png", _png(32, 32, b"\x2f\x5d\xa8"), "is 32x32 pixels, it must be 192x192"),
        ("outline.png", _png(192, 192, b"\xff\xff\xff\xff"), "it must be 32x32"),
        ("outline.png", _png(32, 32, b"\xff\xff\xff", colour_type=2), "has no transparency"),
        ("outline.png", _png(32, 32, b"\x2f\x5d\xa8\xff"), "pixels that are not white"),
        ("color.png", b"GIF89a not a png at all", "is not a valid PNG"),
        ("outline.png", _png(32, 32, b"\xff\xff\xff\xff")[:-5] + b"\x00" * 5, "not a valid PNG"),
    ],
)
def test_bad_icons_are_refused(
    tmp_path: Path, template: Path, icon: str, data: bytes, message: str
) -> None:
    (template / icon).write_bytes(data)
    with pytest.raises(PackageError, match=message):
        build_package(
            app_id=APP_ID, out=tmp_path / "x.zip", name=None, domain=None, template_dir=template
        )


def test_a_missing_icon_is_named(tmp_path: Path, template: Path) -> None:
    (template / "outline.png").unlink()
    with pytest.raises(PackageError, match=r"icons\.outline: .*outline\.png is missing"):
        build_package(
            app_id=APP_ID, out=tmp_path / "x.zip", name=None, domain=None, template_dir=template
        )


def test_icons_with_transparency_chunk_or_white_outline_pass(
    tmp_path: Path, template: Path
) -> None:
    (template / "outline.png").write_bytes(_png(32, 32, b"\xff\xff\xff\x80"))
    build_package(
        app_id=APP_ID, out=tmp_path / "x.zip", name=None, domain=None, template_dir=template
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [("N" * 31, r"name\.short: 31 characters, at most 30"), ("   ", "--name must not be empty")],
)
def test_bad_names_are_refused(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(PackageError, match=message):
        build_package(app_id=APP_ID, out=tmp_path / "x.zip", name=name, domain=None)


@pytest.mark.parametrize("domain", ["localhost", "not a host", "https://", "-bad-.contoso.com"])
def test_bad_domains_are_refused(tmp_path: Path, domain: str) -> None:
    with pytest.raises(PackageError, match="is not a host name"):
        build_package(app_id=APP_ID, out=tmp_path / "x.zip", name=None, domain=domain)


def _too_many_commands(manifest: dict[str, Any]) -> None:
    manifest["bots"][0]["commandLists"][0]["commands"] = [
        {"title": f"command {n}", "description": "x"} for n in range(11)
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["name"].update(full="F" * 101), r"name\.full: 101 characters, at most 100"),
        (
            lambda m: m["description"].update(short="S" * 81),
            r"description\.short: 81 characters, at most 80",
        ),
        (
            lambda m: m["description"].update(full="F" * 4001),
            r"description\.full: 4001 characters, at most 4000",
        ),
        (lambda m: m.update(accentColor="blue"), "accentColor: 'blue' is not a colour"),
        (lambda m: m.update(version="1.0"), "version: '1.0' is not a version"),
        (
            lambda m: m["bots"][0].update(scopes=["personal", "meeting"]),
            r"bots\[0\]\.scopes: meeting not among",
        ),
        (
            lambda m: m["bots"][0].update(botId="00000000-0000-0000-0000-000000000000"),
            r"bots\[0\]\.botId: must be the app id",
        ),
        (_too_many_commands, "11 commands, at most 10"),
        (
            lambda m: m["bots"][0]["commandLists"][0]["commands"][0].update(title="t" * 33),
            "title: 33 characters, at most 32",
        ),
        (
            lambda m: m["bots"][0]["commandLists"][0]["commands"][0].update(description="d" * 129),
            "description: must be a text of at most 128",
        ),
        (
            lambda m: m["bots"][0]["commandLists"][0].update(scopes=["copilot"]),
            r"commandLists\[0\]\.scopes: must be among the bot's scopes",
        ),
        (
            lambda m: m["developer"].update(privacyUrl="ftp://x"),
            r"developer\.privacyUrl: 'ftp://x' is not an https:// URL",
        ),
    ],
)
def test_manifest_rules_are_checked_without_the_schema(
    tmp_path: Path, template: Path, change: Any, message: str
) -> None:
    _edit(template, change)
    with pytest.raises(PackageError, match=message):
        build_package(
            app_id=APP_ID, out=tmp_path / "x.zip", name=None, domain=None, template_dir=template
        )
    assert not (tmp_path / "x.zip").exists()


def test_every_problem_is_reported_at_once(tmp_path: Path, template: Path) -> None:
    _edit(template, lambda m: m.update(accentColor="blue", version="one"))
    (template / "color.png").write_bytes(_png(10, 10, b"\x00\x00\x00"))
    with pytest.raises(PackageError) as caught:
        build_package(
            app_id=APP_ID, out=tmp_path / "x.zip", name=None, domain=None, template_dir=template
        )
    assert len(str(caught.value).splitlines()) == 3


def test_a_broken_template_is_named(tmp_path: Path, template: Path) -> None:
    (template / "manifest.json").write_text("{ not json", encoding="utf-8")
    with pytest.raises(PackageError, match=r"manifest\.json: not valid JSON \(line 1"):
        build_package(
            app_id=APP_ID, out=tmp_path / "x.zip", name=None, domain=None, template_dir=template
        )


def test_out_must_be_in_an_existing_folder(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="does not exist"):
        build_package(app_id=APP_ID, out=tmp_path / "no" / "x.zip", name=None, domain=None)
    with pytest.raises(PackageError, match="is a folder"):
        build_package(app_id=APP_ID, out=tmp_path, name=None, domain=None)
