"""PostgreSQL + PostGIS: the production backend, the same store as SQLite's.

The tables come from the one specification (storage.schema: a ``geometry(Point, 4326)``
column with a GiST index on observations and incidents, plpgsql triggers that keep the
audit log and the evidentiary copies append-only); queries are SQLAlchemy Core with the
spatial filters in the database (``&&`` on the GiST index, ``ST_DWithin``; storage.dialect);
bulk observation inserts use ``COPY``; ``pooled`` stores share one engine pool per
process.

    trucewatch serve --store postgresql://user@host:5432/db
"""

from __future__ import annotations

from trucewatch.storage.database import postgres_url
from trucewatch.storage.database import safe_url as _safe
from trucewatch.storage.migrations.legacy import BASE_VERSION, PG_MIGRATIONS, SCHEMA
from trucewatch.storage.sqlite import SCHEMA_VERSION, SqliteStore


def is_postgres_url(store: object) -> bool:
    return postgres_url(store) is not None


class PostgisStore(SqliteStore):
    """The store on PostgreSQL + PostGIS (``url``: ``postgresql://...``)."""

    def __init__(self, url: str, fail_after_rows: int | None = None,
                 pooled: bool = False) -> None:
        found = postgres_url(url)
        if found is None:
            from trucewatch.errors import StorageError

            raise StorageError(f"not a PostgreSQL URL: {_safe(url)}",
                               fix="give postgresql://user@host:port/database")
        super().__init__(found, fail_after_rows=fail_after_rows, pooled=pooled)


__all__ = ["BASE_VERSION", "PG_MIGRATIONS", "SCHEMA", "SCHEMA_VERSION", "PostgisStore",
           "is_postgres_url", "postgres_url"]
