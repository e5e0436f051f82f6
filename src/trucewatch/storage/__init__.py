"""Storage behind one interface; SQLite is the embedded default."""

from trucewatch.storage.base import IngestReport, Store
from trucewatch.storage.sqlite import SqliteStore

__all__ = ["IngestReport", "SqliteStore", "Store"]
