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
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from trucewatch.errors import NotFoundError, SchemaVersionError, StorageError
from trucewatch.ingest.base import Batch, QuarantineEntry
from trucewatch.model.enums import Status
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.serialization import from_json, to_json
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
]

# FIRMS pixel: 375 m (VIIRS I-band) or 1 km (MODIS); 1-sigma ~ half the pixel
_UNCERTAINTY_M = {"MODIS": 500.0}
_DEFAULT_UNCERTAINTY_M = 190.0


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class SqliteStore:
    def __init__(self, path: Path | str = ":memory:",
                 fail_after_rows: int | None = None) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
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
                for stmt in MIGRATIONS[version].split(";"):
                    if stmt.strip():
                        self.db.execute(stmt)
                self.db.execute(f"PRAGMA user_version = {version + 1}")

    def _transaction(self) -> _Tx:
        return _Tx(self.db)

    # ------------------------------------------------------------- ingest
    def ingest(self, batch: Batch, on_progress: Callable[[int], None] | None = None
               ) -> IngestReport:
        if not batch.raw:
            raise StorageError(f"{batch.name}: batch has no raw bytes to keep",
                               fix="read the file with keep_raw=True")
        seen = self.db.execute("SELECT id, rows, new, duplicates, quarantined FROM batches "
                               "WHERE raw_sha256 = ?", (batch.sha256,)).fetchone()
        if seen:
            return IngestReport(seen[0], batch.name, batch.sha256, seen[1], 0, seen[1] -
                                seen[4], seen[4], already_ingested=True)
        batch_id = f"b-{uuid.uuid4().hex[:12]}"
        rows = _observation_rows(batch, batch_id)
        with self._transaction():
            self.db.execute("INSERT INTO raw_inputs VALUES (?,?,?,?,?,?,?)",
                            (batch.sha256, batch.name, batch.source, batch.layout,
                             len(batch.raw), _now(), zlib.compress(batch.raw, 6)))
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
        return IngestReport(batch_id, batch.name, batch.sha256, batch.n_rows, new,
                            len(rows) - new, len(batch.quarantine), already_ingested=False)

    # ------------------------------------------------------------- queries
    def fire_detections(self, start: date | None = None,
                        end: date | None = None) -> pl.DataFrame:
        sql = ("SELECT id, lat AS latitude, lon AS longitude, acq_date, sensor, time_start "
               "FROM observations WHERE source_kind = 'satellite_fire'")
        args: list[str] = []
        if start:
            sql += " AND acq_date >= ?"
            args.append(start.isoformat())
        if end:
            sql += " AND acq_date <= ?"
            args.append(end.isoformat())
        cur = self.db.execute(sql + " ORDER BY acq_date, id", args)
        rows = cur.fetchall()
        df = pl.DataFrame(rows, schema=["id", "latitude", "longitude", "acq_date", "sensor",
                                        "time_start"], orient="row")
        return df.with_columns(pl.col("acq_date").str.to_date())

    def explosions(self) -> pl.DataFrame:
        """Located explosions from the ground-sensor network."""
        cur = self.db.execute(
            "SELECT id, time_start, lat, lon, uncertainty_m, attributes FROM observations "
            "WHERE source_kind = 'sensor_network' ORDER BY time_start, id")
        return pl.DataFrame(cur.fetchall(), orient="row", schema={
            "id": pl.String, "time_start": pl.String, "latitude": pl.Float64,
            "longitude": pl.Float64, "uncertainty_m": pl.Float64, "attributes": pl.String})

    def observations_in_bbox(self, min_lon: float, min_lat: float, max_lon: float,
                             max_lat: float) -> list[str]:
        cur = self.db.execute(
            "SELECT o.id FROM observations_rtree r JOIN observations o ON o.rowid = r.rid "
            "WHERE r.min_lon >= ? AND r.max_lon <= ? AND r.min_lat >= ? AND r.max_lat <= ?",
            (min_lon, max_lon, min_lat, max_lat))
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

    def batches(self) -> list[dict[str, object]]:
        cur = self.db.execute("SELECT id, name, rows, new, duplicates, quarantined, "
                              "ingested_at FROM batches ORDER BY ingested_at")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur]

    # ------------------------------------------------------------- incidents
    def save_incidents(self, incidents: list[Incident], violations: list[Violation],
                       replace_automatic: bool = True) -> None:
        """Replace the automatic incidents with a new run's; reviewed ones are kept."""
        with self._transaction():
            if replace_automatic:
                self.db.execute("DELETE FROM violations WHERE incident_id IN (SELECT id FROM "
                                "incidents WHERE status = 'automatic')")
                self.db.execute("DELETE FROM incidents_rtree WHERE rid IN (SELECT rowid FROM "
                                "incidents WHERE status = 'automatic')")
                self.db.execute("DELETE FROM incidents WHERE status = 'automatic'")
            kept = {r[0] for r in self.db.execute("SELECT id FROM incidents")}
            fresh = [i for i in incidents if i.id not in kept]
            self.db.executemany(
                "INSERT INTO incidents VALUES (?,?,?,?,?,?,?)",
                [(i.id, i.status.value, i.category.value, i.time_start.isoformat(),
                  i.location.lat, i.location.lon, to_json(i)) for i in fresh])
            ids = tuple(i.id for i in fresh)
            self.db.executemany(
                "INSERT INTO incidents_rtree SELECT rowid, lon, lon, lat, lat FROM incidents "
                "WHERE id = ?", [(x,) for x in ids])
            fresh_ids = set(ids)
            self.db.executemany("INSERT INTO violations VALUES (?,?,?)",
                                [(v.id, v.incident_id, to_json(v)) for v in violations
                                 if v.incident_id in fresh_ids])

    def incidents(self, status: Status | None = None) -> list[Incident]:
        sql, args = "SELECT doc, status FROM incidents", ()
        if status:
            sql, args = sql + " WHERE status = ?", (status.value,)  # type: ignore[assignment]
        out = []
        for doc, st in self.db.execute(sql + " ORDER BY time_start, id", args):
            inc = from_json(doc, Incident)
            inc.status = Status(st)
            out.append(inc)
        return out

    def violations(self) -> list[Violation]:
        return [from_json(r[0], Violation) for r in
                self.db.execute("SELECT doc FROM violations ORDER BY id")]

    def set_status(self, incident_id: str, new: Status, who: str, why: str) -> None:
        row = self.db.execute("SELECT status FROM incidents WHERE id = ?",
                              (incident_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no incident {incident_id}",
                                fix="list incidents with `trucewatch report`")
        old = Status(row[0])
        old.check_transition(new)
        with self._transaction():
            self.db.execute("UPDATE incidents SET status = ? WHERE id = ?",
                            (new.value, incident_id))
            self.db.execute("INSERT INTO status_changes (incident_id, old, new, who, why, at) "
                            "VALUES (?,?,?,?,?,?)", (incident_id, old.value, new.value, who,
                                                    why, _now()))

    def counts(self) -> dict[str, int]:
        return {t: int(self.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                for t in ("raw_inputs", "batches", "observations", "quarantine", "incidents",
                          "violations")}

    def close(self) -> None:
        self.db.close()


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _observation_rows(batch: Batch, batch_id: str) -> list[tuple[object, ...]]:
    if batch.source == "sensor_events":
        return _explosion_rows(batch, batch_id)
    r = batch.records
    out: list[tuple[object, ...]] = []
    for row, lat, lon, lt, ln, d, minute, sensor, conf, frp, dn, raw in r.iter_rows():
        day = d.isoformat()
        if minute is None:
            t0, t1 = f"{day}T00:00:00Z", f"{day}T23:59:59Z"
        else:
            t0 = t1 = f"{day}T{minute // 60:02d}:{minute % 60:02d}:00Z"
        identity = f"{batch.source}|{sensor}|{lt}|{ln}|{day}|{minute}"
        oid = "o-" + hashlib.sha256(identity.encode()).hexdigest()[:24]
        attrs = json.dumps({"sensor": sensor, "confidence": conf, "frp": frp, "daynight": dn,
                            "layout": batch.layout})
        out.append((oid, batch.kind.value, f"{batch.source}:{sensor}", sensor, t0, t1, day,
                    lat, lon, _UNCERTAINTY_M.get(sensor, _DEFAULT_UNCERTAINTY_M), attrs,
                    hashlib.sha256(raw.encode()).hexdigest(), batch_id, row))
    return out


def _explosion_rows(batch: Batch, batch_id: str) -> list[tuple[object, ...]]:
    """Located explosions (records from fusion.sensor_events.observation_records)."""
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
