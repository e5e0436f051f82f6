"""Coverage and capability, drawn: the capability model (smallest charge heard), the
per-day maps and their figures, from a hand-made coverage."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from trucewatch.adjudication.allegations import Coverage
from trucewatch.adjudication.coverage_maps import CoverageMaps
from trucewatch.errors import ConfigError
from trucewatch.model.agreement import Agreement, Sector
from trucewatch.sensors.capability import CapabilityModel

DAY = date(2026, 5, 30)
T0 = datetime(2026, 5, 30, tzinfo=UTC)


def test_min_charge_grows_with_distance_and_is_heard_at_the_asked_probability() -> None:
    m = CapabilityModel()
    # four stations at 3 km, then at 8 km, then three stations only (never 4)
    d = np.array([[3.0] * 4, [8.0] * 4, [3.0, 3.0, 3.0, np.inf]])
    w = m.min_charge(d)
    assert 0 < w[0] < w[1] < m.max_charge_kg
    assert np.isinf(w[2])  # fewer than min_stations up: not observed at any charge
    p = m.p_heard(d[:2], w[:2])
    assert np.allclose(p, 0.9, atol=1e-4)  # the smallest charge: exactly at 0.9
    assert (m.p_heard(d[:2], w[:2] * 0.9) < 0.9).all()
    # more stations make a smaller charge audible
    assert m.min_charge(np.array([[3.0] * 8]))[0] < w[0]


def test_capability_model_refuses_nonsense() -> None:
    with pytest.raises(ConfigError):
        CapabilityModel(probability=1.5)
    with pytest.raises(ConfigError):
        CapabilityModel(reference_charge_kg=5000.0)


def _agreement() -> Agreement:
    west = Sector("west", "West", shapely.box(37.80, 48.40, 38.00, 48.60))
    east = Sector("east", "East", shapely.box(38.00, 48.40, 38.20, 48.60))
    return Agreement(id="a", name="A", entry_into_force=datetime(2026, 5, 1, tzinfo=UTC),
                     line_of_contact=shapely.LineString([(38.0, 48.4), (38.0, 48.6)]),
                     sides=[], withdrawal_km={}, protected_sites=[], sectors=[west, east],
                     zones=[], crs="EPSG:4326")


def _coverage(cloud: float | None = 0.8) -> Coverage:
    # six stations in the west sector, none in the east; one down for half the day
    st = [(48.45 + 0.03 * k, 37.88 + 0.02 * (k % 2)) for k in range(6)]
    cov = Coverage(stations=st, station_ids=[f"S{k}" for k in range(6)],
                   sensor_periods=[(T0, T0.replace(hour=23, minute=59))],
                   satellite_days={DAY: cloud} if cloud is not None else {})
    cov.outages = [(0, T0.replace(hour=12), None)]
    track = [(38.10, 48.45), (38.10, 48.55)]
    cov.patrols = [(T0.replace(hour=8), T0.replace(hour=9), track, 3000.0)]
    cov.patrol_platforms = ["FR-01"]
    return cov


def _day(doc: dict, iso: str) -> dict:
    return next(d for d in doc["days"] if d["date"] == iso)


def test_maps_per_sector_and_day() -> None:
    maps = CoverageMaps(spacing_km=1.5, days=2)
    doc = maps.build(_coverage(), _agreement(), DAY)
    assert [d["date"] for d in doc["days"]] == ["2026-05-29", "2026-05-30"]
    day = _day(doc, "2026-05-30")
    assert day["satellite"]["state"] == "cloudy"
    west, east = day["sectors"]
    assert west["sensor_observed_share"] > 0.3 and east["sensor_observed_share"] < \
        west["sensor_observed_share"]
    assert east["patrolled_share"] > 0 and west["patrolled_share"] == 0
    assert west["median_charge_kg"] is not None and west["best_charge_kg"] <= \
        west["median_charge_kg"]
    assert east["not_observed_km2"] > 0
    # the day before: no sensor data, no patrol, cloud unknown: nothing observed
    before = _day(doc, "2026-05-29")
    assert before["satellite"]["state"] == "cloud_unknown"
    assert before["observed_share"] == 0.0 and before["sensors"]["hours"] == 0
    layers = {(f["properties"]["layer"], f["properties"]["date"]) for f in doc["features"]}
    assert ("not_observed", "2026-05-29") in layers and ("patrol_swath", "2026-05-30") in layers
    assert any(f["properties"]["platform"] == "FR-01" for f in doc["features"]
               if f["properties"]["layer"] == "patrol_swath")
    # capability classes never overlap, and with the not-heard area they cover the day's area
    cap = [shape(f["geometry"]) for f in doc["features"]
           if f["properties"]["layer"] in ("capability", "not_heard")
           and f["properties"]["date"] == "2026-05-30"]
    area = shapely.union_all(cap).area
    assert sum(g.area for g in cap) == pytest.approx(area, rel=0.02)


def test_outage_makes_the_worst_hours_count() -> None:
    maps = CoverageMaps(spacing_km=1.5, days=1)
    full = _coverage()
    full.outages = []
    a = _day(maps.build(full, _agreement(), DAY), "2026-05-30")["sectors"][0]
    b = _day(maps.build(_coverage(), _agreement(), DAY), "2026-05-30")["sectors"][0]
    assert b["median_charge_kg"] > a["median_charge_kg"]  # a station down: a larger charge
    assert b["sensor_observed_share"] <= a["sensor_observed_share"]


def test_clear_sky_observes_the_whole_area_for_fires() -> None:
    doc = CoverageMaps(spacing_km=1.5, days=1).build(_coverage(cloud=0.1), _agreement(), DAY)
    day = _day(doc, "2026-05-30")
    assert day["satellite"]["state"] == "clear" and day["observed_share"] == 1.0
    assert not any(f["properties"]["layer"] == "not_observed" for f in doc["features"])
