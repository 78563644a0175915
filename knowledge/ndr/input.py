"""The reader's door: how much it takes, how input becomes text, and what it refuses.

A pasted message or an uploaded file arrives as text or bytes; before anything reads it, it is
held to :data:`MAX_INPUT_BYTES` (a longer stream is refused without being read in full), and a
binary file (an image, a PDF, an Outlook .msg) is refused with a line to show the person. What
passes is text, decoded as UTF-8, UTF-16 or, failing those, Windows-1252.
"""

from __future__ import annotations

from typing import IO

MAX_INPUT_BYTES = 5 * 1024 * 1024
"""The largest message the reader accepts (5 MiB): a bounce with its headers is a few KB."""

SNIFF_BYTES = 64 * 1024


class InputRejected(ValueError):
    """The input cannot be read as a message. ``str(error)`` is one line to show the user."""


class InputTooLarge(InputRejected):
    """The input is over :data:`MAX_INPUT_BYTES`."""


class BinaryInput(InputRejected):
    """The input is a binary file (an image, a PDF, an Outlook .msg, ...), not a message."""


def read_limited(stream: IO[bytes], limit: int = MAX_INPUT_BYTES) -> bytes:
    """Read at most ``limit`` bytes of ``stream``; refuse a longer input without reading it all."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise InputTooLarge(_too_large_message(limit))
    return data


def _too_large_message(limit: int) -> str:
    return (
        f"That message is over {limit // (1024 * 1024)} MB, too large for a bounce. "
        "Paste only the bounce's text, or send the .eml file of the bounce itself."
    )


_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Outlook .msg file"),
    (b"%PDF", "a PDF"),
    (b"PK\x03\x04", "a ZIP or Office document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"MZ", "a program"),
    (b"\x7fELF", "a program"),
)


# Every byte but the control characters that never appear in text (tab, newlines, escape do).
_NOT_CONTROL_BYTES = bytes(b for b in range(256) if b >= 32 or b in b"\t\n\r\f\v\x1b")


def decode_input(data: str | bytes) -> tuple[str, bool]:
    """Return the input as text and whether it was given as bytes; refuse binary or huge input."""
    if isinstance(data, str):
        if len(data) > MAX_INPUT_BYTES or len(data.encode("utf-8", "surrogatepass")) > (
            MAX_INPUT_BYTES
        ):
            raise InputTooLarge(_too_large_message(MAX_INPUT_BYTES))
        if "\x00" in data[:SNIFF_BYTES]:
            raise BinaryInput(_binary_message("a binary file"))
        return data, False
    if len(data) > MAX_INPUT_BYTES:
        raise InputTooLarge(_too_large_message(MAX_INPUT_BYTES))
    for signature, what in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise BinaryInput(_binary_message(what))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), True
    head = data[:SNIFF_BYTES]
    controls = len(head.translate(None, _NOT_CONTROL_BYTES))
    if b"\x00" in head or controls > len(head) // 20:
        raise BinaryInput(_binary_message("a binary file"))
    try:
        return data.decode("utf-8-sig"), True
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), True


def _binary_message(what: str) -> str:
    return (
        f"That looks like {what}, not an email message. "
        "Paste the bounce's text, or send the bounce saved as an .eml file."
    )
