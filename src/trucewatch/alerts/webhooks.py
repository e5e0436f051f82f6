"""Webhooks: each alert POSTed to a subscriber, signed, retried, and never lost.

* **Signed**: ``X-Trucewatch-Timestamp`` (Unix seconds) and ``X-Trucewatch-Signature``
  ``sha256=<hex>``, the HMAC-SHA256 under the subscriber's shared secret of
  ``"<timestamp>." + body``. A receiver checks both with :func:`verify` (a stale
  timestamp is refused: a captured request cannot be replayed later).
  ``X-Trucewatch-Delivery`` carries the event id (the CAP identifier), the same on
  every retry, so that a receiver can drop a duplicate.
* **Retried**: a connection error, a timeout (an endpoint that hangs is cut off after
  ``timeout_s``), HTTP 408, 429 or 5xx is tried again after ``base_delay_s * 2**k``
  seconds (capped at ``max_delay_s``), up to ``max_attempts`` in all. Any other 4xx is
  not retried: the subscriber refused the request, trying again would not help.
* **Dead letters**: a delivery that did not succeed is appended to a JSON-lines file
  (:class:`DeadLetters`; by default ``<store>.webhooks-dead.jsonl`` beside the store, so
  that storage/ has no table for it) with the body, the attempts and the last error;
  :func:`redeliver` tries them again and keeps what still fails.
* :func:`push_alerts` sends every CAP alert of the store not yet delivered to the URL
  (delivered identifiers are kept in ``<store>.webhooks-sent.jsonl``): running it again
  sends nothing twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from trucewatch.alerts import cap
from trucewatch.errors import ConfigError, SignatureError, TrucewatchError

TIMESTAMP_HEADER = "X-Trucewatch-Timestamp"
SIGNATURE_HEADER = "X-Trucewatch-Signature"
DELIVERY_HEADER = "X-Trucewatch-Delivery"
TOLERANCE_S = 300
RETRY_STATUS = frozenset({408, 429})


class WebhookError(TrucewatchError, RuntimeError):
    """A webhook could not be delivered (the delivery is in the dead-letter file)."""

    code = "webhook_error"
    status = 502


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``"<timestamp>." + body``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(secret: bytes, body: bytes, timestamp: str | None, signature: str | None,
           now: float | None = None, tolerance_s: int = TOLERANCE_S) -> None:
    """What a receiver runs: raises SignatureError unless the body is signed with
    ``secret`` at a timestamp within ``tolerance_s`` of ``now``."""
    if not timestamp or not signature:
        raise SignatureError("unsigned webhook request",
                             fix=f"send {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}")
    try:
        ts = int(timestamp)
    except ValueError:
        raise SignatureError(f"webhook timestamp {timestamp[:40]!r} is not Unix seconds",
                             fix="send the signing time as an integer") from None
    if abs((time.time() if now is None else now) - ts) > tolerance_s:
        raise SignatureError(f"webhook timestamp {ts} is more than {tolerance_s} s off",
                             fix="check the sender's clock; a stale request may be a "
                                 "replay")
    if not hmac.compare_digest(sign(secret, body, ts), signature):
        raise SignatureError("webhook signature does not match the body",
                             fix="check the shared secret")


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: bytes
    max_attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"webhook URL {self.url!r} is not http(s)",
                              fix="give the subscriber's https:// URL")
        if len(self.secret) < 16:
            raise ConfigError("webhook secret shorter than 16 bytes",
                              fix="share a random secret of at least 16 bytes with the "
                                  "subscriber (e.g. `openssl rand -hex 32`)")
        if self.max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1", fix="give 1 or more")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))


@dataclass
class Delivery:
    event_id: str
    ok: bool
    attempts: int
    status_code: int | None = None
    error: str = ""
    waited_s: list[float] = field(default_factory=list)


class DeadLetters:
    """Deliveries that did not succeed, one JSON object a line (append-only)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def add(self, hook: Webhook, event_id: str, body: bytes, d: Delivery,
            content_type: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"at": datetime.now(UTC).isoformat(), "url": hook.url, "event_id": event_id,
                  "attempts": d.attempts, "status_code": d.status_code, "error": d.error,
                  "content_type": content_type,
                  "body_b64": base64.b64encode(body).decode()}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line))
        return out

    def replace(self, records: list[dict[str, Any]]) -> None:
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records),
                       encoding="utf-8")
        tmp.replace(self.path)


