"""The schema of the first release (commit 93423b7), frozen: revision 0001 creates it, and a
database made before migrations (by ``create_all`` at start) is recognised by comparing its
tables with it.

A copy on purpose, not an import of ``bot.store.schema``: that module follows the code, this one
must stay what was released. Plain types here (``DateTime(timezone=True)`` is what
``UTCDateTime`` stores); never edit it, add a revision instead.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

_conversations = Table(
    "conversations",
    metadata,
    Column("key", String, primary_key=True),
    Column("state", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

_profiles = Table(
    "profiles",
    metadata,
    Column("key", String, primary_key=True),
    Column("profile", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

_seen_events = Table(
    "seen_events",
    metadata,
    Column("event_id", String, primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False, index=True),
)

_tickets = Table(
    "tickets",
    metadata,
    Column("number", Integer, primary_key=True, autoincrement=True),
    Column("status", String(16), nullable=False),
    Column("requester", JSON, nullable=False),
    Column("conversation_key", String, nullable=False),
    Column("bounce", JSON, nullable=False),
    Column("path", JSON, nullable=False),
    Column("note", Text, nullable=True),
    Column("dedupe_key", String, nullable=True),
    Column("assignee", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
    sqlite_autoincrement=True,
)

Index(
    "uq_tickets_unresolved_dedupe_key",
    _tickets.c.dedupe_key,
    unique=True,
    sqlite_where=_tickets.c.status != "resolved",
    postgresql_where=_tickets.c.status != "resolved",
)

_conversation_refs = Table(
    "conversation_refs",
    metadata,
    Column("key", String, primary_key=True),
    Column("reference", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

_ticket_requesters = Table(
    "ticket_requesters",
    metadata,
    Column("ticket_number", Integer, ForeignKey("tickets.number"), nullable=False),
    Column("user_key", String, nullable=False),
    Column("requester", JSON, nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("ticket_number", "user_key"),
)

_ticket_events = Table(
    "ticket_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_number", Integer, ForeignKey("tickets.number"), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("detail", JSON, nullable=False),
)

_admin_channels = Table(
    "admin_channels",
    metadata,
    Column("platform", String(16), primary_key=True),
    Column("channel", JSON, nullable=False),
    Column("registered_by", String, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
)

_ticket_cards = Table(
    "ticket_cards",
    metadata,
    Column("ticket_number", Integer, ForeignKey("tickets.number"), nullable=False),
    Column("platform", String(16), nullable=False),
    Column("ref", JSON, nullable=False),
    PrimaryKeyConstraint("ticket_number", "platform"),
)

_ticket_jobs = Table(
    "ticket_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_number", Integer, ForeignKey("tickets.number"), nullable=False),
    Column("target", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    UniqueConstraint("ticket_number", "target", "seq", name="uq_ticket_jobs_order"),
    sqlite_autoincrement=True,
)

Index(
    "ix_ticket_jobs_pending",
    _ticket_jobs.c.next_attempt_at,
    sqlite_where=_ticket_jobs.c.done_at.is_(None),
    postgresql_where=_ticket_jobs.c.done_at.is_(None),
)
Index("ix_ticket_jobs_done_at", _ticket_jobs.c.done_at)

_ticket_reminders = Table(
    "ticket_reminders",
    metadata,
    Column("ticket_number", Integer, ForeignKey("tickets.number"), primary_key=True),
    Column("last_reminded_at", DateTime(timezone=True), nullable=False),
)

TABLES = frozenset(metadata.tables)

__all__ = ["TABLES", "metadata"]
