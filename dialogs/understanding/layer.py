"""The trained language layer: the intent classifier, the gazetteer and negation, put together.

Built once at start from the knowledge base and the training data (well under a second), then
read per turn. ``TrainedUnderstanding`` implements :class:`dialogs.reading.Understanding`: it
prepares a message (its tokens, the values found, their negation scope, its language) and reads
its intent here; the words it knows are :mod:`dialogs.understanding.vocabulary`, the slots of a
message :mod:`dialogs.understanding.slots`, the cache between starts
:mod:`dialogs.understanding.model_cache`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache, lru_cache
from typing import Any

from dialogs.answers import Option
from dialogs.reading import Expectation, Reading
from dialogs.understanding.classifier import NOTHING, IntentClassifier, classifier_text
from dialogs.understanding.data import Example, TrainingData, default_training_data
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


class TrainedUnderstanding:
    """Reads people's words with a classifier trained on ``knowledge/nlu``."""

    def __init__(
        self,
        knowledge: KnowledgeBase,
        data: TrainingData,
        examples: Sequence[Example] | None = None,
    ) -> None:
        self.knowledge = knowledge
        self.data = data
        training = tuple(examples if examples is not None else data.examples)
        self.vocabulary = Vocabulary(knowledge, data, training)
        self._slots = SlotReader(data, self.vocabulary.words)
        self._intents = IntentClassifier()
        prepared = [self.prepare(e.text) for e in training]
        texts = [classifier_text(tokens, scoped) for tokens, scoped, _ in prepared]
        self._intents.fit(texts, [e.intent for e in training])
        # The slot classifiers read the words alone: they are for what the gazetteer misses.
        plain = [classifier_text(tokens, NOTHING) for tokens, _, _ in prepared]
        self._slots.fit(plain, training)
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
        vocabulary = self.vocabulary
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
    return TrainedUnderstanding(knowledge or default_knowledge(), data or default_training_data())


@cache
def default_understanding() -> TrainedUnderstanding:
    """The layer trained on the packaged knowledge base and data: loaded from the cache when the
    data has not changed since it was last trained (trained and cached otherwise)."""
    knowledge, data = default_knowledge(), default_training_data()
    path = cache_file(data)
    if path is not None:
        cached = load(path, TrainedUnderstanding, lambda layer: layer.data.digest == data.digest)
        if cached is not None:
            cached.knowledge = knowledge
            return cached
    layer = TrainedUnderstanding(knowledge, data)
    if path is not None:
        store(path, layer)
    return layer
