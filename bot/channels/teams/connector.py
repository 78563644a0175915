"""The Bot Connector clients the adapter sends through: one msrest ``ConnectorClient`` per
service URL and audience, kept (:class:`ConnectorFactory`), each sending over the app's one
aiohttp session (:class:`SessionSender`) with the bot's cached token; and beside each, an
:class:`ActivityPoster` that sends a turn's replies, already JSON, the way the client's
``reply_to_activity`` and ``send_to_conversation`` do (same URL, headers and body), without
msrest building, copying and serialising an ``Activity`` model for each one.

Its own room because it is msrest's plumbing, not Bot Framework policy: the authentication hands
this factory to the adapter, and the sender reads :class:`ConnectorRefused` to retry. In local
mode the transport sends to loopback only, whatever URL a reply or a saved reference names: the
endpoint refuses such activities first, this holds for proactive messages too.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Final, NamedTuple
from urllib.parse import quote, urljoin

import aiohttp
from botframework.connector.aio import ConnectorClient
from botframework.connector.aio.operations_async import ConversationsOperations
from botframework.connector.auth import ConnectorFactory as BotbuilderConnectorFactory
from botframework.connector.auth import MicrosoftAppCredentials
from msrest.pipeline import Response
from msrest.pipeline.async_abc import AsyncHTTPSender, AsyncPipeline
from msrest.pipeline.universal import RawDeserializer
from msrest.universal_http import ClientRequest
from msrest.universal_http.async_abc import AsyncClientResponse

from bot.channels.teams.failures import SendFailed
from bot.channels.teams.options import TeamsOptions
from bot.channels.teams.tokens import Answer, BotTokenPolicy, BotTokens, Call
from bot.outbound import is_loopback_url, origin_of, retry_after

_JSON: Final = "application/json"
_CONNECTOR_CLIENTS: Final = 256  # one per service URL and audience; Teams uses a handful
ERROR_BODY_CHARS: Final = 300
_USER_AGENT: Final = "Microsoft-BotFramework/3.1 (BotBuilder Python/4.17)"
_BODY_TYPE: Final = "application/json; charset=utf-8"  # what msrest's operations send
_REPLY_URL: Final[str] = ConversationsOperations.reply_to_activity.metadata["url"]
_SEND_URL: Final[str] = ConversationsOperations.send_to_conversation.metadata["url"]
_TAKEN: Final = (200, 201, 202)  # the statuses msrest's operations accept


class ConnectorFactory(BotbuilderConnectorFactory):  # type: ignore[misc]
    """One ConnectorClient per service URL and audience, kept: each sends over the app's aiohttp
    session with the bot's cached token."""

    def __init__(
        self,
        tokens: BotTokens,
        session: aiohttp.ClientSession,
        options: TeamsOptions,
        *,
        loopback_only: bool = False,
    ) -> None:
        self._tokens = tokens
        self._session = session
        self._options = options
        self._loopback_only = loopback_only
        self._clients: OrderedDict[tuple[str, str | None], ActivityPoster] = OrderedDict()

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        return self.poster(service_url, audience).client

    def poster(self, service_url: str, audience: str | None = None) -> ActivityPoster:
        """The poster of activities to this service URL, for this audience (and its client)."""
        key = (str(service_url or ""), audience)
        poster = self._clients.get(key)
        if poster is None:
            client = ConnectorClient(MicrosoftAppCredentials.empty(), base_url=key[0])
            client.config.add_user_agent(_USER_AGENT)
            # The pipeline AsyncBfPipeline builds, with our token policy and transport. Built
            # here, after the client: msrest links a policy object into each pipeline made
            # with it, and the client makes its default (`requests`) pipeline last.
            transport = SessionSender(
                self._session,
                self._options.request_timeout_seconds,
                loopback_only=self._loopback_only,
            )
            client.config.pipeline = AsyncPipeline(
                [
                    client.config.user_agent_policy,
                    BotTokenPolicy(self._tokens, audience),
                    RawDeserializer(),
                    client.config.http_logger_policy,
                ],
                transport,
            )
            poster = ActivityPoster(client, transport, self._tokens, audience)
            self._clients[key] = poster
            while len(self._clients) > _CONNECTOR_CLIENTS:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(key)
        return poster


