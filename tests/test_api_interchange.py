"""Interchange and the public's view (issue 15, items 3 and 7) and the fixes from the last
hostile test of the API: RFC 7946 winding of every polygon served, precision fields and
"X km DIR of PLACE" on every incident location, CSV / KML / GeoPackage exports read back
with GDAL, the OpenAPI document's security scheme and typed responses, the public's
view with and without a token, an invalid observations bbox, damaged gzip, and opaque
server-side session cookies."""

from __future__ import annotations

import csv
import gzip
import io
import re
import warnings
import xml.etree.ElementTree as ET
from typing import Any

import pyogrio  # type: ignore[import-untyped]
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import LinearRing, shape

from conftest import DATA, BuiltStore
from test_api import _h, _is_error, make_api
from trucewatch.api import create_app
from trucewatch.api.geo import grid_step_deg, rewind, where_prec
from trucewatch.demo import ScenarioFiles
from trucewatch.geo.gazetteer import compass, describe
from trucewatch.storage import open_store

Api = tuple[TestClient, dict[str, str], str]
PLACE = re.compile(r"^(\d+ km (N|NE|E|SE|S|SW|W|NW) of |at ).+")
DECIDED = {"verified", "unverifiable", "inaccurate", "duplicate", "rejected"}


@pytest.fixture()
def api(built_store: BuiltStore, scenario: ScenarioFiles) -> Api:
    return make_api(built_store, scenario)


def _public_app(api: Api, scenario: ScenarioFiles, built: BuiltStore, **kw: Any
                ) -> TestClient:
    _, _, db = api
    return TestClient(create_app(db, scenario.agreement, built.out, scenario.keys, **kw),
                      raise_server_exceptions=False)


def _polygons(obj: Any) -> list[list[list[Any]]]:
    """Every polygon (its rings) anywhere in a JSON document."""
    out: list[list[list[Any]]] = []
    if isinstance(obj, list):
        for x in obj:
            out += _polygons(x)
    elif isinstance(obj, dict):
        if obj.get("type") == "Polygon":
            out.append(obj["coordinates"])
        elif obj.get("type") == "MultiPolygon":
            out += obj["coordinates"]
        else:
            for v in obj.values():
                out += _polygons(v)
    return out


def _wound_rfc7946(rings: list[list[Any]]) -> bool:
    return LinearRing(rings[0]).is_ccw and all(not LinearRing(h).is_ccw for h in rings[1:])


