"""The admins' side of Slack: ``@bot register admins``, the ticket cards' buttons and modals,
turned into the tickets service's calls (``bot.tickets.Tickets``).

Assign to me, Reopen and Approve and apply act at once; Assign to someone, Reply and Resolve
open their modal first, for an admin only. The card and its thread then show what was done (the
service's jobs update them, through ``ticket_notifier.py``); the admin alone hears of a refusal,
of a change that could not be made, or of an out-of-date card, in an ephemeral message. Its own
room because these are platform commands: the dialogs never see them.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from bot.channels.slack.blocks import escape
from bot.channels.slack.events import (
    Target,
    clicked_button,
    interaction_channel,
    profile_name,
    team_of,
    ticket_button,
    user_name,
)
from bot.channels.slack.ticket_blocks import MODAL_ACTIONS, ticket_modal, ticket_modal_input
from bot.channels.slack.web_api import WebAPI
from bot.store import Store
from bot.tickets import Action, ActionRequest, ActionResult, Actor, Tickets
from dialogs.messages import Platform
from dialogs.replies import Text
from knowledge.kb import ConversationText

log = logging.getLogger("bot.channels.slack")

#: The texts of conversation.yaml this module looks up; checked when the bot starts.
TEXTS: Final = frozenset({"ticket_not_found"})


class TicketActions:
    """What admins do in Slack, handed to the tickets service."""

    def __init__(
        self, tickets: Tickets, *, store: Store, web: WebAPI, words: ConversationText
    ) -> None:
        """Act through ``tickets``; answer through ``web``."""
        self._tickets = tickets
        self._store = store
        self._web = web
        self._words = words

    async def register_admins(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        target: Target,
        code: str | None = None,
    ) -> None:
        """``@bot register admins`` in a channel (with the one-time ``code`` when it carries
        one): the service decides; its answer goes in the thread."""
        user = str(event["user"])
        name = await self._web.user_name(user, profile_name(event) or user)
        actor = Actor(Platform.SLACK, user, name, tenant=team_of(body, event))
        try:
            answer = await self._tickets.register_admin_channel(
                Platform.SLACK, {"channel": target.channel}, actor, code
            )
        except Exception:
            log.exception("registering the admins' channel failed")
            answer = self._words.text("turn_error")
        await self._web.post(target, [Text(answer)])

    async def button(self, body: dict[str, Any]) -> None:
        """A card's button: Assign to me, Reopen and Approve and apply act at once; Assign to
        someone, Reply and Resolve open their modal first (an admin's only: anyone else is told
        so). The button names its ticket by the public reference; one that names no known
        ticket is answered "not found" and nothing is done."""
        button = clicked_button(body)
        if not isinstance(button, dict):
            return
        trigger = body.get("trigger_id")
        user = body["user"]
        user_id = str(user["id"])
        team = team_of(body)
        channel = interaction_channel(body)
        clicked = ticket_button(button)
        ticket = None if clicked is None else await self._tickets.by_ref(clicked.ref)
        if clicked is None or ticket is None:  # a number, a guess, an older card: not a ref
            log.info("ticket button on no known ticket", extra={"channel": Platform.SLACK})
            await self._tell_admin(channel, user_id, self._words.text("ticket_not_found"))
            return
        if clicked.action.value in MODAL_ACTIONS:
            # The trigger lasts 3 seconds: no look-up of the name before the modal is open.
            if not await self._tickets.is_admin(Actor(Platform.SLACK, user_id, user_id, team)):
                refused = self._words.text("ticket_refused_not_admin")
                await self._tell_admin(channel, user_id, refused)
                return
            view = ticket_modal(
                clicked.action.value,
                ticket.id,
                clicked.version,
                channel,
                self._words,
                ref=ticket.ref,
            )
            await self._web.call(
                "views.open", self._web.client.views_open(trigger_id=trigger, view=view)
            )
            return
        name = await self._web.user_name(user_id, user_name(user))
        actor = Actor(Platform.SLACK, user_id, name, tenant=team)
        request = ActionRequest(ticket.id, clicked.action, actor, clicked.version)
        await self._after_action(channel, user_id, await self._tickets.act(request))

    async def submission(self, body: dict[str, Any], view: dict[str, Any]) -> None:
        """A ticket modal, filled in and closed: act on the ticket with what it says (the one
        its private_metadata names by public reference; "not found" to the admin if none)."""
        submitted = ticket_modal_input(view)
        if submitted is None:
            return
        user = body["user"]
        user_id = str(user["id"])
        ticket = await self._tickets.by_ref(submitted.ref)
        if ticket is None:
            log.info("ticket modal on no known ticket", extra={"channel": Platform.SLACK})
            await self._tell_admin(submitted.channel, user_id, self._words.text("ticket_not_found"))
            return
        name = await self._web.user_name(user_id, user_name(user))
        actor = Actor(Platform.SLACK, user_id, name, tenant=team_of(body))
        assignee, text = None, None
        if submitted.action == "assign":
            picked = submitted.value
            assignee = Actor(Platform.SLACK, picked, await self._web.user_name(picked, picked))
        else:
            text = submitted.value
        request = ActionRequest(
            ticket.id,
            Action(submitted.action),
            actor,
            submitted.version,
            assignee=assignee,
            text=text,
        )
        result = await self._tickets.act(request)
        await self._after_action(submitted.channel, user_id, result)

    async def _after_action(self, channel: str, user: str, result: ActionResult) -> None:
        """The card and its thread show what was done (the service's jobs update them); the
        admin alone hears of a refusal, or of an out-of-date card."""
        if not result.applied or result.stale:
            await self._tell_admin(channel, user, result.message)

    async def _tell_admin(self, channel: str, user: str, text: str) -> None:
        """An ephemeral message for one person in the card's channel (or in a DM)."""
        if channel and await self._web.call(
            "chat.postEphemeral",
            self._web.client.chat_postEphemeral(channel=channel, user=user, text=escape(text)),
        ):
            return
        # No channel, or not a member of it (an ADMIN_USERS admin): in a DM then.
        dm = await self._web.dm(user)
        if dm is not None:
            await self._web.post(Target(dm), [Text(text)])
