"""The revisions, one file per schema change (Alembic skips this file)."""
