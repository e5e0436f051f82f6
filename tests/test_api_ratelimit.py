"""The API's per-principal rate limit: past the burst a principal gets 429 in the one error
shape with Retry-After, others are not held back, the bucket refills with time (a fake
clock, no sleeps), the limit can be off, and the OpenAPI document declares 429 (with its
header) beside the 5xx answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from trucewatch.api import create_app
from trucewatch.api.ratelimit import RateLimit, RateLimiter
from trucewatch.errors import ConfigError
from trucewatch.storage import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _app(tmp_path: Path, limit: RateLimit | RateLimiter | None
         ) -> tuple[TestClient, dict[str, str]]:
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    tokens = {name: store.add_token(name, role) for name, role in
              (("anna", "analyst"), ("ben", "reviewer"))}
    store.close()
    return TestClient(create_app(db, rate_limit=limit)), tokens


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _is_429(r: Any) -> int:
    assert r.status_code == 429, r.text
    body = r.json()
    assert set(body) == {"error", "status", "message", "fix", "details"}
    assert body["error"] == "too_many_requests" and body["status"] == 429
    assert "per principal" in body["message"] and "Retry-After" in body["fix"]
    return int(r.headers["retry-after"])


def test_past_the_burst_a_principal_waits_and_others_do_not(tmp_path: Path) -> None:
    clock = Clock()
    c, tok = _app(tmp_path, RateLimiter(RateLimit(per_minute=30, burst=3), clock))
    for _ in range(3):
        assert c.get("/api/v1/me", headers=_h(tok["anna"])).status_code == 200
    wait = _is_429(c.get("/api/v1/me", headers=_h(tok["anna"])))
    assert wait == 2  # 30 a minute: one request every 2 s
    # the limit is the principal's: another one is served, health is never limited
    assert c.get("/api/v1/me", headers=_h(tok["ben"])).status_code == 200
    for _ in range(5):
        assert c.get("/api/v1/health").status_code == 200
    # still refused before the time is up, served after it (and only one more)
    clock.t += 1.0
    assert _is_429(c.get("/api/v1/me", headers=_h(tok["anna"]))) == 1
    clock.t += 1.01
    assert c.get("/api/v1/me", headers=_h(tok["anna"])).status_code == 200
    _is_429(c.get("/api/v1/me", headers=_h(tok["anna"])))
    # a long pause refills the burst, not more
    clock.t += 3600
    codes = [c.get("/api/v1/me", headers=_h(tok["anna"])).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_requests_without_a_principal_count_per_client(tmp_path: Path) -> None:
    """Unknown tokens (a guess at a token, say) use up the client address's bucket, and
    are refused 429 past it rather than looked up again."""
    c, tok = _app(tmp_path, RateLimiter(RateLimit(per_minute=6, burst=2), Clock()))
    assert c.get("/api/v1/me", headers=_h("guess-1")).status_code == 401
    assert c.get("/api/v1/me", headers=_h("guess-2")).status_code == 401
    assert _is_429(c.get("/api/v1/me", headers=_h("guess-3"))) == 10
    # a signed-in principal has its own bucket
    assert c.get("/api/v1/me", headers=_h(tok["anna"])).status_code == 200


def test_the_limit_can_be_off(tmp_path: Path) -> None:
    c, tok = _app(tmp_path, None)
    assert all(c.get("/api/v1/me", headers=_h(tok["anna"])).status_code == 200
               for _ in range(50))


def test_openapi_declares_429_with_retry_after_and_5xx(tmp_path: Path) -> None:
    c, _ = _app(tmp_path, RateLimit())
    doc = c.get("/openapi.json").json()
    op = doc["paths"]["/api/v1/incidents"]["get"]["responses"]
    assert op["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    assert op["429"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert op["500"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    # every limited route declares it (health is never limited, and says nothing of it)
    every = [ops for path, ops in doc["paths"].items()
             if path.startswith("/api/v1/") and path != "/api/v1/health"]
    assert every and all("429" in o["responses"] for ops in every for o in ops.values())
    assert "429" not in doc["paths"]["/api/v1/health"]["get"]["responses"]


@pytest.mark.parametrize(("per_minute", "burst"), [(0, 5), (-1, 5), (float("inf"), 5),
                                                   (60, 0)])
def test_nonsense_limits_are_refused(per_minute: float, burst: int) -> None:
    with pytest.raises(ConfigError) as err:
        RateLimit(per_minute, burst)
    assert err.value.fix


def test_serve_limits_and_turns_it_off(tmp_path: Path) -> None:
    """`trucewatch serve --rate-limit N --rate-burst B` limits a real server's
    principals; `--rate-limit 0` turns it off."""
    import httpx

    from lab.server import Server, free_port

    db = tmp_path / "s.db"
    store = SqliteStore(db)
    token = store.add_token("anna", "analyst")
    store.close()
    quiet = ("--no-products", "--no-worker")
    for extra, want in ((("--rate-limit", "6", "--rate-burst", "2"), [200, 200, 429]),
                        (("--rate-limit", "0"), [200, 200, 200])):
        server = Server(db, free_port(), extra=(*extra, *quiet)).start(timeout_s=120)
        try:
            got = [httpx.get(server.url + "/api/v1/me", headers=_h(token), timeout=30)
                   for _ in range(3)]
        finally:
            server.stop()
        assert [r.status_code for r in got] == want
        if want[-1] == 429:
            assert int(got[-1].headers["retry-after"]) >= 1
            assert got[-1].json()["error"] == "too_many_requests"
