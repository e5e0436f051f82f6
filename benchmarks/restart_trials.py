"""Restart (issue 13): kill -9 of the worker and the server during the stream, N trials.
Goal: nothing lost, nothing duplicated, identical final state.

    PYTHONPATH=src:benchmarks python benchmarks/restart_trials.py [--trials 20] [--seed 0]
        [--scenario DIR] [--start-timeout 300] [--finish-timeout 900]

The built-in scenario (``trucewatch.demo.generate``, what ``trucewatch run --out DIR``
leaves in ``DIR/scenario``; or ``--scenario DIR``) is built once. One uninterrupted
reference run (serve with its worker inside, replay at full speed, wait for the final
watermark) gives the final state and the time window; then each trial (lab.restart)
runs on a fresh store and SIGKILLs, at a seeded random moment in that window, the
server (its worker thread dies with it), a standalone ``trucewatch worker`` beside a
``serve --no-worker``, or both, restarts what it killed, lets the replay (which resends
what got no answer) finish, waits for the final watermark and compares the final state
(incidents, their ids, violations, rulings, batches by SHA-256 with their row counts,
observation and quarantine counts, distinct refusals, watermark, ``verify``). Exit 1 if
any trial differs. A trial the harness itself could not finish (an exception of its
own) is reported on its row as a harness error and the next trial runs. A trial's
folder is removed once it is identical (``--keep`` keeps them); the ``observer`` column
counts the retries of the harness's own reads of the store (lab.restart.Observer).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lab.restart import differences, run_once, trial


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--first", type=int, default=1,
                    help="the first trial to run (trials FIRST..TRIALS; each trial's kill "
                         "is drawn from the seed and its number, so a long set can be split)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenario", type=Path, help="a scenario folder (default: built)")
    ap.add_argument("--start-timeout", type=float, default=300.0,
                    help="seconds a server start may take")
    ap.add_argument("--finish-timeout", type=float, default=900.0,
                    help="seconds a run may take to reach the final watermark")
    ap.add_argument("--pass-kill", action="store_true",
                    help="also kill again 0.5-4 s after the replay's end, during the "
                         "worker's last pass")
    ap.add_argument("--keep", action="store_true", help="keep identical trials' folders")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scenario = args.scenario
        if scenario is None:
            from trucewatch.demo import generate

            scenario = generate(root / "scenario").root
        t0 = time.monotonic()
        ref = run_once(root / "reference", scenario, "server", None, args.start_timeout,
                       args.finish_timeout)
        ref.problems += differences(ref.state, ref.state)
        s = ref.state
        print(f"reference (uninterrupted, worker in serve): {ref.submissions} submissions, "
              f"{s['batch_count']} batches, {s['observations']} observations, "
              f"{len(s['incidents'])} incidents, {len(s['violations'])} violations, "
              f"{len(s['rulings'])} rulings, {len(s['refusals'])} refusals; "
              f"{ref.seconds:.1f} s to the final watermark"
              + (f"; PROBLEMS: {ref.problems}" if ref.problems else ""), flush=True)
        if ref.problems:
            return 1
        print("| trial | killed | at s | sent before | passes before | 2nd kill: passes "
              "before | resent | batches | incidents | s | observer | load | result |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
        bad = 0
        for n in range(args.first, args.trials + 1):
            folder = root / f"trial-{n}"
            try:
                r = trial(folder, scenario, s, n, args.seed, ref.seconds,
                          args.start_timeout, args.finish_timeout, args.pass_kill)
            except Exception as err:  # the harness's own failure: say so, go on
                bad += 1
                print(f"| {n} | - | - | - | - | - | - | - | - | - | - | "
                      f"{os.getloadavg()[0]:.1f} | harness error: {err!r} |"[:600], flush=True)
                continue
            bad += not r.ok
            print(f"| {n} | {r.mode} | {r.kill_at_s:.1f} | {r.sent_before_kill}/"
                  f"{ref.submissions} | {r.passes_before_kill} | "
                  f"{r.passes_before_pass_kill if r.passes_before_pass_kill >= 0 else '-'} | "
                  f"{r.resent} | "
                  f"{r.state['batch_count']} | {len(r.state['incidents'])} | "
                  f"{r.seconds:.0f} | {len(r.observer_retries)} | "
                  f"{os.getloadavg()[0]:.1f} | "
                  f"{'identical' if r.ok else '; '.join(r.problems)} |", flush=True)
            if r.observer_retries:
                print(f"  trial {n}: the harness's reads retried: "
                      f"{sorted(set(r.observer_retries))}", flush=True)
            if r.ok and not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
        load = os.getloadavg()
        ran = args.trials - args.first + 1
        print(f"\n{ran} trials ({args.first}-{args.trials}), seed {args.seed}: "
              f"{ran - bad} identical to "
              f"the uninterrupted run, {bad} differ; {time.monotonic() - t0:.0f} s in all; "
              f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, "
              f"{os.cpu_count()} CPUs; {shutil.disk_usage(root).free / 2**30:.0f} GiB "
              f"free under {root.parent}")
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
