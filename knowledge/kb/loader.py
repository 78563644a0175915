"""The loader: reads each YAML file into its model, builds the knowledge base, runs the checks.

A file that is missing, not YAML, or not what its model says fails with one line per problem,
naming the file and the field. Nothing is read at import time: call :func:`load_knowledge` (any
folder of the same files) or :func:`default_knowledge` (the packaged data, loaded once).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from knowledge.kb.checks import check
from knowledge.kb.conversation import ConversationText
from knowledge.kb.files import DATA_DIR, FILES, KnowledgeError, display
from knowledge.kb.knowledge_base import KnowledgeBase
from knowledge.kb.models import (
    CentresFile,
    CodesFile,
    HelpText,
    MethodsFile,
    NotesFile,
    ProceduresFile,
    RecipientTypesFile,
    SenderGuidance,
    TopicsFile,
)

# libyaml's safe loader where PyYAML was built with it (ten times faster), else the pure one.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _loc_path(loc: tuple[int | str, ...]) -> str:
    """``("procedures", 3, "steps", 0)`` -> ``"procedures[3].steps[0]"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


M = TypeVar("M", bound=BaseModel)


def _read(path: Path, model: type[M]) -> M:
    shown = display(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KnowledgeError(f"{shown}: file not found") from None
    except OSError as exc:
        raise KnowledgeError(f"{shown}: cannot read: {exc}") from exc
    try:
        data = yaml.load(raw, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise KnowledgeError(f"{shown}: {where}YAML syntax error: {problem}") from exc
    if not isinstance(data, dict):
        raise KnowledgeError(f"{shown}: (top level): expected a mapping of fields")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"{shown}: {_loc_path(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise KnowledgeError("\n".join(lines)) from exc


def load_knowledge(directory: Path | None = None) -> KnowledgeBase:
    """Read and check every knowledge file in ``directory`` (default: the packaged data)."""
    folder = DATA_DIR if directory is None else directory

    def path(key: str) -> Path:
        return folder / FILES[key]

    codes = _read(path("codes"), CodesFile)
    topics = _read(path("topics"), TopicsFile)
    kb = KnowledgeBase(
        recipient_types=_read(path("recipient_types"), RecipientTypesFile).recipient_types,
        methods=_read(path("methods"), MethodsFile).methods,
        centres=_read(path("centres"), CentresFile).centres,
        notes=_read(path("notes"), NotesFile).notes,
        procedures=_read(path("procedures"), ProceduresFile).procedures,
        family=codes.family,
        lookalikes=codes.lookalikes,
        sender_guidance=_read(path("sender"), SenderGuidance),
        help_text=_read(path("help"), HelpText),
        conversation=_read(path("conversation"), ConversationText),
        topics=topics.topics,
        hints=topics.hints,
    )
    check(folder, kb)
    return kb


@functools.cache
def default_knowledge() -> KnowledgeBase:
    """The packaged knowledge base, loaded once."""
    return load_knowledge()
