"""The further failed recipients of one bounce: grouped by the kind of recipient their codes
tell (the first group is the conversation's recipient), each further group's kind asked once.

A bounce to several recipients may fail for different reasons (a distribution group and a
mailbox, 5.7.12 and 5.7.124); this room keeps that bookkeeping in ``DialogState.targets`` out of
the admin's path itself (:mod:`dialogs.admin_fix`), which asks the question and gives the steps.
"""

from __future__ import annotations

from dialogs.turn import Turn


def plan_targets(turn: Turn) -> None:
    """Group a bounce's failed recipients by the kind of recipient their codes tell: the first
    group is the conversation's recipient; each further group is asked about once."""
    bounce = turn.state.bounce or {}
    failures = [f for f in bounce.get("failures") or () if isinstance(f, list) and f]
    kb = turn.knowledge
    groups: dict[tuple[str | None, str | None], list[str]] = {}
    statuses: dict[tuple[str | None, str | None], str | None] = {}
    for failure in failures:
        address = str(failure[0])
        status = failure[1] if len(failure) > 1 and isinstance(failure[1], str) else None
        entry = kb.code(status, None, "") if status else None
        key = (getattr(entry, "recipient_family", None), getattr(entry, "fix", None))
        groups.setdefault(key, []).append(address)
        statuses.setdefault(key, status)
    keys = list(groups)
    turn.state.targets = [
        {"addresses": groups[key], "status": statuses[key] or "", "family": key[0] or ""}
        for key in keys[1:]
    ]
    if turn.state.targets:
        first = set(groups[keys[0]])
        bounce["recipients"] = [r for r in bounce.get("recipients") or () if r in first] or list(
            groups[keys[0]]
        )


def target_types(turn: Turn, target: dict[str, object]) -> tuple[str, ...]:
    """The recipient types a further failed recipient can be, by the family its code tells."""
    family_id = target.get("family") or None
    return tuple(
        t.id
        for t in turn.knowledge.recipient_types_in_family(str(family_id) if family_id else None)
    )


def current_target(turn: Turn) -> int | None:
    """The index of the further recipient whose type is being asked, if any."""
    return next((i for i, t in enumerate(turn.state.targets) if not t.get("type")), None)


def fits_a_target(turn: Turn, type_id: str) -> bool:
    """Give ``type_id`` to the further recipient it fits, if one is still without a kind."""
    for target in turn.state.targets:
        if not target.get("type") and type_id in target_types(turn, target):
            target["type"] = type_id
            return True
    return False


def set_target_type(turn: Turn, type_id: str) -> None:
    """Record the kind of the further recipient being asked about."""
    index = current_target(turn)
    if index is not None:
        turn.state.targets[index]["type"] = type_id
