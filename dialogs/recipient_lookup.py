"""What the organization's directory told about the admin's recipient, kept in the state between
turns: each recipient looked up once, and the change shown to the admin until they confirm it.

The state is plain JSON (:class:`dialogs.state.DialogState`), so the directory's answers are kept
as data here and read back as the protocol's types (:mod:`dialogs.directory`), anything malformed
read as nothing known. Saying what was found is :mod:`dialogs.admin_fix`'s; planning and applying
the change is :mod:`dialogs.fix_for_me`'s.
"""

from __future__ import annotations

from typing import Any

from dialogs.directory import Lookup, Problem, RecipientSetting
from dialogs.turn import Turn

_PROBLEMS: dict[Any, Problem] = {
    "unknown": "unknown",
    "denied": "denied",
    "unavailable": "unavailable",
}
# What became of the offer to apply the fix, once it is no longer offered.
FIX_DONE = ("applied", "failed", "refused", "unplanned")


def key(address: str) -> str:
    """How a recipient is filed in the state: addresses compare without case."""
    return address.strip().lower()


def wanted(turn: Turn) -> str | None:
    """The recipient to look up before the admin's path goes on: the conversation's own, when a
    directory is connected and it was not looked up yet in this conversation."""
    address = turn.recipient
    if turn.context.directory is None or not address or "@" not in address:
        return None
    return None if key(address) in turn.state.looked_up else address


def keep(turn: Turn, address: str, lookup: Lookup | None) -> None:
    """File what the directory answered about ``address`` (None: it does not answer here)."""
    entry: dict[str, Any] = {}
    if lookup is not None:
        entry = {"address": lookup.address or address, "detail": lookup.detail}
        if lookup.problem is not None or lookup.setting is None:
            entry["problem"] = lookup.problem or "unavailable"
        else:
            entry["setting"] = lookup.setting.to_json()
    turn.state.looked_up[key(address)] = entry


def entry(turn: Turn, address: str | None = None) -> dict[str, Any]:
    """What the state holds about ``address`` (default: the conversation's recipient)."""
    address = address or turn.recipient
    return turn.state.looked_up.get(key(address), {}) if address else {}


def found(turn: Turn, address: str | None = None) -> RecipientSetting | None:
    """The recipient's setting as the directory gave it, if it did."""
    data = entry(turn, address).get("setting")
    return RecipientSetting.from_json(data) if isinstance(data, dict) else None


def explains(setting: RecipientSetting, list_code: bool) -> bool:
    """Whether the setting explains the bounce: it refuses outside senders (5.7.12 and its
    family), or, for the codes of the allowed senders list (5.7.124, 5.7.129), it has a list."""
    lists = (
        setting.accept_messages_only_from or setting.accept_messages_only_from_senders_or_members
    )
    return setting.explains_5_7_12 or (list_code and bool(lists))


def problem_of(turn: Turn, address: str | None = None) -> tuple[Problem, str] | None:
    """The problem the look-up ran into, and Exchange's words, if it ran into one."""
    found_entry = entry(turn, address)
    problem = _PROBLEMS.get(found_entry.get("problem"))
    if problem is None:
        return None
    detail = found_entry.get("detail")
    return problem, detail if isinstance(detail, str) else ""
