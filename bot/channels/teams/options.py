"""What is not a setting of the Teams channel (:class:`TeamsOptions`): where tokens are checked
and the bot's own token comes from, and the timings of retries and "typing...".

Its own room because every part of the channel reads it (the authentication, the connector
clients, the sender, the turn) and tests replace it before the app starts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TeamsOptions:
    """What is not a setting: where Bot Framework tokens are checked and the bot's own token
    comes from (tests point these at fakes), and the timings of retries and "typing...".

    Replace ``app[OPTIONS]`` after ``create_app`` and before the app starts to change them.
    """

    channel_openid_metadata_url: str | None = None  # None: the public cloud's
    emulator_openid_metadata_url: str | None = None
    token_source: Callable[[], Awaitable[str]] | None = None  # None: botbuilder's credentials
    retry_budget_seconds: float = 10.0  # all retries of one turn's replies together
    # One ticket job's call (a card, a note, a requester's news): throttling is waited out
    # here rather than by the job worker, so that the cards keep their order.
    job_retry_budget_seconds: float = 60.0
    retry_base_seconds: float = 0.5
    max_attempts: int = 5
    typing_after_seconds: float = 1.0
    request_timeout_seconds: float = 20.0
    download_timeout_seconds: float = 30.0


__all__ = ["TeamsOptions"]
