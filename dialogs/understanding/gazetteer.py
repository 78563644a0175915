"""Slot values found in words: a gazetteer of every way of naming each value, matched on word
keys (longest phrase first), with typos mended against the gazetteer's own words (rapidfuzz)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from dialogs.understanding.tokens import Token, keys

# Words too common to name a value alone, in any language served.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "i",
        "im",
        "i'm",
        "me",
        "my",
        "our",
        "we",
        "it",
        "its",
        "is",
        "are",
        "was",
        "to",
        "of",
        "or",
        "and",
        "in",
        "on",
        "for",
        "with",
        "this",
        "that",
        "one",
        "only",
        "please",
        "pls",
        "just",
        "le",
        "la",
        "les",
        "l'",
        "un",
        "une",
        "de",
        "des",
        "du",
        "d'",
        "et",
        "ou",
        "est",
        "c'est",
        "je",
        "suis",
        "der",
        "die",
        "das",
        "ein",
        "eine",
        "ist",
        "und",
        "oder",
        "ich",
        "bin",
        "el",
        "los",
        "las",
        "una",
        "es",
        "y",
        "o",
        "soy",
        "il",
        "lo",
        "gli",
        "di",
        "e",
        "ho",
        "sono",
        "het",
        "een",
        "en",
        "of",
        "ik",
        "ben",
        "o",
        "os",
        "um",
        "uma",
        "do",
        "da",
        "é",
        "eu",
        "sou",
    ]
)
_FUZZY_MIN_LENGTH = 4
# Words around a whole answer that do not stop it being one ("ok the safer one", "dann nur").
_FILLERS = frozenset(
    [
        "ok",
        "okay",
        "so",
        "then",
        "well",
        "um",
        "uh",
        "hmm",
        "yes",
        "yeah",
        "yep",
        "alright",
        "fine",
        "please",
        "pls",
        "thanks",
        "lets",
        "go",
        "with",
        "dann",
        "also",
        "bitte",
        "alors",
        "bon",
        "ok",
        "pues",
        "bueno",
        "vale",
        "allora",
        "dan",
        "oke",
        "entao",
        "então",
        "ja",
        "oui",
        "si",
        "sim",
    ]
)
_FUZZY_CUTOFF = 72.0  # a candidate; an answer is taken when the match scores SURE_SCORE or more
SURE_SCORE = 0.8


@dataclass(frozen=True)
class Phrase:
    """A way of naming ``value`` of ``slot``. ``whole`` phrases count only as a whole answer
    ("new", "me"), others also inside a sentence."""

    slot: str
    value: str
    words: tuple[str, ...]
    whole: bool = False


@dataclass(frozen=True)
class Found:
    """A value named at tokens ``start:end`` (``score`` < 1 when a typo was mended)."""

    slot: str
    value: str
    start: int
    end: int
    score: float = 1.0


@dataclass
class Gazetteer:
    """Every phrase, indexed by its words."""

    phrases: dict[tuple[str, ...], list[Phrase]] = field(default_factory=dict)
    vocabulary: set[str] = field(default_factory=set)  # every word the phrases use
    canonical: set[str] = field(default_factory=set)  # the words of the canonical phrases
    longest: int = 1

    def add(
        self, slot: str, value: str, text: str, *, whole: bool = False, canonical: bool = True
    ) -> None:
        """Add one way of naming a value; ``canonical`` ones (not typos seen in examples) are
        what a mistyped word is mended to."""
        words = keys(text)
        if not words or (len(words) == 1 and words[0] in STOPWORDS):
            return
        entries = self.phrases.setdefault(words, [])
        phrase = Phrase(slot, value, words, whole)
        if any(p.slot == slot and p.value == value for p in entries):
            if not whole:  # a phrase known as a mention is a mention
                entries[:] = [p if (p.slot, p.value) != (slot, value) else phrase for p in entries]
            return
        entries.append(phrase)
        self.vocabulary.update(words)
        if canonical:
            self.canonical.update(words)
        self.longest = max(self.longest, len(words))

    def extend(self, items: Iterable[tuple[str, str, str, bool]]) -> None:
        """Add (slot, value, text, whole) items."""
        for slot, value, text, whole in items:
            self.add(slot, value, text, whole=whole)

    def find(
        self,
        tokens: Sequence[Token],
        *,
        whole_answer: bool,
        known: set[str] | None = None,
        fuzzy: bool = True,
    ) -> list[Found]:
        """The values named in ``tokens``, longest phrase first, spans not overlapping.

        Words are matched as written first; then each word that is neither one of the canonical
        words (the knowledge base's and the synonym lists') nor an ordinary word (``known``: the
        words examples use outside their values) is compared with the canonical ones, so "shraed"
        reads as "shared" (with a lower score), and "weder" stays "weder".
        """
        words = [t.key for t in tokens]
        taken = [False] * len(words)
        found = self._exact(words, [1.0] * len(words), taken, whole_answer=whole_answer)
        if not fuzzy:
            return found
        canonical = self.canonical or self.vocabulary
        ordinary = known or set()
        scores = [1.0] * len(words)
        mended = list(words)
        for index, word in enumerate(words):
            if (
                not taken[index]
                and tokens[index].kind == "word"
                and len(word) >= _FUZZY_MIN_LENGTH
                and word not in canonical
                and word not in ordinary
                and not word.isdigit()
                and word not in STOPWORDS
            ):
                # Typos keep the first letter: "shraed" is "shared", "salle" is not "alle".
                best = process.extractOne(
                    word,
                    self._fuzzy_words.get(word[0], ()),
                    scorer=fuzz.ratio,
                    score_cutoff=_FUZZY_CUTOFF,
                )
                if best is not None:
                    mended[index] = best[0]
                    scores[index] = best[1] / 100.0
        if mended != words:  # read again with the typos mended: "distrubution list" is one phrase
            found = self._exact(mended, scores, [False] * len(words), whole_answer=whole_answer)
        found.sort(key=lambda f: f.start)
        return found

    def _exact(
        self, words: list[str], scores: list[float], taken: list[bool], *, whole_answer: bool
    ) -> list[Found]:
        found: list[Found] = []
        for size in range(min(self.longest, len(words)), 0, -1):
            for start in range(len(words) - size + 1):
                if any(taken[start : start + size]):
                    continue
                entries = self.phrases.get(tuple(words[start : start + size]))
                if not entries:
                    continue
                alone = whole_answer and all(
                    word in _FILLERS for word in (*words[:start], *words[start + size :])
                )  # the whole answer, give or take "ok", "then", "please"
                usable = [p for p in entries if not p.whole or alone]
                if not usable:
                    continue
                score = min(scores[start : start + size])
                for phrase in usable:
                    found.append(Found(phrase.slot, phrase.value, start, start + size, score))
                for index in range(start, start + size):
                    taken[index] = True
        return found

    @property
    def _fuzzy_words(self) -> dict[str, list[str]]:
        """The canonical words a typo may be mended to, by their first letter."""
        cached: dict[str, list[str]] | None = getattr(self, "_fuzzy_cache", None)
        if cached is None:
            cached = {}
            for word in sorted(self.canonical):
                if len(word) >= _FUZZY_MIN_LENGTH and not word.isdigit():
                    cached.setdefault(word[0], []).append(word)
            self._fuzzy_cache = cached
        return cached


def partial_label_phrases(
    options: Sequence[tuple[str, str]], slot: str
) -> list[tuple[str, str, str, bool]]:
    """Runs of a button's words that no other button shares ("chosen senders" for "Allow chosen
    senders only"), as phrases for that button's value while its question waits."""
    runs: dict[tuple[str, ...], set[str]] = {}
    for value, label in options:
        words = keys(label)
        for size in range(1, len(words) + 1):
            for start in range(len(words) - size + 1):
                run = tuple(words[start : start + size])
                if all(word in STOPWORDS for word in run):
                    continue
                runs.setdefault(run, set()).add(value)
    return [
        (slot, next(iter(values)), " ".join(run), False)
        for run, values in runs.items()
        if len(values) == 1
    ]
