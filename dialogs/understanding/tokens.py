"""Words as the language layer compares them: lower case, no accents, elisions split off."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# An address or part of one ("sales@", "info@contoso.com"), a domain, or a word.
_TOKEN = re.compile(
    r"(?P<address>[\w.+-]*\w@(?:[\w-]+(?:\.[\w-]+)*)?|@[\w-]+(?:\.[\w-]+)+)"
    r"|(?P<domain>(?:[\w-]+\.)+[a-z]{2,24}(?![\w.]))"
    r"|(?P<word>[^\W_]+(?:'[^\W_]+)*)",
)
# French and Italian elisions ("l'admin", "n'est", "dell'amministratore").
_ELISION = re.compile(r"^(l|d|n|j|m|t|s|c|qu|dell|all|nell|sull|dall|un|quest)'(.+)$")
_APOSTROPHES = str.maketrans({"’": "'", "`": "'", "‘": "'", "´": "'"})


@dataclass(frozen=True)
class Token:
    """One word of a message: ``key`` is how it is compared, ``text`` how it was written."""

    key: str
    text: str
    start: int  # position in the message
    end: int
    kind: str = "word"  # word | address | domain


def fold(text: str) -> str:
    """Lower case, plain apostrophes, accents removed (``Boîte`` -> ``boite``)."""
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES)).casefold()
    return "".join(c for c in text if not unicodedata.combining(c))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A plural's singular, roughly, in every language served ("mailboxes" -> "mailbox")."""
    if len(word) > 4 and word.endswith(("xes", "ches", "shes", "sses")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, positions pointing into the original."""
    folded = fold(text)
    if len(folded) != len(text):  # a character that folds to several: positions by the fold
        text = folded
    tokens: list[Token] = []
    for match in _TOKEN.finditer(folded):
        kind = match.lastgroup or "word"
        word = match.group(0)
        start, end = match.span()
        if kind == "word":
            elided = _ELISION.match(word)
            if elided:
                cut = start + len(elided.group(1)) + 1
                tokens.append(Token(elided.group(1) + "'", text[start:cut], start, cut))
                word, start = elided.group(2), cut
            tokens.append(Token(stem(word.replace("'", "")), text[start:end], start, end))
        else:
            tokens.append(Token(word.strip("."), text[start:end], start, end, kind))
    return tokens


def keys(text: str) -> tuple[str, ...]:
    """The comparison keys of a phrase's words."""
    return tuple(token.key for token in tokenize(text) if token.kind == "word")
