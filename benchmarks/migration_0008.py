"""How long revision 0008 (the contract's klass and reliability, backfilled and bound in
the log) takes on a store written by the code before it.

    PYTHONPATH=src:benchmarks python benchmarks/migration_0008.py --rows 200000 [--where URL]

The store is written in a subprocess by the code of commit BEFORE (git archive), with
FIRMS files of ``--batch`` rows each (bound by one digest, as a real download is); then
the new code opens it (the migration runs) and verifies it. Prints the seconds of each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "97e7412"
WRITE = r"""
import sys, json, time
import trucewatch
assert trucewatch.__file__.startswith(sys.argv[1])
from trucewatch.ingest.firms import parse_firms
from trucewatch.storage import open_store
a = json.loads(sys.argv[2])
s = open_store(a["where"])
t0 = time.perf_counter()
for b in range(0, a["rows"], a["batch"]):
    n = min(a["batch"], a["rows"] - b)
    body = "".join(f"{44 + (b + k) * 1e-5:.5f},{30 + (k % 997) * 1e-3:.3f},2026-05-29,MODIS\n"
                   for k in range(n))
    s.ingest(parse_firms(("latitude,longitude,acq_date,sensor_guess\n" + body).encode(),
                         f"f{b}.csv"))
print(json.dumps({"write_s": time.perf_counter() - t0, "revision": s.schema_revision()}))
s.close()
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--where", default=None, help="a postgresql:// URL (default: SQLite)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mig0008-"))
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE, "src"],
                         capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(tar)) as t:
        t.extractall(work, filter="data")
    where = args.where or str(work / "old.db")
    done = subprocess.run([sys.executable, "-c", WRITE, str(work / "src"), json.dumps(
        {"where": where, "rows": args.rows, "batch": args.batch})], capture_output=True,
        text=True, env=os.environ | {"PYTHONPATH": str(work / "src")}, timeout=1800)
    if done.returncode:
        print(done.stderr[-3000:], file=sys.stderr)
        return 1
    old = json.loads(done.stdout.strip().splitlines()[-1])
    from trucewatch.storage import open_store

    t0 = time.perf_counter()
    store = open_store(where)
    migrate_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    problems = store.verify()
    verify_s = time.perf_counter() - t1
    print(json.dumps({"rows": args.rows, "batch": args.batch, "old_revision": old["revision"],
                      "revision": store.schema_revision(), "write_old_s": round(old["write_s"], 1),
                      "migrate_s": round(migrate_s, 1), "verify_s": round(verify_s, 1),
                      "problems": problems[:3], "load": os.getloadavg()}))
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
