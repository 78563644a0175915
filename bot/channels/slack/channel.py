"""``SlackChannel``: Slack for the bot, put together from the package's rooms.

It holds what one running Slack app needs (the settings, the shared HTTP session, the turns, the
store, the knowledge base, the metrics, the background tasks, the tickets service) and composes
the parts that use them: the Web API (``web_api.py``), the file downloads (``files.py``), the
connection and bolt app (``connection.py``), the people's turns (``conversations.py``), the
admins' ticket actions (``ticket_actions.py``), the listeners that start them all
(``listeners.py``) and the deliveries kept until their work is done (``inbox.py``). Its own room
because it is the one object the server keeps (``endpoint.py`` mounts it) and the ticket
notifier delivers through.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.background import BackgroundTasks
from bot.channels.slack.connection import Connection, secret
from bot.channels.slack.conversations import SlackConversations
from bot.channels.slack.files import SlackFiles
from bot.channels.slack.inbox import SlackInbox
from bot.channels.slack.late import SlackLateReplies
from bot.channels.slack.listeners import Listeners, listen
from bot.channels.slack.ticket_actions import TicketActions
from bot.channels.slack.web_api import WebAPI, web_client
from bot.config import Settings
from bot.metrics import Metrics
from bot.store import Store
from bot.tenants import Tenants
from bot.tickets import Tickets
from bot.turns import Turns
from dialogs.messages import Platform
from dialogs.replies import Reply
from knowledge.kb import KnowledgeBase


class SlackChannel:
    """The bolt app, the Web API client, and the translation of Slack payloads into turns."""

    def __init__(
        self,
        settings: Settings,
        *,
        session: aiohttp.ClientSession,
        turns: Turns,
        store: Store,
        knowledge: KnowledgeBase,
        metrics: Metrics,
        background: BackgroundTasks,
        tickets: Tickets | None = None,
        tenants: Tenants | None = None,
    ) -> None:
        """Build the Web API client on the shared session, and the bolt app with its listeners.
        With ``tickets``, admins work tickets from their cards and ``register admins``.
        ``tenants`` says which Slack teams may use the bot (default: the settings', with the
        bot's own team learnt from auth.test)."""
        self.settings = settings
        self.session = session
        self.turns = turns
        self.store = store
        self.knowledge = knowledge
        self.metrics = metrics
        self.background = background
        self.tickets = tickets
        self.tenants = tenants or (tickets.tenants if tickets is not None else Tenants(settings))
        words = knowledge.conversation
        token = secret(settings.slack_bot_token) or ""
        self.web = WebAPI(settings, session=session, metrics=metrics, words=words, token=token)
        self.connection = Connection(
            client=self.web.client,
            bolt_client=web_client(settings, session, metrics, None),
            token=token,
            signing_secret=secret(settings.slack_signing_secret) or "",
            app_token=secret(settings.slack_app_token),
            on_identity=lambda identity: self.tenants.learn_own(Platform.SLACK, identity.team_id),
        )
        files = SlackFiles(
            settings,
            session=session,
            client=self.web.client,
            token=token,
            metrics=metrics,
            words=words,
        )
        self.late = SlackLateReplies(
            self.web,
            store=store,
            words=words,
            metrics=metrics,
            wake=tickets.wake_worker if tickets is not None else _nothing,
        )
        self.conversations = SlackConversations(
            turns=turns,
            store=store,
            knowledge=knowledge,
            metrics=metrics,
            web=self.web,
            files=files,
            late=self.late,
        )
        self.ticket_actions = (
            TicketActions(tickets, store=store, web=self.web, words=words)
            if tickets is not None
            else None
        )
        self.inbox = SlackInbox(
            store=store,
            background=background,
            lease_seconds=settings.kept_event_lease_seconds,
            max_in_flight=settings.slack_max_work_in_flight,
            ready=lambda: self.connection.bot_user_id is not None,
        )
        listeners = Listeners(
            conversations=self.conversations,
            ticket_actions=self.ticket_actions,
            connection=self.connection,
            web=self.web,
            words=words,
            background=background,
            tenants=self.tenants,
            inbox=self.inbox,
        )
        self.inbox.handle(listeners.works())
        listen(self.connection.bolt, listeners)

    @property
    def client(self) -> AsyncWebClient:
        """The Web API client, with the bot token, on the shared session."""
        return self.web.client

    async def start(self) -> None:
        """Learn who the bot is and say that Slack is on (``Connection.start``); then finish
        what a process that died kept and left (``SlackInbox``), now and every few seconds."""
        await self.connection.start()
        await self.inbox.start()

    async def close(self) -> None:
        """Stop the recovery, Socket Mode and the background identity look-up."""
        await self.inbox.close()
        await self.connection.close()

    async def send(self, conversation_id: str, replies: Sequence[Reply]) -> bool:
        """Post replies into a conversation the bot had ("D123", or "C123:<thread ts>"), e.g. a
        ticket's news for its requester. False if Slack refused."""
        return await self.web.send(conversation_id, replies)

    async def deliver(self, conversation_id: str, replies: Sequence[Reply]) -> None:
        """As ``send``, but Slack's refusal is raised, for a caller that retries: the ticket
        notifier."""
        await self.web.deliver(conversation_id, replies)


def _nothing() -> None:
    """No worker to wake (a channel built without the tickets service)."""
