"""The Adaptive Card pieces and Teams' limits both card modules draw with: text blocks, lines
kept as lines, shortened texts, an activity's size as Teams counts it.

A room of its own so that the replies' cards (``cards.py``) and the ticket card
(``ticket_cards.py``) share one way of writing a TextBlock and one size limit, without either
reaching into the other.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

CARD_CONTENT_TYPE: Final = "application/vnd.microsoft.card.adaptive"
CARD_VERSION: Final = "1.5"
# Teams refuses a message over about 28 KB; the channel adds ids and addresses to what this makes.
MAX_ACTIVITY_BYTES: Final = 26_000
SUMMARY_CHARS: Final = 200
FALLBACK_CHARS: Final = 3_000

Json = dict[str, Any]
_PARAGRAPHS = re.compile(r"\n+")


def activity_size(activity: Json) -> int:
    """The activity's size as Teams counts it: bytes of its JSON."""
    return len(json.dumps(activity, ensure_ascii=False, separators=(",", ":")).encode())


def text_block(
    text: str,
    *,
    size: str | None = None,
    weight: str | None = None,
    subtle: bool = False,
    separator: bool = False,
) -> Json:
    """A TextBlock that wraps, with the given look."""
    # Teams folds a single line break; a blank line keeps it.
    block: Json = {"type": "TextBlock", "text": _PARAGRAPHS.sub("\n\n", text), "wrap": True}
    if size:
        block["size"] = size
    if weight:
        block["weight"] = weight
    if subtle:
        block["isSubtle"] = True
    if separator:
        block["separator"] = True
        block["spacing"] = "Medium"
    return block


def line_blocks(text: str, *, monospace: bool = False) -> list[Json]:
    """Text whose line breaks matter (a note to copy, code): one TextBlock per line, since a
    TextBlock reads markdown and Teams folds single line breaks."""
    blocks: list[Json] = []
    gap = False
    for line in text.split("\n"):
        if not line.strip():
            gap = True
            continue
        block: Json = {"type": "TextBlock", "text": line, "wrap": True}
        block["spacing"] = "Medium" if gap and blocks else "None"
        if monospace:
            block["fontType"] = "Monospace"
        blocks.append(block)
        gap = False
    return blocks


def shorten(text: str, limit: int) -> str:
    """The text, cut to ``limit`` characters with an ellipsis if it is longer."""
    limit = max(limit, 1)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


__all__ = [
    "CARD_CONTENT_TYPE",
    "CARD_VERSION",
    "FALLBACK_CHARS",
    "MAX_ACTIVITY_BYTES",
    "SUMMARY_CHARS",
    "Json",
    "activity_size",
    "line_blocks",
    "shorten",
    "text_block",
]
