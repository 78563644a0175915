"""Matching typed answers to choices: numbers, labels, synonyms, phrases in sentences, typos."""

from __future__ import annotations

import pytest

from dialogs.answers import Option, find_mention, match_answer, normalise

COLOURS = (
    Option("red", "Red", ("crimson",), ("bright red",)),
    Option("blue", "Blue", ("navy", "sky blue"), ("navy blue",)),
    Option("light_blue", "Light blue", ("pale blue",)),
)


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("1", "red"),
        ("#2", "blue"),
        ("option 3", "light_blue"),
        ("4", None),
        ("RED", "red"),
        ("light blue", "light_blue"),
        ("light_blue", "light_blue"),
        ("crimson!", "red"),
        ("it's navy, I think", "blue"),
        ("the pale blue one please", "light_blue"),
        ("crimsn", "red"),
        ("", None),
        ("green", None),
        ("red or blue", None),
    ],
)
def test_match_answer(said: str, expected: str | None) -> None:
    assert match_answer(said, COLOURS) == expected


def test_the_longest_phrase_wins_inside_a_sentence() -> None:
    assert find_mention("we painted it sky blue yesterday", COLOURS, use_answers=True) == "blue"
    assert find_mention("make it light blue", COLOURS, use_answers=True) == "light_blue"


def test_mentions_are_specific_phrases_only() -> None:
    assert find_mention("I'd like it bright red", COLOURS) == "red"
    assert find_mention("I'd like it red", COLOURS) is None
    assert find_mention("bright red and navy blue", COLOURS) is None  # two answers: ask instead


def test_normalise() -> None:
    assert normalise("  It’s a   DL!! ") == "it's a dl"
    assert normalise("P.S. thanks") == "p.s thanks"
    assert normalise("sales@contoso.com.") == "sales@contoso.com"
