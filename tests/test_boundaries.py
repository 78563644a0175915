"""The rooms of ARCHITECTURE.md: imports run bot/ -> dialogs/ -> knowledge/; the language layer
(dialogs/understanding/) is the only part of dialogs/ that imports scikit-learn and rapidfuzz,
and the flows reach it only through the seam (dialogs/reading.py); platform libraries stay in
bot/channels/: the Bot Framework's in bot/channels/teams/, slack-bolt and slack_sdk in
bot/channels/slack/; MSAL (Exchange Online's sign-in) stays in bot/exchange/."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
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


def test_only_the_language_layers_training_imports_scikit_learn_and_scipy() -> None:
    """What is served holds plain dicts and arrays: scikit-learn and scipy stay in training."""
    for path in _room_files("dialogs/understanding"):
        if path.name != "training.py":
            used = imports(path) & {"sklearn", "scipy"}
            assert not used, f"{path.relative_to(ROOT)} imports {sorted(used)}"


def test_the_flows_reach_the_language_layer_only_through_the_seam() -> None:
    for path in _room_files("dialogs"):
        layer = {m for m in imports(path, modules=True) if m.startswith("dialogs.understanding")}
        assert not layer, f"{path.relative_to(ROOT)} imports {sorted(layer)}"


#: Each platform's SDKs, and the one package that may import them.
SDKS = {
    "teams": {"botbuilder", "botframework", "msrest", "azure"},
    "slack": {"slack_bolt", "slack_sdk"},
}
#: Other outside services' libraries, and the one room that may import each.
SERVICE_LIBRARIES = {"bot/exchange": {"msal"}}
#: The modules that draw replies and ticket cards: they are handed a TicketCard, never a record.
DRAWING = [
    *sorted((ROOT / "bot" / "render").glob("*.py")),
    *(ROOT / "bot" / "channels" / "teams" / name for name in ("cards.py", "ticket_cards.py")),
    ROOT / "bot" / "channels" / "teams" / "card_elements.py",
    *(ROOT / "bot" / "channels" / "slack" / name for name in ("blocks.py", "ticket_blocks.py")),
]
#: Where neutral code may reach a platform's package: the composition roots (the app mounts each
#: platform and hands their declared texts to the runtime's check, the CLI builds their
#: manifests).
COMPOSITION_ROOTS = {"app.py", "cli.py"}


@pytest.mark.parametrize("platform", sorted(SDKS))
@pytest.mark.parametrize("room", ["bot", "dialogs", "knowledge"])
def test_a_platform_sdk_is_imported_only_by_its_package(platform: str, room: str) -> None:
    package = ROOT / "bot" / "channels" / platform
    for path in sorted((ROOT / room).rglob("*.py")):
        if path.is_relative_to(package):
            continue
        used = imports(path) & SDKS[platform]
        assert not used, f"{path.relative_to(ROOT)} imports {sorted(used)}"


@pytest.mark.parametrize("home", sorted(SERVICE_LIBRARIES))
def test_a_service_library_is_imported_only_by_its_room(home: str) -> None:
    paths = [
        path for room in ("bot", "dialogs", "knowledge") for path in (ROOT / room).rglob("*.py")
    ]
    for path in sorted(paths):
        if path.is_relative_to(ROOT / home):
            continue
        used = imports(path) & SERVICE_LIBRARIES[home]
        assert not used, f"{path.relative_to(ROOT)} imports {sorted(used)}"


def test_the_exchange_room_reaches_no_platform_and_no_store_internals() -> None:
    for path in sorted((ROOT / "bot" / "exchange").rglob("*.py")):
        used = imports(path, modules=True)
        reached = {m for m in used if m.startswith(("bot.channels", "bot.store"))}
        assert not reached, f"{path.relative_to(ROOT)} imports {sorted(reached)}"


def test_drawing_never_imports_the_store() -> None:
    for path in DRAWING:
        assert path.exists(), f"{path.relative_to(ROOT)} is gone: update DRAWING"
        store = {m for m in imports(path, modules=True) if m.split(".")[:2] == ["bot", "store"]}
        assert not store, f"{path.relative_to(ROOT)} imports {sorted(store)}"


def test_neutral_code_reaches_a_platform_only_from_the_composition_roots() -> None:
    channels = ROOT / "bot" / "channels"
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if path.is_relative_to(channels) or path.name in COMPOSITION_ROOTS:
            continue
        reached = {m for m in imports(path, modules=True) if m.startswith("bot.channels")}
        assert not reached, f"{path.relative_to(ROOT)} imports {sorted(reached)}"


def test_no_platform_package_imports_another() -> None:
    for platform in SDKS:
        others = {f"bot.channels.{other}" for other in SDKS if other != platform}
        for path in sorted((ROOT / "bot" / "channels" / platform).rglob("*.py")):
            used = imports(path, modules=True)
            reached = {m for m in used if any(m == o or m.startswith(f"{o}.") for o in others)}
            assert not reached, f"{path.relative_to(ROOT)} imports {sorted(reached)}"
