"""The trained language layer: the intent classifier, the gazetteer and negation, put together.

Trained from the knowledge base and the training data (:mod:`dialogs.understanding.training`,
with scikit-learn, in a child process when the packaged layer is not cached yet), loaded from the
cache at start, then read per turn: what is served holds only dicts and numpy arrays.
``TrainedUnderstanding`` implements :class:`dialogs.reading.Understanding`: it prepares a message
(its tokens, the values found, their negation scope, its language) and reads its intent here; the
words it knows are :mod:`dialogs.understanding.vocabulary`, the slots of a message
:mod:`dialogs.understanding.slots`, the cache between starts
:mod:`dialogs.understanding.model_cache`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from dialogs.answers import Option
from dialogs.reading import Expectation, Reading
from dialogs.understanding.classifier import IntentClassifier, classifier_text
from dialogs.understanding.data import TrainingData, default_training_data
from dialogs.understanding.gazetteer import Found, Gazetteer, partial_label_phrases
from dialogs.understanding.model_cache import cache_file, load, store
from dialogs.understanding.negation import Scoped, scope
from dialogs.understanding.slots import SlotReader
from dialogs.understanding.tokens import Token, keys, tokenize
from dialogs.understanding.vocabulary import Vocabulary
from knowledge.kb import KnowledgeBase, default_knowledge

_MAX_CHARS = 2000  # of a message read by the layer (a bounce goes to the reader instead)
# People say the same short things again and again ("yes", "admin", a button's words): so many
# of those readings are remembered, each worth about a millisecond of reading.
_REMEMBERED_MAX_CHARS = 300
_REMEMBERED = 4096
_ROLE_WORDS = frozenset({"admin", "administrator", "sender", "sent", "send"})


@dataclass(frozen=True, eq=False)
class TrainedParts:
    """What training makes and the model cache keeps, for the training data of ``digest``: the
    words known, the intent classifier and the slot reader. Not the knowledge base nor the
    data themselves: a process has its own, and a second copy would be a few MB for nothing."""

    digest: str
    vocabulary: Vocabulary
    intents: IntentClassifier
    slots: SlotReader


class TrainedUnderstanding:
    """Reads people's words with classifiers trained on ``knowledge/nlu`` (by
    :func:`dialogs.understanding.training.train_parts`)."""

    def __init__(self, knowledge: KnowledgeBase, data: TrainingData, parts: TrainedParts) -> None:
        self.knowledge = knowledge
        self.data = data
        self.vocabulary = parts.vocabulary
        self._intents = parts.intents
        self._slots = parts.slots
        self._remembered = self._remembering()

    def _remembering(self) -> Callable[[str, Expectation | None], Reading]:
        return lru_cache(maxsize=_REMEMBERED)(self.read_anew)

    def __getstate__(self) -> dict[str, Any]:
        """What the model cache keeps: the trained layer, not the readings remembered."""
        state = self.__dict__.copy()
        del state["_remembered"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._remembered = self._remembering()

    def prepare(
        self, text: str, expecting: Expectation | None = None
    ) -> tuple[list[Token], Scoped, str]:
        """The message's tokens, the values found in them sorted by negation scope, and its
        language."""
        return prepare(self.vocabulary, text, expecting)

    def read(self, text: str, expecting: Expectation | None = None) -> Reading:
        """Read one message: a short one read before (with the same question pending) is not
        read again. A reading is immutable and the same words always read the same."""
        if len(text) > _REMEMBERED_MAX_CHARS:
            return self.read_anew(text, expecting)
        return self._remembered(text, expecting)

    def read_anew(self, text: str, expecting: Expectation | None = None) -> Reading:
        """Read one message, not looking among those remembered (what ``read`` costs the first
        time)."""
        tokens, scoped, language = self.prepare(text, expecting)
        features = classifier_text(tokens, scoped)
        ranking = self._intents.rank(features)
        slots, negated, unsure = self._slots.read(
            text[:_MAX_CHARS], tokens, scoped, language, ranking
        )
        return Reading(
            intent=ranking[0][0],
            confidence=ranking[0][1],
            ranking=tuple(ranking[:3]),
            slots=slots,
            negated=negated,
            unsure=unsure,
            language=language,
        )


def prepare(
    vocabulary: Vocabulary, text: str, expecting: Expectation | None = None
) -> tuple[list[Token], Scoped, str]:
    """The message's tokens, the values ``vocabulary`` finds in them sorted by negation scope,
    and its language (what training reads the examples with, too)."""
    tokens = tokenize(text[:_MAX_CHARS])
    words_only = [t for t in tokens if t.kind == "word"]
    whole = len(words_only) <= 4
    found = vocabulary.gazetteer.find(tokens, whole_answer=whole, known=vocabulary.known_words)
    if expecting is not None and expecting.slot and expecting.choices:
        asked = _question_gazetteer(expecting.slot, expecting.choices)
        extra = asked.find(tokens, whole_answer=whole, known=vocabulary.known_words)
        found = _merge(found, extra)
    language = vocabulary.language(tokens)
    return tokens, scope(text[:_MAX_CHARS], tokens, found, vocabulary.words[language]), language


def _merge(first: list[Found], second: list[Found]) -> list[Found]:
    """Both lists' values; where spans overlap, the longer wins, then the one read without a
    typo mended, then the question's own."""
    merged = list(second)
    for found in first:
        if not any(f.start < found.end and found.start < f.end for f in second):
            merged.append(found)
        else:
            overlapping = [f for f in second if f.start < found.end and found.start < f.end]
            if all(
                (found.end - found.start, found.score) > (f.end - f.start, f.score)
                for f in overlapping
            ):
                merged = [f for f in merged if f not in overlapping] + [found]
    merged.sort(key=lambda f: f.start)
    return merged


