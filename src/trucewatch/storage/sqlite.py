"""The store facade: one object with every repository of the store (evidence,
observations, incidents, review, principals and tokens, products) over one open
database. ``SqliteStore`` is the embedded default (SQLite: WAL journal, R*Tree spatial
index); :class:`~trucewatch.storage.postgis.PostgisStore` is the same store on
PostgreSQL + PostGIS. Code that needs only one concern types against its protocol
(storage.protocols).

The tables are specified once (storage.schema) and migrated by Alembic on open
(storage.migrations); queries go through SQLAlchemy Core, with the dialect differences
in storage.dialect.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from trucewatch.storage import migrations
from trucewatch.storage.database import Database
from trucewatch.storage.migrations import GUARD
from trucewatch.storage.migrations.legacy import MIGRATIONS
from trucewatch.storage.migrations.legacy import statements as _statements
from trucewatch.storage.repositories.base import COUNT_CAP
from trucewatch.storage.repositories.evidence import EvidenceRepository
from trucewatch.storage.repositories.incidents import IncidentRepository, _incident
from trucewatch.storage.repositories.observations import ObservationRepository
from trucewatch.storage.repositories.principals import PrincipalRepository, TokenOwner
from trucewatch.storage.repositories.products import ProductRepository
from trucewatch.storage.repositories.review import ReviewRepository
from trucewatch.storage.repositories.stream import StreamRepository

SCHEMA_VERSION = GUARD  # what PRAGMA user_version / tw_meta say (older releases read it)


class SqliteStore(EvidenceRepository, ObservationRepository, IncidentRepository,
                  ReviewRepository, PrincipalRepository, ProductRepository,
                  StreamRepository):
    """The whole store. ``path``: a SQLite file (or ``:memory:``); a ``postgresql://``
    URL opens the same store on PostGIS (prefer :func:`trucewatch.storage.open_store`).
    ``pooled``: borrow the PostgreSQL connection from the per-process engine pool."""

    def __init__(self, path: Path | str = ":memory:", fail_after_rows: int | None = None,
                 pooled: bool = False) -> None:
        db = Database(path, pooled)
        super().__init__(db)
        self.path = db.label
        self._fail_after_rows = fail_after_rows
        try:
            migrations.upgrade(db.conn, self.path)
        except BaseException:
            db.close()
            raise

    @property
    def db(self) -> Any:
        """The DB-API connection under the store (sqlite3 / psycopg), for tools and tests
        that run SQL of their own (the store never does)."""
        return self._db.raw

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def schema_version(self) -> int:
        """The schema version an older release reads (PRAGMA user_version / tw_meta)."""
        return migrations.legacy.version(self._db.conn)

    def schema_revision(self) -> str | None:
        """The Alembic revision of the store."""
        return migrations.current(self._db.conn)

    def close(self) -> None:
        self._db.close()


if TYPE_CHECKING:  # the facade offers every concern's protocol (checked by mypy)
    from trucewatch.storage.protocols import FullStore

    def _offers_every_protocol(s: SqliteStore) -> FullStore:
        return s


__all__ = ["COUNT_CAP", "MIGRATIONS", "SCHEMA_VERSION", "SqliteStore", "TokenOwner",
           "_incident", "_statements"]
