"""kill -9 of the worker and the server during the stream (issue 13, "Restart").

One trial: ``trucewatch serve`` on a fresh SQLite store (admin token, the scenario's
agreement and key registry), its processing worker either inside (a thread) or beside
it as ``trucewatch worker``; the scenario is replayed through the API at full speed
(:func:`trucewatch.replay.replay` with ``retry_s``: a submission the service did not
answer is sent again once it is back); at a seeded random moment the server, the
standalone worker, or both are killed with SIGKILL and restarted at once. When the
replay has finished and the worker's watermark has reached the store's batch count,
the service is stopped and its final state (:func:`final_state`) is compared with an
uninterrupted run's.

The products clock is off in every run (``--no-products``): what it publishes depends
on the wall clock, not on the inputs, so two runs would differ by when they ran.
"""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.server import Server, free_port
from trucewatch.pipeline.worker import ACTION as WORKER_ACTION
from trucewatch.pipeline.worker import ACTOR as WORKER_ACTOR
from trucewatch.pipeline.worker import Worker
from trucewatch.replay import ReplayResult, replay
from trucewatch.storage import SqliteStore

_RECEIVED = re.compile(r"\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:\d{2})?")  # in a reason
MODES = ("server", "worker", "both")  # what is killed; "server" runs the worker inside


def final_state(db: Path) -> dict[str, Any]:
    """What must be identical after a run: incidents (category, start, observations,
    status), their ids, violations, rulings, the batches (each input once, by SHA-256,
    with its row accounting), observation and quarantine counts, the distinct refusals
    (input and reason, less the time of receipt a replay's reason names),
    the watermark, and ``verify()``. Also counted, not compared: refusal records (a
    refused submission sent twice is refused, and recorded, twice)."""
    store = SqliteStore(db)
    try:
        incs = store.incidents()
        owners = Counter(o for i in incs for o in i.observation_ids)
        batches = sorted(tuple(r) for r in store.db.execute(
            "SELECT raw_sha256, source, rows, new, duplicates, quarantined FROM batches"))
        refused = store.refused()
        return {
            "incidents": sorted((i.category.value, i.time_start.isoformat(),
                                 tuple(sorted(i.observation_ids)), i.status.value)
                                for i in incs),
            "incident_ids": sorted(i.id for i in incs),
            "violations": sorted((v.incident_id, v.rule) for v in store.violations()),
            "rulings": sorted((str(r["allegation_id"]), str(r["ruling"]))
                              for r in store.rulings()),
            "batches": batches,
            "batch_count": store.batch_count(),
            "watermark": Worker.watermark(store),
            "observations": int(store.db.execute(
                "SELECT count(*) FROM observations").fetchone()[0]),
            "quarantined": int(store.db.execute(
                "SELECT count(*) FROM quarantine").fetchone()[0]),
            "refusals": sorted({(str(r["raw_sha256"]), _RECEIVED.sub("<time>", str(r["reason"])))
                                for r in refused}),
            "verify": store.verify(),
            # counted, not compared
            "_shared_observations": sorted(o for o, n in owners.items() if n > 1),
            "_refusal_records": len(refused),
        }
    finally:
        store.close()


def differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """One line per compared key that differs, and what must hold in any run."""
    out = []
    for k, v in want.items():
        if k.startswith("_") or k == "verify":
            continue
        if got[k] != v:
            if isinstance(v, list):
                extra = [x for x in got[k] if x not in v]
                missing = [x for x in v if x not in got[k]]
                out.append(f"{k}: {len(got[k])} vs {len(v)} ({len(missing)} missing, "
                           f"{len(extra)} extra; e.g. {(missing or extra)[:1]})")
            else:
                out.append(f"{k}: {got[k]} vs {v}")
    if got["verify"]:
        out.append(f"verify: {got['verify'][:3]}")
    if got["_shared_observations"]:
        out.append(f"{len(got['_shared_observations'])} observations in two incidents")
    if got["watermark"] != got["batch_count"]:
        out.append(f"watermark {got['watermark']} != {got['batch_count']} batches")
    return out


