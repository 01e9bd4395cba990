"""Alembic environment: runs migrations on the connection handed over by messaging.db.migrate."""

from __future__ import annotations

from alembic import context

from messaging.db.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
