"""SQLite store (stdlib ``sqlite3``, R*Tree spatial index, WAL journal).

* Raw inputs are kept verbatim (zlib-compressed) under their SHA-256; ingesting
  the same file again is recognised and changes nothing.
* An observation's id is the hash of its identity (source, sensor, coordinates as
  printed, date, time), so overlapping downloads store each detection once.
* One batch is one transaction: a crash mid-ingest leaves no half batch.
* ``schema_version`` with forward migrations (``MIGRATIONS``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

from trucewatch.errors import (
    NotFoundError,
    PrincipalError,
    ReplayError,
    SchemaVersionError,
    StorageError,
)
from trucewatch.ingest.base import Batch, QuarantineEntry
from trucewatch.ingest.firms import seen_window, time_basis
from trucewatch.integrity.chain import GENESIS, LogEntry, canonical, entry_hash, verify_chain
from trucewatch.model.enums import SourceKind, Status
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.principal import (
    PrincipalRecord,
    canonical_name,
    display_name,
    legacy_key,
)
from trucewatch.model.serialization import from_json, to_json
from trucewatch.storage import binding
from trucewatch.storage.base import IngestReport

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

COUNT_CAP = 10_000  # query totals are exact up to this, then reported as COUNT_CAP + 1

# FIRMS pixel: 375 m (VIIRS I-band) or 1 km (MODIS); 1-sigma ~ half the pixel
_UNCERTAINTY_M = {"MODIS": 500.0}
_DEFAULT_UNCERTAINTY_M = 190.0


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class TokenOwner(NamedTuple):
    """Who a valid token belongs to: the principal's display name, role, party and id."""

    name: str
    role: str
    party: str | None
    id: str


def _principals_from_tokens(store: SqliteStore) -> None:
    """Migration data step: each old token's name becomes a principal. Names that fold
    to one canonical name (``anna``/``ANNA``, ``mallory``/``mallory\\u200b``) are one
    principal, with the first token's role and party; a look-alike token of another role
    or party is revoked (it cannot keep a role under someone else's name). Revoked old
    tokens stay revoked; their principal can be reissued a token. Each principal is
    logged with its tokens."""
    import secrets

    rows = store.db.execute("SELECT token_sha256, name, role, party, created_at, revoked_at "
                            "FROM api_tokens_v6 ORDER BY created_at, name").fetchall()
    made: dict[str, tuple[str, str, str | None, list[dict[str, Any]]]] = {}
    now = _now()
    for sha, name, role, party, created, revoked in rows:
        key = legacy_key(name)
        if key not in made:
            pid = "p-" + secrets.token_hex(8)
            store.db.execute("INSERT INTO principals VALUES (?,?,?,?,?,?,NULL)",
                             (pid, key, display_name(name) or key, role, party, created))
            made[key] = (pid, role, party, [])
        pid, p_role, p_party, kept = made[key]
        why = ""
        if revoked is None and (role, party) != (p_role, p_party):
            revoked, why = now, f"look-alike of {key} with role {role}"
        store.db.execute("INSERT INTO api_tokens VALUES (?,?,?,?)", (sha, pid, created, revoked))
        kept.append({"token_sha256": sha, "old_name": name, "role": role,
                     "revoked_at": revoked, "revoked_by_migration": why})
    for key, (pid, role, party, kept) in made.items():
        store._log("migration", "principal_created", key, {
            "id": pid, "name": key, "role": role, "party": party, "from_tokens": kept})
    store.db.execute("DROP TABLE api_tokens_v6")


def _data_step(version: int, store: SqliteStore) -> None:
    """What a migration does in Python after its SQL, in the same transaction."""
    if "CREATE TABLE principals" in MIGRATIONS[version - 1]:
        _principals_from_tokens(store)
    if "CREATE INDEX observations_batch" in MIGRATIONS[version - 1]:
        adopted = binding.adopt(store.db)
        if adopted:
            store._log("migration", "bind_state", "store", adopted)


