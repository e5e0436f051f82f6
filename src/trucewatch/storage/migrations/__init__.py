"""The store's schema migrations (Alembic, both dialects), run on open; users need no
``alembic.ini``.

Policy:

* A new store is created from the table specification (storage.schema) and stamped
  with the head revision.
* A store of the release before Alembic (SQLite ``user_version`` / PostgreSQL
  ``tw_meta`` at 1-8, no ``alembic_version``) runs the baseline revision ``0001`` (which
  brings it to version 8 as that release did) and every revision after it.
* A store already under Alembic runs the revisions it lacks.
* Every upgrade is one transaction (DDL included, on both dialects): a failed
  migration leaves the store as it was.
* A store newer than this code (an unknown revision, or a pre-Alembic version above
  :data:`GUARD`) is refused with :class:`~trucewatch.errors.SchemaVersionError`.
* Revisions only go forward (evidence is append-only); each one states what it does to
  both dialects. The schema version an older release reads is set to :data:`GUARD`, so
  that an older release refuses the store instead of misreading it.

To add a revision: change storage/schema.py, then write ``versions/NNNN_what.py`` with
``down_revision`` the current head; ``tests/test_migrations.py`` checks that a migrated
store and a new one have the same tables, columns and indexes.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from trucewatch.errors import SchemaVersionError
from trucewatch.storage.dialect import BEGIN
from trucewatch.storage.migrations import legacy
from trucewatch.storage.schema import tables

HERE = Path(__file__).parent
GUARD = legacy.LAST + 1  # the pre-Alembic version written for older releases to read


def config(conn: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = conn
    return cfg


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def head() -> str:
    h = _script().get_current_head()
    assert h is not None
    return h


def revisions() -> set[str]:
    return {r.revision for r in _script().walk_revisions()}


def current(conn: sa.Connection) -> str | None:
    """The store's Alembic revision (None: not under Alembic yet)."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return str(row[0]) if row else None


def upgrade(conn: sa.Connection, label: str) -> None:
    """Bring the store on ``conn`` (autocommit) to the head revision, in one
    transaction; a new store is created from the specification."""
    if _at_head(conn):
        return
    dialect = conn.dialect.name
    conn.exec_driver_sql(BEGIN[dialect])
    try:
        if dialect == "postgresql":  # two processes opening a new database at once
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7412011)")
        rev, old = current(conn), legacy.version(conn)
        if old > GUARD or (rev is not None and rev not in revisions()):
            raise SchemaVersionError(
                f"store {label} has schema version {rev or old}, newer than this "
                f"trucewatch ({head()})", fix="upgrade trucewatch")
        if rev is None and old == 0 and not _has_tables(conn):
            if dialect == "postgresql":
                conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
            tables(dialect).create_all(conn)
            command.stamp(config(conn), "head")
        else:
            command.upgrade(config(conn), "head")
        legacy.set_version(conn, GUARD)
    except BaseException:
        conn.exec_driver_sql("ROLLBACK")
        raise
    conn.exec_driver_sql("COMMIT")


def _at_head(conn: sa.Connection) -> bool:
    """The store needs nothing (the check on every open: two small queries)."""
    if conn.dialect.name != "postgresql":
        return current(conn) == head() and legacy.version(conn) <= GUARD
    both = conn.exec_driver_sql("SELECT to_regclass('alembic_version') IS NOT NULL AND "
                                "to_regclass('tw_meta') IS NOT NULL").scalar_one()
    if not both:
        return False
    rev, old = conn.exec_driver_sql(
        "SELECT (SELECT version_num FROM alembic_version LIMIT 1), "
        "(SELECT v FROM tw_meta WHERE k = 'schema_version')").one()
    return bool(rev == head() and old is not None and int(old) <= GUARD)


def _has_tables(conn: sa.Connection) -> bool:
    names = set(sa.inspect(conn).get_table_names()) - {"spatial_ref_sys"}
    return bool(names)
