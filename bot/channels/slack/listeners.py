"""Bolt's listeners, declared in one place: what Slack sends, kept, acknowledged, and the work it
starts on the app's background tasks.

Every listener that has work for a delivery keeps it in the store first (``inbox.py``), then
acknowledges, and does the work afterwards, so Slack hears back within its 3 seconds whatever a
turn costs, and a process killed after the acknowledgement loses nothing: another finishes the
work. When the store cannot keep it, the answer is a 503 and Slack sends it again. The one answer
given in the acknowledgement itself is a blank field of a ticket modal. ``Listeners.table`` says
which listener hears what (kind, matcher, listener), ``Listeners.works`` what each kept kind of
delivery does; ``listen`` registers them on the bolt app, and acknowledges and ignores anything
else. A payload from a team the bot does not serve (``ALLOWED_TENANTS``) is acknowledged
with, or followed by, a short refusal, and nothing else is done with it: it is not kept.
Its own room so that what the bot hears can be read at a glance.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.background import BackgroundTasks
from bot.channels.slack.blocks import ANSWER_ACTION, escape
from bot.channels.slack.connection import Connection
from bot.channels.slack.conversations import SlackConversations
from bot.channels.slack.events import (
    SHORTCUT_CALLBACK_ID,
    SLASH_COMMAND,
    Target,
    answer_click,
    clicked_button,
    direct_message,
    home_opened_by,
    interaction_channel,
    mention,
    team_of,
)
from bot.channels.slack.inbox import SlackInbox, Work
from bot.channels.slack.repeats import delivery_key
from bot.channels.slack.ticket_actions import TicketActions
from bot.channels.slack.ticket_blocks import (
    TICKET_ACTION,
    TICKET_INPUT_BLOCK,
    TICKET_MODAL,
    ticket_modal_input,
)
from bot.channels.slack.web_api import WebAPI
from bot.store import StoreError, failure_reason, unavailable
from bot.tenants import Tenants
from dialogs.intent import is_register_admins, register_admins_code
from dialogs.messages import Platform
from dialogs.replies import Text
from knowledge.kb import ConversationText

log = logging.getLogger("bot.channels.slack")

#: The texts of conversation.yaml this module looks up; checked when the bot starts.
TEXTS: Final = frozenset({"slack_modal_required", "tenant_refused"})

Listener = Callable[..., Awaitable[BoltResponse | None]]
"""A bolt listener: bolt passes its arguments by parameter name (``ack``, ``body``, ...); a
BoltResponse it returns is the answer instead of the acknowledgement's."""
_ANYTHING: Final = re.compile(".*")
_NOT_KEPT: Final = "the bot could not keep this delivery; send it again"

KINDS: Final = ("event", "command", "shortcut", "action", "view")
"""What bolt tells listeners apart by: its ``AsyncApp`` method of each name registers one."""


