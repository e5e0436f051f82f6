from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
import yaml
from shapely.geometry import mapping

from trucewatch.agreement import check_agreement, load_agreement
from trucewatch.agreement.zones import ZoneIndex
from trucewatch.errors import AgreementError
from trucewatch.scenario import ScenarioFiles


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
