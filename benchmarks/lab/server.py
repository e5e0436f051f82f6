"""Run ``trucewatch serve`` as a real process on loopback, for crash and load tests.

How long a start may take: ``Server.start(timeout_s=...)``, else the server's
``start_timeout_s``, else ``$TRUCEWATCH_LAB_START_S``, else 60 s (a loaded machine may
need several minutes: the imports alone take seconds per core in use).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

DEFAULT_START_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    store: Path | str  # a SQLite file or a postgresql:// URL
    port: int
    extra: tuple[str, ...] = ()  # more `trucewatch serve` options
    proc: subprocess.Popen[bytes] | None = None
    folder: Path | None = None  # for the log and the working folder (default: the store's)
    start_timeout_s: float | None = None  # default: $TRUCEWATCH_LAB_START_S, else 60 s

    @property
    def home(self) -> Path:
        return self.folder or Path(self.store).parent

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.home / f"server.{self.port}.log"

    def start(self, timeout_s: float | None = None) -> Server:
        if timeout_s is None:
            timeout_s = self.start_timeout_s or float(
                os.environ.get("TRUCEWATCH_LAB_START_S", "") or DEFAULT_START_S)
        # load and replay tests drive one token hard: no rate limit unless one is asked
        limit = () if "--rate-limit" in self.extra else ("--rate-limit", "0")
        with self.log.open("ab") as log:
            # run beside the store so that a quick start's out/ is never picked up
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "trucewatch", "serve", "--store", str(self.store),
                 "--port", str(self.port), *limit, *self.extra], stdout=subprocess.DEVNULL,
                stderr=log, cwd=self.home)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.log.read_text(errors="replace")
                raise RuntimeError(f"server exited: {err[-2000:]}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start in {timeout_s:g} s (a loaded machine: "
                           "raise $TRUCEWATCH_LAB_START_S or give start(timeout_s=...))")

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()


def wait_caught_up(store: Path | str, limit_s: float = 600.0) -> None:
    """Wait until the service's worker has processed every stored batch (its watermark
    is the store's batch count): what a test reads after it is settled. A generous limit,
    not a timing assertion; TimeoutError past it."""
    from trucewatch.pipeline.worker import Worker
    from trucewatch.storage import open_store

    deadline = time.monotonic() + limit_s
    while True:
        db = open_store(store)
        try:
            if Worker.watermark(db) == db.batch_count():
                return
        finally:
            db.close()
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker had not caught up after {limit_s:.0f} s")
        time.sleep(0.5)
