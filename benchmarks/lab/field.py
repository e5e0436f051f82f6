"""A generated multi-source scenario with ground truth, for the fusion benchmark.

Along the built-in scenario's line of contact (real front-line towns), over ``days``
days around entry into force, it generates what happened and what each source saw:

* violations: explosions in the buffer and withdrawal zones after entry into force,
  heavy weapons inside their withdrawal zones, shelling fires in the buffer zone;
* lawful activity: explosions before entry into force or outside every zone, heavy
  weapons parked beyond their withdrawal distance, vehicle movements;
* false reports: the ground network's false events, at the share and with the
  defining-station counts measured by running the issue-3 associator on its
  ``moderate`` scenario (:func:`network_profile`), doubtful drone reports, single
  excess fire pixels from field burning;
* coverage: a sensor network along the middle of the line (down on one day),
  drone patrols, daily cloud cover; what a source could not see, it did not report;
* allegations about violations, lawful events, things that never happened, places
  nobody watched and periods not yet processed, each with the ruling an ideal
  verifier would give from the same data (``expected``).

Observations are generated directly as fusion evidence
(:data:`trucewatch.fusion.incidents.EVIDENCE_SCHEMA`) with ``truth_event`` beside them;
the ground network's own association is benchmarked separately (issue 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import shapely
from numpy.typing import NDArray

from trucewatch.adjudication.allegations import Coverage
from trucewatch.adjudication.rules import RuleBook
from trucewatch.agreement import load_agreement
from trucewatch.demo.builtin import T0, _World, _write_agreement
from trucewatch.fusion.incidents import EVIDENCE_SCHEMA, IncidentFuser, with_seen
from trucewatch.geo.crs import to_wgs84
from trucewatch.model.agreement import Agreement

F = NDArray[np.float64]


@dataclass(frozen=True)
class FieldScenario:
    seed: int = 1
    days: int = 10  # after entry into force; two more days before it
    violations_per_day: float = 8.0  # explosions in restricted zones
    weapon_violations_per_day: float = 1.5
    fire_violations_per_day: float = 0.4
    lawful_explosions_per_day: float = 25.0
    lawful_weapons_per_day: float = 3.0
    vehicles_per_day: float = 4.0
    false_drone_per_day: float = 2.0
    false_fires_per_day: float = 6.0
    p_network: float = 0.85
    p_drone_in_patrol: float = 0.7
    p_fire_after_explosion: float = 0.25
    patrols_per_day: int = 3
    allegations: int = 300


@dataclass
class FieldData:
    scenario: FieldScenario
    agreement: Agreement
    events: pl.DataFrame  # event, klass, latitude, longitude, t, weapon_class, rule
    evidence: pl.DataFrame  # EVIDENCE_SCHEMA + truth_event
    coverage: Coverage
    allegations: list[dict[str, Any]]
    expected: dict[str, str]
    horizon: datetime


def _points(world: _World, along: F, offset_km: F) -> tuple[F, F]:
    line = world.line_m
    d = along * line.length
    pts = shapely.line_interpolate_point(line, d)
    ahead = shapely.line_interpolate_point(line, np.minimum(d + 50, line.length))
    dx = shapely.get_x(ahead) - shapely.get_x(pts)
    dy = shapely.get_y(ahead) - shapely.get_y(pts)
    norm = np.hypot(dx, dy) + 1e-9
    x = shapely.get_x(pts) - dy / norm * offset_km * 1000
    y = shapely.get_y(pts) + dx / norm * offset_km * 1000
    mp = to_wgs84(shapely.MultiPoint(np.column_stack([x, y])), world.crs)
    c = shapely.get_coordinates(mp)
    return c[:, 1], c[:, 0]


def _offset(rng: np.random.Generator, lat: F, lon: F, sigma: F) -> tuple[F, F]:
    n = lat.size
    dn, de = rng.normal(0, 1, n) * sigma, rng.normal(0, 1, n) * sigma
    return lat + dn / 111_320, lon + de / (111_320 * np.cos(np.radians(lat)))


def generate(sc: FieldScenario, workdir: Path) -> FieldData:
    rng = np.random.default_rng(sc.seed)
    world = _World(np.random.default_rng(20260420))  # the built-in line and agreement
    agreement = load_agreement(_write_agreement(workdir, world))
    t0 = agreement.entry_into_force.timestamp()
    start, end = t0 - 2 * 86400, t0 + sc.days * 86400
    total_days = sc.days + 2

    def draw(rate: float, days: float) -> int:
        return int(rng.poisson(rate * days))

    ev: list[dict[str, Any]] = []

    def add(klass: str, n: int, off_lo: float, off_hi: float, t_lo: float, t_hi: float,
            weapon: list[str] | None = None) -> None:
        if n == 0:
            return
        side = rng.choice([-1.0, 1.0], n)
        lat, lon = _points(world, rng.uniform(0.05, 0.95, n), side * rng.uniform(
            off_lo, off_hi, n))
        t = rng.uniform(t_lo, t_hi, n)
        w = rng.choice(weapon, n) if weapon else np.array([None] * n)
        ev.extend({"klass": klass, "latitude": float(a), "longitude": float(b),
                   "t": float(c), "weapon_class": d}
                  for a, b, c, d in zip(lat, lon, t, w, strict=True))

    add("explosion", draw(sc.violations_per_day, sc.days), 0.3, 28, t0, end)
    add("explosion", draw(sc.lawful_explosions_per_day, total_days), 32, 90, start, end)
    add("explosion", draw(sc.violations_per_day, 2), 0.3, 28, start, t0)  # before T0
    add("fire", draw(sc.fire_violations_per_day, sc.days), 0.5, 14, t0, end)
    n_w = draw(sc.weapon_violations_per_day, sc.days)
    add("heavy_weapon", n_w // 2, 16, 29, t0, end, ["artillery"])
    add("heavy_weapon", n_w - n_w // 2, 1, 14, t0, end, ["tank", "artillery"])
    add("heavy_weapon", draw(sc.lawful_weapons_per_day, total_days), 52, 90, start, end,
        ["artillery", "mlrs"])
    add("vehicle_movement", draw(sc.vehicles_per_day, total_days), 1, 40, start, end)
    events = pl.DataFrame(ev, schema={"klass": pl.String, "latitude": pl.Float64,
                                      "longitude": pl.Float64, "t": pl.Float64,
                                      "weapon_class": pl.String}).with_row_index("event")
    events = events.with_columns(("E" + pl.col("event").cast(pl.String)).alias("event"))
    events = events.with_columns(pl.Series("rule", _true_rules(events, agreement)))

    # ---- coverage: network stations along the middle 60 % of the line, down on day 5
    along = np.arange(0.1, 0.85, 0.02)
    s_lat, s_lon = _points(world, np.repeat(along, 2), np.tile([-6.0, 6.0], along.size))
    outage = (t0 + 4 * 86400, t0 + 5 * 86400)
    periods = [(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(outage[0], UTC)),
               (datetime.fromtimestamp(outage[1], UTC), datetime.fromtimestamp(end, UTC))]
    patrols = []
    for d in range(total_days):
        for _ in range(sc.patrols_per_day):
            a0 = rng.uniform(0.05, 0.8)
            p_lat, p_lon = _points(world, np.linspace(a0, a0 + 0.12, 6),
                                   np.full(6, rng.uniform(-20, 20)))
            ts = start + d * 86400 + rng.uniform(4, 14) * 3600
            patrols.append((datetime.fromtimestamp(ts, UTC),
                            datetime.fromtimestamp(ts + 3 * 3600, UTC),
                            list(zip(p_lon.tolist(), p_lat.tolist(), strict=True)), 10_000.0))
    cloud = {(datetime.fromtimestamp(start, UTC) + timedelta(days=d)).date():
             float(np.round(rng.beta(1.2, 2.0), 2)) for d in range(total_days + 1)}
    cov = Coverage(stations=list(zip(s_lat.tolist(), s_lon.tolist(), strict=True)),
                   sensor_periods=periods, satellite_days=dict(cloud), patrols=patrols)
    evidence = _observe(sc, rng, events, cov, world, start, end)
    horizon = datetime.fromtimestamp(end, UTC)
    allegations, expected = _allegations(sc, rng, events, evidence, cov, world, start, end,
                                         horizon)
    return FieldData(sc, agreement, events, evidence, cov, allegations, expected, horizon)


def _true_rules(events: pl.DataFrame, agreement: Agreement) -> list[str | None]:
    """What the agreement says about each true event (a perfect, single observation)."""
    n = events.height
    perfect = events.select(
        pl.col("event").alias("id"), pl.lit("truth").alias("source_kind"),
        pl.col("event").alias("source_id"), pl.col("t").alias("t_start"),
        pl.col("t").alias("t_end"), pl.col("t").alias("seen_start"),
        pl.col("t").alias("seen_end"), "latitude", "longitude", pl.lit(10.0).alias("sigma_m"),
        "klass", pl.lit(1.0).alias("reliability"), "weapon_class", pl.lit(1).alias("count"),
        pl.lit(False).alias("unconfirmed")).cast(EVIDENCE_SCHEMA)  # type: ignore[arg-type]
    fuser = IncidentFuser(reliability={"truth": 1.0})
    inc = fuser.aggregate(perfect.with_columns(pl.Series("incident", np.arange(n))))
    ev = RuleBook(agreement).evaluate(inc).sort("incident")
    return ev["rule"].to_list()


@dataclass(frozen=True)
class NetworkProfile:
    """The ground network as measured: defining stations of real and of false events,
    and the share of located events that are false."""

    real_defining: tuple[int, ...]
    false_defining: tuple[int, ...]
    false_fraction: float
    # false events made of a barrage's mixed detections lie near a real explosion, seconds
    # apart: their distances (km); the others are coincidences anywhere
    near_km: tuple[float, ...] = ()
    near_fraction: float = 0.0


@lru_cache(maxsize=2)
def network_profile(preset: str = "moderate", hours: float = 24.0) -> NetworkProfile:
    """Run the issue-3 associator on its generated scenario and measure what it returns."""
    from dataclasses import replace

    from lab.scoring import score
    from trucewatch.demo.sensors import PRESETS
    from trucewatch.demo.sensors import generate as generate_sensors
    from trucewatch.sensors.association import LOCATED, ExplosionAssociator, Network, Picks

    data = generate_sensors(replace(PRESETS[preset], duration_h=hours))
    net = Network.from_table(data.stations)
    res = ExplosionAssociator(propagation=data.scenario.propagation()).associate(
        net, Picks.from_table(data.detections, net))
    located = res.events.filter(pl.col("status") == LOCATED)
    pred = res.assignments.select("detection_id", "event_id")
    s = score(data.truth, data.detections.select("detection_id", "station"), pred)
    real = set(s.pairs["pred_id"].to_list())
    is_real = located["event_id"].is_in(list(real))
    n_def = located["n_defining"].to_numpy()
    mask = is_real.to_numpy()
    false = located.filter(~is_real)
    tx, ty = data.events["x_km"].to_numpy(), data.events["y_km"].to_numpy()
    tt = data.events["time"].dt.epoch("us").to_numpy() / 1e6
    near = []
    for x, y, t in zip(false["x_km"].to_numpy(), false["y_km"].to_numpy(),
                       false["time"].dt.epoch("us").to_numpy() / 1e6, strict=True):
        close = np.abs(tt - t) < 60
        if close.any():
            d = float(np.hypot(tx[close] - x, ty[close] - y).min())
            if d < 10:
                near.append(d)
    return NetworkProfile(tuple(int(x) for x in n_def[mask]),
                          tuple(int(x) for x in n_def[~mask]),
                          float((~is_real).sum() / max(located.height, 1)),
                          tuple(near), len(near) / max(false.height, 1))


def _observe(sc: FieldScenario, rng: np.random.Generator, events: pl.DataFrame,
             cov: Coverage, world: _World, start: float, end: float) -> pl.DataFrame:
    rows: list[pl.DataFrame] = []
    e = events
    lat, lon, t = e["latitude"].to_numpy(), e["longitude"].to_numpy(), e["t"].to_numpy()
    klass = e["klass"].to_numpy()
    when = [datetime.fromtimestamp(x, UTC) for x in t]
    net = np.array([cov.sensors(a, b, w, w) for a, b, w in zip(lat, lon, when, strict=True)])
    patrol = np.array([bool(cov.drone(a, b, w, w)) for a, b, w in zip(lat, lon, when,
                                                                        strict=True)])

    def frame(idx: NDArray[np.int64], kind: str, source: list[str] | str, sigma: F, dt: F,
              rel: F, t_start: float | None = None, unconfirmed: bool = False,
              klass_override: str | None = None) -> None:
        if idx.size == 0:
            return
        la, lo = _offset(rng, lat[idx], lon[idx], sigma)
        tt = t[idx] + dt
        rows.append(pl.DataFrame({
            "source_kind": kind, "source_id": source, "t_start": tt if t_start is None
            else tt + t_start, "t_end": tt, "latitude": la, "longitude": lo,
            "sigma_m": sigma, "klass": klass_override or klass[idx],
            "reliability": rel,
            "weapon_class": pl.Series(e["weapon_class"].gather(idx).to_list(), dtype=pl.String),
            "count": 1, "unconfirmed": unconfirmed,
            "truth_event": pl.Series(e["event"].gather(idx).to_list(), dtype=pl.String)}))

    boom = np.flatnonzero((klass == "explosion") & net & (rng.random(e.height) < sc.p_network))
    profile = network_profile()
    n_def = rng.choice(np.asarray(profile.real_defining), boom.size)
    frame(boom, "sensor_network", "sensors:network", rng.uniform(20, 80, boom.size),
          rng.normal(0, 0.05, boom.size), np.clip(n_def / 8, 0.3, 1.0))
    seen = np.flatnonzero(np.isin(klass, ["explosion", "heavy_weapon", "vehicle_movement"])
                          & patrol & (rng.random(e.height) < sc.p_drone_in_patrol))
    # weapons are defined by being seen: each true one gets at least one report
    seen = np.union1d(seen, np.flatnonzero(klass == "heavy_weapon"))
    dup = seen[rng.random(seen.size) < 0.3]  # a second report of the same platform
    for idx in (seen, dup):
        frame(idx, "drone", [f"drone:P{k % 4}" for k in idx], rng.uniform(30, 250, idx.size),
              rng.uniform(0, 600, idx.size), rng.uniform(0.6, 0.95, idx.size))
    cloud_ok = np.array([(cov.satellite_days.get(w.date()) or 1.0) <= 0.5 for w in when])
    burn = np.flatnonzero((klass == "explosion") & cloud_ok
                          & (rng.random(e.height) < sc.p_fire_after_explosion))
    frame(burn, "satellite_fire", "satellite:VIIRS", np.full(burn.size, 190.0),
          np.full(burn.size, 3 * 3600.0), np.ones(burn.size), t_start=-12 * 3600.0,
          unconfirmed=True, klass_override="fire")
    fires = np.flatnonzero((klass == "fire") & cloud_ok)
    rep = np.repeat(fires, rng.integers(12, 20, fires.size))
    frame(rep, "satellite_fire", "satellite:VIIRS", np.full(rep.size, 500.0),
          rng.uniform(0, 1800, rep.size), np.ones(rep.size), t_start=-12 * 3600.0,
          unconfirmed=True, klass_override="fire")
    days = (end - start) / 86400
    # the network's false events, at its measured share of what it locates: some from a
    # barrage's mixed detections, near a real explosion; the rest coincidences anywhere
    n_ghost = round(boom.size * profile.false_fraction / (1 - profile.false_fraction))
    n_near = min(round(n_ghost * profile.near_fraction), boom.size)
    if n_near and profile.near_km:
        src = rng.choice(boom, n_near, replace=False)
        dist = rng.choice(np.asarray(profile.near_km), n_near) * 1000
        ang = rng.uniform(0, 2 * np.pi, n_near)
        g_lat = lat[src] + dist * np.cos(ang) / 111_320
        g_lon = lon[src] + dist * np.sin(ang) / (111_320 * np.cos(np.radians(lat[src])))
        tt = t[src] + rng.normal(0, 2, n_near)
        rows.append(pl.DataFrame({
            "source_kind": "sensor_network", "source_id": "sensors:network", "t_start": tt,
            "t_end": tt, "latitude": g_lat, "longitude": g_lon, "sigma_m": 60.0,
            "klass": "explosion", "reliability": np.clip(rng.choice(np.asarray(
                profile.false_defining), n_near) / 8, 0.3, 1.0), "weapon_class": None,
            "count": 1, "unconfirmed": False, "truth_event": None},
            schema_overrides={"weapon_class": pl.String, "truth_event": pl.String}))
    rows += _false_reports(sc, rng, world, start, end, days, n_ghost - n_near, profile)
    out = pl.concat(rows, how="diagonal_relaxed")
    out = with_seen(out.with_columns(("o" + pl.int_range(pl.len()).cast(pl.String)).alias("id")))
    return out.select([*EVIDENCE_SCHEMA, "truth_event"]).cast(
        {**EVIDENCE_SCHEMA, "truth_event": pl.String})  # type: ignore[dict-item]


def _false_reports(sc: FieldScenario, rng: np.random.Generator, world: _World, start: float,
                   end: float, days: float, n_ghost: int, profile: NetworkProfile
                   ) -> list[pl.DataFrame]:
    out = []
    for kind, rate, sigma, rel, klass, unconfirmed, source in (
            ("sensor_network", n_ghost / days, 60.0, None, "explosion", False,
             "sensors:network"),
            ("drone", sc.false_drone_per_day, 150.0, (0.3, 0.5), "explosion", False,
             "drone:P9"),
            ("satellite_fire", sc.false_fires_per_day, 190.0, (1.0, 1.0), "fire", True,
             "satellite:VIIRS")):
        n = int(rng.poisson(rate * days))
        if n == 0:
            continue
        lat, lon = _points(world, rng.uniform(0.05, 0.95, n), rng.uniform(-30, 30, n))
        t = rng.uniform(start, end, n)
        r = (np.clip(rng.choice(np.asarray(profile.false_defining or (4,)), n) / 8, 0.3, 1.0)
             if rel is None else rng.uniform(*rel, n))
        out.append(pl.DataFrame({
            "source_kind": kind, "source_id": source,
            "t_start": t - (12 * 3600 if kind == "satellite_fire" else 0), "t_end": t,
            "latitude": lat, "longitude": lon, "sigma_m": sigma, "klass": klass,
            "reliability": r, "weapon_class": None, "count": 1, "unconfirmed": unconfirmed,
            "truth_event": None}, schema_overrides={"weapon_class": pl.String,
                                                   "truth_event": pl.String}))
    return out


CATEGORY = {"explosion": "explosion", "fire": "fire", "heavy_weapon": "heavy_weapon",
            "vehicle_movement": "other"}


def established_events(evidence: pl.DataFrame, min_fires: int = 12) -> list[str]:
    """True events the data can establish: seen by the network or a drone, or burning in
    at least ``min_fires`` satellite detections; a stray fire pixel alone cannot."""
    g = evidence.drop_nulls("truth_event").group_by("truth_event").agg(
        (pl.col("source_kind") != "satellite_fire").any().alias("direct"),
        (pl.col("source_kind") == "satellite_fire").sum().alias("fires"))
    return g.filter(pl.col("direct") | (pl.col("fires") >= min_fires))["truth_event"].to_list()


def _ideal(cov: Coverage, lat: float, lon: float, t0: datetime, t1: datetime, cat: str,
           observed: bool | str, violation: bool, horizon: datetime) -> str:
    """The ruling of a verifier with perfect fusion: what the data allow one to say."""
    if t1 > horizon:
        return "pending"
    if observed == "weak":  # a stray pixel: enough to place it, not to establish it
        return "insufficient_evidence" if violation else "no_violation"
    if observed:
        return "violation" if violation else "no_violation"
    net = cov.sensors(lat, lon, t0, t1)
    drone = bool(cov.drone(lat, lon, t0, t1))
    sat = cat != "heavy_weapon" and cov.satellite(t0, t1)
    able = {"explosion": net or drone, "fire": drone or sat, "heavy_weapon": drone,
            "other": net or drone}[cat]
    if able:
        return "no_violation"
    return "insufficient_evidence" if (net or drone or sat) else "not_observable"


def _allegations(sc: FieldScenario, rng: np.random.Generator, events: pl.DataFrame,
                 evidence: pl.DataFrame, cov: Coverage, world: _World, start: float,
                 end: float, horizon: datetime) -> tuple[list[dict[str, Any]], dict[str, str]]:
    seen_by = evidence.drop_nulls("truth_event").group_by("truth_event").agg(
        pl.col("source_kind"))
    observed = set(seen_by["truth_event"].to_list())
    established = set(established_events(evidence))
    out, expected = [], {}
    ev = events.to_dicts()
    vio = [x for x in ev if x["rule"] is not None]
    lawful = [x for x in ev if x["rule"] is None]
    e_lat, e_lon, e_t = (events["latitude"].to_numpy(), events["longitude"].to_numpy(),
                         events["t"].to_numpy())
    for k in range(sc.allegations):
        u = rng.random()
        err_km = rng.uniform(0.3, 2.0)
        if u < 0.6:  # about something that happened: mostly alleged violations
            pool = vio if u < 0.45 else lawful
            e = pool[int(rng.integers(len(pool)))]
            lat, lon = _offset(rng, np.array([e["latitude"]]), np.array([e["longitude"]]),
                               np.array([err_km * 1000]))
            lat0, lon0, t = float(lat[0]), float(lon[0]), e["t"] - rng.uniform(0, 1800)
            cat = CATEGORY[e["klass"]]
            is_vio = e["rule"] is not None
            # seen, but only as a stray fire pixel: a verifier cannot establish it
            obs = (e["event"] in established) or ("weak" if e["event"] in observed else False)
        else:  # nothing happened there: far (> 10 km, > 6 h) from every event
            for _ in range(50):
                a, b = _points(world, rng.uniform(0.05, 0.95, 1), rng.uniform(-30, 30, 1))
                lat0, lon0, t = float(a[0]), float(b[0]), float(rng.uniform(start, end - 7200))
                d = np.hypot((e_lat - lat0) * 111, (e_lon - lon0) * 74)
                if not ((d < 10) & (np.abs(e_t - t) < 6 * 3600)).any():
                    break
            cat = str(rng.choice(["explosion", "fire", "heavy_weapon"]))
            obs = is_vio = False
        if u > 0.93:
            t = end + rng.uniform(3600, 86400)  # not processed yet
        t0 = datetime.fromtimestamp(t, UTC)
        t1 = t0 + timedelta(hours=float(rng.uniform(1, 3)))
        aid = f"A{k:04d}"
        out.append({"allegation_id": aid, "claimant": "bench", "claimant_kind": "party",
                    "resolved": {"lat": lat0, "lon": lon0, "uncertainty_m": err_km * 1000,
                                 "where": "coordinates", "category": cat,
                                 "time_start": t0.isoformat().replace("+00:00", "Z"),
                                 "time_end": t1.isoformat().replace("+00:00", "Z")}})
        expected[aid] = _ideal(cov, lat0, lon0, t0, t1, cat, obs, is_vio, horizon)
    return out, expected


__all__ = ["T0", "FieldData", "FieldScenario", "generate"]
