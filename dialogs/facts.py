"""Facts people give in their own words: kept, acknowledged, corrected, and never a value they
ruled out. The language layer reads them (:class:`dialogs.reading.Reading`); this module decides
what they change in the conversation."""

from __future__ import annotations

from dataclasses import dataclass, field

from dialogs import admin_fix, admin_targets
from dialogs.reading import Reading
from dialogs.turn import Turn

_BROAD = {"any_group": "group", "any_mailbox": "mailbox"}
_ROLE_CHANGE_SCORE = 0.9  # a classifier's guess below this never overturns a role given
_COMPLEMENTS = (
    ("role", "admin", "sender"),
    ("role", "sender", "admin"),
    ("method", "allow_all", "allowed_senders"),
)
# The facts that shape the admin's answer, in the order they are asked.
ANSWER_SLOTS = ("recipient_type", "method", "centre")


@dataclass
class Taken:
    """What one message's facts did: the slots newly given, the ones changed, the ones cleared
    because the person ruled out their value, and remarks to make."""

    added: list[str] = field(default_factory=list)
    changed: list[tuple[str, str]] = field(default_factory=list)  # (slot, old value)
    cleared: list[str] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)  # conversation.yaml keys, said once

    @property
    def any(self) -> bool:
        """Whether anything changed."""
        return bool(self.added or self.changed or self.cleared)


def take(turn: Turn, reading: Reading | None = None) -> Taken:
    """Apply the facts of ``reading`` (default: this turn's) to the conversation."""
    reading = reading or turn.reading
    taken = Taken()
    if reading is None:
        return taken
    state = turn.state
    ruled_out_now = {(v.slot, v.value) for v in reading.negated}
    for value in reading.negated:
        if value.slot not in ("role", "recipient_type", "method", "centre"):
            continue
        excluded = state.excluded.setdefault(value.slot, [])
        if value.value not in excluded:
            excluded.append(value.value)
        if state.slots.get(value.slot) == value.value:
            del state.slots[value.slot]
            taken.cleared.append(value.slot)
            _forget_answer(turn, value.slot)
    said_slots = {value.slot for value in reading.slots}
    for slot, ruled, other in _COMPLEMENTS:
        # Of two choices, ruling out one says the other: "I'm not the admin" is the sender,
        # "I don't want to allow everyone" the allowed senders list (never the reverse: ruling
        # out the list does not open the recipient to everyone).
        if (slot, ruled) in ruled_out_now and slot not in said_slots:
            _take_one(turn, slot, other, taken)
    for value in reading.slots:
        if (value.slot, value.value) in ruled_out_now:
            continue
        if value.value in state.excluded.get(value.slot, ()):
            state.excluded[value.slot].remove(value.value)  # said plainly now: changed their mind
        if value.slot == "role" and _weak_role_change(turn, value.value, value.score):
            continue  # "just a few senders" is about the method, not who is talking
        _take_one(turn, value.slot, value.value, taken)
    return taken


def _weak_role_change(turn: Turn, role: str, score: float) -> bool:
    """Whether a role read with little confidence would overturn one already given."""
    current = turn.state.slots.get("role")
    return current is not None and current != role and score < _ROLE_CHANGE_SCORE


def _take_one(turn: Turn, slot: str, value: str, taken: Taken) -> None:
    slots = turn.state.slots
    if slot == "role":
        old = slots.get("role")
        if old != value:
            slots["role"] = value
            turn.profile["role"] = value  # remembered for the person's next conversation
            _record(turn, slot, old, taken)
        return
    if slot == "recipient_type":
        if value in _BROAD:
            if "recipient_type" not in slots and slots.get("type_family") != _BROAD[value]:
                slots["type_family"] = _BROAD[value]
                _record(turn, "type_family", None, taken)
            return
        old = slots.get("recipient_type")
        if old == value:
            return
        family = admin_fix.family(turn)
        if family is not None and turn.knowledge.recipient_type(value).family != family:
            if admin_targets.fits_a_target(turn, value):
                taken.added.append("target_type")  # the other recipient's kind
                return
            if value != "m365_group" or family != "group":
                taken.remarks.append("type_conflicts_code")
                return
        slots["recipient_type"] = value
        slots.pop("type_exact", None)
        slots.pop("type_family", None)
        _record(turn, slot, old, taken)
        return
    if slot == "method":
        if admin_fix.related(turn) and value == "allow_all":
            taken.remarks.append("related_code_list_only")
            return
        _set(turn, slot, value, taken)
        return
    if slot == "centre":
        _set(turn, slot, value, taken)
        return
    if slot in ("recipient", "sender") and _full_address(value):
        if slot == "recipient" and turn.recipients and "recipient" not in slots:
            return  # the bounce already names the recipients
        if slot == "sender" and (turn.state.bounce or {}).get("sender"):
            return
        _set(turn, slot, value, taken)


def _set(turn: Turn, slot: str, value: str, taken: Taken) -> None:
    old = turn.state.slots.get(slot)
    if old != value:
        turn.state.slots[slot] = value
        _record(turn, slot, old, taken)


def _record(turn: Turn, slot: str, old: str | None, taken: Taken) -> None:
    if old is None:
        taken.added.append(slot)
    else:
        taken.changed.append((slot, old))
    forget_chosen_for(turn, slot)
    answered = turn.state.answered
    if slot in answered:
        answered.remove(slot)
    answered.append(slot)


def forget_chosen_for(turn: Turn, slot: str) -> None:
    """A new method changes which admin centres have steps: a centre the bot chose because it
    was the only one (not the person) is chosen again."""
    if slot == "method" and "centre" not in turn.state.answered:
        turn.state.slots.pop("centre", None)


def _forget_answer(turn: Turn, slot: str) -> None:
    if slot in turn.state.answered:
        turn.state.answered.remove(slot)


def _full_address(value: str) -> bool:
    local, at, domain = value.partition("@")
    return bool(local and at and "." in domain)


def label(turn: Turn, slot: str, value: str) -> str:
    """How a value is named to the person: its button's words."""
    kb = turn.knowledge
    if slot == "recipient_type":
        return kb.recipient_type(value).label
    if slot == "method":
        return kb.method(value).short_label
    if slot == "centre":
        return kb.centre(value).label
    if slot == "role":
        return next(c.label for c in kb.conversation.choices["role"] if c.value == value)
    if slot == "type_family":
        return kb.conversation.family(value).label
    return value


def acknowledge(
    turn: Turn, taken: Taken, *, answered: str | None = None, at: int | None = None
) -> None:
    """Say what was noted: facts given unasked ("Noted: PowerShell") and corrections ("Changed:
    Shared mailbox, was User mailbox"). The answer to the question just asked needs no word.
    ``at``: where in this turn's replies to say it (after the flow went on, so that a value the
    flow could not keep, such as an admin centre with no steps for the type, is not noted)."""
    said_before = len(turn.replies)
    slots = turn.state.slots
    noted = [
        label(turn, slot, slots[slot])
        for slot in taken.added
        if slot != answered and slot in slots and slot != "role"
    ]
    if noted:
        turn.say("noted", facts=", ".join(f"**{n}**" for n in noted))
    for slot, old in taken.changed:
        if slot in slots and slots[slot] != old:
            turn.say(
                "changed",
                new=f"**{label(turn, slot, slots[slot])}**",
                old=label(turn, slot, old),
            )
    for remark in dict.fromkeys(taken.remarks):
        turn.say(remark, status=turn.fact("status") or "")
    if at is not None:
        said = turn.replies[said_before:]
        del turn.replies[said_before:]
        turn.replies[at:at] = said