@dataclass
class Run:
    """One run's facts."""

    mode: str
    state: dict[str, Any]
    seconds: float  # replay start to the final watermark
    kill_at_s: float | None = None  # after the replay's start
    sent_before_kill: int = 0
    submissions: int = 0
    resent: int = 0
    restarts: int = 0
    passes_before_kill: int = 0  # worker passes committed before the kill
    passes_before_pass_kill: int = -1  # the same for the second kill (-1: none made)
    observer_retries: list[str] = field(default_factory=list)  # the harness's own reads
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Service:
    """serve (+ a standalone worker in modes "worker" and "both") on one store."""

    def __init__(self, db: Path, scenario: Path, mode: str, start_s: float) -> None:
        self.db, self.scenario, self.mode, self.start_s = db, scenario, mode, start_s
        extra = ["--agreement", str(scenario / "agreement.yaml"), "--keys",
                 str(scenario / "keys.json"), "--bulletins", str(db.parent),
                 "--no-products"]
        if mode != "server":
            extra.append("--no-worker")
        self.server = Server(db, free_port(), tuple(extra), start_timeout_s=start_s)
        self.worker: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> None:
        if self.mode == "server":
            return
        with (self.db.parent / "worker.log").open("ab") as log:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "trucewatch", "worker", "--store", str(self.db),
                 "--agreement", str(self.scenario / "agreement.yaml"), "--interval", "0.5"],
                stdout=subprocess.DEVNULL, stderr=log, cwd=self.db.parent)

    def start(self) -> None:
        self.server.start()
        self.start_worker()

    def kill9(self) -> None:
        """SIGKILL what this mode kills (the server takes its worker thread with it)."""
        if self.mode in ("server", "both"):
            self.server.kill9()
        if self.mode in ("worker", "both") and self.worker is not None:
            os.kill(self.worker.pid, signal.SIGKILL)
            self.worker.wait()

    def restart(self) -> None:
        if self.mode in ("server", "both"):
            self.server.start()
        if self.mode in ("worker", "both"):
            self.start_worker()

    def stop(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
        self.server.stop()


def _fresh_store(db: Path) -> str:
    store = SqliteStore(db)
    try:
        return store.add_token("replayer", "admin")
    finally:
        store.close()


# The trial's store is read while the service writes it and is killed: an observer's
# read must not end the benchmark on a transient error (stop 22 stopped at trial 13 on
# "disk I/O error" in the harness's own poll, at load ~14; not reproduced since). So a
# poll is a plain connection (no migration check, no journal-mode pragma, no write:
# ``query_only``), and a failed one is retried with backoff, each retry recorded with
# SQLite's extended error name, so that a recurrence says what it was.
OBSERVE_TRIES = 8
_PASS = f"actor = '{WORKER_ACTOR}' AND action = '{WORKER_ACTION}'"  # Worker.watermark's row


@dataclass
class Observer:
    """The harness's reads of a running trial's store, with the retries they needed."""

    db: Path
    retries: list[str] = field(default_factory=list)  # "errorname: message" per retry

    def count(self, sql: str) -> int:
        for attempt in range(OBSERVE_TRIES):
            try:
                con = sqlite3.connect(self.db, timeout=30, isolation_level=None)
                try:
                    con.execute("PRAGMA query_only=ON")
                    return int(con.execute(sql).fetchone()[0])
                finally:
                    con.close()
            except sqlite3.OperationalError as err:
                self.retries.append(f"{getattr(err, 'sqlite_errorname', '?')}: {err}")
                if attempt == OBSERVE_TRIES - 1:
                    raise
                time.sleep(0.25 * 2 ** attempt)
        raise AssertionError("unreachable")

    def progress(self) -> tuple[int, int]:
        """(watermark, batch count) as stored now (Worker.watermark's row)."""
        return (self.count(f"SELECT coalesce((SELECT json_extract(details, '$.watermark') "
                           f"FROM audit_log WHERE {_PASS} ORDER BY seq DESC LIMIT 1), 0)"),
                self.count("SELECT count(*) FROM batches"))

    def passes(self) -> int:
        return self.count(f"SELECT count(*) FROM audit_log WHERE {_PASS}")


def holders(db: Path) -> list[int]:
    """Other processes with the store (or its -wal/-shm) open: after a trial's stop there
    must be none (a leftover server or worker would go on writing beside the next one)."""
    names = {str(db), f"{db}-wal", f"{db}-shm"}
    out = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        pid = int(fd_dir.parent.name)
        if pid == os.getpid():
            continue
        try:
            if any(str(f.readlink()) in names for f in fd_dir.iterdir()):
                out.append(pid)
        except OSError:  # gone, or not ours to read
            continue
    return out


def run_once(folder: Path, scenario: Path, mode: str, kill_at_s: float | None = None,
             start_s: float = 300.0, finish_s: float = 900.0, poll_s: float = 0.5,
             pass_kill_s: float | None = None) -> Run:
    """One run on a fresh store in ``folder``: uninterrupted (``kill_at_s`` None) or
    with one SIGKILL (of what ``mode`` names) ``kill_at_s`` after the replay began; with
    ``pass_kill_s``, a second one that long after the replay ended, when the worker has
    not reached the final watermark yet (its last pass is then under way: during the
    replay's bursts the worker waits for a quiet moment, so the first kill mostly falls
    before a pass commits)."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "live.db"
    token = _fresh_store(db)
    svc = _Service(db, scenario, mode, start_s)
    svc.start()
    done = threading.Event()
    result: list[ReplayResult] = []
    failure: list[BaseException] = []
    sent = [0]

    def feed() -> None:
        try:
            result.append(replay(scenario, svc.server.url, token, retry_s=start_s + 60,
                                 on_sent=lambda s: sent.__setitem__(0, sent[0] + 1)))
        except BaseException as err:  # reported as the trial's problem
            failure.append(err)
        finally:
            done.set()

    run = Run(mode, {}, 0.0, kill_at_s)
    seen = Observer(db)
    t0 = time.monotonic()
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        if kill_at_s is not None:
            # the replay may end first: then the kill falls among the worker's passes
            time.sleep(max(0.0, t0 + kill_at_s - time.monotonic()))
            run.sent_before_kill = sent[0]
            run.passes_before_kill = seen.passes()
            svc.kill9()
            svc.restart()
            run.restarts = 1
        deadline = time.monotonic() + finish_s
        if pass_kill_s is not None:
            done.wait(finish_s)
            mark, count = seen.progress()
            if mark < count:
                time.sleep(pass_kill_s)
                run.passes_before_pass_kill = seen.passes()
                svc.kill9()
                svc.restart()
                run.restarts += 1
        while time.monotonic() < deadline:
            if failure:  # the replay gave up: nothing more will come
                break
            if done.is_set():
                mark, count = seen.progress()
                if mark == count and count > 0:
                    break
            time.sleep(poll_s)
        else:
            run.problems.append(f"the worker did not reach the final watermark in "
                                f"{finish_s:g} s")
        run.seconds = time.monotonic() - t0
    finally:
        svc.stop()
        feeder.join(timeout=30)
        run.observer_retries = seen.retries
    left = holders(db)
    if left:
        run.problems.append(f"processes still hold the store after the stop: {left}")
    if failure:
        run.problems.append(f"replay failed: {failure[0]!r}"[:300])
    if result:
        run.submissions = len(result[0].sent)
        run.resent = result[0].resent
    run.state = final_state(db)
    return run


def trial(folder: Path, scenario: Path, reference: dict[str, Any], n: int, seed: int,
          window_s: float, start_s: float = 300.0, finish_s: float = 900.0,
          pass_kill: bool = False) -> Run:
    """Trial ``n``: mode and kill moment drawn from ``seed`` and ``n`` (the moment
    uniform in 5-95 % of ``window_s``, the reference's replay-to-watermark time); with
    ``pass_kill``, a second kill 0.5-4 s (drawn) after the replay's end."""
    rng = random.Random(seed * 10_007 + n)
    mode = MODES[(n - 1) % len(MODES)] if n <= len(MODES) else rng.choice(MODES)
    kill_at = rng.uniform(0.05, 0.95) * window_s
    second = rng.uniform(0.5, 4.0) if pass_kill else None
    run = run_once(folder, scenario, mode, kill_at, start_s, finish_s,
                   pass_kill_s=second)
    run.problems += differences(run.state, reference)
    return run
