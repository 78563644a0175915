"""What comes in, in the conversation's own words: a :class:`Message`, whatever the platform."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Attachment:
    """A file the user sent with a message (a bounce saved as .eml, a .txt, an .html)."""

    name: str
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class Message:
    """One user turn, turned neutral by a channel: the dialogs never see a platform payload."""

    text: str = ""
    files: tuple[Attachment, ...] = ()
    user_id: str = "local-user"
    user_name: str = ""
    conversation_id: str = "local"
    channel: str = "console"  # console | msteams | slack | ...
    value: dict[str, Any] | None = None  # a pressed button's data
    raw: Any = field(default=None, repr=False, compare=False)  # the platform's own event