@lru_cache(maxsize=256)
def _question_gazetteer(slot: str, choices: tuple[Option, ...]) -> Gazetteer:
    """The pending question's own words: its buttons' labels, their synonyms and the runs of a
    label's words that no other button shares."""
    gazetteer = Gazetteer()
    for option in choices:
        gazetteer.add(slot, option.value, option.label)
        gazetteer.add(slot, option.value, option.value.replace("_", " "))
        for words in option.synonyms:
            gazetteer.add(slot, option.value, words, whole=True)
        for words in option.mentions:
            gazetteer.add(slot, option.value, words)
    partial = partial_label_phrases([(o.value, o.label) for o in choices], slot)
    if slot != "role":  # "admin" in "Escalate to an admin" is who they are, not that choice
        partial = [p for p in partial if not set(keys(p[2])) & _ROLE_WORDS]
    gazetteer.extend(partial)
    return gazetteer


def build_understanding(
    knowledge: KnowledgeBase | None = None, data: TrainingData | None = None
) -> TrainedUnderstanding:
    """The language layer trained on all the data (the packaged one, cached, by default)."""
    if (knowledge is None or knowledge is default_knowledge()) and data is None:
        return default_understanding()
    # Other data is trained here, in this process (tests, ``nlu`` commands): only the packaged
    # layer is served, and a serving process imports no scikit-learn.
    from dialogs.understanding.training import train_understanding  # noqa: PLC0415

    return train_understanding(knowledge or default_knowledge(), data or default_training_data())


@cache
def default_understanding() -> TrainedUnderstanding:
    """The layer trained on the packaged knowledge base and data: loaded from the cache when the
    data and code have not changed since it was last trained; trained otherwise, in a child
    process (:func:`train_aside`), and cached."""
    knowledge, data = default_knowledge(), default_training_data()
    path = cache_file(data)
    parts = _load(path, data) if path is not None else None
    if parts is None:
        parts = train_aside(data)
        if path is not None:
            store(path, parts)
    return TrainedUnderstanding(knowledge, data, parts)


def train_aside(data: TrainingData) -> TrainedParts:
    """The packaged layer's parts, trained by a child process (``python -m
    dialogs.understanding.training``) and read back: scikit-learn and scipy take about 95 MB
    once imported, which a serving process would keep for nothing. Two processes starting
    together on an empty cache each train their own; the cache's writes are atomic."""
    code_root = Path(__file__).resolve().parents[2]  # the child runs this very code
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(code_root), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="ndrbot-nlu-") as folder:
        written = Path(folder) / "layer.pickle"
        command = [sys.executable, "-m", "dialogs.understanding.training", str(written)]
        done = subprocess.run(  # noqa: S603 - this interpreter, our own module
            command, env=env, capture_output=True, text=True, check=False
        )
        parts = _load(written, data) if done.returncode == 0 else None
    if parts is None:
        said = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise TrainingFailed(f"training the language layer failed: {said[0]}")
    return parts


class TrainingFailed(RuntimeError):
    """The child process that trains the language layer failed; its last words say why."""


def _load(path: Path, data: TrainingData) -> TrainedParts | None:
    return load(path, TrainedParts, lambda parts: parts.digest == data.digest)
