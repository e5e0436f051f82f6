"""Station uptime from heartbeats at network scale: parse a day of heartbeats of a
100-station network (one a minute, each station silent for a random 0-3 outages) and
derive the up/down intervals and the network's steps; then, the way the service does,
receive the day as ``--files`` signed heartbeats files into a store and time
``network_uptime`` (what ``GET /api/v1/stations/uptime`` and the cycle's coverage call)
twice: the first call reads every stored file, the second finds them read.

    PYTHONPATH=src:benchmarks python benchmarks/station_uptime.py [--stations 100 --hours 24]
        [--files 144]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from trucewatch.ingest.heartbeats import parse_heartbeats
from trucewatch.sensors.uptime import uptime


def _stored(ids: list[str], lines: list[str], files: int, now: datetime,
            tmp: Path) -> tuple[float, float, float, int]:
    """(receive s, first network_uptime s, second s, heartbeats read back)."""
    from trucewatch.intake import receive
    from trucewatch.intake.sources import StationSource, adapters, network_uptime
    from trucewatch.integrity.envelope import sign_submission
    from trucewatch.integrity.keys import KeyRecord, KeyRegistry, new_keypair
    from trucewatch.storage import SqliteStore

    priv, pub = new_keypair()
    reg = KeyRegistry([KeyRecord("net", "sensors:net", pub, now - timedelta(days=30),
                                 speaks_for=("S*",))])
    store = SqliteStore(tmp / "hb.db")
    inv = ("id,latitude,longitude,elevation_m,kind\n" + "".join(
        f"{s},{48 + 0.01 * k:.3f},37.5,100,acoustic\n" for k, s in enumerate(ids))).encode()
    n = 0

    def signed(payload: bytes) -> bytes:
        nonlocal n
        n += 1
        return sign_submission(payload, priv, "net", now, f"n-{n}")

    assert receive(store, signed(inv), "stations.csv", StationSource(), registry=reg,
                   now=now).accepted
    body = sorted(lines[1:], key=lambda x: x.split(",")[1])  # in time order, as sent
    s0 = time.perf_counter()
    per = -(-len(body) // files)
    for k in range(0, len(body), per):
        part = ("station,time\n" + "\n".join(body[k:k + per]) + "\n").encode()
        o = receive(store, signed(part), f"hb-{k}.csv", adapters(store)["heartbeats"],
                    registry=reg, now=now)
        assert o.accepted and not o.quarantined, o.quarantined[:1]
    t_recv = time.perf_counter() - s0
    s0 = time.perf_counter()
    u = network_uptime(store, now)
    t_first = time.perf_counter() - s0
    s0 = time.perf_counter()
    network_uptime(store, now)
    t_second = time.perf_counter() - s0
    store.close()
    assert u is not None
    return t_recv, t_first, t_second, sum(len(v) for v in u.up.values())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stations", type=int, default=100)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--files", type=int, default=144,
                    help="heartbeats files the day is received as (0: skip the store)")
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
    if a.files > 0:
        with tempfile.TemporaryDirectory() as tmp:
            recv, first, second, _ = _stored(ids, lines, a.files, now, Path(tmp))
        print(f"stored as {a.files} signed files: received in {recv:.2f} s; "
              f"network_uptime first call {first:.2f} s, second {second:.2f} s")
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
