from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
import yaml
from shapely.geometry import mapping

from conftest import shared
from trucewatch.agreement import check_agreement, load_agreement
from trucewatch.agreement.zones import ZoneIndex
from trucewatch.demo import ScenarioFiles
from trucewatch.errors import AgreementError


def _copy(scenario: ScenarioFiles, tmp: Path, **changes: object) -> Path:
    doc = yaml.safe_load(scenario.agreement.read_text())
    doc.update(changes)
    for name in ("line_of_contact.geojson", "sectors.geojson"):
        (tmp / name).write_text((scenario.root / name).read_text())
    path = tmp / "agreement.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_scenario_agreement_zones(scenario: ScenarioFiles) -> None:
    a = load_agreement(scenario.agreement)
    zones = {z.id: z for z in a.zones}
    from trucewatch.geo.crs import to_metric

    length_km = to_metric(a.line_of_contact, a.crs).length / 1000
    # a 15 km buffer on one side is about 15 km x the line's length (ends and bends aside)
    for side in ("left", "right"):
        assert 0.7 < zones[f"buffer:{side}"].area_km2 / (15 * length_km) < 1.2
    assert zones["withdrawal:mlrs:left"].area_km2 > zones["withdrawal:artillery:left"].area_km2
    assert zones["site:znpp"].area_km2 == pytest.approx(3.14159 * 25, rel=0.01)


def test_points_fall_in_the_right_zones(scenario: ScenarioFiles) -> None:
    a = load_agreement(scenario.agreement)
    idx = ZoneIndex(a)
    truth = json.loads(scenario.truth.read_text())
    for e in truth["events"]:
        zones = idx.zones_of([e["lon"]], [e["lat"]])[0]
        if e["expected_zone"]:
            assert e["expected_zone"] in zones, e
        else:
            assert not [z for z in zones if not z.startswith("site:")], e


def test_missing_timezone_and_bad_numbers(scenario: ScenarioFiles, tmp_path: Path) -> None:
    p = _copy(scenario, tmp_path, entry_into_force="2026-04-20T00:00:00",
              withdrawal_km={"artillery": -5},
              sides=[{"id": "left", "name": "A", "buffer_km": 15},
                     {"id": "east", "name": "B", "buffer_km": 0}])
    report = check_agreement(p)
    text = " | ".join(report.errors)
    assert "has no time zone" in text
    assert "withdrawal_km.artillery: 'd' must be > 0" in text
    assert "id must be one of ['left', 'right']" in text
    with pytest.raises(AgreementError) as e:
        load_agreement(p)
    assert "agreement check" in e.value.fix and len(e.value.problems) >= 4


def test_invalid_and_overlapping_sectors(scenario: ScenarioFiles, tmp_path: Path) -> None:
    ring = [[34, 47], [40, 50], [40, 47], [34, 50], [34, 47]]
    bowtie = {"type": "Polygon", "coordinates": [ring]}
    sectors = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "bad"}, "geometry": bowtie}]}
    (tmp_path / "s.geojson").write_text(json.dumps(sectors))
    p = _copy(scenario, tmp_path, sectors={"geojson": "s.geojson"})
    assert any("invalid geometry (Self-intersection" in e for e in check_agreement(p).errors)
    overlap = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": k},
         "geometry": mapping(shapely.box(34 + k, 46, 38 + k, 51))} for k in (0, 1)]}
    (tmp_path / "s.geojson").write_text(json.dumps(overlap))
    assert any("overlap by" in e for e in check_agreement(p).errors)


def test_line_derived_from_occupied_area(tmp_path: Path) -> None:
    # a square country whose eastern strip is occupied: the front is the strip's west edge
    (tmp_path / "border.geojson").write_text(json.dumps(mapping(shapely.box(30, 46, 40, 50))))
    (tmp_path / "occ.geojson").write_text(json.dumps(mapping(shapely.box(38, 46, 40, 50))))
    doc = {"format": "trucewatch-agreement", "entry_into_force": "2026-01-01T00:00:00Z",
           "line_of_contact": {"derive": {"occupied_area": "occ.geojson",
                                          "state_border": "border.geojson"}},
           "sides": [{"id": "government", "buffer_km": 10}, {"id": "occupied", "buffer_km": 10}],
           "withdrawal_km": {"artillery": 20}}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(doc))
    a = load_agreement(tmp_path / "a.yaml")
    xs = shapely.get_coordinates(a.line_of_contact)[:, 0]
    assert abs(xs - 38).max() < 1e-6  # only the front edge is left, not the border
    gov = next(z for z in a.zones if z.id == "buffer:government")
    assert gov.geometry.centroid.x < 38 < next(
        z for z in a.zones if z.id == "buffer:occupied").geometry.centroid.x


