"""Sending to the Bot Connector (:class:`Sender`): every call retried on 429, 5xx and network
errors within a deadline, honouring ``Retry-After``; a failure logged and counted; and the calls
made outside a turn (proactive messages, posts, updates, membership) through the adapter's
``continue_conversation``. A turn's own replies are addressed here as JSON
(:func:`reply_address`, :func:`outgoing_json`), the body botbuilder's ``TurnContext`` would
have msrest build for them, so that each one costs a dict, not a deep copy and a serialisation
of an ``Activity`` model and its cards.

Its own room because both the turn (its replies) and the tickets (cards, notes, news) send
through it, with the same retries, and neither needs to know how botbuilder does it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

import aiohttp
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationAccount,
    ConversationReference,
    InputHints,
)
from botbuilder.schema import Attachment as CardAttachment
from botframework.connector import Channels
from botframework.connector import models as connector_models
from botframework.connector.aio import ConnectorClient
from msrest import Serializer
from msrest.exceptions import HttpOperationError

from bot.channels.teams.cards import Labels, render_replies
from bot.channels.teams.connector import ERROR_BODY_CHARS, ConnectorRefused
from bot.channels.teams.failures import SendFailed
from bot.channels.teams.options import TeamsOptions
from bot.channels.teams.tokens import BotTokens
from bot.metrics import Metrics
from bot.outbound import retry_after
from dialogs.messages import Platform
from dialogs.replies import Reply

log = logging.getLogger("bot.channels.teams")
_T = TypeVar("_T")

# What ConnectorClient serialises activities with, and the order msrest writes their fields in.
_SERIALIZER: Final = Serializer(  # type: ignore[no-untyped-call]
    {name: model for name, model in vars(connector_models).items() if isinstance(model, type)}
)
_NO_REPLY_TO: Final = (Channels.direct_line, Channels.webchat)  # get_conversation_reference's
_JSON_TYPES: Final[Mapping[str, type]] = {"str": str, "bool": bool, "object": object}


def _fields_of(model: type) -> dict[str, type]:
    """A model's JSON fields and the Python type msrest reads each as (unchanged)."""
    return {
        attribute["key"]: _JSON_TYPES[attribute["type"]]
        for attribute in model._attribute_map.values()  # type: ignore[attr-defined]
    }


_ACCOUNT_FIELDS: Final = _fields_of(ChannelAccount)
_CONVERSATION_FIELDS: Final = _fields_of(ConversationAccount)
_FIELD_ORDER: Final = {
    attribute["key"]: index for index, attribute in enumerate(Activity._attribute_map.values())
}


