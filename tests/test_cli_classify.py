"""``python -m bot classify`` as another tool runs it: a subprocess, a file or stdin, JSON out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from knowledge.ndr import MAX_INPUT_BYTES

CORPUS = Path(__file__).parent / "corpus"
CONTRACT_KEYS = {
    "intent",
    "status",
    "smtp_code",
    "resolver",
    "recipients",
    "sender",
    "recipient_domain",
    "recipient_type",
    "language",
}


def classify(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "classify", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_a_bounce_file_prints_one_json_object_with_the_contract_keys() -> None:
    result = classify(str(CORPUS / "en-old-57133-group-display-name.txt"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 1
    facts = json.loads(lines[0])
    assert facts.keys() >= CONTRACT_KEYS
    assert facts["intent"] == "bounce_5712"
    assert facts["status"] == "5.7.133"
    assert facts["recipient_type"] == "group"


def test_stdin_is_read_when_the_file_is_dash_or_absent() -> None:
    for args in (("-",), ()):
        result = classify(*args, stdin=b"how do I fix 5.7.12")
        assert result.returncode == 0, result.stderr
        facts = json.loads(result.stdout)
        assert facts["intent"] == "question_5712"
        assert facts["status"] == "5.7.12"
        assert facts["recipients"] == []
        assert facts["sender"] is None


def test_the_content_decides_the_format_not_the_file_name(tmp_path: Path) -> None:
    disguised = tmp_path / "bounce.txt"
    disguised.write_bytes((CORPUS / "en-eml-57129-mailbox-7bit.eml").read_bytes())
    facts = json.loads(classify(str(disguised)).stdout)
    assert facts["format"] == "eml"
    assert facts["intent"] == "bounce_5712"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "PNG"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(200), "Outlook .msg"),
        (bytes(range(256)) * 4, "binary"),
    ],
)
def test_binary_input_exits_non_zero_with_one_line(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "upload.eml"
    path.write_bytes(content)
    result = classify(str(path))
    assert result.returncode == 2
    assert result.stdout == b""
    message = result.stderr.decode().strip()
    assert len(message.splitlines()) == 1
    assert reason in message


def test_over_size_input_exits_non_zero(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    path.write_bytes(b"550 5.7.12 " * (MAX_INPUT_BYTES // 11 + 1))
    result = classify(str(path))
    assert result.returncode == 2
    assert "too large" in result.stderr.decode()
    piped = classify(stdin=path.read_bytes())
    assert piped.returncode == 2


@pytest.mark.parametrize("target", ["missing.eml", "."])
def test_unreadable_paths_exit_non_zero(tmp_path: Path, target: str) -> None:
    result = classify(str(tmp_path / target))
    assert result.returncode == 2
    assert len(result.stderr.decode().strip().splitlines()) == 1


def test_an_empty_message_is_not_a_bounce() -> None:
    facts = json.loads(classify(stdin=b"").stdout)
    assert facts["intent"] == "other"
    assert facts["language"] is None
    assert facts["status"] is None


def test_the_new_keys_are_printed_beside_the_contract_keys() -> None:
    result = classify(str(CORPUS / "en-eml-two-recipients-57134-57133.eml"))
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["status"] == "5.7.134"  # the contract: the first failure's code
    assert facts["recipient_type"] == "mailbox"
    assert facts["failures"] == [
        {"address": "p.novak@contoso.com", "status": "5.7.134"},
        {"address": "board-members@contoso.com", "status": "5.7.133"},
    ]
    assert facts["named_type"] is None
    assert facts["listed_statuses"] == []


def test_named_type_and_listed_statuses_are_printed() -> None:
    named = json.loads(classify(str(CORPUS / "en-new-5712-group-named.txt")).stdout)
    assert (named["status"], named["recipient_type"], named["named_type"]) == (
        "5.7.12",
        None,
        "group",
    )
    listed = json.loads(
        classify(
            stdin=b"5.7.133, 5.7.134 and 5.7.135 are the newer delivery restriction codes."
        ).stdout
    )
    assert listed["status"] is None
    assert listed["listed_statuses"] == ["5.7.133", "5.7.134", "5.7.135"]
    assert listed["failures"] == []