def _gdal(content: bytes) -> dict[str, tuple[Any, ...]]:
    """Every layer of a file GDAL reads: (metadata, fids, geometry WKB, fields)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an in-memory file's extension
        layers = pyogrio.list_layers(io.BytesIO(content))
        return {str(name): pyogrio.raw.read(io.BytesIO(content), layer=str(name))
                for name, _ in layers}


# ------------------------------------------------------------------ RFC 7946 winding
def test_every_polygon_served_is_wound_as_rfc7946_says(api: Api) -> None:
    c, tok, _ = api
    h = _h(tok["admin"])
    served = [c.get(p, headers=h).json() for p in ("/api/v1/agreement", "/api/v1/coverage")]
    served.append(c.get("/api/v1/agreement.geojson", headers=h).json())
    polygons = [p for doc in served for p in _polygons(doc)]
    assert len(polygons) >= 5  # zones, sectors and the coverage areas
    assert all(_wound_rfc7946(p) for p in polygons)
    # the agreement's own geometry (shapely) is not wound that way everywhere: the check
    # can fail
    assert any(not LinearRing(r).is_ccw for r in [[[0, 0], [0, 1], [1, 1], [0, 0]]])


def test_rewind_turns_exteriors_counter_clockwise_and_holes_clockwise() -> None:
    cw = [[0, 0], [0, 10], [10, 10], [10, 0], [0, 0]]
    ccw_hole = [[2, 2], [4, 2], [4, 4], [2, 4], [2, 2]]
    doc = {"type": "Feature", "properties": {"type": "Polygon"},
           "geometry": {"type": "MultiPolygon", "coordinates": [[cw, ccw_hole]]}}
    out = rewind(doc)
    rings = out["geometry"]["coordinates"][0]
    assert _wound_rfc7946(rings) and not _wound_rfc7946([cw, ccw_hole])
    assert shape(out["geometry"]).equals(shape(doc["geometry"]))  # same shape
    assert out["properties"] == {"type": "Polygon"}  # not a geometry: left alone


# ------------------------------------------------------------------ place and precision
def test_every_incident_location_has_place_and_precision(api: Api) -> None:
    c, tok, _ = api
    h = _h(tok["analyst"])
    items = c.get("/api/v1/incidents?limit=1000", headers=h).json()["items"]
    assert items
    for i in items:
        loc = i["location"]
        assert PLACE.match(loc["place"]), loc
        assert loc["precision_km"] == round(loc["uncertainty_m"] / 1000, 3)
        assert loc["where_prec"] == where_prec(loc["precision_km"])
    one = c.get(f"/api/v1/incidents/{items[0]['id']}", headers=h).json()
    assert one["location"]["place"] == items[0]["location"]["place"]
    queue = c.get("/api/v1/review/queue", headers=h).json()["items"]
    assert all(PLACE.match(q["location"]["place"]) for q in queue)


def test_describe_names_distance_and_direction_from_the_nearest_place() -> None:
    from trucewatch.geo.gazetteer import Gazetteer, Place

    a, c = Place(1, "Avdiivka", 48.0, 38.0, 30000, "14"), \
        Place(2, "Chasiv Yar", 48.1, 38.13, 12000, "14")
    gaz = Gazetteer([a, c], {}, {})
    assert describe(48.0, 38.0, gaz) == "in Avdiivka"
    assert describe(47.95, 38.0, gaz) == "6 km S of Avdiivka"  # 0.05 degree: 5.6 km
    assert describe(48.1, 38.23, gaz) == "7 km E of Chasiv Yar"
    # nearest by distance on the ground, not by degrees: 0.13 degree of longitude east
    # of Avdiivka (9.7 km) is nearer than 0.1 degree of latitude from Chasiv Yar (11.1)
    assert describe(48.0, 38.13, gaz) == "10 km E of Avdiivka"
    assert [compass(b) for b in (0, 44, 46, 90, 180, 225, 300, 359)] == [
        "N", "NE", "NE", "E", "S", "SW", "NW", "N"]
    # the real gazetteer: a real town, by its own coordinates
    real = Gazetteer.load()
    zolote = next(p for p in real.places if p.name == "Zolote")
    assert describe(zolote.lat, zolote.lon, real) == "in Zolote"


# ------------------------------------------------------------------ exports
def test_incident_exports_read_back_with_the_json_fields(api: Api) -> None:
    c, tok, _ = api
    h = _h(tok["analyst"])
    items = c.get("/api/v1/incidents?limit=1000", headers=h).json()["items"]
    ids = [i["id"] for i in items]
    r = c.get("/api/v1/incidents.csv", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["id"] for x in rows] == ids
    first = items[0]
    assert rows[0]["place"] == first["location"]["place"]
    assert float(rows[0]["lat"]) == pytest.approx(first["location"]["lat"])
    assert rows[0]["observation_ids"].split(";") == first["observation_ids"]
    # every field of the JSON is a column (location spread out)
    keys = {k for i in items for k in i if k != "location"} | set(first["location"])
    assert keys <= set(rows[0])
    # GeoPackage: one layer, its points where the JSON says, same ids and places
    g = c.get("/api/v1/incidents.gpkg", headers=h)
    assert g.status_code == 200 and g.content[:16] == b"SQLite format 3\x00"
    meta, _, geoms, fields = _gdal(g.content)["incidents"]
    col = {n: list(v) for n, v in zip(meta["fields"], fields, strict=True)}
    assert meta["crs"] == "EPSG:4326" and col["id"] == ids
    assert col["place"] == [i["location"]["place"] for i in items]
    pts = shapely.from_wkb(geoms)
    assert [round(p.y, 6) for p in pts] == [round(i["location"]["lat"], 6) for i in items]
    # KML: one placemark an incident, named by its id, the fields in its ExtendedData
    k = c.get("/api/v1/incidents.kml", headers=h)
    root = ET.fromstring(k.content)
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    marks = root.findall(".//k:Placemark", ns)
    assert [m.findtext("k:name", namespaces=ns) for m in marks] == ids
    data = {d.get("name"): d.text for d in marks[0].findall(".//k:SimpleData", ns)}
    assert data["place"] == first["location"]["place"] and data["status"] == first["status"]
    _lon, lat, *_ = (marks[0].findtext(".//k:coordinates", namespaces=ns) or "").split(",")
    assert float(lat) == pytest.approx(first["location"]["lat"])
    # filters as the JSON route
    one = c.get(f"/api/v1/incidents.csv?category={first['category']}&status="
                f"{first['status']}", headers=h)
    assert {x["category"] for x in csv.DictReader(io.StringIO(one.text))} == {
        first["category"]}
    _is_error(c.get("/api/v1/incidents.shp", headers=h), 422)
    _is_error(c.get("/api/v1/incidents.csv?bbox=200,0,0,0", headers=h), 422)


def test_exports_follow_the_role_rules_of_the_json(api: Api) -> None:
    c, tok, _ = api
    every = {i["id"]: i["status"] for i in c.get(
        "/api/v1/incidents?limit=1000", headers=_h(tok["analyst"])).json()["items"]}
    assert set(every.values()) - DECIDED  # there are unreviewed incidents to hide
    liaison = _h(tok["liaison"])
    seen = {i["id"] for i in c.get("/api/v1/incidents?limit=1000",
                                   headers=liaison).json()["items"]}
    rows = list(csv.DictReader(io.StringIO(c.get("/api/v1/incidents.csv",
                                                 headers=liaison).text)))
    assert {x["id"] for x in rows} == seen
    assert all(x["status"] in DECIDED for x in rows)
    meta, _, _, fields = _gdal(c.get("/api/v1/incidents.gpkg", headers=liaison).content)[
        "incidents"]
    assert set(fields[list(meta["fields"]).index("id")]) == seen
    for kind in ("csv", "kml", "gpkg"):
        _is_error(c.get(f"/api/v1/incidents.{kind}", headers=_h(tok["public"])), 403)
        _is_error(c.get(f"/api/v1/incidents.{kind}"), 401)


def test_zone_files_are_written_and_read_back(api: Api) -> None:
    c, tok, _ = api
    staff, public = _h(tok["admin"]), _h(tok["public"])
    doc = c.get("/api/v1/agreement", headers=staff).json()
    gj = c.get("/api/v1/agreement.geojson", headers=staff)
    assert gj.headers["content-type"].startswith("application/geo+json")
    assert gj.json() == doc
    layers = _gdal(c.get("/api/v1/agreement.gpkg", headers=staff).content)
    by_layer: dict[str, list[dict[str, Any]]] = {}
    for f in doc["features"]:
        by_layer.setdefault(f["properties"]["layer"], []).append(f)
    assert set(layers) == set(by_layer)
    for name, (meta, _, geoms, fields) in layers.items():
        assert meta["crs"] == "EPSG:4326" and len(geoms) == len(by_layer[name])
        got = shapely.from_wkb(geoms)
        for g, f in zip(got, by_layer[name], strict=True):
            assert g.equals_exact(shape(f["geometry"]), 1e-9) or \
                g.equals(shape(f["geometry"]))
        if "id" in meta["fields"]:
            ids = list(fields[list(meta["fields"]).index("id")])
            assert ids == [f["properties"]["id"] for f in by_layer[name]]
    kml = ET.fromstring(c.get("/api/v1/agreement.kml", headers=staff).content)
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    assert len(kml.findall(".//k:Placemark", ns)) == len(doc["features"])
    # the public's zone files have no hub, like its GeoJSON
    hubs = [f for f in doc["features"] if f["properties"].get("kind") == "mnf_hub"]
    assert hubs
    for kind in ("geojson", "kml", "gpkg"):
        text = c.get(f"/api/v1/agreement.{kind}", headers=public).content
        assert all(h["properties"]["name"].encode() not in text for h in hubs), kind


# ------------------------------------------------------------------ OpenAPI
def test_openapi_declares_bearer_auth_and_typed_responses(api: Api) -> None:
    c, _, _ = api
    spec = c.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= next(
        s for s in schemes.values() if s.get("scheme") == "bearer").items()
    main = {("/api/v1/incidents", "get"): "IncidentPage",
            ("/api/v1/incidents/{incident_id}", "get"): "Incident",
            ("/api/v1/aggregates", "get"): "Aggregates", ("/api/v1/me", "get"): "Me",
            ("/api/v1/bulletins", "get"): "Bulletins",
            ("/api/v1/agreement", "get"): "FeatureCollection",
            ("/api/v1/review/queue", "get"): "IncidentPage",
            ("/api/v1/public/counts", "get"): "PublicCounts",
            ("/api/v1/public/incidents", "get"): "FeatureCollection",
            ("/api/v1/public/bulletins", "get"): "Bulletins",
            ("/api/v1/ingest/{source}", "post"): "Outcome"}
    schemas = spec["components"]["schemas"]
    for (path, method), model in main.items():
        op = spec["paths"][path][method]
        ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
        ref = ok["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{model}", (path, ref)
        assert schemas[model]["properties"]
        if path != "/api/v1/ingest/{source}":
            assert schemas[model].get("examples"), model
        if not path.startswith("/api/v1/public/"):
            assert op.get("security"), path
    assert schemas["Location"]["properties"]["where_prec"]["maximum"] == 4
    errors = spec["paths"]["/api/v1/incidents"]["get"]["responses"]
    assert {"401", "403", "422", "500"} <= set(errors)
    assert errors["500"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


# ------------------------------------------------------------------ the public's view
def test_the_public_view_without_a_token(api: Api, scenario: ScenarioFiles,
                                         built_store: BuiltStore) -> None:
    c, tok, _ = api
    p = _public_app(api, scenario, built_store, public=True)
    staff = c.get("/api/v1/incidents?limit=1000", headers=_h(tok["analyst"])).json()[
        "items"]
    by_id = {i["id"]: i for i in staff}
    shown = [i for i in staff if i["status"] in ("verified", "unverifiable")]
    assert shown and len(shown) < len(staff)  # unreviewed and rejected ones exist
    # incidents: reviewed only, rounded to the public grid, with their place
    r = p.get("/api/v1/public/incidents")
    assert r.status_code == 200, r.text
    doc = r.json()
    km = doc["properties"]["precision_km"]
    assert km == 11.132 and doc["properties"]["where_prec"] == 3
    feats = doc["features"]
    assert {f["properties"]["id"] for f in feats} == {i["id"] for i in shown}
    step = grid_step_deg(km)
    staff_zones = c.get("/api/v1/agreement", headers=_h(tok["admin"])).json()["features"]
    hub_zones = {f"site:{f['properties']['id']}" for f in staff_zones
                 if f["properties"].get("kind") == "mnf_hub"}
    assert hub_zones
    restricted = {"reason", "observation_ids", "attributes", "n_sources", "history"}
    for f in feats:
        props, (lon, lat) = f["properties"], f["geometry"]["coordinates"]
        assert not restricted & set(props)
        assert abs(lat / step - round(lat / step)) < 1e-4  # on the grid (6 decimals)
        assert abs(lon / step - round(lon / step)) < 1e-4
        exact = by_id[props["id"]]["location"]
        assert abs(lat - exact["lat"]) <= step / 2 + 1e-9
        assert abs(lon - exact["lon"]) <= step / 2 + 1e-9
        assert (lat, lon) != (exact["lat"], exact["lon"])
        assert PLACE.match(props["place"]) and props["precision_km"] >= km
        assert props["where_prec"] >= 3
        assert not hub_zones & set(props["zone_ids"])
    assert "observation" not in r.text and "o-" not in r.text
    # counts: per day, sector and category, of the same reviewed incidents
    counts = p.get("/api/v1/public/counts").json()
    assert counts["precision_km"] == km
    assert sum(d["count"] for d in counts["days"]) == len(shown)
    day = counts["days"][0]
    assert set(day) == {"date", "sector", "category", "count"}
    assert re.match(r"^\d{4}-\d{2}-\d{2}$", day["date"])
    assert day["count"] == sum(1 for i in shown if i["time_start"][:10] == day["date"]
                               and (i.get("sector_id") or "-") == day["sector"]
                               and i["category"] == day["category"])
    # bulletins: the public ones, each file served; a restricted one is not found here
    listing = p.get("/api/v1/public/bulletins").json()
    products = listing["products"]
    assert products and all(x["audience"] == "public" for x in products)
    name = products[0]["name"]
    got = p.get(f"/api/v1/public/bulletins/{name}")
    assert got.status_code == 200 and got.headers["etag"] == f'"{products[0]["sha256"]}"'
    store = open_store(api[2])
    secret = next(x["name"] for x in store.products() if x["audience"] != "public")
    store.close()
    _is_error(p.get(f"/api/v1/public/bulletins/{secret}"), 404)
    assert secret not in p.get("/api/v1/public/bulletins").text
    # the rest of the API still needs a token
    _is_error(p.get("/api/v1/incidents"), 401)
    _is_error(p.get("/api/v1/aggregates"), 401)


def test_the_public_view_needs_a_token_unless_published(api: Api) -> None:
    c, tok, _ = api  # created as by default: not published
    for path in ("/api/v1/public/incidents", "/api/v1/public/counts",
                 "/api/v1/public/bulletins"):
        e = _is_error(c.get(path), 401)
        assert e["error"] == "unauthorized"
        assert c.get(path, headers=_h(tok["public"])).status_code == 200
        _is_error(c.get(path, headers=_h(tok["sensor"])), 403)


# ------------------------------------------------------------------ hostile-test fixes
def test_an_invalid_observations_bbox_is_refused_and_a_valid_one_filters(api: Api) -> None:
    c, tok, db = api
    h = _h(tok["analyst"])
    for bad in ("1,2,3", "x,y,z,w", "10,0,5,1", "0,95,1,96", "-200,0,0,1"):
        e = _is_error(c.get(f"/api/v1/observations?source_kind=satellite_fire&bbox={bad}",
                            headers=h), 422)
        assert e["error"] == "validation_error"
    every = c.get("/api/v1/observations?source_kind=satellite_fire&limit=1000",
                  headers=h).json()["items"]
    assert every
    lat0 = sorted(o["latitude"] for o in every)[len(every) // 2]
    box = f"-180,-90,180,{lat0}"
    inside = c.get(f"/api/v1/observations?source_kind=satellite_fire&limit=1000&bbox={box}",
                   headers=h).json()
    assert inside["items"] and all(o["latitude"] <= lat0 for o in inside["items"])
    store = open_store(db)
    lats = store.observations("satellite_fire")["latitude"].to_list()
    store.close()
    assert inside["total"] == sum(1 for x in lats if x <= lat0) < len(lats)


def test_damaged_gzip_is_invalid_input_not_too_large(api: Api) -> None:
    c, tok, db = api
    good = gzip.compress((DATA / "modis_archive.csv").read_bytes())
    damaged = good[:40] + bytes(b ^ 0xFF for b in good[40:80]) + good[80:]
    truncated = good[: len(good) // 2]
    for body in (damaged, truncated):
        e = _is_error(c.post("/api/v1/ingest/firms", content=body,
                             headers=_h(tok["analyst"])), 422)
        assert "gzip" in e["message"]
        store = open_store(db)
        assert any("gzip" in str(r["reason"]) for r in store.refused())
        store.close()


def _sign_in(c: TestClient, token: str) -> tuple[str, str, str]:
    r = c.post("/api/v1/session", json={"token": token})
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"]
    sid = cookie.split(";", 1)[0].split("=", 1)[1]
    return sid, cookie, r.json()["csrf"]


def test_the_session_cookie_is_an_opaque_id_revoked_at_sign_out(api: Api) -> None:
    c0, tok, db = api
    c = TestClient(c0.app, base_url="http://127.0.0.1")
    sid, cookie, csrf = _sign_in(c, tok["analyst"])
    assert tok["analyst"] not in cookie and sid != tok["analyst"] and len(sid) >= 40
    assert c.get("/api/v1/me").json()["name"] == "analyst-user"
    # a copy of the cookie (kept by whoever saw it) stops working at sign-out
    thief = TestClient(c0.app, base_url="http://127.0.0.1", cookies={"tw_session": sid})
    assert thief.get("/api/v1/me").status_code == 200
    assert c.request("DELETE", "/api/v1/session",
                     headers={"X-CSRF-Token": csrf}).status_code == 200
    e = _is_error(thief.get("/api/v1/me"), 401)
    assert "session" in e["message"]
    # a made-up session id is refused; the token itself is not a session id
    for fake in ("nope", tok["analyst"]):
        _is_error(TestClient(c0.app, cookies={"tw_session": fake}).get("/api/v1/me"), 401)
    # revoking the token ends its sessions
    _sign_in(c, tok["coalition"])
    assert c.get("/api/v1/me").json()["role"] == "coalition"
    store = open_store(db)
    store.revoke_token("coalition-user")
    store.close()
    _is_error(c.get("/api/v1/me"), 401)


def test_the_session_cookie_is_secure_unless_plain_http_on_loopback(
        api: Api, scenario: ScenarioFiles, built_store: BuiltStore) -> None:
    c, tok, _ = api

    def flags(client: TestClient, **headers: str) -> str:
        r = client.post("/api/v1/session", json={"token": tok["analyst"]}, headers=headers)
        return str(r.headers["set-cookie"]).lower()

    assert "; secure" in flags(TestClient(c.app, base_url="https://testserver"))
    assert "; secure" in flags(TestClient(c.app, base_url="http://monitor.example"))
    assert "; secure" in flags(TestClient(c.app, base_url="http://10.0.0.5:8000"),
                               **{"X-Forwarded-Proto": "https"})
    assert "; secure" in flags(TestClient(c.app, base_url="http://10.0.0.5:8000"))
    for loop in ("http://127.0.0.1:8000", "http://localhost", "http://[::1]:8000"):
        assert "; secure" not in flags(TestClient(c.app, base_url=loop)), loop
    dev = _public_app(api, scenario, built_store, insecure_cookies=True)
    assert "; secure" not in flags(TestClient(dev.app, base_url="http://10.0.0.5:8000"))
    assert "httponly" in flags(dev) and "samesite=strict" in flags(dev)


def test_the_session_table_expires_and_forgets() -> None:
    from trucewatch.api.session import Sessions

    s = Sessions(lifetime_s=0.0)
    sid = s.open("tw_x")
    assert s.token_for(sid) is None and len(s) == 0  # expired at once
    s = Sessions()
    a, b = s.open("tw_a"), s.open("tw_b")
    assert (s.token_for(a), s.token_for(b)) == ("tw_a", "tw_b")
    assert s.close(a) and not s.close(a) and s.token_for(a) is None
