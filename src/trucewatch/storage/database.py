"""One open store: an SQLAlchemy engine and connection, its dialect, the open
transaction's bindings (storage.binding) and the append to the hash-chained log. The
repositories (storage.repositories) all work through one :class:`Database`.

* **SQLite**: one connection per open store (WAL journal, foreign keys on); a writing
  transaction is ``BEGIN IMMEDIATE``, so that two processes writing at once serialise.
* **PostgreSQL + PostGIS**: an SQLAlchemy engine per URL and process. ``pooled``
  borrows the connection from the engine's pool (``QueuePool``, up to 8 connections: a
  service opens a store per request, and a new connection costs more than most queries)
  and gives it back on close; otherwise a connection of its own (``NullPool``).

Reads run outside transactions (autocommit); a writing transaction is explicit
(:meth:`Database.transaction`) and the schema is brought up to date on open
(storage.migrations).
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool, QueuePool, StaticPool

from trucewatch.errors import StorageError, StorageUnavailableError
from trucewatch.integrity.chain import GENESIS, canonical, entry_hash
from trucewatch.storage import binding
from trucewatch.storage.dialect import BEGIN, LOCK_ROWS
from trucewatch.storage.schema import tables

POOL_SIZE = 8
# SQLite page cache per connection, KiB (SQLite's default is 2 MiB): an ingest's inserts
# into the id index and the R*Tree stay in memory far longer (memory is taken as used)
SQLITE_CACHE_KIB = 65536


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def postgres_url(store: object) -> str | None:
    """The URL if ``store`` names a PostgreSQL database (also after a ``pathlib.Path``
    has folded its ``//``), else None."""
    m = re.match(r"^(postgres(?:ql)?(?:\+psycopg)?):/+(.*)$", str(store))
    return f"postgresql://{m.group(2)}" if m else None


def safe_url(url: str) -> str:
    """The URL without its password (for messages)."""
    return re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", url)


_ENGINES: dict[tuple[str, bool], sa.Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _pg_engine(url: str, pooled: bool) -> sa.Engine:
    """One engine per database, process and pooling mode."""
    key = (url, pooled)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            sa_url = "postgresql+psycopg://" + url.split("://", 1)[1]
            _ENGINES[key] = (
                sa.create_engine(sa_url, poolclass=QueuePool, pool_size=1,
                                 max_overflow=POOL_SIZE - 1, pool_timeout=30,
                                 pool_pre_ping=True)
                if pooled else sa.create_engine(sa_url, poolclass=NullPool))
        return _ENGINES[key]


def _sqlite_engine(path: str) -> sa.Engine:
    def connect() -> sqlite3.Connection:
        # a store may be opened in one thread and used in another (the API's async
        # endpoints), never by two at once
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        except BaseException:
            db.close()  # not left open (held by the traceback) when the open is retried
            raise
        return db

    return sa.create_engine("sqlite://", creator=connect, poolclass=StaticPool)


SQLITE_MAGIC = b"SQLite format 3\x00"
# SQLite errors on opening a store that pass (seen under heavy load while other
# processes write the same WAL store): retried after these pauses, then a 503
PASSING_SQLITE_ERRORS = frozenset({"disk I/O error", "database is locked"})
OPEN_RETRY_S = (0.05, 0.1, 0.2, 0.4, 0.8)


def check_sqlite_path(path: Path) -> None:
    """StorageError (one line, with its fix) when ``path`` cannot be a SQLite store: a
    folder, or a file that is neither empty nor a SQLite database (a text file, a CSV
    given as --store by mistake). A path that does not exist is a new store."""
    fix = (f"give the path of a trucewatch store file (e.g. {path / 'trucewatch.db'})"
           if path.is_dir() else
           "give the path of a trucewatch store (a SQLite .db file), or a new path to "
           "create one; a PostgreSQL store is a postgresql:// URL")
    if path.is_dir():
        raise StorageError(f"store {path} is a folder, not a SQLite store file", fix=fix)
    if not path.exists():
        return
    if not path.is_file():
        raise StorageError(f"store {path} is not a regular file", fix=fix)
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as err:
        raise StorageError(f"cannot read store {path}: {err.strerror or err}",
                           fix="check the path and its permissions") from err
    if head and head != SQLITE_MAGIC:
        raise StorageError(f"{path} is not a SQLite store (its first bytes are "
                           f"{head[:8]!r})", fix=fix)


class Database:
    """An open store's connection. ``where``: a SQLite path (or ``:memory:``) or a
    ``postgresql://`` URL."""

    def __init__(self, where: str | Path, pooled: bool = False) -> None:
        url = postgres_url(where)
        self.label = safe_url(url) if url else str(where)
        for pause in (*OPEN_RETRY_S, None):
            try:
                if url:
                    self.engine = _pg_engine(url, pooled)
                else:
                    path = str(where)
                    if path != ":memory:":
                        check_sqlite_path(Path(path))
                        Path(path).parent.mkdir(parents=True, exist_ok=True)
                    self.engine = _sqlite_engine(path)
                self.conn = self.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT")
                break
            except (sa.exc.SQLAlchemyError, sqlite3.Error, OSError) as err:
                # the driver's own message, without SQLAlchemy's "Background" line
                why = str(getattr(err, "orig", None) or err).splitlines()[0]
                passing = not url and why in PASSING_SQLITE_ERRORS
                if passing and pause is not None:
                    if (engine := getattr(self, "engine", None)) is not None:
                        engine.dispose()
                    time.sleep(pause)
                    continue
                if passing:
                    raise StorageUnavailableError(
                        f"cannot open store {self.label} now: {why}",
                        fix="send the request again in a moment (the store was busy); if "
                            "it persists, check the disk") from err
                fix = ("check the URL, that PostgreSQL runs and that the database exists"
                       if url else "check the path and its permissions")
                raise StorageError(f"cannot open store {self.label}: {why}".strip(),
                                   fix=fix) from err
        self.dialect: str = self.conn.dialect.name
        self.md = tables(self.dialect)
        self.pending = binding.Pending()
        self._lock = LOCK_ROWS[self.dialect]
        self._depth = 0

    def t(self, name: str) -> sa.Table:
        return self.md.tables[name]

    @property
    def raw(self) -> Any:
        """The DB-API connection under the store (sqlite3, psycopg), for tools and tests
        that run SQL of their own; the store's code never uses it."""
        return self.conn.connection.driver_connection

    # ------------------------------------------------------------- transactions
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One writing transaction: BEGIN (IMMEDIATE on SQLite) ... COMMIT, or ROLLBACK
        on any exception. The rows bound in it are bound into its log entry.

        Nested inside another, it is part of the outer one (which commits or rolls back
        everything); each still binds its own rows into its own log entry."""
        self.pending = binding.Pending()
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.conn.exec_driver_sql(BEGIN[self.dialect])
        self._depth = 1
        try:
            yield
        except BaseException:
            self.conn.exec_driver_sql("ROLLBACK")
            raise
        finally:
            self._depth = 0
        self.conn.exec_driver_sql("COMMIT")

    # the rows a transaction writes are bound into its log entry (storage.binding): bind
    # each before writing it; the entry records its hash before and after
    def bind(self, table: str, keys: Iterable[tuple[Any, ...]], new: bool = False) -> None:
        self.pending.bind(self.conn, table, keys, new, self._lock)

    def bind_where(self, table: str, where: Any) -> None:
        self.pending.bind_where(self.conn, table, where, self._lock)

    def log(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
        """Append to the hash-chained log; call inside the transaction it records. The
        rows bound so far in the transaction are bound into this entry."""
        details = details | self.pending.details(self.conn)
        append_log(self.conn, actor, action, subject, details)

    def close(self) -> None:
        self.conn.close()
        if self.dialect == "sqlite":
            self.engine.dispose()


def append_log(conn: sa.Connection, actor: str, action: str, subject: str,
               details: dict[str, Any]) -> None:
    """Append one entry to the audit log, chained to the last."""
    log = tables(conn.dialect.name).tables["audit_log"]
    last = conn.execute(sa.select(log.c.seq, log.c.hash).order_by(log.c.seq.desc())
                        .limit(1)).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    body = {"seq": seq, "at": now(), "actor": actor, "action": action,
            "subject": subject, "details": canonical(details).decode(), "prev_hash": prev}
    conn.execute(log.insert().values(**body, hash=entry_hash(body)))
