"""API load on loopback: sustained batch ingest, and incident query latency at 1M incidents.

    .venv/bin/python benchmarks/api_load.py [--incidents 1000000] [--seconds 20]
        [--pg-url postgresql://user@127.0.0.1:55432/postgres]

With ``--pg-url`` the same runs against PostgreSQL + PostGIS (two fresh databases are
created on that server), side by side with SQLite.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from lab.load import fill_incidents, query_latency, sustained_ingest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--incidents", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--pg-url", default=None, help="a PostgreSQL server to compare with")
    ap.add_argument("--only", choices=["sqlite", "postgis"], default=None)
    args = ap.parse_args()
    backends = ["sqlite"] + (["postgis"] if args.pg_url else [])
    if args.only:
        backends = [args.only]
    ingest_rows, query_rows, fills = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for b in backends:
            folder = Path(tmp) / b
            folder.mkdir()
            ing_store = _fresh_db(args.pg_url, "ingest") if b == "postgis" else None
            ingest_rows.append((b, sustained_ingest(folder, args.seconds, args.rows,
                                                    ing_store)))
            store = (_fresh_db(args.pg_url, "incidents") if b == "postgis"
                     else str(folder / "incidents.db"))
            fills.append((b, fill_incidents(store, args.incidents)))
            query_rows.append((b, query_latency(store, args.queries, folder=folder)))
    print("| backend | batch rows | batches | observations | s | obs/s | batch p50 s |")
    print("|---|---|---|---|---|---|---|")
    for b, ing in ingest_rows:
        print(f"| {b} | {ing['rows_per_batch']:,.0f} | {ing['batches']:.0f} | "
              f"{ing['observations']:,.0f} | {ing['seconds']:.1f} | {ing['obs_per_s']:,.0f} | "
              f"{ing['batch_p50_s']:.2f} |")
    print("\n" + ", ".join(f"{b}: filled {args.incidents:,} incidents in {s:.1f} s"
                           for b, s in fills))
    print("| backend | incidents | queries | p50 ms | p99 ms | p99 bbox | p99 time | "
          "p99 status+category | p99 all three |")
    print("|---|---|---|---|---|---|---|---|---|")
    for b, q in query_rows:
        print(f"| {b} | {args.incidents:,} | {q['queries']:.0f} | {q['p50_ms']:.1f} | "
              f"{q['p99_ms']:.1f} | {q['bbox_p99_ms']:.1f} | {q['time_p99_ms']:.1f} | "
              f"{q['status_p99_ms']:.1f} | {q['mixed_p99_ms']:.1f} |")
    if len(ingest_rows) == 2:
        s, p = ingest_rows[0][1], ingest_rows[1][1]
        qs, qp = query_rows[0][1], query_rows[1][1]
        print(f"\npostgis / sqlite: ingest {p['obs_per_s'] / s['obs_per_s']:.2f}x, "
              f"query p99 {qp['p99_ms'] / qs['p99_ms']:.2f}x")


def _fresh_db(server_url: str, what: str) -> str:
    import uuid

    import psycopg

    name = f"tw_bench_{what}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name


if __name__ == "__main__":
    main()
