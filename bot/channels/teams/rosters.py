"""The admins as Teams knows them (:class:`Admins`): the members of the admins' channel (the
first page, kept for a minute), whether someone is one of them, users' Teams ids (MRIs) by their
AAD object id, and the ticket's card drawn for them (the refresh list, the assignees offered).

Its own room because both sides of tickets need it: the notifier draws the channel's card with
it, the card actions the acting admin's view; and the turn teaches it the MRIs it sees.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bot.channels.teams.activities import base_conversation_id
from bot.channels.teams.failures import SendFailed
from bot.channels.teams.sending import Sender
from bot.channels.teams.ticket_cards import (
    MAX_REFRESH_USERS,
    TicketCardView,
    TicketLabels,
    ticket_card,
)
from bot.runtime import Runtime
from bot.tickets import PermanentFailure, TicketCard
from dialogs.messages import Platform

log = logging.getLogger("bot.channels.teams")

_ADMIN_EVENTS: Final = frozenset({"assigned", "replied", "resolved", "reopened"})
_MEMBERSHIP_SECONDS: Final = 60.0
_REMEMBERED: Final = 10_000

#: Where the members of an admins' channel are asked: a conversation reference and the roster's id.
Roster = tuple[Mapping[str, Any], str]


@dataclass(frozen=True)
class _Roster:
    members: list[dict[str, str]]
    until: float


class Admins:
    """Who the admins are on Teams, asked of the Bot Connector through the sender and kept a
    minute; and the ticket card drawn with them (``refresh.userIds`` wants MRIs)."""

    def __init__(self, sender: Sender, runtime: Runtime) -> None:
        self.sender = sender
        self.runtime = runtime
        self.labels = TicketLabels(runtime.knowledge.conversation)
        self._membership: dict[tuple[str, str], tuple[bool, float]] = {}
        self._rosters: dict[str, _Roster] = {}
        self._mris: OrderedDict[str, str] = OrderedDict()  # AAD object id -> Teams user MRI

    async def card(
        self,
        ticket: TicketCard,
        *,
        actions: bool,
        notice: str | None = None,
        roster: Roster | None = None,
    ) -> dict[str, Any]:
        """The ticket's card: the base view, or the admins' view with ``actions``."""
        admins = await self._known(ticket, roster)
        view = TicketCardView(
            actions=actions,
            refresh_users=tuple(self._mri(user_id) for user_id, _ in admins),
            assignees=tuple((user_id, name) for user_id, name in admins if name),
            notice=notice,
        )
        return ticket_card(ticket, view, self.labels)

    async def is_member(self, admin_channel: dict[str, Any], user_id: str) -> bool:
        """The Bot Connector's members API, the answer kept for a minute."""
        roster = roster_id(admin_channel)
        key = (roster, user_id)
        now = time.monotonic()
        cached = self._membership.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        reference = channel_reference(admin_channel)
        member = await self.sender.is_member(reference, roster, user_id)
        if len(self._membership) > _REMEMBERED:
            self._membership.clear()
        self._membership[key] = (member, now + _MEMBERSHIP_SECONDS)
        return member

    async def roster_of(self, ticket: TicketCard) -> Roster | None:
        """Where the members of the admins' channel are asked: where the card is, else the
        admins' channel now."""
        card = (await self.runtime.store.channels.ticket_cards(ticket.id)).get(Platform.TEAMS)
        if card is not None and card.get("reference") and card.get("roster"):
            return card["reference"], str(card["roster"])
        channel = (await self.runtime.tickets.admin_channels()).get(Platform.TEAMS)
        if channel is None:
            return None
        try:
            return channel_reference(channel), roster_id(channel)
        except PermanentFailure:
            return None

    def learn(self, account: Mapping[str, Any]) -> None:
        """Remember a user's Teams id (MRI) by their AAD object id: ``refresh.userIds`` wants
        MRIs, and the bot knows admins by their AAD object id."""
        aad, mri = str(account.get("aadObjectId") or ""), str(account.get("id") or "")
        if aad and mri and self._mris.get(aad) != mri:
            self._mris[aad] = mri
            while len(self._mris) > _REMEMBERED:
                self._mris.popitem(last=False)

    async def _known(self, ticket: TicketCard, roster: Roster | None) -> list[tuple[str, str]]:
        """The admins known, as (user id, name or ""): whoever acted on the ticket, its
        assignee, ADMIN_USERS' Teams entries, the members of the admins' channel."""
        found: dict[str, str] = {}

        def add(user_id: str, name: str = "") -> None:
            if user_id and (name or user_id not in found):
                found[user_id] = name

        for event in await self.runtime.store.tickets.ticket_events(ticket.id):
            platform, _, user_id = event.actor.partition(":")
            by_admin = event.kind in _ADMIN_EVENTS and not event.detail.get("requester")
            if platform == Platform.TEAMS and by_admin:
                add(user_id, str(event.detail.get("by") or ""))
        assignee = ticket.assignee
        if assignee is not None and assignee.platform == Platform.TEAMS:
            add(assignee.user_id, assignee.name)
        for user_id in self.runtime.settings.listed_admins(Platform.TEAMS):
            add(user_id)
        if roster is not None and roster[1]:
            for member in await self._members(*roster):
                self.learn(member)
                add(member["aadObjectId"] or member["id"], member["name"])
        return list(found.items())

    async def _members(
        self, reference: Mapping[str, Any], conversation_id: str
    ) -> list[dict[str, str]]:
        """The first page of the admins' channel's members, kept for a minute; [] when the
        Bot Connector will not say (the card is drawn without them)."""
        now = time.monotonic()
        cached = self._rosters.get(conversation_id)
        if cached is not None and cached.until > now:
            return cached.members
        try:
            members = await self.sender.members(
                reference, conversation_id, page_size=MAX_REFRESH_USERS
            )
        except SendFailed as failure:
            log.info("admins' channel members unknown", extra={"reason": str(failure)})
            members = []
        self._rosters[conversation_id] = _Roster(members, now + _MEMBERSHIP_SECONDS)
        return members

    def _mri(self, user_id: str) -> str:
        return self._mris.get(user_id, user_id)


def channel_reference(admin_channel: Mapping[str, Any]) -> dict[str, Any]:
    """The conversation reference of a registered admins' channel (``{"reference": ...}``, or
    a bare reference), addressed to the channel itself: posts there start new threads."""
    reference = admin_channel.get("reference", admin_channel)
    if not isinstance(reference, dict) or not isinstance(reference.get("conversation"), dict):
        raise PermanentFailure("the Teams admins' channel has no conversation reference")
    if not reference.get("serviceUrl"):
        raise PermanentFailure("the Teams admins' channel has no service URL")
    conversation = {
        **reference["conversation"],
        "id": base_conversation_id(reference["conversation"]),
    }
    return {**reference, "conversation": conversation, "activityId": None}


def roster_id(admin_channel: Mapping[str, Any]) -> str:
    """Where the members of the admins' channel are asked for: its team, else the chat."""
    team = admin_channel.get("team")
    if team:
        return str(team)
    reference = admin_channel.get("reference", admin_channel)
    conversation = reference.get("conversation") if isinstance(reference, dict) else None
    return base_conversation_id(conversation if isinstance(conversation, dict) else {})


__all__ = ["Admins", "Roster", "channel_reference", "roster_id"]
