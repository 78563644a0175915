"""How well the language layer reads its own data: the held-out split and cross-validation,
with precision, recall and F1 per intent and per slot, the confusion matrix and the misreads
(like ``rasa test nlu``), and the lint of ``nlu check``."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from dialogs.reading import CLOSED_SLOTS, Reading
from dialogs.understanding.data import Example, TrainingData
from dialogs.understanding.gazetteer import SURE_SCORE
from dialogs.understanding.layer import TrainedUnderstanding
from dialogs.understanding.tokens import keys
from dialogs.understanding.training import train_understanding
from knowledge.kb import KnowledgeBase


def read_slots(reading: Reading) -> frozenset[tuple[str, str]]:
    """The (slot, value) pairs a reading says, open slots by their words."""
    return frozenset(
        (s.slot, s.value if s.slot in CLOSED_SLOTS else s.words.lower()) for s in reading.slots
    )


@dataclass(frozen=True)
class Misread:
    """An example read wrong."""

    example: Example
    intent: str
    confidence: float
    missing: tuple[tuple[str, str], ...]  # slots expected but not read
    extra: tuple[tuple[str, str], ...]  # slots read but not expected
    chose_negated: tuple[tuple[str, str], ...]  # values ruled out but chosen: never allowed


@dataclass
class Report:
    """The figures of one evaluation."""

    examples: int = 0
    intents_right: int = 0
    slots_right: int = 0
    chose_negated: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)  # (expected, read)
    slot_counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    misreads: list[Misread] = field(default_factory=list)
    by_language: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    @property
    def intent_accuracy(self) -> float:
        """The share of examples whose intent was read right."""
        return self.intents_right / self.examples if self.examples else 1.0

    @property
    def slot_accuracy(self) -> float:
        """The share of examples whose slots were all read right, and nothing more."""
        return self.slots_right / self.examples if self.examples else 1.0

    def add(self, example: Example, reading: Reading) -> None:
        """Score one reading."""
        self.examples += 1
        expected = example.expected_slots()
        got = read_slots(reading)
        negated = example.expected_negated()
        chosen_negated = tuple(sorted(pair for pair in got if pair in negated))
        self.confusion[(example.intent, reading.intent)] += 1
        intent_ok = reading.intent == example.intent
        slots_ok = got == expected
        self.intents_right += intent_ok
        self.slots_right += slots_ok
        self.chose_negated += bool(chosen_negated)
        language = self.by_language[example.language]
        language["examples"] += 1
        language["intents"] += intent_ok
        language["slots"] += slots_ok
        for pair in expected & got:
            self.slot_counts[pair[0]]["tp"] += 1
        for pair in got - expected:
            self.slot_counts[pair[0]]["fp"] += 1
        for pair in expected - got:
            self.slot_counts[pair[0]]["fn"] += 1
        if not (intent_ok and slots_ok) or chosen_negated:
            self.misreads.append(
                Misread(
                    example,
                    reading.intent,
                    reading.confidence,
                    tuple(sorted(expected - got)),
                    tuple(sorted(got - expected)),
                    chosen_negated,
                )
            )

    def intent_scores(self) -> dict[str, tuple[float, float, float, int]]:
        """Per intent: precision, recall, F1 and support."""
        intents = sorted({e for e, _ in self.confusion} | {r for _, r in self.confusion})
        scores: dict[str, tuple[float, float, float, int]] = {}
        for intent in intents:
            tp = self.confusion[(intent, intent)]
            predicted = sum(n for (_, r), n in self.confusion.items() if r == intent)
            support = sum(n for (e, _), n in self.confusion.items() if e == intent)
            scores[intent] = (*_prf(tp, predicted - tp, support - tp), support)
        return scores

    def slot_scores(self) -> dict[str, tuple[float, float, float, int]]:
        """Per slot: precision, recall, F1 and support."""
        return {
            slot: (*_prf(c["tp"], c["fp"], c["fn"]), c["tp"] + c["fn"])
            for slot, c in sorted(self.slot_counts.items())
        }


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def evaluate(
    layer: TrainedUnderstanding, examples: Iterable[Example], report: Report | None = None
) -> Report:
    """Read every example with ``layer`` and score it."""
    report = report or Report()
    for example in examples:
        report.add(example, layer.read(example.text))
    return report


def held_out(knowledge: KnowledgeBase, data: TrainingData) -> Report:
    """Train on the fixed training split, score the held-out split (never trained on)."""
    train, test = data.split()
    return evaluate(train_understanding(knowledge, data, train), test)


def cross_validate(knowledge: KnowledgeBase, data: TrainingData, folds: int = 5) -> Report:
    """``folds``-fold cross-validation over every example (folds fixed by the text's hash)."""
    report = Report()
    fold_of = {
        id(e): int(hashlib.sha256(e.text.encode()).hexdigest(), 16) % folds for e in data.examples
    }
    for fold in range(folds):
        train = [e for e in data.examples if fold_of[id(e)] != fold]
        test = [e for e in data.examples if fold_of[id(e)] == fold]
        evaluate(train_understanding(knowledge, data, train), test, report)
    return report


# ---- nlu check --------------------------------------------------------------------------------


def lint(knowledge: KnowledgeBase, data: TrainingData) -> list[str]:
    """Problems in the data: duplicates, an utterance under two intents, unmarked values."""
    problems: list[str] = []
    seen: dict[str, Example] = {}
    for example in data.examples:
        key = " ".join(keys(example.text))
        first = seen.get(key)
        if first is None:
            seen[key] = example
        elif first.intent == example.intent:
            if first.language == example.language:  # "PowerShell" is a word in every language
                problems.append(f"{example.source}: duplicate of {first.source}: {example.text!r}")
        else:
            problems.append(
                f"{example.source}: also under {first.intent} ({first.source}): {example.text!r}"
            )
    layer = train_understanding(knowledge, data)
    cues = layer.vocabulary.cues
    for example in data.examples:
        for mark in example.marks:
            opening = keys(example.words(mark))[:1]
            if mark.slot != "role" and opening and opening[0] in cues:
                problems.append(
                    f"{example.source}: the mark {example.words(mark)!r} starts with a negation "
                    f"word; mark the value alone: {example.text!r}"
                )
    for example in data.examples:
        tokens, scoped, _ = layer.prepare(example.text)
        marked = [(m.start, m.end) for m in example.marks]
        for found in (*scoped.said, *scoped.negated):
            if found.slot == "role" or found.score < SURE_SCORE:
                continue
            start, end = tokens[found.start].start, tokens[found.end - 1].end
            if not any(s < end and start < e for s, e in marked):
                words = example.text[start:end]
                problems.append(
                    f"{example.source}: {words!r} names {found.slot}:{found.value} "
                    f"but is not marked: {example.text!r}"
                )
    return problems


def format_report(report: Report, title: str, *, misreads: int = 50) -> str:
    """The report as text."""
    lines = [
        f"{title}: {report.examples} examples, intents {report.intent_accuracy:.1%}, "
        f"slots {report.slot_accuracy:.1%}, negated values chosen {report.chose_negated}",
        "",
        f"{'intent':<16}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}",
    ]
    for intent, (p, r, f, n) in report.intent_scores().items():
        lines.append(f"{intent:<16}{p:>10.2f}{r:>8.2f}{f:>8.2f}{n:>9}")
    lines += ["", f"{'slot':<16}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}"]
    for slot, (p, r, f, n) in report.slot_scores().items():
        lines.append(f"{slot:<16}{p:>10.2f}{r:>8.2f}{f:>8.2f}{n:>9}")
    languages = [
        f"{lang} {c['intents'] / c['examples']:.0%}/{c['slots'] / c['examples']:.0%}"
        f" ({c['examples']})"
        for lang, c in sorted(report.by_language.items())
    ]
    lines += ["", "by language (intents/slots): " + ", ".join(languages)]
    confused = [(pair, n) for pair, n in report.confusion.most_common() if pair[0] != pair[1]]
    if confused:
        lines += ["", "confusions (expected -> read):"]
        lines += [f"  {e} -> {r}: {n}" for (e, r), n in confused[:25]]
    if report.misreads:
        lines += [
            "",
            f"misreads ({len(report.misreads)}, first {min(misreads, len(report.misreads))}):",
        ]
        for m in report.misreads[:misreads]:
            detail = []
            if m.intent != m.example.intent:
                detail.append(f"read {m.intent} ({m.confidence:.2f})")
            if m.missing:
                detail.append("missing " + ", ".join(f"{s}:{v}" for s, v in m.missing))
            if m.extra:
                detail.append("extra " + ", ".join(f"{s}:{v}" for s, v in m.extra))
            if m.chose_negated:
                detail.append("CHOSE NEGATED " + ", ".join(f"{s}:{v}" for s, v in m.chose_negated))
            lines.append(f"  {m.example.source}: {m.example.text!r}: {'; '.join(detail)}")
    return "\n".join(lines)


def confusion_matrix(report: Report) -> str:
    """The confusion matrix, rows expected, columns read."""
    intents: Sequence[str] = sorted(
        {e for e, _ in report.confusion} | {r for _, r in report.confusion}
    )
    short = [i[:6] for i in intents]
    lines = [" " * 16 + "".join(f"{s:>7}" for s in short)]
    for expected in intents:
        cells = "".join(f"{report.confusion[(expected, read)] or '.':>7}" for read in intents)
        lines.append(f"{expected:<16}{cells}")
    return "\n".join(lines)
