"""The worker's passes over a sustained stream, in one process (issue 13: bounded memory).

The same stream as ``sustained_stream.py`` (a 100-station network at barrage rates, its
heartbeats and a FIRMS NRT feed), received into a store in-process (as the ingest route
receives it, no HTTP and no clock) and a worker pass run after every ``--pass-every``
scenario seconds of it. Each pass prints its time, the process's RSS, the Python heap
that tracemalloc sees (``--trace``), and what the sensor stream's step read back and
kept (``intake.stream``), so the slope of each can be seen against the stream's length
without the sender's timing. ``--top N`` prints the N allocation sites that grew most
between the first incremental pass and the last (tracemalloc, grouped by line).

    PYTHONPATH=src:benchmarks python benchmarks/stream_passes.py --hours 0.2 [--trace]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sustained_stream import _rss_mb, build
from trucewatch.intake import receive
from trucewatch.intake.sources import adapters
from trucewatch.integrity.envelope import SourcePolicy
from trucewatch.pipeline.worker import Worker, WorkerConfig
from trucewatch.storage import SqliteStore


def _step_details(store: SqliteStore) -> dict[str, Any]:
    last = store.last_record("stream", "stream_step")
    return dict(last or {})


STEPS = ("advance", "_associate", "_read", "_incremental", "_process", "fuse", "evaluate",
         "coverage_of", "_sensor_period", "save_incidents", "rule", "_plan",
         "contract_observations", "derived_events", "_reclassify", "_coverage_doc")


def _steps(prof: cProfile.Profile) -> dict[str, float]:
    """Cumulative seconds of the pass's main functions (by name)."""
    got: dict[str, float] = {}
    for (_, _, name), (_, _, _, cum, _) in pstats.Stats(prof).stats.items():  # type: ignore[attr-defined]
        if name in STEPS:
            got[name] = round(max(got.get(name, 0.0), cum), 2)
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=0.2)
    ap.add_argument("--stations", type=int, default=100)
    ap.add_argument("--intensity", default="dense", choices=("quiet", "busy", "dense"))
    ap.add_argument("--detections-every", type=float, default=60.0)
    ap.add_argument("--heartbeats-every", type=float, default=300.0)
    ap.add_argument("--firms-every", type=float, default=600.0)
    ap.add_argument("--pass-every", type=float, default=300.0,
                    help="scenario seconds of the stream between worker passes")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--trace", action="store_true", help="tracemalloc the passes")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--profile", action="store_true",
                    help="cProfile each pass: the cumulative seconds of its main steps")
    ap.add_argument("--json", type=Path, help="write the passes' rows here")
    args = ap.parse_args()
    start = (datetime.now(UTC) - timedelta(hours=args.hours + 1)).replace(
        microsecond=0, second=0)
    posts, inventory, n_det = build(args, start)
    print(f"stream: {args.hours:g} h, {args.stations} stations ({args.intensity}), "
          f"{n_det:,} detections, {len(posts)} posts; a pass every {args.pass_every:g} s",
          flush=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        from trucewatch.demo import generate as builtin

        scenario = builtin(root / "scenario")
        db = root / "stream.db"
        store = SqliteStore(db)

        def put(body: bytes, name: str, source: str) -> None:
            o = receive(store, body, name, adapters(store)[source],
                        policy=SourcePolicy.OPTIONAL)
            assert o.accepted, o.refused

        put(inventory, "stations.csv", "stations")
        for path in scenario.reference:
            put(path.read_bytes(), path.name, "firms")
        worker = Worker(WorkerConfig(db, scenario.agreement))
        if args.trace:
            tracemalloc.start(25)
        snaps: list[tracemalloc.Snapshot] = []
        due = start + timedelta(seconds=args.pass_every)
        k = 0
        pending = list(posts)
        while pending or k == 0:
            while pending and pending[0].at <= due:
                p = pending.pop(0)
                put(p.body, p.name, p.source)
            due += timedelta(seconds=args.pass_every)
            prof = cProfile.Profile() if args.profile else None
            t = time.perf_counter()
            if prof is not None:
                prof.enable()
            r = worker.run_pass()
            if prof is not None:
                prof.disable()
            took = time.perf_counter() - t
            gc.collect()
            step = _step_details(store)
            row = {"pass": k, "sent_h": round((due - start).total_seconds() / 3600
                                              - args.pass_every / 3600, 3),
                   "s": round(took, 2), "mode": r.stats.get("mode"),
                   "stream": r.stats.get("sensor_stream"),
                   "step_detections": step.get("detections"),
                   "step_read": step.get("read"), "step_mode": step.get("mode"),
                   "why_full": step.get("why_full"),
                   "rss_mb": round(_rss_mb(os.getpid()))}
            if prof is not None:
                row["steps_s"] = _steps(prof)
            if args.trace:
                cur, peak = tracemalloc.get_traced_memory()
                row["heap_mb"] = round(cur / 2**20, 1)
                row["heap_peak_mb"] = round(peak / 2**20, 1)
                tracemalloc.reset_peak()
                snaps.append(tracemalloc.take_snapshot())
            rows.append(row)
            print(json.dumps(row), flush=True)
            k += 1
        store.close()
    if args.trace and len(snaps) > 2:
        print(f"\ntop {args.top} growth, pass 1 -> pass {len(snaps) - 1} (tracemalloc):")
        diff = snaps[-1].compare_to(snaps[1], "traceback")
        for stat in diff[:args.top]:
            print(f"{stat.size_diff / 2**20:+.1f} MB ({stat.count_diff:+d} blocks)")
            for line in stat.traceback.format()[-8:]:
                print("   ", line)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
