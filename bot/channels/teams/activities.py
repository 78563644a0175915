"""Reading a Teams activity (the JSON the Bot Framework posts) into what the bot works with: a
card click's value, mentions of the bot, readable text from Teams' HTML, the files' links, the
conversation reference, who acted, and the neutral :class:`~dialogs.messages.Message`.

Pure functions on payload dicts, apart from any HTTP or botbuilder: the turn and the tickets'
card actions read activities with them, and ``tests/test_teams_activities.py`` tests them on the
recorded payloads directly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from bot.tickets import Actor
from dialogs.messages import Attachment, Message, Platform
from knowledge.ndr import html_to_text

FILE_DOWNLOAD_INFO: Final = "application/vnd.microsoft.teams.file.download.info"
#: The conversation types where the bot hears everything and answers only when addressed.
GROUP_CONVERSATIONS: Final = frozenset({"channel", "groupChat"})
# Attachments other clients (the Emulator) send by URL, read when their name says it is a bounce.
_READABLE_FILE = re.compile(r"\.(?:eml|txt|html?|mht)$", re.IGNORECASE)
_HTML = re.compile(
    r"</?(?:p|div|br|span|at|b|i|u|strong|em|a|ol|ul|li|table|tr|td|th|pre|code|blockquote"
    r"|h[1-6]|img|hr|font)(?:\s[^<>@]{0,2048})?/?>",
    re.IGNORECASE,
)


def button_value(value: Any) -> dict[str, Any] | None:
    """A card click's data, without the keys Teams adds."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict):
        return None
    clicked = {key: item for key, item in value.items() if key != "msteams"}
    return clicked or None


def in_group(activity: Mapping[str, Any]) -> bool:
    """Whether the activity comes from a channel or a group chat (not a personal chat)."""
    return activity["conversation"].get("conversationType") in GROUP_CONVERSATIONS


def mentions_bot(activity: Mapping[str, Any]) -> bool:
    """Whether the activity @mentions the bot."""
    return bool(bot_mentions(activity))


def bot_mentions(activity: Mapping[str, Any]) -> list[str]:
    """The texts (``<at>Name</at>``) of the mentions of the bot in this activity."""
    bot_id = (activity.get("recipient") or {}).get("id")
    found = []
    for entity in activity.get("entities") or []:
        if not isinstance(entity, dict) or entity.get("type") != "mention":
            continue
        mentioned = entity.get("mentioned")
        if isinstance(mentioned, dict) and bot_id and mentioned.get("id") == bot_id:
            found.append(str(entity.get("text") or ""))
    return found


def adds_bot(activity: Mapping[str, Any]) -> bool:
    """Whether a conversationUpdate adds the bot itself (an install, the bot added to a team)."""
    bot_id = (activity.get("recipient") or {}).get("id")
    added = activity.get("membersAdded") or []
    return any(isinstance(m, dict) and m.get("id") == bot_id for m in added)


def readable_text(activity: Mapping[str, Any]) -> str:
    """The message's text: the bot's @mention taken out, Teams' HTML turned into text."""
    text = str(activity.get("text") or "")
    for mention in bot_mentions(activity):
        if mention:
            text = text.replace(mention, " ")
    if not text.strip():
        for attachment in activity.get("attachments") or []:
            if isinstance(attachment, dict) and attachment.get("contentType") == "text/html":
                text = str(attachment.get("content") or "")
                break
    if "<" in text and _HTML.search(text):
        text = html_to_text(re.sub(r"<at\b[^<>]*>(.*?)</at>", r"\1", text, flags=re.I | re.S))
        text = re.sub(r"[ \t\u00a0]+\n", "\n", text.replace("\u00a0", " "))
    return text.strip()


def has_files(activity: Mapping[str, Any]) -> bool:
    """Whether files came with the message (to download before the turn)."""
    return any(True for _ in file_links(activity))


