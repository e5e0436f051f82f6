"""Generated ground-sensor scenarios with ground truth (benchmark, tests, built-in scenario).

A front sector of ``length_km`` x ``depth_km`` with stations on a jittered grid
(some of them arrays that also measure back-azimuth). Explosions come in
barrages: barrage starts are a Poisson process, each barrage fires a geometric
number of rounds at one target area with exponential gaps between rounds, so
peaks reach several explosions per second. Charges are log-normal (kg TNT).

A station detects an explosion with a probability that falls with distance as a
logistic curve whose 50 % range grows with the cube root of the charge
(Hopkinson scaling). Arrival times follow the same propagation models the
associator uses (wind and temperature included), plus Gaussian timing noise and a
small random model error proportional to travel time (turbulence). Stations
drop out for hours, and false detections (wind noise, traffic, outgoing fire)
are added at ``false_ratio`` of the real ones. Everything is seeded.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from trucewatch.geo.crs import _transformer, local_laea
from trucewatch.ingest.sensors import NEAR_DUPLICATE_S
from trucewatch.sensors.propagation import (
    ACOUSTIC,
    PHASE_NAMES,
    AcousticModel,
    P,
    Propagation,
    SeismicModel,
)

# 50 % detection range per kg^(1/3) of charge, km, and the logistic width (fraction)
_R50 = {("acoustic", ACOUSTIC): 10.0, ("infrasound", ACOUSTIC): 18.0,
        ("seismic", P): 6.0, ("seismic", ACOUSTIC): 6.0}
_KINDS = ("acoustic", "infrasound", "seismic")


@dataclass(frozen=True)
class SensorScenario:
    name: str = "moderate"
    seed: int = 1
    lat0: float = 48.55  # centre of the sector (default: the Donbas front near Bakhmut)
    lon0: float = 38.0
    length_km: float = 100.0
    depth_km: float = 40.0
    n_stations: int = 50
    array_fraction: float = 0.2
    kind_weights: tuple[float, float, float] = (0.6, 0.15, 0.25)  # acoustic, infrasound, seismic
    start: str = "2026-05-01T00:00:00Z"
    duration_h: float = 24.0
    explosions_per_day: float = 300.0
    rounds_per_barrage: float = 4.0  # mean
    round_gap_s: float = 1.5  # mean gap between rounds of one barrage
    barrage_radius_km: float = 0.5
    charge_median_kg: float = 6.0
    false_ratio: float = 0.2
    timing_sigma_s: float = 0.05
    model_error: float = 0.002  # random travel-time error, fraction (turbulence)
    temperature_c: float = 12.0
    wind_east_m_s: float = 4.0
    wind_north_m_s: float = 1.0
    dropout_fraction: float = 0.1  # stations that are down for part of the period
    outside_margin_km: float = 0.0  # explosions also this far outside the sector
    amplitude_scatter: float = 0.4  # natural-log sigma of amplitudes around the decay law

    def propagation(self) -> Propagation:
        return Propagation(AcousticModel(self.temperature_c, self.wind_east_m_s,
                                         self.wind_north_m_s), SeismicModel.homogeneous())


PRESETS: dict[str, SensorScenario] = {
    # no noise, no wind, no false detections, single rounds: checks every method's wiring
    "clean": SensorScenario("clean", seed=10, n_stations=30, explosions_per_day=200,
                            rounds_per_barrage=1.0, false_ratio=0.0, timing_sigma_s=0.0,
                            model_error=0.0, wind_east_m_s=0.0, wind_north_m_s=0.0,
                            dropout_fraction=0.0, amplitude_scatter=0.0),
    "quiet": SensorScenario("quiet", seed=11, n_stations=30, explosions_per_day=20,
                            rounds_per_barrage=1.5, false_ratio=0.1, wind_east_m_s=0.0,
                            wind_north_m_s=0.0, dropout_fraction=0.0),
    "moderate": SensorScenario("moderate", seed=12),
    # the same without wind: what an associator without a wind model loses
    "moderate_calm": SensorScenario("moderate_calm", seed=12, wind_east_m_s=0.0,
                                    wind_north_m_s=0.0),
    "barrage": SensorScenario("barrage", seed=13, n_stations=80, explosions_per_day=3000,
                              rounds_per_barrage=6, round_gap_s=1.0, false_ratio=0.5,
                              wind_east_m_s=8.0, wind_north_m_s=-3.0, dropout_fraction=0.15),
}


@dataclass
class SensorScenarioData:
    scenario: SensorScenario
    stations: pl.DataFrame  # id, latitude, longitude, elevation_m, kind, array, timing_s
    detections: pl.DataFrame  # detection_id, station, time, phase, back_azimuth_deg, amplitude, snr
    events: pl.DataFrame  # event_id, time, latitude, longitude, x_km, y_km, charge_kg
    truth: pl.DataFrame  # detection_id, event_id (null for false detections)
    crs: str

    def write(self, folder: Path) -> dict[str, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = {k: folder / f"{k}.csv" for k in ("stations", "detections", "events", "truth")}
        self.stations.write_csv(paths["stations"])
        _with_iso(self.detections).write_csv(paths["detections"])
        _with_iso(self.events).write_csv(paths["events"])
        self.truth.write_csv(paths["truth"])
        paths["scenario"] = folder / "scenario.json"
        paths["scenario"].write_text(json.dumps(asdict(self.scenario), indent=1))
        sc = self.scenario
        paths["weather"] = folder / "weather.json"
        paths["weather"].write_text(json.dumps({
            "temperature_c": sc.temperature_c, "wind_east_m_s": sc.wind_east_m_s,
            "wind_north_m_s": sc.wind_north_m_s}, indent=1))
        return paths


def _with_iso(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col("time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))


def generate(sc: SensorScenario) -> SensorScenarioData:
    rng = np.random.default_rng(sc.seed)
    crs = local_laea(sc.lon0, sc.lat0)
    to_ll = _transformer(crs, "EPSG:4326")
    prop = sc.propagation()

    # stations: jittered grid over the sector
    n = sc.n_stations
    cols = max(1, round(math.sqrt(n * sc.length_km / sc.depth_km)))
    rows = math.ceil(n / cols)
    gx, gy = np.meshgrid((np.arange(cols) + 0.5) / cols, (np.arange(rows) + 0.5) / rows)
    gx, gy = gx.ravel()[:n], gy.ravel()[:n]
    jit = 0.3
    sx = (gx + rng.uniform(-jit, jit, n) / cols - 0.5) * sc.length_km
    sy = (gy + rng.uniform(-jit, jit, n) / rows - 0.5) * sc.depth_km
    kinds = rng.choice(len(_KINDS), size=n, p=np.array(sc.kind_weights) / sum(sc.kind_weights))
    is_array = (rng.random(n) < sc.array_fraction) & (kinds != 2)
    elev = rng.uniform(80, 260, n)  # m, Donbas steppe
    timing = np.where(kinds == 2, 0.001, 0.002)
    lon, lat = to_ll.transform(sx * 1000, sy * 1000)
    ids = [f"{'AIS'[k]}{i + 1:03d}" for i, k in enumerate(kinds)]
    stations = pl.DataFrame({
        "id": ids, "latitude": np.round(lat, 6), "longitude": np.round(lon, 6),
        "elevation_m": np.round(elev, 1), "kind": [_KINDS[k] for k in kinds],
        "array": is_array, "timing_s": timing})

    # explosions: barrages (Poisson clusters)
    dur = sc.duration_h * 3600.0
    n_barrages = rng.poisson(sc.explosions_per_day * sc.duration_h / 24 / sc.rounds_per_barrage)
    b_time = rng.uniform(0, dur, n_barrages)
    half_l = sc.length_km / 2 + sc.outside_margin_km
    half_d = sc.depth_km / 2 + sc.outside_margin_km
    b_x = rng.uniform(-half_l, half_l, n_barrages)
    b_y = rng.uniform(-half_d, half_d, n_barrages)
    b_rounds = rng.geometric(1 / sc.rounds_per_barrage, n_barrages)
    k = np.repeat(np.arange(n_barrages), b_rounds)
    gaps = rng.exponential(sc.round_gap_s, len(k))
    first = np.r_[0, np.cumsum(b_rounds)[:-1]]
    cs = np.cumsum(gaps)
    e_t = b_time[k] + cs - cs[first][k]  # the first round of a barrage at its start
    e_x = b_x[k] + rng.normal(0, sc.barrage_radius_km, len(k))
    e_y = b_y[k] + rng.normal(0, sc.barrage_radius_km, len(k))
    keep = e_t < dur
    e_t, e_x, e_y = e_t[keep], e_x[keep], e_y[keep]
    order = np.argsort(e_t)
    e_t, e_x, e_y = e_t[order], e_x[order], e_y[order]
    n_ev = len(e_t)
    charge = rng.lognormal(math.log(sc.charge_median_kg), 0.8, n_ev)

    # detections: every (event, station, phase) draw
    st_phase = [(i, ACOUSTIC) for i in range(n)] + [(i, P) for i in range(n) if kinds[i] == 2]
    sp_st = np.array([s for s, _ in st_phase])
    sp_ph = np.array([p for _, p in st_phase], dtype=np.int8)
    r50 = np.array([_R50[(_KINDS[kinds[s]], p)] for s, p in st_phase])
    ev_i = np.repeat(np.arange(n_ev), len(st_phase))
    sp_i = np.tile(np.arange(len(st_phase)), n_ev)
    st_i = sp_st[sp_i]
    dx = sx[st_i] - e_x[ev_i]
    dy = sy[st_i] - e_y[ev_i]
    dz = (elev[st_i] - elev.min()) / 1000.0
    dist = np.sqrt(dx * dx + dy * dy + dz * dz)
    range50 = r50[sp_i] * np.cbrt(charge[ev_i])
    p_det = 1.0 / (1.0 + np.exp((dist - range50) / (0.15 * range50)))
    hit = rng.random(len(p_det)) < p_det
    ev_i, sp_i, st_i, dx, dy, dz, dist = (a[hit] for a in (ev_i, sp_i, st_i, dx, dy, dz, dist))
    ph = sp_ph[sp_i]
    tt = prop.travel_time(ph, dx, dy, dz)
    tt *= 1 + rng.normal(0, sc.model_error, len(tt))
    sigma = np.where(ph == ACOUSTIC, sc.timing_sigma_s, 0.4 * sc.timing_sigma_s)
    d_t = e_t[ev_i] + tt + rng.normal(0, 1, len(tt)) * np.hypot(sigma, timing[st_i])
    # outages: a station is down for one to six hours
    down = rng.random(n) < sc.dropout_fraction
    out_start = rng.uniform(0, dur, n)
    out_len = rng.uniform(3600, 6 * 3600, n)
    up = ~(down[st_i] & (d_t >= out_start[st_i]) & (d_t < out_start[st_i] + out_len[st_i]))
    ev_i, st_i, ph, d_t, dx, dy, dist = (a[up] for a in (ev_i, st_i, ph, d_t, dx, dy, dist))
    baz = np.degrees(np.arctan2(-dx, -dy)) % 360  # from station towards the source
    # peak amplitude: charge over distance^1.3, with site and path scatter (lognormal)
    amp = 1e3 * charge[ev_i] / np.maximum(dist, 0.1) ** 1.3 * rng.lognormal(
        0, sc.amplitude_scatter, len(dist))
    snr = np.clip(amp / 5.0 * rng.lognormal(0, 0.3, len(amp)), 1.0, 1e4)

    # false detections, uniform in time, at stations in proportion to their real ones
    n_false = round(sc.false_ratio * len(d_t))
    f_st = rng.choice(st_i, n_false) if len(st_i) else rng.integers(0, n, n_false)
    f_ph = np.where(kinds[f_st] == 2, rng.choice([ACOUSTIC, P], n_false), ACOUSTIC)
    f_t = rng.uniform(0, dur, n_false)
    f_baz = rng.uniform(0, 360, n_false)
    f_snr = rng.lognormal(math.log(3), 0.5, n_false)
    # a false detection passed the same detector: its amplitude looks like a real one's
    f_amp = rng.choice(amp, n_false) if len(amp) else rng.lognormal(3, 1, n_false)

    all_st = np.r_[st_i, f_st]
    all_ph = np.r_[ph, f_ph].astype(np.int8)
    all_t = np.r_[d_t, f_t]
    all_ev = np.r_[ev_i, np.full(n_false, -1)]
    all_baz = np.r_[baz + rng.normal(0, 3, len(baz)), f_baz] % 360
    all_snr = np.r_[snr, f_snr]
    all_amp = np.r_[amp, f_amp]
    order = np.argsort(all_t, kind="stable")
    # a picker's dead time: one station and phase cannot pick twice within it (two rounds
    # arriving together make one pick, the first), as the intake's near-duplicate check
    # assumes (ingest.sensors.NEAR_DUPLICATE_S)
    by_pick = np.lexsort((all_t[order], all_ph[order], all_st[order]))
    o = order[by_pick]
    same = np.r_[False, (all_st[o][1:] == all_st[o][:-1]) & (all_ph[o][1:] == all_ph[o][:-1])]
    close = np.r_[False, np.diff(all_t[o]) < NEAR_DUPLICATE_S] & same
    dropped = np.zeros(len(all_t), bool)
    dropped[o[close]] = True
    order = order[~dropped[order]]
    all_st, all_ph, all_t, all_ev, all_baz, all_snr, all_amp = (
        a[order] for a in (all_st, all_ph, all_t, all_ev, all_baz, all_snr, all_amp))
    start_us = int(started_at(sc).timestamp() * 1e6)
    det_ids = [f"D{i + 1:07d}" for i in range(len(all_t))]
    ev_ids = np.array([f"E{i + 1:06d}" for i in range(n_ev)], dtype=object)
    has_baz = is_array[all_st]
    detections = pl.DataFrame({
        "detection_id": det_ids,
        "station": np.array(ids, dtype=object)[all_st].tolist(),
        "time": pl.Series(np.round(all_t * 1e6).astype(np.int64) + start_us
                          ).cast(pl.Datetime("us", "UTC")),
        "phase": [PHASE_NAMES[p] for p in all_ph],
        "back_azimuth_deg": np.where(has_baz, np.round(all_baz, 1), np.nan),
        "amplitude": np.round(all_amp, 3),
        "snr": np.round(all_snr, 2),
    }).with_columns(pl.col("back_azimuth_deg").fill_nan(None))
    e_lon, e_lat = to_ll.transform(e_x * 1000, e_y * 1000)
    events = pl.DataFrame({
        "event_id": ev_ids.tolist(),
        "time": pl.Series(np.round(e_t * 1e6).astype(np.int64) + start_us
                          ).cast(pl.Datetime("us", "UTC")),
        "latitude": e_lat, "longitude": e_lon, "x_km": e_x, "y_km": e_y,
        "charge_kg": np.round(charge, 2)})
    truth = pl.DataFrame({"detection_id": det_ids,
                          "event_id": [ev_ids[e] if e >= 0 else None for e in all_ev]},
                         schema={"detection_id": pl.String, "event_id": pl.String})
    return SensorScenarioData(sc, stations, detections, events, truth, crs)


def started_at(sc: SensorScenario) -> datetime:
    return datetime.fromisoformat(sc.start.replace("Z", "+00:00")).astimezone(UTC)
