"""How a Teams request or call fails: :class:`Refused` (what the endpoint answers: a status and a
reason) and :class:`SendFailed` (the Bot Connector did not take a call, retries included).

A room of their own: the endpoint, the authentication, the bot's token and the sender all raise
them, and none of those should import another only for its exception.
"""

from __future__ import annotations


class Refused(Exception):
    """A request the endpoint answers with an error status and a JSON reason."""

    def __init__(self, status: int, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.kind = kind


class SendFailed(Exception):
    """The Bot Connector did not take a call, retries included. ``status`` is its last answer
    (0: no answer), ``after`` the wait it asked for, if any."""

    def __init__(self, reason: str, *, status: int = 0, after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.after = after

    @property
    def permanent(self) -> bool:
        """Whether trying again cannot help: a 4xx other than 401 (our token), 408 and 429."""
        return 400 <= self.status < 500 and self.status not in (401, 408, 429)


__all__ = ["Refused", "SendFailed"]
