"""Matching what people type to the choices offered: by number, label, synonym, a phrase inside a
sentence, or with a small typo. Standard library only (difflib), like the rest of ``dialogs/``."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache


@dataclass(frozen=True)
class Option:
    """A choice with every way of naming it: whole answers (synonyms) and phrases in sentences."""

    value: str
    label: str
    synonyms: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()

    def answers(self) -> tuple[str, ...]:
        """Everything that, typed alone, picks this option."""
        return (self.value.replace("_", " "), self.label, *self.synonyms)


_NUMBER = re.compile(r"^(?:#|no\.?|number|option|choice)?\s*(\d{1,2})\s*[.)]?$")
_FILLER = re.compile(
    r"\b(?:it'?s|it\s+is|its|this\s+is|that'?s|the|a|an|i\s+use|we\s+use|using|use|please|pls"
    r"|i\s+think|probably|definitely|maybe|ok|okay|thanks|thank\s+you|one|i'?d\s+like|i\s+want"
    r"|go\s+with|let'?s|option)\b"
)
_NOT_WORDS = re.compile(r"[^\w'@.+-]+")
_LOOSE_MARKS = re.compile(r"(?<!\w)[.'-]+|[.'-]+(?!\w)")
_FUZZY_MIN_RATIO = 0.84
_FUZZY_MIN_LENGTH = 4


_CACHED_MAX_CHARS = 16_384  # a pasted bounce; a longer text is normalised each time, not kept


def normalise(text: str) -> str:
    """Lower case, plain apostrophes, punctuation as spaces, single spaces."""
    if len(text) <= _CACHED_MAX_CHARS:
        return _normalised(text)  # one turn matches its text against several questions' words
    return _normalise(text)


@lru_cache(maxsize=64)
def _normalised(text: str) -> str:
    return _normalise(text)


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().replace("’", "'").replace("`", "'")
    text = _NOT_WORDS.sub(" ", text)
    text = _LOOSE_MARKS.sub(" ", text)
    return " ".join(text.split())


def core(text: str) -> str:
    """The words of an answer without the filler around them ("ok the safer one" -> "safer")."""
    return " ".join(_FILLER.sub(" ", normalise(text)).split())


def is_number(text: str) -> bool:
    """Whether the answer is a choice's number ("2", "#2", "option 2")."""
    return _NUMBER.match(normalise(text)) is not None


def match_exact(text: str, options: Sequence[Option]) -> str | None:
    """The option ``text`` names exactly (by number, value, label or synonym), or None."""
    said = normalise(text)
    if not said or not options:
        return None
    number = _NUMBER.match(said)
    if number:
        index = int(number.group(1)) - 1
        return options[index].value if 0 <= index < len(options) else None
    core = " ".join(_FILLER.sub(" ", said).split())
    for candidate in (said, core):
        exact = {o.value for o in options if candidate in _phrases(o.answers())}
        if len(exact) == 1:
            return exact.pop()
    return None


def match_answer(text: str, options: Sequence[Option]) -> str | None:
    """The value of the option ``text`` picks, or None when it picks none (or several)."""
    exact = match_exact(text, options)
    if exact is not None or is_number(text):
        return exact
    said = normalise(text)
    if not said or not options:
        return None
    core = " ".join(_FILLER.sub(" ", said).split())
    # A typo in the whole answer ("shraed mailbox") before a word inside it ("mailbox").
    whole = _fuzzy(core, options, whole_only=True)
    if whole is not None:
        return whole
    contained = _mentioned(said, options, use_answers=True)
    if contained:
        return contained.pop() if len(contained) == 1 else None  # two answers: ask again
    return _fuzzy(core, options)


def find_mention(text: str, options: Sequence[Option], *, use_answers: bool = False) -> str | None:
    """The option named inside a sentence, longest phrase first; None if none or two disagree."""
    values = _mentioned(text, options, use_answers=use_answers)
    return values.pop() if len(values) == 1 else None


def _mentioned(text: str, options: Sequence[Option], *, use_answers: bool) -> set[str]:
    """Every option named inside the text; a phrase inside a longer one does not count."""
    said = f" {normalise(text)} "
    spans: list[tuple[int, int, str]] = []
    for option in options:
        phrases = option.answers() if use_answers else option.mentions
        for phrase in _phrases(phrases):
            start = said.find(f" {phrase} ")
            while start >= 0:
                spans.append((start, start + len(phrase) + 1, option.value))
                start = said.find(f" {phrase} ", start + 1)
    # Longest first; a span inside a longer one ("mailbox" in "shared mailbox") does not count.
    spans.sort(key=lambda span: span[0] - span[1])
    kept: list[tuple[int, int, str]] = []
    for span in spans:
        if not any(span[0] >= k[0] and span[1] <= k[1] for k in kept):
            kept.append(span)
    return {value for _, _, value in kept}


@lru_cache(maxsize=4096)
def _phrases(phrases: tuple[str, ...]) -> frozenset[str]:
    """The phrases normalised: the options' own words, from the knowledge base, so a few
    thousand at most, read on every answer of every turn."""
    return frozenset(p for p in (normalise(phrase) for phrase in phrases) if p)


def _fuzzy(said: str, options: Sequence[Option], *, whole_only: bool = False) -> str | None:
    """A small typo: the whole answer, or a run of its words, close to one option's phrase."""
    words = said.split()
    if not words:
        return None
    best: dict[str, float] = {}
    for option in options:
        for phrase in _phrases(option.answers()):
            if len(phrase) < _FUZZY_MIN_LENGTH:
                continue
            size = len(phrase.split())
            windows = (
                {said}
                if whole_only
                else {" ".join(words[i : i + size]) for i in range(max(1, len(words) - size + 1))}
            )
            score = max(SequenceMatcher(None, w, phrase).ratio() for w in windows)
            best[option.value] = max(best.get(option.value, 0.0), score)
    ranked = sorted(best.items(), key=lambda item: item[1], reverse=True)
    if not ranked or ranked[0][1] < _FUZZY_MIN_RATIO:
        return None
    if len(ranked) > 1 and ranked[1][1] >= ranked[0][1] - 0.02:
        return None  # two options as close as each other: ask again rather than guess
    return ranked[0][0]
