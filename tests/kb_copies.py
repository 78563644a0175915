"""Copies of the knowledge data to break on purpose, for the tests of the loader's checks."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).resolve().parent.parent / "knowledge" / "data"


def copy_data(tmp_path: Path) -> Path:
    """A copy of knowledge/data to change."""
    target = tmp_path / "data"
    shutil.copytree(DATA, target)
    return target


def edit_yaml(path: Path, change: Callable[[Any], object]) -> None:
    """Load a YAML file, let ``change`` alter the data, write it back."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
