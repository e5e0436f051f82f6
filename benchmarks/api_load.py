"""API load on loopback: sustained batch ingest, and incident query latency at 1M incidents.

    .venv/bin/python benchmarks/api_load.py [--incidents 1000000] [--seconds 20]

SQLite only for now (PostGIS is the next part of issue 5).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from trucewatch.testing.load import fill_incidents, query_latency, sustained_ingest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--incidents", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=400)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ing = sustained_ingest(Path(tmp), args.seconds, args.rows)
        print("| backend | batch rows | batches | observations | s | obs/s | batch p50 s |")
        print("|---|---|---|---|---|---|---|")
        print(f"| sqlite | {ing['rows_per_batch']:,.0f} | {ing['batches']:.0f} | "
              f"{ing['observations']:,.0f} | {ing['seconds']:.1f} | {ing['obs_per_s']:,.0f} | "
              f"{ing['batch_p50_s']:.2f} |")
        store = Path(tmp) / "incidents.db"
        fill_s = fill_incidents(store, args.incidents)
        q = query_latency(store, args.queries)
        print(f"\nfilled {args.incidents:,} incidents in {fill_s:.1f} s")
        print("| backend | incidents | queries | p50 ms | p99 ms | p99 bbox | p99 time | "
              "p99 status+category | p99 all three |")
        print("|---|---|---|---|---|---|---|---|---|")
        print(f"| sqlite | {args.incidents:,} | {q['queries']:.0f} | {q['p50_ms']:.1f} | "
              f"{q['p99_ms']:.1f} | {q['bbox_p99_ms']:.1f} | {q['time_p99_ms']:.1f} | "
              f"{q['status_p99_ms']:.1f} | {q['mixed_p99_ms']:.1f} |")


if __name__ == "__main__":
    main()
