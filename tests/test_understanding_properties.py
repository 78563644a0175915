"""The language layer never fails on what people (or their clipboards) send."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogs.answers import Option
from dialogs.reading import INTENTS, Expectation
from dialogs.understanding.layer import build_understanding

LAYER = build_understanding()
WORDS = st.sampled_from(
    [
        "not",
        "shared",
        "mailbox",
        "n't",
        "pas",
        "nicht",
        "@",
        "5.7.12",
        "a@b.co",
        "ß",
        "İ",
        "é",
        "\u200b",
        "'",
        "-",
        ",",
        "?",
        "or",
        "rather than",
        "everyone",
        "powershel",
        "🙂",
        "x" * 300,
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=400), st.lists(WORDS, max_size=40).map(" ".join)))
def test_any_text_is_read_without_error(text: str) -> None:
    expecting = Expectation("method", (Option("allow_all", "Allow everyone"),))
    reading = LAYER.read(text, expecting)
    assert reading.intent in INTENTS
    assert 0.0 <= reading.confidence <= 1.0
    said = {(v.slot, v.value) for v in reading.slots}
    assert not said & {(v.slot, v.value) for v in reading.negated}
