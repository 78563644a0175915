"""The rooms of ARCHITECTURE.md: imports run bot/ -> dialogs/ -> knowledge/; the language layer
(dialogs/understanding/) is the only part of dialogs/ that imports scikit-learn and rapidfuzz,
and the flows reach it only through the seam (dialogs/reading.py); platform libraries stay in
bot/channels/, the Bot Framework's in bot/channels/teams/."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = {"botbuilder", "botframework", "slack_bolt", "slack_sdk"}
BOT_FRAMEWORK = {"botbuilder", "botframework", "msrest", "azure"}
LANGUAGE_LIBRARIES = {"sklearn", "scipy", "numpy", "rapidfuzz"}
# What each room may import besides the standard library and itself.
ALLOWED = {
    "knowledge": {"knowledge", "yaml", "pydantic", "py3langid"},
    "dialogs": {"dialogs", "knowledge"},
    "dialogs/understanding": {"dialogs", "knowledge", "yaml", *LANGUAGE_LIBRARIES},
}


def imports(path: Path, *, modules: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name if modules else alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module if modules else node.module.split(".")[0])
    return found


def _room_files(room: str) -> list[Path]:
    files = sorted((ROOT / room).rglob("*.py"))
    if room == "dialogs":  # the language layer is a room of its own
        files = [p for p in files if "understanding" not in p.relative_to(ROOT / room).parts]
    return files


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_room_imports_only_what_it_may(room: str) -> None:
    for path in _room_files(room):
        outside = imports(path) - ALLOWED[room] - set(sys.stdlib_module_names) - {"__future__"}
        assert not outside, f"{path.relative_to(ROOT)} imports {sorted(outside)}"


def test_the_flows_reach_the_language_layer_only_through_the_seam() -> None:
    for path in _room_files("dialogs"):
        layer = {m for m in imports(path, modules=True) if m.startswith("dialogs.understanding")}
        assert not layer, f"{path.relative_to(ROOT)} imports {sorted(layer)}"


def test_platform_libraries_only_in_channels() -> None:
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if "channels" in path.relative_to(ROOT / "bot").parts:
            continue
        used = imports(path) & PLATFORM
        assert not used, f"{path.relative_to(ROOT)} imports {sorted(used)}"


@pytest.mark.parametrize("room", ["bot", "dialogs", "knowledge"])
def test_only_the_teams_channel_imports_the_bot_framework(room: str) -> None:
    teams = ROOT / "bot" / "channels" / "teams"
    for path in sorted((ROOT / room).rglob("*.py")):
        if path.is_relative_to(teams):
            continue
        used = imports(path) & BOT_FRAMEWORK
        assert not used, f"{path.relative_to(ROOT)} imports {sorted(used)}"
