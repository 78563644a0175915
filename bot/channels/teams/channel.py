"""The Teams channel of one running app (:class:`TeamsChannel`): the parts built when the app
starts and wired together (our authentication, botbuilder's ``CloudAdapter``, the sender, the
admins known, the ticket notifier), and the small public surface a turn works with: whether an
activity was seen before, the files of a message, where a conversation lives.

Its own room because it holds what outlives one turn (the app's aiohttp session, the caches);
the endpoint builds it at start (``endpoint.py``), each turn (``turn.py``) reads from it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
from botbuilder.integration.aiohttp import CloudAdapter

from bot.channels.teams.activities import file_links, reference_of
from bot.channels.teams.auth import Authentication
from bot.channels.teams.cards import Labels
from bot.channels.teams.late import TeamsLateReplies
from bot.channels.teams.options import TeamsOptions
from bot.channels.teams.rosters import Admins
from bot.channels.teams.sending import Sender
from bot.channels.teams.tickets import TeamsTicketNotifier
from bot.config import Settings
from bot.hosts import AllowedHosts
from bot.metrics import Metrics
from bot.outbound import DownloadFailed, DownloadProblem, download
from bot.runtime import Runtime
from bot.turns import conversation_key
from dialogs.messages import Attachment, Message, Platform
from dialogs.replies import Reply, Text

log = logging.getLogger("bot.channels.teams")

_REMEMBERED_CONVERSATIONS: Final = 10_000


class TeamsChannel:
    """The Teams endpoint of one running app: botbuilder's CloudAdapter with our authentication
    and cached clients, the sender (retries, proactive messages), the tickets' notifier, and
    what a turn asks of the channel (redeliveries, files, conversation references)."""

    def __init__(
        self,
        settings: Settings,
        options: TeamsOptions,
        runtime: Runtime,
        metrics: Metrics,
        session: aiohttp.ClientSession,
    ) -> None:
        self.settings = settings
        self.options = options
        self.runtime = runtime
        self.metrics = metrics
        self.session = session
        self.local = not settings.teams_credentials
        self.labels = Labels.of(runtime.knowledge.conversation)
        self.file_hosts = AllowedHosts(settings.teams_attachment_hosts)
        auth = Authentication(settings, options, session)
        self.auth = auth  # the endpoint checks the header before it reads the body
        self.adapter = CloudAdapter(auth)
        self.sender = Sender(
            self.adapter,
            auth.tokens,
            options,
            metrics,
            self.labels,
            app_id=settings.microsoft_app_id or "",
        )
        self.admins = Admins(self.sender, runtime)
        self.tickets = TeamsTicketNotifier(self.sender, runtime, self.admins)
        self.late = TeamsLateReplies(self.sender, runtime)
        self._referenced: OrderedDict[str, None] = OrderedDict()

    async def seen_before(self, activity: Mapping[str, Any]) -> bool:
        """True for a second delivery of the same activity (the Bot Framework retries); asked
        before any work, so that a redelivery downloads nothing."""
        activity_id = activity.get("id")
        if not activity_id:
            return False
        platform = str(activity.get("channelId") or Platform.TEAMS)
        event = f"{platform}:{activity['conversation']['id']}:{activity_id}"
        if await self.runtime.store.seen.first_time_seen(event):
            return False
        log.info("activity delivered twice; answered once", extra={"channel": platform})
        return True

    async def read_files(
        self, activity: Mapping[str, Any], notices: list[Reply]
    ) -> tuple[Attachment, ...]:
        """Download the message's files (capped in size, from TEAMS_ATTACHMENT_HOSTS only: the
        URLs are the sender's to write); a file not read becomes a notice."""
        files = []
        for name, url, content_type in file_links(activity):
            got = await download(
                self.session,
                url,
                allowed=self.file_hosts,
                max_bytes=self.settings.file_max_bytes,
                timeout_seconds=self.options.download_timeout_seconds,
            )
            if isinstance(got, DownloadFailed):
                self.metrics.errors.labels(Platform.TEAMS, "download").inc()
                log.warning(
                    "file not read",
                    extra={"channel": Platform.TEAMS, "reason": got.problem, "detail": got.detail},
                )
                notices.append(Text(self._file_refusal(got, name)))
                continue
            files.append(Attachment(name, got.content, content_type))
        return tuple(files)

    def _file_refusal(self, failure: DownloadFailed, name: str) -> str:
        texts = self.runtime.knowledge.conversation
        if failure.problem is DownloadProblem.TOO_LARGE:
            limit = _megabytes(self.settings.file_max_bytes)
            return texts.text("file_too_large", name=name, limit=limit)
        return texts.text("file_download_failed", name=name)

    async def remember(self, activity: Mapping[str, Any], *, force: bool) -> None:
        """Keep where this conversation lives, for proactive messages (a ticket's news, a late
        reply): once per process, and again when it matters (an install, a ticket)."""
        key = self.conversation_key(activity)
        if not force and key in self._referenced:
            return
        await self.runtime.store.conversations.save_reference(key, reference_of(activity))
        self._referenced[key] = None
        self._referenced.move_to_end(key)
        while len(self._referenced) > _REMEMBERED_CONVERSATIONS:
            self._referenced.popitem(last=False)

    @staticmethod
    def conversation_key(activity: Mapping[str, Any]) -> str:
        """The key the activity's conversation is kept by (its state, its reference, its late
        replies' place in the outbox)."""
        channel = str(activity.get("channelId") or Platform.TEAMS)
        return conversation_key(
            Message(platform=channel, conversation_id=str(activity["conversation"]["id"]))
        )


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


__all__ = ["TeamsChannel"]
