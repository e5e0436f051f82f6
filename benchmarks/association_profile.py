"""Profile the associator on one family row: CPU time, peak memory, where the time goes.

The machine is shared, so methods are compared by the CPU seconds of this process
(``time.process_time``), not only by wall time. Optionally writes a digest of the
result (every event and assignment) so that two versions of the code can be shown
to give the same answer:

    PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/association_profile.py \
        --family grid-uniform --intensity dense --hours 0.3 --seed 1 \
        [--joint] [--kernel auto|numpy|compiled] [--profile 25] [--digest out.json]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lab.families import family, generate
from trucewatch.sensors.association import ExplosionAssociator, JointRefiner, Network, Picks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="grid-uniform")
    ap.add_argument("--intensity", default="dense")
    ap.add_argument("--hours", type=float, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--joint", action="store_true")
    ap.add_argument("--kernel", default="auto")
    ap.add_argument("--profile", type=int, default=0, help="print this many functions")
    ap.add_argument("--digest", default="", help="write the result's digest to this file")
    args = ap.parse_args()
    data = generate(family(args.family, args.intensity, args.seed, args.hours))
    net = Network.from_table(data.stations)
    picks = Picks.from_table(data.detections, net)
    a = ExplosionAssociator(propagation=data.scenario.propagation(), kernel=args.kernel,
                            joint=JointRefiner() if args.joint else None)
    prof = cProfile.Profile() if args.profile else None
    load = os.getloadavg()[0]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if prof is not None:
        prof.enable()
    res = a.associate(net, picks)
    if prof is not None:
        prof.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ev = res.events.sort("event_id")
    asg = res.assignments.sort("detection_id")
    digest = hashlib.sha256(ev.write_csv().encode() + asg.write_csv().encode()).hexdigest()
    row = {"family": args.family, "intensity": args.intensity, "seed": args.seed,
           "hours": data.scenario.duration_h, "joint": args.joint, "kernel": args.kernel,
           "detections": len(picks), "events": ev.height,
           "assigned": int(asg["event_id"].is_not_null().sum()), "cpu_s": round(cpu, 2),
           "wall_s": round(wall, 2), "peak_mb": round(peak), "load_1min": round(load, 1),
           "digest": digest[:16]}
    print(json.dumps(row))
    if args.digest:
        Path(args.digest).write_text(json.dumps(row, indent=1))
    if prof is not None:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(args.profile)


if __name__ == "__main__":
    main()
