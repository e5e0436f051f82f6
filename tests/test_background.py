"""The loops that run inside ``trucewatch serve`` (pipeline.background): a step's error
never ends its loop; the webhook dispatcher delivers each new alert once, across a
restart, and an endpoint that never answers holds neither the service nor the loop's
stop. No timed assertion: the tests wait on events (with a generous bound, so that a
bug fails instead of hanging)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from trucewatch.alerts import webhooks
from trucewatch.errors import ConfigError
from trucewatch.model.enums import Category
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.observation import Location
from trucewatch.pipeline.background import Periodic, products_clock, webhook_dispatcher
from trucewatch.storage import SqliteStore

SECRET = b"0123456789abcdef-shared-secret"
BOUND = 60.0  # seconds a test waits for an event before failing (never reached when OK)


def _add(store: SqliteStore, k: int) -> None:
    at = datetime(2026, 5, 30, 10, k, tzinfo=UTC)
    inc = Incident(f"inc-{k}", Category.EXPLOSION_IMPACT, at, at + timedelta(minutes=1),
                   Location(48.0, 37.8, 500.0), [f"o-{k}"], sector_id="S1")
    store.save_incidents([inc], [Violation(f"v-{k}", inc.id, "agr", "no_fire_in_buffer",
                                           "fire in the buffer", Category.EXPLOSION_IMPACT,
                                           at)], replace_automatic=False)


class _Receiver(BaseHTTPRequestHandler):
    got: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        webhooks.verify(SECRET, body, self.headers.get(webhooks.TIMESTAMP_HEADER),
                        self.headers.get(webhooks.SIGNATURE_HEADER))
        _Receiver.got.append(str(self.headers[webhooks.DELIVERY_HEADER]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def receiver() -> Iterator[str]:
    _Receiver.got.clear()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}/hook"
    srv.shutdown()
    srv.server_close()


@pytest.fixture()
def silent() -> Iterator[tuple[str, threading.Event]]:
    """A loopback endpoint that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    accepted = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            held.append(conn)
            accepted.set()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook", accepted
    sock.close()
    for c in held:
        c.close()


def _wait_runs(loop: Periodic, n: int) -> None:
    while loop.runs < n:
        assert loop.done.wait(BOUND), f"{loop.name} made no progress"
        loop.done.clear()


def test_a_failing_step_does_not_end_the_loop() -> None:
    calls: list[int] = []

    def step(_: threading.Event) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    loop = Periodic("t", 0.01, step).start()
    _wait_runs(loop, 3)
    loop.stop()
    assert not loop.alive
    assert loop.failures == 1 and "boom" in loop.last_error and len(calls) >= 3


def test_interval_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="not positive"):
        Periodic("t", 0, lambda _: None)


def test_dispatcher_delivers_each_new_alert_once_across_restarts(tmp_path: Path,
                                                                 receiver: str) -> None:
    db = tmp_path / "tw.db"
    s = SqliteStore(db)
    _add(s, 1)
    _add(s, 2)
    s.close()
    hook = webhooks.Webhook(receiver, SECRET, max_attempts=2, timeout_s=5)
    sent, dead = tmp_path / "sent.jsonl", tmp_path / "dead.jsonl"
    loop = webhook_dispatcher(db, hook, sent, dead, interval_s=0.01)
    _wait_runs(loop, 2)
    loop.stop()
    first = list(_Receiver.got)
    assert len(first) == 2 and len(set(first)) == 2
    # a restart (a new dispatcher on the same records) delivers nothing twice; a new
    # alert is delivered
    s = SqliteStore(db)
    _add(s, 3)
    s.close()
    loop = webhook_dispatcher(db, hook, sent, dead, interval_s=0.01)
    _wait_runs(loop, 2)
    loop.stop()
    assert _Receiver.got[:2] == first and len(_Receiver.got) == 3
    assert not dead.exists()


def test_a_hanging_endpoint_blocks_neither_the_service_nor_the_loop(
        tmp_path: Path, silent: tuple[str, threading.Event]) -> None:
    from fastapi.testclient import TestClient

    from trucewatch.api import create_app

    url, accepted = silent
    db = tmp_path / "tw.db"
    s = SqliteStore(db)
    _add(s, 1)
    s.close()
    hook = webhooks.Webhook(url, SECRET, max_attempts=2, base_delay_s=0.01, timeout_s=1.0)
    sent, dead = tmp_path / "sent.jsonl", tmp_path / "dead.jsonl"
    client = TestClient(create_app(db))
    loop = webhook_dispatcher(db, hook, sent, dead, interval_s=3600)
    assert accepted.wait(BOUND)  # the dispatcher is waiting on the silent endpoint...
    assert client.get("/api/v1/health").status_code == 200  # ...and the service answers
    _wait_runs(loop, 1)  # cut off after its timeout, then dead-lettered
    loop.stop()
    assert not loop.alive
    letters = webhooks.DeadLetters(dead).records()
    assert len(letters) == 1 and "no answer within 1 s" in letters[0]["error"]
    assert letters[0]["attempts"] == 2
    record = [json.loads(line) for line in sent.read_text().splitlines()]
    assert [r["ok"] for r in record] == [False]


def test_products_clock_in_the_background(tmp_path: Path) -> None:
    db = tmp_path / "tw.db"
    s = SqliteStore(db)
    _add(s, 1)
    s.close()
    loop = products_clock(db, tmp_path / "p", interval_s=0.01)
    _wait_runs(loop, 2)
    loop.stop()
    s = SqliteStore(db)
    names = {str(p["name"]) for p in s.products()}
    s.close()
    # the real clock is far past the 30th of May 2026: its final tier is live
    assert "list-2026-05-30-24h.json" in names
    assert loop.failures == 0


def test_serve_runs_the_loops_and_stops_them(tmp_path: Path, receiver: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from trucewatch.cli.app import app

    db = tmp_path / "tw.db"
    SqliteStore(db).close()
    seen: dict[str, bool] = {}

    def fake_run(*args: object, **kwargs: object) -> None:
        seen.update({t.name: t.is_alive() for t in threading.enumerate()})

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setenv("TRUCEWATCH_WEBHOOK_SECRET", SECRET.decode())
    r = CliRunner().invoke(app, ["serve", "--store", str(db), "--webhook-url", receiver,
                                 "--products-interval", "3600"])
    assert r.exit_code == 0, r.output
    assert seen.get("products-clock") and seen.get("webhook-dispatcher")
    assert not any(t.name in ("products-clock", "webhook-dispatcher")
                   for t in threading.enumerate())
    r = CliRunner().invoke(app, ["serve", "--store", str(db), "--no-products"])
    assert r.exit_code == 0 and "products clock" not in r.output