def deliver(hook: Webhook, event_id: str, body: bytes, dead: DeadLetters | None = None,
            content_type: str = cap.CAP_MEDIA_TYPE, sleep: Callable[[float], None] = time.sleep,
            clock: Callable[[], float] = time.time) -> Delivery:
    """POST one body, signed, with retries; a failure ends in ``dead`` (never raised)."""
    d = Delivery(event_id, ok=False, attempts=0)
    with httpx.Client(timeout=hook.timeout_s) as client:
        for attempt in range(1, hook.max_attempts + 1):
            d.attempts = attempt
            ts = int(clock())
            headers = {"Content-Type": content_type, TIMESTAMP_HEADER: str(ts),
                       SIGNATURE_HEADER: sign(hook.secret, body, ts),
                       DELIVERY_HEADER: event_id, "User-Agent": "trucewatch-webhook"}
            retry = True
            try:
                r = client.post(hook.url, content=body, headers=headers)
                d.status_code = r.status_code
                if 200 <= r.status_code < 300:
                    d.ok, d.error = True, ""
                    return d
                d.error = f"HTTP {r.status_code}: {r.text[:200]}"
                retry = r.status_code in RETRY_STATUS or r.status_code >= 500
            except httpx.TimeoutException:
                d.status_code, d.error = None, f"no answer within {hook.timeout_s:g} s"
            except httpx.HTTPError as err:
                d.status_code, d.error = None, f"{type(err).__name__}: {err}"[:300]
            if not retry or attempt == hook.max_attempts:
                break
            wait = hook.delay(attempt)
            d.waited_s.append(wait)
            sleep(wait)
    if dead is not None:
        dead.add(hook, event_id, body, d, content_type)
    return d


def redeliver(hook: Webhook, dead: DeadLetters, sleep: Callable[[float], None] = time.sleep
              ) -> list[Delivery]:
    """Try every dead letter for ``hook.url`` again; those that still fail stay."""
    keep, done = [], []
    for r in dead.records():
        if r["url"] != hook.url:
            keep.append(r)
            continue
        d = deliver(hook, r["event_id"], base64.b64decode(r["body_b64"]), None,
                    r.get("content_type", cap.CAP_MEDIA_TYPE), sleep)
        done.append(d)
        if not d.ok:
            keep.append({**r, "attempts": int(r["attempts"]) + d.attempts, "error": d.error,
                         "status_code": d.status_code,
                         "at": datetime.now(UTC).isoformat()})
    dead.replace(keep)
    return done


def beside(store_path: Path | str, what: str) -> Path:
    """``<store>.webhooks-<what>.jsonl`` next to a SQLite store file."""
    text = str(store_path)
    if "://" in text:
        raise ConfigError("a database URL has no folder to keep webhook records beside",
                          fix="give --dead-letters FILE (and --sent FILE)")
    return Path(text).with_name(Path(text).name + f".webhooks-{what}.jsonl")


@dataclass
class PushResult:
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: int = 0


def push_alerts(store: cap.AlertSource, hook: Webhook, sent_path: Path, dead: DeadLetters,
                audience: cap.Audience = cap.Audience.RESTRICTED,
                sleep: Callable[[float], None] = time.sleep) -> PushResult:
    """Deliver each alert not yet delivered to ``hook.url``; a delivered identifier is
    recorded at once (a crash afterwards does not send it again), a failed one goes to
    the dead letters and is recorded too (redeliver it from there)."""
    done: set[tuple[str, str]] = set()
    if sent_path.exists():
        for line in sent_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                done.add((r["url"], r["event_id"]))
    out = PushResult()
    sent_path.parent.mkdir(parents=True, exist_ok=True)
    for a in cap.alerts(store, audience):
        if (hook.url, a.identifier) in done:
            out.skipped += 1
            continue
        d = deliver(hook, a.identifier, cap.to_xml(a, audience), dead, sleep=sleep)
        (out.sent if d.ok else out.failed).append(a.identifier)
        with sent_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"url": hook.url, "event_id": a.identifier, "ok": d.ok,
                                "attempts": d.attempts,
                                "at": datetime.now(UTC).isoformat()}) + "\n")
            f.flush()
            os.fsync(f.fileno())
    return out
