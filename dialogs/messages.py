"""What comes in, in the conversation's own words: a :class:`Message`, whatever the platform."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Platform(StrEnum):
    """Where a message comes from, by the id its platform gives itself (the Bot Framework's
    ``channelId`` for Teams). The one place these ids are spelled; what differs per platform is
    asked of that platform's package under ``bot/channels/``."""

    TEAMS = "msteams"
    SLACK = "slack"
    CONSOLE = "console"

    @classmethod
    def answering(cls, platform: str) -> Platform:
        """The platform whose room answers a user of ``platform``: itself for ours; Teams' for
        any other Bot Framework channel (Web Chat, Direct Line, the Emulator), which comes in,
        and is answered, through the same /api/messages. Such a user stays a user of their own
        channel (``webchat:<id>`` is never ``msteams:<id>``); only the delivery is shared."""
        try:
            return cls(platform)
        except ValueError:
            return cls.TEAMS


@dataclass(frozen=True)
class Attachment:
    """A file the user sent with a message (a bounce saved as .eml, a .txt, an .html)."""

    name: str
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class Message:
    """One user turn, made neutral by its platform's package: the dialogs never see a payload."""

    text: str = ""
    files: tuple[Attachment, ...] = ()
    user_id: str = "local-user"
    user_name: str = ""
    conversation_id: str = "local"
    platform: str = Platform.CONSOLE  # a Platform (Teams passes on any Bot Framework channel)
    value: dict[str, Any] | None = None  # a pressed button's data
    # The Teams tenant or Slack team the person belongs to, as the platform's payload says it
    # (never what the sender could choose); "" where there is none (the terminal).
    tenant: str = ""
    raw: Any = field(default=None, repr=False, compare=False)  # the platform's own event
    # The platform delivery this turn is the work of, the same each time that delivery is worked
    # on (after a crash, by another process); "" when it is worked on once only.
    delivery: str = ""
