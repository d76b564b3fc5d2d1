"""Alembic environment: runs on the connection handed over by `priorauth.adapters.store.migrate`."""

from __future__ import annotations

from alembic import context

from priorauth.adapters.store.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
