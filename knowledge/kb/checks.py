"""The checks across files, run once everything has loaded: what no single model can see.

Ids are unique and exactly the vocabulary's; procedures name notes that exist, use only the
placeholders their readers fill, and cover every recipient type in every centre it lists; the
topics and hints are complete. Each failure names the file and the field to fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from knowledge.kb.files import fail
from knowledge.kb.knowledge_base import KnowledgeBase
from knowledge.kb.vocabulary import (
    CENTRE_IDS,
    HINT_SLOTS,
    METHOD_IDS,
    PROCEDURE_PLACEHOLDERS,
    RECIPIENT_TYPE_IDS,
    SENDER_PLACEHOLDERS,
    TOPIC_IDS,
    TOPIC_PLACEHOLDERS,
    placeholders_in,
)


def _unique(directory: Path, key: str, list_name: str, ids: Iterable[str]) -> None:
    seen: set[str] = set()
    for index, item_id in enumerate(ids):
        if item_id in seen:
            raise fail(directory, key, f"{list_name}[{index}].id", f"duplicate id {item_id!r}")
        seen.add(item_id)


def _exactly(
    directory: Path, key: str, list_name: str, ids: Iterable[str], expected: Iterable[str]
) -> None:
    have, want = set(ids), set(expected)
    if have != want:
        missing, extra = sorted(want - have), sorted(have - want)
        raise fail(
            directory,
            key,
            list_name,
            f"ids must be {sorted(want)}; missing {missing}, unexpected {extra}",
        )


def check(directory: Path, kb: KnowledgeBase) -> None:
    _unique(directory, "recipient_types", "recipient_types", (r.id for r in kb.recipient_types))
    _exactly(
        directory,
        "recipient_types",
        "recipient_types",
        (r.id for r in kb.recipient_types),
        RECIPIENT_TYPE_IDS,
    )
    _unique(directory, "methods", "methods", (m.id for m in kb.methods))
    _exactly(directory, "methods", "methods", (m.id for m in kb.methods), METHOD_IDS)
    _unique(directory, "centres", "centres", (c.id for c in kb.centres))
    _exactly(directory, "centres", "centres", (c.id for c in kb.centres), CENTRE_IDS)
    _unique(directory, "notes", "notes", (n.id for n in kb.notes))
    _unique(directory, "procedures", "procedures", (p.id for p in kb.procedures))

    note_ids = {n.id for n in kb.notes}
    for index, proc in enumerate(kb.procedures):
        where = f"procedures[{index}]"
        for n_index, note_id in enumerate(proc.notes):
            if note_id not in note_ids:
                raise fail(
                    directory,
                    "procedures",
                    f"{where}.notes[{n_index}]",
                    f"unknown note id {note_id!r}",
                )
        for text in proc.texts():
            unknown = placeholders_in(text) - PROCEDURE_PLACEHOLDERS
            if unknown:
                raise fail(
                    directory,
                    "procedures",
                    where,
                    f"unknown placeholder(s) {sorted(unknown)}; "
                    f"allowed: {sorted(PROCEDURE_PLACEHOLDERS)}",
                )
        for t_index, type_id in enumerate(proc.recipient_types):
            if proc.centre not in kb.recipient_type(type_id).centres:
                raise fail(
                    directory,
                    "procedures",
                    f"{where}.recipient_types[{t_index}]",
                    f"{type_id!r} does not list centre {proc.centre!r} in recipient_types.yaml",
                )
        if proc.centre == "new_eac" and "mail_user" in proc.recipient_types:
            raise fail(
                directory,
                "procedures",
                f"{where}.centre",
                "mail users cannot be changed in the new EAC",
            )

    for r_index, rtype in enumerate(kb.recipient_types):
        if not kb.procedures_for("allow_all", rtype.id):
            raise fail(
                directory, "procedures", "procedures", f"no allow_all procedure for {rtype.id!r}"
            )
        for method_id in METHOD_IDS:
            if not kb.procedures_for(method_id, rtype.id, "powershell"):
                raise fail(
                    directory,
                    "procedures",
                    "procedures",
                    f"no PowerShell procedure for {method_id!r} and {rtype.id!r}",
                )
        for c_index, centre_id in enumerate(rtype.centres):
            if not any(
                p.centre == centre_id for p in kb.procedures if rtype.id in p.recipient_types
            ):
                raise fail(
                    directory,
                    "recipient_types",
                    f"recipient_types[{r_index}].centres[{c_index}]",
                    f"no procedure for {rtype.id!r} in {centre_id!r}",
                )

    for index, proc in enumerate(kb.procedures):
        if not proc.steps_for(frozenset()):
            raise fail(
                directory,
                "procedures",
                f"procedures[{index}].steps",
                "every step has conditions (when); at least one must be shown always",
            )

    _check_topics(directory, kb)

    for field, text in kb.sender_guidance.texts():
        unknown = placeholders_in(text) - SENDER_PLACEHOLDERS
        if unknown:
            raise fail(
                directory,
                "sender",
                field,
                f"unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(SENDER_PLACEHOLDERS)}",
            )


def _check_topics(directory: Path, kb: KnowledgeBase) -> None:
    _unique(directory, "topics", "topics", (t.id for t in kb.topics))
    _exactly(directory, "topics", "topics", (t.id for t in kb.topics), TOPIC_IDS)
    allowed = f"allowed: {sorted(TOPIC_PLACEHOLDERS)}"
    for index, topic in enumerate(kb.topics):
        for field, text in topic.texts():
            unknown = placeholders_in(text) - TOPIC_PLACEHOLDERS
            if unknown:
                raise fail(
                    directory,
                    "topics",
                    f"topics[{index}].{field}",
                    f"unknown placeholder(s) {sorted(unknown)}; {allowed}",
                )
    for slot, hint in kb.hints.items():
        if slot not in HINT_SLOTS:
            raise fail(
                directory,
                "topics",
                f"hints.{slot}",
                f"unknown slot {slot!r}; slots are {list(HINT_SLOTS)}",
            )
        unknown = placeholders_in(hint.text) - TOPIC_PLACEHOLDERS
        if unknown:
            raise fail(
                directory,
                "topics",
                f"hints.{slot}.text",
                f"unknown placeholder(s) {sorted(unknown)}; {allowed}",
            )
    missing = [slot for slot in HINT_SLOTS if slot not in kb.hints]
    if missing:
        raise fail(directory, "topics", "hints", f"missing hints for {missing}")
