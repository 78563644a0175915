"""The schema: every table of the store, on one ``MetaData``.

Its own room so that the schema is in one place: the migrations' head
(``bot/store/migrations/versions/``) builds exactly these tables, which a test checks, so a change
here comes with a revision there. The aggregates (``conversations``, ``tickets``, ``channels``,
``reminders``, ``jobs``, ``seen``, ``kept``) import their tables from here and never define one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware DateTime stored as UTC; SQLite's naive values come back as aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# The tables. To add or change one, change it here and add a revision (ARCHITECTURE.md).
metadata = MetaData()

conversations = Table(
    "conversations",
    metadata,
    Column("key", String, primary_key=True),
    Column("state", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The platform deliveries whose turn this state is the outcome of (the last few ids) and
    # the last one's replies: a delivery worked on again is answered from here (bot.turns).
    Column("applied", JSON, nullable=True),
    # Whose turn was saved last ("platform:user_id"): reading the row joins their profile, so a
    # turn of the same person reads its conversation and its profile in one statement.
    Column("user_key", String, nullable=True),
)

profiles = Table(
    "profiles",
    metadata,
    Column("key", String, primary_key=True),
    Column("profile", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

seen_events = Table(
    "seen_events",
    metadata,
    Column("event_id", String, primary_key=True),
    Column("seen_at", UTCDateTime, nullable=False, index=True),
)

tickets = Table(
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
    Column("assignee", JSON(none_as_null=True), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    # The ticket's public reference (``secrets.token_urlsafe``): what card payloads, button values
    # and modal metadata carry, so a ticket cannot be named from outside by guessing its number.
    # Last, where a migration adding it to an older database puts it too.
    Column("ref", String(32), nullable=False),
    UniqueConstraint("ref", name="uq_tickets_ref"),
    sqlite_autoincrement=True,  # never reuse a ticket number, even after a delete
)

# At most one unresolved ticket per dedupe key: the database settles simultaneous escalations.
Index(
    "uq_tickets_unresolved_dedupe_key",
    tickets.c.dedupe_key,
    unique=True,
    sqlite_where=tickets.c.status != "resolved",
    postgresql_where=tickets.c.status != "resolved",
)

# Where a conversation lives on its platform (a Bot Framework conversation reference), so the bot
# can write to it later on its own: a ticket's news for its requester.
conversation_refs = Table(
    "conversation_refs",
    metadata,
    Column("key", String, primary_key=True),
    Column("reference", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

ticket_requesters = Table(
    "ticket_requesters",
    metadata,
    Column("ticket_number", Integer, ForeignKey("tickets.number"), nullable=False),
    Column("user_key", String, nullable=False),
    Column("requester", JSON, nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("ticket_number", "user_key"),
)

ticket_events = Table(
    "ticket_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_number", Integer, ForeignKey("tickets.number"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("detail", JSON, nullable=False),
)

# The admins' channel per platform (a Teams conversation reference, a Slack channel id, ...).
admin_channels = Table(
    "admin_channels",
    metadata,
    Column("platform", String(16), primary_key=True),
    Column("channel", JSON, nullable=False),
    Column("registered_by", String, nullable=False),
    Column("registered_at", UTCDateTime, nullable=False),
)

# The one-time codes that let the first "register admins" through when ADMIN_USERS is empty:
# only their SHA-256 is kept, one per process that printed one, each used at most once.
admin_codes = Table(
    "admin_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# Where each ticket's card was posted, per platform, so it can be updated in place.
ticket_cards = Table(
    "ticket_cards",
    metadata,
    Column("ticket_number", Integer, ForeignKey("tickets.number"), nullable=False),
    Column("platform", String(16), nullable=False),
    Column("ref", JSON, nullable=False),
    PrimaryKeyConstraint("ticket_number", "platform"),
)

# The outbox: everything that must reach a platform or the webhook, in order per (lane, target):
# a durable queue. A lane is what keeps its jobs in order: "ticket:<number>" for a ticket's jobs
# (``ticket_number`` set), "conversation:<conversation key>" for a turn's replies that could not
# be sent within the turn (``ticket_number`` NULL). ``seq`` counts a lane's jobs per target (1, 2,
# ...); a job is delivered only after every earlier one of its lane and target is done. A claimed
# job has next_attempt_at pushed out by a short lease, renewed while it is in flight, so another
# process takes it over soon after this one dies, and never while it lives.
ticket_jobs = Table(
    "ticket_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_number", Integer, ForeignKey("tickets.number"), nullable=True),
    Column("lane", String, nullable=False),
    Column("target", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("done_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    UniqueConstraint("lane", "target", "seq", name="uq_ticket_jobs_order"),
    sqlite_autoincrement=True,
)

Index(
    "ix_ticket_jobs_pending",
    ticket_jobs.c.next_attempt_at,
    sqlite_where=ticket_jobs.c.done_at.is_(None),
    postgresql_where=ticket_jobs.c.done_at.is_(None),
)
Index("ix_ticket_jobs_done_at", ticket_jobs.c.done_at)
Index("ix_ticket_jobs_ticket_number", ticket_jobs.c.ticket_number)

# What a platform delivered and the bot acknowledged but has not finished working on (a Slack
# event, command or interaction): kept before the acknowledgement, marked done after the work. A
# row not done whose lease has run out belongs to a process that died: another one claims it
# (a new lease, ``attempts`` counted) and does the work. The delivery's id is in seen_events,
# written in the same transaction, so a repeat is never kept twice.
kept_events = Table(
    "kept_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("platform", String(16), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("body", JSON, nullable=False),
    Column("delivery_key", String, nullable=True),
    Column("owner", String(64), nullable=False),
    Column("kept_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("done_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    sqlite_autoincrement=True,
)

Index(
    "ix_kept_events_pending",
    kept_events.c.lease_until,
    sqlite_where=kept_events.c.done_at.is_(None),
    postgresql_where=kept_events.c.done_at.is_(None),
)
Index("ix_kept_events_done_at", kept_events.c.done_at)

# When an open ticket was last announced again to the admins.
ticket_reminders = Table(
    "ticket_reminders",
    metadata,
    Column("ticket_number", Integer, ForeignKey("tickets.number"), primary_key=True),
    Column("last_reminded_at", UTCDateTime, nullable=False),
)


__all__ = [
    "UTCDateTime",
    "admin_channels",
    "admin_codes",
    "conversation_refs",
    "conversations",
    "kept_events",
    "metadata",
    "profiles",
    "seen_events",
    "ticket_cards",
    "ticket_events",
    "ticket_jobs",
    "ticket_reminders",
    "ticket_requesters",
    "tickets",
]
