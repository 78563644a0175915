"""The store's migrations: Alembic's script directory, shipped inside the package.

``env.py`` is what Alembic runs; ``versions/`` holds one revision per schema change, numbered
0001, 0002, ...; ``first_release.py`` is the schema of the first release, frozen. Nothing here is
run by hand: ``bot.store.migrate`` runs it (``python -m bot db upgrade``, and the server's check
at start), so users need no ``alembic.ini``.
"""
