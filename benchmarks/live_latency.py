"""Live latency (issue 13): the built-in scenario replayed through the API at full speed,
from the arrival of the deciding observation to the automatic incident appearing at
``GET /api/v1/incidents``; p50 and p95. Goal: p95 <= 60 s on 2 cores.

    PYTHONPATH=src:benchmarks python benchmarks/live_latency.py [--wait 120] [--poll 0.5]

It starts ``trucewatch serve`` on loopback over a fresh store (admin token, the
scenario's agreement and key registry; its processing worker runs inside), replays
``trucewatch.demo.generate``'s inputs with :func:`trucewatch.replay.replay`, and polls
the incidents route meanwhile and for ``--wait`` seconds after. An incident's deciding
observation is the last to arrive of the submissions that brought its final
observations (looked up in the store by batch); it counts as appeared when the route
first shows it with those observations (an incident keeps its id while re-fused, so
the id alone would time its first, smaller version).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from lab.server import Server, free_port
from trucewatch.demo import generate
from trucewatch.replay import Sent, replay
from trucewatch.storage import SqliteStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wait", type=float, default=120.0,
                    help="seconds to keep polling after the replay")
    ap.add_argument("--poll", type=float, default=0.5, help="polling interval, s")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = generate(root / "scenario")
        db = root / "live.db"
        store = SqliteStore(db)
        admin, reader = store.add_token("replayer", "admin"), store.add_token("r", "analyst")
        store.close()
        srv = Server(db, free_port(), ("--agreement", str(files.agreement), "--keys",
                                       str(files.keys), "--bulletins", str(root))
                     ).start(timeout_s=300)
        seen: dict[str, float] = {}  # "id|observation ids" -> first seen
        stop = threading.Event()

        def watch() -> None:
            with httpx.Client(base_url=srv.url, timeout=30,
                              headers={"Authorization": f"Bearer {reader}"}) as c:
                while not stop.is_set():
                    try:
                        r = c.get("/api/v1/incidents", params={"limit": 1000})
                    except httpx.HTTPError:  # a slow answer under load: ask again
                        continue
                    now = time.monotonic()
                    if r.status_code == 200:
                        for item in r.json()["items"]:
                            key = f"{item['id']}|{'|'.join(sorted(item['observation_ids']))}"
                            seen.setdefault(key, now)
                    stop.wait(args.poll)

        arrivals: dict[str, float] = {}  # batch id -> when the service accepted it

        def on_sent(s: Sent) -> None:
            if s.accepted and s.answer.get("batch_id"):
                arrivals[str(s.answer["batch_id"])] = time.monotonic()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            t0 = time.monotonic()
            result = replay(files.root, srv.url, admin, on_sent=on_sent)
            took = time.monotonic() - t0
            deadline = time.monotonic() + args.wait
            while time.monotonic() < deadline:
                time.sleep(args.poll)
        finally:
            stop.set()
            watcher.join(timeout=10)
            srv.stop()
        store = SqliteStore(db)
        latencies = []
        for inc in store.incidents():
            key = f"{inc.id}|{'|'.join(sorted(inc.observation_ids))}"
            if key not in seen:
                continue
            marks = ",".join("?" * len(inc.observation_ids))
            batches = [r[0] for r in store.db.execute(
                f"SELECT DISTINCT batch_id FROM observations WHERE id IN ({marks})",
                inc.observation_ids)]
            deciding = max((arrivals[b] for b in batches if b in arrivals), default=None)
            if deciding is not None:
                latencies.append(seen[key] - deciding)
        store.close()
        report: dict[str, object] = {"submissions": len(result.sent), "accepted": result.accepted,
                  "replay_s": round(took, 1), "incident_versions_seen": len(seen),
                  "incidents_timed": len(latencies),
                  "cpus": os.cpu_count()}
        if latencies:
            lat = np.array(latencies)
            report |= {"p50_s": round(float(np.percentile(lat, 50)), 2),
                       "p95_s": round(float(np.percentile(lat, 95)), 2),
                       "max_s": round(float(lat.max()), 2)}
        else:
            report["note"] = ("no incident appeared at GET /api/v1/incidents: the service "
                              "stores what it receives; was the worker off (--no-worker) or "
                              "the agreement missing?")
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
