"""Property tests: any text or bytes go through the reader and the detector without an exception,
in time that grows linearly with the input (checked on inputs built to be pathological)."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dialogs.intent import IntentName, recognise_content
from knowledge.ndr import MAX_INPUT_BYTES, InputRejected, read_bounce

# Pieces of real bounces: hypothesis recombines them into inputs that stress every branch.
_FRAGMENTS = [
    "550 5.7.12 ",
    "#550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; authentication required ##rfc822;",
    "Remote Server returned '",
    "Delivery has failed to these recipients or groups:\n",
    "Diagnostic information for administrators:\n",
    "Generating server: ",
    "Original message headers:\n",
    "From: Microsoft Outlook <postmaster@contoso.onmicrosoft.com>\n",
    "To: ",
    "Subject: Undeliverable: ",
    "-----Original Message-----\n",
    "sales@contoso.com",
    "a@b",
    "@@@",
    "@",
    "<mailto:",
    "|",
    ">",
    "<",
    "<p>",
    "<a href='mailto:x@y.com'>",
    "<!--",
    "<style>",
    "&lt;",
    "&amp;",
    "> > ",
    'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n',
    "--b\n",
    "Final-Recipient: rfc822;",
    "Status: 5.7.134\n",
    "\n\n",
    "\r\n",
    "5.",
    "5.7.",
    "10.5.7.12",
    "\u00a0",
    "\u200b",
    "é",
    "a" * 70,
    ".",
]

_texts = st.one_of(
    st.text(max_size=3000),
    st.lists(st.sampled_from(_FRAGMENTS), max_size=60).map("".join),
    st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=20)), max_size=60).map(
        "".join
    ),
)


def _run(data: str | bytes) -> None:
    try:
        bounce = read_bounce(data)
    except InputRejected as refused:
        reason = str(refused)
        assert reason
        assert "\n" not in reason
        return
    assert bounce.format in {"eml", "html", "slack", "text"}
    assert all("@" in address for address in bounce.recipients)
    assert bounce.status is None or bounce.status.count(".") == 2
    intent = recognise_content(data)
    assert isinstance(intent.name, IntentName)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_texts)
@example("")
@example("\x00")
@example("From: \n\n")
@example("MIME-Version: 1.0\nContent-Type: multipart/report; boundary=x\n\n--x\n")
def test_any_text_is_read_without_error(text: str) -> None:
    _run(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=3000), _texts.map(lambda t: t.encode("utf-8"))))
@example(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
@example(b"\xff\xfe" + "550 5.7.12".encode("utf-16-le"))
@example(b"Received: x\nContent-Type: message/delivery-status\n\nStatus: 5.7.12\n")
def test_any_bytes_are_read_without_error(data: bytes) -> None:
    _run(data)


# Building a big input from a small seed: a reader that is quadratic anywhere takes minutes
# here, a linear one a fraction of a second. The bound is loose on purpose (a slow CI machine
# passes it easily); it is a guard against blow-ups, not a speed target (see benchmarks/).
_BIG = 256 * 1024
_MAX_SECONDS_PER_MB = 20.0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=8).map("".join))
@example("@")
@example("a" * 64 + ".")
@example("<a ")
@example("<!--")
@example("5.7.")
@example("> ")
@example("From: a@b.com\n")
@example("<mailto:a")
def test_time_per_byte_stays_bounded(seed: str) -> None:
    text = (seed * (_BIG // max(1, len(seed)) + 1))[:_BIG]
    started = time.process_time()
    _run(text)
    elapsed = time.process_time() - started
    assert elapsed / (len(text) / 1_000_000) < _MAX_SECONDS_PER_MB, (
        f"{elapsed:.2f} s CPU for {len(text)} bytes built from {seed[:40]!r}"
    )


def test_input_over_the_cap_is_refused() -> None:
    with pytest.raises(InputRejected, match="too large"):
        read_bounce(b"a" * (MAX_INPUT_BYTES + 1))
    with pytest.raises(InputRejected, match="too large"):
        read_bounce("a" * (MAX_INPUT_BYTES + 1))
