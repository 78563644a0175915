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

Optional keys, checked when a label has them:

- ``failures``: per failed recipient, in the order of ``recipients``, ``{address, status}`` with the
  code the bounce gives that recipient (null when it gives none); the first one's status is
  ``status``.
- ``named_type``: the kind of recipient the bounce's cause sentence names when the code does not
  tell it (``NAMED_TYPES``), else null.
- ``listed_statuses``: the codes a text merely lists (a documentation page, a table); ``status``
  is null then.

A ``bounce_5712`` may have a null status: the older Exchange text "delivery to this address is
restricted" is the problem even when the bounce gives no code.

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
OPTIONAL_KEYS = ("failures", "named_type", "listed_statuses")
NAMED_TYPES = {
    "group",
    "mailbox",
    "m365_group",
    "mail_user",
    "public_folder",
    "shared_mailbox",
    "distribution_group",
    "security_group",
    "dynamic_distribution_group",
}
RECIPIENT_TYPE_BY_STATUS = {
    "5.7.13": "public_folder",
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
    keys = set(case) - set(OPTIONAL_KEYS)
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
    # A look-alike (bounce_other) tells no recipient type, even where its number is shared with a
    # family code (5.7.13 "User account disabled" on other servers).
    expected_type = (
        RECIPIENT_TYPE_BY_STATUS.get(status)
        if status and case["intent"] != "bounce_other"
        else None
    )
    if case["recipient_type"] != expected_type:
        problems.append(
            f"recipient_type {case['recipient_type']!r} should be {expected_type!r}"
            f" for status {status!r}"
        )

    problems.extend(_optional_problems(case, status, recipients))
    if case["intent"] in {"bounce_5712", "bounce_other"}:
        if not recipients:
            problems.append("a bounce needs at least one failed recipient")
        if status is None and case["intent"] == "bounce_other":
            problems.append("a bounce_other needs a status: only the code tells another problem")
    elif case["intent"] != "question_5712":
        facts = {key: case[key] for key in FACT_KEYS if key not in {"intent", "language", "format"}}
        if any(value not in (None, []) for value in facts.values()):
            problems.append(f"a {case['intent']} message carries no bounce facts, got {facts}")
    return problems


def _optional_problems(case: dict[str, Any], status: Any, recipients: list[Any]) -> list[str]:
    problems = []
    failures = case.get("failures")
    if failures is not None:
        if not isinstance(failures, list) or not all(
            isinstance(f, dict) and set(f) == {"address", "status"} for f in failures
        ):
            problems.append("failures must be a list of {address, status} mappings")
        else:
            if [f["address"] for f in failures] != recipients:
                problems.append("failures must name the recipients, in their order")
            if failures and failures[0]["status"] != status:
                problems.append("the first failure's status must be the status")
            for failure in failures:
                code = failure["status"]
                if code is not None and not (isinstance(code, str) and STATUS_RE.fullmatch(code)):
                    problems.append(f"failure status {code!r} is not a string like '5.7.12'")
    if "named_type" in case:
        named = case["named_type"]
        if named is not None and named not in NAMED_TYPES:
            problems.append(f"named_type {named!r} not in {sorted(NAMED_TYPES)}")
        if named is not None and case["recipient_type"] is not None:
            problems.append("named_type is only read when the code does not tell the type")
    listed = case.get("listed_statuses")
    if listed is not None:
        if not isinstance(listed, list) or not all(
            isinstance(code, str) and STATUS_RE.fullmatch(code) for code in listed
        ):
            problems.append("listed_statuses must be a list of codes like '5.7.12'")
        elif listed and status is not None:
            problems.append("a text that lists codes asks about none of them: status is null")
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
    checked = [*FACT_KEYS, *(key for key in OPTIONAL_KEYS if key in case)]
    mismatches = [
        f"  {key}: expected {case[key]!r}, got {result.get(key, '<missing>')!r}"
        for key in checked
        if key not in result or result[key] != case[key]
    ]
    assert not mismatches, f"{case['file']} ({case['about']}):\n" + "\n".join(mismatches)
