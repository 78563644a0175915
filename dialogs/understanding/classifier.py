"""The intent classifier: word and character n-grams with a linear model (scikit-learn).

TF-IDF over character n-grams inside word boundaries carries typos, inflections and the seven
languages without a tokenizer per language; word n-grams carry phrasing ("go back", "how long").
A linear support vector machine (liblinear) separates the intents; its margins, put through a
softmax, give a confidence, so the flows can ask rather than guess. This is the usual strong
baseline for short utterances: it trains in a fraction of a second on a few thousand examples
(a logistic regression reads about as well here but trains twenty times slower), and is fast to
apply. What it reads is :func:`classifier_text`: the words, and the slots the gazetteer found.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from dialogs.understanding.negation import Scoped
from dialogs.understanding.tokens import Token

NOTHING = Scoped((), (), ())  # no slots found: the slot classifiers read the words alone


def classifier_text(tokens: Sequence[Token], scoped: Scoped) -> str:
    """What the classifier reads: the words, addresses as one token, and the slots found."""
    parts = [
        "@address" if t.kind == "address" else "@domain" if t.kind == "domain" else t.key
        for t in tokens
    ]
    parts += [f"§{f.slot}" for f in scoped.said]
    parts += [f"¬{f.slot}" for f in scoped.negated]
    return " ".join(parts)


class IntentClassifier:
    """Trained on (text, intent) pairs; ``rank`` gives every intent with its probability."""

    def __init__(self, *, c: float = 0.5, temperature: float = 4.0) -> None:
        self._chars = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(2, 5),
            sublinear_tf=True,
            lowercase=False,
            dtype=np.float32,
        )
        self._words = TfidfVectorizer(
            analyzer="word",
            ngram_range=(1, 2),
            sublinear_tf=True,
            lowercase=False,
            token_pattern=r"[^\s]+",  # noqa: S106 - a regular expression, not a password
            dtype=np.float32,
        )
        self._model: LinearSVC | None = LinearSVC(C=c, class_weight="balanced")
        self._temperature = temperature
        self._c = c
        self.intents: tuple[str, ...] = ()

    def fit(self, texts: Sequence[str], intents: Sequence[str]) -> IntentClassifier:
        """Train on ``texts`` labelled ``intents``."""
        features = hstack([self._chars.fit_transform(texts), self._words.fit_transform(texts)])
        model = self._model or LinearSVC(C=self._c, class_weight="balanced")
        model.fit(csr_matrix(features), list(intents))
        self.intents = tuple(str(c) for c in model.classes_)
        coef = np.asarray(model.coef_, dtype=np.float32)
        bias = np.asarray(model.intercept_, dtype=np.float32)
        if len(self.intents) == 2:  # one margin for two classes: make it two
            coef, bias = np.vstack([-coef, coef]), np.array([-bias[0], bias[0]], dtype=np.float32)
        self._coef = np.ascontiguousarray(coef.T)  # one row per feature
        self._bias = bias
        self._model = None  # its float64 copy of the weights is not needed to read
        # What transform() does, kept as plain lookups: sklearn's per-call input checks cost
        # ten times the arithmetic on a one-line message.
        self._parts = [
            (
                vectorizer.build_analyzer(),
                vectorizer.vocabulary_,
                np.asarray(vectorizer.idf_, dtype=np.float32),
                offset,
            )
            for vectorizer, offset in (
                (self._chars, 0),
                (self._words, len(self._chars.vocabulary_)),
            )
        ]
        return self

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The message's TF-IDF features as (columns, values), as ``transform`` would give."""
        columns: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for analyze, vocabulary, idf, offset in self._parts:
            counts: dict[int, int] = {}
            for gram in analyze(text):
                index = vocabulary.get(gram)
                if index is not None:
                    counts[index] = counts.get(index, 0) + 1
            if not counts:
                continue
            found = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            weights = (
                1.0 + np.log(np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))
            ) * idf[found]
            norm = float(np.sqrt(weights @ weights))
            columns.append(found + offset)
            values.append(weights / norm if norm else weights)
        if not columns:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return np.concatenate(columns), np.concatenate(values)

    def rank(self, text: str) -> list[tuple[str, float]]:
        """Every intent with its confidence, most likely first."""
        columns, values = self.features(text)
        scores = (values @ self._coef[columns] + self._bias) * self._temperature
        scores = np.exp(scores - scores.max())
        probabilities = scores / scores.sum()
        order = np.argsort(-probabilities)
        return [(self.intents[i], float(probabilities[i])) for i in order]

    def rank_slowly(self, text: str) -> list[tuple[str, float]]:
        """``rank`` through scikit-learn's own transform (the reference the fast path is tested
        against)."""
        features = hstack([self._chars.transform([text]), self._words.transform([text])]).tocsr()
        scores = np.asarray(features @ self._coef).ravel() + self._bias
        scores = np.exp((scores - scores.max()) * self._temperature)
        probabilities = scores / scores.sum()
        order = np.argsort(-probabilities)
        return [(self.intents[i], float(probabilities[i])) for i in order]
