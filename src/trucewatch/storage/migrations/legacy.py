"""The schema of the releases before Alembic (schema versions 1-8), frozen: what a store
written by them holds, and how such a store was brought to version 8. Only the baseline
revision (``versions/0001_baseline.py``) runs this, on a store that has no
``alembic_version`` yet; the live schema is ``storage.schema``.

SQLite kept its version in ``PRAGMA user_version`` (``MIGRATIONS``: one script per
version); PostgreSQL in ``tw_meta.schema_version`` (``SCHEMA`` written at version 5, then
``PG_MIGRATIONS``). Never edit these texts: they are history.
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any

import sqlalchemy as sa

from trucewatch.model.principal import display_name, legacy_key
from trucewatch.storage import binding
from trucewatch.storage.database import append_log, now

LAST = 8  # the last version before Alembic: the baseline revision is this schema

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE raw_inputs (sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, source TEXT NOT NULL,
        layout TEXT, size INTEGER NOT NULL, received_at TEXT NOT NULL, content BLOB NOT NULL);
    CREATE TABLE batches (id TEXT PRIMARY KEY, raw_sha256 TEXT NOT NULL REFERENCES raw_inputs,
        source TEXT NOT NULL, name TEXT NOT NULL, rows INTEGER NOT NULL, new INTEGER NOT NULL,
        duplicates INTEGER NOT NULL, quarantined INTEGER NOT NULL, ingested_at TEXT NOT NULL);
    CREATE TABLE observations (id TEXT PRIMARY KEY, source_kind TEXT NOT NULL,
        source_id TEXT NOT NULL, sensor TEXT, time_start TEXT NOT NULL, time_end TEXT NOT NULL,
        acq_date TEXT NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL,
        uncertainty_m REAL NOT NULL, attributes TEXT NOT NULL, raw_sha256 TEXT NOT NULL,
        batch_id TEXT NOT NULL REFERENCES batches, raw_row INTEGER NOT NULL);
    CREATE INDEX observations_date ON observations (acq_date);
    CREATE VIRTUAL TABLE observations_rtree USING rtree(rid, min_lon, max_lon, min_lat, max_lat);
    CREATE TABLE quarantine (id INTEGER PRIMARY KEY, batch_id TEXT NOT NULL REFERENCES batches,
        raw_sha256 TEXT NOT NULL, row INTEGER NOT NULL, reason TEXT NOT NULL, raw TEXT NOT NULL);
    CREATE TABLE incidents (id TEXT PRIMARY KEY, status TEXT NOT NULL, category TEXT NOT NULL,
        time_start TEXT NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL, doc TEXT NOT NULL);
    CREATE VIRTUAL TABLE incidents_rtree USING rtree(rid, min_lon, max_lon, min_lat, max_lat);
    CREATE TABLE violations (id TEXT PRIMARY KEY, incident_id TEXT NOT NULL REFERENCES incidents,
        doc TEXT NOT NULL);
    CREATE TABLE status_changes (id INTEGER PRIMARY KEY, incident_id TEXT NOT NULL,
        old TEXT NOT NULL, new TEXT NOT NULL, who TEXT NOT NULL, why TEXT NOT NULL,
        at TEXT NOT NULL);
    """,
    # 2: evidence integrity and review (issue 4)
    """
    CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL,
        action TEXT NOT NULL, subject TEXT NOT NULL, details TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
    CREATE TRIGGER audit_log_append_only_u BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    CREATE TRIGGER audit_log_append_only_d BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    CREATE TRIGGER raw_inputs_evidentiary_u BEFORE UPDATE ON raw_inputs
        BEGIN SELECT RAISE(ABORT, 'raw inputs are evidentiary copies: never altered'); END;
    CREATE TRIGGER raw_inputs_evidentiary_d BEFORE DELETE ON raw_inputs
        BEGIN SELECT RAISE(ABORT, 'raw inputs are evidentiary copies: never deleted'); END;
    CREATE TABLE submissions (nonce TEXT PRIMARY KEY, key_id TEXT NOT NULL,
        signer TEXT NOT NULL, signed_at TEXT NOT NULL, raw_sha256 TEXT NOT NULL,
        received_at TEXT NOT NULL);
    CREATE TABLE refused (id INTEGER PRIMARY KEY, raw_sha256 TEXT NOT NULL, name TEXT NOT NULL,
        source TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL);
    CREATE TABLE incident_versions (incident_id TEXT NOT NULL, version INTEGER NOT NULL,
        status TEXT NOT NULL, action TEXT NOT NULL, who TEXT NOT NULL, why TEXT NOT NULL,
        at TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (incident_id, version));
    CREATE TABLE review_locks (incident_id TEXT PRIMARY KEY, analyst TEXT NOT NULL,
        claimed_at TEXT NOT NULL, expires_at TEXT NOT NULL);
    CREATE TABLE allegations (id TEXT PRIMARY KEY, received_at TEXT NOT NULL,
        claimant TEXT NOT NULL, raw_sha256 TEXT NOT NULL, batch_id TEXT NOT NULL,
        doc TEXT NOT NULL);
    CREATE TABLE rulings (allegation_id TEXT PRIMARY KEY REFERENCES allegations,
        ruling TEXT NOT NULL, basis TEXT NOT NULL, doc TEXT NOT NULL, at TEXT NOT NULL);
    UPDATE incidents SET status = 'pending_verification' WHERE status = 'reviewed';
    UPDATE incidents SET status = 'verified' WHERE status = 'final'
    """,
    # 3: API tokens (issue 5): only the SHA-256 of a token is kept
    """
    CREATE TABLE api_tokens (token_sha256 TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL, party TEXT, created_at TEXT NOT NULL, revoked_at TEXT)
    """,
    # 4: indexes for the API's incident queries (time, status, category, sector)
    """
    CREATE INDEX incidents_time ON incidents (time_start, id);
    CREATE INDEX incidents_status_time ON incidents (status, time_start);
    CREATE INDEX incidents_status_category_time ON incidents (status, category, time_start);
    CREATE INDEX incidents_category_time ON incidents (category, time_start);
    CREATE INDEX incidents_sector ON incidents (json_extract(doc, '$.sector_id'))
    """,
    # 5: what the mechanism could see, per cycle (GeoJSON), for maps and the API
    """
    CREATE TABLE coverage (id INTEGER PRIMARY KEY, at TEXT NOT NULL, doc TEXT NOT NULL)
    """,
    # 6: published products (issue 11): the service serves what this list names, never a
    # file because of its name; each entry is logged with the file's SHA-256
    """
    CREATE TABLE products (name TEXT PRIMARY KEY, kind TEXT NOT NULL,
        report_date TEXT NOT NULL, audience TEXT NOT NULL, sha256 TEXT NOT NULL,
        size INTEGER NOT NULL, path TEXT NOT NULL, published_at TEXT NOT NULL)
    """,
    # 7: principals (issue 11): who acts is a principal with a stable id and a canonical name
    # never given twice; tokens belong to a principal (several over time, each revocable);
    # a history row keeps the acting principal's id beside its name. Open claims (held
    # by names) are released. The old tokens' names become principals in Python
    # (_principals_from_tokens: canonical names need Unicode), in the same transaction.
    """
    CREATE TABLE principals (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
        display_name TEXT NOT NULL, role TEXT NOT NULL, party TEXT,
        created_at TEXT NOT NULL, disabled_at TEXT);
    ALTER TABLE api_tokens RENAME TO api_tokens_v6;
    CREATE TABLE api_tokens (token_sha256 TEXT PRIMARY KEY,
        principal_id TEXT NOT NULL REFERENCES principals, created_at TEXT NOT NULL,
        revoked_at TEXT);
    CREATE INDEX api_tokens_principal ON api_tokens (principal_id);
    ALTER TABLE incident_versions ADD COLUMN who_id TEXT;
    DELETE FROM review_locks
    """,
    # 8: state proven by the log (issue 11, storage.binding): each log entry binds the rows
    # its transaction wrote; a bulk table's rows are read back per batch. The rows of an
    # older store are bound by one bind_state entry, in Python (_data_step), from then on.
    """
    CREATE INDEX observations_batch ON observations (batch_id);
    CREATE INDEX quarantine_batch ON quarantine (batch_id);
    CREATE INDEX allegations_batch ON allegations (batch_id)
    """,
]

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


