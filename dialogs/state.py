"""A conversation's state: small, plain JSON, so any instance of the bot can take the next turn."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# The answers a conversation collects, one key each.
SLOTS = (
    "role",
    "recipient",
    "sender",
    "recipient_type",
    "type_family",  # the broad kind said ("a group"), until the exact one is known
    "method",
    "centre",
    "type_exact",
    "ticket",
    "about",  # what an escalation with no bounce is about, in the requester's words
)
FLOWS = ("admin", "sender", "escalation", "done")


@dataclass
class DialogState:
    """Where a conversation stands: its flow, the question waiting for an answer, what is known."""

    flow: str | None = None  # admin | sender | escalation | done | None (nothing started)
    pending: str | None = None  # the slot the last question asked for
    offered: list[str] = field(default_factory=list)  # the choices it showed, in order
    misses: int = 0  # answers in a row that fitted no choice
    slots: dict[str, str] = field(default_factory=dict)
    bounce: dict[str, Any] | None = None  # the reader's facts of the bounce being worked on
    shown: list[str] = field(default_factory=list)  # once-only remarks already made
    resume: dict[str, str] = field(default_factory=dict)  # flow and question an escalation left
    answered: list[str] = field(default_factory=list)  # slots the person gave, in order ("go back")
    excluded: dict[str, list[str]] = field(default_factory=dict)  # values ruled out, per slot
    proposal: dict[str, str] = field(default_factory=dict)  # "Did you mean ...?": slot, value
    targets: list[dict[str, Any]] = field(default_factory=list)  # further failed recipients
    inbox: list[str] = field(default_factory=list)  # ticket news that waits for the next turn
    # The organization's directory, on an admin's path: each recipient looked up, by address in
    # lower case ({} when the directory did not answer this person about it), and the change
    # shown word for word and waiting for the admin's confirmation (dialogs.recipient_lookup).
    looked_up: dict[str, dict[str, Any]] = field(default_factory=dict)
    fix_plan: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The state as JSON-ready data, sharing nothing with this state (``dataclasses.asdict``
        without its ``copy.deepcopy`` of every string and number)."""
        return {name: _copied(getattr(self, name)) for name in _FIELDS}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> DialogState:
        """Rebuild a state; anything missing or malformed falls back to a fresh start."""
        if not isinstance(data, dict):
            return cls()
        slots = data.get("slots")
        bounce = data.get("bounce")
        flow = data.get("flow")
        pending = data.get("pending")
        misses = data.get("misses")
        looked_up, fix_plan = data.get("looked_up"), data.get("fix_plan")
        return cls(
            flow=flow if flow in FLOWS else None,
            pending=pending if isinstance(pending, str) else None,
            misses=misses if isinstance(misses, int) and misses >= 0 else 0,
            slots={
                k: v
                for k, v in (slots.items() if isinstance(slots, dict) else ())
                if k in SLOTS and isinstance(v, str)
            },
            bounce=bounce if isinstance(bounce, dict) else None,
            shown=[s for s in data.get("shown") or () if isinstance(s, str)],
            offered=[s for s in data.get("offered") or () if isinstance(s, str)],
            resume=_strings(data.get("resume"), ("flow", "pending")),
            answered=[s for s in data.get("answered") or () if s in SLOTS],
            excluded={
                k: [v for v in values if isinstance(v, str)]
                for k, values in (data.get("excluded") or {}).items()
                if k in SLOTS and isinstance(values, list)
            }
            if isinstance(data.get("excluded"), dict)
            else {},
            proposal=_strings(data.get("proposal"), ("slot", "value", "pending", "intent")),
            targets=[t for t in data.get("targets") or () if isinstance(t, dict)],
            inbox=[t for t in data.get("inbox") or () if isinstance(t, str)],
            looked_up={
                k: v
                for k, v in (looked_up.items() if isinstance(looked_up, dict) else ())
                if isinstance(k, str) and isinstance(v, dict)
            },
            fix_plan=fix_plan if isinstance(fix_plan, dict) else {},
        )

    def reset(self, *, keep_role: bool = True) -> None:
        """Forget the flow and its answers (and the bounce); keep the role unless told not to."""
        role = self.slots.get("role") if keep_role else None
        self.flow, self.pending, self.misses, self.bounce = None, None, 0, None
        self.slots = {"role": role} if role else {}
        self.shown, self.offered, self.resume = [], [], {}
        self.answered, self.excluded, self.proposal, self.targets = [], {}, {}, []
        self.looked_up, self.fix_plan = {}, {}


_FIELDS = tuple(f.name for f in fields(DialogState))


def _copied(value: Any) -> Any:
    """JSON data copied: its dicts and lists new, its strings, numbers and None as they are."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_copied(item) for item in value)
    return value


def _strings(data: Any, names: tuple[str, ...]) -> dict[str, str]:
    """The string values of ``data`` under ``names`` (nothing when it is not a mapping)."""
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if k in names and isinstance(v, str)}
