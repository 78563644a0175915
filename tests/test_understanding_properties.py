"""The language layer never fails on what people (or their clipboards) send, and its analyzers
cut any text into the n-grams scikit-learn's would."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from dialogs.answers import Option
from dialogs.reading import INTENTS, Expectation
from dialogs.understanding.classifier import WORD_PATTERN, char_wb_grams, word_grams
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


# White space of every kind (and runs of it), short words, long words, accents and emoji.
PIECES = st.lists(
    st.one_of(
        st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "\u2003", "\x1c", "\r\n"]),
        st.text(min_size=1, max_size=7),
    ),
    max_size=30,
).map("".join)
RANGES = st.tuples(st.integers(1, 6), st.integers(0, 4)).map(lambda r: (r[0], r[0] + r[1]))


@settings(max_examples=300, deadline=None)
@given(PIECES, RANGES)
def test_the_char_wb_grams_are_scikit_learns(text: str, ngrams: tuple[int, int]) -> None:
    analyze = TfidfVectorizer(analyzer="char_wb", ngram_range=ngrams, lowercase=False)
    assert char_wb_grams(text, *ngrams) == analyze.build_analyzer()(text)


@settings(max_examples=300, deadline=None)
@given(PIECES, RANGES)
def test_the_word_grams_are_scikit_learns(text: str, ngrams: tuple[int, int]) -> None:
    analyze = TfidfVectorizer(
        analyzer="word", ngram_range=ngrams, lowercase=False, token_pattern=WORD_PATTERN
    )
    assert sorted(word_grams(text, *ngrams)) == sorted(analyze.build_analyzer()(text))
