"""The language layer: its held-out split read right, negation never yielding a ruled-out value,
typos and partial button words, and the data's lint."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import yaml

from dialogs.answers import Option
from dialogs.reading import Expectation
from dialogs.understanding.data import (
    HELD_OUT_SHARE,
    DataError,
    default_training_data,
    load_training_data,
    parse_example,
)
from dialogs.understanding.evaluate import held_out, lint
from dialogs.understanding.layer import TrainedUnderstanding, build_understanding
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