def statements(script: str) -> list[str]:
    """Split a script into statements (triggers contain semicolons of their own)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out


def version(conn: sa.Connection) -> int:
    """The pre-Alembic schema version of the store (0: none, a new store)."""
    if conn.dialect.name == "sqlite":
        return int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())
    if not conn.exec_driver_sql("SELECT to_regclass('tw_meta') IS NOT NULL").scalar_one():
        return 0
    row = conn.exec_driver_sql("SELECT v FROM tw_meta WHERE k = 'schema_version'").first()
    return int(row[0]) if row else 0


def set_version(conn: sa.Connection, v: int) -> None:
    """Write the version an older release reads (it refuses a store newer than it)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA user_version = {int(v)}")
        return
    conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS tw_meta (k TEXT PRIMARY KEY, "
                         "v TEXT NOT NULL)")
    conn.execute(sa.text("INSERT INTO tw_meta VALUES ('schema_version', :v) ON CONFLICT (k) "
                         "DO UPDATE SET v = EXCLUDED.v"), {"v": str(v)})


def upgrade_to_last(conn: sa.Connection) -> None:
    """Bring a store of an older release (or an empty database) to version 8, as that
    release did, data steps included, inside the caller's transaction."""
    current = version(conn)
    if conn.dialect.name == "sqlite":
        for v in range(current + 1, LAST + 1):
            for stmt in statements(MIGRATIONS[v - 1]):
                conn.exec_driver_sql(stmt)
            _data_step(v, conn)
            conn.exec_driver_sql(f"PRAGMA user_version = {v}")
        return
    if current == 0:
        conn.exec_driver_sql(SCHEMA)
        conn.exec_driver_sql("INSERT INTO tw_meta VALUES ('schema_version', '5')")
        current = BASE_VERSION
    for v in range(current + 1, LAST + 1):
        conn.exec_driver_sql(PG_MIGRATIONS[v])
        _data_step(v, conn)
        set_version(conn, v)


