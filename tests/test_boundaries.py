"""The rooms of DESIGN.md: imports run bot/ -> dialogs/ -> knowledge/, and platform libraries
stay in bot/channels/."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = {"botbuilder", "botframework", "slack_bolt", "slack_sdk"}
# What each room may import besides the standard library and itself.
ALLOWED = {
    "knowledge": {"knowledge", "yaml", "pydantic", "py3langid"},
    "dialogs": {"dialogs", "knowledge"},
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_room_imports_only_what_it_may(room: str) -> None:
    for path in sorted((ROOT / room).rglob("*.py")):
        outside = imports(path) - ALLOWED[room] - set(sys.stdlib_module_names) - {"__future__"}
        assert not outside, f"{path.relative_to(ROOT)} imports {sorted(outside)}"


def test_platform_libraries_only_in_channels() -> None:
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if "channels" in path.relative_to(ROOT / "bot").parts:
            continue
        used = imports(path) & PLATFORM
        assert not used, f"{path.relative_to(ROOT)} imports {sorted(used)}"
