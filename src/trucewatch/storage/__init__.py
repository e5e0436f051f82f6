"""Storage behind one interface: SQLite is the embedded default, PostgreSQL + PostGIS the
production store (give a ``postgresql://`` URL wherever a store path is asked for).

One table specification (storage.schema, SQLAlchemy Core), Alembic migrations run on
open (storage.migrations), repositories by concern (storage.repositories) behind
protocols (storage.protocols), and the facade that holds them all (``SqliteStore``,
``PostgisStore``)."""

from pathlib import Path

from trucewatch.storage.base import IngestReport, Store
from trucewatch.storage.sqlite import SqliteStore


def open_store(where: str | Path, pooled: bool = False) -> SqliteStore:
    """A PostGIS store for a ``postgresql://`` URL, else the SQLite file at ``where``.
    ``pooled``: borrow the PostgreSQL connection from a per-process pool (the service)."""
    from trucewatch.storage.postgis import PostgisStore, postgres_url

    url = postgres_url(where)
    return PostgisStore(url, pooled=pooled) if url else SqliteStore(where)


__all__ = ["IngestReport", "SqliteStore", "Store", "open_store"]
