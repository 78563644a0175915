"""What Exchange's admin API answered, read into one line a person can read and the problem it
stands for. Pure functions: the client (``client.py``) hands over the status and the body.

The API's errors come in three shapes: OData JSON (``{"error": {"message", "details":
[{"message": "Type|Category|Text"}]}}``, the details carrying the cmdlet's own error record),
plain text, and a gateway's HTML page.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any, Final, Literal

Problem = Literal["unknown", "denied", "unavailable"]

#: The most of Exchange's words a line keeps (an HTML page or a stack trace can be pages long).
MAX_DETAIL: Final = 300
#: Throttling said in words: the admin API answers this (with 429, or even 500) when a tenant
#: has too many cmdlets in flight; it passes like any 429.
CONCURRENCY_TEXT: Final = "maximum number of concurrent requests per tenant"
_NOT_FOUND: Final = re.compile(
    r"ManagementObjectNotFoundException|couldn't be found|could not be found", re.IGNORECASE
)
_DENIED_TYPES: Final = re.compile(
    r"UnauthorizedAccessException|AccessDenied|insufficient|not authorized", re.IGNORECASE
)
_TAGS: Final = re.compile(r"<[^>]+>")
_HIDDEN_PARTS: Final = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TITLE: Final = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_SPACE: Final = re.compile(r"\s+")


def is_throttled(status: int, text: str) -> bool:
    """Whether the answer asks us to come back later: 429, 503, or an error in the concurrency
    words (in a success they are a recipient's, not Exchange's)."""
    return status in (429, 503) or (status >= 400 and CONCURRENCY_TEXT in text.lower())


def problem_of(status: int, detail: str) -> Problem:
    """The problem an error stands for: the recipient (or a sender) not found; the app refused
    (401, 403, an RBAC role missing); else Exchange did not do it (an outage, a bad answer)."""
    if _NOT_FOUND.search(detail):
        return "unknown"
    if status in (401, 403) or _DENIED_TYPES.search(detail):
        return "denied"
    return "unavailable"


def error_line(status: int, text: str, content_type: str = "") -> str:
    """One line for an error answer: the cmdlet's own words when the body carries them (the
    "Text" of a detail's "Type|Category|Text"), the OData message, the page's title or text,
    or the status when the body says nothing."""
    body = text.strip()
    line = ""
    if body.startswith(("{", "[")):
        line = _odata_error(body)
    elif "html" in content_type or body.lower().startswith(("<!doctype", "<html")):
        line = _html_text(body)
    elif body:
        line = body
    line = _SPACE.sub(" ", line).strip()
    if not line:
        line = f"HTTP {status}"
    return line if len(line) <= MAX_DETAIL else line[: MAX_DETAIL - 1] + "…"


def _odata_error(body: str) -> str:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return body
    for detail in error.get("details") or ():
        message = detail.get("message") if isinstance(detail, dict) else None
        if isinstance(message, str) and message.strip():
            return _cmdlet_text(message)
    message = error.get("message")
    if isinstance(message, str) and message.strip():
        return _cmdlet_text(message)
    return str(error.get("code") or "")


def _cmdlet_text(message: str) -> str:
    """The "Text" of "Type|Category|Text" (the error record's words, which may hold "|"
    themselves), keeping the exception's short name when it says what happened."""
    parts = message.split("|", 2)
    if len(parts) < 3:
        return message
    kind, _category, words = parts
    short = kind.rsplit(".", 1)[-1]
    if _NOT_FOUND.search(short) and not _NOT_FOUND.search(words):
        return f"{words.strip()} ({short})"
    return words.strip()


def _html_text(body: str) -> str:
    title = _TITLE.search(body)
    if title and title.group(1).strip():
        return html.unescape(title.group(1))
    return html.unescape(_TAGS.sub(" ", _HIDDEN_PARTS.sub(" ", body)))


__all__ = ["CONCURRENCY_TEXT", "MAX_DETAIL", "Problem", "error_line", "is_throttled", "problem_of"]
