"""Tells the language of a message: bounce phrases and common words first, a statistical model
(py3langid) for the languages our word lists do not cover."""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

from knowledge.words import lexicon

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
# Addresses, links, host names and codes say nothing about the language around them.
_NOT_WORDS = re.compile(
    r"\S{0,200}@\S{1,300}|\w{2,10}://\S{1,2000}|\w[\w-]{0,62}(?:\.[\w-]{1,63}){1,10}"
)
_APOSTROPHE = re.compile(r"['’]")
_MODEL_MIN_PROBABILITY = 0.9
_MODEL_MAX_CHARS = 20_000
_MARKER_WEIGHT = 4
_MIN_COVERAGE = 0.2  # share of the words the winning word list must account for


@cache
def _model() -> Any:
    # Imported on first use: the model takes about a second to load, and most messages are
    # told apart by the word lists without it.
    import py3langid.langid as langid_module  # noqa: PLC0415

    path = Path(langid_module.__file__).parent / langid_module.MODEL_FILE
    return langid_module.LanguageIdentifier.from_modelpath(path, norm_probs=True)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language, or None when there is no text to tell by."""
    lex = lexicon()
    sample = _NOT_WORDS.sub(" ", text[:_MODEL_MAX_CHARS])
    lowered = sample.lower()
    words = _WORD.findall(lowered)
    if not words:
        return None
    scores: Counter[str] = Counter()
    for marker in lex.marker_pattern.findall(lowered):
        scores[lex.marker_language[marker]] += _MARKER_WEIGHT
    for word, count in Counter(words).items():  # each word once: a bounce repeats its words
        languages = lex.word_languages.get(word)
        if languages is None and ("'" in word or "’" in word):
            # "l'errore" counts as its parts: "l'" and "errore"
            parts = [lex.word_languages.get(p, frozenset()) for p in _APOSTROPHE.split(word)]
            languages = frozenset().union(*parts)
        for language in languages or ():
            scores[language] += count
    ranked = scores.most_common(2)
    best, best_score = ranked[0] if ranked else ("", 0)
    runner_up = ranked[1][1] if len(ranked) > 1 else 0
    # The word lists decide when they clearly prefer one language and cover enough of the text;
    # a few stray hits ("de", "e") in a language they do not know leave it to the model.
    clear = best_score >= 2 and best_score >= runner_up * 1.5 and best_score > runner_up
    if clear and best_score >= _MIN_COVERAGE * len(words):
        return best
    letters = sum(len(w) for w in words)
    if letters >= 12:
        language, probability = _model().classify(sample)
        if probability >= _MODEL_MIN_PROBABILITY:
            return str(language)
    if best_score >= 1 and best_score > runner_up:
        return best
    return None
