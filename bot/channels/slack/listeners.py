"""Bolt's listeners, declared in one place: what Slack sends, acknowledged, and the work it
starts on the app's background tasks.

Every listener acknowledges first and does the work afterwards, so Slack hears back within its
3 seconds whatever a turn costs; the one answer given in the acknowledgement itself is a blank
field of a ticket modal. ``Listeners.table`` says which listener hears what (kind, matcher,
listener); ``listen`` registers them on the bolt app, and acknowledges and ignores anything
else. Its own room so that what the bot hears can be read at a glance.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.background import BackgroundTasks
from bot.channels.slack.blocks import ANSWER_ACTION, escape
from bot.channels.slack.connection import Connection
from bot.channels.slack.conversations import SlackConversations
from bot.channels.slack.events import (
    SHORTCUT_CALLBACK_ID,
    SLASH_COMMAND,
    Target,
    direct_message,
    home_opened_by,
    interaction_channel,
    mention,
    team_of,
)
from bot.channels.slack.ticket_actions import TicketActions
from bot.channels.slack.ticket_blocks import (
    TICKET_ACTION,
    TICKET_INPUT_BLOCK,
    TICKET_MODAL,
    ticket_modal_input,
)
from bot.channels.slack.web_api import WebAPI
from bot.tenants import Tenants
from dialogs.intent import is_register_admins, register_admins_code
from dialogs.messages import Platform
from dialogs.replies import Text
from knowledge.kb import ConversationText

#: The texts of conversation.yaml this module looks up; checked when the bot starts.
TEXTS: Final = frozenset({"slack_modal_required", "tenant_refused"})

log = logging.getLogger("bot.channels.slack")

Listener = Callable[..., Awaitable[None]]
"""A bolt listener: bolt passes its arguments by parameter name (``ack``, ``body``, ...)."""
_ANYTHING: Final = re.compile(".*")

KINDS: Final = ("event", "command", "shortcut", "action", "view")
"""What bolt tells listeners apart by: its ``AsyncApp`` method of each name registers one."""


class Listeners:
    """One method per kind of payload: acknowledge, then hand the work on."""

    def __init__(
        self,
        *,
        conversations: SlackConversations,
        ticket_actions: TicketActions | None,
        connection: Connection,
        web: WebAPI,
        words: ConversationText,
        background: BackgroundTasks,
        tenants: Tenants,
    ) -> None:
        """The work goes to ``conversations`` (and ``ticket_actions``, when the tickets service
        is there) on ``background``; a payload from a team ``tenants`` does not allow gets a
        short refusal instead, and nothing else is done with it."""
        self._tenants = tenants
        self._conversations = conversations
        self._tickets = ticket_actions
        self._connection = connection
        self._web = web
        self._words = words
        self._background = background

    def table(self) -> list[tuple[str, str | re.Pattern[str], Listener]]:
        """Which listener hears what: (kind, matcher, listener), in the order bolt tries them."""
        return [
            ("event", "message", self.on_message),
            ("event", "app_mention", self.on_mention),
            ("event", "app_home_opened", self.on_home_opened),
            ("command", SLASH_COMMAND, self.on_command),
            ("shortcut", SHORTCUT_CALLBACK_ID, self.on_shortcut),
            ("action", re.compile(f"^{re.escape(ANSWER_ACTION)}(?::|$)"), self.on_answer),
            ("action", re.compile(f"^{re.escape(TICKET_ACTION)}:"), self.on_ticket_action),
            ("view", TICKET_MODAL, self.on_ticket_modal),
            # Anything else Slack sends is acknowledged and ignored (an unhandled one gets 404,
            # which Slack would retry, and bolt would log the payload).
            *((kind, _ANYTHING, self.ignore) for kind in KINDS),
        ]

    async def on_message(self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any]) -> None:
        """A message event: a person's DM is a turn; anything else is not for the bot."""
        await ack()
        found = direct_message(event, self._connection.bot_user_id)
        if found is not None:
            text, target = found
            if self._foreign(body, event):
                self._spawn(self._refuse(target), "refused")
                return
            self._spawn(
                self._conversations.event_turn(body, event, text, target, target.channel), "dm"
            )

    async def on_mention(self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any]) -> None:
        """An @mention: a turn in its thread, or ``register admins`` for the tickets."""
        await ack()
        found = mention(event, self._connection.bot_user_id)
        if found is None:
            return
        if self._foreign(body, event):
            self._spawn(self._refuse(found.target), "refused")
            return
        if self._tickets is not None and is_register_admins(found.text):
            # A platform command, not a conversation: the dialogs never see it.
            code = register_admins_code(found.text)
            work = self._tickets.register_admins(body, event, found.target, code)
            self._spawn(work, "register")
            return
        turn = self._conversations.event_turn(
            body, event, found.text, found.target, found.conversation_id
        )
        self._spawn(turn, "mention")

    async def on_home_opened(
        self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any]
    ) -> None:
        """The App Home's Home tab opened: published afresh (not for another team's user)."""
        await ack()
        user = home_opened_by(event)
        if user is not None and not self._foreign(body, event):
            self._spawn(self._conversations.publish_home(user), "home")

    async def on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """``/ndr``: answered in the user's DM (said so when typed anywhere else)."""
        user, channel = str(body.get("user_id", "")), str(body.get("channel_id", ""))
        if self._foreign(body):
            await ack(text=self._words.text("tenant_refused"), response_type="ephemeral")
            return
        if self._web.known_dm(user) == channel:
            await ack()
        else:
            await ack(text=self._words.text("answer_in_dm"), response_type="ephemeral")
        self._spawn(self._conversations.command_turn(body), "command")

    async def on_shortcut(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """The message shortcut: a turn with the message it was used on."""
        await ack()
        if self._foreign(body):
            self._spawn(self._refuse_in_dm(body), "refused")
            return
        self._spawn(self._conversations.shortcut_turn(body), "shortcut")

    async def on_answer(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """An answer button: a turn with the choice."""
        await ack()
        if self._foreign(body):
            self._spawn(self._refuse_in_dm(body), "refused")
            return
        self._spawn(self._conversations.answer_turn(body), "answer")

    async def on_ticket_action(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """A ticket card's button."""
        await ack()
        if self._foreign(body):
            self._spawn(self._refuse_in_dm(body), "refused")
            return
        if self._tickets is not None:
            self._spawn(self._tickets.button(body), "ticket-action")

    async def on_ticket_modal(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        """A ticket modal submitted: refuse a blank field in the modal itself, else close it
        and act in the background. A submission whose ``private_metadata`` is not ours (not
        JSON, not an object, no ticket) gets the empty 200 all the same, and nothing is done:
        for a view_submission Slack's contract makes the acknowledgement the answer (it closes
        the modal), and any other status only shows the person a connection error in a modal
        they cannot mend. Fields of the wrong type never get here: the endpoint answers 400."""
        submitted = ticket_modal_input(view)
        if submitted is None:
            await ack()
            return
        if self._foreign(body):
            errors = {TICKET_INPUT_BLOCK: self._words.text("tenant_refused")}
            await ack(response_action="errors", errors=errors)
            return
        if not submitted.value:
            errors = {TICKET_INPUT_BLOCK: self._words.text("slack_modal_required")}
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        if self._tickets is not None:
            self._spawn(self._tickets.submission(body, view), "ticket-modal")

    async def ignore(self, ack: AsyncAck) -> None:
        """Anything else: acknowledged, nothing done."""
        await ack()

    def _foreign(self, body: dict[str, Any], event: dict[str, Any] | None = None) -> bool:
        """Whether the person behind the payload is of a team the bot does not serve."""
        if self._tenants.allows(Platform.SLACK, team_of(body, event)):
            return False
        log.info("payload refused: foreign team", extra={"channel": Platform.SLACK})
        return True

    async def _refuse(self, target: Target) -> None:
        """The refusal, where the answer would have gone."""
        await self._web.post(target, [Text(self._words.text("tenant_refused"))])

    async def _refuse_in_dm(self, body: dict[str, Any]) -> None:
        """The refusal for a click or a shortcut: ephemeral where it was clicked, else in a DM."""
        user = str((body.get("user") or {}).get("id") or "")
        channel = interaction_channel(body)
        text = self._words.text("tenant_refused")
        if channel and await self._web.call(
            "chat.postEphemeral",
            self._web.client.chat_postEphemeral(channel=channel, user=user, text=escape(text)),
        ):
            return
        dm = await self._web.dm(user) if user else None
        if dm is not None:
            await self._refuse(Target(dm))

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._background.spawn(work, name=f"slack-{name}")


def listen(bolt: AsyncApp, listeners: Listeners) -> None:
    """Register every listener of the table on the bolt app."""
    register = {kind: getattr(bolt, kind) for kind in KINDS}  # bolt.event, bolt.command...
    for kind, matcher, listener in listeners.table():
        register[kind](matcher)(listener)
