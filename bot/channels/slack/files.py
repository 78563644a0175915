"""The files shared with a Slack message (an ``.eml``, a pasted bounce saved as a file),
downloaded with the bot token into ``Attachment``\\ s, each size-capped.

The download itself is ``bot.outbound.download`` (the cap, the web page refused); what is Slack's
here is where a file's address comes from (the event, else ``files.info``), that the token goes
to Slack's own file servers only (SLACK_FILE_HOSTS and SLACK_API_URL's host, every redirect
checked), and the sentence a person reads when a file cannot be handed on. Its own room because
it is the one part of a turn that fetches before the turn runs.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels.slack.web_api import API_ERRORS, reason
from bot.config import Settings
from bot.hosts import AllowedHosts
from bot.metrics import Metrics
from bot.outbound import Downloaded, DownloadProblem, download, origin_of
from dialogs.messages import Attachment, Platform
from dialogs.replies import Reply, Text
from knowledge.kb import ConversationText

log = logging.getLogger("bot.channels.slack")

_DOWNLOAD_TIMEOUT_SECONDS: Final = 30.0
_MAX_FILES_PER_MESSAGE: Final = 3


class FileRefused(Exception):
    """A file cannot be handed on; ``str()`` is the sentence to show (from conversation.yaml)."""

    def reply(self) -> Reply:
        """The refusal as the reply the person gets instead of a turn."""
        return Text(str(self))  # file_too_large and file_download_failed are whole sentences


class SlackFiles:
    """Downloads of the files shared with a message, through the bot's session and token."""

    def __init__(
        self,
        settings: Settings,
        *,
        session: aiohttp.ClientSession,
        client: AsyncWebClient,
        token: str,
        metrics: Metrics,
        words: ConversationText,
    ) -> None:
        """Fetch on ``session`` with ``token`` (``client`` for files.info), up to the settings'
        ``file_max_bytes`` a file, from SLACK_FILE_HOSTS and the configured API's origin (the
        token goes there anyway)."""
        self._session = session
        self._client = client
        self._token = token
        self._metrics = metrics
        self._words = words
        self._cap = settings.file_max_bytes
        self._hosts = AllowedHosts((*settings.slack_file_hosts, origin_of(settings.slack_api_url)))

    async def download(self, files: Any) -> tuple[Attachment, ...]:
        """The files shared with a message, downloaded with the bot token, each size-capped;
        ``FileRefused`` when one cannot be handed on."""
        if not isinstance(files, list):
            return ()
        found = []
        for shared in files[:_MAX_FILES_PER_MESSAGE]:
            if isinstance(shared, dict):
                found.append(await self._download_one(shared))
        return tuple(found)

    async def _download_one(self, shared: dict[str, Any]) -> Attachment:
        name = str(shared.get("name") or shared.get("title") or "file")
        cap = self._cap
        size = shared.get("size")
        if isinstance(size, int) and size > cap:
            raise self._too_large(name, cap)
        url = shared.get("url_private_download") or shared.get("url_private")
        if not url and shared.get("id"):  # some events carry only the id: ask for the rest
            try:
                info = await self._client.files_info(file=str(shared["id"]))
            except API_ERRORS as error:
                raise self._download_failed(name, error) from None
            url = (info.get("file") or {}).get("url_private_download")
        if not url:
            raise self._download_failed(name, "no download address")
        mimetype = str(shared.get("mimetype") or "application/octet-stream")
        content = await self._fetch(str(url), name, cap, html_expected="html" in mimetype)
        return Attachment(name, content, mimetype)

    async def _fetch(self, url: str, name: str, cap: int, *, html_expected: bool) -> bytes:
        got = await download(
            self._session,
            url,
            allowed=self._hosts,  # the bot token goes to Slack's own file servers only
            max_bytes=cap,
            timeout_seconds=_DOWNLOAD_TIMEOUT_SECONDS,
            headers={"Authorization": f"Bearer {self._token}"},
            refuse_web_page=not html_expected,
        )
        if isinstance(got, Downloaded):
            return got.content
        if got.problem is DownloadProblem.TOO_LARGE:
            raise self._too_large(name, cap)
        if got.problem is DownloadProblem.WEB_PAGE:
            # Slack answers a token without files:read with its sign-in page.
            raise self._download_failed(name, "got a web page: is files:read granted?")
        raise self._download_failed(name, got.detail)

    def _too_large(self, name: str, cap: int) -> FileRefused:
        return FileRefused(self._words.text("file_too_large", name=name, limit=size_text(cap)))

    def _download_failed(self, name: str, why: object) -> FileRefused:
        self._metrics.errors.labels(Platform.SLACK, "file").inc()
        log.error("Slack file download failed", extra={"file": name, "reason": reason(why)})
        return FileRefused(self._words.text("file_download_failed", name=name))


def size_text(count: int) -> str:
    """A number of bytes as people read it: "5 MB", "300 KB", "12 bytes"."""
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):g} MB"
    if count >= 1024:
        return f"{count / 1024:g} KB"
    return f"{count} bytes"
