"""Where the knowledge files are, what each is called, and the error that names one.

The loader reads these files and the checks blame them: both build their messages here, so an
error always shows the file as a person finds it in the project (``knowledge/data/codes.yaml``).
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).parent.parent / "data"

FILES = {
    "recipient_types": "recipient_types.yaml",
    "methods": "methods.yaml",
    "centres": "centres.yaml",
    "notes": "notes.yaml",
    "procedures": "procedures.yaml",
    "codes": "codes.yaml",
    "sender": "sender.yaml",
    "help": "help.yaml",
    "conversation": "conversation.yaml",
    "topics": "topics.yaml",
}


class KnowledgeError(Exception):
    """The knowledge data is missing or wrong; the message names the file and the field."""


def display(path: Path) -> str:
    """The file as the error shows it: relative to the project for packaged data."""
    try:
        return path.resolve().relative_to(DATA_DIR.parent.parent.resolve()).as_posix()
    except ValueError:
        return str(path)


def fail(directory: Path, key: str, field: str, message: str) -> KnowledgeError:
    return KnowledgeError(f"{display(directory / FILES[key])}: {field}: {message}")
