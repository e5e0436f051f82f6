"""The hardened service as a real process on loopback (issue 11): a request is refused
before its body is sent, and a large ingest does not stall other requests."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lab.server import Server, free_port
from trucewatch.storage import open_store

HEADER = ("latitude,longitude,brightness,scan,track,acq_date,acq_time,satellite,instrument,"
          "confidence,version,bright_t31,frp,daynight,type\n")


def firms_csv(rows: int, seed: int = 1) -> bytes:
    """A MODIS archive file of ``rows`` distinct detections in May 2026."""
    rnd = random.Random(seed)
    lines = [HEADER]
    for k in range(rows):
        lines.append(f"{47 + rnd.random() * 3:.5f},{36 + rnd.random() * 4:.5f},"
                     f"{300 + rnd.random() * 40:.1f},1.1,1.0,2026-05-{1 + k % 28:02d},"
                     f"{k % 2400:04d},Terra,MODIS,{rnd.randint(0, 100)},6.03,295.1,"
                     f"{rnd.random() * 50:.1f},D,0\n")
    return "".join(lines).encode()


@pytest.fixture(params=["sqlite", "postgis"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    """``trucewatch serve`` over a new store, on each backend."""
    db: Path | str = (tmp_path / "s.db" if request.param == "sqlite"
                      else request.getfixturevalue("pg_url"))
    store = open_store(db)
    token = store.add_token("anna", "analyst")
    store.close()
    srv = Server(db, free_port(), folder=tmp_path).start()
    yield srv, token
    srv.stop()


def _headers_only(url: str, request: bytes, timeout: float = 30.0) -> tuple[bytes, float]:
    """Send a request's head (no body) and read the answer: (status line, seconds). The body
    never comes, so any answer at all was given before it (a server that waited for it
    would never answer: the read times out and the test fails), whatever the load."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        t0 = time.monotonic()
        s.sendall(request)
        answer = s.recv(4096)
        return answer.split(b"\r\n", 1)[0], time.monotonic() - t0


def test_refused_before_the_body_is_sent(server: tuple[Server, str]) -> None:
    srv, token = server
    huge = 400 << 20
    # no token: 401 at once, for a body of 400 MB that never comes
    for path in ("/api/v1/allegations", "/api/v1/ingest/firms"):
        line, took = _headers_only(srv.url, (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {huge}\r\n\r\n").encode())
        assert line.startswith(b"HTTP/1.1 401"), (path, line, took)
    # a token: 413 at once, from the declared length
    line, took = _headers_only(srv.url, (
        f"POST /api/v1/ingest/firms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Length: {huge}\r\n\r\n").encode())
    assert line.startswith(b"HTTP/1.1 413"), (line, took)


@pytest.mark.slow
def test_health_answers_while_a_large_ingest_runs(server: tuple[Server, str]) -> None:
    srv, token = server
    big = firms_csv(250_000)
    assert len(big) > 15 << 20
    done: dict[str, object] = {}

    def post() -> None:
        t0 = time.monotonic()
        r = httpx.post(f"{srv.url}/api/v1/ingest/firms", content=big, timeout=300,
                       headers={"Authorization": f"Bearer {token}"})
        done["status"], done["seconds"] = r.status_code, time.monotonic() - t0

    worker = threading.Thread(target=post)
    worker.start()
    waits = []
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        while worker.is_alive():
            t0 = time.monotonic()
            assert c.get("/api/v1/health").status_code == 200
            waits.append(time.monotonic() - t0)
            time.sleep(0.05)
    worker.join()
    assert done["status"] == 200, done
    assert len(waits) >= 5, (waits, done)  # the ingest took a while: health was asked often
    assert max(waits) < 1.0, (max(waits), done)