class Sender:
    """The channel's sending side: retries, failures, and proactive calls into a conversation
    saved with :func:`~bot.channels.teams.activities.reference_of`."""

    def __init__(
        self,
        adapter: CloudAdapter,
        tokens: BotTokens,
        options: TeamsOptions,
        metrics: Metrics,
        labels: Labels,
        *,
        app_id: str,
    ) -> None:
        self.adapter = adapter
        self.options = options
        self.metrics = metrics
        self.labels = labels
        self._tokens = tokens
        self._app_id = app_id

    async def retrying(
        self,
        call: Callable[[], Awaitable[_T]],
        *,
        what: str,
        audience: str | None,
        deadline: float,
        turn_id: str = "",
    ) -> _T:
        """Run one Bot Connector call (through the ConnectorClient); retry it on 429, 5xx and
        network errors with exponential backoff and jitter, waiting what ``Retry-After`` asks,
        within the deadline. Raises SendFailed."""
        for attempt in range(1, self.options.max_attempts + 1):
            wait: float | None
            try:
                return await call()
            except ConnectorRefused as refused:
                status, detail, wait = refused.status, refused.detail, refused.retry_after
            except HttpOperationError as error:  # a success status msrest does not expect
                status, detail, wait = _connector_error(error)
            except (aiohttp.ClientError, TimeoutError) as error:
                status, detail, wait = 0, type(error).__name__, None
            if status == 401 and attempt == 1 and self._tokens.forget(audience):
                continue  # the bot's token may have been revoked early: fetch a new one
            if status and status != 429 and status < 500:
                raise SendFailed(f"{what} {status}: {detail}", status=status)
            if wait is None:
                wait = self.options.retry_base_seconds * 2 ** (attempt - 1)
                wait *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret
            if attempt == self.options.max_attempts or time.monotonic() + wait > deadline:
                raise SendFailed(
                    f"{what} {status or detail} after {attempt} attempts", status=status, after=wait
                )
            self.metrics.outbound_retries.labels(Platform.TEAMS).inc()
            log.info(
                "Bot Connector busy; retrying",
                extra={"turn_id": turn_id, "status": status, "wait": round(wait, 2)},
            )
            await asyncio.sleep(wait)
        raise SendFailed(f"{what} gave up")  # pragma: no cover - the loop raises first

    def failed(self, failure: SendFailed, *, turn_id: str, intent: str) -> None:
        """Log (with the turn id) and count a reply that did not go out."""
        self.metrics.errors.labels(Platform.TEAMS, "send").inc()
        log.error(
            "reply not delivered",
            extra={
                "turn_id": turn_id,
                "channel": Platform.TEAMS,
                "intent": intent,
                "reason": str(failure),
            },
        )

    # -- proactive ----------------------------------------------------------------------------

    async def send_proactive(self, reference: Mapping[str, Any], replies: Sequence[Reply]) -> int:
        """Send replies into a conversation saved with ``reference_of`` (as new messages,
        not replies); return how many went out. For telling a requester about their ticket."""
        activities = render_replies(replies, self.labels)
        deadline = time.monotonic() + self.options.retry_budget_seconds
        sent = 0

        async def logic(context: TurnContext) -> None:
            nonlocal sent
            for each in activities:
                try:
                    outgoing = to_activity(each)
                    await self.retrying(
                        lambda: post_activity(context, outgoing, reply=False),  # noqa: B023 - awaited now
                        what="POST",
                        audience=None,
                        deadline=deadline,
                    )
                    sent += 1
                except SendFailed as failure:
                    self.failed(failure, turn_id="", intent="proactive")

        await self._continue(reference, logic)
        return sent

    async def update(
        self,
        reference: Mapping[str, Any],
        activity_id: str,
        activity: dict[str, Any],
        *,
        budget: float | None = None,
    ) -> None:
        """Replace an activity the bot sent earlier into that conversation (a ticket card, say).
        Raises SendFailed."""
        deadline = time.monotonic() + (budget or self.options.retry_budget_seconds)

        async def logic(context: TurnContext) -> None:
            replacement = TurnContext.apply_conversation_reference(
                to_activity(activity), TurnContext.get_conversation_reference(context.activity)
            )
            replacement.id = activity_id
            replacement.reply_to_id = None
            await self.retrying(
                lambda: context.adapter.update_activity(context, replacement),
                what="PUT",
                audience=None,
                deadline=deadline,
            )

        await self._continue(reference, logic)

    async def post(
        self,
        reference: Mapping[str, Any],
        activity: Mapping[str, Any],
        *,
        budget: float | None = None,
    ) -> str | None:
        """Send one activity into a saved conversation as a new message (in a channel: a new
        post; with ``;messageid=`` in the conversation id: a reply in that thread); return the
        id the Bot Connector gave it. Retried like replies (within ``budget`` seconds, by default
        a turn's); raises SendFailed."""
        deadline = time.monotonic() + (budget or self.options.retry_budget_seconds)
        ids: list[str | None] = []

        async def logic(context: TurnContext) -> None:
            outgoing = to_activity(activity)
            ids.append(
                await self.retrying(
                    lambda: post_activity(context, outgoing, reply=False),
                    what="POST",
                    audience=None,
                    deadline=deadline,
                )
            )

        await self._continue(reference, logic)
        return ids[0] if ids else None

    async def is_member(
        self, reference: Mapping[str, Any], conversation_id: str, user_id: str
    ) -> bool:
        """Whether the user is a member of the conversation (a team, a channel, a group chat):
        the Bot Connector's ``GET /v3/conversations/{id}/members/{user}``, 403/404 meaning no.
        Raises SendFailed when it cannot tell."""
        deadline = time.monotonic() + self.options.retry_budget_seconds

        async def logic(context: TurnContext) -> None:
            client = _connector_client(context)
            await self.retrying(
                lambda: client.conversations.get_conversation_member(conversation_id, user_id),
                what="GET member",
                audience=None,
                deadline=deadline,
            )

        try:
            await self._continue(reference, logic)
        except SendFailed as failure:
            if failure.status in (403, 404):
                return False
            raise
        return True

    async def members(
        self, reference: Mapping[str, Any], conversation_id: str, *, page_size: int
    ) -> list[dict[str, str]]:
        """The first page of a conversation's members (``GET .../pagedmembers``), each as
        ``{"id", "name", "aadObjectId"}``. Raises SendFailed."""
        deadline = time.monotonic() + self.options.retry_budget_seconds
        found: list[dict[str, str]] = []

        async def logic(context: TurnContext) -> None:
            client = _connector_client(context)
            page = await self.retrying(
                lambda: client.conversations.get_conversation_paged_members(
                    conversation_id, page_size=page_size
                ),
                what="GET members",
                audience=None,
                deadline=deadline,
            )
            for member in getattr(page, "members", None) or []:
                found.append(
                    {
                        "id": str(member.id or ""),
                        "name": str(member.name or ""),
                        "aadObjectId": str(member.aad_object_id or ""),
                    }
                )

        await self._continue(reference, logic)
        return found

    async def _continue(
        self, reference: Mapping[str, Any], logic: Callable[[TurnContext], Awaitable[None]]
    ) -> None:
        await self.adapter.continue_conversation(
            ConversationReference().deserialize(dict(reference)),
            logic,
            bot_app_id=self._app_id,
        )


