"""Tickets on Teams (:class:`TeamsTicketNotifier`, added to the tickets service at startup):
bot/tickets/'s ``TicketNotifier`` for "msteams", and the admins' side of the card: ``register
admins`` said in a channel, the card's Universal Actions (``adaptiveCard/action``).

``register admins`` makes the channel the admins' channel; each ticket's card is posted there (a
new post), updated in place, with notes in its thread; the admins act through its Universal
Actions, and the requester hears back in their own chat (proactive messages). Its own room: what
the tickets service asks of Teams, apart from how a turn is run or how a card is drawn.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Final, TypeVar

from bot.channels.teams.activities import (
    actor_of,
    base_conversation_id,
    from_teams,
    in_group,
    readable_text,
    reference_of,
)
from bot.channels.teams.card_elements import CARD_CONTENT_TYPE
from bot.channels.teams.cards import render_replies, text_activity
from bot.channels.teams.failures import SendFailed
from bot.channels.teams.rosters import Admins, channel_reference, roster_id
from bot.channels.teams.sending import Sender
from bot.channels.teams.ticket_cards import (
    INPUT_ASSIGNEE,
    INPUT_REPLY,
    INPUT_RESOLUTION,
    TICKET_REFRESH_VERB,
    TicketLabels,
    notice_card,
    read_assignee,
    ticket_activity,
    ticket_summary,
)
from bot.runtime import Runtime
from bot.store import Requester, TicketRecord
from bot.tickets import Action, ActionRequest, Actor, CardRef, PermanentFailure, TicketCard
from dialogs.intent import register_admins_code
from dialogs.messages import Platform
from dialogs.replies import Reply

log = logging.getLogger("bot.channels.teams")

#: The texts of conversation.yaml this module looks up; checked when the bot starts.
TEXTS: Final = frozenset(
    {"teams_register_in_channel", "teams_tickets_teams_only", "ticket_private", "ticket_not_found"}
)
#: The verbs of a ticket card's Universal Actions.
TICKET_VERBS: Final = frozenset(action.value for action in Action) | {TICKET_REFRESH_VERB}
INVOKE_MESSAGE: Final = "application/vnd.microsoft.activity.message"
_T = TypeVar("_T")


class TeamsTicketNotifier:
    """The Teams side of tickets: bot/tickets/'s ``TicketNotifier`` for "msteams" (the ticket
    card posted in the admins' channel and updated in place, notes in its thread, the
    requester's news as proactive messages, channel membership), and the admins' side of the
    card: ``register admins``, the card's Universal Actions (``adaptiveCard/action``).

    The card in the channel is the base view (no buttons) with a ``refresh`` for the admins
    known (ADMIN_USERS, the channel's members, whoever acted): Teams asks each of them for
    their own view (``ticketRefresh``), which has the buttons. A refresh is answered in full
    only to the ticket's requesters and the admins; anyone else sees a card that says so. The
    card's actions name the ticket by its public reference, never its number: a payload that
    names no known ticket is answered "not found". Sends go through the channel's
    retrying sender; a 4xx other than 401/408/429 raises PermanentFailure, anything else is
    left to the tickets' job worker to retry.
    """

    platform: str = Platform.TEAMS

    def __init__(self, sender: Sender, runtime: Runtime, admins: Admins) -> None:
        self.sender = sender
        self.runtime = runtime
        self.admins = admins
        self.labels = TicketLabels(runtime.knowledge.conversation)

    # -- TicketNotifier -----------------------------------------------------------------------

    async def post_card(self, admin_channel: dict[str, Any], ticket: TicketCard) -> CardRef:
        """Post the ticket's card as a new post in the admins' channel."""
        reference = channel_reference(admin_channel)
        roster = roster_id(admin_channel)
        card = await self.admins.card(ticket, actions=False, roster=(reference, roster))
        activity = ticket_activity(card, ticket_summary(ticket, self.labels))
        activity_id = await _job(self.sender.post(reference, activity, budget=self._budget))
        if not activity_id:
            raise PermanentFailure("the Bot Connector gave the ticket card no id")
        return CardRef(
            Platform.TEAMS, {"reference": reference, "activity_id": activity_id, "roster": roster}
        )

    async def update_card(self, card: CardRef, ticket: TicketCard) -> None:
        """Put the ticket as it is now in place of its card."""
        reference, activity_id = _card_place(card)
        roster = (reference, str(card.ref.get("roster") or ""))
        content = await self.admins.card(ticket, actions=False, roster=roster)
        activity = ticket_activity(content, ticket_summary(ticket, self.labels))
        await _job(self.sender.update(reference, activity_id, activity, budget=self._budget))

    async def post_note(self, card: CardRef, text: str) -> None:
        """A reply in the card's thread."""
        reference, activity_id = _card_place(card)
        conversation = dict(reference.get("conversation") or {})
        conversation["id"] = f"{base_conversation_id(conversation)};messageid={activity_id}"
        thread = {**reference, "conversation": conversation}
        await _job(self.sender.post(thread, text_activity(text), budget=self._budget))

    async def tell_requester(self, requester: Requester, replies: Sequence[Reply]) -> None:
        """The replies as new messages in the requester's own conversation with the bot."""
        reference = await self.runtime.store.conversations.load_reference(
            requester.conversation_key
        )
        if reference is None:
            raise PermanentFailure(f"no conversation reference for {requester.conversation_key}")
        for activity in render_replies(replies, self.sender.labels):
            await _job(self.sender.post(reference, activity, budget=self._budget))

    async def is_admin_channel_member(self, admin_channel: dict[str, Any], user_id: str) -> bool:
        """The Bot Connector's members API, the answer kept for a minute."""
        return await self.admins.is_member(admin_channel, user_id)

    async def remind(self, card: CardRef, ticket: TicketCard, text: str) -> None:
        """A reminder is a note in the card's thread (Teams bumps the thread)."""
        await self.post_note(card, text)

    def channel_identity(self, channel: dict[str, Any]) -> str:
        """A Teams channel is its conversation id, without the thread's ``;messageid=``."""
        conversation = channel.get("conversation")
        if isinstance(conversation, dict) and conversation.get("id"):
            return base_conversation_id(conversation)
        return json.dumps(channel, sort_keys=True)

    @property
    def _budget(self) -> float:
        return self.sender.options.job_retry_budget_seconds

    # -- the admins' side ---------------------------------------------------------------------

    async def register_admins(self, activity: Mapping[str, Any]) -> str:
        """``register admins`` said in a channel or group chat: make it the admins' channel.
        Only from Teams itself (see ``answer_action``)."""
        conversation = activity["conversation"]
        if not from_teams(activity):
            log.info("admins' channel registration refused: not from Teams")
            return self.runtime.knowledge.conversation.text("teams_tickets_teams_only")
        if not in_group(activity):
            return self.runtime.knowledge.conversation.text("teams_register_in_channel")
        base = base_conversation_id(conversation)
        reference = reference_of(activity)
        reference["conversation"] = {**conversation, "id": base}
        reference["activityId"] = None
        data = activity.get("channelData") or {}
        team = (data.get("team") or {}).get("id") if isinstance(data, dict) else None
        name = (data.get("channel") or {}).get("name") if isinstance(data, dict) else None
        channel = {
            "reference": reference,
            "conversation": {"id": base},
            "team": team,
            "name": name,
        }
        code = register_admins_code(readable_text(activity))
        return await self.runtime.tickets.register_admin_channel(
            Platform.TEAMS, channel, actor_of(activity), code
        )

    async def answer_action(
        self, activity: Mapping[str, Any], verb: str, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The invoke response to a ticket card's Universal Action: the card as the user
        may see it now (``ticketRefresh``), or the action applied by the tickets service
        and the card with what came of it; a refusal to a non-admin as a message. The ticket
        is the one the payload's public reference names (``ref``); a number or an unknown
        reference is answered "not found", and nothing is done.

        Only from Teams itself: another Bot Framework channel (Web Chat, Direct Line) lets its
        client choose ``from.id``, so an admin's id there proves nothing; such a click is
        refused with a message and changes nothing."""
        if not from_teams(activity):
            log.info("ticket card action refused: not from Teams", extra={"verb": verb})
            texts = self.runtime.knowledge.conversation
            return invoke_message(texts.text("teams_tickets_teams_only"))
        actor = actor_of(activity)
        ticket = await self.runtime.tickets.by_ref(data.get("ref"))
        if ticket is None:
            log.info("card action on no known ticket", extra={"channel": Platform.TEAMS})
            text = self.runtime.knowledge.conversation.text("ticket_not_found")
            if verb == TICKET_REFRESH_VERB:
                return _invoke_card(notice_card(text))
            return invoke_message(text)
        if verb != TICKET_REFRESH_VERB:
            event = f"{Platform.TEAMS}:{activity['conversation']['id']}:{activity.get('id')}"
            if not activity.get("id") or await self.runtime.store.seen.first_time_seen(event):
                return await self._act(actor, Action(verb), ticket, data)
            log.info("card action delivered twice; applied once", extra={"channel": Platform.TEAMS})
        return await self._view(actor, ticket)

    async def _view(self, actor: Actor, ticket: TicketRecord) -> dict[str, Any]:
        """The card as ``actor`` may see it: the admins' view with its buttons, a requester's
        without; to anyone else only that the ticket is not theirs to see."""
        tickets = self.runtime.tickets
        if not await tickets.may_see(actor, ticket):
            log.info("ticket card refused: not a requester or an admin", extra={"actor": actor.key})
            text = self.runtime.knowledge.conversation.text("ticket_private")
            return _invoke_card(notice_card(text))
        admin = await tickets.is_admin(actor)
        card = await tickets.card(ticket)
        roster = await self.admins.roster_of(card)
        return _invoke_card(await self.admins.card(card, actions=admin, roster=roster))

    async def _act(
        self, actor: Actor, action: Action, ticket: TicketRecord, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        assignee = None
        if action is Action.ASSIGN:
            chosen = read_assignee(str(data.get(INPUT_ASSIGNEE) or ""))
            if chosen is not None:
                assignee = Actor(Platform.TEAMS, *chosen)
        field = {Action.REPLY: INPUT_REPLY, Action.RESOLVE: INPUT_RESOLUTION}.get(action)
        text = str(data.get(field) or "") if field else None
        request = ActionRequest(
            ticket_id=ticket.id,
            action=action,
            actor=actor,
            seen_version=_version(data.get("version")),
            assignee=assignee,
            text=text,
        )
        result = await self.runtime.tickets.act(request)
        if result.ticket is None:
            return invoke_message(result.message)
        now = await self.runtime.tickets.card(result.ticket)
        roster = await self.admins.roster_of(now)
        card = await self.admins.card(now, actions=True, notice=result.message, roster=roster)
        return _invoke_card(card)


async def _job(call: Awaitable[_T]) -> _T:
    """A Bot Connector call for the tickets' job worker: PermanentFailure when trying again
    cannot help; SendFailed (with the wait asked for, as ``after``) when it can."""
    try:
        return await call
    except SendFailed as failure:
        if failure.permanent:
            raise PermanentFailure(str(failure)) from None
        raise


def _version(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _card_place(card: CardRef) -> tuple[dict[str, Any], str]:
    reference, activity_id = card.ref.get("reference"), card.ref.get("activity_id")
    if not isinstance(reference, dict) or not activity_id:
        raise PermanentFailure("the ticket card's place is unknown")
    return reference, str(activity_id)


def _invoke_card(card: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": card}


def invoke_message(text: str) -> dict[str, Any]:
    """An invoke response that shows a message (no card) to the user who acted."""
    return {"statusCode": 200, "type": INVOKE_MESSAGE, "value": text}


__all__ = ["INVOKE_MESSAGE", "TEXTS", "TICKET_VERBS", "TeamsTicketNotifier", "invoke_message"]
