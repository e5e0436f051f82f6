"""Cold start: ``trucewatch --help`` and an import of the core without extras (issue 12).

Run:  .venv/bin/python benchmarks/cold_start.py [--repeat 7]   (project root)

Each measurement is a fresh interpreter (a subprocess), timed from the parent: wall time
(median and max of N) and the child's peak resident memory (os.wait4's rusage).
- ``python -c pass``: the interpreter alone, for scale;
- ``trucewatch --help``: the console script, every command group registered;
- core import: the channels, fusion, rules, storage and intake
  (``trucewatch.{ingest.registry, satellite.war_fires, sensors.association, fusion.incidents,
  adjudication.rules, storage, intake}``) with every extra's modules made unimportable, as on
  ``pip install trucewatch`` without extras (the blocker of tests/test_architecture.py);
- the same import with the extras installed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from trucewatch.extras import EXTRAS  # noqa: E402

CORE = ("trucewatch.ingest.registry, trucewatch.satellite.war_fires, "
        "trucewatch.sensors.association, trucewatch.fusion.incidents, "
        "trucewatch.adjudication.rules, trucewatch.storage, trucewatch.intake")
BLOCKED = sorted({m for _, mods in EXTRAS.values() for m in mods})
BLOCKER = (
    "import importlib.abc, sys\n"
    f"B = {BLOCKED!r}\n"
    "class K(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, n, p=None, t=None):\n"
    "        if n.split('.')[0] in B: raise ModuleNotFoundError(n, name=n)\n"
    "sys.meta_path.insert(0, K())\n"
)


def timed(cmd: list[str]) -> tuple[float, float]:
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        detail = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        raise SystemExit(f"{cmd}: failed: {detail}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    py = sys.executable
    cases = {
        "python -c pass": [py, "-c", "pass"],
        "trucewatch --help": [py, "-m", "trucewatch", "--help"],
        "import core, no extras": [py, "-c", BLOCKER + f"import {CORE}"],
        "import core, extras installed": [py, "-c", f"import {CORE}"],
    }
    print(f"| what | median s | max s | peak RSS MB |  (N = {args.repeat})")
    print("|---|---|---|---|")
    for name, cmd in cases.items():
        timed(cmd)  # warm the file cache
        runs = [timed(cmd) for _ in range(args.repeat)]
        walls = [w for w, _ in runs]
        print(f"| {name} | {statistics.median(walls):.2f} | {max(walls):.2f} | "
              f"{max(m for _, m in runs):.0f} |")


if __name__ == "__main__":
    main()