class SqliteStore:
    def __init__(self, path: Path | str = ":memory:",
                 fail_after_rows: int | None = None) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            # a store may be opened in one thread and used in another (the API's async
            # endpoints), never by two at once
            self.db = sqlite3.connect(self.path, isolation_level=None,
                                      check_same_thread=False)
        except sqlite3.Error as err:
            raise StorageError(f"cannot open store {self.path}: {err}",
                               fix="check the path and its permissions") from err
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        # test hook: simulate a crash after this many observation rows of a batch
        self._fail_after_rows = fail_after_rows
        self._migrate()

    # ------------------------------------------------------------- schema
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version()
        if current > len(MIGRATIONS):
            raise SchemaVersionError(
                f"store {self.path} has schema version {current}, newer than this "
                f"trucewatch ({len(MIGRATIONS)})", fix="upgrade trucewatch")
        for version in range(current, len(MIGRATIONS)):
            with self._transaction():
                for stmt in _statements(MIGRATIONS[version]):
                    self.db.execute(stmt)
                _data_step(version + 1, self)
                self.db.execute(f"PRAGMA user_version = {version + 1}")

    def _transaction(self) -> _Tx:
        self._pending = binding.Pending()  # the rows this transaction binds into its entry
        return _Tx(self.db)

    # the rows a transaction writes are bound into its log entry (storage.binding): bind
    # each before writing it; the entry records its hash before and after
    _LOCK_ROWS = ""  # PostgreSQL: FOR UPDATE, so that a concurrent writer waits

    def _bind(self, table: str, keys: Iterable[tuple[Any, ...]], new: bool = False) -> None:
        self._pending.bind(self.db, table, keys, new, self._LOCK_ROWS)

    def _bind_where(self, table: str, where: str, args: Sequence[Any] = ()) -> None:
        self._pending.bind_where(self.db, table, where, args, self._LOCK_ROWS)

    # ------------------------------------------------------------- ingest
    def ingest(self, batch: Batch, on_progress: Callable[[int], None] | None = None,
               actor: str = "ingest") -> IngestReport:
        """Store a batch all-or-nothing and log it; a replayed signed submission is refused
        (recorded, raw kept) with ReplayError."""
        if not batch.raw:
            raise StorageError(f"{batch.name}: batch has no raw bytes to keep",
                               fix="read the file with keep_raw=True")
        batch_id = f"b-{uuid.uuid4().hex[:12]}"
        rows = _observation_rows(batch, batch_id)
        try:
            return self._ingest(batch, batch_id, rows, on_progress, actor)
        except _ReplayedError as replay:
            reason = replay.reason
        except Exception as err:
            # two processes received the same signed submission at once: the second one's
            # nonce insert fails inside its transaction (rolled back), and it is a replay
            if not (batch.signed and _unique_violation(err)):
                raise
            first = self.db.execute("SELECT received_at FROM submissions WHERE nonce = ?",
                                    (batch.signed["nonce"],)).fetchone()
            reason = (f"replayed submission: nonce {batch.signed['nonce']} was first "
                      f"received at {first[0] if first else 'the same moment'}")
        self.refuse(batch.raw, batch.name, batch.source, reason, actor)
        raise ReplayError(f"{batch.name}: {reason}",
                          fix="send each submission once, with a fresh nonce")

    def _ingest(self, batch: Batch, batch_id: str, rows: list[tuple[object, ...]],
                on_progress: Callable[[int], None] | None, actor: str) -> IngestReport:
        # the checks run inside the writing transaction, so that two processes receiving
        # the same input at once see each other (SQLite: BEGIN IMMEDIATE serialises them)
        with self._transaction():
            seen = self.db.execute("SELECT id, rows, new, duplicates, quarantined FROM batches "
                                   "WHERE raw_sha256 = ?", (batch.sha256,)).fetchone()
            if seen:
                return IngestReport(seen[0], batch.name, batch.sha256, seen[1], 0, seen[1] -
                                    seen[4], seen[4], already_ingested=True)
            if batch.signed:
                first = self.db.execute("SELECT received_at FROM submissions WHERE "
                                        "nonce = ?", (batch.signed["nonce"],)).fetchone()
                if first:
                    raise _ReplayedError(f"replayed submission: nonce {batch.signed['nonce']} was "
                                    f"first received at {first[0]}")
            self._bind_ingest(batch, batch_id)
            self._keep_raw(batch.raw, batch.sha256, batch.name, batch.source, batch.layout)
            self.db.execute("INSERT INTO batches VALUES (?,?,?,?,?,?,?,?,?)",
                            (batch_id, batch.sha256, batch.source, batch.name, batch.n_rows,
                             0, 0, len(batch.quarantine), _now()))
            before = self.db.total_changes
            chunk = 20000
            for k in range(0, len(rows), chunk):
                part = rows[k:k + chunk]
                if self._fail_after_rows is not None and k + len(part) > self._fail_after_rows:
                    raise StorageError("simulated crash during ingest (test hook)")
                self.db.executemany(
                    "INSERT OR IGNORE INTO observations VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    part)
                if on_progress:
                    on_progress(len(part))
            new = self.db.total_changes - before
            self.db.execute(
                "INSERT INTO observations_rtree SELECT rowid, lon, lon, lat, lat "
                "FROM observations WHERE batch_id = ?", (batch_id,))
            self.db.executemany(
                "INSERT INTO quarantine (batch_id, raw_sha256, row, reason, raw) "
                "VALUES (?,?,?,?,?)",
                [(batch_id, batch.sha256, q.row, q.reason, q.raw) for q in batch.quarantine])
            self.db.execute("UPDATE batches SET new = ?, duplicates = ? WHERE id = ?",
                            (new, len(rows) - new, batch_id))
            if batch.source == "allegations":
                self._store_allegations(batch, batch_id)
            if batch.signed:
                self.db.execute("INSERT INTO submissions VALUES (?,?,?,?,?,?)",
                                (batch.signed["nonce"], batch.signed["key_id"],
                                 batch.signed["signer"], batch.signed["signed_at"],
                                 batch.sha256, _now()))
            self._log(actor, "ingest", batch_id, {
                "name": batch.name, "source": batch.source, "raw_sha256": batch.sha256,
                "rows": batch.n_rows, "new": new, "quarantined": len(batch.quarantine),
                "signed_by": batch.signed.get("key_id", "")})
        return IngestReport(batch_id, batch.name, batch.sha256, batch.n_rows, new,
                            len(rows) - new, len(batch.quarantine), already_ingested=False)

    def _store_allegations(self, batch: Batch, batch_id: str) -> None:
        """An id already received is not overwritten: the new entry is quarantined."""
        for r in batch.records.iter_rows(named=True):
            first = self.db.execute("SELECT batch_id FROM allegations WHERE id = ?",
                                    (r["id"],)).fetchone()
            if first:
                self.db.execute(
                    "INSERT INTO quarantine (batch_id, raw_sha256, row, reason, raw) VALUES "
                    "(?,?,?,?,?)", (batch_id, batch.sha256, 0, f"allegation_id {r['id']} was "
                                    f"already received (batch {first[0]}); send a correction "
                                    "under a new id", r["doc"]))
                continue
            self.db.execute("INSERT INTO allegations VALUES (?,?,?,?,?,?)",
                            (r["id"], r["received_at"], r["claimant"], batch.sha256, batch_id,
                             r["doc"]))

    def _bind_ingest(self, batch: Batch, batch_id: str) -> None:
        """An ingest binds its batch, its nonce and, per batch, the rows it adds to the
        bulk tables (observations, quarantine, allegations: read back when it logs)."""
        self._bind("batches", [(batch_id,)], new=True)
        if batch.signed:
            self._bind("submissions", [(batch.signed["nonce"],)])
        self._pending.batches.append(batch_id)

    def _keep_raw(self, raw: bytes, sha: str, name: str, source: str, layout: str) -> None:
        self._bind("raw_inputs", [(sha,)])
        self.db.execute("INSERT OR IGNORE INTO raw_inputs VALUES (?,?,?,?,?,?,?)",
                        (sha, name, source, layout, len(raw), _now(), zlib.compress(raw, 6)))

    def refuse(self, raw: bytes, name: str, source: str, reason: str,
               actor: str = "ingest") -> None:
        """Record a refused submission: its raw bytes are kept and the refusal logged."""
        sha = hashlib.sha256(raw).hexdigest()
        with self._transaction():
            self._keep_raw(raw, sha, name, f"refused:{source}", "")
            rid = self.db.execute("INSERT INTO refused (raw_sha256, name, source, reason, at) "
                                  "VALUES (?,?,?,?,?) RETURNING id",
                                  (sha, name, source, reason, _now())).fetchall()[0][0]
            self._bind("refused", [(rid,)], new=True)
            self._log(actor, "refuse", name, {"raw_sha256": sha, "source": source,
                                              "reason": reason})

    def refused(self) -> list[dict[str, object]]:
        cur = self.db.execute("SELECT raw_sha256, name, source, reason, at FROM refused "
                              "ORDER BY id")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur]

    # ------------------------------------------------------------- audit log
    def _log(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
        """Append to the hash-chained log; call inside the transaction it records. The
        rows bound so far in the transaction are bound into this entry (storage.binding)."""
        details = details | self._pending.details(self.db)
        last = self.db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
                               ).fetchone()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        body = {"seq": seq, "at": _now(), "actor": actor, "action": action,
                "subject": subject, "details": canonical(details).decode(), "prev_hash": prev}
        self.db.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?)",
                        (*body.values(), entry_hash(body)))

    def log(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
        with self._transaction():
            self._log(actor, action, subject, details)

    def audit_log(self) -> list[LogEntry]:
        return [LogEntry(*r) for r in self.db.execute(
            "SELECT seq, at, actor, action, subject, details, prev_hash, hash FROM audit_log "
            "ORDER BY seq")]

    def verify(self) -> list[str]:
        """Check the whole chain, every evidentiary copy against the log both ways, and
        the state: the log replayed against every bound table (storage.binding). The
        problems found, empty when everything verifies; the first names the first broken
        link or the first difference (table, key and the entry that wrote it)."""
        log = self.audit_log()
        report = verify_chain(log)
        problems = [] if report.ok else [report.one_line()]
        logged: dict[str, tuple[int, str]] = {}
        for e in log:
            try:
                d = json.loads(e.details)
            except ValueError:
                continue  # the chain check names it
            sha = d.get("raw_sha256") if isinstance(d, dict) else None
            if isinstance(sha, str):
                logged.setdefault(sha, (e.seq, str(d.get("name") or e.subject)))
        stored = set()
        for sha, name, content in self.db.execute("SELECT sha256, name, content FROM "
                                                  "raw_inputs ORDER BY received_at, sha256"):
            stored.add(sha)
            try:
                ok = hashlib.sha256(zlib.decompress(content)).hexdigest() == sha
            except zlib.error:
                ok = False
            if not ok:
                problems.append(f"evidentiary copy {sha[:16]} does not match its SHA-256: "
                                "the stored raw input was altered")
            if sha not in logged:
                problems.append(f"raw input {name} ({sha[:16]}) has no entry in the audit log")
        problems += [f"evidentiary copy {sha[:16]} ({name}) logged at entry {seq} is missing "
                     "from raw_inputs" for sha, (seq, name) in logged.items()
                     if sha not in stored]
        return problems + binding.check(self.db, log)

    # ------------------------------------------------------------- queries
    def fire_detections(self, start: date | None = None,
                        end: date | None = None) -> pl.DataFrame:
        """Stored FIRMS detections with acq_date in [start, end]: id, latitude, longitude,
        acq_date, sensor, time_start, time_end (the window the satellite saw it in, ISO UTC,
        inclusive) and time_basis (how that window is known, ingest.firms.time_basis)."""
        sql = ("SELECT id, lat AS latitude, lon AS longitude, acq_date, sensor, time_start, "
               "time_end FROM observations WHERE source_kind = 'satellite_fire'")
        args: list[str] = []
        if start:
            sql += " AND acq_date >= ?"
            args.append(start.isoformat())
        if end:
            sql += " AND acq_date <= ?"
            args.append(end.isoformat())
        cur = self.db.execute(sql + " ORDER BY acq_date, id", args)
        rows = cur.fetchall()
        df = pl.DataFrame(rows, orient="row", schema={
            "id": pl.String, "latitude": pl.Float64, "longitude": pl.Float64,
            "acq_date": pl.String, "sensor": pl.String, "time_start": pl.String,
            "time_end": pl.String})
        # an acq_time row's window is its minute; a date-only row's spans hours
        span = (pl.col("time_end").str.to_datetime(time_zone="UTC")
                - pl.col("time_start").str.to_datetime(time_zone="UTC"))
        return df.with_columns(pl.col("acq_date").str.to_date(),
                               time_basis(pl.col("sensor"), span < pl.duration(minutes=2))
                               .alias("time_basis"))

    def fire_summary(self) -> pl.DataFrame:
        """Stored FIRMS detections per sensor and UTC date (sensor, acq_date, n): cheap, for
        checking a run's options before any heavy work."""
        cur = self.db.execute(
            "SELECT sensor, acq_date, COUNT(*) FROM observations WHERE source_kind = "
            "'satellite_fire' GROUP BY sensor, acq_date")
        return pl.DataFrame(cur.fetchall(), orient="row", schema={
            "sensor": pl.String, "acq_date": pl.String, "n": pl.Int64}).with_columns(
            pl.col("acq_date").str.to_date())

    def explosions(self) -> pl.DataFrame:
        """Located explosions from the ground-sensor network."""
        cur = self.db.execute(
            "SELECT id, time_start, lat, lon, uncertainty_m, attributes FROM observations "
            "WHERE source_kind = 'sensor_network' ORDER BY time_start, id")
        return pl.DataFrame(cur.fetchall(), orient="row", schema={
            "id": pl.String, "time_start": pl.String, "latitude": pl.Float64,
            "longitude": pl.Float64, "uncertainty_m": pl.Float64, "attributes": pl.String})

    def observations(self, kind: str) -> pl.DataFrame:
        """Observations of one source kind (drone, ...) with their attributes JSON."""
        cur = self.db.execute(
            "SELECT id, source_id, time_start, time_end, lat, lon, uncertainty_m, attributes "
            "FROM observations WHERE source_kind = ? ORDER BY time_start, id", (kind,))
        return pl.DataFrame(cur.fetchall(), orient="row", schema={
            "id": pl.String, "source_id": pl.String, "time_start": pl.String,
            "time_end": pl.String, "latitude": pl.Float64, "longitude": pl.Float64,
            "uncertainty_m": pl.Float64, "attributes": pl.String})

    def observations_in_bbox(self, min_lon: float, min_lat: float, max_lon: float,
                             max_lat: float) -> list[str]:
        cur = self.db.execute(
            "SELECT o.id FROM observations_rtree r JOIN observations o ON o.rowid = r.rid "
            "WHERE " + self._bbox_sql("r"), self._bbox_args(min_lon, min_lat, max_lon,
                                                            max_lat))
        return [r[0] for r in cur]

    def quarantine(self, batch_id: str | None = None) -> list[QuarantineEntry]:
        sql, args = "SELECT row, reason, raw FROM quarantine", ()
        if batch_id:
            sql, args = sql + " WHERE batch_id = ?", (batch_id,)  # type: ignore[assignment]
        return [QuarantineEntry(*r) for r in self.db.execute(sql + " ORDER BY id", args)]

    def raw_input(self, sha256: str) -> bytes:
        row = self.db.execute("SELECT content FROM raw_inputs WHERE sha256 = ?",
                              (sha256,)).fetchone()
        if row is None:
            raise NotFoundError(f"no raw input {sha256}",
                                fix="check the SHA-256 against the batches of the store")
        return zlib.decompress(row[0])

    def inputs(self, source: str) -> list[dict[str, Any]]:
        """The stored batches of one source, oldest first: id, name, raw_sha256, rows,
        quarantined, ingested_at (refused inputs are not batches: see ``refused``)."""
        cur = self.db.execute("SELECT id, name, raw_sha256, rows, quarantined, ingested_at "
                              "FROM batches WHERE source = ? ORDER BY ingested_at, id",
                              (source,))
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur]

    def batches(self) -> list[dict[str, object]]:
        cur = self.db.execute("SELECT id, name, rows, new, duplicates, quarantined, "
                              "ingested_at FROM batches ORDER BY ingested_at")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur]

    # ------------------------------------------------------------- incidents
    def save_incidents(self, incidents: list[Incident], violations: list[Violation],
                       replace_automatic: bool = True, actor: str = "pipeline") -> None:
        """Replace the automatic incidents with a new run's; reviewed ones are kept.
        Each new incident gets version 1 in its history; the run is logged."""
        with self._transaction():
            if replace_automatic:
                # untouched automatic incidents only: analysts' additions and edits stay
                stale = ("SELECT id FROM incidents WHERE status = 'automatic' AND id NOT IN "
                         "(SELECT incident_id FROM incident_versions WHERE action != 'created')")
                for table, col in (("violations", "incident_id"),
                                   ("incident_versions", "incident_id"), ("incidents", "id")):
                    self._bind_where(table, f"{col} IN ({stale})")
                self.db.execute(f"DELETE FROM violations WHERE incident_id IN ({stale})")
                self.db.execute("DELETE FROM incidents_rtree WHERE rid IN (SELECT rowid FROM "
                                f"incidents WHERE id IN ({stale}))")
                self.db.execute(f"DELETE FROM incident_versions WHERE incident_id IN ({stale})")
                self.db.execute(f"DELETE FROM incidents WHERE id IN ({stale})")
            kept = {r[0] for r in self.db.execute("SELECT id FROM incidents")}
            fresh = [i for i in incidents if i.id not in kept]
            self._bind("incidents", [(i.id,) for i in fresh])
            self._bind("incident_versions", [(i.id, 1) for i in fresh])
            docs = [to_json(i) for i in fresh]
            self.db.executemany(
                "INSERT INTO incidents VALUES (?,?,?,?,?,?,?)",
                [(i.id, i.status.value, i.category.value, i.time_start.isoformat(),
                  i.location.lat, i.location.lon, d) for i, d in zip(fresh, docs, strict=True)])
            now = _now()
            self.db.executemany(
                "INSERT INTO incident_versions (incident_id, version, status, action, who, "
                "why, at, doc) VALUES (?,?,?,?,?,?,?,?)",
                [(i.id, 1, i.status.value, "created", actor, i.reason[:200], now, d)
                 for i, d in zip(fresh, docs, strict=True)])
            ids = tuple(i.id for i in fresh)
            self.db.executemany(
                "INSERT INTO incidents_rtree SELECT rowid, lon, lon, lat, lat FROM incidents "
                "WHERE id = ?", [(x,) for x in ids])
            fresh_ids = set(ids)
            new_v = [v for v in violations if v.incident_id in fresh_ids]
            self._bind("violations", [(v.id,) for v in new_v])
            self.db.executemany("INSERT INTO violations VALUES (?,?,?)",
                                [(v.id, v.incident_id, to_json(v)) for v in new_v])
            self._log(actor, "adjudicate", "incidents", {
                "new_incidents": len(fresh), "kept_reviewed": len(kept),
                "candidate_violations": len(new_v),
                "incidents_sha256": hashlib.sha256("\n".join(sorted(docs)).encode())
                .hexdigest()})

    def incidents(self, status: Status | None = None) -> list[Incident]:
        sql, args = "SELECT doc, status FROM incidents", ()
        if status:
            sql, args = sql + " WHERE status = ?", (status.value,)  # type: ignore[assignment]
        return [_incident(doc, st)
                for doc, st in self.db.execute(sql + " ORDER BY time_start, id", args)]

    def incident(self, incident_id: str) -> Incident:
        row = self.db.execute("SELECT doc, status FROM incidents WHERE id = ?",
                              (incident_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no incident {incident_id}",
                                fix="list incidents with `trucewatch review queue`")
        return _incident(row[0], row[1])

    def violations(self) -> list[Violation]:
        return [from_json(r[0], Violation) for r in
                self.db.execute("SELECT doc FROM violations ORDER BY id")]

    def save_incident_version(self, inc: Incident, action: str, who: str, why: str,
                              violation: Violation | None = None,
                              who_id: str | None = None) -> int:
        """Write a reviewed (or analyst-added) incident as its next version, logged;
        ``who_id``: the acting principal's id (``who`` is its name, for people)."""
        doc = to_json(inc)
        with self._transaction():
            row = self.db.execute("SELECT max(version) FROM incident_versions WHERE "
                                  "incident_id = ?", (inc.id,)).fetchone()
            version = (row[0] or 0) + 1
            self._bind("incidents", [(inc.id,)])
            self._bind("incident_versions", [(inc.id, version)])
            if violation is not None:
                self._bind("violations", [(violation.id,)])
            if version == 1:
                self.db.execute("INSERT INTO incidents VALUES (?,?,?,?,?,?,?)",
                                (inc.id, inc.status.value, inc.category.value,
                                 inc.time_start.isoformat(), inc.location.lat,
                                 inc.location.lon, doc))
                self.db.execute("INSERT INTO incidents_rtree SELECT rowid, lon, lon, lat, lat "
                                "FROM incidents WHERE id = ?", (inc.id,))
            else:
                self.db.execute("UPDATE incidents SET status = ?, category = ?, time_start = ?,"
                                " lat = ?, lon = ?, doc = ? WHERE id = ?",
                                (inc.status.value, inc.category.value,
                                 inc.time_start.isoformat(), inc.location.lat,
                                 inc.location.lon, doc, inc.id))
                self.db.execute("UPDATE incidents_rtree SET min_lon = ?, max_lon = ?, "
                                "min_lat = ?, max_lat = ? WHERE rid = (SELECT rowid FROM "
                                "incidents WHERE id = ?)", (inc.location.lon, inc.location.lon,
                                                           inc.location.lat, inc.location.lat,
                                                           inc.id))
            if violation is not None:
                self.db.execute("INSERT OR REPLACE INTO violations VALUES (?,?,?)",
                                (violation.id, violation.incident_id, to_json(violation)))
            self.db.execute("INSERT INTO incident_versions VALUES (?,?,?,?,?,?,?,?,?)",
                            (inc.id, version, inc.status.value, action, who, why, _now(), doc,
                             who_id))
            self._log(who, action, inc.id, {"version": version, "status": inc.status.value,
                                            "why": why,
                                            "doc_sha256": hashlib.sha256(doc.encode())
                                            .hexdigest()}
                      | ({"principal": who_id} if who_id else {}))
        return version

    def incident_history(self, incident_id: str) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT version, status, action, who, why, at, doc, who_id "
                              "FROM incident_versions WHERE incident_id = ? ORDER BY version",
                              (incident_id,))
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur]

    def all_history(self) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT incident_id, version, status, action, who, at, who_id "
                              "FROM incident_versions ORDER BY incident_id, version")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur]

    def set_status(self, incident_id: str, new: Status, who: str, why: str) -> None:
        """Low-level status change (the review workflow adds locks and the two-person rule)."""
        inc = self.incident(incident_id)
        inc.set_status(new)
        self.save_incident_version(inc, f"status:{new.value}", who, why)

    # ------------------------------------------------------------- review locks
    def claim(self, incident_id: str, analyst: str, until: datetime,
              name: str | None = None) -> str | None:
        """Take the lock for ``analyst`` (a principal id; ``name`` is how the log and
        others see it) unless someone else holds an unexpired one; return that holder."""
        now = _now()
        with self._transaction():
            held = self._lock(incident_id, now)
            if held and held[0] != analyst:
                return held[1]
            self.db.execute("INSERT OR REPLACE INTO review_locks VALUES (?,?,?,?)",
                            (incident_id, analyst, now, until.isoformat().replace("+00:00", "Z")))
            self._log(name or analyst, "claim", incident_id, {"until": until.isoformat(),
                                                               "principal": analyst})
        return None

    def _lock(self, incident_id: str, now: str) -> tuple[str, str] | None:
        """(holder, 'NAME until TIME') of an unexpired lock, or None."""
        row = self.db.execute(
            "SELECT l.analyst, l.expires_at, p.display_name FROM review_locks l LEFT JOIN "
            "principals p ON p.id = l.analyst WHERE l.incident_id = ?", (incident_id,)
        ).fetchone()
        if not row or row[1] <= now:
            return None
        return row[0], f"{row[2] or row[0]} until {row[1]}"

    def lock_holder(self, incident_id: str) -> str | None:
        """The principal id holding an unexpired lock, or None."""
        held = self._lock(incident_id, _now())
        return held[0] if held else None

    def release(self, incident_id: str, analyst: str) -> str | None:
        """Drop ``analyst``'s lock. A lock someone else holds (unexpired) is kept and
        its holder returned ('NAME until TIME'); no lock at all is no change."""
        with self._transaction():
            held = self._lock(incident_id, _now())
            if held and held[0] != analyst:
                return held[1]
            self.db.execute("DELETE FROM review_locks WHERE incident_id = ?", (incident_id,))
        return None

    # ------------------------------------------------------------- allegations
    def allegations(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in
                self.db.execute("SELECT doc FROM allegations ORDER BY received_at, id")]

    def save_rulings(self, rulings: list[dict[str, Any]], actor: str = "pipeline") -> None:
        """Store automatic rulings; a ruling an analyst made (basis 'reviewed') is kept."""
        with self._transaction():
            reviewed = {r[0] for r in self.db.execute(
                "SELECT allegation_id FROM rulings WHERE basis = 'reviewed'")}
            rows = [(r["allegation_id"], r["ruling"], r.get("basis", "automatic"),
                     json.dumps(r, ensure_ascii=False, sort_keys=True), _now())
                    for r in rulings if r["allegation_id"] not in reviewed]
            self._bind("rulings", [(r[0],) for r in rows])
            self.db.executemany("INSERT OR REPLACE INTO rulings VALUES (?,?,?,?,?)", rows)
            self._log(actor, "rule_allegations", "allegations", {
                "rulings": len(rows), "kept_reviewed": len(reviewed),
                "sha256": hashlib.sha256(canonical([r[3] for r in rows])).hexdigest()})

    def rulings(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in
                self.db.execute("SELECT doc FROM rulings ORDER BY allegation_id")]

    # ------------------------------------------------------------- coverage
    def save_coverage(self, doc: dict[str, Any], actor: str = "pipeline") -> None:
        text = json.dumps(doc)
        with self._transaction():
            cid = self.db.execute("INSERT INTO coverage (at, doc) VALUES (?, ?) RETURNING id",
                                  (_now(), text)).fetchall()[0][0]
            self._bind("coverage", [(cid,)], new=True)
            self._log(actor, "coverage", str(cid), {
                "sha256": hashlib.sha256(text.encode()).hexdigest()})

    def latest_coverage(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT doc FROM coverage ORDER BY id DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    # ------------------------------------------------------------- products
    def publish_product(self, path: Path, kind: str, report_date: date, audience: str,
                        actor: str = "pipeline") -> None:
        """Record a written product (a bulletin file) as published, with its SHA-256.
        A name is published once: a re-run that would change it writes a revision."""
        content = Path(path).read_bytes()
        sha = hashlib.sha256(content).hexdigest()
        with self._transaction():
            row = self.db.execute("SELECT sha256 FROM products WHERE name = ?",
                                  (Path(path).name,)).fetchone()
            if row is not None:
                return
            self._bind("products", [(Path(path).name,)], new=True)
            self.db.execute("INSERT INTO products VALUES (?,?,?,?,?,?,?,?)",
                            (Path(path).name, kind, report_date.isoformat(), audience, sha,
                             len(content), str(Path(path).resolve()), _now()))
            self._log(actor, "publish", Path(path).name, {
                "kind": kind, "report_date": report_date.isoformat(), "audience": audience,
                "sha256": sha, "size": len(content)})

    def publish_checkpoint(self, out_dir: Path, day: date) -> Path:
        """Sign the log's head with the mission key into ``out_dir/checkpoint-DAY.json``
        (integrity.checkpoint: where the key lives, what is signed)."""
        from trucewatch.integrity import checkpoint

        return checkpoint.publish(self, Path(out_dir), day)

    def products(self) -> list[dict[str, Any]]:
        """Published products, oldest first: name, kind, report_date, audience (public or
        restricted), sha256, size, path, published_at."""
        cur = self.db.execute("SELECT name, kind, report_date, audience, sha256, size, path, "
                              "published_at FROM products ORDER BY published_at, name")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur]

    def product(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.products() if p["name"] == name), None)

    # ------------------------------------------------------------- principals and tokens
    # A principal (model.principal) has a stable id and a canonical name that is never
    # given twice; tokens belong to it. These are the store's primitives: who may create
    # a token is decided by review.principals (the CLI's policy: admins, bootstrap).
    def _principal_row(self, where: str, arg: str) -> PrincipalRecord | None:
        row = self.db.execute("SELECT id, name, display_name, role, party, created_at, "
                              f"disabled_at FROM principals WHERE {where} = ?",
                              (arg,)).fetchone()
        return PrincipalRecord(*row) if row else None

    def principal(self, principal_id: str) -> PrincipalRecord:
        found = self._principal_row("id", principal_id)
        if found is None:
            raise NotFoundError(f"no principal {principal_id}",
                                fix="list principals with `trucewatch tokens list`")
        return found

    def principal_named(self, name: str) -> PrincipalRecord | None:
        """The principal whose canonical name is ``name``'s (ANNA finds anna)."""
        return self._principal_row("name", legacy_key(name))

    def principals(self) -> list[PrincipalRecord]:
        return [PrincipalRecord(*r) for r in self.db.execute(
            "SELECT id, name, display_name, role, party, created_at, disabled_at FROM "
            "principals ORDER BY created_at, name")]

    def bootstrap_open(self) -> bool:
        """True while no principal has ever been an admin (admins stay admins): then the
        one token that may be made without an admin's is the first admin's."""
        return self.db.execute("SELECT 1 FROM principals WHERE role = 'admin' LIMIT 1"
                               ).fetchone() is None

    def add_principal(self, name: str, role: str, party: str | None = None,
                      actor: str = "admin") -> PrincipalRecord:
        """A new principal (no token yet); its name must be valid and not taken."""
        with self._transaction():
            return self._new_principal(name, role, party, actor)

    def _new_principal(self, name: str, role: str, party: str | None,
                       actor: str) -> PrincipalRecord:
        import secrets

        canonical = canonical_name(name)
        taken = self._principal_row("name", canonical)
        if taken is not None:
            state = f"disabled {taken.disabled_at}" if taken.disabled_at else "active"
            raise PrincipalError(
                f"the name {display_name(name)!r} is taken by principal {taken.id} "
                f"({taken.display_name}, {taken.role}, {state}): a name is never given to "
                "a second person, not even after a revocation",
                fix="give --reissue to issue another token to that same person, or "
                    "choose another name")
        rec = PrincipalRecord("p-" + secrets.token_hex(8), canonical, display_name(name),
                              role, party, _now())
        self._bind("principals", [(rec.id,)], new=True)
        self.db.execute("INSERT INTO principals VALUES (?,?,?,?,?,?,NULL)",
                        (rec.id, rec.name, rec.display_name, rec.role, rec.party,
                         rec.created_at))
        self._log(actor, "principal_created", rec.name, {
            "id": rec.id, "name": rec.name, "display_name": rec.display_name,
            "role": role, "party": party})
        return rec

    def add_token(self, name: str, role: str, party: str | None = None,
                  actor: str = "admin", reissue: bool = False) -> str:
        """A new token (shown once; only its SHA-256 is kept). Without ``reissue`` it is
        a new principal's, whose name must not be taken; with it, another token of the
        existing principal ``name`` (a different role or party changes the principal's;
        an admin stays an admin)."""
        import secrets

        raw = "tw_" + secrets.token_urlsafe(32)
        sha = hashlib.sha256(raw.encode()).hexdigest()
        with self._transaction():
            if not reissue:
                p = self._new_principal(name, role, party, actor)
            else:
                found = self.principal_named(name)
                if found is None:
                    raise PrincipalError(f"no principal named {display_name(name)!r} to "
                                         "reissue", fix="create it without --reissue")
                p = found
                if p.disabled_at:
                    raise PrincipalError(
                        f"{p.display_name} ({p.id}) was disabled at {p.disabled_at}: a "
                        "disabled principal gets no token again, and its name stays taken",
                        fix="issue the person a token under another name")
                if (role, party) != (p.role, p.party):
                    if p.role == "admin" and role != "admin":
                        raise PrincipalError(
                            f"{p.display_name} is an admin: an admin stays an admin",
                            fix="disable the principal (tokens revoke NAME --disable) and "
                                "create another")
                    self._bind("principals", [(p.id,)])
                    self.db.execute("UPDATE principals SET role = ?, party = ? WHERE id = ?",
                                    (role, party, p.id))
                    self._log(actor, "principal_changed", p.name, {
                        "id": p.id, "role": role, "party": party, "was_role": p.role,
                        "was_party": p.party})
            self._bind("api_tokens", [(sha,)], new=True)
            self.db.execute("INSERT INTO api_tokens VALUES (?,?,?,NULL)", (sha, p.id, _now()))
            self._log(actor, "token_created", p.name, {
                "principal": p.id, "role": role, "party": party, "token_sha256": sha})
        return raw

    def token_owner(self, raw: str) -> TokenOwner | None:
        """(name, role, party, id) of the principal of a valid token (not revoked, its
        principal not disabled), or None. ``name`` is the display name."""
        row = self.db.execute(
            "SELECT p.display_name, p.role, p.party, p.id FROM api_tokens t JOIN principals "
            "p ON p.id = t.principal_id WHERE t.token_sha256 = ? AND t.revoked_at IS NULL "
            "AND p.disabled_at IS NULL", (hashlib.sha256(raw.encode()).hexdigest(),)
        ).fetchone()
        return TokenOwner(*row) if row else None

    def revoke_token(self, name: str, actor: str = "admin", token_id: str | None = None,
                     disable: bool = False) -> int:
        """Revoke the live tokens of principal ``name`` (only the one whose id, the
        first hex digits of its SHA-256, is ``token_id``, if given); ``disable``: the
        principal too, for good. The name stays taken either way. Refused when it would
        leave no admin with a live token. Returns how many tokens were revoked."""
        with self._transaction():
            p = self.principal_named(name)
            if p is None:
                raise NotFoundError(f"no principal named {display_name(name)!r}",
                                    fix="list them with `trucewatch tokens list`")
            live = [r[0] for r in self.db.execute(
                "SELECT token_sha256 FROM api_tokens WHERE principal_id = ? AND revoked_at IS "
                "NULL ORDER BY created_at", (p.id,))
                if token_id is None or r[0].startswith(token_id.lower())]
            if not live and not disable:
                raise NotFoundError(
                    f"{p.display_name} has no live token"
                    + (f" with id {token_id}" if token_id else ""),
                    fix="list tokens with `trucewatch tokens list`")
            admin_tokens = self.db.execute(
                "SELECT t.token_sha256, t.principal_id FROM api_tokens t JOIN principals q ON "
                "q.id = t.principal_id WHERE q.role = 'admin' AND q.disabled_at IS NULL AND "
                "t.revoked_at IS NULL").fetchall()
            left = [sha for sha, pid in admin_tokens
                    if sha not in live and not (disable and pid == p.id)]
            if admin_tokens and not left:
                raise PrincipalError(
                    f"{p.display_name} is the last admin with a live token: revoking it "
                    "would leave nobody able to issue tokens",
                    fix=f"issue a new admin token first (tokens new {p.name} --role admin "
                        "--reissue, or another admin's), then revoke")
            now = _now()
            self._bind("api_tokens", [(sha,) for sha in live])
            for sha in live:
                self.db.execute("UPDATE api_tokens SET revoked_at = ? WHERE token_sha256 = ?",
                                (now, sha))
            if live:
                self._log(actor, "token_revoked", p.name, {"principal": p.id,
                                                           "token_sha256": live})
            if disable and not p.disabled_at:
                self._bind("principals", [(p.id,)])
                self.db.execute("UPDATE principals SET disabled_at = ? WHERE id = ?",
                                (now, p.id))
                self._log(actor, "principal_disabled", p.name, {"principal": p.id})
        return len(live)

    def tokens(self) -> list[dict[str, object]]:
        """Every token with its principal (never the token): name (display), role,
        party, created_at, revoked_at, principal_id, token_id (12 hex digits of its
        SHA-256), disabled_at (the principal's)."""
        cur = self.db.execute(
            "SELECT p.display_name AS name, p.role, p.party, t.created_at, t.revoked_at, "
            "p.id AS principal_id, substr(t.token_sha256, 1, 12) AS token_id, p.disabled_at "
            "FROM api_tokens t JOIN principals p ON p.id = t.principal_id "
            "ORDER BY t.created_at, p.name")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur]

    def query_incidents(self, *, bbox: tuple[float, float, float, float] | None = None,
                        start: str | None = None, end: str | None = None,
                        sector: str | None = None, category: str | None = None,
                        statuses: list[str] | None = None, limit: int = 100,
                        offset: int = 0, raw: bool = False
                        ) -> tuple[list[Any], int]:
        """Incidents matching every filter given (bbox through the R*Tree), and the total.
        ``raw``: the stored JSON documents as dicts (what the API sends), not objects."""
        where: list[str] = []
        args: list[object] = []
        join = ""
        if bbox is not None:
            join = " JOIN incidents_rtree r ON r.rid = i.rowid"
            where.append(self._bbox_sql("r"))
            args += self._bbox_args(*bbox)
        if start:
            where.append("i.time_start >= ?")
            args.append(start)
        if end:
            where.append("i.time_start < ?")
            args.append(end)
        if sector:
            where.append("json_extract(i.doc, '$.sector_id') = ?")
            args.append(sector)
        if category:
            where.append("i.category = ?")
            args.append(category)
        if statuses is not None:
            where.append(f"i.status IN ({','.join('?' * len(statuses))})")
            args += statuses
        sql = f" FROM incidents i{join}" + (" WHERE " + " AND ".join(where) if where else "")
        # the total is counted up to COUNT_CAP: past it a client pages on (next_offset)
        # rather than waiting for an exact count of a million rows
        total = int(self.db.execute(f"SELECT count(*) FROM (SELECT 1{sql} LIMIT "
                                    f"{COUNT_CAP + 1}) AS c", args).fetchone()[0])
        rows = self.db.execute("SELECT i.doc, i.status" + sql +
                               " ORDER BY i.time_start, i.id LIMIT ? OFFSET ?",
                               [*args, limit, offset]).fetchall()
        if raw:
            return [json.loads(doc) | {"status": st} for doc, st in rows], total
        return [_incident(doc, st) for doc, st in rows], total

    # the box query: the R*Tree's columns here, a GiST-indexed geometry in PostGIS
    def _bbox_sql(self, alias: str) -> str:
        return (f"{alias}.min_lon >= ? AND {alias}.max_lon <= ? AND {alias}.min_lat >= ? "
                f"AND {alias}.max_lat <= ?")

    @staticmethod
    def _bbox_args(min_lon: float, min_lat: float, max_lon: float, max_lat: float
                   ) -> list[float]:
        return [min_lon, max_lon, min_lat, max_lat]

    def counts(self) -> dict[str, int]:
        return {t: int(self.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                for t in ("raw_inputs", "batches", "observations", "quarantine", "incidents",
                          "violations", "allegations", "rulings", "refused", "audit_log")}

    def close(self) -> None:
        self.db.close()


def _incident(doc: str, status: str) -> Incident:
    """An incident row: its document, with the status column (which review changes)."""
    inc = from_json(doc, Incident)
    inc.status = Status(status)
    return inc


def _statements(script: str) -> list[str]:
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


class _ReplayedError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _unique_violation(err: Exception) -> bool:
    """A uniqueness conflict, from SQLite or PostgreSQL."""
    if isinstance(err, sqlite3.IntegrityError):
        return "UNIQUE" in str(err) or "PRIMARY KEY" in str(err)
    return type(err).__name__ == "UniqueViolation"


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _observation_rows(batch: Batch, batch_id: str) -> list[tuple[object, ...]]:
    if batch.kind in (SourceKind.STATION_INVENTORY, SourceKind.CONFIGURATION):
        return []  # kept and logged as inputs; nothing in them is an observation
    if batch.source == "sensor_events":
        return _explosion_rows(batch, batch_id)
    if batch.source == "allegations":
        return []  # allegations are claims, not observations: their own table
    if "obs_id" in batch.records.columns:
        return _generic_rows(batch, batch_id)
    r = batch.records
    if "seen_start" not in r.columns:  # records built without the FIRMS reader
        r = seen_window(r)
    # time_start/time_end: the window the satellite saw the fire in (ingest.firms
    # seen_start/seen_end, inclusive, UTC): the minute of acq_time, or for date-only rows
    # the overpass windows within acq_date (docs/data-formats.md)
    r = r.with_columns(pl.col("seen_start").dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("_t0"),
                       pl.col("seen_end").dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("_t1"))
    out: list[tuple[object, ...]] = []
    for row, lat, lon, lt, ln, d, minute, sensor, conf, frp, dn, raw, t0, t1, basis in r.select(
            "row", "latitude", "longitude", "lat_text", "lon_text", "acq_date", "acq_minute",
            "sensor", "confidence", "frp", "daynight", "raw", "_t0", "_t1", "time_basis"
    ).iter_rows():
        day = d.isoformat()
        identity = f"{batch.source}|{sensor}|{lt}|{ln}|{day}|{minute}"
        oid = "o-" + hashlib.sha256(identity.encode()).hexdigest()[:24]
        attrs = json.dumps({"sensor": sensor, "confidence": conf, "frp": frp, "daynight": dn,
                            "layout": batch.layout, "time_basis": basis})
        out.append((oid, batch.kind.value, f"{batch.source}:{sensor}", sensor, t0, t1, day,
                    lat, lon, _UNCERTAINTY_M.get(sensor, _DEFAULT_UNCERTAINTY_M), attrs,
                    hashlib.sha256(raw.encode()).hexdigest(), batch_id, row))
    return out


def _explosion_rows(batch: Batch, batch_id: str) -> list[tuple[object, ...]]:
    """Located explosions (records from sensors.events.observation_records)."""
    out: list[tuple[object, ...]] = []
    raw_sha = batch.sha256
    for r in batch.records.iter_rows(named=True):
        attrs = json.dumps({k: r[k] for k in ("event_id", "status", "n_defining", "n_stations",
                                               "rms_s", "major_m", "minor_m", "azimuth_deg")
                            if k in r}, default=float)
        t = r["t"]
        out.append((r["obs_id"], batch.kind.value, "sensors:network", "sensor_network", t, t,
                    t[:10], r["latitude"], r["longitude"], r["uncertainty_m"], attrs, raw_sha,
                    batch_id, 0))
    return out


def _generic_rows(batch: Batch, batch_id: str) -> list[tuple[object, ...]]:
    """Records already in observation form: obs_id, source_id, t0, t1 (ISO UTC), latitude,
    longitude, uncertainty_m, attributes (JSON text), raw_row, raw_sha256 (of the record)."""
    out: list[tuple[object, ...]] = []
    for r in batch.records.iter_rows(named=True):
        out.append((r["obs_id"], batch.kind.value, r["source_id"], batch.source, r["t0"],
                    r["t1"], r["t0"][:10], r["latitude"], r["longitude"], r["uncertainty_m"],
                    r["attributes"], r["raw_sha256"], batch_id, r["raw_row"]))
    return out
