"""Station uptime from heartbeats at network scale: parse a day of heartbeats of a
100-station network (one a minute, each station silent for a random 0-3 outages) and
derive the up/down intervals and the network's steps.

    PYTHONPATH=src:benchmarks python benchmarks/station_uptime.py [--stations 100 --hours 24]
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta

from trucewatch.ingest.heartbeats import parse_heartbeats
from trucewatch.sensors.uptime import uptime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stations", type=int, default=100)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    t0 = datetime(2026, 5, 30, tzinfo=UTC)
    ids = [f"S{k:03d}" for k in range(a.stations)]
    lines = ["station,time"]
    for s in ids:
        gaps = [(m := rng.randrange(a.hours * 60), m + rng.randrange(15, 180))
                for _ in range(rng.randrange(4))]
        lines += [f"{s},{(t0 + timedelta(minutes=m)):%Y-%m-%dT%H:%M:%SZ}"
                  for m in range(a.hours * 60) if not any(x <= m < y for x, y in gaps)]
    raw = ("\n".join(lines) + "\n").encode()
    now = t0 + timedelta(hours=a.hours)
    s0 = time.perf_counter()
    batch = parse_heartbeats(raw, "hb.csv", set(ids), now=now)
    t_parse = time.perf_counter() - s0
    beats = list(zip(batch.records["station"].to_list(), batch.records["time"].to_list(),
                     strict=True))
    s0 = time.perf_counter()
    u = uptime(ids, beats, now)
    steps = u.steps()
    lines_out = u.lines()
    t_up = time.perf_counter() - s0
    print(f"{len(beats):,} heartbeats of {a.stations} stations over {a.hours} h "
          f"({len(raw) / 2**20:.1f} MiB)")
    print(f"parse {t_parse:.2f} s; uptime + {len(steps)} network steps + "
          f"{len(lines_out)} sentences {t_up:.2f} s")


if __name__ == "__main__":
    main()
