"""PostgreSQL + PostGIS store: the production backend, behind the same interface.

It reuses :class:`~trucewatch.storage.sqlite.SqliteStore`'s logic over a connection
adapter that speaks PostgreSQL: ``?`` parameters, ``INSERT OR IGNORE/REPLACE`` as
``ON CONFLICT``, JSON paths as ``->>``, ``BEGIN IMMEDIATE`` as ``BEGIN``. The schema is
PostgreSQL's own (:data:`SCHEMA`): ``bytea`` evidence, identity keys, plpgsql triggers
that keep the audit log and the evidentiary copies append-only, and a PostGIS geometry
with a GiST index beside each bounding-box table, which box queries go through.

    trucewatch serve --store postgresql://user@host:5432/db
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from trucewatch.errors import SchemaVersionError, StorageError
from trucewatch.storage.sqlite import MIGRATIONS, SqliteStore, _data_step

SCHEMA_VERSION = len(MIGRATIONS)

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE TABLE tw_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE raw_inputs (sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, source TEXT NOT NULL,
    layout TEXT, size BIGINT NOT NULL, received_at TEXT NOT NULL, content BYTEA NOT NULL);
CREATE TABLE batches (id TEXT PRIMARY KEY, raw_sha256 TEXT NOT NULL REFERENCES raw_inputs,
    source TEXT NOT NULL, name TEXT NOT NULL, rows BIGINT NOT NULL, new BIGINT NOT NULL,
    duplicates BIGINT NOT NULL, quarantined BIGINT NOT NULL, ingested_at TEXT NOT NULL);
CREATE TABLE observations (id TEXT PRIMARY KEY, source_kind TEXT NOT NULL,
    source_id TEXT NOT NULL, sensor TEXT, time_start TEXT NOT NULL, time_end TEXT NOT NULL,
    acq_date TEXT NOT NULL, lat DOUBLE PRECISION NOT NULL, lon DOUBLE PRECISION NOT NULL,
    uncertainty_m DOUBLE PRECISION NOT NULL, attributes TEXT NOT NULL,
    raw_sha256 TEXT NOT NULL, batch_id TEXT NOT NULL REFERENCES batches,
    raw_row BIGINT NOT NULL, rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE);
CREATE INDEX observations_date ON observations (acq_date);
CREATE INDEX observations_kind ON observations (source_kind, time_start);
CREATE TABLE observations_rtree (rid BIGINT PRIMARY KEY, min_lon DOUBLE PRECISION,
    max_lon DOUBLE PRECISION, min_lat DOUBLE PRECISION, max_lat DOUBLE PRECISION,
    geom geometry(Geometry, 4326) GENERATED ALWAYS AS
        (ST_MakeEnvelope(min_lon, min_lat, max_lon, max_lat, 4326)) STORED);
CREATE INDEX observations_rtree_geom ON observations_rtree USING gist (geom);
CREATE TABLE quarantine (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id TEXT NOT NULL REFERENCES batches, raw_sha256 TEXT NOT NULL, row BIGINT NOT NULL,
    reason TEXT NOT NULL, raw TEXT NOT NULL);
CREATE TABLE incidents (id TEXT PRIMARY KEY, status TEXT NOT NULL, category TEXT NOT NULL,
    time_start TEXT NOT NULL, lat DOUBLE PRECISION NOT NULL, lon DOUBLE PRECISION NOT NULL,
    doc TEXT NOT NULL, rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE);
CREATE INDEX incidents_time ON incidents (time_start, id);
CREATE INDEX incidents_status_time ON incidents (status, time_start);
CREATE INDEX incidents_status_category_time ON incidents (status, category, time_start);
CREATE INDEX incidents_category_time ON incidents (category, time_start);
CREATE INDEX incidents_sector ON incidents (((doc::jsonb)->>'sector_id'));
CREATE TABLE incidents_rtree (rid BIGINT PRIMARY KEY, min_lon DOUBLE PRECISION,
    max_lon DOUBLE PRECISION, min_lat DOUBLE PRECISION, max_lat DOUBLE PRECISION,
    geom geometry(Geometry, 4326) GENERATED ALWAYS AS
        (ST_MakeEnvelope(min_lon, min_lat, max_lon, max_lat, 4326)) STORED);
CREATE INDEX incidents_rtree_geom ON incidents_rtree USING gist (geom);
CREATE TABLE violations (id TEXT PRIMARY KEY, incident_id TEXT NOT NULL REFERENCES incidents,
    doc TEXT NOT NULL);
CREATE TABLE status_changes (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id TEXT NOT NULL, old TEXT NOT NULL, new TEXT NOT NULL, who TEXT NOT NULL,
    why TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE audit_log (seq BIGINT PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, subject TEXT NOT NULL, details TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE FUNCTION tw_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION '% is append-only: evidence and the audit log are never altered',
    TG_TABLE_NAME; END $$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION tw_append_only();
CREATE TRIGGER raw_inputs_evidentiary BEFORE UPDATE OR DELETE ON raw_inputs
    FOR EACH ROW EXECUTE FUNCTION tw_append_only();
CREATE TABLE submissions (nonce TEXT PRIMARY KEY, key_id TEXT NOT NULL, signer TEXT NOT NULL,
    signed_at TEXT NOT NULL, raw_sha256 TEXT NOT NULL, received_at TEXT NOT NULL);
CREATE TABLE refused (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    raw_sha256 TEXT NOT NULL, name TEXT NOT NULL, source TEXT NOT NULL, reason TEXT NOT NULL,
    at TEXT NOT NULL);
CREATE TABLE incident_versions (incident_id TEXT NOT NULL, version BIGINT NOT NULL,
    status TEXT NOT NULL, action TEXT NOT NULL, who TEXT NOT NULL, why TEXT NOT NULL,
    at TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (incident_id, version));
CREATE TABLE review_locks (incident_id TEXT PRIMARY KEY, analyst TEXT NOT NULL,
    claimed_at TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE TABLE allegations (id TEXT PRIMARY KEY, received_at TEXT NOT NULL,
    claimant TEXT NOT NULL, raw_sha256 TEXT NOT NULL, batch_id TEXT NOT NULL,
    doc TEXT NOT NULL);
CREATE TABLE rulings (allegation_id TEXT PRIMARY KEY REFERENCES allegations,
    ruling TEXT NOT NULL, basis TEXT NOT NULL, doc TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE api_tokens (token_sha256 TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL, party TEXT, created_at TEXT NOT NULL, revoked_at TEXT);
CREATE TABLE coverage (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at TEXT NOT NULL,
    doc TEXT NOT NULL);
"""