def file_links(activity: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(name, download URL, content type) of the files sent with the message."""
    links = []
    for attachment in activity.get("attachments") or []:
        if not isinstance(attachment, dict):
            continue
        name = str(attachment.get("name") or "file")
        content = attachment.get("content")
        if attachment.get("contentType") == FILE_DOWNLOAD_INFO and isinstance(content, dict):
            url = content.get("downloadUrl")
            file_type = str(content.get("fileType") or "")
            kind = "message/rfc822" if file_type.lower() == "eml" else "application/octet-stream"
        else:
            url = attachment.get("contentUrl")
            kind = str(attachment.get("contentType") or "application/octet-stream")
            if not _READABLE_FILE.search(name):
                continue
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            links.append((name, url, kind))
    return links


def message_of(
    activity: Mapping[str, Any], *, value: Any, files: tuple[Attachment, ...] = ()
) -> Message:
    """The activity as the dialogs see it: its readable text, the files (downloaded by the
    caller), who sent it and where, and ``value`` (a message's value, or a card action's data)
    read as a button's data."""
    user = activity["from"]
    return Message(
        text=readable_text(activity),
        files=files,
        user_id=str(user.get("aadObjectId") or user["id"]),
        user_name=str(user.get("name") or ""),
        conversation_id=str(activity["conversation"]["id"]),
        platform=channel_of(activity),
        value=button_value(value),
        tenant=tenant_of(activity),
        raw=activity,
    )


def channel_of(activity: Mapping[str, Any]) -> str:
    """The Bot Framework channel the activity came on (``msteams``, ``webchat``, ...): the
    Bot Connector sets it, the client does not."""
    return str(activity.get("channelId") or Platform.TEAMS)


def from_teams(activity: Mapping[str, Any]) -> bool:
    """Whether the activity came from Teams itself: only there does Teams vouch for who sent
    it (in Web Chat and Direct Line the client picks ``from.id``)."""
    return channel_of(activity) == Platform.TEAMS


def tenant_of(activity: Mapping[str, Any]) -> str:
    """The Entra ID tenant the activity came from (``channelData.tenant.id``, else
    ``conversation.tenantId``), lower-case; "" when it says none, or two that differ."""
    data = activity.get("channelData")
    tenant = data.get("tenant") if isinstance(data, dict) else None
    said = {
        str(value).strip().lower()
        for value in (
            tenant.get("id") if isinstance(tenant, dict) else None,
            (activity.get("conversation") or {}).get("tenantId"),
        )
        if isinstance(value, str) and value.strip()
    }
    return said.pop() if len(said) == 1 else ""


def actor_of(activity: Mapping[str, Any]) -> Actor:
    """Who sent the activity, as the tickets know people: (the channel it came on, its
    tenant, the AAD object id when Teams says, else ``from.id``). An activity from another
    channel than Teams is an actor of that channel, never of ``msteams``."""
    user = activity["from"]
    user_id = str(user.get("aadObjectId") or user["id"])
    name = str(user.get("name") or user_id)
    return Actor(channel_of(activity), user_id, name, tenant=tenant_of(activity))


def base_conversation_id(conversation: Mapping[str, Any]) -> str:
    """A channel's conversation id without the thread's ``;messageid=``."""
    return str(conversation.get("id") or "").split(";", 1)[0]


def reference_of(activity: Mapping[str, Any]) -> dict[str, Any]:
    """The conversation reference of an activity, as the Bot Framework writes one."""
    return {
        "activityId": activity.get("id"),
        "user": activity.get("from"),
        "bot": activity.get("recipient"),
        "conversation": activity.get("conversation"),
        "channelId": activity.get("channelId"),
        "serviceUrl": activity.get("serviceUrl"),
        "locale": activity.get("locale"),
    }


__all__ = [
    "FILE_DOWNLOAD_INFO",
    "GROUP_CONVERSATIONS",
    "actor_of",
    "adds_bot",
    "base_conversation_id",
    "bot_mentions",
    "button_value",
    "channel_of",
    "file_links",
    "from_teams",
    "has_files",
    "in_group",
    "mentions_bot",
    "message_of",
    "readable_text",
    "reference_of",
    "tenant_of",
]