class ActivityPoster:
    """Sends activities (plain JSON, addressed) to one service URL as the bot, for one audience:
    the request ``client`` would make for them, without its models."""

    def __init__(
        self,
        client: ConnectorClient,
        transport: SessionSender,
        tokens: BotTokens,
        audience: str | None,
    ) -> None:
        self.client = client
        self._transport = transport
        self._tokens = tokens
        self._audience = audience
        self._user_agent = str(client.config.user_agent)
        self._base_url = str(client.config.base_url)

    async def post(self, conversation_id: str, reply_to_id: str | None, activity: Any) -> None:
        """POST the activity into the conversation: as a reply to ``reply_to_id`` if given, else
        as a new message. Raises ConnectorRefused (any status msrest would not take), SendFailed
        (local mode, not loopback), aiohttp's errors."""
        headers = {"Accept": _JSON, "Content-Type": _BODY_TYPE}
        arguments = {"conversationId": quote(conversation_id, safe="")}
        template = _SEND_URL
        if reply_to_id:
            arguments["activityId"] = quote(reply_to_id, safe="")
            template = _REPLY_URL
            headers["x-ms-conversation-id"] = conversation_id
        # msrest's ServiceClient.format_url, for a template relative to the service URL.
        base = self._base_url.format(**arguments).rstrip("/")
        url = urljoin(base + "/", template.format(**arguments).lstrip("/"))
        headers["User-Agent"] = self._user_agent
        headers.update(await self._tokens.header(self._audience))
        got = await self._transport.exchange("POST", url, json.dumps(activity), headers)
        if got.status not in _TAKEN:
            raise ConnectorRefused(
                got.status,
                got.body[:ERROR_BODY_CHARS].decode(errors="replace"),
                retry_after(got.headers.get("Retry-After")),
            )


class SessionSender(AsyncHTTPSender[ClientRequest, AsyncClientResponse]):
    """msrest's transport over the app's aiohttp session (instead of ``requests`` in a thread)."""

    def __init__(
        self, session: aiohttp.ClientSession, timeout: float, *, loopback_only: bool = False
    ) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._loopback_only = loopback_only

    async def __aenter__(self) -> SessionSender:
        return self

    async def __aexit__(self, *exc_details: object) -> None:
        return None

    async def send(self, request: Call, **config: Any) -> Answer:
        http = request.http_request
        got = await self.exchange(http.method, http.url, http.data, http.headers)
        headers, body = got.headers, got.body
        if not body.strip() or "json" not in got.content_type:
            # Taken, but with no JSON to read (a proxy's empty 201, say): the activity
            # went out, and its id is unknown; msrest would fail on it, and a retry repeat it.
            body, headers["Content-Type"] = b"{}", _JSON
        return Response(request, _ConnectorAnswer(http, got.status, headers, got.reason, body))

    async def exchange(self, method: str, url: str, data: Any, headers: Any) -> Exchanged:
        """One call. Raises ConnectorRefused for an error status, SendFailed for a URL local
        mode does not send to."""
        if self._loopback_only and not is_loopback_url(url):
            # Local mode: nothing vouches for a service URL. 403: as permanent as the Bot
            # Connector's own refusal, so that no retry and no outbox tries it again.
            raise SendFailed(
                f"local mode sends to loopback service URLs only, not {origin_of(url)}",
                status=403,
            )
        async with self._session.request(
            method, url, data=data, headers=headers, timeout=self._timeout
        ) as got:
            body = await got.read()
            if got.status >= 300:
                # Raised here, before msrest reads the body (which fails on a gateway's
                # text/html page): the status and Retry-After are what the retries need.
                raise ConnectorRefused(
                    got.status,
                    body[:ERROR_BODY_CHARS].decode(errors="replace"),
                    retry_after(got.headers.get("Retry-After")),
                )
            return Exchanged(got.status, got.reason, got.content_type, dict(got.headers), body)


class Exchanged(NamedTuple):
    """The Bot Connector's answer to one call."""

    status: int
    reason: str | None
    content_type: str
    headers: dict[str, str]
    body: bytes


class ConnectorRefused(Exception):
    """The Bot Connector answered a call with an error status."""

    def __init__(self, status: int, detail: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


class _ConnectorAnswer(AsyncClientResponse):
    def __init__(
        self,
        request: ClientRequest,
        status: int,
        headers: dict[str, str],
        reason: str | None,
        body: bytes,
    ) -> None:
        super().__init__(request, None)
        self.internal_response = self  # what msrest's errors hand back as `.response`
        self.status_code = status
        self.headers = headers
        self.reason = reason
        self._body = body

    def body(self) -> bytes:
        return self._body

    def raise_for_status(self) -> None:
        return None  # error statuses never get this far: see SessionSender


__all__ = [
    "ERROR_BODY_CHARS",
    "ActivityPoster",
    "ConnectorFactory",
    "ConnectorRefused",
    "SessionSender",
]
