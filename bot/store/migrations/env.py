"""What Alembic runs for every command: on the connection ``bot.store.migrate`` hands it.

The connection comes in ``config.attributes["connection"]``, already in the transaction that
holds the migration lock (see ``bot.store.migrate``), so every revision of one upgrade commits
together or not at all. The options (batch mode on SQLite, type comparison) are
``bot.store.migrate.context_options``, shared with the schema checks.
"""

from __future__ import annotations

from alembic import context

from bot.store.migrate import context_options
from bot.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the store's migrations run through bot.store.migrate: python -m bot db upgrade"
    )
context.configure(connection=connection, target_metadata=metadata, **context_options(connection))
with context.begin_transaction():
    context.run_migrations()
