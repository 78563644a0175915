"""The requesters' news: what a requester is told when an admin acts on their ticket, and the
"did that fix it?" a resolution puts into their conversation (so that their answer reopens it).

Its own room because two sides tell it: the job worker, to a requester in a chat (through
their platform's notifier), and the service, to a requester in the terminal, whose news waits
in their conversation's inbox until they next talk to the bot.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.store import Requester, StaleState, Store, TicketRecord
from bot.tickets.protocol import RetryLater
from bot.tickets.rules import NEWS_TEXTS, Plan, has_chat
from dialogs.escalation import ask_if_fixed
from dialogs.replies import Reply, Text
from knowledge.kb import KnowledgeBase

log = logging.getLogger(__name__)

_SAVE_ATTEMPTS = 5


class RequesterNews:
    """Words the news, and keeps what must stay in a requester's conversation."""

    def __init__(self, store: Store, knowledge: KnowledgeBase) -> None:
        self._store = store
        self.knowledge = knowledge

    async def replies(
        self, requester: Requester, news: str, ticket: str, admin: str, text: str
    ) -> Sequence[Reply]:
        """The replies that tell ``requester`` the ``news`` (``Plan.news``) of ``ticket``."""
        if news == "resolved":
            return await self._ask_if_fixed(requester, ticket, admin, text)
        words = self.knowledge.conversation
        return (Text(words.text(NEWS_TEXTS[news], ticket=ticket, admin=admin, text=text)),)

    async def tell_terminal_requesters(self, ticket: TicketRecord, plan: Plan) -> None:
        """A requester in the terminal has no chat to be told in: their news waits in their
        conversation, shown the next time they talk to the bot."""
        if plan.news is None:
            return
        for requester in await self._store.tickets.ticket_requesters(ticket.id):
            if has_chat(requester) or requester.key == plan.skip_requester:
                continue
            replies = await self.replies(
                requester, plan.news, ticket.id, plan.news_admin, plan.news_text
            )
            await self.keep(requester, replies)

    async def keep(self, requester: Requester, replies: Sequence[Reply]) -> None:
        """Keep the replies' texts in the requester's conversation (a terminal requester's
        inbox, shown the next time they talk to the bot)."""
        texts = [reply.text for reply in replies if isinstance(reply, Text)]
        key = requester.conversation_key
        for _ in range(_SAVE_ATTEMPTS):
            saved = await self._store.conversations.load_state(key)
            state = dict(saved.state or {})
            state["inbox"] = [*(state.get("inbox") or []), *texts]
            try:
                await self._store.conversations.save_state(key, state, saved.version)
            except StaleState:
                continue
            return
        log.warning("news for a terminal requester could not be kept", extra={"key": key})

    async def _ask_if_fixed(
        self, requester: Requester, ticket: str, admin: str, note: str
    ) -> Sequence[Reply]:
        """Put "did that fix it?" into the requester's conversation, so their answer reopens."""
        key = requester.conversation_key
        for _ in range(_SAVE_ATTEMPTS):
            saved = await self._store.conversations.load_state(key)
            state, replies = ask_if_fixed(saved.state or None, ticket, admin, note, self.knowledge)
            try:
                await self._store.conversations.save_state(key, state, saved.version)
            except StaleState:
                continue  # the requester was talking meanwhile: ask on top of that turn
            return replies
        raise RetryLater(f"conversation {key} kept changing")


__all__ = ["RequesterNews"]
