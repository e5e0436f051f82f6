"""kill -9 during batch ingest, N trials: lost, duplicated and partial observations.

    .venv/bin/python benchmarks/crash_recovery.py [--trials 20] [--rows 500]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from trucewatch.testing.crash import trial


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--rows", type=int, default=500)
    args = ap.parse_args()
    print("| trial | killed after s | batches acknowledged | resent after restart | "
          "observations expected | found | duplicated | partial batches | chain |")
    print("|---|---|---|---|---|---|---|---|---|")
    lost = dup = partial = bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(1, args.trials + 1):
            r = trial(Path(tmp), n, rows=args.rows)
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
