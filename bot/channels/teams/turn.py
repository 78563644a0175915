"""One Teams turn (:class:`Turn`): the handler botbuilder's adapter runs for one activity.

The activity is dispatched by a route table (:data:`ROUTES`) keyed by its type and, for an
invoke, its name, in the shape of the Microsoft 365 Agents SDK's ``AgentApplication``: a message,
a card's Universal Action (``invoke`` + ``adaptiveCard/action``), the bot added to a
conversation, the app installed. A message is read into a neutral
:class:`~dialogs.messages.Message`, the turn runs, and the rendered replies go out as the
TurnContext would send them (the same JSON, to the same URL), posted as JSON by the connector
factory's poster rather than as msrest models, or, for ``expectReplies``, are left in the
TurnContext for the adapter to return in the response; a reply the Bot Connector does not take
within the turn's budget is kept in the outbox and sent later (``late.py``). "Typing..." shows
when the turn takes more than a moment.

A turn that meets a stalled or missing database (the store gives up within its timeout) tells
the user, in their chat, to try again in a moment, and marks itself :attr:`Turn.unavailable`:
the endpoint then answers 503, since the activity was not handled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.schema import Activity, ActivityTypes, DeliveryModes

from bot.channels.teams.activities import (
    adds_bot,
    channel_of,
    has_files,
    in_group,
    mentions_bot,
    message_of,
    tenant_of,
)
from bot.channels.teams.cards import (
    render_replies,
    text_activity,
    typing_activity,
    welcome_activity,
)
from bot.channels.teams.channel import TeamsChannel
from bot.channels.teams.failures import SendFailed
from bot.channels.teams.sending import outgoing_json, reply_address, to_activity
from bot.channels.teams.tickets import TICKET_VERBS, invoke_message
from bot.store import unavailable
from bot.turns import TurnOutcome, log_unavailable
from dialogs.intent import is_register_admins
from dialogs.messages import Platform
from dialogs.replies import Reply

log = logging.getLogger("bot.channels.teams")

_SLOW_TEXT_CHARS: Final = 2000  # a pasted bounce: show "typing..." at once


class Turn:
    """The bot the adapter runs for one activity: reads the TurnContext's activity (the JSON it
    arrived as, ``body``) into a Message, runs the turn, sends the replies through the
    TurnContext."""

    def __init__(self, channel: TeamsChannel, body: dict[str, Any]) -> None:
        self.channel = channel
        self.body = body
        self.context: TurnContext | None = None
        self.audience: str | None = None
        self.turn_id = ""
        self.deadline = 0.0
        self.unavailable = False  # the database did not answer: the user was asked to retry
        self._address: dict[str, Any] | None = None  # what addresses a reply, once built

    async def run(self, context: TurnContext) -> None:
        """What the adapter calls: the route for this activity, if there is one."""
        self.context = context
        self.audience = context.turn_state.get(context.adapter.BOT_OAUTH_SCOPE_KEY)
        self.deadline = time.monotonic() + self.channel.options.retry_budget_seconds
        route = ROUTES.get(route_key(self.body))
        if route is None:
            return
        if not self.channel.runtime.tenants.allows(channel_of(self.body), tenant_of(self.body)):
            await self.refuse_foreign_tenant()
            return
        try:
            await route(self)
        except Exception as error:
            if not unavailable(error) or self.unavailable:
                raise
            log_unavailable(error)
            self.channel.metrics.unavailable(str(self.body.get("channelId") or ""))
            self.unavailable = True
            if self.body["type"] in ("message", "invoke"):  # someone asked: tell them
                await self._say_unavailable()

    async def refuse_foreign_tenant(self) -> None:
        """An activity from a Teams tenant the bot does not serve: a short refusal where someone
        spoke to the bot (a message to it, a card's button, the bot added), nothing otherwise;
        no turn, no ticket, nothing stored."""
        activity, channel = self.body, self.channel
        log.info("activity refused: foreign tenant", extra={"channel": channel_of(activity)})
        channel.metrics.errors.labels(Platform.TEAMS, "refused").inc()
        refusal = text_activity(channel.runtime.knowledge.conversation.text("tenant_refused"))
        kind, name = route_key(activity)
        if kind == "invoke" and name == "adaptiveCard/action":
            answer = invoke_message(str(refusal["text"]))
            await self._context.send_activity(
                Activity(
                    type=ActivityTypes.invoke_response,
                    value=InvokeResponse(status=200, body=answer),
                )
            )
        elif kind == "message":
            addressed = not in_group(activity) or mentions_bot(activity)
            if addressed or activity.get("value") is not None:
                await self.deliver([refusal], intent="tenant_refused")
        elif kind == "conversationUpdate" and adds_bot(activity):
            await self.deliver([refusal], intent="tenant_refused", reply=False)

    # -- the routes ---------------------------------------------------------------------------

    async def on_message(self) -> None:
        """A message: typed, pasted, a file, or an Action.Submit click (its ``value``)."""
        await self._converse(self.body.get("value"))

    async def on_card_action(self) -> None:
        """A card's Universal Action: a ticket card's goes to the tickets; any other is read as
        a click. No invoke response (the adapter answers 501) when it is not an action."""
        value = self.body.get("value")
        action = value.get("action") if isinstance(value, dict) else None
        if not isinstance(action, dict):
            return
        data, verb = action.get("data"), action.get("verb")
        answer: dict[str, Any]
        # A ticket card's payload names its ticket by "ref"; an older one (or a forged one) by
        # "ticket": both go to the tickets, which answer "not found" to anything but a ref.
        named = isinstance(data, dict) and (data.get("ref") or data.get("ticket"))
        if isinstance(data, dict) and named and verb in TICKET_VERBS:
            self.channel.admins.learn(self.body["from"])
            answer = await self.channel.tickets.answer_action(self.body, str(verb), data)
        else:
            await self._converse(data)
            answer = invoke_message("")
        await self._context.send_activity(
            Activity(
                type=ActivityTypes.invoke_response, value=InvokeResponse(status=200, body=answer)
            )
        )

    async def on_conversation_update(self) -> None:
        """The bot added to a personal chat, a group chat or a team: welcome."""
        activity, channel = self.body, self.channel
        if not adds_bot(activity):
            return
        await channel.remember(activity, force=True)
        help_text = channel.runtime.knowledge.help_text
        welcome = welcome_activity(help_text.greeting, help_text.capabilities, channel.labels)
        await self.deliver([welcome], intent="welcome", reply=False)

    async def on_installation_update(self) -> None:
        """The app installed or upgraded: keep where the conversation lives."""
        if self.body.get("action") in ("add", "add-upgrade"):
            await self.channel.remember(self.body, force=True)

    # -- a message ----------------------------------------------------------------------------

    async def _converse(self, value: Any) -> None:
        channel, activity = self.channel, self.body
        message = message_of(activity, value=value)
        clicked, text = message.value, message.text
        if in_group(activity) and clicked is None and not mentions_bot(activity):
            return  # channel chatter not meant for the bot
        if await channel.seen_before(activity):
            return
        typing = _Typing(self, enabled=not self.expects_replies)
        notices: list[Reply] = []
        if has_files(activity) or len(text) > _SLOW_TEXT_CHARS:
            typing.now()
        files = await channel.read_files(activity, notices)
        message = dataclasses.replace(message, files=files)
        channel.admins.learn(activity["from"])
        if clicked is None and not files and is_register_admins(text):
            # A platform command, not a conversation: the dialogs never see it.
            answer = await channel.tickets.register_admins(activity)
            await typing.settle()
            await channel.remember(activity, force=False)
            await self.deliver([text_activity(answer)], intent="register_admins")
            return
        outcome: TurnOutcome | None = None
        if text or files or clicked is not None or not notices:
            typing.after(channel.options.typing_after_seconds)
            try:
                outcome = await channel.runtime.turns.handle(message)
            finally:
                typing.cancel_timer()
            channel.metrics.observe_turn(message.platform, outcome)
            self.turn_id = outcome.turn_id
            if outcome.unavailable:  # the reply asks to try again; nothing more to store
                await typing.settle()
                await self._say_unavailable(outcome.replies)
                return
        await typing.settle()
        replies = [*notices, *(outcome.replies if outcome else ())]
        await channel.remember(activity, force=bool(outcome and outcome.escalated))
        activities = render_replies(replies, channel.labels)
        await self.deliver(activities, intent=outcome.intent if outcome else "file")

    async def _say_unavailable(self, replies: Sequence[Reply] = ()) -> None:
        """Ask the user to try again in a moment (the database did not answer)."""
        self.unavailable = True
        said = replies or (self.channel.runtime.turns.unavailable_reply(),)
        await self.deliver(render_replies(list(said), self.channel.labels), intent="error")

    @property
    def expects_replies(self) -> bool:
        """Whether the replies go back in the HTTP answer (``expectReplies``), not posted."""
        return bool(self.body.get("deliveryMode") == DeliveryModes.expect_replies)

    @property
    def _context(self) -> TurnContext:
        if self.context is None:
            raise RuntimeError("the adapter has not started this turn")
        return self.context

    # -- sending ------------------------------------------------------------------------------

    async def deliver(
        self, activities: Sequence[dict[str, Any]], *, intent: str, reply: bool = True
    ) -> int:
        """Send the activities in order within the turn's budget; what the Bot Connector did not
        take by then (and everything after it) is kept in the outbox and sent later, as is
        everything while earlier replies of the conversation wait there. A 4xx is not retried:
        logged and counted, and the next one goes on. How many went out now."""
        if self.expects_replies:
            return await self._buffer(activities, intent=intent)
        late = self.channel.late
        key = self.channel.conversation_key(self.body)
        behind = bool(activities) and await late.waiting(key)
        sent = 0
        for index, activity in enumerate(activities):
            if behind:
                await self._keep(key, activities[index:], intent=intent, first=False)
                break
            try:
                await self.send(activity, reply=reply)
                sent += 1
            except SendFailed as failure:
                if failure.permanent:
                    self.channel.sender.failed(failure, turn_id=self.turn_id, intent=intent)
                    continue
                log.warning(
                    "reply not taken within the turn; kept to send later",
                    extra={"turn_id": self.turn_id, "intent": intent, "reason": str(failure)},
                )
                await self._keep(key, activities[index:], intent=intent, first=True)
                break
        return sent

    async def _keep(
        self, key: str, activities: Sequence[dict[str, Any]], *, intent: str, first: bool
    ) -> None:
        if await self.channel.late.keep(key, activities, first=first):
            return
        failure = SendFailed("not sent, and the outbox could not keep it")
        for _ in activities:
            self.channel.sender.failed(failure, turn_id=self.turn_id, intent=intent)

    async def _buffer(self, activities: Sequence[dict[str, Any]], *, intent: str) -> int:
        """expectReplies: the activities go back in the HTTP answer, nothing is sent."""
        sent = 0
        for activity in activities:
            try:
                await self.send(activity)
                sent += 1
            except SendFailed as failure:
                self.channel.sender.failed(failure, turn_id=self.turn_id, intent=intent)
        return sent

    async def send(self, activity: dict[str, Any], *, reply: bool = True) -> None:
        """One activity: buffered in the TurnContext for expectReplies, else posted as the
        TurnContext would post it, through the ConnectorClient's own poster."""
        context = self._context
        if self.expects_replies:
            await context.send_activity(to_activity(activity))
            return
        if self._address is None:
            self._address = reply_address(self.body, context.activity)
        body = outgoing_json(self._address, activity, reply=reply)
        poster = self.channel.auth.connectors.poster(context.activity.service_url, self.audience)
        conversation_id = str(context.activity.conversation.id)
        await self.channel.sender.retrying(
            lambda: poster.post(conversation_id, body.get("replyToId"), body),
            what="POST",
            audience=self.audience,
            deadline=self.deadline,
            turn_id=self.turn_id,
        )
        if reply:
            context.responded = True  # what TurnContext.send_activity records

    async def send_typing(self) -> None:
        try:
            await self.send(typing_activity())
        except SendFailed as failure:
            log.debug("typing indicator not sent", extra={"reason": str(failure)})


#: What a turn does with an activity, by (type, invoke name); an activity not listed is ignored.
ROUTES: Final[Mapping[tuple[str, str], Callable[[Turn], Awaitable[None]]]] = {
    ("message", ""): Turn.on_message,
    ("invoke", "adaptiveCard/action"): Turn.on_card_action,
    ("conversationUpdate", ""): Turn.on_conversation_update,
    ("installationUpdate", ""): Turn.on_installation_update,
}


def route_key(activity: Mapping[str, Any]) -> tuple[str, str]:
    """The activity's key in :data:`ROUTES`: its type, and for an invoke its name."""
    kind = str(activity["type"])
    name = activity.get("name") if kind == "invoke" else ""
    return kind, name if isinstance(name, str) else ""


class _Typing:
    """The "typing..." indicator of one turn: sent at once for known slow work, or when the turn
    takes longer than a moment; always before the replies."""

    def __init__(self, turn: Turn, *, enabled: bool) -> None:
        self._turn = turn
        self._enabled = enabled
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def now(self) -> None:
        if self._enabled and self._task is None:
            self._task = asyncio.create_task(self._turn.send_typing())

    def after(self, seconds: float) -> None:
        if self._enabled and self._task is None:
            self._timer = asyncio.get_running_loop().call_later(seconds, self.now)

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    async def settle(self) -> None:
        if self._task is not None:
            await self._task


__all__ = ["ROUTES", "Turn", "route_key"]
