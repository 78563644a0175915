"""Codes in a message that is not a bounce: the ones it asks about, and the ones it only lists.

"How do I fix 5.7.12?" asks about a code; a changelog ("5.7.12 (2024-03-01)"), a version bump or
a documentation page listing 5.7.1, 5.7.12 and 5.7.124 does not. A code counts when its line
speaks of a problem, the message is short, or the knowledge base knows the code.
"""

from __future__ import annotations

import re
from bisect import bisect_left

from knowledge.kb import KnowledgeBase, parse_status
from knowledge.ndr.scan import dedupe
from knowledge.ndr.status import StatusHit

SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


# A code named in a message is a code asked about when its line speaks of a problem, or when the
# message is short ("5.7.12?"), or when it is a code the knowledge base knows; a code in a
# changelog heading or a version list is not.
_TROUBLE_WORDS = re.compile(
    r"\?|\b(?:how|what|why|fix|solve|resolve|mean|means|meaning|error|errors|code|ndr|bounce[sd]?"
    r"|bouncing|getting|get|got|gets|receive|received|receiving|help|explain|issue|problem|fail"
    r"|failed|failing|rejected|undeliverable|status|wie|was|warum|fehler|beheben|comment|pourquoi"
    r"|erreur|corriger|cómo|como|qué|solucion\w*|come|cosa|errore|risolv\w*|hoe|wat|fout|oplossen"
    r"|erro|corrigir|resolver)\b",
    re.IGNORECASE,
)
_SHORT_MESSAGE_WORDS = 14
# A number that is a version, not a code: followed by a date ("5.7.12 (2024-03-01)", a release
# heading) or a pre-release tag, or after "bump ... to", "depends on", "requires".
_DATE = (
    r"(?:(?:19|20)\d\d[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.](?:19|20)\d\d"
    r"|(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?\s+\d{1,2}\b)"
)
_VERSION_AFTER = re.compile(
    r"^\s*(?:[(\[]|[-–—:]\s|released\b)\s*(?:on\s+)?" + _DATE + r"|^\s+(?:19|20)\d\d-\d\d-\d\d\b"
    r"|^[-+~.](?:rc|beta|alpha|dev|snapshot|final|lts|ga)\d*\b",
    re.IGNORECASE,
)
_VERSION_BEFORE = re.compile(
    r"\b(?:bump(?:s|ed)?|upgrad\w*|downgrad\w*|updat\w*|migrat\w*|pinn?(?:ed)?)\b[^\n,;]{0,40}?"
    r"\b(?:to|from)\s+(?:v(?:ersion)?\s*)?$"
    r"|\b(?:dependenc(?:y|ies)|depends\s+on|requires?|install(?:s|ed|ing)?|version)\s*[:>=~^]*\s*$",
    re.IGNORECASE,
)
_VERSION_LOOKBACK = 60
# What may stand before a code that opens a list item or a table row: bullets, numbering, pipes,
# tabs, markup, an SMTP reply code ("- 5.7.12: ...", "| 550 5.7.12 | ...", "3. 5.7.133").
_ITEM_PREFIX = re.compile(r"[\s\-*+•·|#>`_\[\](){}\d.:]*")
_LIST_MIN_CODES = 3  # a sentence or a list of lines naming this many codes lists them


def is_version(hit: StatusHit, text: str) -> bool:
    """Whether the number is a version ("### 5.7.12 (2024-03-01)", "bump dependency to 5.7.124")."""
    around = text[hit.position : hit.position + _VERSION_LOOKBACK]
    at = around.find(hit.status)
    after = around[at + len(hit.status) :] if at >= 0 else ""
    before = text[max(hit.line_start, hit.position - _VERSION_LOOKBACK) : hit.position]
    return bool(_VERSION_AFTER.match(after) or _VERSION_BEFORE.search(before))


def _knows(knowledge: KnowledgeBase, status: str) -> bool:
    parsed = parse_status(status)
    return parsed is not None and (
        any(parse_status(entry.status) == parsed for entry in knowledge.family)
        or any(lookalike.covers(parsed) for lookalike in knowledge.lookalikes)
    )


def mentions(
    hits: list[StatusHit], text: str, knowledge: KnowledgeBase
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The codes a message asks about, and the codes it merely lists.

    A text that lists codes (three or more in one sentence that is not a question, or three or
    more opening the items of a bullet list or the rows of a table) is documentation, not a
    question about any of them: its codes are listed and none is mentioned.
    """
    short = len(text.split(None, _SHORT_MESSAGE_WORDS + 1)) <= _SHORT_MESSAGE_WORDS
    kept: list[StatusHit] = []
    troubled: dict[int, bool] = {}  # per line: one search, however many codes it holds
    known: dict[str, bool] = {}
    for hit in hits:
        if is_version(hit, text):
            continue
        if not (hit.strong or short):
            if hit.status not in known:
                known[hit.status] = _knows(knowledge, hit.status)
            if not known[hit.status]:
                if hit.line_start not in troubled:
                    troubled[hit.line_start] = _TROUBLE_WORDS.search(hit.line) is not None
                if not troubled[hit.line_start]:
                    continue
        kept.append(hit)
    listed = listed_codes(kept, text)
    if listed:
        return (), listed
    return dedupe(hit.status for hit in kept), ()


def listed_codes(hits: list[StatusHit], text: str) -> tuple[str, ...]:
    """The codes a text lists (see ``mentions``), in order; empty when it lists none."""
    sentences: dict[tuple[int, int], set[str]] = {}
    ends: dict[int, tuple[list[int], list[str]]] = {}  # per line: its sentences' ends and marks
    items: set[str] = set()
    for hit in hits:
        if hit.line_start not in ends:
            line_end = text.find("\n", hit.line_start)
            line = text[hit.line_start : line_end if line_end >= 0 else len(text)]
            found = [
                (hit.line_start + m.start(), m.group(0)[0]) for m in SENTENCE_END.finditer(line)
            ]
            ends[hit.line_start] = ([end for end, _ in found], [mark for _, mark in found])
        positions, marks = ends[hit.line_start]
        index = bisect_left(positions, hit.position + len(hit.status) + 1)
        end, mark = (positions[index], marks[index]) if index < len(positions) else (-1, ".")
        if mark != "?":
            sentences.setdefault((hit.line_start, end), set()).add(hit.status)
        prefix = text[hit.line_start : hit.position] if hit.position - hit.line_start < 80 else "x"
        if "|" in prefix or "\t" in prefix or _ITEM_PREFIX.fullmatch(prefix):
            items.add(hit.status)
    chosen: set[str] = set()
    for codes in sentences.values():
        if len(codes) >= _LIST_MIN_CODES:
            chosen |= codes
    if len(items) >= _LIST_MIN_CODES:
        chosen |= items
    return dedupe(hit.status for hit in hits if hit.status in chosen)
