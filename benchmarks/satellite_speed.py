"""Speed and memory of the satellite CLI on the whole FIRMS file against a bare CSV read (issue 10).

Run:  .venv/bin/python benchmarks/satellite_speed.py   (project root; needs ../shared/data and
      pyarrow in .venv)                                 options: --repeat N (default 3)

Each command is a subprocess that reads the 1.17 M-row file itself:
- bare read: ``python -c "pyarrow.csv.read_csv(FILE)"`` (the reference),
- ``trucewatch satellite fit-baseline FILE --years 2012,...,2021 --out B.npz``,
- ``trucewatch satellite classify FILE --baseline B.npz --out OUT.csv``,
- ``trucewatch --help`` (interpreter and CLI start-up, for scale).
Printed: wall time (median of N, after one untimed warm-up read), its ratio to the bare read,
and the peak resident memory of each child process (its own rusage, from os.wait4).

Goal (issue 10): fit-baseline and classify each <= 3x the bare read.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FIRMS = DATA / "firms-ukraine-2000-2022" / "firms_ukraine_2000_2022.csv.gz"
PY = ROOT / ".venv" / "bin" / "python"
TRUCEWATCH = ROOT / ".venv" / "bin" / "trucewatch"
YEARS = "2012,2013,2016,2018,2019,2020,2021"
GOAL = 3.0


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process (its own rusage)."""
    with tempfile.TemporaryFile() as log:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            log.seek(0)
            sys.exit(f"{' '.join(cmd)} failed: {log.read().decode(errors='replace')[-800:]}")
    return dt, ru.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    if not FIRMS.exists():
        sys.exit(f"data absent, needs {FIRMS}")
    if subprocess.run([str(PY), "-c", "import pyarrow.csv"], capture_output=True,
                      check=False).returncode:
        sys.exit("needs pyarrow in .venv: .venv/bin/pip install pyarrow")
    with tempfile.TemporaryDirectory() as tmp:
        base, out = Path(tmp) / "baseline.npz", Path(tmp) / "classified.csv"
        cmds = {
            "bare read (pyarrow.csv.read_csv)": [
                str(PY), "-c", f"import pyarrow.csv as c; t = c.read_csv({str(FIRMS)!r}); "
                "assert t.num_rows > 0"],
            "trucewatch satellite fit-baseline": [
                str(TRUCEWATCH), "satellite", "fit-baseline", str(FIRMS), "--years", YEARS,
                "--out", str(base)],
            "trucewatch satellite classify": [
                str(TRUCEWATCH), "satellite", "classify", str(FIRMS), "--baseline", str(base),
                "--out", str(out)],
            "trucewatch --help (start-up only)": [str(TRUCEWATCH), "--help"],
        }
        t_all = time.perf_counter()
        timed(cmds["bare read (pyarrow.csv.read_csv)"])  # warm-up: page cache, imports
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
        for _ in range(a.repeat):  # interleaved, so drift hits every command alike
            for k, cmd in cmds.items():
                runs[k].append(timed(cmd))
        with out.open() as f:
            n_rows = sum(1 for _ in f) - 1
    ref = statistics.median(t for t, _ in runs["bare read (pyarrow.csv.read_csv)"])
    print(f"# Satellite CLI speed, whole file ({FIRMS.name}, {n_rows:,} rows classified), "
          f"median of {a.repeat}, {os.cpu_count()} CPU(s)\n")
    print("| command | wall time (median) | runs | x bare read | peak RSS | goal <= 3x |")
    print("|---|---|---|---|---|---|")
    verdict = []
    for k, rs in runs.items():
        med = statistics.median(t for t, _ in rs)
        mem = max(m for _, m in rs)
        goal = "-"
        if k.startswith("trucewatch satellite"):
            goal = "yes" if med <= GOAL * ref else "NO"
            verdict.append(goal == "yes")
        print(f"| {k} | {med:.2f} s | {', '.join(f'{t:.2f}' for t, _ in rs)} "
              f"| {med / ref:.2f}x | {mem:.0f} MB | {goal} |")
    print(f"\nGoal each satellite command <= {GOAL:g}x the bare read: "
          f"{'MET' if all(verdict) else 'NOT MET'}; wall time {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
