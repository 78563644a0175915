"""The command line: ``python -m bot <command>``. Each command is a small function of its own."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from bot.classify import classify_bytes
from knowledge.kb import KnowledgeError, default_knowledge
from knowledge.ndr import MAX_INPUT_BYTES, InputRejected, read_limited


def _read_input(source: str, stdin: IO[bytes]) -> bytes:
    if source == "-":
        return read_limited(stdin)
    path = Path(source)
    if path.is_dir():
        raise InputRejected(f"{source} is a folder, not a message file.")
    try:
        with path.open("rb") as handle:
            return read_limited(handle)
    except FileNotFoundError:
        raise InputRejected(f"{source}: no such file.") from None
    except PermissionError:
        raise InputRejected(f"{source}: permission denied.") from None
    except OSError as error:
        raise InputRejected(f"{source}: cannot be read ({error.strerror or error}).") from None


def _classify(args: argparse.Namespace) -> int:
    try:
        data = _read_input(args.file, sys.stdin.buffer)
        result = classify_bytes(data)
    except InputRejected as refused:
        print(f"classify: {refused}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one sub-command per contract in DESIGN.md."""
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="NDR helpdesk bot: reads Exchange Online 5.7.12 bounces and guides the fix.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    classify = commands.add_parser(
        "classify",
        help="read one message (text, HTML or .eml) and print what the bot reads in it, as JSON",
        description=(
            "Read one message and print one JSON object: intent, status, smtp_code, resolver, "
            "recipients, sender, recipient_domain, recipient_type, language. "
            f"Input over {MAX_INPUT_BYTES // (1024 * 1024)} MB or binary input is refused."
        ),
    )
    classify.add_argument("file", nargs="?", default="-", help="a file, or - for stdin (default)")
    classify.set_defaults(handler=_classify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status."""
    args = build_parser().parse_args(argv)
    try:
        default_knowledge()
    except KnowledgeError as error:
        print(f"The knowledge base is not valid: {error}", file=sys.stderr)
        return 3
    handler = args.handler
    status: int = handler(args)
    return status