def _data_step(v: int, conn: sa.Connection) -> None:
    """What a migration did in Python after its SQL, in the same transaction."""
    if v == 7:
        _principals_from_tokens(conn)
    if v == 8:
        adopted = binding.adopt(conn)
        if adopted:
            append_log(conn, "migration", "bind_state", "store", adopted)


def _principals_from_tokens(conn: sa.Connection) -> None:
    """Migration data step (to 7): each old token's name becomes a principal. Names that
    fold to one canonical name (``anna``/``ANNA``, ``mallory``/``mallory\\u200b``) are one
    principal, with the first token's role and party; a look-alike token of another role
    or party is revoked (it cannot keep a role under someone else's name). Revoked old
    tokens stay revoked; their principal can be reissued a token. Each principal is
    logged with its tokens."""
    rows = conn.exec_driver_sql("SELECT token_sha256, name, role, party, created_at, "
                                "revoked_at FROM api_tokens_v6 ORDER BY created_at, name"
                                ).fetchall()
    made: dict[str, tuple[str, str, str | None, list[dict[str, Any]]]] = {}
    stamp = now()
    for sha, name, role, party, created, revoked in rows:
        key = legacy_key(name)
        if key not in made:
            pid = "p-" + secrets.token_hex(8)
            conn.execute(sa.text("INSERT INTO principals VALUES (:i, :n, :d, :r, :p, :c, "
                                 "NULL)"), {"i": pid, "n": key, "d": display_name(name) or key,
                                            "r": role, "p": party, "c": created})
            made[key] = (pid, role, party, [])
        pid, p_role, p_party, kept = made[key]
        why = ""
        if revoked is None and (role, party) != (p_role, p_party):
            revoked, why = stamp, f"look-alike of {key} with role {role}"
        conn.execute(sa.text("INSERT INTO api_tokens VALUES (:s, :p, :c, :r)"),
                     {"s": sha, "p": pid, "c": created, "r": revoked})
        kept.append({"token_sha256": sha, "old_name": name, "role": role,
                     "revoked_at": revoked, "revoked_by_migration": why})
    for key, (pid, role, party, kept) in made.items():
        append_log(conn, "migration", "principal_created", key, {
            "id": pid, "name": key, "role": role, "party": party, "from_tokens": kept})
    conn.exec_driver_sql("DROP TABLE api_tokens_v6")
