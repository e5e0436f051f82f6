"""The coverage maps through the API: /coverage carries the per-day layers and sector
figures, /coverage/capability the capability map, and the coverage exports (CSV, KML,
GeoPackage) read back with GDAL hold the same data; the role rules of /coverage hold."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

import pytest
import shapely
from shapely.geometry import shape

from conftest import BuiltStore
from test_api import _h, _is_error, make_api
from test_api_interchange import Api, _gdal, _polygons, _wound_rfc7946
from trucewatch.demo import ScenarioFiles


@pytest.fixture()
def api(built_store: BuiltStore, scenario: ScenarioFiles) -> Api:
    return make_api(built_store, scenario)


def test_coverage_carries_the_maps_per_day_and_sector(api: Api) -> None:
    c, tok, _ = api
    doc = c.get("/api/v1/coverage", headers=_h(tok["analyst"])).json()
    days = doc["maps"]["days"]
    assert days and all(d["sectors"] for d in days)
    layers = {f["properties"]["layer"] for f in doc["features"]}
    assert {"satellite", "capability", "not_heard", "patrol_swath"} <= layers
    assert all(_wound_rfc7946(p) for p in _polygons(doc["features"]))
    cap = c.get("/api/v1/coverage/capability?day=2026-05-30",
                headers=_h(tok["analyst"])).json()
    assert cap["date"] == "2026-05-30" and cap["capability"]["probability"] == 0.9
    assert {f["properties"]["layer"] for f in cap["features"]} <= {"capability", "not_heard"}
    assert any(f["properties"]["layer"] == "capability" for f in cap["features"])
    by_id = {s["id"]: s for s in next(d for d in days if d["date"] == "2026-05-30")["sectors"]}
    for s in cap["sectors"]:
        assert s["median_charge_kg"] == by_id[s["id"]]["median_charge_kg"]
    _is_error(c.get("/api/v1/coverage/capability?day=2020-01-01",
                    headers=_h(tok["analyst"])), 404)
    _is_error(c.get("/api/v1/coverage/capability?day=not-a-day",
                    headers=_h(tok["analyst"])), 422)


def test_coverage_exports_read_back(api: Api) -> None:
    c, tok, _ = api
    h = _h(tok["coalition"])
    doc = c.get("/api/v1/coverage", headers=h).json()
    rows = list(csv.DictReader(io.StringIO(c.get("/api/v1/coverage.csv", headers=h).text)))
    want = [(d["date"], s["id"]) for d in doc["maps"]["days"] for s in d["sectors"]]
    assert [(r["date"], r["sector_id"]) for r in rows] == want
    first = doc["maps"]["days"][-1]["sectors"][0]
    got = next(r for r in rows if r["date"] == doc["maps"]["days"][-1]["date"]
               and r["sector_id"] == first["id"])
    assert float(got["observed_share"]) == first["observed_share"]
    layers = _gdal(c.get("/api/v1/coverage.gpkg", headers=h).content)
    by_layer: dict[str, list] = {}
    for f in doc["features"]:
        by_layer.setdefault(f["properties"]["layer"], []).append(f)
    assert set(layers) == set(by_layer)
    for name, (meta, _, geoms, fields) in layers.items():
        assert meta["crs"] == "EPSG:4326" and len(geoms) == len(by_layer[name])
        for g, f in zip(shapely.from_wkb(geoms), by_layer[name], strict=True):
            assert g.equals(shape(f["geometry"])) or g.equals_exact(shape(f["geometry"]), 1e-9)
        if "date" in meta["fields"]:
            assert list(fields[list(meta["fields"]).index("date")]) == [
                f["properties"]["date"] for f in by_layer[name]]
    kml = ET.fromstring(c.get("/api/v1/coverage.kml", headers=h).content)
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    assert len(kml.findall(".//k:Placemark", ns)) == len(doc["features"])
    assert c.get("/api/v1/coverage.geojson", headers=h).json()["features"] == doc["features"]


def test_coverage_exports_follow_the_role_rules(api: Api) -> None:
    c, tok, _ = api
    for kind in ("csv", "kml", "gpkg", "geojson"):
        _is_error(c.get(f"/api/v1/coverage.{kind}", headers=_h(tok["public"])), 403)
        _is_error(c.get(f"/api/v1/coverage.{kind}", headers=_h(tok["liaison"])), 403)
        _is_error(c.get(f"/api/v1/coverage.{kind}"), 401)
    _is_error(c.get("/api/v1/coverage/capability", headers=_h(tok["public"])), 403)
    _is_error(c.get("/api/v1/coverage.shp", headers=_h(tok["admin"])), 422)


def test_coalition_endpoint_by_role(api: Api) -> None:
    from trucewatch.storage import open_store

    c, tok, db = api
    built = c.get("/api/v1/coalition", headers=_h(tok["admin"])).json()
    # the built-in scenario signs its coalition registry: the cycle credited it
    assert built["registry"]["mission"] == "demo-2026" and built["credits"]
    store = open_store(db)
    doc = store.latest_coverage()
    assert doc is not None
    credits = [{"date": "2026-05-30", "sector": "north", "contributor": "FR",
                "asset": "fr-uav", "channel": "drone", "share": 0.2},
               {"date": "2026-05-30", "sector": "south", "contributor": "US",
                "asset": "us-net", "channel": "sensors", "share": 0.5}]
    doc["maps"]["coalition"] = {
        "registry": {"mission": "m", "signed_by": "mission/1", "contributors": [
            {"id": "FR", "name": "France", "kind": "nation", "roles": [], "assets": []},
            {"id": "US", "name": "United States", "kind": "nation", "roles": [],
             "assets": []}]},
        "credits": credits, "gaps": [{"date": "2026-05-30", "sector": "centre",
                                      "uncovered": ["drone"], "not_observed_share": 0.9,
                                      "no_contributor": False}],
        "undeclared": {"drone": ["centre"]}}
    store.save_coverage(doc)
    fr = store.add_token("fr-liaison", "liaison", "FR")
    store.close()
    full = c.get("/api/v1/coalition", headers=_h(tok["coalition"])).json()
    assert full["credits"] == credits and full["gaps"]
    mine = c.get("/api/v1/coalition", headers=_h(fr)).json()
    assert [x["id"] for x in mine["registry"]["contributors"]] == ["FR"]
    assert [x["contributor"] for x in mine["credits"]] == ["FR"] and "gaps" not in mine
    other = c.get("/api/v1/coalition", headers=_h(tok["liaison"])).json()  # Side B
    assert other["registry"]["contributors"] == [] and other["credits"] == []
    _is_error(c.get("/api/v1/coalition", headers=_h(tok["public"])), 403)
