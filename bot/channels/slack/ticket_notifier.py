"""``SlackTicketNotifier``: what the tickets service asks of Slack (``bot.tickets.TicketNotifier``).

The cards in the admins' channel (drawn by ``ticket_blocks.py``), the notes and reminders in
their threads, the requesters' news in their own conversations, and who is in the admins'
channel. The tickets' job worker calls it; every call goes through the channel's Web API client
(429 and 5xx retried after Retry-After by its handlers), and what still fails is sorted by
``web_api.call_for_job`` into permanent and retry-later. Its own room because it is driven by
the worker, not by anything Slack sends.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, Final

from bot.channels.slack.blocks import escape
from bot.channels.slack.ticket_blocks import ticket_card
from bot.channels.slack.web_api import call_for_job
from bot.store import Requester
from bot.tickets import CardRef, PermanentFailure, TicketCard
from dialogs.messages import Platform
from dialogs.replies import Reply

if TYPE_CHECKING:
    from bot.channels.slack.channel import SlackChannel

_MEMBERS_TTL_SECONDS: Final = 60.0
_MEMBERS_PAGE: Final = 200


class SlackTicketNotifier:
    """``bot.tickets.TicketNotifier`` for Slack: the cards in the admins' channel, the notes in
    their threads, the requesters' news in their own conversations, and who is in the admins'
    channel. Every call goes through the channel's Web API client (429 and 5xx retried after
    Retry-After by its handlers); what still fails raises ``PermanentFailure`` when trying
    again cannot help, or another exception so that the job is retried later."""

    platform: str = Platform.SLACK

    def __init__(self, channel: SlackChannel, *, members_ttl: float = _MEMBERS_TTL_SECONDS) -> None:
        """Deliver through ``channel``; remember channel members for ``members_ttl`` seconds."""
        self.channel = channel
        self._members_ttl = members_ttl
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._members_lock = asyncio.Lock()

    async def post_card(self, admin_channel: dict[str, Any], ticket: TicketCard) -> CardRef:
        """chat.postMessage of the card in the admins' channel; where it went."""
        channel_id = str(admin_channel.get("channel") or "")
        if not channel_id:
            raise PermanentFailure(f"no Slack channel id in the admins' channel {admin_channel}")
        card = ticket_card(ticket, self.channel.knowledge.conversation)
        posted = await self._api(
            "chat.postMessage",
            self.channel.client.chat_postMessage(
                channel=channel_id, unfurl_links=False, unfurl_media=False, **card.payload()
            ),
        )
        return CardRef(
            Platform.SLACK,
            {"channel": str(posted.get("channel") or channel_id), "ts": str(posted["ts"])},
        )

    async def update_card(self, card: CardRef, ticket: TicketCard) -> None:
        """chat.update of the card, in place."""
        channel_id, ts = card_place(card)
        message = ticket_card(ticket, self.channel.knowledge.conversation)
        await self._api(
            "chat.update",
            self.channel.client.chat_update(channel=channel_id, ts=ts, **message.payload()),
        )

    async def post_note(self, card: CardRef, text: str) -> None:
        """A line in the card's thread."""
        await self._thread_line(card, text, broadcast=False)

    async def remind(self, card: CardRef, ticket: TicketCard, text: str) -> None:
        """A line in the card's thread, also sent to the channel so that it is seen."""
        await self._thread_line(card, text, broadcast=True)

    def channel_identity(self, channel: dict[str, Any]) -> str:
        """A Slack channel is its channel id."""
        if channel.get("channel"):
            return str(channel["channel"])
        return json.dumps(channel, sort_keys=True)

    async def tell_requester(self, requester: Requester, replies: Sequence[Reply]) -> None:
        """The replies in the requester's own conversation (a DM, or the thread they asked in)."""
        platform, _, conversation_id = requester.conversation_key.partition(":")
        if platform != Platform.SLACK or not conversation_id:
            raise PermanentFailure(f"not a Slack conversation: {requester.conversation_key}")
        await self._api("chat.postMessage", self.channel.deliver(conversation_id, replies))

    async def is_admin_channel_member(self, admin_channel: dict[str, Any], user_id: str) -> bool:
        """Whether the user is in the admins' channel (conversations.members, every page;
        remembered for a minute)."""
        channel_id = str(admin_channel.get("channel") or "")
        if not channel_id:
            return False
        return user_id in await self._channel_members(channel_id)

    async def _channel_members(self, channel_id: str) -> frozenset[str]:
        async with self._members_lock:
            now = time.monotonic()
            cached = self._members.get(channel_id)
            if cached is not None and cached[0] > now:
                return cached[1]
            members: set[str] = set()
            cursor: str | None = None
            while True:
                page = await self._api(
                    "conversations.members",
                    self.channel.client.conversations_members(
                        channel=channel_id, cursor=cursor, limit=_MEMBERS_PAGE
                    ),
                )
                members.update(str(member) for member in page.get("members") or ())
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
            found = frozenset(members)
            self._members[channel_id] = (time.monotonic() + self._members_ttl, found)
            return found

    async def _thread_line(self, card: CardRef, text: str, *, broadcast: bool) -> None:
        channel_id, ts = card_place(card)
        await self._api(
            "chat.postMessage",
            self.channel.client.chat_postMessage(
                channel=channel_id,
                thread_ts=ts,
                text=escape(text),
                reply_broadcast=broadcast,
                unfurl_links=False,
                unfurl_media=False,
            ),
        )

    async def _api(self, method: str, call: Awaitable[Any]) -> Any:
        """Await a Web API call; sort what still fails into permanent and retry-later."""
        return await call_for_job(method, call, self.channel.metrics)


def card_place(card: CardRef) -> tuple[str, str]:
    """The channel and ``ts`` of a Slack card; ``PermanentFailure`` if it is not one."""
    channel, ts = card.ref.get("channel"), card.ref.get("ts")
    if not channel or not ts:
        raise PermanentFailure(f"not a Slack card: {card.ref}")
    return str(channel), str(ts)
