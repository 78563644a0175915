"""The intent classifier as it is served: word and character n-grams with a linear model, in
plain dicts and numpy arrays (trained by :mod:`dialogs.understanding.training`).

TF-IDF over character n-grams inside word boundaries carries typos, inflections and the seven
languages without a tokenizer per language; word n-grams carry phrasing ("go back", "how long").
A linear support vector machine separates the intents; its margins, put through a softmax, give a
confidence, so the flows can ask rather than guess. What it reads is :func:`classifier_text`: the
words, and the slots the gazetteer found.

Nothing here imports scikit-learn or scipy: a serving process loads the trained weights and never
pays the 95 MB those libraries take once imported. The analyzers below reproduce scikit-learn's
``char_wb`` and ``word`` analyzers (no lowercasing, no accent stripping, no stop words, the
``[^\\s]+`` token pattern); ``tests/test_understanding.py`` holds the served ranks to
scikit-learn's own transform over the whole held-out split.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from dialogs.understanding.negation import Scoped
from dialogs.understanding.tokens import Token

NOTHING = Scoped((), (), ())  # no slots found: the slot classifiers read the words alone

#: What a word is to the word n-grams: a run of anything but white space (the vectorizer's
#: ``token_pattern`` when training).
WORD_PATTERN = r"[^\s]+"
_WORDS = re.compile(WORD_PATTERN)

Floats = npt.NDArray[np.float32]


def classifier_text(tokens: Sequence[Token], scoped: Scoped) -> str:
    """What the classifier reads: the words, addresses as one token, and the slots found."""
    parts = [
        "@address" if t.kind == "address" else "@domain" if t.kind == "domain" else t.key
        for t in tokens
    ]
    parts += [f"§{f.slot}" for f in scoped.said]
    parts += [f"¬{f.slot}" for f in scoped.negated]
    return " ".join(parts)


def char_wb_grams(text: str, low: int, high: int) -> list[str]:
    """scikit-learn's ``char_wb`` n-grams: each white-space separated word padded with one space
    on each side, its n-grams from ``low`` to ``high`` characters; a padded word no longer than
    n is counted once, whole, and the longer n are not tried for it."""
    grams: list[str] = []
    append = grams.append
    for word in text.split():
        padded = f" {word} "
        length = len(padded)
        for n in range(low, high + 1):
            offset = 0
            append(padded[:n])
            while offset + n < length:
                offset += 1
                append(padded[offset : offset + n])
            if offset == 0:  # a short word: once, whole
                break
    return grams


def word_grams(text: str, low: int, high: int) -> list[str]:
    """scikit-learn's ``word`` n-grams: the words (:data:`WORD_PATTERN`), then runs of ``low``
    to ``high`` of them joined by one space."""
    words = _WORDS.findall(text)
    grams: list[str] = words[:] if low == 1 else []
    for n in range(max(low, 2), min(high, len(words)) + 1):
        grams += [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    return grams


@dataclass(frozen=True, eq=False)
class NGrams:
    """One vectorizer, fitted: its n-grams, their columns among the classifier's features
    (``offset`` on), and their inverse document frequencies. The classifiers of one layer share
    one vocabulary; an n-gram one of them never saw has an idf of 0 in it, and is ignored."""

    analyzer: Literal["char_wb", "word"]
    low: int
    high: int
    vocabulary: dict[str, int]
    idf: Floats
    offset: int

    def grams(self, text: str) -> list[str]:
        """The n-grams of ``text``, as the vectorizer's analyzer gives them."""
        if self.analyzer == "char_wb":
            return char_wb_grams(text, self.low, self.high)
        return word_grams(text, self.low, self.high)

    def features(self, text: str) -> tuple[npt.NDArray[np.int64], Floats] | None:
        """The text's sublinear TF-IDF, normalised to unit length, as (columns, values); None
        when it holds no known n-gram."""
        vocabulary = self.vocabulary
        counts: dict[int, int] = {}
        for gram in self.grams(text):
            index = vocabulary.get(gram)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        if not counts:
            return None
        found = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        weights: Floats = (np.float32(1.0) + np.log(tf)) * self.idf[found]
        seen = weights > 0  # an n-gram of the shared vocabulary this classifier never saw: 0
        if not seen.all():
            found, weights = found[seen], weights[seen]
            if not len(found):
                return None
        norm = float(np.sqrt(weights @ weights))
        return found + self.offset, weights / norm if norm else weights


@dataclass(frozen=True, eq=False)
class IntentClassifier:
    """A trained linear classifier over TF-IDF n-grams; ``rank`` gives every label with its
    probability. ``weights`` has one row per feature, one column per label."""

    labels: tuple[str, ...]
    parts: tuple[NGrams, ...]
    weights: Floats
    bias: Floats
    temperature: float

    def features(self, text: str) -> tuple[npt.NDArray[np.int64], Floats]:
        """The message's TF-IDF features as (columns, values), as scikit-learn's vectorizers,
        side by side, would give them."""
        columns: list[npt.NDArray[np.int64]] = []
        values: list[Floats] = []
        for part in self.parts:
            found = part.features(text)
            if found is not None:
                columns.append(found[0])
                values.append(found[1])
        if not columns:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return np.concatenate(columns), np.concatenate(values)

    def rank(self, text: str) -> list[tuple[str, float]]:
        """Every label with its confidence, most likely first."""
        columns, values = self.features(text)
        return self.ranked((values @ self.weights[columns] + self.bias) * self.temperature)

    def ranked(self, scores: Floats) -> list[tuple[str, float]]:
        """The labels ranked by a softmax of their ``scores`` (the margins times the
        temperature)."""
        exp = np.exp(scores - scores.max())
        probabilities = exp / exp.sum()
        order = np.argsort(-probabilities, kind="stable")
        return [(self.labels[i], float(probabilities[i])) for i in order]
