"""The people's side of Slack: a DM, a mention, ``/ndr``, the shortcut or an answer button
becomes one turn of the conversation, its replies posted where it was asked; and the App Home.

The listeners (``listeners.py``) have kept the delivery and acknowledged it already (a repeat
was dropped then): this is the work done afterwards on the app's background tasks
(``inbox.py``), or by another process when this one died. Each turn downloads the files it
shares first (``files.py``), and runs one at a time per conversation in this process, so that
replies come out in order; replies Slack does not take are kept in the outbox and posted later,
in order (``late.py``). A turn that meets a stalled or missing database is answered with a
request to try again in a moment, counted as an error. Its own room because it is where Slack
meets the dialogs (``bot.turns.Turns``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from bot.channels.slack.blocks import answered_blocks, home_view
from bot.channels.slack.events import (
    Target,
    answer_click,
    command_message,
    event_message,
    shared_files,
    shortcut_message,
)
from bot.channels.slack.files import FileRefused, SlackFiles
from bot.channels.slack.inbox import WORKING_ON
from bot.channels.slack.late import SlackLateReplies
from bot.channels.slack.web_api import WebAPI
from bot.metrics import Metrics
from bot.store import Store, unavailable
from bot.tickets import TicketCard
from bot.turns import Turns, conversation_key, log_unavailable
from dialogs.messages import Message, Platform
from dialogs.replies import Reply
from knowledge.kb import KnowledgeBase

log = logging.getLogger("bot.channels.slack")


class SlackConversations:
    """Slack's payloads into turns, and the turns' replies back into Slack."""

    def __init__(
        self,
        *,
        turns: Turns,
        store: Store,
        knowledge: KnowledgeBase,
        metrics: Metrics,
        web: WebAPI,
        files: SlackFiles,
        late: SlackLateReplies,
    ) -> None:
        """Run turns with ``turns``; reply through ``late`` (at once, or kept for later), other
        calls through ``web``; fetch shared files with ``files``."""
        self._turns = turns
        self._store = store
        self._knowledge = knowledge
        self._words = knowledge.conversation
        self._metrics = metrics
        self._web = web
        self._files = files
        self._late = late
        self._conversations_busy: dict[str, tuple[asyncio.Lock, int]] = {}

    async def event_turn(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        text: str,
        target: Target,
        conversation_id: str,
    ) -> None:
        """A DM or a mention (``text`` already read), with the files it shares."""
        async with self._unless_unavailable(target):
            try:
                files = await self._files.download(event.get("files"))
            except FileRefused as refused:
                await self._reply(conversation_id, target, [refused.reply()])
                return
            await self._turn(event_message(body, event, text, conversation_id, files), target)

    async def command_turn(self, body: dict[str, Any]) -> None:
        """``/ndr``, answered in the user's DM."""
        async with self._unless_unavailable(user=str(body["user_id"])):
            dm = await self._web.dm(str(body["user_id"]))
            if dm is None:
                return
            await self._turn(command_message(body, dm), Target(dm))

    async def shortcut_turn(self, body: dict[str, Any]) -> None:
        """The message shortcut on someone's message, answered in the user's DM."""
        async with self._unless_unavailable(user=str(body["user"]["id"])):
            dm = await self._web.dm(str(body["user"]["id"]))
            if dm is None:
                return
            target = Target(dm)
            try:
                files = await self._files.download(shared_files(body))
            except FileRefused as refused:
                await self._reply(dm, target, [refused.reply()])
                return
            await self._turn(shortcut_message(body, dm, files), target)

    async def answer_turn(self, body: dict[str, Any]) -> None:
        """An answer button: the buttons give way to the choice, then the turn with it."""
        click = answer_click(body)
        if click is None:
            log.warning("ignored a button click without an answer")
            return
        async with self._unless_unavailable(click.target):
            user = click.message.user_id
            await self._show_choice(click.channel, click.clicked, click.block_id, click.label, user)
            await self._turn(click.message, click.target)

    @asynccontextmanager
    async def _unless_unavailable(
        self, target: Target | None = None, *, user: str | None = None
    ) -> AsyncIterator[None]:
        """Ask the user (at ``target``, or in a DM with ``user``) to try again in a moment when
        the work inside fails on a stalled or missing database; count and log it once."""
        try:
            yield
        except Exception as error:
            if not unavailable(error):
                raise
            log_unavailable(error)
            self._metrics.unavailable(Platform.SLACK)
            if target is None and user is not None:
                dm = await self._web.dm(user)
                target = Target(dm) if dm is not None else None
            if target is not None:
                await self._web.post(target, [self._turns.unavailable_reply()])

    async def not_kept(self, error: BaseException, target: Target | None) -> None:
        """A delivery the store could not keep (it was answered 503, so Slack sends it again):
        logged and counted once; the person, where the bot knows where to answer (a DM, a
        mention), is asked to try again in a moment, since Slack's own retries may not outlast
        the outage. Slack itself shows an error for a refused command or click."""
        log_unavailable(error)
        self._metrics.unavailable(Platform.SLACK)
        if target is not None:
            await self._web.post(target, [self._turns.unavailable_reply()])

    async def publish_home(self, user: str) -> None:
        """The App Home tab: how to use the bot, and the user's tickets still open."""
        tickets = await self._store.tickets.list_tickets(requester_key=f"{Platform.SLACK}:{user}")
        still_open = [ticket for ticket in tickets if ticket.status != "resolved"]
        cards = [TicketCard.of(ticket, (), self._knowledge) for ticket in still_open]
        view = home_view(self._knowledge.help_text.help, cards, self._words)
        client = self._web.client
        await self._web.call("views.publish", client.views_publish(user_id=user, view=view))

    async def _turn(self, message: Message, target: Target) -> None:
        # One turn at a time per conversation in this process, so replies come out in order
        # (across processes the store's versioned state keeps the conversation right). The
        # kept delivery it is the work of goes with it: worked on again after a crash, a turn
        # already saved is answered with its replies, not run again (bot.turns).
        message = replace(message, delivery=WORKING_ON.get())
        key = message.conversation_id
        lock, waiting = self._conversations_busy.get(key, (asyncio.Lock(), 0))
        self._conversations_busy[key] = (lock, waiting + 1)
        try:
            async with lock:
                outcome = await self._turns.handle(message)
                self._metrics.observe_turn(Platform.SLACK, outcome)
                await self._late.post(conversation_key(message), target, outcome.replies)
        finally:
            lock, waiting = self._conversations_busy[key]
            if waiting == 1:
                del self._conversations_busy[key]
            else:
                self._conversations_busy[key] = (lock, waiting - 1)

    async def _reply(self, conversation_id: str, target: Target, replies: list[Reply]) -> None:
        key = conversation_key(Message(platform=Platform.SLACK, conversation_id=conversation_id))
        await self._late.post(key, target, replies)

    async def _show_choice(
        self, channel: str, clicked: dict[str, Any], block_id: str, label: str, user: str
    ) -> None:
        """Replace the clicked buttons by the choice, so an old question is not answered twice."""
        blocks = clicked.get("blocks")
        ts = clicked.get("ts")
        if not isinstance(blocks, list) or not ts or not channel:
            return
        updated = answered_blocks(blocks, block_id, label, user, self._words)
        if updated is not None:
            text = str(clicked.get("text") or label)
            update = self._web.client.chat_update
            await self._web.call(
                "chat.update", update(channel=channel, ts=str(ts), text=text, blocks=updated)
            )
