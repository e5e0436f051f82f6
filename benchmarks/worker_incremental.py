"""Worker pass time, full against incremental, after one new batch (issue 13, item 1).

On the built-in scenario fed through the intake (as the ingest route receives it,
:mod:`lab.stream`): a store holding the whole stream but one FIRMS day; a worker makes
its (untimed) full pass, then that day arrives and the next pass is timed. Two cases:

* ``newest day``: the last monitored FIRMS day arrives (the live case);
* ``late day``: a day in the middle arrives after everything else (late data).

Beside each, a full pass over the same complete store by a new worker (no state, as
after a restart or a refit). ``--copies K`` adds the FIRMS files of K-1 more scenarios
(other seeds, the same area and period) to make a larger store.

    python benchmarks/worker_incremental.py [--copies K] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from lab.stream import feed
from trucewatch.demo import generate
from trucewatch.pipeline.worker import Worker, WorkerConfig
from trucewatch.replay import Item, plan


def _copy(db: Path, to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(db, to)
    for ext in (".baseline.npz", ".baseline.json"):
        if Path(str(db) + ext).is_file():
            shutil.copy(str(db) + ext, str(to) + ext)
    return to


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--late-day", default="@2026-05-03")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="worker-incr-"))
    sc = generate(work / "scenario")
    items = plan(sc.root)
    extra: list[Item] = []
    for k in range(1, args.copies):
        other = generate(work / f"scenario-{k}", seed=20260420 + k)
        extra += [i for i in plan(other.root) if i.source == "firms"]
    firms = [i for i in items if i.source == "firms"]
    newest = firms[-1]
    late = next(i for i in firms if args.late_day in i.name)
    t = time.perf_counter()
    print(f"feeding {len(items) + len(extra)} submissions ...", flush=True)
    rows: list[tuple[str, str, float, dict[str, object]]] = []
    for case, held in (("newest day", newest), ("late day", late)):
        base = work / case.replace(" ", "-") / "base.db"
        base.parent.mkdir(parents=True)
        feed(base, sc.root, sc.keys, [*extra, *[i for i in items if i is not held]])
        cfg = WorkerConfig(base, sc.agreement, cloud=sc.coverage)
        Worker(cfg).run_pass()  # fits the baseline artifact once (not timed)
        inc_s, full_s = [], []
        stats: dict[str, object] = {}
        full_stats: dict[str, object] = {}
        for r in range(args.repeat):
            db = _copy(base, work / case.replace(" ", "-") / f"r{r}" / "s.db")
            w = Worker(WorkerConfig(db, sc.agreement, cloud=sc.coverage))
            w.run_pass(force=True)  # the worker's state before the batch (not timed)
            feed(db, sc.root, sc.keys, [held])
            t0 = time.perf_counter()
            got = w.run_pass()
            inc_s.append(time.perf_counter() - t0)
            assert got.stats["mode"] == "incremental", got.stats
            stats = got.stats
            t0 = time.perf_counter()
            whole = Worker(WorkerConfig(db, sc.agreement, cloud=sc.coverage)).run_pass(
                force=True)
            full_s.append(time.perf_counter() - t0)
            full_stats = whole.stats
            assert whole.incidents == got.incidents
        rows.append((case, "incremental", statistics.median(inc_s), stats))
        rows.append((case, "full", statistics.median(full_s), full_stats))
    print(f"(setup {time.perf_counter() - t:.0f} s; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; copies {args.copies}, "
          f"median of {args.repeat})\n")
    print("| new batch | pass | seconds | fire rows classified | rows read | evidence fused "
          "| incidents evaluated |")
    print("|---|---|---|---|---|---|---|")
    for case, mode, s, st in rows:
        print(f"| {case} | {mode} | {s:.2f} | {st.get('rows_classified')} | "
              f"{st.get('rows_read', st.get('rows_classified'))} | "
              f"{st.get('evidence_fused')} | {st.get('incidents_recomputed')} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
