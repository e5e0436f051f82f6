"""Webhooks against a real HTTP server on 127.0.0.1: signed bodies (HMAC-SHA256 with a
timestamp), retries with exponential backoff, a hanging endpoint cut off, and the
dead-letter file; pushing the store's alerts twice sends nothing twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from lxml import etree

from conftest import DATA
from trucewatch.alerts import cap, webhooks
from trucewatch.errors import ConfigError, SignatureError
from trucewatch.storage import SqliteStore

SECRET = b"0123456789abcdef-shared-secret"


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes, dict[str, str]]]] = []
    failures: ClassVar[dict[str, int]] = {}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = dict(self.headers.items())
        _Hook.received.append((self.path, body, headers))
        code = 200
        if self.path == "/hang":
            time.sleep(3)
        elif self.path == "/refuse":
            code = 400
        elif self.path == "/flaky":
            left = _Hook.failures.get(headers[webhooks.DELIVERY_HEADER], 2)
            _Hook.failures[headers[webhooks.DELIVERY_HEADER]] = left - 1
            code = 503 if left > 0 else 200
        elif self.path == "/down":
            code = 500
        else:  # /ok checks the signature as a subscriber would
            try:
                webhooks.verify(SECRET, body, headers.get(webhooks.TIMESTAMP_HEADER),
                                headers.get(webhooks.SIGNATURE_HEADER))
            except SignatureError:
                code = 401
        try:
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"ok" if code == 200 else b"no")
        except OSError:
            pass  # the client gave up (the hanging endpoint)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def hook_server() -> Iterator[str]:
    _Hook.received.clear()
    _Hook.failures.clear()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()


def test_sign_and_verify() -> None:
    ts = int(time.time())
    sig = webhooks.sign(SECRET, b"body", ts)
    webhooks.verify(SECRET, b"body", str(ts), sig)
    with pytest.raises(SignatureError, match="does not match"):
        webhooks.verify(SECRET, b"body!", str(ts), sig)
    with pytest.raises(SignatureError, match="does not match"):
        webhooks.verify(b"another-secret-of-16+", b"body", str(ts), sig)
    with pytest.raises(SignatureError, match="off"):
        webhooks.verify(SECRET, b"body", str(ts - 3600), webhooks.sign(SECRET, b"body",
                                                                       ts - 3600))
    with pytest.raises(SignatureError, match="unsigned"):
        webhooks.verify(SECRET, b"body", None, None)
    with pytest.raises(ConfigError, match="16 bytes"):
        webhooks.Webhook("http://x", b"short")
    with pytest.raises(ConfigError, match="http"):
        webhooks.Webhook("ftp://x", SECRET)


def test_delivered_signed(hook_server: str, tmp_path: Path) -> None:
    dead = webhooks.DeadLetters(tmp_path / "dead.jsonl")
    d = webhooks.deliver(webhooks.Webhook(hook_server + "/ok", SECRET), "ev-1", b"<a/>", dead)
    assert d.ok and d.attempts == 1 and d.status_code == 200
    _path, body, headers = _Hook.received[-1]
    assert body == b"<a/>" and headers[webhooks.DELIVERY_HEADER] == "ev-1"
    assert headers["Content-Type"] == cap.CAP_MEDIA_TYPE
    # a subscriber with the wrong secret refuses it (401): not retried, dead-lettered
    wrong = webhooks.Webhook(hook_server + "/ok", b"not-the-shared-secret!")
    d = webhooks.deliver(wrong, "ev-2", b"<a/>", dead)
    assert not d.ok and d.attempts == 1 and d.status_code == 401
    assert [r["event_id"] for r in dead.records()] == ["ev-2"]


def test_retries_with_exponential_backoff(hook_server: str, tmp_path: Path) -> None:
    waits: list[float] = []
    dead = webhooks.DeadLetters(tmp_path / "dead.jsonl")
    hook = webhooks.Webhook(hook_server + "/flaky", SECRET, max_attempts=5, base_delay_s=0.5)
    d = webhooks.deliver(hook, "ev-f", b"x", dead, sleep=waits.append)
    assert d.ok and d.attempts == 3 and waits == [0.5, 1.0]
    # always 500: five attempts, waits doubling (capped), then a dead letter
    waits.clear()
    hook = webhooks.Webhook(hook_server + "/down", SECRET, max_attempts=5, base_delay_s=1,
                            max_delay_s=3)
    d = webhooks.deliver(hook, "ev-d", b"payload", dead, sleep=waits.append)
    assert not d.ok and d.attempts == 5 and waits == [1, 2, 3, 3]
    (record,) = dead.records()
    assert record["event_id"] == "ev-d" and record["attempts"] == 5
    assert "HTTP 500" in record["error"]
    # a 400 is not retried
    d = webhooks.deliver(webhooks.Webhook(hook_server + "/refuse", SECRET), "ev-r", b"x",
                         dead, sleep=waits.append)
    assert d.attempts == 1 and d.status_code == 400 and len(dead.records()) == 2


def test_hanging_endpoint_is_cut_off(hook_server: str, tmp_path: Path) -> None:
    dead = webhooks.DeadLetters(tmp_path / "dead.jsonl")
    hook = webhooks.Webhook(hook_server + "/hang", SECRET, max_attempts=2, base_delay_s=0.01,
                            timeout_s=0.5)
    t0 = time.monotonic()
    d = webhooks.deliver(hook, "ev-h", b"x", dead)
    assert time.monotonic() - t0 < 2.5
    assert not d.ok and d.attempts == 2 and "no answer within 0.5 s" in d.error
    assert dead.records()[0]["event_id"] == "ev-h"


def test_redeliver_dead_letters(hook_server: str, tmp_path: Path) -> None:
    dead = webhooks.DeadLetters(tmp_path / "dead.jsonl")
    down = webhooks.Webhook(hook_server + "/down", SECRET, max_attempts=1)
    webhooks.deliver(down, "ev-1", b"one", dead)
    webhooks.deliver(webhooks.Webhook(hook_server + "/refuse", SECRET), "ev-2", b"two", dead)
    assert webhooks.redeliver(down, dead)[0].ok is False
    assert len(dead.records()) == 2 and dead.records()[0]["attempts"] == 2
    refuse = webhooks.Webhook(hook_server + "/refuse", SECRET)
    # the receiver now accepts: a redelivery through /ok for the refused one's URL
    assert [d.ok for d in webhooks.redeliver(refuse, dead)] == [False]
    ok = webhooks.Webhook(hook_server + "/ok", SECRET)
    dead.replace([{**r, "url": ok.url} for r in dead.records()])
    assert [d.ok for d in webhooks.redeliver(ok, dead)] == [True, True]
    assert dead.records() == []
    assert [b for p, b, _ in _Hook.received if p == "/ok"] == [b"one", b"two"]


def test_push_alerts_once(hook_server: str, built_cycle: Path, tmp_path: Path) -> None:
    store = SqliteStore(built_cycle / "trucewatch.db")
    sent, dead = tmp_path / "sent.jsonl", webhooks.DeadLetters(tmp_path / "dead.jsonl")
    hook = webhooks.Webhook(hook_server + "/ok", SECRET)
    first = webhooks.push_alerts(store, hook, sent, dead)
    n = len(cap.alerts(store, cap.Audience.RESTRICTED))
    assert len(first.sent) == n > 0 and not first.failed
    again = webhooks.push_alerts(store, hook, sent, dead)
    assert again.sent == [] and again.skipped == n
    store.close()
    bodies = [b for p, b, _ in _Hook.received if p == "/ok"]
    assert len(bodies) == n
    schema = etree.XMLSchema(etree.parse(str(DATA / "cap-1.2.xsd")))
    assert all(schema.validate(etree.fromstring(b)) for b in bodies)
