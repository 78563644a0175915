"""The reader's vocabulary per language, loaded once from ``lexicon/bounce_words.yaml``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

LEXICON_FILE = Path(__file__).parent / "lexicon" / "bounce_words.yaml"


@dataclass(frozen=True)
class Lexicon:
    """Bounce phrases, field labels and common words, per language."""

    bounce_markers: dict[str, tuple[str, ...]]
    sender_labels: tuple[str, ...]
    recipient_labels: tuple[str, ...]
    subject_labels: tuple[str, ...]
    server_labels: tuple[str, ...]
    date_labels: tuple[str, ...]
    header_section_markers: tuple[str, ...]
    subject_prefixes: tuple[str, ...]
    marker_pattern: re.Pattern[str]
    marker_language: dict[str, str]
    marker_wrapped_pattern: re.Pattern[str]  # the markers, also where a line break splits them
    label_pattern: re.Pattern[str]
    header_section_pattern: re.Pattern[str]
    word_languages: dict[str, frozenset[str]]
    restricted_delivery_pattern: re.Pattern[str]  # the old "delivery ... is restricted" text
    restriction_pattern: re.Pattern[str]  # "only accepts", "n'accepte que", ...
    named_type_pattern: re.Pattern[str]  # "shared mailbox", "groupe", "Verteilergruppe", ...
    named_type_ids: dict[str, str]  # a named-type phrase (as ``phrase_key`` gives it) -> its id


def _alternation(phrases: list[str]) -> str:
    return "|".join(re.escape(p) for p in sorted(set(phrases), key=len, reverse=True))


def _phrase(phrase: str) -> str:
    """A phrase as a regex: a space matches any run of whitespace (a wrapped line too), and an
    apostrophe matches the typographic one as well."""
    words = (re.escape(w).replace("'", "['\u2019]") for w in phrase.lower().split())
    return r"\s+".join(words)


def _phrases(phrases: list[str]) -> str:
    unique = sorted({" ".join(p.lower().split()) for p in phrases}, key=len, reverse=True)
    return "|".join(_phrase(p) for p in unique)


def phrase_key(text: str) -> str:
    """The lookup key of a phrase as found in a text: lower case, single spaces, plain '."""
    return " ".join(text.lower().replace("\u2019", "'").split())


def _word_languages(common_words: dict[str, list[Any]]) -> dict[str, frozenset[str]]:
    languages: dict[str, set[str]] = {}
    for language, words in common_words.items():
        for word in words:
            languages.setdefault(str(word).lower(), set()).add(language)
    return {word: frozenset(langs) for word, langs in languages.items()}


@cache
def lexicon() -> Lexicon:
    """The packaged lexicon (read on first use, then kept)."""
    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw: dict[str, Any] = yaml.load(LEXICON_FILE.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
    markers = {
        lang: tuple(m.lower() for m in words) for lang, words in raw["bounce_markers"].items()
    }
    named_types = {
        phrase_key(phrase): type_id
        for type_id, languages in raw["named_types"].items()
        for phrases in languages.values()
        for phrase in phrases
    }
    labels = [
        *raw["sender_labels"],
        *raw["recipient_labels"],
        *raw["subject_labels"],
        *raw["server_labels"],
        *raw["date_labels"],
    ]
    return Lexicon(
        bounce_markers=markers,
        sender_labels=tuple(raw["sender_labels"]),
        recipient_labels=tuple(raw["recipient_labels"]),
        subject_labels=tuple(raw["subject_labels"]),
        server_labels=tuple(raw["server_labels"]),
        date_labels=tuple(raw["date_labels"]),
        header_section_markers=tuple(raw["header_section_markers"]),
        subject_prefixes=tuple(raw["subject_prefixes"]),
        marker_pattern=re.compile(_alternation([m for ms in markers.values() for m in ms])),
        marker_language={m: lang for lang, ms in markers.items() for m in ms},
        marker_wrapped_pattern=re.compile(_phrases([m for ms in markers.values() for m in ms])),
        label_pattern=re.compile(r"^[\s*_|>-]*(" + _alternation(labels) + r")[\s*_]*:"),
        header_section_pattern=re.compile(
            r"^\s*(?:" + _alternation([m.lower() for m in raw["header_section_markers"]]) + ")"
        ),
        word_languages=_word_languages(raw["common_words"]),
        restricted_delivery_pattern=re.compile(
            _phrases([p for ps in raw["restricted_delivery"].values() for p in ps])
        ),
        restriction_pattern=re.compile(
            _phrases([p for ps in raw["restriction_phrases"].values() for p in ps])
        ),
        named_type_pattern=re.compile(r"(?<!\w)(?:" + _phrases(list(named_types)) + ")"),
        named_type_ids=named_types,
    )
