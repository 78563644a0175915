"""A delivery Slack retries is answered once, across every instance sharing the store.

Slack delivers an event again when it did not hear back in time, and a retry may land on
another instance of the bot: the ids of what was handled live in the store (``store.seen``),
written when the delivery is kept (``inbox.py``), before it is acknowledged. Its own room because
each kind of delivery carries its id elsewhere: an event its ``event_id``, a command or a
shortcut its ``trigger_id``, a click its ``trigger_id`` or ``action_ts``, a modal its view's id.
"""

from __future__ import annotations

from dialogs.messages import Platform


def delivery_key(kind: str, delivery_id: object) -> str | None:
    """The key in ``store.seen`` of a delivery of this ``kind`` ("event", "trigger", "action",
    "view") with this id; None for one without an id, which cannot be told apart from another
    and is always handled."""
    if not isinstance(delivery_id, str) or not delivery_id:
        return None
    return f"{Platform.SLACK}:{kind}:{delivery_id}"