# PostgreSQL migrations, by the schema version they lead to (the SQLite MIGRATIONS'
# numbering); SCHEMA above is written at version 5 and brought forward by these
PG_MIGRATIONS: dict[int, str] = {
    6: """CREATE TABLE products (name TEXT PRIMARY KEY, kind TEXT NOT NULL,
    report_date TEXT NOT NULL, audience TEXT NOT NULL, sha256 TEXT NOT NULL,
    size BIGINT NOT NULL, path TEXT NOT NULL, published_at TEXT NOT NULL)""",
    # principals (the SQLite migration's comment says why); the old tokens' names become
    # principals in Python (sqlite._principals_from_tokens), in the same transaction
    7: """CREATE TABLE principals (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL, role TEXT NOT NULL, party TEXT, created_at TEXT NOT NULL,
    disabled_at TEXT);
ALTER TABLE api_tokens RENAME TO api_tokens_v6;
ALTER INDEX api_tokens_pkey RENAME TO api_tokens_v6_pkey;
CREATE TABLE api_tokens (token_sha256 TEXT PRIMARY KEY,
    principal_id TEXT NOT NULL REFERENCES principals, created_at TEXT NOT NULL,
    revoked_at TEXT);
CREATE INDEX api_tokens_principal ON api_tokens (principal_id);
ALTER TABLE incident_versions ADD COLUMN who_id TEXT;
DELETE FROM review_locks""",
    # state proven by the log (the SQLite migration's comment says why)
    8: """CREATE INDEX observations_batch ON observations (batch_id);
CREATE INDEX quarantine_batch ON quarantine (batch_id);
CREATE INDEX allegations_batch ON allegations (batch_id)""",
}
BASE_VERSION = 5

# INSERT OR REPLACE: the key each table conflicts on, and its columns
_UPSERT = {"violations": ("id", ("id", "incident_id", "doc")),
           "review_locks": ("incident_id", ("incident_id", "analyst", "claimed_at",
                                            "expires_at")),
           "rulings": ("allegation_id", ("allegation_id", "ruling", "basis", "doc", "at"))}
_JSON = re.compile(r"json_extract\((\w+(?:\.\w+)?), '\$\.(\w+)'\)")


