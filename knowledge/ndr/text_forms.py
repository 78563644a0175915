"""The text forms a bounce arrives in, turned into plain lines: HTML, Slack markup, odd spaces.

Teams and Outlook send HTML, Slack its own mrkdwn with ``<mailto:...|label>`` links; both become
plain text with one line per block, and :func:`normalise` takes off what no reader should see
(invisible characters, non-breaking spaces, ``>`` quoting). The patterns that tell HTML and Slack
markup apart are here too, for the reader's format detection.
"""

from __future__ import annotations

import re
import unicodedata
from html import unescape

HTML_TAG = re.compile(
    r"</?(?:html|head|body|div|p|br|table|tbody|thead|tr|td|th|span|font|a|b|i|u|strong|em|ul|ol|li"
    r"|h[1-6]|pre|code|blockquote|hr|meta|img|style|o:p)(?:\s[^<>@]{0,2048})?/?>"
    r"|<!doctype|<!--",
    re.IGNORECASE,
)
_SLACK_LINK = re.compile(r"<(?:mailto:|https?://|[@#!])[^<>|\s]{1,2048}(?:\|[^<>]{0,2048})?>")
# What only Slack writes: labelled links <target|label>, user, channel and special mentions.
SLACK_ONLY = re.compile(
    r"<(?:mailto:|https?://)[^<>|\s]{1,2048}\|[^<>]{0,2048}>|<@[UW][A-Z0-9]{2,20}>"
    r"|<#C[A-Z0-9]{2,20}(?:\|[^<>]{0,200})?>|<!(?:here|channel|everyone|subteam)[^<>]{0,100}>"
)

_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "tr", "li", "ul", "ol", "table", "tbody", "thead", "pre", "blockquote"}
    | {"hr", "title", "h1", "h2", "h3", "h4", "h5", "h6"}
)
_CELL_TAGS = frozenset(("td", "th"))
_SKIP_TAGS = frozenset(("style", "script", "head", "title"))
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:]{0,30})([^<>]{0,4096})>|<!--|<!\w[^<>]{0,4096}>")
_HREF_MAILTO = re.compile(r"""href\s*=\s*["']?mailto:([^"'\s>?]{3,320})""", re.IGNORECASE)


def html_to_text(html: str) -> str:
    """Turn HTML (a Teams message, an Outlook body) into text with one line per block."""
    out: list[str] = []
    position = 0
    skip_until: str | None = None
    pending_mailto: str | None = None
    link_text_start = 0
    for match in _TAG.finditer(html):
        start, end = match.span()
        if start < position:
            continue  # inside a comment already skipped
        if match.group(0) == "<!--":
            if skip_until is None:
                out.append(html[position:start])
            close = html.find("-->", end)
            position = len(html) if close < 0 else close + 3
            continue
        if skip_until is None:
            out.append(html[position:start])
        position = end
        closing, name = match.group(1), (match.group(2) or "").lower()
        if skip_until is not None:
            if closing and name == skip_until:
                skip_until = None
            continue
        if not name:
            continue  # <!DOCTYPE ...>
        if name in _SKIP_TAGS and not closing:
            skip_until = name
        elif name in _BLOCK_TAGS:
            out.append("\n")
        elif name in _CELL_TAGS:
            out.append("\t" if not closing else "")
        elif name == "a" and not closing:
            mailto = _HREF_MAILTO.search(match.group(3) or "")
            pending_mailto = mailto.group(1) if mailto else None
            link_text_start = len(out)
        elif name == "a" and closing and pending_mailto:
            link_text = "".join(out[link_text_start:])
            if pending_mailto.lower() not in unescape(link_text).lower():
                out.append(f" <{pending_mailto}>")
            pending_mailto = None
    if skip_until is None:
        out.append(html[position:])
    return unescape("".join(out))


def _slack_link(match: re.Match[str]) -> str:
    inner = match.group(0)[1:-1]
    target, _, label = inner.partition("|")
    if target.startswith("mailto:"):
        address = target[len("mailto:") :]
        return label if label and "@" in label else address
    if target[:1] in "@#!":
        return label or target
    return label or target


def slack_to_text(text: str) -> str:
    """Undo Slack's message markup: links, mailto links, entities and code fences."""
    text = _SLACK_LINK.sub(_slack_link, text)
    text = text.replace("```", "\n")
    return unescape(text)


_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = dict.fromkeys(map(ord, "\u00a0\u2007\u202f\u2009\u200a\u3000"), " ")
_QUOTE_PREFIX = re.compile(r"^[ \t]{0,8}(?:>[ \t]?){1,32}", re.MULTILINE)
# Whether a line after the first starts with ">" quoting: found from its line break, a literal
# the regex engine scans for fast (a MULTILINE "^" is tried at every position of the text).
_QUOTED_AFTER_BREAK = re.compile(r"\n[ \t]{0,8}>")


def normalise(text: str) -> str:
    """Line endings, invisible characters, odd spaces and ``>`` quoting removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Plain ASCII, the usual paste, holds no invisible or odd space and is already NFC; and
    # without a line that starts with ">" there is no quoting to take off. Each step is skipped
    # when it can change nothing.
    if not text.isascii():
        text = text.translate(_INVISIBLE).translate(_SPACES)
        text = unicodedata.normalize("NFC", text)
    quoted = _QUOTE_PREFIX.match(text) or _QUOTED_AFTER_BREAK.search(text)
    return _QUOTE_PREFIX.sub("", text) if quoted else text
