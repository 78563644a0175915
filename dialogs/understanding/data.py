"""The training data: labelled examples with their slots marked inline, per language.

``knowledge/nlu/<language>.yaml`` holds ``examples`` (intent -> utterances written as
``it's a [shared mailbox](recipient_type:shared_mailbox)``, with ``!`` before a ruled-out value)
and ``synonyms`` (slot -> value -> words); ``negation.yaml`` the words of negation. See
``knowledge/nlu/README.md``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

import knowledge
from dialogs.reading import CLOSED_SLOTS, INTENTS, OPEN_SLOTS
from knowledge.kb import CENTRE_IDS, METHOD_IDS, RECIPIENT_TYPE_IDS

DATA_DIR = Path(knowledge.__file__).resolve().parent / "nlu"
LANGUAGES = ("en", "fr", "de", "es", "it", "nl", "pt")
#: The values each closed slot may take in the data (beyond the knowledge base's own ids,
#: ``any_group`` and ``any_mailbox`` name only the broad kind).
SLOT_VALUES: dict[str, frozenset[str]] = {
    "role": frozenset({"sender", "admin"}),
    "recipient_type": frozenset({*RECIPIENT_TYPE_IDS, "any_group", "any_mailbox"}),
    "method": frozenset(METHOD_IDS),
    "centre": frozenset(CENTRE_IDS),
}
HELD_OUT_SHARE = 0.2  # of each language's examples of each intent, never trained on in tests

_MARK = re.compile(r"\[([^\[\]]+)\]\((!?)([a-z_]+)(?::([a-z0-9_]+))?\)")
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DataError(ValueError):
    """The training data is malformed; the message names the file and the example."""


@dataclass(frozen=True)
class Mark:
    """A marked span of an example: ``slot`` (with ``value`` for closed slots) at ``start:end``."""

    slot: str
    value: str
    start: int
    end: int
    negated: bool = False


@dataclass(frozen=True)
class Example:
    """One labelled utterance."""

    text: str  # without the markup
    intent: str
    language: str
    marks: tuple[Mark, ...] = ()
    source: str = ""  # "en.yaml: question[3]"

    def words(self, mark: Mark) -> str:
        """The words of a marked span."""
        return self.text[mark.start : mark.end]

    def expected_slots(self) -> frozenset[tuple[str, str]]:
        """(slot, value) pairs said (not ruled out); open slots are compared by their words."""
        return frozenset(
            (m.slot, m.value if m.slot in CLOSED_SLOTS else self.words(m).lower())
            for m in self.marks
            if not m.negated
        )

    def expected_negated(self) -> frozenset[tuple[str, str]]:
        """(slot, value) pairs ruled out."""
        return frozenset((m.slot, m.value) for m in self.marks if m.negated)


@dataclass(frozen=True)
class NegationWords:
    """The words of negation of one language (see ``negation.yaml``)."""

    cues: tuple[str, ...]  # "not", "don't", "pas", "kein": the next value is ruled out
    before: tuple[str, ...]  # "instead of", "rather than", "statt": the next value is ruled out
    breakers: tuple[str, ...]  # "but", "just", "mais": a negation's scope ends here
    mail_verbs: tuple[str, ...]  # "can't email": a problem told, not a value ruled out
    uncertain: tuple[str, ...] = ()  # "not sure if", "maybe": the next value is a guess
    role_words: dict[str, tuple[str, ...]] = field(default_factory=dict)  # "admin", "sent"
    trailing: tuple[str, ...] = ()  # cues that may follow their value ("will ich nicht")


@dataclass(frozen=True)
class TrainingData:
    """Every language's examples and synonyms, and the words of negation."""

    examples: tuple[Example, ...]
    synonyms: dict[str, dict[str, dict[str, tuple[str, ...]]]]  # lang -> slot -> value -> words
    negation: dict[str, NegationWords]
    digest: str  # a hash of the files, to tell one version of the data from another
    files: tuple[Path, ...] = field(default=())

    def split(self) -> tuple[tuple[Example, ...], tuple[Example, ...]]:
        """The fixed split: (training, held out). For each language and intent, the examples
        whose hash sorts first make up at least :data:`HELD_OUT_SHARE` of them."""
        groups: dict[tuple[str, str], list[Example]] = {}
        for example in self.examples:
            groups.setdefault((example.language, example.intent), []).append(example)
        train: list[Example] = []
        held: list[Example] = []
        for group in groups.values():
            ranked = sorted(group, key=lambda e: _hash(e.text))
            count = -(-len(ranked) * int(HELD_OUT_SHARE * 100) // 100) if len(ranked) > 1 else 0
            held += ranked[:count]
            train += ranked[count:]
        return tuple(train), tuple(held)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_example(raw: str, intent: str, language: str, source: str = "") -> Example:
    """``it's a [DL](recipient_type:distribution_group)`` -> the text and its marks."""
    marks: list[Mark] = []
    out: list[str] = []
    position = 0
    length = 0
    for match in _MARK.finditer(raw):
        before = raw[position : match.start()]
        out.append(before)
        length += len(before)
        words, bang, slot, value = match.groups()
        if slot in CLOSED_SLOTS:
            if not value:
                raise DataError(f"{source}: [{words}]({slot}) needs a value: ({slot}:VALUE)")
            if value not in SLOT_VALUES[slot]:
                raise DataError(
                    f"{source}: unknown value {value!r} for {slot}; "
                    f"one of {sorted(SLOT_VALUES[slot])}"
                )
        elif slot in OPEN_SLOTS:
            if value:
                raise DataError(f"{source}: ({slot}) takes no value, got {value!r}")
            value = ""
        else:
            raise DataError(
                f"{source}: unknown slot {slot!r}; one of {[*CLOSED_SLOTS, *OPEN_SLOTS]}"
            )
        marks.append(Mark(slot, value, length, length + len(words), negated=bool(bang)))
        out.append(words)
        length += len(words)
        position = match.end()
    out.append(raw[position:])
    text = "".join(out)
    if "[" in text and "](" in text:
        raise DataError(f"{source}: a marking is malformed: {raw!r}")
    return Example(" ".join(text.split()), intent, language, tuple(marks), source)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - safe
    except OSError as error:
        raise DataError(f"{path.name}: cannot read: {error}") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise DataError(f"{path.name}: {where}YAML syntax error") from error
    if not isinstance(data, dict):
        raise DataError(f"{path.name}: expected a mapping")
    return data


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise DataError(f"{where}: expected a list of words")
    return tuple(value)


def _language_file(path: Path) -> tuple[str, list[Example], dict[str, dict[str, tuple[str, ...]]]]:
    data = _read_yaml(path)
    language = data.get("language")
    if language not in LANGUAGES:
        raise DataError(f"{path.name}: language must be one of {list(LANGUAGES)}")
    examples_raw = data.get("examples")
    if not isinstance(examples_raw, dict):
        raise DataError(f"{path.name}: examples: expected a mapping of intent -> utterances")
    examples: list[Example] = []
    for intent, utterances in examples_raw.items():
        if intent not in INTENTS:
            raise DataError(f"{path.name}: examples: unknown intent {intent!r}")
        for index, raw in enumerate(_strings(utterances, f"{path.name}: examples.{intent}")):
            examples.append(parse_example(raw, intent, language, f"{path.name}: {intent}[{index}]"))
    synonyms: dict[str, dict[str, tuple[str, ...]]] = {}
    for slot, values in (data.get("synonyms") or {}).items():
        if slot not in CLOSED_SLOTS or not isinstance(values, dict):
            raise DataError(f"{path.name}: synonyms: unknown slot {slot!r}")
        for value, words in values.items():
            if value not in SLOT_VALUES[slot]:
                raise DataError(f"{path.name}: synonyms.{slot}: unknown value {value!r}")
            synonyms.setdefault(slot, {})[value] = _strings(
                words, f"{path.name}: synonyms.{slot}.{value}"
            )
    return language, examples, synonyms


def _negation(path: Path) -> dict[str, NegationWords]:
    data = _read_yaml(path)
    found: dict[str, NegationWords] = {}
    for language, words in data.items():
        if language not in LANGUAGES or not isinstance(words, dict):
            raise DataError(f"{path.name}: unknown language {language!r}")
        found[language] = NegationWords(
            cues=_strings(words.get("cues"), f"{path.name}: {language}.cues"),
            before=_strings(words.get("before") or ["-"], f"{path.name}: {language}.before"),
            breakers=_strings(words.get("breakers"), f"{path.name}: {language}.breakers"),
            mail_verbs=_strings(words.get("mail_verbs"), f"{path.name}: {language}.mail_verbs"),
            uncertain=_strings(words.get("uncertain"), f"{path.name}: {language}.uncertain"),
            role_words={
                role: _strings(items, f"{path.name}: {language}.role_words.{role}")
                for role, items in (words.get("role_words") or {}).items()
                if role in SLOT_VALUES["role"]
            },
            trailing=_strings(words.get("trailing") or ["-"], f"{path.name}: {language}.trailing"),
        )
    return found


def load_training_data(directory: Path | None = None) -> TrainingData:
    """Read every language file and ``negation.yaml`` in ``directory`` (default: the packaged
    ``knowledge/nlu``)."""
    folder = directory or DATA_DIR
    files = sorted(p for p in folder.glob("*.yaml") if p.name != "negation.yaml")
    if not files:
        raise DataError(f"{folder}: no training files (*.yaml)")
    examples: list[Example] = []
    synonyms: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {}
    digest = hashlib.sha256()
    for path in [*files, folder / "negation.yaml"]:
        digest.update(path.read_bytes() if path.exists() else b"")
    for path in files:
        language, found, words = _language_file(path)
        examples += found
        synonyms[language] = words
    negation_file = folder / "negation.yaml"
    if not negation_file.exists():
        raise DataError(f"{folder}: negation.yaml is missing")
    return TrainingData(
        tuple(examples), synonyms, _negation(negation_file), digest.hexdigest()[:16], tuple(files)
    )


@cache
def default_training_data() -> TrainingData:
    """The packaged training data, read once."""
    return load_training_data()


def texts(examples: Iterable[Example]) -> list[str]:
    """The utterances of ``examples``."""
    return [example.text for example in examples]
