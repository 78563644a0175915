"""The language layer: its held-out split read right, negation never yielding a ruled-out value,
typos and partial button words, the data's lint; the served classifiers read as scikit-learn's,
and a serving process never imports scikit-learn."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dialogs.answers import Option
from dialogs.reading import Expectation
from dialogs.understanding.classifier import NOTHING, classifier_text
from dialogs.understanding.data import (
    HELD_OUT_SHARE,
    DataError,
    default_training_data,
    load_training_data,
    parse_example,
)
from dialogs.understanding.evaluate import held_out, lint
from dialogs.understanding.layer import TrainedUnderstanding, build_understanding, prepare
from dialogs.understanding.slots import slot_label
from dialogs.understanding.training import Reference, share, train_classifier
from dialogs.understanding.vocabulary import Vocabulary
from knowledge.kb import default_knowledge

NEGATION_SUITE = Path(__file__).parent / "nlu" / "negation.yaml"
KB = default_knowledge()


@pytest.fixture(scope="module")
def layer() -> TrainedUnderstanding:
    return build_understanding()


def test_the_data_is_large_enough_in_every_language() -> None:
    data = default_training_data()
    assert len(data.examples) >= 1200
    for language in ("en", "fr", "de", "es", "it", "nl", "pt"):
        assert sum(e.language == language for e in data.examples) >= 100, language


def test_the_held_out_split_is_fixed_and_never_trained_on() -> None:
    data = default_training_data()
    train, held = data.split()
    assert len(held) >= HELD_OUT_SHARE * len(data.examples)
    assert not {id(e) for e in train} & {id(e) for e in held}
    _, again_held = data.split()
    assert [e.text for e in again_held] == [e.text for e in held]


def test_the_held_out_split_is_read_right() -> None:
    report = held_out(KB, default_training_data())
    misread = "\n".join(
        f"{m.example.source}: {m.example.text!r} -> {m.intent} {m.missing} {m.extra}"
        for m in report.misreads[:30]
    )
    assert report.intent_accuracy >= 0.95, misread
    assert report.slot_accuracy >= 0.95, misread
    assert report.chose_negated == 0, misread


def test_the_negation_suite_never_yields_a_negated_value(layer: TrainedUnderstanding) -> None:
    suite = yaml.safe_load(NEGATION_SUITE.read_text(encoding="utf-8"))["utterances"]
    assert len(suite) >= 60
    assert len({u["language"] for u in suite}) == 7
    chosen = []
    missed = []
    for utterance in suite:
        reading = layer.read(utterance["text"])
        said = {f"{s.slot}:{s.value}" for s in reading.slots}
        chosen += [(utterance["text"], value) for value in utterance["negated"] if value in said]
        missed += [(utterance["text"], v) for v in utterance.get("said") or () if v not in said]
    assert chosen == []  # never, in any language
    assert len(missed) <= len(suite) // 10, missed  # the values said are mostly read too


@pytest.mark.parametrize(
    ("text", "slot", "value"),
    [
        ("shraed mailboxs", "recipient_type", "shared_mailbox"),
        ("distrubution list", "recipient_type", "distribution_group"),
        ("powershel", "centre", "powershell"),
        ("the new admn center", "centre", "new_eac"),
        ("classc eac pls", "centre", "classic_eac"),
    ],
)
def test_typos_are_read(layer: TrainedUnderstanding, text: str, slot: str, value: str) -> None:
    reading = layer.read(text)
    assert value in reading.values(slot) or value in {u.value for u in reading.unsure}


def test_partial_button_words_are_read_while_the_question_waits(
    layer: TrainedUnderstanding,
) -> None:
    options = (
        Option("allow_all", "Allow everyone"),
        Option("allowed_senders", "Allow chosen senders only"),
    )
    reading = layer.read("chosen ones", Expectation("method", options))
    assert reading.value("method") == "allowed_senders"


def test_a_question_about_a_value_is_a_question(layer: TrainedUnderstanding) -> None:
    reading = layer.read("would it be risky to just let everybody send to it")
    assert reading.intent == "ask_risk"


def test_a_problem_told_with_cant_is_not_a_negation(layer: TrainedUnderstanding) -> None:
    reading = layer.read("people outside cant email our shared mailbox")
    assert "shared_mailbox" in reading.values("recipient_type")
    assert not reading.negated


def test_the_markup_is_checked() -> None:
    example = parse_example("its a [DL](recipient_type:distribution_group)", "inform", "en")
    assert example.text == "its a DL"
    assert example.expected_slots() == {("recipient_type", "distribution_group")}
    with pytest.raises(DataError, match="unknown value"):
        parse_example("[DL](recipient_type:mailing_list)", "inform", "en", "x.yaml: inform[0]")
    with pytest.raises(DataError, match="unknown slot"):
        parse_example("[DL](kind:group)", "inform", "en", "x.yaml: inform[0]")


def test_malformed_data_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "negation.yaml").write_text(
        (Path(__file__).parents[1] / "knowledge" / "nlu" / "negation.yaml").read_text()
    )
    (tmp_path / "en.yaml").write_text("language: en\nexamples:\n  nonsense: [hello]\n")
    with pytest.raises(DataError, match=r"en\.yaml: examples: unknown intent 'nonsense'"):
        load_training_data(tmp_path)


def test_the_packaged_data_lints_clean() -> None:
    problems = lint(KB, default_training_data())
    assert problems == []


def test_a_short_message_said_again_reads_as_it_did_and_a_long_one_is_read_anew(
    layer: TrainedUnderstanding,
) -> None:
    """Short readings are remembered (a person's "yes", a button's words); the model cache
    keeps the trained layer without them."""
    expecting = Expectation("role", ())
    first = layer.read("its a shraed mailbox", expecting)
    assert layer.read("its a shraed mailbox", expecting) is first
    assert layer.read_anew("its a shraed mailbox", expecting) == first
    assert layer.read("its a shraed mailbox") == layer.read_anew("its a shraed mailbox")
    long = "the shared mailbox bounces " * 20
    assert layer.read(long) is not layer.read(long)
    again = pickle.loads(pickle.dumps(layer))  # noqa: S301 - our own object
    assert "_remembered" not in layer.__getstate__()
    assert again.read("its a shraed mailbox", expecting) == first


def test_the_served_features_and_ranks_are_scikit_learns_over_the_held_out_split() -> None:
    """The served classifiers (plain dicts and arrays, our own analyzers) read every held-out
    message as scikit-learn's own transform and the same weights do: the same columns, the same
    values and the same ranking, within float32's precision; for the intents and for the slot
    classifiers (which read the words alone)."""
    data = default_training_data()
    train, held = data.split()
    vocabulary = Vocabulary(KB, data, train)
    trained = [prepare(vocabulary, e.text) for e in train]
    intents = Reference([classifier_text(tokens, scoped) for tokens, scoped, _ in trained])
    plain = Reference([classifier_text(tokens, NOTHING) for tokens, _, _ in trained])
    served_intents, served_plain = share([intents, plain])
    assert served_intents.parts[0].vocabulary is served_plain.parts[0].vocabulary
    classifiers = [
        (intents, served_intents, [e.intent for e in train], False),
        (plain, served_plain, [slot_label(e, "role") for e in train], True),
        (plain, served_plain, [slot_label(e, "method") for e in train], True),
    ]
    held_prepared = [prepare(vocabulary, e.text) for e in held]
    for reference, served, labels, words_alone in classifiers:
        classifier = train_classifier(reference, served, labels)
        texts = [
            classifier_text(tokens, NOTHING if words_alone else scoped)
            for tokens, scoped, _ in held_prepared
        ]
        expected = reference.transform(texts)
        own_weights = classifier.weights[served.columns]  # in the reference's own columns
        scores = (expected @ own_weights + classifier.bias) * classifier.temperature
        for row, text in enumerate(texts):
            columns, values = classifier.features(text)
            start, end = expected.indptr[row], expected.indptr[row + 1]
            want = served.columns[expected.indices[start:end]]
            order, wanted = np.argsort(columns), np.argsort(want)
            np.testing.assert_array_equal(columns[order], want[wanted], text)
            np.testing.assert_allclose(
                values[order],
                expected.data[start:end][wanted],
                rtol=1e-5,
                atol=1e-6,
                err_msg=text,
            )
            served_rank = classifier.rank(text)
            by_reference = classifier.ranked(np.asarray(scores[row]).ravel())
            np.testing.assert_allclose(
                [dict(served_rank)[label] for label, _ in by_reference],
                [p for _, p in by_reference],
                rtol=1e-4,
                atol=1e-6,
                err_msg=text,
            )
            if by_reference[0][1] - by_reference[1][1] > 1e-4:  # not a tie within precision
                assert served_rank[0][0] == by_reference[0][0], text
    assert len(held) >= 300


SERVED = """
import sys
from bot.app import create_app
from bot.runtime import open_runtime
from dialogs.understanding.layer import build_understanding
reading = build_understanding().read("its a shraed mailbox")
print(reading.intent, reading.slots[0].value)
print(sorted({m.split(".")[0] for m in sys.modules} & {"sklearn", "scipy"}))
"""


def _served(cache: str) -> subprocess.Popen[str]:
    """A process that builds the language layer as the server does, from the cache ``cache``;
    it prints what it read and which of scikit-learn and scipy it imported."""
    return subprocess.Popen(
        [sys.executable, "-c", SERVED],
        env={**os.environ, "NDRBOT_CACHE_DIR": cache},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_serving_process_imports_neither_scikit_learn_nor_scipy(
    layer: TrainedUnderstanding,
) -> None:
    """Built from a warm cache (the fixture's), the layer holds no scikit-learn object: the
    process that loads it never imports the 95 MB of scikit-learn and scipy."""
    cache = os.environ.get("NDRBOT_CACHE_DIR") or str(Path.home() / ".cache" / "ndrbot")
    out, err = _served(cache).communicate(timeout=300)
    assert out.splitlines() == ["inform shared_mailbox", "[]"], err


@pytest.mark.slow
def test_two_processes_starting_on_an_empty_cache_train_aside_and_both_read(
    tmp_path: Path,
) -> None:
    """With no cache, each trains in a child process (scikit-learn stays out of it), writes
    the cache atomically, and reads it back; together, both start and one layer is kept."""
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    processes = [_served(str(cache)) for _ in range(2)]
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        assert out.splitlines() == ["inform shared_mailbox", "[]"], err
    assert [p.suffix for p in cache.iterdir()] == [".pickle"]
