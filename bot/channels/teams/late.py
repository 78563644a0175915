"""A turn's replies that the Bot Connector did not take within the turn (:class:`TeamsLateReplies`):
kept in the outbox (``store.jobs.enqueue_replies``), one job per activity, and sent later by the
job worker as new messages through the conversation's stored reference, in order per
conversation, the first of them after a line that says why it is late.

Its own room because it is where a turn hands over to the worker: the turn asks whether replies
of its conversation wait already (then its own queue behind them) and keeps what it could not
send; the worker calls ``send_late`` for each.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from bot.channels.teams.cards import text_activity
from bot.channels.teams.failures import SendFailed
from bot.channels.teams.sending import Sender
from bot.runtime import Runtime
from bot.store import StoreError
from bot.tickets import PermanentFailure
from dialogs.messages import Platform

log = logging.getLogger("bot.channels.teams")

#: The texts of conversation.yaml this module looks up; checked when the bot starts.
TEXTS: Final = frozenset({"reply_late"})


class TeamsLateReplies:
    """The outbox side of a turn's replies on Teams (``bot.tickets.LateReplies``)."""

    platform: str = Platform.TEAMS

    def __init__(self, sender: Sender, runtime: Runtime) -> None:
        self.sender = sender
        self.runtime = runtime

    async def waiting(self, conversation_key: str) -> bool:
        """Whether replies of this conversation wait in the outbox (a later one must queue
        behind them). False when the store cannot tell: the reply is tried at once."""
        try:
            return await self.runtime.store.jobs.replies_waiting(self.platform, conversation_key)
        except StoreError:
            log.warning("could not tell whether replies wait; sending at once")
            return False

    async def keep(
        self, conversation_key: str, activities: Sequence[Mapping[str, Any]], *, first: bool
    ) -> bool:
        """Keep activities for the worker, after any of the conversation kept before; the first
        of a conversation's late replies (``first``) comes after a line saying why it is late.
        False when the store could not keep them either (they are lost: logged by the caller)."""
        kept = [dict(activity) for activity in activities]
        if first:
            kept.insert(0, text_activity(self.runtime.knowledge.conversation.text("reply_late")))
        payloads = [{"conversation": conversation_key, "activity": each} for each in kept]
        try:
            await self.runtime.store.jobs.enqueue_replies(self.platform, conversation_key, payloads)
        except StoreError:
            return False
        self.runtime.tickets.wake_worker()
        return True

    async def send_late(self, payload: dict[str, Any]) -> None:
        """Send one kept activity as a new message into its conversation (the job worker);
        retried like a ticket's messages, ``PermanentFailure`` when trying again cannot help."""
        key, activity = str(payload.get("conversation") or ""), payload.get("activity")
        if not isinstance(activity, dict):
            raise PermanentFailure("a kept reply without its activity")
        reference = await self.runtime.store.conversations.load_reference(key)
        if reference is None:
            raise PermanentFailure("no conversation reference for a kept reply")
        try:
            await self.sender.post(
                reference, activity, budget=self.sender.options.job_retry_budget_seconds
            )
        except SendFailed as failure:
            if failure.permanent:
                raise PermanentFailure(str(failure)) from None
            raise


__all__ = ["TEXTS", "TeamsLateReplies"]
