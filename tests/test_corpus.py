"""The labelled corpus of bounces and chat messages, checked against ``bot.classify``.

Each file in ``tests/corpus/`` is one message as a user would paste or forward it (plain text, Teams
HTML, Slack markup, or a MIME ``.eml``); ``tests/corpus/labels.yaml`` holds the expected reading:

- ``intent``: one of ``INTENTS`` below.
- ``status``: enhanced status code of the first failed recipient (or the code asked about),
  else null.
- ``smtp_code``: the three-digit SMTP reply written before the status, as a string, else null.
- ``resolver``: the identifier right after the status (``RESOLVER.RST.AuthRequired``,
  ``TRANSPORT.RULES.RejectMessage``, ``UnifiedGroupAgent``...), null when prose follows the status.
- ``recipients``: only the addresses that failed (or that a question says cannot be reached),
  lowercased, in order of appearance.
- ``sender``: the original sender (never postmaster, the MicrosoftExchange… address, or whoever
  merely forwarded the bounce), lowercased, else null.
- ``recipient_domain``: the domain of ``recipients[0]``, else null.
- ``recipient_type``: only what the status code tells (``RECIPIENT_TYPE_BY_STATUS``), else null.
- ``language``: ISO 639-1 code of the bounce's human text (of the message for non-bounces), null
  when there is no natural-language text.
- ``format``: ``eml``, ``html``, ``slack`` or ``text``.

``tests/corpus/FORMATS.md`` records the public samples each format was modelled on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

CORPUS = Path(__file__).parent / "corpus"
LABELS_FILE = CORPUS / "labels.yaml"
NOT_CASES = {"labels.yaml", "FORMATS.md"}
MIN_CASES = 50

INTENTS = {
    "bounce_5712",
    "bounce_other",
    "question_5712",
    "escalate",
    "help",
    "greeting",
    "cancel",
    "start_over",
    "feedback",
    "other",
}
FORMATS = {"eml", "html", "slack", "text"}
LANGUAGES = {"en", "fr", "de", "es", "it", "nl", "pt"}
FACT_KEYS = (
    "intent",
    "status",
    "smtp_code",
    "resolver",
    "recipients",
    "sender",
    "recipient_domain",
    "recipient_type",
    "language",
    "format",
)
LABEL_KEYS = {"file", "about", *FACT_KEYS}
RECIPIENT_TYPE_BY_STATUS = {
    "5.7.133": "group",
    "5.7.134": "mailbox",
    "5.7.135": "public_folder",
    "5.7.136": "mail_user",
    "5.7.193": "m365_group",
    "5.7.124": "group",
    "5.7.129": "mailbox",
}
EXTENSION_BY_FORMAT = {"eml": ".eml", "html": ".html", "slack": ".txt", "text": ".txt"}
STATUS_RE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
SMTP_CODE_RE = re.compile(r"[245]\d\d")
ADDRESS_RE = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}")


def load_labels() -> list[dict[str, Any]]:
    with LABELS_FILE.open(encoding="utf-8") as fh:
        labels = yaml.safe_load(fh)
    assert isinstance(labels, list), "labels.yaml must be a list of mappings"
    return labels


LABELS = load_labels()


def test_corpus_is_large_enough() -> None:
    assert len(LABELS) >= MIN_CASES, f"only {len(LABELS)} labelled cases, want >= {MIN_CASES}"


def test_every_file_has_a_label_and_every_label_a_file() -> None:
    labelled = [case["file"] for case in LABELS]
    duplicates = sorted({name for name in labelled if labelled.count(name) > 1})
    assert not duplicates, f"labelled more than once: {duplicates}"
    on_disk = {p.name for p in CORPUS.iterdir() if p.is_file() and p.name not in NOT_CASES}
    assert sorted(on_disk - set(labelled)) == [], "corpus files without a label"
    assert sorted(set(labelled) - on_disk) == [], "labels without a corpus file"


def label_problems(case: dict[str, Any]) -> list[str]:
    """Everything wrong with one label, as readable sentences."""
    problems = []
    keys = set(case)
    if keys != LABEL_KEYS:
        problems.append(
            f"keys differ: missing {sorted(LABEL_KEYS - keys)}, extra {sorted(keys - LABEL_KEYS)}"
        )
        return problems
    if not isinstance(case["about"], str) or not case["about"].strip():
        problems.append("about must be a non-empty line")
    if case["intent"] not in INTENTS:
        problems.append(f"intent {case['intent']!r} not in {sorted(INTENTS)}")
    if case["format"] not in FORMATS:
        problems.append(f"format {case['format']!r} not in {sorted(FORMATS)}")
    elif not case["file"].endswith(EXTENSION_BY_FORMAT[case["format"]]):
        problems.append(
            f"format {case['format']} expects a {EXTENSION_BY_FORMAT[case['format']]} file"
        )
    if case["language"] is not None and case["language"] not in LANGUAGES:
        problems.append(f"language {case['language']!r} not in {sorted(LANGUAGES)}")

    status, smtp_code = case["status"], case["smtp_code"]
    if status is not None and not (isinstance(status, str) and STATUS_RE.fullmatch(status)):
        problems.append(f"status {status!r} is not a string like '5.7.12'")
    if smtp_code is not None and not (
        isinstance(smtp_code, str) and SMTP_CODE_RE.fullmatch(smtp_code)
    ):
        problems.append(f"smtp_code {smtp_code!r} is not a string like '550'")
    if smtp_code is not None and status is not None and smtp_code[0] != status[0]:
        problems.append(f"smtp_code {smtp_code} and status {status} disagree on the class")
    if case["resolver"] is not None and not (
        isinstance(case["resolver"], str) and re.fullmatch(r"[A-Za-z][\w.]*", case["resolver"])
    ):
        problems.append(f"resolver {case['resolver']!r} is not an identifier")

    recipients = case["recipients"]
    if not isinstance(recipients, list):
        problems.append("recipients must be a list")
        recipients = []
    for address in [*recipients, case["sender"]]:
        if address is None:
            continue
        if not (isinstance(address, str) and ADDRESS_RE.fullmatch(address)):
            problems.append(f"{address!r} is not an email address")
        elif address != address.lower():
            problems.append(f"{address!r} is not lowercase")
    if len(set(recipients)) != len(recipients):
        problems.append("recipients repeat an address")
    expected_domain = recipients[0].rsplit("@", 1)[-1] if recipients else None
    if case["recipient_domain"] != expected_domain:
        problems.append(
            f"recipient_domain {case['recipient_domain']!r} should be {expected_domain!r}"
        )
    expected_type = RECIPIENT_TYPE_BY_STATUS.get(status) if status else None
    if case["recipient_type"] != expected_type:
        problems.append(
            f"recipient_type {case['recipient_type']!r} should be {expected_type!r}"
            f" for status {status!r}"
        )

    if case["intent"] in {"bounce_5712", "bounce_other"}:
        if status is None or not recipients:
            problems.append("a bounce needs a status and at least one failed recipient")
    elif case["intent"] != "question_5712":
        facts = {key: case[key] for key in FACT_KEYS if key not in {"intent", "language", "format"}}
        if any(value not in (None, []) for value in facts.values()):
            problems.append(f"a {case['intent']} message carries no bounce facts, got {facts}")
    return problems


def test_labels_are_well_formed() -> None:
    report = {case.get("file", "?"): label_problems(case) for case in LABELS}
    report = {name: problems for name, problems in report.items() if problems}
    assert not report, "malformed labels:\n" + "\n".join(
        f"  {name}: {'; '.join(p)}" for name, p in report.items()
    )


@pytest.mark.parametrize("case", LABELS, ids=[case["file"] for case in LABELS])
def test_classify_reads_case(case: dict[str, Any]) -> None:
    from bot.classify import classify_bytes

    data = (CORPUS / case["file"]).read_bytes()
    result = classify_bytes(data)
    assert isinstance(result, dict), f"classify_bytes returned {type(result).__name__}, want dict"
    mismatches = [
        f"  {key}: expected {case[key]!r}, got {result.get(key, '<missing>')!r}"
        for key in FACT_KEYS
        if key not in result or result[key] != case[key]
    ]
    assert not mismatches, f"{case['file']} ({case['about']}):\n" + "\n".join(mismatches)