def translate(sql: str) -> str:
    """SQLite statement text -> PostgreSQL."""
    out = sql.replace("%", "%%").replace("?", "%s")
    out = _JSON.sub(lambda m: f"(({m.group(1)}::jsonb)->>'{m.group(2)}')", out)
    if out.strip() == "BEGIN IMMEDIATE":
        return "BEGIN"
    m = re.match(r"\s*INSERT OR IGNORE INTO", out)
    if m:
        return "INSERT INTO" + out[m.end():] + " ON CONFLICT DO NOTHING"
    m = re.match(r"\s*INSERT OR REPLACE INTO (\w+)", out)
    if m:
        key, cols = _UPSERT[m.group(1)]
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c != key)
        return (f"INSERT INTO {m.group(1)}" + out[m.end():]
                + f" ON CONFLICT ({key}) DO UPDATE SET {sets}")
    return out


_POOLS: dict[str, Any] = {}


def _pool(url: str) -> Any:
    """One small connection pool per database and process: a service opens a store per
    request, and a new PostgreSQL connection costs more than most queries."""
    from psycopg_pool import ConnectionPool

    if url not in _POOLS:
        _POOLS[url] = ConnectionPool(url, min_size=1, max_size=8, open=True,
                                     kwargs={"autocommit": True}, timeout=30)
    return _POOLS[url]


class _Connection:
    """The slice of sqlite3.Connection that SqliteStore uses, over psycopg."""

    def __init__(self, url: str, pooled: bool = False) -> None:
        import psycopg
        from psycopg_pool import PoolTimeout

        self.pool = _pool(url) if pooled else None
        try:
            self.conn = (self.pool.getconn() if self.pool is not None
                         else psycopg.connect(url, autocommit=True))
        except (psycopg.Error, PoolTimeout) as err:
            raise StorageError(f"cannot connect to {_safe(url)}: {err}".strip(),
                               fix="check the URL, that PostgreSQL runs and that the "
                                   "database exists") from err
        self.total_changes = 0

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        cur = self.conn.execute(translate(sql), tuple(args) or None)
        if cur.rowcount > 0 and sql.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.total_changes += cur.rowcount
        return cur

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any:
        rows = list(rows)
        cur = self.conn.cursor()
        if rows:
            cur.executemany(translate(sql), rows)
            if cur.rowcount > 0:
                self.total_changes += cur.rowcount
        return cur

    def close(self) -> None:
        if self.pool is not None:
            self.pool.putconn(self.conn)  # rolled back and reset by the pool if needed
        else:
            self.conn.close()


def _safe(url: str) -> str:
    return re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", url)


def postgres_url(store: object) -> str | None:
    """The URL if ``store`` names a PostgreSQL database (also after a ``pathlib.Path``
    has folded its ``//``), else None."""
    m = re.match(r"^(postgres(?:ql)?(?:\+psycopg)?):/+(.*)$", str(store))
    return f"postgresql://{m.group(2)}" if m else None


def is_postgres_url(store: object) -> bool:
    return postgres_url(store) is not None


class PostgisStore(SqliteStore):
    """The same store over PostgreSQL + PostGIS."""

    _LOCK_ROWS = " FOR UPDATE"  # a bound row is locked until its entry is committed

    def __init__(self, url: str, fail_after_rows: int | None = None,
                 pooled: bool = False) -> None:
        self.path = _safe(url)
        self.db = _Connection(  # type: ignore[assignment]
            url.replace("postgresql+psycopg://", "postgresql://"), pooled)
        self._fail_after_rows = fail_after_rows
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def schema_version(self) -> int:
        exists = self.db.execute("SELECT to_regclass('tw_meta') IS NOT NULL").fetchone()[0]
        if not exists:
            return 0
        row = self.db.execute("SELECT v FROM tw_meta WHERE k = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"store {self.path} has schema version {current}, newer than this "
                f"trucewatch ({SCHEMA_VERSION})", fix="upgrade trucewatch")
        if current == 0:
            with self._transaction():
                self.db.conn.execute(SCHEMA)  # type: ignore[attr-defined]
                self.db.execute("INSERT INTO tw_meta VALUES ('schema_version', ?)",
                                (str(BASE_VERSION),))
            current = BASE_VERSION
        if current < BASE_VERSION:  # pragma: no cover - no store was written before 5
            raise SchemaVersionError(f"no migration for {self.path} from {current}",
                                     fix="re-create the store with this trucewatch")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            with self._transaction():
                self.db.conn.execute(PG_MIGRATIONS[version])  # type: ignore[attr-defined]
                _data_step(version, self)
                self.db.execute("UPDATE tw_meta SET v = ? WHERE k = 'schema_version'",
                                (str(version),))

    def _bbox_sql(self, alias: str) -> str:
        return f"{alias}.geom @ ST_MakeEnvelope(?, ?, ?, ?, 4326)"

    @staticmethod
    def _bbox_args(min_lon: float, min_lat: float, max_lon: float, max_lat: float
                   ) -> list[float]:
        return [min_lon, min_lat, max_lon, max_lat]
