"""Storage behind one interface: SQLite is the embedded default, PostgreSQL + PostGIS the
production store (give a ``postgresql://`` URL wherever a store path is asked for).

One table specification (storage.schema, SQLAlchemy Core), Alembic migrations run on
open (storage.migrations), repositories by concern (storage.repositories) behind
protocols (storage.protocols), and the facade that holds them all (``SqliteStore``,
``PostgisStore``)."""

from pathlib import Path

from trucewatch.storage.base import IngestReport, Store
from trucewatch.storage.sqlite import SqliteStore


def check_store(where: str | Path) -> None:
    """StorageError (one line, with its fix) when ``where`` is a path that cannot be a
    SQLite store (a folder, a file that is not a database); for the commands that read
    files beside a store without opening it."""
    from trucewatch.storage.database import check_sqlite_path, postgres_url

    if not postgres_url(where) and str(where) != ":memory:":
        check_sqlite_path(Path(where))


def open_store(where: str | Path, pooled: bool = False) -> SqliteStore:
    """A PostGIS store for a ``postgresql://`` URL, else the SQLite file at ``where``.
    ``pooled``: borrow the PostgreSQL connection from a per-process pool (the service)."""
    from trucewatch.storage.postgis import PostgisStore, postgres_url

    url = postgres_url(where)
    return PostgisStore(url, pooled=pooled) if url else SqliteStore(where)


__all__ = ["IngestReport", "SqliteStore", "Store", "check_store", "open_store"]