class Listeners:
    """One method per kind of payload: keep, acknowledge, then hand the work on."""

    def __init__(
        self,
        *,
        conversations: SlackConversations,
        ticket_actions: TicketActions | None,
        connection: Connection,
        web: WebAPI,
        words: ConversationText,
        inbox: SlackInbox,
        background: BackgroundTasks,
        tenants: Tenants,
    ) -> None:
        """The work goes to ``conversations`` (and ``ticket_actions``, when the tickets service
        is there), kept and run by ``inbox``; a payload from a team ``tenants`` does not allow
        gets a short refusal instead (sent on ``background``), and nothing else is done."""
        self._tenants = tenants
        self._background = background
        self._conversations = conversations
        self._tickets = ticket_actions
        self._connection = connection
        self._web = web
        self._words = words
        self._inbox = inbox

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

    def works(self) -> dict[str, Work]:
        """What each kind of kept delivery does, from the body Slack sent: here, after the
        acknowledgement, or in another process after this one died."""
        works: dict[str, Work] = {
            "dm": self._dm,
            "mention": self._mention,
            "home": self._home,
            "command": self._conversations.command_turn,
            "shortcut": self._conversations.shortcut_turn,
            "answer": self._conversations.answer_turn,
        }
        if self._tickets is not None:
            works["register"] = self._register
            works["ticket-action"] = self._tickets.button
            works["ticket-modal"] = self._ticket_modal
        return works

    # ---- the listeners: what needs work is kept, then acknowledged -----------------------------

    async def on_message(
        self, ack: AsyncAck, request: AsyncBoltRequest, body: dict[str, Any], event: dict[str, Any]
    ) -> BoltResponse | None:
        """A message event: a person's DM is a turn; anything else is not for the bot."""
        found = direct_message(event, self._connection.bot_user_id)
        if found is None:
            await ack()
            return None
        if self._foreign(body, event):
            await ack()
            self._spawn(self._refuse(found[1]), "refused")
            return None
        key = delivery_key("event", body.get("event_id"))
        return await self._keep(ack, "dm", body, key, tell=_unless_retried(request, found[1]))

    async def on_mention(
        self, ack: AsyncAck, request: AsyncBoltRequest, body: dict[str, Any], event: dict[str, Any]
    ) -> BoltResponse | None:
        """An @mention: a turn in its thread, or ``register admins`` for the tickets."""
        found = mention(event, self._connection.bot_user_id)
        if found is None:
            await ack()
            return None
        if self._foreign(body, event):
            await ack()
            self._spawn(self._refuse(found.target), "refused")
            return None
        # ``register admins`` is a platform command, not a conversation: the dialogs never see it.
        register = self._tickets is not None and is_register_admins(found.text)
        key = delivery_key("event", body.get("event_id"))
        tell = _unless_retried(request, found.target)
        return await self._keep(ack, "register" if register else "mention", body, key, tell=tell)

    async def on_home_opened(
        self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any]
    ) -> BoltResponse | None:
        """The App Home's Home tab opened: published afresh (not for another team's user)."""
        if home_opened_by(event) is None or self._foreign(body, event):
            await ack()
            return None
        return await self._keep(ack, "home", body, delivery_key("event", body.get("event_id")))

    async def on_command(self, ack: AsyncAck, body: dict[str, Any]) -> BoltResponse | None:
        """``/ndr``: answered in the user's DM (said so when typed anywhere else)."""
        user, channel = str(body.get("user_id", "")), str(body.get("channel_id", ""))
        if self._foreign(body):
            await ack(text=self._words.text("tenant_refused"), response_type="ephemeral")
            return None
        answer: dict[str, Any] = {}
        if self._web.known_dm(user) != channel:
            answer = {"text": self._words.text("answer_in_dm"), "response_type": "ephemeral"}
        key = delivery_key("trigger", body.get("trigger_id"))
        return await self._keep(ack, "command", body, key, **answer)

    async def on_shortcut(self, ack: AsyncAck, body: dict[str, Any]) -> BoltResponse | None:
        """The message shortcut: a turn with the message it was used on."""
        if self._foreign(body):
            await self._refuse_after(ack, body)
            return None
        key = delivery_key("trigger", body.get("trigger_id"))
        return await self._keep(ack, "shortcut", body, key)

    async def on_answer(self, ack: AsyncAck, body: dict[str, Any]) -> BoltResponse | None:
        """An answer button: a turn with the choice."""
        click = answer_click(body)
        if click is None:
            log.warning("ignored a button click without an answer")
            await ack()
            return None
        if self._foreign(body):
            await self._refuse_after(ack, body)
            return None
        return await self._keep(ack, "answer", body, delivery_key("action", click.delivery_id))

    async def on_ticket_action(self, ack: AsyncAck, body: dict[str, Any]) -> BoltResponse | None:
        """A ticket card's button."""
        button = clicked_button(body)
        if self._tickets is None or not isinstance(button, dict):
            await ack()
            return None
        if self._foreign(body):
            await self._refuse_after(ack, body)
            return None
        key = delivery_key("action", body.get("trigger_id") or button.get("action_ts"))
        return await self._keep(ack, "ticket-action", body, key)

    async def on_ticket_modal(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> BoltResponse | None:
        """A ticket modal submitted: refuse a blank field in the modal itself, else close it
        and act in the background. A submission whose ``private_metadata`` is not ours (not
        JSON, not an object, no ticket) gets the empty 200 all the same, and nothing is done:
        for a view_submission Slack's contract makes the acknowledgement the answer (it closes
        the modal), and any other status only shows the person a connection error in a modal
        they cannot mend. Fields of the wrong type never get here: the endpoint answers 400."""
        submitted = ticket_modal_input(view)
        if submitted is None or self._tickets is None:
            await ack()
            return None
        if self._foreign(body):
            errors = {TICKET_INPUT_BLOCK: self._words.text("tenant_refused")}
            await ack(response_action="errors", errors=errors)
            return None
        if not submitted.value:
            errors = {TICKET_INPUT_BLOCK: self._words.text("slack_modal_required")}
            await ack(response_action="errors", errors=errors)
            return None
        return await self._keep(ack, "ticket-modal", body, delivery_key("view", view.get("id")))

    async def ignore(self, ack: AsyncAck) -> None:
        """Anything else: acknowledged, nothing done."""
        await ack()

    # ---- another team's payloads: refused, not kept -----------------------------------------

    def _foreign(self, body: dict[str, Any], event: dict[str, Any] | None = None) -> bool:
        """Whether the person behind the payload is of a team the bot does not serve."""
        if self._tenants.allows(Platform.SLACK, team_of(body, event)):
            return False
        log.info("payload refused: foreign team", extra={"channel": Platform.SLACK})
        return True

    async def _refuse_after(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        self._spawn(self._refuse_in_dm(body), "refused")

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

    # ---- keep, then acknowledge ------------------------------------------------------------

    async def _keep(
        self,
        ack: AsyncAck,
        kind: str,
        body: dict[str, Any],
        key: str | None,
        *,
        tell: Target | None = None,
        **answer: Any,
    ) -> BoltResponse | None:
        """Keep the delivery, then acknowledge it (with ``answer``) and start its work, once the
        inbox has a slot for it or it waits in the store (``SlackInbox.admitted``); a repeat is
        acknowledged and dropped. Not kept (the store is down): a 503, so Slack sends it
        again, rather than an acknowledgement of work that would be lost; the person at
        ``tell`` is asked to try again in a moment."""
        async with self._inbox.admitted() as run:
            try:
                kept = await self._inbox.keep(kind, body, key)
            except StoreError as error:
                if not unavailable(error):
                    log.error(
                        "could not keep a Slack delivery: answered 503 so that Slack sends it "
                        "again",
                        extra={"kind": kind, "reason": failure_reason(error)},
                    )
                self._spawn(self._conversations.not_kept(error, tell), "not-kept")
                return BoltResponse(status=503, body={"error": _NOT_KEPT})
            await ack(**answer)
            if kept is not None:
                run(kept)
        return None

    # ---- the work of the deliveries whose listener needs more than the body ----------------

    async def _dm(self, body: dict[str, Any]) -> None:
        event = body["event"]
        found = direct_message(event, self._connection.bot_user_id)
        if found is not None:
            text, target = found
            await self._conversations.event_turn(body, event, text, target, target.channel)

    async def _mention(self, body: dict[str, Any]) -> None:
        event = body["event"]
        found = mention(event, self._connection.bot_user_id)
        if found is not None:
            await self._conversations.event_turn(
                body, event, found.text, found.target, found.conversation_id
            )

    async def _register(self, body: dict[str, Any]) -> None:
        event = body["event"]
        found = mention(event, self._connection.bot_user_id)
        if found is not None and self._tickets is not None:
            code = register_admins_code(found.text)
            await self._tickets.register_admins(body, event, found.target, code)

    async def _home(self, body: dict[str, Any]) -> None:
        user = home_opened_by(body["event"])
        if user is not None:
            await self._conversations.publish_home(user)

    async def _ticket_modal(self, body: dict[str, Any]) -> None:
        if self._tickets is not None:
            await self._tickets.submission(body, body["view"])


def _unless_retried(request: AsyncBoltRequest, target: Target) -> Target | None:
    """Where to ask the person to try again when their message cannot be kept: on Slack's
    first delivery only, not on each of its retries of the same event."""
    return None if request.headers.get("x-slack-retry-num") else target


def listen(bolt: AsyncApp, listeners: Listeners) -> None:
    """Register every listener of the table on the bolt app."""
    register = {kind: getattr(bolt, kind) for kind in KINDS}  # bolt.event, bolt.command...
    for kind, matcher, listener in listeners.table():
        register[kind](matcher)(listener)
