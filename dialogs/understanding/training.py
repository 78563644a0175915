"""Training the language layer, with scikit-learn: the only module of the layer that imports it.

The TF-IDF vectorizers and liblinear's linear SVM are fitted here, then handed over as plain
vocabularies and weights (:class:`~dialogs.understanding.classifier.IntentClassifier`), so what
is served and cached holds no scikit-learn object. A linear SVM is the usual strong baseline for
short utterances: it trains in a fraction of a second on a few thousand examples (a logistic
regression reads about as well here but trains twenty times slower).

A serving process never imports this module: when the cache has no layer for the data, it runs
``python -m dialogs.understanding.training PATH`` (:func:`main`), which trains the packaged layer
and writes it to ``PATH``. ``nlu test`` and ``nlu check`` train their own layers here, in-process.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from dialogs.understanding.classifier import (
    NOTHING,
    WORD_PATTERN,
    Floats,
    IntentClassifier,
    NGrams,
    classifier_text,
)
from dialogs.understanding.data import Example, TrainingData, default_training_data
from dialogs.understanding.layer import TrainedParts, TrainedUnderstanding, prepare
from dialogs.understanding.model_cache import write
from dialogs.understanding.slots import SlotReader, slot_label
from dialogs.understanding.vocabulary import Vocabulary
from knowledge.kb import KnowledgeBase, default_knowledge

C = 0.5  # liblinear's regularisation
TEMPERATURE = 4.0  # the margins' scale before the softmax


class Reference:
    """scikit-learn's TF-IDF of some texts: character n-grams inside word boundaries (2 to 5)
    and word n-grams (1 and 2), sublinear, each part normalised; and the texts' features. Kept
    only to train, and to test the served features against."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.chars = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(2, 5),
            sublinear_tf=True,
            lowercase=False,
            dtype=np.float32,
        )
        self.words = TfidfVectorizer(
            analyzer="word",
            ngram_range=(1, 2),
            sublinear_tf=True,
            lowercase=False,
            token_pattern=WORD_PATTERN,
            dtype=np.float32,
        )
        self.matrix = csr_matrix(
            hstack([self.chars.fit_transform(texts), self.words.fit_transform(texts)])
        )

    def transform(self, texts: Sequence[str]) -> csr_matrix:
        """The texts' features through scikit-learn's own transform, one row each."""
        return csr_matrix(hstack([self.chars.transform(texts), self.words.transform(texts)]))


@dataclass(frozen=True, eq=False)
class Served:
    """A reference's vectorizers as served: its idf over the vocabularies it shares with the
    other references, and where each of its own columns went (``columns[j]``)."""

    parts: tuple[NGrams, NGrams]
    columns: npt.NDArray[np.int64]


def share(references: Sequence[Reference]) -> list[Served]:
    """The references' vectorizers served with one vocabulary per analyzer for them all (the
    intents' texts hold every n-gram of the words alone, so this keeps one copy instead of
    two). An n-gram a reference never saw has an idf of 0 there: it weighs nothing and is not
    counted in the norm, as its own vectorizer would ignore it."""
    chars: dict[str, int] = {}
    words: dict[str, int] = {}
    for reference in references:
        for shared, vectorizer in ((chars, reference.chars), (words, reference.words)):
            for gram in sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__):
                shared.setdefault(str(gram), len(shared))
    served: list[Served] = []
    for reference in references:
        idfs: list[Floats] = []
        columns: list[npt.NDArray[np.int64]] = []
        for shared, vectorizer, offset in (
            (chars, reference.chars, 0),
            (words, reference.words, len(chars)),
        ):
            own = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
            where = np.fromiter((shared[g] for g in own), dtype=np.int64, count=len(own))
            idf = np.zeros(len(shared), dtype=np.float32)
            idf[where] = np.asarray(vectorizer.idf_, dtype=np.float32)
            idfs.append(idf)
            columns.append(where + offset)
        parts = (
            NGrams("char_wb", *_range(reference.chars), chars, idfs[0], 0),
            NGrams("word", *_range(reference.words), words, idfs[1], len(chars)),
        )
        served.append(Served(parts, np.concatenate(columns)))
    return served


def _range(vectorizer: TfidfVectorizer) -> tuple[int, int]:
    low, high = vectorizer.ngram_range
    return int(low), int(high)


def train_classifier(
    reference: Reference, served: Served, labels: Sequence[str]
) -> IntentClassifier:
    """A linear SVM trained on the reference's texts, labelled ``labels``, in its served form:
    one row of weights per column of the shared vocabularies (zero for n-grams the reference
    never saw)."""
    model = LinearSVC(C=C, class_weight="balanced")
    model.fit(reference.matrix, list(labels))
    coef = np.asarray(model.coef_, dtype=np.float32)
    bias = np.asarray(model.intercept_, dtype=np.float32)
    if len(model.classes_) == 2:  # one margin for two classes: make it two
        coef, bias = np.vstack([-coef, coef]), np.array([-bias[0], bias[0]], dtype=np.float32)
    size = sum(len(part.vocabulary) for part in served.parts)
    weights = np.zeros((size, len(model.classes_)), dtype=np.float32)  # one row per feature
    weights[served.columns] = coef.T
    return IntentClassifier(
        labels=tuple(str(c) for c in model.classes_),
        parts=served.parts,
        weights=weights,
        bias=bias,
        temperature=TEMPERATURE,
    )


def train_parts(
    knowledge: KnowledgeBase, data: TrainingData, examples: Sequence[Example] | None = None
) -> TrainedParts:
    """The layer's parts trained on ``examples`` (all of ``data``'s by default)."""
    training = tuple(examples if examples is not None else data.examples)
    vocabulary = Vocabulary(knowledge, data, training)
    prepared = [prepare(vocabulary, e.text) for e in training]
    texts = Reference([classifier_text(tokens, scoped) for tokens, scoped, _ in prepared])
    # The slot classifiers read the words alone: they are for what the gazetteer misses.
    plain = Reference([classifier_text(tokens, NOTHING) for tokens, _, _ in prepared])
    served_texts, served_plain = share([texts, plain])
    intents = train_classifier(texts, served_texts, [e.intent for e in training])
    slots = SlotReader(
        data,
        vocabulary.words,
        roles=train_classifier(plain, served_plain, [slot_label(e, "role") for e in training]),
        methods=train_classifier(plain, served_plain, [slot_label(e, "method") for e in training]),
    )
    return TrainedParts(data.digest, vocabulary, intents, slots)


def train_understanding(
    knowledge: KnowledgeBase, data: TrainingData, examples: Sequence[Example] | None = None
) -> TrainedUnderstanding:
    """The layer trained on ``examples`` (all of ``data``'s by default), in this process."""
    return TrainedUnderstanding(knowledge, data, train_parts(knowledge, data, examples))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dialogs.understanding.training PATH``: train the layer on the packaged
    knowledge base and data, and write it to ``PATH`` (for a process that must not import
    scikit-learn itself)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1:
        print("usage: python -m dialogs.understanding.training PATH", file=sys.stderr)
        return 2
    write(Path(args[0]), train_parts(default_knowledge(), default_training_data()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
