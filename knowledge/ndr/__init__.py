"""The bounce reader: finds the facts of a non-delivery report in whatever shape it arrives.

It reads pasted text, Teams HTML, Slack markup, quoted or forwarded mail and MIME messages
(``.eml``, with or without the RFC 3464 ``message/delivery-status`` part), and returns a
:class:`Bounce`. Every step is linear in the size of the input, and input over
:data:`MAX_INPUT_BYTES` is refused before it is read in full.

The rooms, in the order a message goes through them: :mod:`~knowledge.ndr.input` (limits,
decoding, binary refusal), :mod:`~knowledge.ndr.text_forms` (HTML, Slack markup, normalising),
:mod:`~knowledge.ndr.mime` (.eml structure), :mod:`~knowledge.ndr.addresses`,
:mod:`~knowledge.ndr.status` (status codes in lines) and :mod:`~knowledge.ndr.transcripts`
(SMTP sessions), :mod:`~knowledge.ndr.scan` (forwarding blocks, headers, labels),
:mod:`~knowledge.ndr.recipients`, :mod:`~knowledge.ndr.diagnosis`,
:mod:`~knowledge.ndr.mentions` (codes in a question), and :mod:`~knowledge.ndr.reading`, which
puts them together. This module names the public API.
"""

from __future__ import annotations

from knowledge.ndr.addresses import find_addresses
from knowledge.ndr.input import (
    MAX_INPUT_BYTES,
    BinaryInput,
    InputRejected,
    InputTooLarge,
    decode_input,
    read_limited,
)
from knowledge.ndr.mime import looks_like_mime
from knowledge.ndr.reading import Bounce, read_bounce
from knowledge.ndr.text_forms import html_to_text, normalise, slack_to_text

__all__ = [
    "MAX_INPUT_BYTES",
    "BinaryInput",
    "Bounce",
    "InputRejected",
    "InputTooLarge",
    "decode_input",
    "find_addresses",
    "html_to_text",
    "looks_like_mime",
    "normalise",
    "read_bounce",
    "read_limited",
    "slack_to_text",
]
