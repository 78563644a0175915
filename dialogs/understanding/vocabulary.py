"""The words the layer knows, gathered once from the knowledge base and the training data: how
often each language uses each word (to tell a message's language), the negation words each
language's messages are read with, the ordinary words never mended as typos, and the gazetteer
of slot values (their labels, synonyms, mentions and the spans examples mark).

Built at training time and kept with the layer; reading a message only looks things up here.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Sequence

from dialogs.reading import CLOSED_SLOTS
from dialogs.understanding.data import LANGUAGES, Example, TrainingData
from dialogs.understanding.gazetteer import Gazetteer
from dialogs.understanding.negation import Words
from dialogs.understanding.tokens import Token, keys
from knowledge.kb import Centre, KnowledgeBase, Method, RecipientType

KNOWN_WORD_MIN_COUNT = 2  # a synonym word seen this often unmarked is a common word


class Vocabulary:
    """What the training examples and the knowledge base say about words, per language."""

    def __init__(self, knowledge: KnowledgeBase, data: TrainingData, training: Sequence[Example]):
        self.languages = tuple(lang for lang in LANGUAGES if lang in data.negation)
        # Every language's negation words at once: a short message's language is a guess, and
        # people mix English words into every language ("nicht powershell", "pas le DL"). But a
        # cue that is an ordinary word elsewhere (Portuguese "no" is "in the", Italian "come
        # mai" is "why") counts only in a message of the cue's own language.
        everywhere = Words.of(list(data.negation.values()))
        self.word_counts, self.language_totals = _count_words(training)
        cue_languages: dict[str, set[str]] = {}
        for lang, words_of in data.negation.items():
            for cue in words_of.cues:
                for key in keys(cue)[:1]:
                    cue_languages.setdefault(key, set()).add(lang)
        ambiguous = {
            cue: langs
            for cue, langs in cue_languages.items()
            if any(
                self.word_counts.get(other, Counter())[cue] >= KNOWN_WORD_MIN_COUNT
                for other in self.languages
                if other not in langs
            )
        }
        self.words = {
            lang: dataclasses.replace(
                everywhere,
                cues=everywhere.cues - {c for c, langs in ambiguous.items() if lang not in langs},
            )
            for lang in self.languages
        }
        unmarked = _unmarked_counts(training)
        # Words examples use outside their marked values: ordinary words, never typos to mend.
        self.known_words = set(unmarked) | everywhere.vocabulary()
        # Marks that begin with an English negation ("[dont open it to everyone](!...)") name
        # the value without it; French "n'importe qui" keeps its "n'".
        self.cues = Words.of([data.negation["en"]]).cues if "en" in data.negation else frozenset()
        self.gazetteer = Gazetteer()
        for slot, value, words, whole in _phrases(knowledge, data, training, self.cues):
            # A single word people also use in other senses ("alle", "meu", "todos") names a
            # value only as a whole answer.
            found = keys(words)
            common = len(found) == 1 and unmarked[found[0]] >= KNOWN_WORD_MIN_COUNT
            self.gazetteer.add(
                slot, value, words, whole=whole or common, canonical=not words.startswith("\0")
            )

    def language(self, tokens: Sequence[Token]) -> str:
        """The language the words most likely are in (English when nothing tells)."""
        best, best_score = "en", -math.inf
        for lang in self.languages:
            counts, total = (
                self.word_counts.get(lang, Counter()),
                self.language_totals.get(lang, 0),
            )
            vocabulary = len(counts) + 1
            score = sum(
                math.log((counts[t.key] + 0.1) / (total + 0.1 * vocabulary))
                for t in tokens
                if t.kind == "word"
            )
            if lang == "en":
                score += 0.5  # people mix English words into every language
            if score > best_score:
                best, best_score = lang, score
        return best


def _count_words(examples: Iterable[Example]) -> tuple[dict[str, Counter[str]], dict[str, int]]:
    counts: dict[str, Counter[str]] = {lang: Counter() for lang in LANGUAGES}
    for example in examples:
        counts.setdefault(example.language, Counter()).update(keys(example.text))
    return counts, {lang: sum(c.values()) for lang, c in counts.items()}


def _phrases(
    kb: KnowledgeBase, data: TrainingData, examples: Sequence[Example], cues: frozenset[str]
) -> Iterable[tuple[str, str, str, bool]]:
    """Every (slot, value, words, whole answer only) the gazetteer is to know."""
    entries: list[tuple[str, RecipientType | Method | Centre]] = [
        *(("recipient_type", e) for e in kb.recipient_types),
        *(("method", e) for e in kb.methods),
        *(("centre", e) for e in kb.centres),
    ]
    for slot, entry in entries:
        mentions = entry.mentions if entry.mentions is not None else (entry.label, *entry.synonyms)
        for words in mentions:
            yield slot, entry.id, words, False
        for words in (entry.label, *entry.synonyms):
            # Synonyms are whole answers where the entry lists its mentions apart.
            explicit = entry.mentions is not None and words != entry.label
            whole = explicit or len(keys(words)) == 1
            yield slot, entry.id, words, whole and words not in mentions
        if isinstance(entry, Method):
            yield slot, entry.id, entry.short_label, False
    for choice in kb.conversation.choices["role"]:
        for words in choice.mentions:
            yield "role", choice.value, words, False
        for words in (choice.label, *choice.synonyms):
            yield "role", choice.value, words, True
    for language in data.synonyms.values():
        for slot, values in language.items():
            for value, words_list in values.items():
                for words in words_list:
                    yield slot, value, words, slot == "role"
    # A word that is part of another value's name ("eac" in "classic EAC") names nothing
    # alone inside a sentence, though an example may use it as a whole answer.
    shared: dict[str, set[tuple[str, str]]] = {}
    for entry_slot, entry in entries:
        for words in (entry.label, *entry.synonyms, *(entry.mentions or ())):
            found = keys(words)
            if len(found) > 1:
                for word in found:
                    shared.setdefault(word, set()).add((entry_slot, entry.id))
    for example in examples:
        for mark in example.marks:
            if mark.slot in CLOSED_SLOTS:
                words = _without_cue(example.words(mark), cues)
                found = keys(words)
                if not found:
                    continue
                owners = shared.get(found[0], set()) if len(found) == 1 else set()
                broad = mark.value in ("any_group", "any_mailbox")  # "group" is their name
                whole = mark.slot == "role" or (
                    not broad and bool(owners - {(mark.slot, mark.value)})
                )
                # Words seen in examples may be typos: never what another typo is mended to.
                yield mark.slot, mark.value, "\0" + words, whole


def _without_cue(words: str, cues: frozenset[str]) -> str:
    """A marked span without the negation words it may start with: "[dont open it to
    everyone](!method:allow_all)" names the method as "open it to everyone"."""
    tokens = words.split()
    while tokens and ((keys(tokens[0])[:1] and keys(tokens[0])[0] in cues) or "n't" in tokens[0]):
        tokens = tokens[1:]
    return " ".join(tokens)


def _unmarked_counts(examples: Iterable[Example]) -> Counter[str]:
    """How often each word is used outside the examples' marked values."""
    found: Counter[str] = Counter()
    for example in examples:
        text = example.text
        for mark in sorted(example.marks, key=lambda m: -m.start):
            text = text[: mark.start] + " " + text[mark.end :]
        found.update(keys(text))
    return found
