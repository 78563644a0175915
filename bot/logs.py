"""Structured logs: one JSON object a line, with the turn id, channel and intent when known.

Message text is never logged above DEBUG, and settings are logged with secrets masked. A
traceback keeps only the first line of a database error's message: SQLAlchemy's engines hide the
parameters, but a driver's own detail (PostgreSQL's "DETAIL: Key (email)=(...)") would still
carry the values being saved.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, TextIO

# The turn being handled, so every log line of that turn carries its id, channel and intent.
turn_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "turn_context", default=None
)

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {
    "message",
    "asctime",
    "taskName",
}

# The modules whose exceptions may quote the values of a statement in their message.
_DATABASE_MODULES = ("sqlalchemy", "asyncpg", "sqlite3", "aiosqlite")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, turn fields, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(turn_context.get() or {})
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)

    def formatException(self, ei: Any) -> str:
        """The traceback as Python prints it, with database errors' messages cut to one line."""
        error = ei[1]
        if not isinstance(error, BaseException):
            return super().formatException(ei)
        return "".join(_traceback_lines(error, set())).rstrip("\n")


def _traceback_lines(error: BaseException, seen: set[int]) -> list[str]:
    """``traceback.format_exception`` of ``error`` and its chain, database messages cut."""
    seen.add(id(error))
    lines: list[str] = []
    if error.__cause__ is not None and id(error.__cause__) not in seen:
        lines += _traceback_lines(error.__cause__, seen)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif (
        error.__context__ is not None
        and not error.__suppress_context__
        and id(error.__context__) not in seen
    ):
        lines += _traceback_lines(error.__context__, seen)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    if error.__traceback__ is not None:
        lines.append("Traceback (most recent call last):\n")
        lines += traceback.format_tb(error.__traceback__)
    lines += _exception_only(error)
    return lines


def _exception_only(error: BaseException) -> list[str]:
    kind = type(error)
    if kind.__module__.split(".")[0] not in _DATABASE_MODULES:
        return traceback.format_exception_only(kind, error)
    name = f"{kind.__module__}.{kind.__qualname__}"
    message = str(error).strip().splitlines()
    return [f"{name}: {message[0]}\n" if message else f"{name}\n"]


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log line, as JSON, to ``stream`` (stderr by default); Python's warnings (a
    library's DeprecationWarning shown by default) become such lines too, at WARNING."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic says which context it uses at INFO on every start-up check: only under DEBUG.
    logging.getLogger("alembic").setLevel(
        logging.NOTSET if root.getEffectiveLevel() <= logging.DEBUG else logging.WARNING
    )
    logging.captureWarnings(True)
