"""kill -9 during batch ingest, N trials: lost, duplicated and partial observations.

    .venv/bin/python benchmarks/crash_recovery.py [--trials 20] [--rows 500] [--postgis]

``--postgis`` runs the trials on PostgreSQL + PostGIS (a throwaway cluster on loopback,
one fresh database per trial) instead of SQLite.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from lab.crash import trial


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--rows", type=int, default=500)
    ap.add_argument("--postgis", action="store_true", help="PostgreSQL + PostGIS store")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.postgis:
            run(args, Path(tmp), None)
            return
        from lab.postgres import TemporaryPostgis

        with TemporaryPostgis(Path(tmp) / "pg") as server:
            run(args, Path(tmp), server)


def run(args: argparse.Namespace, tmp: Path, pg_server: str | None) -> None:
    from lab.postgres import new_database

    print(f"store: {'PostgreSQL + PostGIS' if pg_server else 'SQLite'}")
    print("| trial | killed after s | batches acknowledged | resent after restart | "
          "observations expected | found | duplicated | partial batches | chain |")
    print("|---|---|---|---|---|---|---|---|---|")
    lost = dup = partial = bad = 0
    for n in range(1, args.trials + 1):
        folder = tmp / f"trial-{n}"
        folder.mkdir()
        r = trial(folder, n, rows=args.rows,
                  store_url=new_database(pg_server) if pg_server else None)
        lost += max(0, r.rows_expected - r.rows_found)
        dup += r.duplicates
        partial += r.partial_batches
        bad += not r.chain_ok
        print(f"| {n} | {r.killed_after_s:.2f} | {r.acknowledged} | {r.resent} | "
              f"{r.rows_expected} | {r.rows_found} | {r.duplicates} | "
              f"{r.partial_batches} | {'ok' if r.chain_ok else 'BROKEN'} |")
    print(f"\n{args.trials} trials: {lost} lost, {dup} duplicated, {partial} partial batches, "
          f"{bad} broken chains")


if __name__ == "__main__":
    main()
