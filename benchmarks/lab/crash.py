"""kill -9 during batch ingest: is every acknowledged observation there exactly once?

A client posts FIRMS batches (each a distinct CSV of ``rows`` detections) as fast as
the server answers; at a random moment the server is killed with SIGKILL, restarted,
and the client resends every batch it has no answer for (as a real sender would).
Then the store must hold every row of every acknowledged batch exactly once, no row
of a batch that was never stored, each batch whole (all-or-nothing), and the audit
chain must verify.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from lab.server import Server, free_port
from trucewatch.storage import open_store

HEADER = ("latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,confidence,"
          "version,bright_ti5,frp,daynight")


def batch_csv(trial: int, k: int, rows: int) -> bytes:
    lines = [HEADER]
    for r in range(rows):
        lat = 47.0 + (trial * 7919 + k * 131 + r) % 20000 * 1e-4
        lon = 35.0 + (k * 17 + r * 3) % 30000 * 1e-4
        lines.append(f"{lat:.4f},{lon:.4f},330.1,0.4,0.4,2026-05-{1 + k % 28:02d},"
                     f"{(r % 24):02d}{(k % 60):02d},N20,nominal,2.0NRT,300.1,2.1,D")
    return ("\n".join(lines) + "\n").encode()


@dataclass
class TrialResult:
    acknowledged: int
    resent: int
    rows_expected: int
    rows_found: int
    duplicates: int
    partial_batches: int
    chain_ok: bool
    killed_after_s: float
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def trial(folder: Path, trial_no: int, rows: int = 500, seed: int = 0,
          store_url: str | None = None) -> TrialResult:
    """One trial on a SQLite store in ``folder``, or on the (fresh, empty) PostgreSQL
    database ``store_url``."""
    rng = random.Random(seed * 1000 + trial_no)
    store: Path | str = store_url or folder / f"crash-{trial_no}.db"
    db = open_store(store)
    token = db.add_token("ingester", "analyst")
    db.close()
    server = Server(store, free_port(), folder=folder).start()
    headers = {"Authorization": f"Bearer {token}"}
    acked: dict[int, bytes] = {}
    sent: dict[int, bytes] = {}
    stop = threading.Event()

    def client() -> None:
        k = 0
        with httpx.Client(timeout=30) as c:
            while not stop.is_set():
                body = batch_csv(trial_no, k, rows)
                sent[k] = body
                try:
                    r = c.post(f"{server.url}/api/v1/ingest/firms", content=body,
                               headers=headers)
                    if r.status_code == 200:
                        acked[k] = body
                except httpx.HTTPError:
                    return  # the server died mid-request: no answer, no acknowledgement
                k += 1

    t = threading.Thread(target=client)
    t.start()
    delay = rng.uniform(0.5, 2.5)
    time.sleep(delay)
    server.kill9()
    stop.set()
    t.join()
    server.start()
    resent = 0
    with httpx.Client(timeout=30) as c:
        for k, body in sent.items():
            if k not in acked:  # no answer: send again, it must not duplicate
                r = c.post(f"{server.url}/api/v1/ingest/firms", content=body, headers=headers)
                resent += 1
                if r.status_code == 200:
                    acked[k] = body
    server.stop()
    return _check(store, acked, resent, rows, delay)


def _check(store_path: Path | str, acked: dict[int, bytes], resent: int, rows: int,
           delay: float) -> TrialResult:
    store = open_store(store_path)
    problems = []
    n_obs = int(store.db.execute("SELECT count(*) FROM observations").fetchone()[0])
    distinct = int(store.db.execute(
        "SELECT count(*) FROM (SELECT DISTINCT lat, lon, time_start FROM observations) AS d"
    ).fetchone()[0])
    partial = int(store.db.execute(
        "SELECT count(*) FROM batches b WHERE b.new + b.duplicates + b.quarantined != b.rows "
        "OR (SELECT count(*) FROM observations o WHERE o.batch_id = b.id) != b.new"
    ).fetchone()[0])
    expected = len(acked) * rows
    if n_obs != expected:
        problems.append(f"{n_obs} observations stored, {expected} acknowledged")
    if distinct != n_obs:
        problems.append(f"{n_obs - distinct} duplicated observations")
    if partial:
        problems.append(f"{partial} partial batches")
    chain = store.verify()
    problems += chain
    store.close()
    return TrialResult(len(acked), resent, expected, n_obs, n_obs - distinct, partial,
                       not chain, delay, problems)
