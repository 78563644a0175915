"""The trained language layer: the intent classifier, the gazetteer and negation, put together.

Built once at start from the knowledge base and the training data (well under a second), then
read per turn. ``TrainedUnderstanding`` implements :class:`dialogs.reading.Understanding`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import pickle
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache
from pathlib import Path

import sklearn

from dialogs.answers import Option
from dialogs.reading import CLOSED_SLOTS, Expectation, Reading, SlotValue
from dialogs.understanding.classifier import IntentClassifier
from dialogs.understanding.data import (
    LANGUAGES,
    Example,
    TrainingData,
    default_training_data,
)
from dialogs.understanding.gazetteer import (
    SURE_SCORE,
    Found,
    Gazetteer,
    partial_label_phrases,
)
from dialogs.understanding.negation import Scoped, Words, has_cue, scope
from dialogs.understanding.tokens import Token, keys, tokenize
from knowledge.kb import Centre, KnowledgeBase, Method, RecipientType, default_knowledge

log = logging.getLogger(__name__)

_MAX_CHARS = 2000  # of a message read by the layer (a bounce goes to the reader instead)
_FROM_WORDS = frozenset({"from", "de", "von", "da", "van", "desde", "fra"})
# "the sender is x@", "partner x@": the outside sender; "bounced back from x@": the recipient.
_SENDER_WORDS = frozenset(
    {
        "sender",
        "expediteur",
        "absender",
        "remitente",
        "mittente",
        "afzender",
        "remetente",
        "partner",
        "vendor",
        "supplier",
        "fournisseur",
        "fornitore",
        "leverancier",
        "fornecedor",
        "proveedor",
        "lieferant",
    }
)
_LET_IN_WORDS = frozenset(
    [
        "whitelist",
        "allowlist",
        "allow",
        "add",
        "let",
        "permit",
        "authorise",
        "authorize",
        "approve",
        "autoriser",
        "ajouter",
        "erlauben",
        "zulassen",
        "freigeben",
        "hinzufugen",
        "permitir",
        "anadir",
        "agregar",
        "liberar",
        "adicionar",
        "consentire",
        "aggiungere",
        "autorizzare",
        "toestaan",
        "toevoegen",
        "whitelisten",
    ]
)
_TOWARDS_WORDS = frozenset(
    [
        "to",
        "for",
        "on",
        "into",
        "onto",
        "a",
        "au",
        "aux",
        "an",
        "auf",
        "zu",
        "para",
        "per",
        "voor",
        "naar",
    ]
)
_BOUNCE_WORDS = frozenset(
    {
        "back",
        "bounced",
        "bounce",
        "undeliverable",
        "ndr",
        "returned",
        "rejected",
        "came",
        "retour",
        "zuruck",
        "devuelto",
        "rebotado",
        "tornato",
        "terug",
        "voltou",
        "devolvido",
    }
)
_NOT_A_DOMAIN = re.compile(
    r"(?:^|\.)(?:microsoft\.com|office365\.com|office\.com|outlook\.com|onmicrosoft\.com)$"
    r"|^\d+(?:\.\d+)+$|^[a-z]?\d+\.\d"
)
_ROLE_THRESHOLD = 0.4
_METHOD_THRESHOLD = 0.75
_METHOD_MIN_WORDS = 3  # shorter answers are the gazetteer's and the question's own words
_KNOWN_WORD_MIN_COUNT = 2  # a synonym word seen this often unmarked is a common word


_NOTHING = Scoped((), (), ())
_ROLE_WORDS = frozenset({"admin", "administrator", "sender", "sent", "send"})
# Negations of ability: "can't", "couldn't", "kann nicht", "ne peut pas", "no puedo"...
_MODALS = frozenset(
    [
        "cant",
        "cannot",
        "couldnt",
        "cant'",
        "unable",
        "kann",
        "kannst",
        "konnen",
        "koennen",
        "konnte",
        "peut",
        "peux",
        "peuvent",
        "pouvons",
        "puedo",
        "puede",
        "pueden",
        "podemos",
        "posso",
        "puo",
        "possono",
        "riesco",
        "riescono",
        "kan",
        "kunnen",
        "kon",
        "konden",
        "posso",
        "pode",
        "podem",
        "consigo",
        "conseguem",
        "consegue",
    ]
)


def _classifier_text(tokens: Sequence[Token], scoped: Scoped) -> str:
    """What the classifier reads: the words, addresses as one token, and the slots found."""
    parts = [
        "@address" if t.kind == "address" else "@domain" if t.kind == "domain" else t.key
        for t in tokens
    ]
    parts += [f"§{f.slot}" for f in scoped.said]
    parts += [f"¬{f.slot}" for f in scoped.negated]
    return " ".join(parts)


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
        self.languages = tuple(lang for lang in LANGUAGES if lang in data.negation)
        # Every language's negation words at once: a short message's language is a guess, and
        # people mix English words into every language ("nicht powershell", "pas le DL"). But a
        # cue that is an ordinary word elsewhere (Portuguese "no" is "in the", Italian "come
        # mai" is "why") counts only in a message of the cue's own language.
        everywhere = Words.of(list(data.negation.values()))
        self._word_counts, self._language_totals = self._count_words(training)
        cue_languages: dict[str, set[str]] = {}
        for lang, words_of in data.negation.items():
            for cue in words_of.cues:
                for key in keys(cue)[:1]:
                    cue_languages.setdefault(key, set()).add(lang)
        ambiguous = {
            cue: langs
            for cue, langs in cue_languages.items()
            if any(
                self._word_counts.get(other, Counter())[cue] >= _KNOWN_WORD_MIN_COUNT
                for other in self.languages
                if other not in langs
            )
        }
        self._words = {
            lang: dataclasses.replace(
                everywhere,
                cues=everywhere.cues - {c for c, langs in ambiguous.items() if lang not in langs},
            )
            for lang in self.languages
        }
        unmarked = _unmarked_counts(training)
        # Words examples use outside their marked values: ordinary words, never typos to mend.
        self.known_words = set(unmarked) | everywhere.vocabulary()
        self._role_words = Gazetteer()
        for language in data.negation.values():
            for value, words_list in language.role_words.items():
                for words in words_list:
                    self._role_words.add("role", value, words)
        # For roles, "I didn't send it" rules the sender out, though "send" is a mail verb; but
        # "I can't send to them" is a sender telling the problem.
        role_verbs = {w for words in self._role_words.phrases for w in words}
        self._strict_words = {
            lang: dataclasses.replace(
                words, mail_verbs=words.mail_verbs - role_verbs, modal=_MODALS
            )
            for lang, words in self._words.items()
        }
        self._role_negation = {
            lang: dataclasses.replace(words, modal=_MODALS) for lang, words in self._words.items()
        }
        # Marks that begin with an English negation ("[dont open it to everyone](!...)") name
        # the value without it; French "n'importe qui" keeps its "n'".
        self._cues = Words.of([data.negation["en"]]).cues if "en" in data.negation else frozenset()
        self.gazetteer = Gazetteer()
        for slot, value, words, whole in self._phrases(training):
            # A single word people also use in other senses ("alle", "meu", "todos") names a
            # value only as a whole answer.
            found = keys(words)
            common = len(found) == 1 and unmarked[found[0]] >= _KNOWN_WORD_MIN_COUNT
            self.gazetteer.add(
                slot, value, words, whole=whole or common, canonical=not words.startswith("\0")
            )
        self._intents = IntentClassifier()
        self._roles = IntentClassifier()
        self._methods = IntentClassifier()
        prepared = [self._prepare(e.text) for e in training]
        texts = [_classifier_text(tokens, scoped) for tokens, scoped, _ in prepared]
        self._intents.fit(texts, [e.intent for e in training])
        # The slot classifiers read the words alone: they are for what the gazetteer misses.
        plain = [_classifier_text(tokens, _NOTHING) for tokens, _, _ in prepared]
        self._roles.fit(plain, [_slot_label(e, "role") for e in training])
        self._methods.fit(plain, [_slot_label(e, "method") for e in training])

    # ---- building ------------------------------------------------------------------------

    def _count_words(
        self, examples: Iterable[Example]
    ) -> tuple[dict[str, Counter[str]], dict[str, int]]:
        counts: dict[str, Counter[str]] = {lang: Counter() for lang in LANGUAGES}
        for example in examples:
            counts.setdefault(example.language, Counter()).update(keys(example.text))
        return counts, {lang: sum(c.values()) for lang, c in counts.items()}

    def _phrases(self, examples: Sequence[Example]) -> Iterable[tuple[str, str, str, bool]]:
        kb = self.knowledge
        entries: list[tuple[str, RecipientType | Method | Centre]] = [
            *(("recipient_type", e) for e in kb.recipient_types),
            *(("method", e) for e in kb.methods),
            *(("centre", e) for e in kb.centres),
        ]
        for slot, entry in entries:
            mentions = (
                entry.mentions if entry.mentions is not None else (entry.label, *entry.synonyms)
            )
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
        for language in self.data.synonyms.values():
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
                    words = _without_cue(example.words(mark), self._cues)
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

    # ---- reading -------------------------------------------------------------------------

    def language(self, tokens: Sequence[Token]) -> str:
        """The language the words most likely are in (English when nothing tells)."""
        best, best_score = "en", -math.inf
        for lang in self.languages:
            counts, total = (
                self._word_counts.get(lang, Counter()),
                self._language_totals.get(lang, 0),
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

    def _prepare(
        self, text: str, expecting: Expectation | None = None
    ) -> tuple[list[Token], Scoped, str]:
        tokens = tokenize(text[:_MAX_CHARS])
        words_only = [t for t in tokens if t.kind == "word"]
        whole = len(words_only) <= 4
        found = self.gazetteer.find(tokens, whole_answer=whole, known=self.known_words)
        if expecting is not None and expecting.slot and expecting.choices:
            asked = _question_gazetteer(expecting.slot, expecting.choices)
            extra = asked.find(tokens, whole_answer=whole, known=self.known_words)
            found = _merge(found, extra)
        language = self.language(tokens)
        return tokens, scope(text[:_MAX_CHARS], tokens, found, self._words[language]), language

    def read(self, text: str, expecting: Expectation | None = None) -> Reading:
        """Read one message."""
        tokens, scoped, language = self._prepare(text, expecting)
        features = _classifier_text(tokens, scoped)
        ranking = self._intents.rank(features)
        slots: list[SlotValue] = []
        unsure: list[SlotValue] = []
        negated = [_value(f, tokens) for f in scoped.negated]
        ruled_out = {(v.slot, v.value) for v in negated}
        for found in scoped.said:
            value = _value(found, tokens)
            if (value.slot, value.value) in ruled_out or value.slot == "role":
                continue
            (slots if found.score >= SURE_SCORE else unsure).append(value)
        unsure += [_value(f, tokens) for f in scoped.guessed if f.slot != "role"]
        plain = _classifier_text(tokens, _NOTHING)
        said_roles = {f.value: _value(f, tokens) for f in scoped.said if f.slot == "role"}
        # Role words under a negation ("I'm not the admin", "I didn't send it"): never chosen.
        mentioned = self._role_words.find(tokens, whole_answer=False, fuzzy=False)
        for found in scope(
            text[:_MAX_CHARS], tokens, mentioned, self._role_negation[language]
        ).negated:
            if ("role", found.value) not in ruled_out:
                negated.append(_value(found, tokens))
                ruled_out.add(("role", found.value))
        strict = scope(text[:_MAX_CHARS], tokens, mentioned, self._strict_words[language])
        blocked = {f.value for f in strict.negated}
        role, role_p = self._roles.rank(plain)[0]
        explicit = [
            _value(f, tokens)
            for f in sorted(scoped.said, key=lambda f: f.start)
            if f.slot == "role" and ("role", f.value) not in ruled_out
        ]
        if explicit:
            # "I'm the admin", said in so many words, wins; said twice, the last one does
            # ("I'm the sender... actually no, I'm the admin").
            slots.append(explicit[-1])
        elif (
            role != "none"
            and role_p >= _ROLE_THRESHOLD
            and ("role", role) not in ruled_out
            and role not in blocked
        ):
            words = said_roles[role].words if role in said_roles else text[:80]
            slots.append(SlotValue("role", role, words, round(role_p, 3)))
        else:
            # "sono il mittente, non l'amministratore": one role ruled out, the other named.
            named = {f.value for f in strict.said if ("role", f.value) not in ruled_out}
            if len(named) == 1 and any(slot == "role" for slot, _ in ruled_out):
                other = named.pop()
                slots.append(SlotValue("role", other, other, 0.5))
        listed = {v.slot for v in slots if v.slot in ("recipient_type", "method", "centre")}
        if not any(v.slot == "role" for v in slots) and len(listed) >= 2:
            # "5.7.12 admin dist group everyone classic": a role word in a list of facts.
            named_roles = {f.value for f in strict.said if ("role", f.value) not in ruled_out}
            if len(named_roles) == 1 and ranking[0][0] in ("inform", "question"):
                named_role = named_roles.pop()
                slots.append(SlotValue("role", named_role, named_role, 0.5))
        if (
            len(tokens) >= _METHOD_MIN_WORDS
            and ranking[0][0] in ("inform", "question")
            and not any(v.slot == "method" for v in (*slots, *unsure))
        ):
            # Said in other words ("only our one supplier"): the method's own classifier. It
            # never opens a recipient to everyone when the words hold a negation.
            method, method_p = self._methods.rank(plain)[0]
            # With a negation in the words, the classifier's value is taken only when the other
            # value is the one ruled out ("not everyone, only bob"): it cannot see the scope.
            opposite = {"allow_all": "allowed_senders", "allowed_senders": "allow_all"}.get(method)
            negation = bool(scoped.negated) or has_cue(tokens, self._words[language])
            if (
                method != "none"
                and method_p >= _METHOD_THRESHOLD
                and ("method", method) not in ruled_out
                and (not negation or ("method", opposite) in ruled_out)
            ):
                slots.append(SlotValue("method", method, text[:80], round(method_p, 3)))
        slots += _addresses(tokens)
        return Reading(
            intent=ranking[0][0],
            confidence=ranking[0][1],
            ranking=tuple(ranking[:3]),
            slots=tuple(slots),
            negated=tuple(negated),
            unsure=tuple(unsure),
            language=language,
        )


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


def _slot_label(example: Example, slot: str) -> str:
    """The value of ``slot`` the example says (for the classifiers of paraphrased slots)."""
    said = [m.value for m in example.marks if m.slot == slot and not m.negated]
    return said[0] if said else "none"


def _value(found: Found, tokens: Sequence[Token]) -> SlotValue:
    words = " ".join(t.text for t in tokens[found.start : found.end])
    return SlotValue(found.slot, found.value, words, round(found.score, 3))


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


def _addresses(tokens: Sequence[Token]) -> list[SlotValue]:
    """Addresses (or parts of one) and domains: after "from" the sender's, else the recipient's."""
    found: list[SlotValue] = []
    for index, token in enumerate(tokens):
        if token.kind == "address":
            before = {t.key for t in tokens[max(0, index - 3) : index]}
            just_before = tokens[index - 1].key if index else ""
            from_word = just_before in _FROM_WORDS and not before & _BOUNCE_WORDS
            # "whitelist vendor@x", "add bob@y": the one let in; "allow mail to sales@": not.
            let_in = bool(before & _LET_IN_WORDS) and just_before not in _TOWARDS_WORDS
            slot = "sender" if before & _SENDER_WORDS or from_word or let_in else "recipient"
            found.append(SlotValue(slot, token.text.lower(), token.text))
        elif token.kind == "domain" and not _NOT_A_DOMAIN.search(token.key):
            found.append(SlotValue("domain", token.text.lower(), token.text))
    return found


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


_CACHE_VERSION = "1"


def _cache_file(data: TrainingData) -> Path | None:
    """Where a layer trained on ``data`` is kept between starts (None: no usable folder)."""
    folder = Path(os.environ.get("NDRBOT_CACHE_DIR") or Path.home() / ".cache" / "ndrbot")
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = folder.stat()
    except OSError:
        return None
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        return None  # a folder others can write to: never load what it holds
    code = hashlib.sha256(_CACHE_VERSION.encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        code.update(source.read_bytes())  # a new version of this code trains anew
    versions = f"{sklearn.__version__}-{sys.version_info[0]}.{sys.version_info[1]}"
    return folder / f"nlu-{data.digest}-{code.hexdigest()[:12]}-{versions}.pickle"


@cache
def default_understanding() -> TrainedUnderstanding:
    """The layer trained on the packaged knowledge base and data: loaded from the cache when the
    data has not changed since it was last trained (trained and cached otherwise)."""
    knowledge, data = default_knowledge(), default_training_data()
    path = _cache_file(data)
    if path is not None and path.exists():
        try:
            with path.open("rb") as handle:
                layer = pickle.load(handle)  # noqa: S301 - our own file, in a folder only we write
            if isinstance(layer, TrainedUnderstanding) and layer.data.digest == data.digest:
                layer.knowledge = knowledge
                return layer
        except Exception:  # a damaged or stale cache: train again
            log.warning("the language layer's cache could not be read; training again")
    layer = TrainedUnderstanding(knowledge, data)
    if path is not None:
        try:
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            with temporary.open("wb") as handle:
                pickle.dump(layer, handle, protocol=pickle.HIGHEST_PROTOCOL)
            temporary.replace(path)
            for stale in path.parent.glob("nlu-*.pickle"):
                if stale != path:
                    stale.unlink(missing_ok=True)  # an older version of the data or the code
        except OSError:
            log.warning("the language layer could not be cached", exc_info=True)
    return layer
