"""The hardened service (issue 11, item 5): limits before a body is read and
authentication before parsing, malformed input answered in the one error shape and kept
as refused, times parsed as times, nothing of unreviewed incidents for liaisons and the
public, bulletins from the published list, a token's role binding what it may ingest,
and the HTTP details (Allow, duplicate Authorization, someone else's claim)."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import re
import shutil
import zlib
from collections.abc import Iterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import DATA, BuiltStore
from test_api import _h, _is_error, make_api
from trucewatch.api import create_app
from trucewatch.api.auth import MATRIX, Role, may_ingest
from trucewatch.demo import ScenarioFiles
from trucewatch.model.enums import SourceKind, Status
from trucewatch.model.serialization import format_time, parse_time
from trucewatch.storage import open_store

Api = tuple[TestClient, dict[str, str], str]


@pytest.fixture()
def api(built_store: BuiltStore, scenario: ScenarioFiles) -> Api:
    return make_api(built_store, scenario)
JSON = {"Content-Type": "application/json"}


def _kept(db: Path, raw: bytes) -> list[dict[str, Any]]:
    """The refusals whose evidentiary copy is exactly ``raw``."""
    store = open_store(db)
    try:
        sha = hashlib.sha256(raw).hexdigest()
        return [r for r in store.refused()
                if r["raw_sha256"] == sha and store.raw_input(sha) == raw]
    finally:
        store.close()


# ------------------------------------------------------------------ times
def test_time_filters_compare_times(api: Api) -> None:
    c, tok, _ = api
    h = _h(tok["analyst"])
    every = c.get("/api/v1/incidents?limit=1000", headers=h).json()["items"]
    t = parse_time(every[len(every) // 2]["time_start"])
    later = [i["id"] for i in every if parse_time(i["time_start"]) >= t]
    earlier = [i["id"] for i in every if parse_time(i["time_start"]) < t]
    assert later and earlier
    plus2 = timezone(timedelta(hours=2))
    minus530 = timezone(-timedelta(hours=5, minutes=30))
    for text in (format_time(t), t.astimezone(plus2).isoformat(),
                 t.astimezone(minus530).isoformat()):
        got = c.get("/api/v1/incidents", params={"start": text, "limit": 1000}, headers=h)
        assert [i["id"] for i in got.json()["items"]] == later, text
        got = c.get("/api/v1/incidents", params={"end": text, "limit": 1000}, headers=h)
        assert [i["id"] for i in got.json()["items"]] == earlier, text


EXTREME = ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
           "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]


def test_extreme_times_are_refused_in_the_error_shape(api: Api) -> None:
    c, tok, db = api
    for t in EXTREME:
        r = c.get("/api/v1/incidents", params={"start": t}, headers=_h(tok["analyst"]))
        assert r.status_code in (200, 422), r.text
        if r.status_code == 422:
            _is_error(r, 422)
        _is_error(c.post("/api/v1/review/incidents", headers=_h(tok["reviewer"]), json={
            "why": "seen", "category": "fire", "lat": 48.1, "lon": 37.6,
            "uncertainty_m": 100.0, "time_start": t}), 422)
        raw = json.dumps({"text": "shelling", "lat": 48.0, "lon": 37.8, "category": "fire",
                          "time_start": t}).encode()
        _is_error(c.post("/api/v1/allegations", content=raw,
                         headers=_h(tok["public"]) | JSON), 422)
        assert _kept(db, raw), t
    # an end before the start is no period
    raw = json.dumps({"text": "x", "lat": 48.0, "lon": 37.8, "category": "fire",
                      "time_start": "2026-05-30T06:00:00Z",
                      "time_end": "2026-05-30T05:00:00Z"}).encode()
    _is_error(c.post("/api/v1/allegations", content=raw, headers=_h(tok["public"]) | JSON),
              422)
    assert _kept(db, raw)


# ------------------------------------------------------------------ malformed input
DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(("path", "raw"), [
    ("/api/v1/ingest/allegations",
     b'{"format": "trucewatch-allegations/1", "allegations": 5}'),
    ("/api/v1/ingest/firms", json.dumps({"format": "trucewatch-drone/1",
                                         "reports": []}).encode()),
    ("/api/v1/ingest/allegations", DEEP),
    ("/api/v1/ingest/drone", b'{"format": "trucewatch-signed/1", "payload": ' + DEEP + b"}"),
    ("/api/v1/allegations", DEEP),
    ("/api/v1/allegations", b'{"text": '),
    ("/api/v1/allegations", b'{"text": "x", "lat": "north"}'),
    ("/api/v1/allegations", b"[1, 2]"),
    ("/api/v1/allegations", b'{"text": "x", "allegations": 5}'),
], ids=["allegations-5", "json-to-firms", "deep-ingest", "deep-envelope", "deep-form",
        "not-json", "lat-text", "array", "unknown-field"])
def test_malformed_submissions_are_answered_and_kept(api: Api, path: str, raw: bytes) -> None:
    c, tok, db = api
    r = c.post(path, content=raw, headers=_h(tok["analyst"]) | JSON)
    assert 400 <= r.status_code < 500, r.text
    _is_error(r, r.status_code)
    assert _kept(db, raw), "the refused submission is kept verbatim"


def test_allegation_text_may_quote_the_envelope_format(api: Api) -> None:
    c, tok, _ = api
    r = c.post("/api/v1/allegations", headers=_h(tok["public"]), json={
        "text": 'they wrote {"format": "trucewatch-signed/1"} on the wall at 07:30',
        "lat": 48.0, "lon": 37.8, "category": "fire", "time_start": "2026-05-30T04:00:00Z"})
    assert r.status_code == 201, r.text


# ------------------------------------------------------------------ limits
async def _asgi(app: Any, method: str, path: str, headers: dict[str, str],
                chunks: Iterator[bytes]) -> tuple[int, dict[str, str], bytes, int]:
    """Call the app as a server would; returns status, headers, body and how many times
    the app asked for the request body."""
    reads = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "server": ("127.0.0.1", 8000),
             "client": ("127.0.0.1", 5000),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return (start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body,
            reads)


def _endless(size: int = 1 << 20) -> Iterator[bytes]:
    block = b"0" * size
    while True:
        yield block


def test_limits_apply_before_the_body_is_read(api: Api) -> None:
    c, tok, db = api
    app = c.app
    huge = str(400 << 20)

    def call(method: str, path: str, headers: dict[str, str],
             chunks: Iterator[bytes]) -> tuple[int, dict[str, str], dict[str, Any], int]:
        status, hdrs, body, reads = asyncio.run(_asgi(app, method, path, headers, chunks))
        doc = json.loads(body)
        assert doc["status"] == status and doc["message"], doc
        return status, hdrs, doc, reads

    # no token: 401 before a byte is read, whatever the body claims to be
    for path in ("/api/v1/allegations", "/api/v1/ingest/firms", "/api/v1/review/incidents"):
        status, _, _, reads = call("POST", path, {"content-length": huge,
                                                  "content-type": "application/json"},
                                   _endless())
        assert (status, reads) == (401, 0), path
    # a token: the declared length is checked before reading
    auth = {"authorization": f"Bearer {tok['analyst']}"}
    status, _, doc, reads = call("POST", "/api/v1/ingest/firms",
                                 auth | {"content-length": huge}, _endless())
    assert (status, reads, doc["error"]) == (413, 0, "too_large")
    status, _, _, reads = call("POST", "/api/v1/allegations",
                               auth | {"content-length": str(1 << 20),
                                       "content-type": "application/json"}, _endless())
    assert (status, reads) == (413, 0)
    # no length, or a false one: cut off past the limit
    for extra in ({}, {"content-length": "10"}):
        status, _, _, reads = call("POST", "/api/v1/ingest/firms", auth | extra, _endless())
        assert status == 413 and reads <= 52, (extra, reads)
        status, _, _, reads = call("POST", "/api/v1/allegations",
                                   auth | extra | {"content-type": "application/json"},
                                   _endless(4096))
        assert status == 413 and reads <= 260, (extra, reads)
    # an authenticated oversized submission is a refusal on the record
    store = open_store(db)
    assert sum("limit" in str(r["reason"]) for r in store.refused()) >= 3
    # a malformed length is a bad request
    status, _, _, reads = call("POST", "/api/v1/ingest/firms",
                               auth | {"content-length": "12abc"}, _endless())
    assert (status, reads) == (400, 0)


def test_the_role_matrix_holds_before_the_body(api: Api) -> None:
    """A role that may not use a route is refused before its body is read."""
    c, tok, _ = api
    status, _, _, reads = asyncio.run(_asgi(
        c.app, "POST", "/api/v1/ingest/firms",
        {"authorization": f"Bearer {tok['public']}", "content-length": str(400 << 20)},
        _endless()))
    assert (status, reads) == (403, 0)


def _bomb(size: int) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"0" * (1 << 20)
    return b"".join([*(z.compress(block) for _ in range(size >> 20)), z.flush()])


def test_a_gzip_bomb_is_refused_and_kept_as_received(api: Api) -> None:
    c, tok, db = api
    bomb = _bomb(200 << 20)
    assert len(bomb) < 400_000
    e = _is_error(c.post("/api/v1/ingest/firms", content=bomb,
                         headers=_h(tok["analyst"])), 413)
    assert "decompress" in e["message"]
    assert _kept(db, bomb)
    # a gzip file within bounds is accepted, and its copy is the bytes received
    small = gzip.compress((DATA / "modis_archive.csv").read_bytes())
    r = c.post("/api/v1/ingest/firms", content=small, headers=_h(tok["analyst"]))
    assert r.status_code == 200, r.text
    store = open_store(db)
    assert store.raw_input(hashlib.sha256(small).hexdigest()) == small


def test_an_unexpected_error_is_a_500_in_the_error_shape(api: Api) -> None:
    c, tok, _ = api
    app = c.app

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret detail of the bug")

    # nothing escapes the app (a server that sees an exception drops the connection)
    status, headers, body, _ = asyncio.run(_asgi(
        app, "GET", "/api/v1/boom", {"authorization": f"Bearer {tok['admin']}"}, iter([])))
    doc = json.loads(body)
    assert status == 500 and doc["error"] == "internal_error" and doc["status"] == 500
    assert "secret detail" not in body.decode() and "Traceback" not in body.decode()
    assert headers["content-type"] == "application/json"


# ------------------------------------------------------------------ roles and ingest
def test_a_sensor_token_posts_sensor_inputs_only(api: Api, scenario: ScenarioFiles) -> None:
    c, tok, db = api
    one_modis_row = b"\n".join((DATA / "modis_archive.csv").read_bytes().splitlines()[:2])
    drone = json.dumps({"format": "trucewatch-drone/1", "reports": []}).encode()
    allegations = b'{"format": "trucewatch-allegations/1", "allegations": []}'
    before = open_store(db).counts()
    for source, raw in (("firms", one_modis_row), ("drone", drone),
                        ("allegations", allegations)):
        e = _is_error(c.post(f"/api/v1/ingest/{source}", content=raw,
                             headers=_h(tok["sensor"])), 403)
        assert "sensor" in e["message"] and source in e["message"]
    assert open_store(db).counts() == before  # nothing stored: the next run is unharmed
    # the sensor network's own inputs reach the intake
    assert scenario.stations
    r = c.post("/api/v1/ingest/stations", content=scenario.stations.read_bytes(),
               headers=_h(tok["sensor"]))
    assert r.status_code != 403, r.text
    # the mapping, in one place
    sensor_kinds = {k for k in SourceKind if may_ingest(Role.SENSOR, k)}
    assert sensor_kinds == {SourceKind.STATION_INVENTORY, SourceKind.SENSOR_NETWORK,
                            SourceKind.ACOUSTIC, SourceKind.INFRASOUND, SourceKind.SEISMIC}
    for role in MATRIX["ingest"] - {Role.SENSOR}:
        assert all(may_ingest(role, k) for k in SourceKind)
    for role in set(Role) - MATRIX["ingest"]:
        assert not any(may_ingest(role, k) for k in SourceKind)


# ------------------------------------------------------------------ what roles learn
def test_liaisons_never_learn_of_unreviewed_incidents(api: Api) -> None:
    c, tok, db = api
    store = open_store(db)
    unreviewed = [i for i in store.incidents()
                  if i.status in (Status.AUTOMATIC, Status.PENDING_VERIFICATION)]
    auto = next(i for i in unreviewed if i.attributes.get("rule"))
    rule = auto.attributes["rule"]
    mine = next(a for a in store.allegations() if a["claimant"] == "Side B liaison office")
    ruling = next(r for r in store.rulings() if r["allegation_id"] == mine["allegation_id"])
    # the pipeline's ruling on the liaison's allegation rests on an automatic incident
    store.save_rulings([ruling | {
        "ruling": "violation", "reason": f"matched 1 incident(s) breaking {rule}",
        "evidence": {"incident_observations": [auto.observation_ids], "rules": [rule],
                     "coverage": []}}])
    store.close()
    liaison = c.get("/api/v1/allegations?limit=1000", headers=_h(tok["liaison"])).json()
    text = json.dumps(liaison)
    for inc in unreviewed:
        assert inc.id not in text
        for oid in inc.observation_ids:
            assert oid not in text, oid
    got = next(i["ruling"] for i in liaison["items"]
               if i["allegation"]["allegation_id"] == mine["allegation_id"])
    assert got["ruling"] == "pending" and rule not in json.dumps(got)
    assert all("incident_observations" not in (i["ruling"] or {}).get("evidence", {})
               for i in liaison["items"])
    # a role that sees unreviewed incidents sees the ruling as made
    full = c.get("/api/v1/allegations?limit=1000", headers=_h(tok["coalition"])).json()
    got = next(i["ruling"] for i in full["items"]
               if i["allegation"]["allegation_id"] == mine["allegation_id"])
    assert got["ruling"] == "violation" and got["evidence"]["incident_observations"]
    # the public GeoJSON holds reviewed (verified) incidents only
    name = next(f for f in c.get("/api/v1/bulletins", headers=_h(tok["public"])).json()[
        "files"] if f.endswith(".geojson"))
    geo = c.get(f"/api/v1/bulletins/{name}", headers=_h(tok["public"])).json()
    assert geo["features"]
    assert {f["properties"]["status"] for f in geo["features"]} == {"verified"}


# ------------------------------------------------------------------ bulletins
def test_bulletins_are_served_from_the_published_list(built_store: BuiltStore,
                                                      scenario: ScenarioFiles,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(built_store.out, out)
    store = open_store(built_store.where)
    admin, public = store.add_token("a", "admin"), store.add_token("p", "public")
    published = store.products()
    store.close()
    assert published
    c = TestClient(create_app(built_store.where, scenario.agreement, out),
                   raise_server_exceptions=False)
    listed = c.get("/api/v1/bulletins", headers=_h(admin)).json()["files"]
    assert sorted(listed) == sorted(p["name"] for p in published)
    assert sorted(c.get("/api/v1/bulletins", headers=_h(public)).json()["files"]) == sorted(
        p["name"] for p in published if p["audience"] == "public")
    first = published[0]
    r = c.get(f"/api/v1/bulletins/{first['name']}", headers=_h(admin))
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == first["sha256"]
    # a file in the folder that was never published is not served, even well named
    (out / "bulletin-2026-06-01-public.json").write_text("{}")
    _is_error(c.get("/api/v1/bulletins/bulletin-2026-06-01-public.json", headers=_h(admin)),
              404)
    # a symlink is never followed, even one standing in for a published file
    secret = tmp_path / "secret.json"
    secret.write_bytes((out / first["name"]).read_bytes())
    (out / first["name"]).unlink()
    (out / first["name"]).symlink_to(secret)
    r = c.get(f"/api/v1/bulletins/{first['name']}", headers=_h(admin))
    assert r.status_code >= 400
    _is_error(r, r.status_code)
    # a published file changed since: a clear error, not the changed bytes
    other = published[1]
    (out / other["name"]).write_bytes((out / other["name"]).read_bytes() + b" ")
    e = _is_error(c.get(f"/api/v1/bulletins/{other['name']}", headers=_h(admin)), 409)
    assert "changed" in e["message"] and other["sha256"][:12] in e["message"]
    # restricted products stay restricted
    restricted = next(p for p in published if p["audience"] == "restricted")
    _is_error(c.get(f"/api/v1/bulletins/{restricted['name']}", headers=_h(public)), 403)


# ------------------------------------------------------------------ HTTP details
def test_http_details(api: Api) -> None:
    c, tok, _ = api
    r = c.delete("/api/v1/incidents", headers=_h(tok["admin"]))
    _is_error(r, 405)
    assert r.headers["allow"] == "GET"
    r = c.put("/api/v1/review/inc-1/claim", headers=_h(tok["admin"]))
    _is_error(r, 405)
    assert r.headers["allow"] == "POST"
    # two Authorization headers: refused, not the first one taken
    two = [("Authorization", f"Bearer {tok['public']}"),
           ("Authorization", f"Bearer {tok['admin']}")]
    e = _is_error(c.get("/api/v1/me", headers=two), 400)
    assert "Authorization" in e["message"]
    # releasing someone else's claim
    q = c.get("/api/v1/review/queue", headers=_h(tok["analyst"])).json()["items"]
    inc = q[0]["id"]
    assert c.post(f"/api/v1/review/{inc}/claim", headers=_h(tok["analyst"])).status_code == 200
    r = c.post(f"/api/v1/review/{inc}/release", headers=_h(tok["reviewer"]))
    assert r.status_code in (403, 409)
    _is_error(r, r.status_code)
    _is_error(c.post(f"/api/v1/review/{inc}/claim", headers=_h(tok["reviewer"])), 409)
    assert c.post(f"/api/v1/review/{inc}/release",
                  headers=_h(tok["analyst"])).status_code == 200


# ------------------------------------------------------------------ browser sessions
def test_cookie_sessions_with_csrf(api: Api) -> None:
    c, tok, _ = api
    c = TestClient(c.app, base_url="http://127.0.0.1:8000")  # loopback: not Secure
    _is_error(c.post("/api/v1/session", json={"token": "tw_wrong"}), 401)
    r = c.post("/api/v1/session", json={"token": tok["analyst"]})
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert "secure" not in cookie.lower()  # plain http on loopback
    assert tok["analyst"] not in r.text  # the token never comes back to the page
    csrf = r.json()["csrf"]
    assert r.json()["me"]["role"] == "analyst"
    # the cookie authenticates reads
    assert c.get("/api/v1/me").json()["name"] == "analyst-user"
    assert c.get("/api/v1/session").json()["csrf"] == csrf
    # a state-changing request with the cookie needs the CSRF token
    q = c.get("/api/v1/review/queue").json()["items"]
    inc = q[0]["id"]
    e = _is_error(c.post(f"/api/v1/review/{inc}/claim"), 403)
    assert "CSRF" in e["message"]
    _is_error(c.post(f"/api/v1/review/{inc}/claim", headers={"X-CSRF-Token": "nope"}), 403)
    # ... and a request from another origin is refused even with it
    _is_error(c.post(f"/api/v1/review/{inc}/claim", headers={
        "X-CSRF-Token": csrf, "Origin": "https://evil.example"}), 403)
    assert c.post(f"/api/v1/review/{inc}/claim",
                  headers={"X-CSRF-Token": csrf}).status_code == 200
    # Bearer tokens (scripts, sensors) need no CSRF token
    c2 = TestClient(c.app)
    assert c2.post(f"/api/v1/review/{inc}/release",
                   headers=_h(tok["analyst"])).status_code == 200
    # signing out clears the cookie
    r = c.request("DELETE", "/api/v1/session", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    _is_error(c.get("/api/v1/me"), 401)
    # over https the cookie is Secure
    s = TestClient(c.app, base_url="https://testserver")
    assert "secure" in s.post("/api/v1/session",
                              json={"token": tok["analyst"]}).headers["set-cookie"].lower()


def test_every_page_has_a_strict_content_security_policy(api: Api) -> None:
    c, _, _ = api
    for path in ("/", "/static/app.js", "/api/v1/health", "/docs", "/redoc", "/nowhere"):
        csp = c.get(path).headers.get("content-security-policy", "")
        directives = dict([*d.strip().split(" ", 1), ""][:2] for d in csp.split(";")
                          if d.strip())
        script = directives.get("script-src", "")
        assert script.startswith("'self'"), (path, csp)
        assert "unsafe-inline" not in script and "unsafe-eval" not in script, (path, csp)
        assert directives.get("object-src") == "'none'" and "frame-ancestors" in directives
    # the dashboard's page has no inline script
    html = c.get("/").text
    assert "<script>" not in html and not re.search(r"\son[a-z]+\s*=", html)


def test_observations_route_compares_times(api: Api) -> None:
    """``/observations``: stored times to the second and to the millisecond, ordered and
    filtered as instants in the database (as text "…T10:00:00.500Z" sorts before
    "…T10:00:00Z"), with bounds of any UTC offset; a malformed bound is a 422 in the
    error shape."""
    from datetime import UTC, datetime

    from test_storage import _instant_batch

    c, tok, db = api
    t10 = datetime(2026, 5, 30, 10, 0, tzinfo=UTC)
    store = open_store(db)
    try:
        store.ingest(_instant_batch("o-ms", t10 + timedelta(milliseconds=500), b"millis"))
        store.ingest(_instant_batch("o-sec", t10, b"seconds"))
    finally:
        store.close()
    h = _h(tok["analyst"])

    def ids(**params: str) -> list[str]:
        r = c.get("/api/v1/observations", params={"source_kind": "analyst", **params},
                  headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == len(body["items"]) + int(params.get("offset", 0)) + (
            1 if "limit" in params else 0)
        return [o["id"] for o in body["items"]]

    assert ids() == ["o-sec", "o-ms"]
    assert ids(limit="1") == ["o-sec"] and ids(offset="1") == ["o-ms"]  # total 2 each
    mid = t10 + timedelta(milliseconds=250)
    for text in (format_time(mid), "2026-05-30T10:00:00.25Z",
                 mid.astimezone(timezone(timedelta(hours=3))).isoformat(),
                 mid.astimezone(timezone(-timedelta(hours=5, minutes=30))).isoformat()):
        assert ids(start=text) == ["o-ms"], text
        assert ids(end=text) == ["o-sec"], text
    assert ids(start=format_time(t10), end="2026-05-30T10:00:01Z") == ["o-sec", "o-ms"]
    for bad in ("yesterday", "2026-05-30T10:00:00", "1717059600", "2026-13-40T10:00:00Z"):
        for key in ("start", "end"):
            e = _is_error(c.get("/api/v1/observations",
                                params={"source_kind": "analyst", key: bad}, headers=h), 422)
            assert e["error"] == "validation_error", (key, bad, e)
    for t in EXTREME:
        r = c.get("/api/v1/observations", params={"start": t}, headers=h)
        assert r.status_code in (200, 422), r.text
        if r.status_code == 422:
            _is_error(r, 422)
