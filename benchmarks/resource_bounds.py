"""Resource bounds of the service (issue 11): time and peak memory of the server process
while it refuses hostile inputs, through a real ``trucewatch serve`` on loopback.

    .venv/bin/python benchmarks/resource_bounds.py [--bomb-gib 4]

Each input is sent on its own connection; the server's memory is read from
``/proc/PID/status`` (its high-water mark ``VmHWM`` is reset through
``/proc/PID/clear_refs`` before each input), and the figure given is the growth of the
peak over the resident size before the input. Goal: each refused within 1 s and 100 MB.
Then the latency of ``GET /api/v1/health`` while a large FIRMS file (``--ingest-mb``) is
ingested (the issue: 17.8 s during a 45 MB ingest).
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.server import Server, free_port
from trucewatch.storage import SqliteStore

MiB = 1 << 20


def _status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass
class Result:
    name: str
    status: str
    seconds: float
    peak_growth: int
    sent: int
    recorded: bool | None


def _send(url: str, head: bytes, body_chunks: int, chunk: bytes, body: bytes = b""
          ) -> tuple[str, float, int]:
    """Send a request (a head, then ``body`` or ``body_chunks`` chunks) on a fresh
    connection while reading the answer: (status line, seconds to the answer, bytes
    sent). Sending stops when the server answers or closes."""
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=30)
    sent = 0
    answered = threading.Event()

    def pump() -> None:
        nonlocal sent
        try:
            if body:
                s.sendall(body)
                sent += len(body)
            for _ in range(body_chunks):
                if answered.is_set():
                    return
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the server closed the connection: it has answered

    t0 = time.monotonic()
    s.sendall(head)
    writer = threading.Thread(target=pump, daemon=True)
    writer.start()
    try:
        answer = s.recv(65536)
    except OSError as err:
        answer = f"(connection error: {err})".encode()
    took = time.monotonic() - t0
    answered.set()
    s.close()
    writer.join(timeout=5)
    line = answer.split(b"\r\n", 1)[0].decode(errors="replace") or "(closed)"
    return line, took, sent


def bomb(size: int) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"0" * (16 * MiB)
    return b"".join([*(z.compress(block) for _ in range(size // (16 * MiB))), z.flush()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bomb-gib", type=float, default=4.0,
                    help="size the large gzip bomb expands to (GiB)")
    ap.add_argument("--ingest-mb", type=float, default=45.0,
                    help="size of the FIRMS file ingested while /health is asked")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "s.db"
        store = SqliteStore(db)
        token = store.add_token("anna", "analyst")
        public = store.add_token("pat", "public")
        store.close()
        srv = Server(db, free_port()).start()
        assert srv.proc is not None
        pid = srv.proc.pid
        try:
            results = run(srv, pid, db, token, public, int(args.bomb_gib * 1024) * MiB)
            health = health_during_ingest(srv, token, int(args.ingest_mb * MiB))
        finally:
            srv.stop()
        traceback = "Traceback" in srv.log.read_text(errors="replace")
    print("| input | answer | seconds | peak memory growth | sent | refusal recorded | met |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        met = r.seconds <= 1.0 and r.peak_growth <= 100 * MiB
        rec = "-" if r.recorded is None else ("yes" if r.recorded else "no")
        print(f"| {r.name} | {r.status} | {r.seconds:.3f} | {r.peak_growth / MiB:.1f} MB | "
              f"{r.sent / MiB:,.1f} MB | {rec} | {'yes' if met else '**no**'} |")
    print(f"\nserver log: {'a traceback' if traceback else 'no traceback'}")
    print(f"\n/health during a {health['mb']:.0f} MB FIRMS ingest ({health['rows']:,} rows, "
          f"answered {health['status']} in {health['ingest_s']:.1f} s): {health['asked']} "
          f"requests, p50 {health['p50_ms']:.1f} ms, max {health['max_ms']:.1f} ms")


def health_during_ingest(srv: Server, token: str, size: int) -> dict[str, Any]:
    import random

    import httpx

    rnd = random.Random(1)
    lines = ["latitude,longitude,brightness,scan,track,acq_date,acq_time,satellite,"
             "instrument,confidence,version,bright_t31,frp,daynight,type\n"]
    n = total = 0
    while total < size:
        line = (f"{47 + rnd.random() * 3:.5f},{36 + rnd.random() * 4:.5f},"
                f"{300 + rnd.random() * 40:.1f},1.1,1.0,2026-05-{1 + n % 28:02d},"
                f"{n % 2400:04d},Terra,MODIS,{rnd.randint(0, 100)},6.03,295.1,"
                f"{rnd.random() * 50:.1f},D,0\n")
        lines.append(line)
        total += len(line)
        n += 1
    body = "".join(lines).encode()
    done: dict[str, Any] = {}

    def post() -> None:
        t0 = time.monotonic()
        r = httpx.post(f"{srv.url}/api/v1/ingest/firms", content=body, timeout=600,
                       headers={"Authorization": f"Bearer {token}"})
        done["status"], done["ingest_s"] = r.status_code, time.monotonic() - t0

    worker = threading.Thread(target=post)
    worker.start()
    waits = []
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        while worker.is_alive():
            t0 = time.monotonic()
            c.get("/api/v1/health")
            waits.append(time.monotonic() - t0)
            time.sleep(0.02)
    worker.join()
    waits.sort()
    return done | {"mb": len(body) / MiB, "rows": n, "asked": len(waits),
                   "p50_ms": 1000 * waits[len(waits) // 2], "max_ms": 1000 * waits[-1]}


def run(srv: Server, pid: int, db: Path, token: str, public: str, big_bomb: int
        ) -> list[Result]:
    results = []
    chunk = b"0" * MiB

    def measure(name: str, path: str, *, auth: str | None, declared: int | None,
                body: bytes = b"", chunks: int = 0, ctype: str = "application/json",
                recorded: bool = True) -> None:
        store = SqliteStore(db)
        before = store.counts()["refused"]
        store.close()
        time.sleep(0.3)
        _reset_peak(pid)
        base = _status(pid)["VmRSS"]
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {ctype}"]
        if auth:
            head.append(f"Authorization: Bearer {auth}")
        head.append(f"Content-Length: {declared}" if declared is not None
                    else "Transfer-Encoding: chunked")
        if declared is None:  # chunked: frame each chunk
            framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            line, took, sent = _send(srv.url, ("\r\n".join(head) + "\r\n\r\n").encode(),
                                     chunks, framed)
        else:
            line, took, sent = _send(srv.url, ("\r\n".join(head) + "\r\n\r\n").encode(),
                                     chunks, chunk, body)
        time.sleep(0.3)  # let the server finish what it does after answering
        peak = _status(pid)["VmHWM"] - base
        store = SqliteStore(db)
        after = store.counts()["refused"]
        store.close()
        results.append(Result(name, line.removeprefix("HTTP/1.1 "), took, max(peak, 0), sent,
                              (after > before) if recorded else None))

    big = 400 * MiB
    measure("400 MB body, no token, declared", "/api/v1/allegations", auth=None,
            declared=big, chunks=400, recorded=False)
    measure("400 MB body, no token, declared (ingest)", "/api/v1/ingest/firms", auth=None,
            declared=big, chunks=400, ctype="text/csv", recorded=False)
    measure("400 MB body, analyst token, declared", "/api/v1/ingest/firms", auth=token,
            declared=big, chunks=400, ctype="text/csv")
    measure("400 MB body, analyst token, chunked (no length)", "/api/v1/ingest/firms",
            auth=token, declared=None, chunks=400, ctype="text/csv")
    measure("400 MB form body, public token, chunked", "/api/v1/allegations", auth=public,
            declared=None, chunks=400)
    small = bomb(200 * MiB)
    measure(f"gzip bomb {len(small) / 1024:.0f} KB -> 200 MB", "/api/v1/ingest/firms",
            auth=token, declared=len(small), body=small, ctype="application/gzip")
    large = bomb(big_bomb)
    measure(f"gzip bomb {len(large) / MiB:.1f} MB -> {big_bomb / (1 << 30):.1f} GB",
            "/api/v1/ingest/firms", auth=token, declared=len(large), body=large,
            ctype="application/gzip")
    deep = b"[" * 100_000 + b"]" * 100_000
    measure("JSON nested 100,000 deep (form)", "/api/v1/allegations", auth=public,
            declared=len(deep), body=deep)
    measure("JSON nested 100,000 deep (ingest)", "/api/v1/ingest/allegations", auth=token,
            declared=len(deep), body=deep)
    for t in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"):
        doc = json.dumps({"text": "shelling", "lat": 48.0, "lon": 37.8, "category": "fire",
                          "time_start": t}).encode()
        measure(f"allegation at {t}", "/api/v1/allegations", auth=public,
                declared=len(doc), body=doc)
        alleg = json.dumps({"format": "trucewatch-allegations/1", "allegations": [
            {"allegation_id": f"X-{t[:4]}", "claimant": "x", "claimant_kind": "party",
             "received_at": t, "time_start": t, "lat": 48.0, "lon": 37.8,
             "category": "fire"}]}).encode()
        measure(f"allegations document at {t}", "/api/v1/ingest/allegations", auth=token,
                declared=len(alleg), body=alleg, recorded=False)
    return results


if __name__ == "__main__":
    main()
