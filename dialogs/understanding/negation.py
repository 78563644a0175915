"""Negation scope: which values a message rules out, and which it only guesses at.

A cue ("not", "don't", "pas", "kein", "niet", "não") rules out the first value after it in its
clause, and the values chained to that one by "or"/"nor"; a clause ends at punctuation or at a
breaker ("but", "just", "mais", "sondern"). "rather than X" and "instead of X" rule out X. A cue
followed by a mail verb tells the problem ("can't email the shared mailbox"), not a choice. In
languages that put the cue last ("alle erlauben will ich nicht"), a cue with no value after it
rules out the value just before it. "not sure if", "maybe" make the next value a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from dialogs.understanding.data import NegationWords
from dialogs.understanding.gazetteer import Found
from dialogs.understanding.tokens import Token, keys

_CLAUSE_END = frozenset(".,;:!?()\n")
_CHAIN = frozenset({"or", "nor", "ou", "oder", "o", "of", "ni", "ne", "nem", "noch", "neither"})
# Articles a chained value may carry ("not a DL or a shared mailbox").
_ARTICLES = frozenset(
    {
        "a",
        "an",
        "the",
        "un",
        "une",
        "le",
        "la",
        "les",
        "l'",
        "ein",
        "eine",
        "einen",
        "der",
        "die",
        "das",
        "el",
        "los",
        "las",
        "una",
        "uno",
        "il",
        "lo",
        "gli",
        "een",
        "de",
        "het",
        "um",
        "uma",
        "o",
        "os",
        "as",
        "du",
        "des",
        "ne",
        "ce",
    }
)
_SKIP_TO_VERB = frozenset(
    {"to", "be", "able", "even", "really", "seem", "seems", "pa", "pas", "zu", "possono", "can"}
)


@dataclass(frozen=True)
class Words:
    """One language's (or several languages') negation words, as word keys."""

    cues: frozenset[str]
    before: tuple[tuple[str, ...], ...]
    breakers: tuple[tuple[str, ...], ...]
    mail_verbs: frozenset[str]
    uncertain: tuple[tuple[str, ...], ...]
    trailing: frozenset[str]  # the cues that may follow their value ("nicht", "niet")
    modal: frozenset[str] = frozenset()  # "can't send": a sender telling the problem

    @classmethod
    def of(cls, languages: Sequence[NegationWords]) -> Words:
        """The union of several languages' words."""

        def phrases(attr: str) -> tuple[tuple[str, ...], ...]:
            found = {keys(p) for words in languages for p in getattr(words, attr)}
            return tuple(sorted((p for p in found if p), key=len, reverse=True))

        return cls(
            cues=frozenset(k for words in languages for c in words.cues for k in keys(c)[:1]),
            before=phrases("before"),
            breakers=phrases("breakers"),
            mail_verbs=frozenset(
                k for w in languages for v in w.mail_verbs for k in keys(v) if len(k) > 2
            ),
            uncertain=phrases("uncertain"),
            trailing=frozenset(k for words in languages for c in words.trailing for k in keys(c)),
        )

    def vocabulary(self) -> set[str]:
        """Every word these lists use (ordinary words, never typos to mend)."""
        found = set(self.cues) | set(self.mail_verbs) | set(self.modal)
        for phrases in (self.before, self.breakers, self.uncertain):
            for phrase in phrases:
                found.update(phrase)
        return found


@dataclass(frozen=True)
class Scoped:
    """The values of a message sorted by how they are said."""

    said: tuple[Found, ...]
    negated: tuple[Found, ...]
    guessed: tuple[Found, ...]


def _at(keys_: list[str], index: int, phrases: tuple[tuple[str, ...], ...]) -> int:
    """The length of the longest of ``phrases`` that starts at ``index`` (0 if none)."""
    for phrase in _by_first_word(phrases).get(keys_[index], ()):
        if tuple(keys_[index : index + len(phrase)]) == phrase:
            return len(phrase)
    return 0


@lru_cache(maxsize=32)
def _by_first_word(
    phrases: tuple[tuple[str, ...], ...],
) -> dict[str, tuple[tuple[str, ...], ...]]:
    """``phrases`` by their first word, longest first: one look-up per word, not a scan."""
    found: dict[str, list[tuple[str, ...]]] = {}
    for phrase in sorted(phrases, key=len, reverse=True):
        found.setdefault(phrase[0], []).append(phrase)
    return {word: tuple(group) for word, group in found.items()}


def _is_cue(token: Token, words: Words) -> bool:
    return token.key in words.cues or "n't" in token.text or token.text.endswith("nt'")


# French "ne ... que" restricts ("n'autoriser que ce partenaire": allow only him), it does not
# negate; nor does "n'importe qui" (anyone).
_RESTRICTIVE_CUES = frozenset({"ne", "n'"})
_RESTRICTIVE_WORDS = frozenset({"que", "qu'", "quun", "quune", "importe"})
_NEGATING_WORDS = frozenset({"pas", "jamais", "plus", "aucun", "aucune", "rien", "personne"})


def _restrictive(keys_: list[str], index: int, boundary: list[bool]) -> bool:
    if keys_[index] not in _RESTRICTIVE_CUES:
        return False
    for after in range(index + 1, min(len(keys_), index + 8)):
        if boundary[after] or keys_[after] in _NEGATING_WORDS:
            return False
        if keys_[after] in _RESTRICTIVE_WORDS:
            return True
    return False


