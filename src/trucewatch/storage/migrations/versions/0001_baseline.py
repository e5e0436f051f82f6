"""Baseline: the schema of the last release before Alembic (schema version 8).

A store of that release (SQLite ``PRAGMA user_version``, PostgreSQL
``tw_meta.schema_version``) is brought to version 8 as that release did (data steps
included: principals from old tokens at 7, every row bound into the log at 8), then
stamped with this revision. A store already at 8 changes nothing here.

Revision ID: 0001
Revises:
"""

from alembic import op

from trucewatch.storage.migrations import legacy

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    legacy.upgrade_to_last(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("a store is never migrated down: evidence is append-only")
