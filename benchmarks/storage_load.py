"""Storage load at millions of observations, both backends: batch ingest rate through
``store.ingest`` (everything a batch does: ids, rows, the spatial index, the batch's
binding into the hash chain, the log entry) and the latency of bbox + time queries on
observations (``observations_in``: R*Tree on SQLite, ST_Intersects on PostGIS).

    PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/storage_load.py \\
        --sizes 1000000 3000000 [--batch 100000] [--queries 400] \\
        [--pg-url postgresql://tw@127.0.0.1:55432/postgres | --pg-temp] [--only sqlite] \\
        [--progress 1000000] [--dir /big/disk]

Parsing the FIRMS CSV is done before the clock starts (it is the adapter's cost, measured
by benchmarks/satellite_speed.py). Besides wall time, the CPU seconds the ingest took are
counted: this process's, and on a local PostgreSQL server its backend's (read from
``/proc/<pid>/stat``), so that a figure taken on a loaded, shared machine says what the
ingest costs and not how long it queued for a core (``obs/CPU-s``: observations per
CPU second of client and server together). Each query is a random 0.2 degree box and a one-day
window (limit 100, ordered by time), as an analyst's map view asks.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from trucewatch.ingest.base import Batch
from trucewatch.ingest.firms import parse_firms
from trucewatch.storage import open_store

HEADER = ("latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,"
          "confidence,version,bright_ti5,frp,daynight")
DAYS = 365


def firms_batch(k: int, rows: int) -> Batch:
    """``rows`` distinct VIIRS detections over eastern Ukraine and a year (batch ``k``)."""
    rng = np.random.default_rng(k)
    lat = rng.uniform(46.5, 50.0, rows)
    lon = rng.uniform(34.0, 39.5, rows)
    day = rng.integers(0, DAYS, rows)
    minute = rng.integers(0, 1440, rows)
    dates = (np.datetime64("2025-06-01") + day).astype(str)
    lines = [HEADER] + [
        f"{a:.5f},{o:.5f},330.1,0.4,0.4,{d},{m // 60:02d}{m % 60:02d},N20,nominal,2.0NRT,"
        f"300.1,2.1,D" for a, o, d, m in zip(lat, lon, dates, minute, strict=True)]
    return parse_firms(("\n".join(lines) + "\n").encode(), f"load-{k}.csv")


def backend_cpu(store: object) -> float:
    """CPU seconds the PostgreSQL backend serving ``store`` has used (0.0 for SQLite, or
    when the server is not on this machine)."""
    if "://" not in str(getattr(store, "path", "")):
        return 0.0
    pid = store.db.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[attr-defined]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(where: str, sizes: list[int], batch_rows: int, queries: int,
        progress: int = 0) -> Iterator[dict[str, float]]:
    """The figures at each size, as soon as that size is loaded and queried (a long run
    cut short still reports the sizes it reached). ``progress``: every this many rows,
    a line on stderr (rows, wall rate, CPU seconds, load average)."""
    store = open_store(where)
    done, k, ingest_s, client_cpu, server_cpu = 0, 0, 0.0, 0.0, 0.0
    shown = 0
    for target in sizes:
        while done < target:
            b = firms_batch(k, min(batch_rows, target - done))
            t, c, s = time.perf_counter(), time.process_time(), backend_cpu(store)
            rep = store.ingest(b)
            ingest_s += time.perf_counter() - t
            client_cpu += time.process_time() - c
            server_cpu += backend_cpu(store) - s
            done += rep.new
            k += 1
            if progress and done - shown >= progress:
                shown = done
                print(f"  {where.rsplit('/', 1)[-1]}: {done:,} rows, {done / ingest_s:,.0f} "
                      f"obs/s wall, client {client_cpu:.0f} s + server {server_cpu:.0f} s "
                      f"CPU, load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
        analyze(store, where)
        lat_ms, hits = query_times(store, where, target, queries)
        yield {"observations": float(done), "ingest_obs_per_s": done / ingest_s,
               "client_cpu_s": client_cpu, "server_cpu_s": server_cpu,
               "obs_per_cpu_s": done / (client_cpu + server_cpu),
               "p50_ms": statistics.median(lat_ms),
               "p99_ms": lat_ms[max(int(len(lat_ms) * 0.99) - 1, 0)],
               "mean_hits": hits / max(queries, 1), "load": os.getloadavg()[0]}
    store.close()


def analyze(store: object, where: str) -> None:
    if "://" in where:
        store.db.execute("ANALYZE observations")  # type: ignore[attr-defined]


def query_times(store: object, where: str, seed: int, queries: int,
                cpu_ms: list[float] | None = None) -> tuple[list[float], int]:
    """Latencies (ms, sorted) of ``queries`` random bbox + one-day queries, and the rows
    they returned; ``cpu_ms`` gets this process's CPU ms per query (on SQLite the
    query's whole cost: on a loaded machine, what the wall time would be on a free
    core, cache misses aside)."""
    rng = random.Random(seed)
    lat_ms: list[float] = [float("nan")]
    hits = 0
    # an older release (run with its src on PYTHONPATH, to compare ingest) has no
    # observations_in: its queries are not measured
    for _ in range(queries if hasattr(store, "observations_in") else 0):
        la, lo = rng.uniform(46.5, 49.8), rng.uniform(34.0, 39.3)
        day = np.datetime64("2025-06-01") + rng.randrange(DAYS)
        start, end = f"{day}T00:00:00Z", f"{day + 1}T00:00:00Z"
        t, c = time.perf_counter(), time.process_time()
        got = store.observations_in(box=(lo, la, lo + 0.2, la + 0.2),  # type: ignore[attr-defined]
                                    start=start, end=end, limit=100)
        lat_ms.append(1000 * (time.perf_counter() - t))
        if cpu_ms is not None:
            cpu_ms.append(1000 * (time.process_time() - c))
        hits += got.height
    return sorted(lat_ms[1:]) or lat_ms, hits


def query_store(where: str, queries: int) -> None:
    """The queries alone, on a store a run left (one cut short before its last size)."""
    store = open_store(where)
    n = store.counts()["observations"]
    cpu: list[float] = []
    analyze(store, where)
    server = backend_cpu(store)
    lat_ms, hits = query_times(store, where, n, queries, cpu)
    server = backend_cpu(store) - server
    store.close()
    cpu.sort()

    def p99(v: list[float]) -> float:
        return v[max(int(len(v) * 0.99) - 1, 0)]

    print(f"{where}: {n:,} observations, bbox+time p50 {statistics.median(lat_ms):.1f} ms, "
          f"p99 {p99(lat_ms):.1f} ms; this process's CPU per query p50 "
          f"{statistics.median(cpu):.1f} ms, p99 {p99(cpu):.1f} ms; the PostgreSQL "
          f"backend's CPU {1000 * server / max(queries, 1):.1f} ms per query (mean); "
          f"{hits / max(queries, 1):.1f} rows per answer, load {os.getloadavg()[0]:.1f}")


def row(backend: str, batch: int, r: dict[str, float]) -> str:
    return (f"| {backend} | {r['observations']:,.0f} | {batch:,} | "
            f"{r['ingest_obs_per_s']:,.0f} | {r['client_cpu_s']:.1f} | "
            f"{r['server_cpu_s']:.1f} | {r['obs_per_cpu_s']:,.0f} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['mean_hits']:.1f} | "
            f"{r['load']:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--pg-url", default=None, help="a PostgreSQL + PostGIS server")
    ap.add_argument("--pg-temp", action="store_true", help="start a throwaway cluster")
    ap.add_argument("--only", choices=["sqlite", "postgis"], default=None)
    ap.add_argument("--progress", type=int, default=0,
                    help="a progress line on stderr every this many rows")
    ap.add_argument("--dir", default=None,
                    help="where the stores go (default: a temporary folder)")
    ap.add_argument("--query-store", default=None,
                    help="only run the queries on this existing store (path or URL)")
    args = ap.parse_args()
    if args.query_store:
        query_store(args.query_store, args.queries)
        return
    # each row is printed when its size is reached, so a run cut short keeps what it got
    print("| backend | observations | batch rows | ingest obs/s (wall) | client CPU s | "
          "server CPU s | obs/CPU-s | bbox+time p50 ms | p99 ms | rows per answer | "
          "load |", flush=True)
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        if args.only != "postgis":
            for r in run(str(Path(tmp) / "load.db"), args.sizes, args.batch, args.queries,
                         args.progress):
                print(row("sqlite", args.batch, r), flush=True)
        if args.only != "sqlite" and (args.pg_url or args.pg_temp):
            if args.pg_temp:
                from lab.postgres import TemporaryPostgis, new_database

                with TemporaryPostgis(Path(tmp) / "pg") as server:
                    for r in run(new_database(server), args.sizes, args.batch,
                                 args.queries, args.progress):
                        print(row("postgis", args.batch, r), flush=True)
            else:
                import psycopg

                name = f"tw_load_{uuid.uuid4().hex[:6]}"
                with psycopg.connect(args.pg_url, autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name}")
                for r in run(args.pg_url.rsplit("/", 1)[0] + "/" + name, args.sizes,
                             args.batch, args.queries, args.progress):
                    print(row("postgis", args.batch, r), flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