async def post_activity(context: TurnContext, activity: Activity, *, reply: bool) -> str | None:
    """Send one activity through the adapter: as a reply to the turn's activity (what
    ``TurnContext.send_activity`` does), or as a new message in its conversation. Returns the
    id the Bot Connector gave it, if it said."""
    if reply:
        answer = await context.send_activity(activity)
        return getattr(answer, "id", None)
    addressed = TurnContext.apply_conversation_reference(
        activity, TurnContext.get_conversation_reference(context.activity)
    )
    addressed.reply_to_id = None
    answers = await context.adapter.send_activities(context, [addressed])
    return getattr(answers[0], "id", None) if answers else None


def to_activity(activity: Mapping[str, Any]) -> Activity:
    """A rendered activity (plain JSON) as botbuilder's Activity, for the TurnContext."""
    return Activity(
        type=activity.get("type"),
        text=activity.get("text"),
        text_format=activity.get("textFormat"),
        summary=activity.get("summary"),
        attachments=[
            CardAttachment(content_type=each.get("contentType"), content=each.get("content"))
            for each in activity.get("attachments") or []
        ]
        or None,
    )


def reply_address(body: Mapping[str, Any], incoming: Activity) -> dict[str, Any]:
    """The fields that address a reply to the incoming activity (channel, service URL,
    conversation, the bot as ``from``, the user as ``recipient``, ``replyToId``, locale) as
    msrest writes them once ``TurnContext.apply_conversation_reference`` has set them: read
    from the JSON it came as (``body``) when every field has the type msrest declares, which
    msrest would carry over unchanged; else through msrest, from the ``incoming`` model."""
    fast = _address_of(body)
    if fast is not None:
        return fast
    reply = TurnContext.apply_conversation_reference(
        Activity(), TurnContext.get_conversation_reference(incoming)
    )
    return _SERIALIZER.body(reply, "Activity")  # type: ignore[no-any-return,no-untyped-call]


def _address_of(body: Mapping[str, Any]) -> dict[str, Any] | None:
    channel_id = body.get("channelId")
    replied = body.get("id")
    if channel_id in _NO_REPLY_TO or body.get("type") == ActivityTypes.conversation_update:
        replied = None
    address: dict[str, Any] = {}
    for key, value, fields in (
        ("serviceUrl", body.get("serviceUrl"), None),
        ("channelId", channel_id, None),
        ("from", body.get("recipient"), _ACCOUNT_FIELDS),
        ("conversation", body.get("conversation"), _CONVERSATION_FIELDS),
        ("recipient", body.get("from"), _ACCOUNT_FIELDS),
        ("locale", body.get("locale"), None),
        ("replyToId", replied, None),
    ):
        if value is None:
            continue
        if fields is None:
            if not isinstance(value, str):
                return None
            address[key] = value
            continue
        account = _account_of(value, fields)
        if account is None:
            return None
        address[key] = account
    return address


def _account_of(value: Any, fields: Mapping[str, type]) -> dict[str, Any] | None:
    """A ChannelAccount or ConversationAccount as msrest reads and writes it back (its own
    fields only, in its order, no nulls), if each has its declared type."""
    if not isinstance(value, dict):
        return None
    account = {}
    for key, kind in fields.items():
        item = value.get(key)
        if item is None:
            continue
        if not isinstance(item, kind) or (kind is not bool and isinstance(item, bool)):
            return None
        account[key] = item
    return account


def outgoing_json(
    address: Mapping[str, Any], activity: Mapping[str, Any], *, reply: bool
) -> dict[str, Any]:
    """The JSON botbuilder sends for a rendered activity (the fields ``to_activity`` keeps):
    as a reply (``TurnContext.send_activity``: a type, ``inputHint``, ``replyToId``), or as a
    new message in the conversation (``post_activity(reply=False)``: no ``replyToId``)."""
    fields: dict[str, Any] = {
        key: value for key, value in address.items() if reply or key != "replyToId"
    }
    for key in ("type", "text", "textFormat", "summary"):
        if activity.get(key) is not None:
            fields[key] = activity[key]
    attachments = [
        {key: each[key] for key in ("contentType", "content") if each.get(key) is not None}
        for each in activity.get("attachments") or []
    ]
    if attachments:
        fields["attachments"] = attachments
    if reply:
        fields["type"] = fields.get("type") or ActivityTypes.message
        fields["inputHint"] = InputHints.accepting_input
    return {key: fields[key] for key in sorted(fields, key=_FIELD_ORDER.__getitem__)}


def _connector_client(context: TurnContext) -> ConnectorClient:
    client = context.turn_state.get(context.adapter.BOT_CONNECTOR_CLIENT_KEY)
    if client is None:
        raise SendFailed("no Bot Connector client for this conversation")
    return client


def _connector_error(error: HttpOperationError) -> tuple[int, str, float | None]:
    """Status, a short detail and the Retry-After wait of a refused Bot Connector call."""
    response = error.response
    status = int(getattr(response, "status_code", 0) or 0)
    headers = getattr(response, "headers", None) or {}
    detail = ""
    with contextlib.suppress(Exception):
        detail = response.text()[:ERROR_BODY_CHARS]
    return status, detail, retry_after(headers.get("Retry-After"))


__all__ = ["Sender", "outgoing_json", "post_activity", "reply_address", "to_activity"]