def test_missing_file() -> None:
    assert check_agreement("nope.yaml").errors == ["nope.yaml: no such file"]


# --- derived line of contact, administrative-grid sectors, MultiPolygon sectors ----------

BOUNDARIES = "reference-boundaries"
OBLASTS = "covariates-ukraine-0p1deg-gianman89/oblast_id_0p1deg.csv"
EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "replay-2020-agreement.yaml"


def _fc(*feats: tuple[object, dict[str, object]]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": p, "geometry": mapping(g)} for g, p in feats]})


def _derived(tmp: Path, derive: dict[str, object], sectors: object = None,
             **changes: object) -> Path:
    """A 10 x 4 degree country whose eastern strip (east of 38 E) is occupied, plus
    whatever the test changes."""
    if not (tmp / "border.geojson").exists():
        (tmp / "border.geojson").write_text(json.dumps(mapping(shapely.box(30, 46, 40, 50))))
        (tmp / "occ.geojson").write_text(_fc((shapely.box(38, 46, 40, 50), {"name": "East"})))
    doc: dict[str, object] = {
        "format": "trucewatch-agreement", "entry_into_force": "2026-01-01T00:00:00Z",
        "line_of_contact": {"derive": {"occupied_area": "occ.geojson",
                                       "state_border": "border.geojson", **derive}},
        "sides": [{"id": "government", "buffer_km": 10}, {"id": "occupied", "buffer_km": 10}],
        "withdrawal_km": {"artillery": 20}, **changes}
    if sectors is not None:
        doc["sectors"] = sectors
    (tmp / "a.yaml").write_text(yaml.safe_dump(doc))
    return tmp / "a.yaml"


def _errors(path: Path) -> str:
    return " | ".join(check_agreement(path).errors)


def test_real_ordlo_line_chosen_by_name_from_the_multi_feature_file() -> None:
    from trucewatch.agreement.areas import derive_line
    from trucewatch.geo.crs import to_metric

    folder = shared(BOUNDARIES)
    spec = {"occupied_area": "pre2022_occupied_ordlo_crimea.geojson", "feature": "ordlo",
            "state_border": "ukraine_outline.geojson"}
    errors: list[str] = []
    warnings: list[str] = []
    loc, occupied, _ = derive_line(spec, folder, "auto", errors, warnings)
    assert not errors and loc is not None and occupied is not None
    # ORDLO only (not Crimea), one piece: the ~420 km line of contact, not the Russian border
    assert occupied.bounds[1] > 46.9 and occupied.bounds[0] > 37.0
    assert loc.geom_type == "LineString"
    assert 390 < to_metric(loc, "EPSG:3035").length / 1000 < 440
    ends = sorted([loc.coords[0], loc.coords[-1]], key=lambda c: c[1])
    assert ends[0][1] < 47.2 and 37.6 < ends[0][0] < 38.0  # Azov coast near Shyrokyne
    assert 48.5 < ends[1][1] < 48.7 and ends[1][0] > 39.5  # the Donets at the Russian border
    for lon, lat in [(39.4836, 48.6625), (38.5151, 48.6952), (37.75, 48.14)]:
        # Stanytsia Luhanska, Zolote and Avdiivka are on the line
        assert shapely.Point(lon, lat).distance(loc) < 0.1, (lon, lat)
    # the state border with Russia (east of the line) is not part of it
    assert shapely.Point(39.9, 48.0).distance(loc) > 0.2
    assert any("border slivers" in w for w in warnings)
    # the slivers are there without the default minimum length
    errors = []
    few, _, _ = derive_line({**spec, "border_tolerance_km": 2, "min_segment_km": 0}, folder,
                            "auto", errors, [])
    assert not errors and few is not None and len(shapely.get_parts(few)) > 10


def test_several_features_need_a_name(tmp_path: Path) -> None:
    p = _derived(tmp_path, {})
    (tmp_path / "occ.geojson").write_text(_fc(
        (shapely.box(38, 46, 40, 48), {"name": "South", "kind": "occupied"}),
        (shapely.box(38, 48, 40, 50), {"id": "North", "kind": "occupied"})))
    text = _errors(p)
    assert "occ.geojson has 2 features (South, North)" in text and "feature: NAME" in text
    text = _errors(_derived(tmp_path, {"feature": "Middle"}))
    assert "no feature named 'Middle' in occ.geojson" in text and "South, North" in text
    # chosen by id, by name, by a list, or all of them ('*' or a shared property value)
    for feature, south in [("north", 48), (["South"], 46), ("*", 46), ("occupied", 46)]:
        a = load_agreement(_derived(tmp_path, {"feature": feature}))
        occ = next(z for z in a.zones if z.id == "withdrawal:artillery:occupied")
        assert occ.geometry.bounds[1] == pytest.approx(south, abs=1e-6), feature


def test_derive_errors_are_clear(tmp_path: Path) -> None:
    p = _derived(tmp_path, {})
    assert check_agreement(p).ok
    (tmp_path / "occ.geojson").write_text(_fc((shapely.box(34, 47, 35, 48), {"name": "x"})))
    text = _errors(p)  # an enclave: nothing of its edge is on the border
    assert "does not meet the state border" in text and "border_tolerance_km (5 km)" in text
    (tmp_path / "occ.geojson").write_text(_fc((shapely.box(47, 38, 50, 40), {"name": "x"})))
    text = _errors(p)  # latitude and longitude swapped
    assert "does not overlap the state border" in text and "longitude, latitude" in text
    (tmp_path / "occ.geojson").write_text(_fc((shapely.LineString([(38, 46), (38, 50)]), {})))
    assert "hold no polygons (got LineString)" in _errors(p)
    text = _errors(_derived(tmp_path, {"occupied_area": "gone.geojson"}))
    assert "occupied_area: file" in text and "gone.geojson not found" in text
    text = _errors(_derived(tmp_path, {"state_border": None, "border_tolerance_km": -1,
                                       "tolerance": 3}))
    assert "'state_border' is missing" in text and "'border_tolerance_km' must be" in text
    assert "unknown key(s) tolerance" in text


def test_border_slivers_are_dropped(tmp_path: Path) -> None:
    # the occupied area's border edge has a 3 km notch: with a 2 km tolerance, a ~2.5 km
    # piece of the notch survives the border buffer; the default minimum drops it
    notch = shapely.Polygon([(38, 46), (40, 46), (40, 47.98), (39.96, 48.0), (40, 48.02),
                             (40, 50), (38, 50)])
    p = _derived(tmp_path, {"border_tolerance_km": 2})
    (tmp_path / "occ.geojson").write_text(_fc((notch, {"name": "East"})))
    report = check_agreement(p)
    assert report.agreement is not None
    xs = shapely.get_coordinates(report.agreement.line_of_contact)[:, 0]
    assert abs(xs - 38).max() < 1e-6
    assert any("1 piece(s)" in w and "min_segment_km (4 km" in w for w in report.warnings)
    a = load_agreement(_derived(tmp_path, {"border_tolerance_km": 2, "min_segment_km": 0}))
    assert shapely.get_coordinates(a.line_of_contact)[:, 0].max() > 39.9


def _grid(tmp: Path, cells: dict[tuple[float, float], str], header: str = "LATITUDE,LONGITUDE,"
          "OBLAST_ID") -> None:
    rows = [header] + [f"{lat},{lon},{oid}" for (lon, lat), oid in cells.items()]
    (tmp / "grid.csv").write_text("\n".join(rows) + "\n")


def test_admin_grid_sectors(tmp_path: Path) -> None:
    # cells at 37.0..37.3 E, 48.0..48.2 N; A: two separate columns, B: the two between
    cells = {(round(37 + i / 10, 1), round(48 + j / 10, 1)): "A" if i in (0, 3) else "B"
             for i in range(4) for j in range(3)}
    cells[(37.5, 48.0)] = "C"
    _grid(tmp_path, cells)
    spec = {"admin_grid": "grid.csv", "id_column": "OBLAST_ID",
            "groups": {"west_east": {"ids": ["A"], "name": "Both ends"}, "middle": "B"},
            "rest": "other"}
    a = load_agreement(_derived(tmp_path, {}, sectors=spec))
    s = {x.id: x for x in a.sectors}
    assert s["west_east"].name == "Both ends" and s["middle"].name == "middle"
    assert s["west_east"].geometry.geom_type == "MultiPolygon"
    assert len(s["west_east"].geometry.geoms) == 2
    # adjacent cells are one polygon, exactly their boxes: no slivers between them
    assert s["middle"].geometry.geom_type == "Polygon"
    assert s["middle"].geometry.area == pytest.approx(0.06, abs=1e-12)
    assert s["middle"].geometry.bounds == pytest.approx((37.05, 47.95, 37.25, 48.25))
    assert s["other"].geometry.area == pytest.approx(0.01, abs=1e-12)
    # clipped to an outline: the cells east of 37.28 E are cut off
    (tmp_path / "clip.geojson").write_text(json.dumps(mapping(shapely.box(36, 47, 37.28, 49))))
    a = load_agreement(_derived(tmp_path, {}, sectors={**spec, "rest": None,
                                                       "clip": "clip.geojson"}))
    we = next(x for x in a.sectors if x.id == "west_east").geometry
    assert we.bounds[2] == pytest.approx(37.28) and len(a.sectors) == 2


def test_admin_grid_errors(tmp_path: Path) -> None:
    _grid(tmp_path, {(37.0, 48.0): "UA14", (37.1, 48.0): "UA09"})
    ok = {"admin_grid": "grid.csv", "id_column": "OBLAST_ID", "groups": {"d": ["UA14"]}}
    assert check_agreement(_derived(tmp_path, {}, sectors=ok)).ok

    def err(**change: object) -> str:
        return _errors(_derived(tmp_path, {}, sectors={**ok, **change}))

    text = err(groups={"d": ["UA14"], "luhansk": ["UA44"]})
    assert "sectors.groups.luhansk: UA44 not found in column OBLAST_ID" in text
    assert "ids there: UA09, UA14" in text
    assert "has no column 'OBLAST' (id_column); its columns: LATITUDE, LONGITUDE, " \
           "OBLAST_ID" in err(id_column="OBLAST")
    assert "'id_column' is missing" in err(id_column=None)
    assert "grid2.csv not found" in err(admin_grid="grid2.csv")
    assert "UA14 is in both d and e" in err(groups={"d": ["UA14"], "e": ["UA14"]})
    assert "'groups' must map" in err(groups=[])
    assert "sectors.clip: file" in err(clip="outline.geojson")
    (tmp_path / "far.geojson").write_text(json.dumps(mapping(shapely.box(20, 40, 21, 41))))
    assert "sector d: no area left after clipping to far.geojson" in err(clip="far.geojson")
    _grid(tmp_path, {(37.03, 48.0): "UA14"})
    assert "not on a 0.1 degree grid" in err()
    _grid(tmp_path, {(37.0, 48.0): "UA14"}, header="A,B,OBLAST_ID")
    assert "needs cell-centre longitude and latitude columns" in err()


def test_geojson_sectors_with_named_properties(tmp_path: Path) -> None:
    (tmp_path / "s.geojson").write_text(_fc((shapely.box(30, 46, 35, 50), {"code": "W",
                                                                           "label": "West"}),
                                            (shapely.box(35, 46, 40, 50), {"code": "E"})))
    spec = {"geojson": "s.geojson", "id_property": "code", "name_property": "label"}
    a = load_agreement(_derived(tmp_path, {}, sectors=spec))
    assert [(s.id, s.name) for s in a.sectors] == [("W", "West"), ("E", "E")]
    text = _errors(_derived(tmp_path, {}, sectors={**spec, "id_property": "nr"}))
    assert "sectors: feature 0 has no property 'nr' (id_property); its properties: code" in text
    assert "give {geojson: FILE" in _errors(_derived(tmp_path, {}, sectors={"file": "x"}))


def test_multipolygon_sector_on_the_bulletin_map(tmp_path: Path) -> None:
    from trucewatch.reports.figures import map_svg

    two = shapely.MultiPolygon([shapely.box(37.0, 47.0, 37.5, 47.5),
                                shapely.box(38.5, 47.0, 39.0, 47.5)])
    (tmp_path / "s.geojson").write_text(_fc((two, {"id": "two", "name": "Two parts"}),
                                            (shapely.box(37, 48, 39, 49), {"id": "one"})))
    a = load_agreement(_derived(tmp_path, {}, sectors={"geojson": "s.geojson"}))
    svg = map_svg(a, [], public=True)
    for gid in ("sector-two-0", "sector-two-1", "sector-label-two", "sector-one-0",
                "sector-label-one"):
        assert f'id="{gid}"' in svg, gid
    assert 'id="sector-two-2"' not in svg


def test_real_oblast_grid_sectors_and_the_replay_example() -> None:
    import shapely
    from typer.testing import CliRunner

    from trucewatch.cli.app import app
    from trucewatch.geo.crs import to_metric
    from trucewatch.reports.figures import map_svg

    shared(OBLASTS)
    shared(f"{BOUNDARIES}/pre2022_occupied_ordlo_crimea.geojson")
    report = check_agreement(EXAMPLE)
    assert report.ok and report.agreement is not None, report.errors
    a = report.agreement
    s = {x.id: x for x in a.sectors}
    assert sorted(s) == ["donetsk", "luhansk", "rear"]
    # the cells' union is one outline, not a mesh of boxes: no inner edges or slivers
    # left (what made checking this agreement slow; its speed is in benchmarks/)
    for sid in ("donetsk", "luhansk"):
        g = s[sid].geometry
        cells = g.area / 0.1 ** 2  # 0.1 degree cells (the geometry is in degrees)
        assert sum(len(p.interiors) for p in getattr(g, "geoms", [g])) == 0, sid
        # a mesh of boxes holds 5 coordinates per cell; the outline far fewer
        assert shapely.get_num_coordinates(g) < cells, (sid, cells)
    for sid in ("donetsk", "luhansk"):  # each oblast is about 26,500 km2
        assert 24_000 < to_metric(s[sid].geometry, a.crs).area / 1e6 < 29_000, sid
    assert s["rear"].geometry.geom_type == "MultiPolygon"
    assert s["rear"].geometry.bounds[0] < 22.5  # clipped to the outline, Zakarpattia included
    idx = ZoneIndex(a)
    import numpy as np
    # Kramatorsk, Sievierodonetsk, Kharkiv, Simferopol
    got = idx.sector_of(np.array([37.56, 38.49, 36.23, 34.10]),
                        np.array([48.72, 48.95, 49.99, 44.95]))
    assert got.tolist() == ["donetsk", "luhansk", "rear", "rear"]
    svg = map_svg(a, [], public=True)
    assert 'id="sector-rear-1"' in svg and 'id="sector-label-luhansk"' in svg
    r = CliRunner().invoke(app, ["agreement", "check", str(EXAMPLE)])
    assert r.exit_code == 0, r.output
    assert "3 sectors" in r.output and "disengagement" in r.output


def test_a_name_with_a_colon_is_read_as_text_with_a_warning(tmp_path: Path) -> None:
    from trucewatch.agreement.loader import _read_yaml

    warnings: list[str] = []
    doc = _read_yaml("format: trucewatch-agreement\nname: placebo: same dates, no ceasefire\n",
                     warnings)
    assert doc["name"] == "placebo: same dates, no ceasefire"
    assert warnings and "quote it" in warnings[0]
    # any other YAML error stays an error, with the file named
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: trucewatch-agreement\nsides: [a, b\n")
    report = check_agreement(bad)
    assert not report.ok and "not valid YAML" in report.errors[0]


def test_coordinates_out_of_range_are_an_error_before_any_union(tmp_path: Path) -> None:
    """A line of contact with a coordinate such as 5.8e292 made GEOS overflow in the
    union of the lines (a RuntimeWarning raised as a traceback; found by the parser fuzz
    test): it is now refused when the GeoJSON is read, naming the feature and the range."""
    p = tmp_path / "a.yaml"
    p.write_text(
        "format: trucewatch-agreement\nid: t\nentry_into_force: 2026-05-30T04:00:00Z\n"
        "line_of_contact: {geojson: {type: LineString, coordinates: [[37.0, 47.0], "
        "[37.0, -3101804423960196.0], [5.795636633231386e+292, 47.0]]}}\n"
        "sides: [{id: left, buffer_km: 10}, {id: right, buffer_km: 10}]\n")
    report = check_agreement(p)
    text = " | ".join(report.errors)
    assert "line_of_contact: feature 0 has coordinates out of range" in text, text
    with pytest.raises(AgreementError):
        load_agreement(p)
