"""Alembic's environment for the store: run programmatically on open
(storage.migrations.upgrade) with the store's connection; no alembic.ini."""

from alembic import context

from trucewatch.storage.schema import tables

conn = context.config.attributes["connection"]
context.configure(connection=conn, target_metadata=tables(conn.dialect.name),
                  render_as_batch=conn.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
