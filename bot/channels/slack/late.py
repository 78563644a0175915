"""A turn's replies that Slack did not take (:class:`SlackLateReplies`): posted at once when they
can be, else kept in the outbox (``store.jobs.enqueue_replies``), one job per message, and posted
later by the job worker with chat.postMessage to the same channel and thread, in order per
conversation, the first of them after a line that says why it is late.

Its own room because it is where a turn hands over to the worker: while replies of a
conversation wait in the outbox, its later replies queue behind them; ``send_late`` is what the
worker calls for each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

from bot.channels.slack.blocks import SlackMessage, render_replies
from bot.channels.slack.events import Target
from bot.channels.slack.web_api import API_ERRORS, WebAPI, call_for_job, reason, worth_retrying
from bot.metrics import Metrics
from bot.store import Store, StoreError
from bot.tickets import PermanentFailure
from dialogs.messages import Platform
from dialogs.replies import Reply, Text
from knowledge.kb import ConversationText

log = logging.getLogger("bot.channels.slack")

#: The texts of conversation.yaml this module looks up; checked when the bot starts.
TEXTS: Final = frozenset({"reply_late"})


class SlackLateReplies:
    """A turn's replies on Slack: now, or kept for the worker (``bot.tickets.LateReplies``)."""

    platform: str = Platform.SLACK

    def __init__(
        self,
        web: WebAPI,
        *,
        store: Store,
        words: ConversationText,
        metrics: Metrics,
        wake: Callable[[], None],
    ) -> None:
        """Post through ``web``; keep in ``store``; ``wake`` the worker when something is kept."""
        self._web = web
        self._store = store
        self._words = words
        self._metrics = metrics
        self._wake = wake

    async def post(self, conversation_key: str, target: Target, replies: Sequence[Reply]) -> bool:
        """A turn's replies, as few messages as Slack's limits allow. What Slack does not take
        when it is busy or unreachable (and everything after it) is kept and posted later, as
        is everything while earlier replies of the conversation wait. False (logged and
        counted) when Slack refused one for good, or the outbox could not keep them."""
        messages = render_replies(replies, self._words)
        behind = bool(messages) and await self._waiting(conversation_key)
        for index, message in enumerate(messages):
            if behind:
                return await self._keep(conversation_key, target, messages[index:], first=False)
            try:
                await self._web.post_message(target, message)
            except API_ERRORS as error:
                if not worth_retrying(error):
                    self._metrics.errors.labels(Platform.SLACK, "send").inc()
                    log.error("Slack API call failed", extra={"reason": reason(error)})
                    return False  # the rest would read oddly without this part
                log.warning(
                    "reply not taken by Slack; kept to send later", extra={"reason": reason(error)}
                )
                return await self._keep(conversation_key, target, messages[index:], first=True)
        return True

    async def send_late(self, payload: dict[str, Any]) -> None:
        """chat.postMessage of one kept message into its channel and thread (the job worker);
        ``PermanentFailure`` when trying again cannot help."""
        channel, message = payload.get("channel"), payload.get("message")
        if not isinstance(channel, str) or not channel or not isinstance(message, dict):
            raise PermanentFailure("a kept reply without its channel or message")
        thread = payload.get("thread_ts")
        call = self._web.client.chat_postMessage(
            channel=channel,
            thread_ts=str(thread) if thread else None,
            unfurl_links=False,
            unfurl_media=False,
            **message,
        )
        await call_for_job("chat.postMessage", call, self._metrics)

    async def _waiting(self, conversation_key: str) -> bool:
        try:
            return await self._store.jobs.replies_waiting(self.platform, conversation_key)
        except StoreError:
            log.warning("could not tell whether replies wait; sending at once")
            return False

    async def _keep(
        self, key: str, target: Target, messages: Sequence[SlackMessage], *, first: bool
    ) -> bool:
        kept = list(messages)
        if first:
            kept[:0] = render_replies([Text(self._words.text("reply_late"))], self._words)
        payloads = [
            {"channel": target.channel, "thread_ts": target.thread_ts, "message": m.payload()}
            for m in kept
        ]
        try:
            await self._store.jobs.enqueue_replies(self.platform, key, payloads)
        except StoreError:
            self._metrics.errors.labels(Platform.SLACK, "send").inc()
            log.error("reply not sent, and the outbox could not keep it")
            return False
        self._wake()
        return True


__all__ = ["TEXTS", "SlackLateReplies"]
