"""The REST API: error shape, role-by-endpoint matrix, ingest, review, allegations,
what each role may see, and offline docs (issue 5, first part)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from trucewatch.api import create_app
from trucewatch.api.app import Error
from trucewatch.api.auth import MATRIX, Role, may_ingest
from trucewatch.demo import ScenarioFiles
from trucewatch.model.enums import SourceKind
from trucewatch.storage import open_store

if TYPE_CHECKING:
    from conftest import BuiltStore

# a client, a token per role, and where its store is (a SQLite file or a PostgreSQL URL)
Api = tuple[TestClient, dict[str, str], str]


@pytest.fixture()
def api(built_store: BuiltStore, scenario: ScenarioFiles) -> Api:
    return make_api(built_store, scenario)


def make_api(built: BuiltStore, scenario: ScenarioFiles) -> Api:
    """A client of the app over the test's own copy of the built cycle's store, on each
    backend (``built_store``: SQLite and PostGIS), with a token per role (and a second
    reviewer); other test modules build their ``api`` fixture with it."""
    db = built.where
    store = open_store(db)
    tokens = {r.value: store.add_token(f"{r.value}-user", r.value,
                                       "Side B liaison office" if r == Role.LIAISON else None)
              for r in Role}
    store.add_token("reviewer-2", "reviewer")
    tokens["reviewer-2"] = store.add_token("reviewer-3", "reviewer")
    store.close()
    app = create_app(db, scenario.agreement, built.out, scenario.keys)
    return TestClient(app, raise_server_exceptions=False), tokens, db


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _is_error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    Error.model_validate(body)  # the one shape, every field present and typed
    assert body["status"] == status and body["message"]
    return dict(body)


def test_one_error_shape(api: Api) -> None:
    c, tok, _ = api
    _is_error(c.get("/api/v1/incidents"), 401)
    _is_error(c.get("/api/v1/incidents", headers=_h("tw_wrong")), 401)
    _is_error(c.get("/api/v1/incidents", headers=_h(tok["public"])), 403)
    _is_error(c.get("/api/v1/incidents/inc-nope", headers=_h(tok["admin"])), 404)
    _is_error(c.get("/api/v1/nowhere", headers=_h(tok["admin"])), 404)
    e = _is_error(c.get("/api/v1/incidents?limit=0", headers=_h(tok["admin"])), 422)
    assert e["error"] == "validation_error" and e["details"][0]["loc"] == ["query", "limit"]
    _is_error(c.get("/api/v1/incidents?bbox=1,2,3", headers=_h(tok["admin"])), 422)
    _is_error(c.post("/api/v1/ingest/satellite", content=b"x", headers=_h(tok["admin"])), 404)
    _is_error(c.delete("/api/v1/incidents", headers=_h(tok["admin"])), 405)
    # strict validation: a bool is not a float
    e = _is_error(c.post("/api/v1/allegations", json={"text": "x", "lat": True, "lon": 37.0},
                         headers=_h(tok["public"])), 422)
    assert e["details"][0]["loc"][-1] == "lat"
    spec = c.get("/openapi.json").json()
    assert "Error" in spec["components"]["schemas"]
    assert "403" in spec["paths"]["/api/v1/incidents"]["get"]["responses"]


# (method, path, body, action in MATRIX)
ENDPOINTS: list[tuple[str, str, Any, str]] = [
    ("get", "/api/v1/me", None, "me"),
    ("post", "/api/v1/ingest/allegations", b'{"format": "trucewatch-allegations/1", '
     b'"allegations": []}', "ingest"),
    ("get", "/api/v1/observations?source_kind=drone", None, "observations"),
    ("get", "/api/v1/incidents", None, "incidents"),
    ("get", "/api/v1/violations", None, "violations"),
    ("get", "/api/v1/aggregates", None, "aggregates"),
    ("get", "/api/v1/review/queue", None, "review"),
    ("post", "/api/v1/allegations", {"text": "Вчора о 07:10 обстріл Бахмута",
                                     "category": "explosion"}, "allegations_file"),
    ("get", "/api/v1/allegations", None, "allegations_read"),
    ("get", "/api/v1/bulletins", None, "bulletins_public"),
    ("get", "/api/v1/products", None, "bulletins_public"),
    ("get", "/api/v1/bulletins/bulletin-2026-05-31-public.json", None, "bulletins_public"),
    ("get", "/api/v1/bulletins/bulletin-2026-05-31-restricted.json", None,
     "bulletins_restricted"),
    ("get", "/api/v1/agreement", None, "agreement"),
    ("get", "/api/v1/coverage", None, "coverage"),
    ("get", "/api/v1/coalition", None, "coalition"),
    # exports and the public's view (not published: a token's role decides)
    ("get", "/api/v1/incidents.csv", None, "incidents"),
    ("get", "/api/v1/agreement.gpkg", None, "agreement"),
    ("get", "/api/v1/public/counts", None, "bulletins_public"),
    ("get", "/api/v1/public/incidents", None, "bulletins_public"),
]


def test_role_by_endpoint_matrix(api: Api) -> None:
    c, tok, _ = api
    seen = set()
    for method, path, body, action in ENDPOINTS:
        seen.add(action)
        for role in Role:
            kw: dict[str, Any] = {"headers": _h(tok[role.value])}
            if isinstance(body, bytes):
                kw["content"] = body
            elif body is not None:
                kw["json"] = body
            r = getattr(c, method)(path, **kw)
            # a token's role also binds which sources it may post (a sensor: its own)
            if role in MATRIX[action] and (action != "ingest" or
                                           may_ingest(role, SourceKind.ALLEGATION)):
                assert r.status_code < 400, (role, path, r.text)
            else:
                _is_error(r, 403)
    assert seen == set(MATRIX) - {"tokens"}  # every guarded action is walked


def test_what_each_role_sees(api: Api) -> None:
    c, tok, _ = api
    full = c.get("/api/v1/incidents?limit=1000", headers=_h(tok["coalition"])).json()
    liaison = c.get("/api/v1/incidents?limit=1000", headers=_h(tok["liaison"])).json()
    assert any(i["status"] == "automatic" for i in full["items"])
    assert liaison["items"] and all(i["status"] not in ("automatic", "pending_verification")
                                    for i in liaison["items"])
    auto = next(i["id"] for i in full["items"] if i["status"] == "automatic")
    _is_error(c.get(f"/api/v1/incidents/{auto}", headers=_h(tok["liaison"])), 404)
    # hubs: exact locations for staff and coalition only (point and zone polygon)
    def hub_ids(role: str) -> set[str]:
        feats = c.get("/api/v1/agreement", headers=_h(tok[role])).json()["features"]
        return {f["properties"].get("id") for f in feats} & {"hub-dnipro", "site:hub-dnipro"}
    assert hub_ids("coalition") == {"hub-dnipro", "site:hub-dnipro"}
    assert hub_ids("public") == set() == hub_ids("liaison")
    # evidence media: staff only
    obs_a = c.get("/api/v1/observations", headers=_h(tok["analyst"])).json()["items"]
    obs_c = c.get("/api/v1/observations", headers=_h(tok["coalition"])).json()["items"]
    assert any("media" in o["attributes"] for o in obs_a)
    assert obs_c and not any("media" in o["attributes"] for o in obs_c)
    # public: bulletins list shows public files only
    files = c.get("/api/v1/bulletins", headers=_h(tok["public"])).json()["files"]
    assert files and all("-public." in f for f in files)
    # liaison: own party's allegations only
    mine = c.get("/api/v1/allegations", headers=_h(tok["liaison"])).json()["items"]
    assert mine and all(a["allegation"]["claimant"] == "Side B liaison office" for a in mine)


def test_filters_and_pagination(api: Api) -> None:
    c, tok, _ = api
    h = _h(tok["analyst"])
    every = c.get("/api/v1/incidents?limit=1000", headers=h).json()
    assert every["total"] == len(every["items"]) > 3
    p1 = c.get("/api/v1/incidents?limit=2", headers=h).json()
    p2 = c.get(f"/api/v1/incidents?limit=2&offset={p1['next_offset']}", headers=h).json()
    assert [i["id"] for i in p1["items"] + p2["items"]] == [i["id"] for i in
                                                            every["items"][:4]]
    one = every["items"][0]
    lat, lon = one["location"]["lat"], one["location"]["lon"]
    box = f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"
    got = c.get(f"/api/v1/incidents?bbox={box}", headers=h).json()["items"]
    assert one["id"] in [i["id"] for i in got] and len(got) < every["total"]
    ver = c.get("/api/v1/incidents?status=verified", headers=h).json()["items"]
    assert ver and all(i["status"] == "verified" for i in ver)
    cat = c.get("/api/v1/incidents?category=fire", headers=h).json()["items"]
    assert all(i["category"] == "fire" for i in cat)
    later = c.get("/api/v1/incidents?start=2026-05-30T00:00:00Z", headers=h).json()["items"]
    assert later and all(i["time_start"] >= "2026-05-30" for i in later)


def test_review_through_the_api(api: Api) -> None:
    c, tok, db = api
    q = c.get("/api/v1/review/queue", headers=_h(tok["analyst"])).json()["items"]
    inc = next(i["id"] for i in q if i["status"] == "automatic")
    assert c.post(f"/api/v1/review/{inc}/claim", headers=_h(tok["analyst"])).status_code == 200
    _is_error(c.post(f"/api/v1/review/{inc}/claim", headers=_h(tok["reviewer"])), 409)
    r = c.post(f"/api/v1/review/{inc}/decide", headers=_h(tok["analyst"]),
               json={"status": "pending_verification", "why": "frame agrees"})
    assert r.json()["status"] == "pending_verification"
    c.post(f"/api/v1/review/{inc}/claim", headers=_h(tok["analyst"]))
    e = _is_error(c.post(f"/api/v1/review/{inc}/decide", headers=_h(tok["analyst"]),
                         json={"status": "verified", "why": "me"}), 403)
    assert "only a reviewer" in e["message"]
    c.post(f"/api/v1/review/{inc}/release", headers=_h(tok["analyst"]))
    c.post(f"/api/v1/review/{inc}/claim", headers=_h(tok["reviewer"]))
    r = c.post(f"/api/v1/review/{inc}/decide", headers=_h(tok["reviewer"]),
               json={"status": "verified", "why": "second look"})
    assert r.json()["status"] == "verified"
    _is_error(c.post(f"/api/v1/review/{inc}/decide", headers=_h(tok["reviewer"]),
                     json={"status": "nonsense", "why": "x"}), 422)
    added = c.post("/api/v1/review/incidents", headers=_h(tok["reviewer"]), json={
        "why": "patrol turned back", "category": "restriction_of_monitors", "lat": 48.1,
        "lon": 37.6, "uncertainty_m": 100.0, "time_start": "2026-05-30T08:00:00Z"})
    assert added.status_code == 201
    # every write is attributed to the token's owner in the audit chain
    store = open_store(db)
    actors = {(e.actor, e.action) for e in store.audit_log()}
    assert ("analyst-user", "decide:pending_verification") in actors
    assert ("reviewer-user", "decide:verified") in actors
    assert ("reviewer-user", "added") in actors
    assert store.verify() == []


def test_ingest_and_allegations(api: Api,
                                scenario: ScenarioFiles) -> None:
    c, tok, db = api
    truth = json.loads(scenario.truth.read_text())["multisource"]
    envelope = (scenario.root / truth["drone_files"][0]).read_bytes()
    # already in the store from the cycle: recognised as the same submission
    r = c.post("/api/v1/ingest/drone", content=envelope, headers=_h(tok["analyst"]))
    assert r.status_code == 200 and r.json()["new"] == 0
    replay = json.dumps(json.loads(envelope)).encode()
    e = _is_error(c.post("/api/v1/ingest/drone", content=replay, headers=_h(tok["analyst"])),
                  409)
    assert e["error"] == "submission_refused" and "replayed" in e["message"]
    unsigned = json.dumps({"format": "trucewatch-drone/1", "reports": []}).encode()
    e = _is_error(c.post("/api/v1/ingest/drone", content=unsigned,
                         headers=_h(tok["analyst"])), 422)
    assert "requires an Ed25519 signature" in e["message"]
    _is_error(c.post("/api/v1/ingest/firms", content=b"", headers=_h(tok["analyst"])), 400)
    r = c.post("/api/v1/allegations", headers=_h(tok["public"]), json={
        "text": "Explosions near Toretsk on 30 May 2026 at 07:30", "category": "explosion"})
    assert r.status_code == 201
    aid = r.json()["name"]
    store = open_store(db)
    doc = next(a for a in store.allegations() if a["allegation_id"] == aid)
    assert doc["claimant_kind"] == "public" and doc["claimant"] == "public-user"
    assert doc["resolved"]["where"] == "text:Toretsk"
    e = _is_error(c.post("/api/v1/allegations", headers=_h(tok["public"]),
                         json={"place": "Nowhereville", "time_start": "2026-05-30T04:00:00Z"}),
                  422)
    assert "unknown place" in e["message"]
    assert any(x["source"] == "drone" and "replayed" in str(x["reason"])
               for x in store.refused())


def test_docs_are_served_offline(api: Api) -> None:
    c, _, _ = api
    for page in ("/docs", "/redoc"):
        html = c.get(page).text
        assert "http://" not in html and "https://" not in html, page
    assert c.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    spec = c.get("/openapi.json").json()
    assert len(spec["paths"]) >= 15


def test_coverage_says_what_could_be_seen(api: Api,
                                          scenario: ScenarioFiles) -> None:
    from datetime import UTC, datetime

    from shapely.geometry import Point, shape

    from trucewatch.adjudication.allegations import Coverage
    from trucewatch.ingest.sensors import read_stations

    c, tok, _ = api
    doc = c.get("/api/v1/coverage", headers=_h(tok["coalition"])).json()
    layers = [f["properties"]["layer"] for f in doc["features"]]
    assert "sensor_coverage" in layers and layers.count("patrol") == 2  # UA-07, EU-12
    assert any(d["data"] is False for d in doc["satellite_days"])  # the gap days
    # the area drawn is the one the rulings use: points inside are covered, outside not
    assert scenario.stations
    st = read_stations(scenario.root / "sensors" / "stations.csv")  # the signed file's payload
    cov = Coverage(stations=list(zip(st["latitude"], st["longitude"], strict=True)),
                   sensor_periods=[(datetime(2026, 5, 30, 4, tzinfo=UTC),
                                    datetime(2026, 5, 30, 10, tzinfo=UTC))])
    area = shape(next(f for f in doc["features"]
                      if f["properties"]["layer"] == "sensor_coverage")["geometry"])
    t0, t1 = datetime(2026, 5, 30, 5, tzinfo=UTC), datetime(2026, 5, 30, 6, tzinfo=UTC)
    lat0, lon0 = float(st["latitude"].mean()), float(st["longitude"].mean())
    for dlat, dlon in ((0, 0), (0.3, 0.0), (0, 0.6), (-0.5, 0), (1.2, 1.5)):
        p = (lat0 + dlat, lon0 + dlon)
        inside = area.buffer(0.02).contains(Point(p[1], p[0]))
        strict = area.buffer(-0.02).contains(Point(p[1], p[0]))
        covered = cov.sensors(p[0], p[1], t0, t1)
        assert (covered and inside) or (not covered and not strict), (p, covered)


def test_the_service_on_postgis(pg_url: str, scenario: ScenarioFiles) -> None:
    """The same app over PostgreSQL + PostGIS, with pooled connections."""
    from trucewatch.storage import open_store

    store = open_store(pg_url)
    token = store.add_token("anna", "analyst")
    store.close()
    c = TestClient(create_app(pg_url, scenario.agreement), raise_server_exceptions=False)
    h = _h(token)
    for _ in range(12):  # more requests than the pool holds connections
        assert c.get("/api/v1/me", headers=h).json()["name"] == "anna"
    doc = json.dumps({"format": "trucewatch-allegations/1", "allegations": [
        {"allegation_id": "PG-1", "claimant": "x", "claimant_kind": "party",
         "received_at": "2026-05-31T09:00:00Z", "lat": 48.0, "lon": 37.8,
         "time_start": "2026-05-30T04:00:00Z", "category": "explosion"}]}).encode()
    r = c.post("/api/v1/ingest/allegations", content=doc, headers=h)
    assert r.status_code == 200 and r.json()["new"] == 0 and r.json()["rows"] == 1
    assert [a["allegation"]["allegation_id"]
            for a in c.get("/api/v1/allegations", headers=h).json()["items"]] == ["PG-1"]
    added = c.post("/api/v1/review/incidents", headers=h, json={
        "why": "seen", "category": "fire", "lat": 48.1, "lon": 37.6, "uncertainty_m": 100.0,
        "time_start": "2026-05-30T08:00:00Z"})
    assert added.status_code == 201
    box = c.get("/api/v1/incidents?bbox=37.5,48.0,37.7,48.2", headers=h).json()
    assert [i["id"] for i in box["items"]] == [added.json()["id"]]
    _is_error(c.get("/api/v1/incidents/inc-nope", headers=h), 404)
    store = open_store(pg_url)
    assert ("anna", "added") in {(e.actor, e.action) for e in store.audit_log()}
    assert store.verify() == []
    store.close()


def test_products_listing_by_role(api: Api) -> None:
    """GET /products: every published product for roles that may read restricted
    bulletins, the public variants only for the others, none for a sensor, 401 without
    a token; each entry's URL serves the file with the SHA-256 it lists."""
    c, tok, db = api
    _is_error(c.get("/api/v1/products"), 401)
    store = open_store(db)
    published = store.products()
    store.close()
    assert {p["audience"] for p in published} == {"public", "restricted"}
    for role in Role:
        r = c.get("/api/v1/products", headers=_h(tok[role.value]))
        if role not in MATRIX["bulletins_public"]:
            _is_error(r, 403)
            continue
        assert r.status_code == 200, (role, r.text)
        items = r.json()["products"]
        want = [p for p in published if p["audience"] == "public"
                or role in MATRIX["bulletins_restricted"]]
        assert [i["name"] for i in items] == [p["name"] for p in want], role
        for i, p in zip(items, want, strict=True):
            assert (i["date"], i["kind"], i["variant"], i["sha256"]) == (
                p["report_date"], p["kind"], p["audience"], p["sha256"])
            assert i["revision"] == (int(p["name"].split(".rev")[1].split(".")[0])
                                     if ".rev" in p["name"] else 1)
            assert i["published_at"] and i["url"] == f"/api/v1/bulletins/{p['name']}"
    # the listed URL serves the listed bytes (one of each variant)
    import hashlib
    items = c.get("/api/v1/products", headers=_h(tok["analyst"])).json()["products"]
    for variant in ("public", "restricted"):
        one = next(i for i in items if i["variant"] == variant)
        body = c.get(one["url"], headers=_h(tok["analyst"])).content
        assert hashlib.sha256(body).hexdigest() == one["sha256"]
    # and the OpenAPI document gives the typed model with its example
    spec = c.get("/openapi.json").json()
    schema = spec["paths"]["/api/v1/products"]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"]
    assert schema["$ref"].endswith("/Products")
    assert spec["components"]["schemas"]["Products"]["examples"]