# "no" said alone, to take back what went before ("wait no, only certain senders", "en fait non
# c'est un groupe de sécurité"), is a correction, not a negation of the value that follows.
_ALWAYS_INTERJECTIONS = frozenset({"nein", "nee", "nope", "nah"})  # never negate a value
_INTERJECTIONS = frozenset({"no", "non", "nao", "nada"})  # or "no es", "non è", "não é": negate
_LEADING = frozenset(
    {"wait", "hmm", "oh", "ah", "sorry", "actually", "en", "fait", "espera", "oops"}
)
# What follows an interjection "no" but never a negating one ("no es un DL" is "it isn't a DL").
_CORRECTION_FOLLOWERS = frozenset(
    [
        "finalement",
        "finalmente",
        "finally",
        "eigentlich",
        "doch",
        "meglio",
        "beter",
        "only",
        "just",
        "then",
        "wait",
        "rather",
        "instead",
        "better",
        "actually",
        "its",
        "it",
        "i",
        "im",
        "make",
        "sorry",
        "ok",
        "also",
        "solo",
        "solamente",
        "mejor",
        "espera",
        "nur",
        "lieber",
        "eher",
        "seulement",
        "plutot",
        "cest",
        "c'",
        "alleen",
        "liever",
        "eigenlijk",
        "so",
        "apenas",
        "melhor",
        "wacht",
        "aspetta",
        "anzi",
    ]
)


def _interjection(keys_: list[str], index: int, boundary: list[bool]) -> bool:
    key = keys_[index]
    if key not in _INTERJECTIONS and key not in _ALWAYS_INTERJECTIONS:
        return False
    clause = max((i for i in range(index + 1) if boundary[i]), default=0)
    if any(word not in _LEADING for word in keys_[clause:index]):
        return False  # not at the start of a clause: "I want no powershell"
    following = keys_[index + 1] if index + 1 < len(keys_) else ""
    return key in _ALWAYS_INTERJECTIONS or following in _CORRECTION_FOLLOWERS or not following


def has_cue(tokens: Sequence[Token], words: Words) -> bool:
    """Whether the words hold a negation that is not a problem told ("can't email")."""
    keys_ = [t.key for t in tokens]
    for index, token in enumerate(tokens):
        if _is_cue(token, words) or _at(keys_, index, words.before):
            after = index + 1
            while after < len(tokens) and keys_[after] in _SKIP_TO_VERB:
                after += 1
            if not (after < len(tokens) and keys_[after] in words.mail_verbs):
                return True
    return False


def scope(text: str, tokens: Sequence[Token], found: Sequence[Found], words: Words) -> Scoped:
    """Sort ``found`` (values at token spans of ``tokens``) into said, ruled out and guessed."""
    keys_ = [t.key for t in tokens]
    # A clause boundary before token i: punctuation between token i-1 and token i.
    boundary = [False] * (len(tokens) + 1)
    for index in range(1, len(tokens)):
        between = text[tokens[index - 1].end : tokens[index].start]
        boundary[index] = any(c in _CLAUSE_END for c in between)
    value_at = {f.start: f for f in found}
    inside = {i for f in found for i in range(f.start, f.end)}
    negated: set[Found] = set()
    guessed: set[Found] = set()

    def forward(start: int, into: set[Found], *, action: bool = False) -> bool:
        """Rule out (or mark) the first value from ``start`` on in its clause, with its chain;
        for a negated ``action``, also the method named later in the clause."""
        index = start
        hit = False
        first: Found | None = None
        while index < len(tokens):
            if boundary[index]:  # punctuation since the cue (or the last value): the clause ended
                break
            # A breaker ends the scope, but not right after the cue ("no es un buzón").
            if index > start + 1 and index not in inside and _at(keys_, index, words.breakers):
                break
            value = value_at.get(index)
            if value is not None:
                into.add(value)
                hit = True
                first = first or value
                index = value.end
                # Chained values: "not a DL or a shared mailbox".
                if index < len(tokens) and keys_[index] in _CHAIN and not boundary[index]:
                    index += 1
                    while index < len(tokens) and keys_[index] in _ARTICLES:
                        index += 1
                    continue
                break
            if hit:
                break
            index += 1
        # Negating an action ("without opening the group to everyone") negates the method
        # named later in its clause, when a noun came first.
        if action and first is not None and first.slot != "method":
            while index < len(tokens) and not boundary[index]:
                if index not in inside and _at(keys_, index, words.breakers):
                    break
                value = value_at.get(index)
                if value is not None and value.slot == "method":
                    into.add(value)
                index += 1
        return hit

    index = 0
    while index < len(tokens):
        if index in inside:
            index += 1
            continue
        size = _at(keys_, index, words.uncertain)
        if size:
            forward(index + size, guessed)
            index += size
            continue
        size = _at(keys_, index, words.before)
        if size:
            forward(index + size, negated)
            index += size
            continue
        if (
            _is_cue(tokens[index], words)
            and not _restrictive(keys_, index, boundary)
            and not _interjection(keys_, index, boundary)
        ):
            after = index + 1
            while after < len(tokens) and keys_[after] in _SKIP_TO_VERB:
                after += 1
            if (
                tokens[index].key in words.modal
                or (after < len(tokens) and keys_[after] in words.modal)
                or (index and keys_[index - 1] in words.modal)  # "ik kan niet mailen"
            ):
                index = after + 1
                continue  # "I can't send to them": the sender telling the problem
            if after < len(tokens) and keys_[after] in words.mail_verbs and after not in inside:
                index = after + 1
                continue  # "can't email": the problem, not a value ruled out
            if not forward(index + 1, negated, action=True) and tokens[index].key in words.trailing:
                before = [
                    f for f in found if f.end <= index and not any(boundary[f.end : index + 1])
                ]
                if before:
                    negated.add(before[-1])
        index += 1
    guessed -= negated
    return Scoped(
        said=tuple(f for f in found if f not in negated and f not in guessed),
        negated=tuple(f for f in found if f in negated),
        guessed=tuple(f for f in found if f in guessed),
    )
