"""What every repository shares: the open :class:`~trucewatch.storage.database.Database`
(connection, dialect, the open transaction's bindings, the log append)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa

from trucewatch.storage.database import Database

COUNT_CAP = 10_000  # query totals are exact up to this, then reported as COUNT_CAP + 1


class Repository:
    """A repository over one open database; several share one (the store facade)."""

    _db: Database

    def __init__(self, db: Database) -> None:
        self._db = db

    # the shorthands every repository uses
    def _t(self, name: str) -> sa.Table:
        return self._db.md.tables[name]

    @property
    def _dialect(self) -> str:
        return self._db.dialect

    def _x(self, stmt: Any, params: Any = None) -> Any:
        return self._db.conn.execute(stmt, params)

    def _transaction(self) -> AbstractContextManager[None]:
        return self._db.transaction()

    def atomic(self) -> AbstractContextManager[None]:
        """One transaction around several of the store's writes: all are kept, or none
        (each still logs its own entry, in order)."""
        return self._db.transaction()

    def _bind(self, table: str, keys: Iterable[tuple[Any, ...]], new: bool = False) -> None:
        self._db.bind(table, keys, new)

    def _bind_where(self, table: str, where: Any) -> None:
        self._db.bind_where(table, where)

    def _log(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
        self._db.log(actor, action, subject, details)


def dicts(result: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in result]


def rows(result: Any) -> Iterator[tuple[Any, ...]]:
    return (tuple(r) for r in result)
