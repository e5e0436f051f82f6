"""Sustained stream (issue 13): a sensor network at barrage rates, its heartbeats and a
FIRMS near-real-time feed, posted through the API in time order at ``--speed``, while
the processing worker keeps up (or not). Goal: no backlog growth, bounded memory.

    PYTHONPATH=src:benchmarks python benchmarks/sustained_stream.py [--hours 24]
        [--stations 100] [--speed 10] [--intensity dense] [--sample 10] [--drain 600]

What is sent (every input signed where the source policy wants it, each signed when it
is sent, so that no signature comes before its content):

* once, first: the network's station inventory, and the built-in scenario's FIRMS
  reference archive (the worker fits its baseline on it; ``trucewatch.demo.generate``);
* detections: an independent acoustic scenario family of ``--stations`` stations at the
  ``--intensity`` (``dense``: about 4,000 explosions a day in barrages of shells seconds
  apart, false detections half the true ones; :mod:`lab.families`), one file per
  ``--detections-every`` s of scenario time (stored as received; the worker locates
  them across files through the sensor stream, intake/stream.py);
* heartbeats: every station once a minute (2 % missing at random), one file per
  ``--heartbeats-every`` s;
* FIRMS NRT: rows in and around the sector, one file per ``--firms-every`` s.

The scenario's clock is set in the past so that, sped up, it never runs ahead of the
service's clock (nothing is a "clock jump" at receipt). ``trucewatch serve --no-worker``
and a standalone ``trucewatch worker`` run on a fresh store (so that each one's memory
and each pass's time are seen); every ``--sample`` s the benchmark prints the backlog
(batches stored less the worker's watermark), both processes' RSS, and the last pass's
time; then it waits up to ``--drain`` s for the worker to catch up and prints a summary:
backlog and RSS in the first and the last third of the stream, how long each POST took
per source (the sender falls behind the scenario's clock when a POST takes longer than
the gap to the next one: ``sender_max_lag_s``), and the worker's pass times.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl

from lab.families import FamilyScenario, generate
from lab.server import Server, free_port
from trucewatch.integrity.envelope import sign_submission
from trucewatch.integrity.keys import KeyRecord, KeyRegistry, new_keypair
from trucewatch.pipeline.worker import Worker
from trucewatch.storage import SqliteStore

FIRMS_HEADER = ("latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,"
                "confidence,version,bright_ti5,frp,daynight")
PASS = re.compile(r"pass: .*?watermark (\d+).*?, ([\d.]+) s")


@dataclass(frozen=True)
class Post:
    at: datetime  # scenario time when it is sent
    source: str
    name: str
    body: bytes
    signed: bool


def _rss_mb(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def build(args: argparse.Namespace, start: datetime) -> tuple[list[Post], bytes, int]:
    """(the stream in time order, the station inventory, detections in all)."""
    sc = FamilyScenario("grid", "uniform", args.intensity, seed=args.seed, hours=args.hours,
                        n_stations=args.stations,
                        start=start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    data = generate(sc)
    st = data.stations
    inventory = st.select("id", "latitude", "longitude", "elevation_m", "kind").write_csv()
    det = data.detections.with_columns(
        pl.col("time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").alias("time_text"))
    posts: list[Post] = []
    step = timedelta(seconds=args.detections_every)
    end = start + timedelta(hours=args.hours)
    t = start
    k = 0
    while t < end:
        part = det.filter((pl.col("time") >= t) & (pl.col("time") < t + step))
        if part.height:
            body = part.select("detection_id", "station", pl.col("time_text").alias("time"),
                               "phase", "back_azimuth_deg", "amplitude", "snr").write_csv()
            posts.append(Post(min(t + step, end), "detections", f"det-{k:05d}.csv",
                              body.encode(), True))
        t += step
        k += 1
    rng = random.Random(args.seed)
    ids = st["id"].to_list()
    step = timedelta(seconds=args.heartbeats_every)
    t, k = start, 0
    while t < end:
        lines = ["station,time"]
        m = t
        while m < min(t + step, end):
            lines += [f"{s},{m:%Y-%m-%dT%H:%M:%SZ}" for s in ids if rng.random() > 0.02]
            m += timedelta(minutes=1)
        posts.append(Post(min(t + step, end), "heartbeats", f"hb-{k:05d}.csv",
                          ("\n".join(lines) + "\n").encode(), True))
        t += step
        k += 1
    lat = st["latitude"].to_list()
    lon = st["longitude"].to_list()
    step = timedelta(seconds=args.firms_every)
    t, k = start, 0
    while t < end:
        rows = [FIRMS_HEADER]
        for r in range(rng.randrange(5, 40)):
            when = t + timedelta(seconds=rng.uniform(0, step.total_seconds()))
            rows.append(f"{rng.uniform(min(lat), max(lat)):.4f},"
                        f"{rng.uniform(min(lon), max(lon)):.4f},{rng.uniform(300, 367):.1f},"
                        f"0.4,0.4,{when:%Y-%m-%d},{when:%H%M},N20,nominal,2.0NRT,"
                        f"{rng.uniform(270, 300):.1f},{rng.uniform(0.5, 40):.1f},"
                        f"{'D' if 4 <= when.hour < 16 else 'N'}")
            del r
        posts.append(Post(min(t + step, end), "firms", f"firms-{k:04d}.csv",
                          ("\n".join(rows) + "\n").encode(), False))
        t += step
        k += 1
    order = {"firms": 0, "heartbeats": 1, "detections": 2}
    posts.sort(key=lambda p: (p.at, order[p.source], p.name))
    return posts, inventory.encode(), data.detections.height


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--stations", type=int, default=100)
    ap.add_argument("--speed", type=float, default=10.0)
    ap.add_argument("--intensity", default="dense", choices=("quiet", "busy", "dense"))
    ap.add_argument("--detections-every", type=float, default=60.0)
    ap.add_argument("--heartbeats-every", type=float, default=300.0)
    ap.add_argument("--firms-every", type=float, default=3600.0,
                    help="scenario seconds between FIRMS files (the worker passes only "
                         "once a monitored FIRMS row is stored)")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--drain", type=float, default=600.0,
                    help="seconds to wait for the worker to catch up after the stream")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start-timeout", type=float, default=300.0)
    args = ap.parse_args()
    wall_s = args.hours * 3600 / args.speed
    # the scenario's clock: never ahead of the service's while sped up
    start = (datetime.now(UTC) - timedelta(hours=args.hours) * (1 - 1 / args.speed)
             - timedelta(minutes=15)).replace(microsecond=0, second=0)
    posts, inventory, n_det = build(args, start)
    kinds: dict[str, int] = {}
    for p in posts:
        kinds[p.source] = kinds.get(p.source, 0) + 1
    print(f"stream: {args.hours:g} h of {args.stations} stations ({args.intensity}) from "
          f"{start:%Y-%m-%dT%H:%MZ} at {args.speed:g}x ({wall_s / 60:.1f} min): "
          f"{n_det:,} detections; posts {kinds}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        from trucewatch.demo import generate as builtin

        scenario = builtin(root / "scenario")
        priv, pub = new_keypair()
        keys = root / "keys.json"
        KeyRegistry([KeyRecord("net", "sensors:net", pub, start - timedelta(days=30),
                               speaks_for=("*",))]).save(keys)
        db = root / "stream.db"
        store = SqliteStore(db)
        token = store.add_token("streamer", "admin")
        store.close()
        srv = Server(db, free_port(), ("--agreement", str(scenario.agreement), "--keys",
                                       str(keys), "--no-worker", "--no-products"),
                     start_timeout_s=args.start_timeout).start()
        wlog = root / "worker.out"
        with wlog.open("wb") as out:
            worker = subprocess.Popen(
                [sys.executable, "-u", "-m", "trucewatch", "worker", "--store", str(db),
                 "--agreement", str(scenario.agreement)], stdout=out,
                stderr=subprocess.STDOUT, cwd=root,
                env=os.environ | {"COLUMNS": "200"})
        nonce = [0]

        def signed(body: bytes) -> bytes:
            nonce[0] += 1
            return sign_submission(body, priv, "net", datetime.now(UTC), f"s-{nonce[0]}")

        samples: list[dict[str, float]] = []
        stop = threading.Event()
        t0 = time.monotonic()

        def sample() -> None:
            print("| wall s | scenario h sent | batches | watermark | backlog | passes | last "
                  "pass s | server RSS MB | worker RSS MB | load |", flush=True)
            print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
            while not stop.wait(args.sample):
                s = SqliteStore(db)
                try:
                    count, mark = s.batch_count(), Worker.watermark(s)
                finally:
                    s.close()
                passes = PASS.findall(wlog.read_text(errors="replace"))
                row = {"t": time.monotonic() - t0, "batches": count, "mark": mark,
                       "backlog": count - mark, "passes": len(passes),
                       "pass_s": float(passes[-1][1]) if passes else float("nan"),
                       "srv": _rss_mb(srv.proc.pid if srv.proc else None),
                       "wrk": _rss_mb(worker.pid), "load": os.getloadavg()[0]}
                samples.append(row)
                print(f"| {row['t']:.0f} | {sent_h[0]:.2f} | {count} | "
                      f"{mark} | {count - mark} | {row['passes']} | {row['pass_s']:.1f} | "
                      f"{row['srv']:.0f} | {row['wrk']:.0f} | {row['load']:.1f} |",
                      flush=True)

        lag = 0.0
        refused = 0
        sent_h = [0.0]  # scenario hours sent so far
        took: dict[str, list[float]] = {}  # seconds each POST took, per source
        try:
            with httpx.Client(base_url=srv.url, timeout=600,
                              headers={"Authorization": f"Bearer {token}"}) as c:
                r = c.post("/api/v1/ingest/stations", content=signed(inventory),
                           headers={"Content-Type": "text/csv"})
                assert r.status_code == 200, r.text
                for path in scenario.reference:  # the baseline's archive, before the stream
                    r = c.post("/api/v1/ingest/firms", content=path.read_bytes(),
                               headers={"Content-Type": "text/csv"})
                    assert r.status_code == 200, r.text
                print(f"inventory and {len(scenario.reference)} FIRMS archive files sent in "
                      f"{time.monotonic() - t0:.0f} s; the stream begins", flush=True)
                sampler = threading.Thread(target=sample, daemon=True)
                t0 = time.monotonic()
                sampler.start()
                for p in posts:
                    due = t0 + (p.at - start).total_seconds() / args.speed
                    now = time.monotonic()
                    if due > now:
                        time.sleep(due - now)
                    else:
                        lag = max(lag, now - due)
                    sent_at = time.monotonic()
                    r = c.post(f"/api/v1/ingest/{p.source}",
                               content=signed(p.body) if p.signed else p.body,
                               headers={"Content-Type": "text/csv"})
                    took.setdefault(p.source, []).append(time.monotonic() - sent_at)
                    sent_h[0] = (p.at - start).total_seconds() / 3600
                    if r.status_code != 200:
                        refused += 1
                        if refused <= 3:
                            print(f"  {p.name}: {r.status_code} {r.text[:200]}", flush=True)
            streamed = time.monotonic() - t0
            deadline = time.monotonic() + args.drain
            drained = None
            while time.monotonic() < deadline:
                s = SqliteStore(db)
                try:
                    if Worker.watermark(s) == s.batch_count():
                        drained = time.monotonic() - t0 - streamed
                        break
                finally:
                    s.close()
                time.sleep(1.0)
        finally:
            stop.set()
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
            srv.stop()
        passes = PASS.findall(wlog.read_text(errors="replace"))
        third = [x for x in samples if x["t"] <= streamed / 3]
        last = [x for x in samples if 2 * streamed / 3 <= x["t"] <= streamed]

        def peak(rows: list[dict[str, float]], k: str) -> float:
            return max((x[k] for x in rows), default=float("nan"))

        times = [float(p[1]) for p in passes]
        summary = {
            "scenario_hours": args.hours, "stations": args.stations, "speed": args.speed,
            "intensity": args.intensity, "detections": n_det, "posts": len(posts),
            "refused": refused, "stream_wall_s": round(streamed, 1),
            "sender_max_lag_s": round(lag, 1),
            "post_s_median_max": {k: [round(sorted(v)[len(v) // 2], 2), round(max(v), 2)]
                                  for k, v in took.items()},
            "backlog_max_first_third": peak(third, "backlog"),
            "backlog_max_last_third": peak(last, "backlog"),
            "backlog_grew": peak(last, "backlog") > max(peak(third, "backlog"), 2),
            "server_rss_mb_first_third": round(peak(third, "srv")),
            "server_rss_mb_last_third": round(peak(last, "srv")),
            "worker_rss_mb_first_third": round(peak(third, "wrk")),
            "worker_rss_mb_last_third": round(peak(last, "wrk")),
            "passes": len(times),
            "pass_s_first": times[0] if times else None,
            "pass_s_last": times[-1] if times else None,
            "drained_after_s": None if drained is None else round(drained, 1),
            "load_average": [round(x, 1) for x in os.getloadavg()],
            "cpus": os.cpu_count()}
        print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
