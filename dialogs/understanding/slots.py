"""The slots of one message: the gazetteer's values sorted into said, guessed and ruled out;
the role (said in so many words, ruled out, or told by its own classifier); a method said in
other words ("only our one supplier"), by its own classifier; and the addresses.

The intent is the layer's (:mod:`dialogs.understanding.layer`); this room turns what the
gazetteer and negation scope found, and what the slot classifiers read, into ``SlotValue``s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from dialogs.reading import SlotValue
from dialogs.understanding.addresses import address_slots
from dialogs.understanding.classifier import NOTHING, IntentClassifier, classifier_text
from dialogs.understanding.data import Example, TrainingData
from dialogs.understanding.gazetteer import SURE_SCORE, Found, Gazetteer
from dialogs.understanding.negation import Scoped, Words, has_cue, scope
from dialogs.understanding.tokens import Token

_ROLE_THRESHOLD = 0.4
_METHOD_THRESHOLD = 0.75
_METHOD_MIN_WORDS = 3  # shorter answers are the gazetteer's and the question's own words
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


class SlotReader:
    """Reads the slots of a message, with the role and method classifiers trained on the words
    alone (they are for what the gazetteer misses; trained by
    :func:`dialogs.understanding.training.train_understanding`)."""

    def __init__(
        self,
        data: TrainingData,
        words: dict[str, Words],
        *,
        roles: IntentClassifier,
        methods: IntentClassifier,
    ) -> None:
        self._words = words
        self._role_words = Gazetteer()
        for language in data.negation.values():
            for value, words_list in language.role_words.items():
                for role_words in words_list:
                    self._role_words.add("role", value, role_words)
        # For roles, "I didn't send it" rules the sender out, though "send" is a mail verb; but
        # "I can't send to them" is a sender telling the problem.
        role_verbs = {w for phrase in self._role_words.phrases for w in phrase}
        self._strict_words = {
            lang: dataclasses.replace(
                negation, mail_verbs=negation.mail_verbs - role_verbs, modal=_MODALS
            )
            for lang, negation in words.items()
        }
        self._role_negation = {
            lang: dataclasses.replace(negation, modal=_MODALS) for lang, negation in words.items()
        }
        self._roles = roles
        self._methods = methods

    def read(
        self,
        text: str,
        tokens: Sequence[Token],
        scoped: Scoped,
        language: str,
        ranking: Sequence[tuple[str, float]],
    ) -> tuple[tuple[SlotValue, ...], tuple[SlotValue, ...], tuple[SlotValue, ...]]:
        """The values said, ruled out and only guessed at, in that order. ``text`` is the
        message as the layer reads it (its first characters), ``ranking`` the intents read."""
        slots: list[SlotValue] = []
        unsure: list[SlotValue] = []
        negated = [slot_value(f, tokens) for f in scoped.negated]
        ruled_out = {(v.slot, v.value) for v in negated}
        for found in scoped.said:
            value = slot_value(found, tokens)
            if (value.slot, value.value) in ruled_out or value.slot == "role":
                continue
            (slots if found.score >= SURE_SCORE else unsure).append(value)
        unsure += [slot_value(f, tokens) for f in scoped.guessed if f.slot != "role"]
        plain = classifier_text(tokens, NOTHING)
        said_roles = {f.value: slot_value(f, tokens) for f in scoped.said if f.slot == "role"}
        # Role words under a negation ("I'm not the admin", "I didn't send it"): never chosen.
        mentioned = self._role_words.find(tokens, whole_answer=False, fuzzy=False)
        for found in scope(text, tokens, mentioned, self._role_negation[language]).negated:
            if ("role", found.value) not in ruled_out:
                negated.append(slot_value(found, tokens))
                ruled_out.add(("role", found.value))
        strict = scope(text, tokens, mentioned, self._strict_words[language])
        blocked = {f.value for f in strict.negated}
        role, role_p = self._roles.rank(plain)[0]
        explicit = [
            slot_value(f, tokens)
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
        slots += address_slots(tokens)
        return tuple(slots), tuple(negated), tuple(unsure)


def slot_label(example: Example, slot: str) -> str:
    """The value of ``slot`` the example says (for the classifiers of paraphrased slots)."""
    said = [m.value for m in example.marks if m.slot == slot and not m.negated]
    return said[0] if said else "none"


def slot_value(found: Found, tokens: Sequence[Token]) -> SlotValue:
    """What the gazetteer found, as the flows see it: the words it was read in, and its score."""
    words = " ".join(t.text for t in tokens[found.start : found.end])
    return SlotValue(found.slot, found.value, words, round(found.score, 3))
