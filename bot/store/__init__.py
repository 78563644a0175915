"""The store: conversation state, profiles, seen event ids and tickets, in SQLite or PostgreSQL.

SQLAlchemy 2 async Core. Several bot processes may share one PostgreSQL database, so every write is
one short transaction guarded by a constraint or a version column, never a read-then-write.

``Store`` (``store.py``) is the one object the app opens and closes; what it holds is split by
aggregate, each a small class over the shared engine (``engine.py``): ``store.conversations``
(state, profiles, conversation references), ``store.tickets`` (tickets, requesters, history),
``store.channels`` (the admins' channels and the ticket cards), ``store.reminders``,
``store.jobs`` (the outbox: tickets' jobs and late replies), ``store.seen`` (event ids already
handled) and ``store.kept`` (deliveries acknowledged, kept until their work is done). The schema
is in one place, ``schema.metadata``; the records handed out are in ``records.py``. Its versions
are Alembic's revisions in ``migrations/``, run by ``migrate.py`` (``python -m bot db upgrade``,
and the check every ``Store.open`` makes).
"""

from __future__ import annotations

from bot.store.channels import ChannelStore
from bot.store.conversations import ConversationStore
from bot.store.engine import (
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_URL,
    StaleState,
    StoreError,
    StoreUnavailable,
    UnknownTicket,
    failure_reason,
    unavailable,
)
from bot.store.jobs import JobQueue
from bot.store.kept import KeptEvent, KeptEvents
from bot.store.migrate import SchemaMismatch
from bot.store.records import (
    CHANGES_LANE,
    JOB_KINDS,
    JOB_TARGETS,
    KEEP,
    REPLY_JOB,
    TICKET_OFFSET,
    TICKET_PREFIX,
    TICKET_STATUSES,
    AdminChannel,
    JobsFor,
    Keep,
    NewJob,
    Requester,
    Saved,
    TicketChange,
    TicketEvent,
    TicketJob,
    TicketRecord,
    conversation_lane,
    ticket_id,
    ticket_lane,
    ticket_number,
)
from bot.store.reminders import ReminderStore
from bot.store.retention import Retention
from bot.store.schema import metadata
from bot.store.seen import SeenEvents
from bot.store.store import Store
from bot.store.tickets import TicketStore

__all__ = [
    "CHANGES_LANE",
    "DEFAULT_TIMEOUT_SECONDS",
    "DEFAULT_URL",
    "JOB_KINDS",
    "JOB_TARGETS",
    "KEEP",
    "REPLY_JOB",
    "TICKET_OFFSET",
    "TICKET_PREFIX",
    "TICKET_STATUSES",
    "AdminChannel",
    "ChannelStore",
    "ConversationStore",
    "JobQueue",
    "JobsFor",
    "Keep",
    "KeptEvent",
    "KeptEvents",
    "NewJob",
    "ReminderStore",
    "Requester",
    "Retention",
    "Saved",
    "SchemaMismatch",
    "SeenEvents",
    "StaleState",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TicketChange",
    "TicketEvent",
    "TicketJob",
    "TicketRecord",
    "TicketStore",
    "UnknownTicket",
    "conversation_lane",
    "failure_reason",
    "metadata",
    "ticket_id",
    "ticket_lane",
    "ticket_number",
    "unavailable",
]
