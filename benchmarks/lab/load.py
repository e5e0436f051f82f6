"""Load: sustained API ingest, and incident query latency on a large store."""

from __future__ import annotations

import json
import random
import sqlite3
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from lab.crash import batch_csv
from lab.server import Server, free_port
from trucewatch.storage import open_store
from trucewatch.storage.postgis import postgres_url

CATEGORIES = ("explosion.impact", "fire", "heavy_weapon_in_restricted_zone",
              "strike_on_protected_site")
STATUSES = ("automatic", "verified", "unverifiable", "rejected", "pending_verification")
SECTORS = ("north", "centre", "south")
T0 = 1_777_000_000  # 2026-04-24


def sustained_ingest(folder: Path, seconds: float = 20.0, rows: int = 10_000,
                     store: str | None = None) -> dict[str, float]:
    """Rows acknowledged per second over ``seconds`` of back-to-back FIRMS batches, into
    ``store`` (a postgresql:// URL) or a new SQLite file in ``folder``."""
    where = store or str(folder / "ingest.db")
    db = open_store(where)
    # satellite files are posted by staff: a sensor token posts its network's inputs only
    token = db.add_token("ingester", "analyst")
    db.close()
    server = Server(where, free_port(), folder=folder).start()
    bodies = [batch_csv(99, k, rows) for k in range(200)]
    done = 0
    lat: list[float] = []
    t0 = time.perf_counter()
    with httpx.Client(timeout=120) as c:
        k = 0
        while time.perf_counter() - t0 < seconds and k < len(bodies):
            s = time.perf_counter()
            r = c.post(f"{server.url}/api/v1/ingest/firms", content=bodies[k],
                       headers={"Authorization": f"Bearer {token}"})
            lat.append(time.perf_counter() - s)
            if r.status_code == 200:
                done += int(r.json()["new"])
            k += 1
    elapsed = time.perf_counter() - t0
    server.stop()
    return {"rows_per_batch": rows, "batches": k, "observations": done, "seconds": elapsed,
            "obs_per_s": done / elapsed, "batch_p50_s": statistics.median(lat)}


def fill_incidents(store_path: Path | str, n: int, seed: int = 1) -> float:
    """Write ``n`` synthetic incidents straight into the store (the API reads them as any)."""
    open_store(store_path).close()
    url = postgres_url(store_path)
    rows = _synthetic(n, seed)
    t = time.perf_counter()
    if url:
        import psycopg

        with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(
                "COPY incidents (id, status, category, time_start, lat, lon, doc) "
                "FROM STDIN") as copy:
            for r in rows:
                copy.write_row(r)
        with psycopg.connect(url, autocommit=True) as conn:
            # what autovacuum does in service: visibility map and statistics (the PostGIS
            # point is generated from lon/lat with the row: no box table to fill)
            conn.execute("VACUUM (ANALYZE) incidents")
        return time.perf_counter() - t
    db = sqlite3.connect(store_path, isolation_level=None)
    db.execute("BEGIN")
    for k in range(0, len(rows), 50_000):
        _flush(db, rows[k:k + 50_000])
    db.execute("COMMIT")
    db.execute("ANALYZE")  # planner statistics, as a maintained store would have
    db.close()
    return time.perf_counter() - t


def _synthetic(n: int, seed: int) -> list[tuple[object, ...]]:
    rng = random.Random(seed)
    chunk: list[tuple[object, ...]] = []
    for k in range(n):
        lat, lon = rng.uniform(46.5, 50.0), rng.uniform(34.0, 39.5)
        ts = T0 + rng.uniform(0, 365 * 86400)
        iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))
        cat, st, sec = rng.choice(CATEGORIES), rng.choice(STATUSES), rng.choice(SECTORS)
        iid = f"inc-{k:012d}"
        doc = json.dumps({"type": "trucewatch/incident", "schema_version": 1, "id": iid,
                          "category": cat, "time_start": iso.replace("+00:00", "Z"),
                          "time_end": iso.replace("+00:00", "Z"),
                          "location": {"lat": lat, "lon": lon, "uncertainty_m": 100.0},
                          "observation_ids": [f"o-{k}"], "status": st, "sector_id": sec,
                          "zone_ids": [], "n_sources": 1, "reason": "synthetic",
                          "attributes": {}})
        chunk.append((iid, st, cat, iso, lat, lon, doc))
    return chunk


def _flush(db: sqlite3.Connection, rows: Sequence[tuple[object, ...]]) -> None:
    db.executemany("INSERT INTO incidents VALUES (?,?,?,?,?,?,?)", rows)
    db.executemany("INSERT INTO incidents_rtree SELECT rowid, lon, lon, lat, lat FROM incidents "
                   "WHERE id = ?", [(r[0],) for r in rows])


def query_latency(store_path: Path | str, queries: int = 400, seed: int = 2,
                  folder: Path | None = None) -> dict[str, float]:
    db = open_store(store_path)
    token = db.add_token(f"analyst-{seed}", "analyst")
    db.close()
    server = Server(store_path, free_port(), folder=folder).start()
    rng = random.Random(seed)
    lat: dict[str, list[float]] = {"bbox": [], "time": [], "status": [], "mixed": []}
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"}) as c:
        for q in range(queries):
            kind = list(lat)[q % 4]
            la, lo = rng.uniform(46.5, 49.8), rng.uniform(34.0, 39.3)
            day = T0 + rng.uniform(0, 360 * 86400)
            start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(day))
            end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(day + 86400))
            params: dict[str, str] = {"limit": "100"}
            if kind in ("bbox", "mixed"):
                params["bbox"] = f"{lo:.3f},{la:.3f},{lo + 0.2:.3f},{la + 0.2:.3f}"
            if kind in ("time", "mixed"):
                params |= {"start": start, "end": end}
            if kind in ("status", "mixed"):
                params["status"] = rng.choice(STATUSES)
                params["category"] = rng.choice(CATEGORIES)
            s = time.perf_counter()
            r = c.get(f"{server.url}/api/v1/incidents", params=params)
            lat[kind].append(time.perf_counter() - s)
            assert r.status_code == 200, r.text
    server.stop()
    every = sorted(x for v in lat.values() for x in v)
    out = {"queries": float(len(every)),
           "p50_ms": 1000 * every[len(every) // 2],
           "p99_ms": 1000 * every[int(len(every) * 0.99) - 1]}
    for k, v in lat.items():
        v.sort()
        out[f"{k}_p99_ms"] = 1000 * v[int(len(v) * 0.99) - 1]
    return out
