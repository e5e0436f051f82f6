"""Independent acoustic scenario families with ground truth, and the oracle bound.

This generator is deliberately *not* :mod:`trucewatch.demo.sensors` (the one the
associator was developed on). Every modelling choice differs, so that a benchmark
on it says how the associator carries over to networks it was not tuned on:

* **Station layouts** (``layout``): a regular ``grid``; ``random`` (uniform);
  ``roads`` (stations clustered along a few straight roads that cross the
  sector, as when sensors go where vehicles can reach); ``arrays`` (fewer sites,
  most of them small arrays that also measure back-azimuth).
* **Detection**: an amplitude threshold, not a logistic curve. A detection's peak
  amplitude is ``K * charge / distance**1.5`` with 0.5 (ln) of site and path
  scatter; a station detects when the amplitude exceeds 3x its own noise level,
  and every station has its own noise level (log-normal across stations), so the
  detection probability depends on range, charge and station.
* **Timing noise**: range dependent, ``sigma = sqrt(s0**2 + (k * d)**2)`` (a station's
  pick noise ``s0`` grows with its noise level; ``k`` is turbulence, seconds per
  km), and heavy tailed: Student-t with 4 degrees of freedom and scale ``sigma``.
* **False detections** (``false_process``): ``uniform`` in time;
  ``bursty`` (wind gusts and traffic: bursts of detections at one station within
  tens of seconds); ``correlated`` (local noise sources, such as a generator or a
  vehicle, heard coherently by the 2-3 stations nearest to them, plus a uniform
  share). The per-station false rate varies by a log-normal factor.
* **Explosions** in barrages whose round gaps and dispersion depend on the
  intensity (``quiet``, ``busy``, ``dense``), charges by weapon type (mortar,
  artillery, rockets).

Everything is seeded. :func:`oracle_assignments` is the bound: it knows every true
explosion's place and time and gives each detection to the explosion whose
predicted arrival fits it best within 3 sigma of the range-dependent timing noise;
events with fewer than 4 detections are dropped. What it gets wrong is the
ambiguity the physics leaves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np
import polars as pl
from numpy.typing import NDArray

from trucewatch.geo.crs import _transformer, local_laea
from trucewatch.sensors.propagation import (
    ACOUSTIC,
    PHASE_NAMES,
    AcousticModel,
    P,
    Propagation,
    SeismicModel,
)

LAYOUTS = ("grid", "random", "roads", "arrays")
FALSE_PROCESSES = ("uniform", "bursty", "correlated")
# weapon types: share of barrages, median charge (kg TNT)
_WEAPONS = ((0.4, 3.0), (0.45, 8.0), (0.15, 20.0))


@dataclass(frozen=True)
class Intensity:
    explosions_per_day: float
    rounds_mean: float  # mean rounds per barrage (geometric)
    gap_mean_s: float  # mean gap between rounds (gamma, shape 2)
    dispersion_km: float  # spread of the rounds of one barrage around its aim point
    false_ratio: float  # false detections per true detection
    hours: float  # default duration


INTENSITIES: dict[str, Intensity] = {
    # rare, mostly single explosions
    "quiet": Intensity(40, 1.3, 30.0, 0.3, 0.2, 24.0),
    # 600 a day, shells about every 20 s within a barrage
    "busy": Intensity(600, 6.0, 20.0, 0.3, 0.3, 4.0),
    # thousands a day, mostly in barrages of shells seconds apart; false = half the true
    "dense": Intensity(4000, 10.0, 3.0, 0.25, 0.5, 1.0),
}


@dataclass(frozen=True)
class FamilyScenario:
    layout: str = "grid"
    false_process: str = "uniform"
    intensity: str = "quiet"
    seed: int = 1
    hours: float | None = None  # None: the intensity's default
    lat0: float = 47.9
    lon0: float = 37.3
    width_km: float = 60.0
    height_km: float = 40.0
    n_stations: int = 36
    outside_km: float = 5.0  # explosions also this far outside the sector
    turbulence_s_per_km: float = 0.004
    baz_sigma_deg: float = 4.0
    temperature_c: float = 8.0
    wind_east_m_s: float = -3.0
    wind_north_m_s: float = 2.0
    outage_fraction: float = 0.1
    start: str = "2026-06-01T00:00:00Z"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS or self.false_process not in FALSE_PROCESSES or (
                self.intensity not in INTENSITIES):
            raise ValueError(f"unknown family {self.layout}/{self.false_process}/"
                             f"{self.intensity}")

    @property
    def name(self) -> str:
        return f"{self.layout}-{self.false_process}-{self.intensity}"

    @property
    def duration_h(self) -> float:
        return self.hours if self.hours is not None else INTENSITIES[self.intensity].hours

    # the names the peers' input writer reads (same as SensorScenario)
    def propagation(self) -> Propagation:
        return Propagation(AcousticModel(self.temperature_c, self.wind_east_m_s,
                                         self.wind_north_m_s), SeismicModel.homogeneous())


# The benchmark's families: every layout, every false-detection process, each at
# every intensity. Layout and false process are paired so that each appears.
FAMILIES: dict[str, FamilyScenario] = {
    "grid-uniform": FamilyScenario("grid", "uniform"),
    "random-bursty": FamilyScenario("random", "bursty"),
    "roads-correlated": FamilyScenario("roads", "correlated", n_stations=40),
    "arrays-uniform": FamilyScenario("arrays", "uniform", n_stations=24),
}


def family(name: str, intensity: str, seed: int = 1, hours: float | None = None
           ) -> FamilyScenario:
    return replace(FAMILIES[name], intensity=intensity, seed=seed, hours=hours)


@dataclass
class FamilyData:
    scenario: FamilyScenario
    stations: pl.DataFrame  # id, latitude, longitude, elevation_m, kind, array, timing_s
    detections: pl.DataFrame  # detection_id, station, time, phase, back_azimuth_deg, amplitude, snr
    events: pl.DataFrame  # event_id, time, latitude, longitude, x_km, y_km, charge_kg
    truth: pl.DataFrame  # detection_id, event_id (null for false detections)
    crs: str
    # generator-frame geometry, for the oracle and the Cramer-Rao bound
    sx: NDArray[np.float64]
    sy: NDArray[np.float64]
    sz: NDArray[np.float64]
    s0: NDArray[np.float64]  # per-station pick noise (s)

    def sigma(self, station: NDArray[np.int64], dist_km: NDArray[np.float64]
              ) -> NDArray[np.float64]:
        """Scale of the timing noise for a station at a distance (the generator's)."""
        k = self.scenario.turbulence_s_per_km
        return np.sqrt(self.s0[station] ** 2 + (k * dist_km) ** 2)


def _layout(sc: FamilyScenario, rng: np.random.Generator
            ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    n, w, h = sc.n_stations, sc.width_km, sc.height_km
    if sc.layout == "grid":
        cols = max(1, round(math.sqrt(n * w / h)))
        rows = math.ceil(n / cols)
        gx, gy = np.meshgrid((np.arange(cols) + 0.5) / cols, (np.arange(rows) + 0.5) / rows)
        x = (gx.ravel()[:n] - 0.5) * w + rng.normal(0, 0.2, n)
        y = (gy.ravel()[:n] - 0.5) * h + rng.normal(0, 0.2, n)
        arr = rng.random(n) < 0.15
    elif sc.layout == "random":
        x = rng.uniform(-w / 2, w / 2, n)
        y = rng.uniform(-h / 2, h / 2, n)
        arr = rng.random(n) < 0.15
    elif sc.layout == "roads":
        # three straight roads across the sector; stations within 300 m of them
        n_roads = 3
        road = rng.integers(0, n_roads, n)
        ang = rng.uniform(0, math.pi, n_roads)
        off = rng.uniform(-0.3, 0.3, n_roads) * np.array([w, h]).min()
        along = rng.uniform(-0.5, 0.5, n) * math.hypot(w, h)
        ux, uy = np.cos(ang[road]), np.sin(ang[road])
        x = ux * along - uy * off[road] + rng.normal(0, 0.3, n)
        y = uy * along + ux * off[road] + rng.normal(0, 0.3, n)
        # keep them in the sector: stations off it are redrawn along their road
        for _ in range(50):
            out = (np.abs(x) > w / 2) | (np.abs(y) > h / 2)
            if not out.any():
                break
            along[out] = rng.uniform(-0.5, 0.5, int(out.sum())) * math.hypot(w, h)
            x = ux * along - uy * off[road] + rng.normal(0, 0.3, n)
            y = uy * along + ux * off[road] + rng.normal(0, 0.3, n)
        x, y = np.clip(x, -w / 2, w / 2), np.clip(y, -h / 2, h / 2)
        arr = rng.random(n) < 0.15
    else:  # arrays: sites on a jittered hexagonal pattern, most of them arrays
        pts: list[tuple[float, float]] = []
        spacing = math.sqrt(w * h / n * 2 / math.sqrt(3))
        row = 0
        yy = -h / 2 + spacing / 2
        while yy < h / 2:
            xx = -w / 2 + spacing / 2 + (spacing / 2 if row % 2 else 0)
            while xx < w / 2:
                pts.append((xx, yy))
                xx += spacing
            yy += spacing * math.sqrt(3) / 2
            row += 1
        pts_a = np.array(pts)[rng.permutation(len(pts))[:n]]
        m = len(pts_a)
        x = pts_a[:, 0] + rng.normal(0, 0.15 * spacing, m)
        y = pts_a[:, 1] + rng.normal(0, 0.15 * spacing, m)
        arr = rng.random(m) < 0.8
    return x, y, arr


def generate(sc: FamilyScenario) -> FamilyData:
    rng = np.random.default_rng([sc.seed, LAYOUTS.index(sc.layout),
                                 FALSE_PROCESSES.index(sc.false_process),
                                 list(INTENSITIES).index(sc.intensity)])
    inten = INTENSITIES[sc.intensity]
    crs = local_laea(sc.lon0, sc.lat0)
    to_ll = _transformer(crs, "EPSG:4326")
    prop = sc.propagation()
    dur = sc.duration_h * 3600.0

    # ---- stations
    sx, sy, is_array = _layout(sc, rng)
    n = len(sx)
    seismic = (rng.random(n) < 0.2) & ~is_array
    elev = rng.uniform(100, 180, n) + 0.3 * sx  # a gentle slope, m
    sz = (elev - elev.min()) / 1000.0
    noise = rng.lognormal(0.0, 0.5, n)  # station noise level (1 = typical)
    s0 = 0.03 * noise ** 0.7  # pick noise grows with the noise level
    ids = [f"{'SK'[int(s)]}{sc.layout[0].upper()}{i + 1:03d}" for i, s in enumerate(seismic)]
    lon, lat = to_ll.transform(sx * 1000, sy * 1000)
    stations = pl.DataFrame({
        "id": ids, "latitude": np.round(lat, 6), "longitude": np.round(lon, 6),
        "elevation_m": np.round(elev, 1),
        "kind": ["seismic" if s else "acoustic" for s in seismic],
        "array": is_array, "timing_s": np.full(n, 0.001)})

    # ---- explosions: barrages
    n_bar = rng.poisson(inten.explosions_per_day * sc.duration_h / 24 / inten.rounds_mean)
    b_t = rng.uniform(0, dur, n_bar)
    hw, hh = sc.width_km / 2 + sc.outside_km, sc.height_km / 2 + sc.outside_km
    b_x, b_y = rng.uniform(-hw, hw, n_bar), rng.uniform(-hh, hh, n_bar)
    b_rounds = rng.geometric(1 / inten.rounds_mean, n_bar)
    weapon = rng.choice(len(_WEAPONS), n_bar, p=[p for p, _ in _WEAPONS])
    b_charge = np.array([c for _, c in _WEAPONS])[weapon]
    k = np.repeat(np.arange(n_bar), b_rounds)
    gaps = rng.gamma(2.0, inten.gap_mean_s / 2.0, len(k))
    first = (np.cumsum(b_rounds) - b_rounds).astype(np.int64)
    cs = np.cumsum(gaps)
    e_t = b_t[k] + cs - cs[first][k]
    e_x = b_x[k] + rng.normal(0, inten.dispersion_km, len(k))
    e_y = b_y[k] + rng.normal(0, inten.dispersion_km, len(k))
    charge = b_charge[k] * rng.lognormal(0, 0.4, len(k))
    keep = e_t < dur
    e_t, e_x, e_y, charge = e_t[keep], e_x[keep], e_y[keep], charge[keep]
    order = np.argsort(e_t)
    e_t, e_x, e_y, charge = e_t[order], e_x[order], e_y[order], charge[order]
    n_ev = len(e_t)

    # ---- detections: amplitude above 3x the station noise
    sp_st = np.r_[np.arange(n), np.flatnonzero(seismic)]
    sp_ph = np.r_[np.full(n, ACOUSTIC), np.full(int(seismic.sum()), P)].astype(np.int8)
    gain = np.where(sp_ph == P, 12.0, 40.0)  # ground motion from a surface blast is weaker
    ev_i = np.repeat(np.arange(n_ev), len(sp_st))
    sp_i = np.tile(np.arange(len(sp_st)), n_ev)
    st_i = sp_st[sp_i]
    dx, dy = sx[st_i] - e_x[ev_i], sy[st_i] - e_y[ev_i]
    dist = np.sqrt(dx * dx + dy * dy + sz[st_i] ** 2)
    amp = gain[sp_i] * charge[ev_i] / np.maximum(dist, 0.2) ** 1.5 * rng.lognormal(
        0, 0.5, len(dist))
    hit = amp > 3.0 * noise[st_i]
    ev_i, sp_i, st_i, dx, dy, dist, amp = (a[hit] for a in
                                           (ev_i, sp_i, st_i, dx, dy, dist, amp))
    ph = sp_ph[sp_i]
    tt = prop.travel_time(ph, dx, dy, sz[st_i])
    sig = np.sqrt(s0[st_i] ** 2 + (sc.turbulence_s_per_km * dist) ** 2)
    sig = np.where(ph == P, 0.5 * sig, sig)
    d_t = e_t[ev_i] + tt + sig * rng.standard_t(4, len(tt))
    # outages: a tenth of the stations are down for 20 min to 3 h
    down = rng.random(n) < sc.outage_fraction
    o_start, o_len = rng.uniform(-1800, dur, n), rng.uniform(1200, 3 * 3600, n)
    up = ~(down[st_i] & (d_t >= o_start[st_i]) & (d_t < o_start[st_i] + o_len[st_i]))
    ev_i, st_i, ph, d_t, dx, dy, dist, amp = (a[up] for a in
                                              (ev_i, st_i, ph, d_t, dx, dy, dist, amp))
    baz = (np.degrees(np.arctan2(-dx, -dy))
           + sc.baz_sigma_deg * rng.standard_t(4, len(dx))) % 360

    # ---- false detections
    n_false = round(inten.false_ratio * len(d_t))
    rate_w = noise * rng.lognormal(0, 1.0, n)  # some stations are far noisier
    rate_w /= rate_w.sum()
    f_st, f_t = _false(sc, rng, n_false, rate_w, sx, sy, sz, prop, dur)
    n_false = len(f_t)
    f_ph = np.where(seismic[f_st] & (rng.random(n_false) < 0.4), P, ACOUSTIC).astype(np.int8)
    f_amp = 3.0 * noise[f_st] * (1 + rng.exponential(1.0, n_false))
    f_baz = rng.uniform(0, 360, n_false)

    all_st = np.r_[st_i, f_st]
    all_ph = np.r_[ph, f_ph].astype(np.int8)
    all_t = np.r_[d_t, f_t]
    all_ev = np.r_[ev_i, np.full(n_false, -1)]
    all_amp = np.r_[amp, f_amp]
    all_baz = np.r_[baz, f_baz]
    order = np.argsort(all_t, kind="stable")
    all_st, all_ph, all_t, all_ev, all_amp, all_baz = (
        a[order] for a in (all_st, all_ph, all_t, all_ev, all_amp, all_baz))
    start_us = int(datetime.fromisoformat(sc.start.replace("Z", "+00:00"))
                   .astimezone(UTC).timestamp() * 1e6)
    det_ids = [f"F{i + 1:07d}" for i in range(len(all_t))]
    ev_ids = np.array([f"X{i + 1:06d}" for i in range(n_ev)], dtype=object)
    detections = pl.DataFrame({
        "detection_id": det_ids,
        "station": np.array(ids, dtype=object)[all_st].tolist(),
        "time": pl.Series(np.round(all_t * 1e6).astype(np.int64) + start_us
                          ).cast(pl.Datetime("us", "UTC")),
        "phase": [PHASE_NAMES[p] for p in all_ph],
        "back_azimuth_deg": np.where(is_array[all_st], np.round(all_baz, 1), np.nan),
        "amplitude": np.round(all_amp, 4),
        "snr": np.round(all_amp / (noise[all_st]), 2),
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
    return FamilyData(sc, stations, detections, events, truth, crs, sx, sy, sz, s0)


def _false(sc: FamilyScenario, rng: np.random.Generator, n_false: int, rate_w: NDArray[np.float64],
           sx: NDArray[np.float64], sy: NDArray[np.float64], sz: NDArray[np.float64],
           prop: Propagation, dur: float) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    n = len(sx)
    if sc.false_process == "uniform" or n_false == 0:
        return rng.choice(n, n_false, p=rate_w), rng.uniform(0, dur, n_false)
    if sc.false_process == "bursty":
        # bursts of a geometric number of detections (mean 8), 4 s apart on average
        n_burst = max(1, n_false // 8)
        b_st = rng.choice(n, n_burst, p=rate_w)
        size = rng.geometric(1 / 8, n_burst)
        st = np.repeat(b_st, size)
        k = np.repeat(np.arange(n_burst), size)
        gaps = rng.exponential(4.0, len(k))
        first = (np.cumsum(size) - size).astype(np.int64)
        cs = np.cumsum(gaps)
        t = rng.uniform(0, dur, n_burst)[k] + cs - cs[first][k]
        return st[:n_false], t[:n_false]
    # correlated: local sources near stations heard by the 2-3 nearest; a third uniform
    n_uni = n_false // 3
    st_u, t_u = rng.choice(n, n_uni, p=rate_w), rng.uniform(0, dur, n_uni)
    n_src = (n_false - n_uni) // 2
    near = rng.choice(n, n_src, p=rate_w)
    src_x = sx[near] + rng.normal(0, 1.5, n_src)
    src_y = sy[near] + rng.normal(0, 1.5, n_src)
    src_t = rng.uniform(0, dur, n_src)
    d = np.hypot(sx[None, :] - src_x[:, None], sy[None, :] - src_y[:, None])
    k_heard = rng.integers(2, 4, n_src)
    nearest = np.argsort(d, axis=1)[:, :3]
    src = np.repeat(np.arange(n_src), k_heard)
    rank = np.concatenate([np.arange(k) for k in k_heard]) if n_src else np.zeros(0, int)
    st_c = nearest[src, rank]
    tt = prop.travel_time(np.zeros(len(st_c), dtype=np.int8), sx[st_c] - src_x[src],
                          sy[st_c] - src_y[src], sz[st_c])
    t_c = src_t[src] + tt + rng.normal(0, 0.05, len(st_c))
    st = np.r_[st_u, st_c].astype(np.int64)
    t = np.r_[t_u, t_c]
    return st, t


# ---------------------------------------------------------------------------- oracle
def oracle_assignments(data: FamilyData, *, n_sigma: float = 3.0, min_detections: int = 4
                       ) -> pl.DataFrame:
    """The oracle: each detection to the true explosion whose predicted arrival fits it
    best (|residual| / sigma smallest, within ``n_sigma`` of the range-dependent timing
    noise); explosions left with fewer than ``min_detections`` detections are dropped.
    Returns detection_id, event_id (null when unassigned)."""
    sc = data.scenario
    prop = sc.propagation()
    index = {s: k for k, s in enumerate(data.stations["id"].to_list())}
    det = data.detections
    st = np.array([index[s] for s in det["station"].to_list()], dtype=np.int64)
    ph = np.array([0 if p == "acoustic" else (1 if p == "P" else 2)
                   for p in det["phase"].to_list()], dtype=np.int8)
    t0_us = (int(data.events["time"].dt.epoch("us").to_numpy().min())
             if data.events.height else 0)
    t = (det["time"].dt.epoch("us").to_numpy() - t0_us) / 1e6
    e_t = (data.events["time"].dt.epoch("us").to_numpy() - t0_us) / 1e6
    e_x, e_y = data.events["x_km"].to_numpy(), data.events["y_km"].to_numpy()
    out = np.full(len(t), -1, dtype=np.int64)
    if len(e_t) and len(t):
        diag = math.hypot(sc.width_km + 2 * sc.outside_km, sc.height_km + 2 * sc.outside_km)
        tmax = diag / prop.acoustic.slowest + 5.0
        order = np.argsort(e_t)
        lo = np.searchsorted(e_t[order], t - tmax)
        hi = np.searchsorted(e_t[order], t + 1.0, side="right")
        cnt = hi - lo
        d_idx = np.repeat(np.arange(len(t)), cnt)
        starts = np.repeat(lo - np.cumsum(np.r_[0, cnt[:-1]]), cnt)
        e_idx = order[np.arange(len(d_idx)) + starts]
        s = st[d_idx]
        dx, dy = data.sx[s] - e_x[e_idx], data.sy[s] - e_y[e_idx]
        tt = prop.travel_time(ph[d_idx], dx, dy, data.sz[s])
        dist = np.sqrt(dx * dx + dy * dy + data.sz[s] ** 2)
        sig = data.sigma(s, dist)
        sig = np.where(ph[d_idx] == P, 0.5 * sig, sig)
        z = np.abs(t[d_idx] - e_t[e_idx] - tt) / sig
        ok = z <= n_sigma
        d_idx, e_idx, z = d_idx[ok], e_idx[ok], z[ok]
        o = np.lexsort((z, d_idx))
        first = np.r_[True, d_idx[o][1:] != d_idx[o][:-1]] if len(o) else np.zeros(0, bool)
        out[d_idx[o][first]] = e_idx[o][first]
    counts = np.bincount(out[out >= 0], minlength=len(e_t))
    out[(out >= 0) & (counts[np.maximum(out, 0)] < min_detections)] = -1
    ev_ids = data.events["event_id"].to_numpy()
    return pl.DataFrame({"detection_id": det["detection_id"],
                         "event_id": [ev_ids[e] if e >= 0 else None for e in out]},
                        schema={"detection_id": pl.String, "event_id": pl.String})


# ---------------------------------------------------------------------- bad input
@dataclass(frozen=True)
class Perturbation:
    """Bad input laid over a generated scenario (each off by default).

    * ``drift_stations`` stations' clocks run off: ``drift_offset_s`` at the start,
      growing by ``drift_s_per_h`` (their detections keep their true event);
    * ``noisy_stations`` stations add false detections at ``noisy_factor`` x the
      network's median false rate (uniform in time);
    * ``duplicate_stations`` stations' streams are delivered twice, under new
      detection ids, each copy's time off by up to ``duplicate_jitter_s`` (a re-sent
      feed); the copies are not independent detections, so their truth is null;
    * ``dropout_fraction`` of the stations go silent at ``dropout_at_h`` (default:
      half-way) until the end.

    The stations chosen are the ones with the most true detections (the case that
    hurts most), or at random with ``pick_random``."""

    drift_stations: int = 0
    drift_offset_s: float = 0.0
    drift_s_per_h: float = 0.0
    noisy_stations: int = 0
    noisy_factor: float = 100.0
    duplicate_stations: int = 0
    duplicate_jitter_s: float = 0.01
    dropout_fraction: float = 0.0
    dropout_at_h: float | None = None
    pick_random: bool = False
    seed: int = 0


@dataclass
class Perturbed:
    data: FamilyData
    drifted: list[str]
    noisy: list[str]
    duplicated: list[str]
    dropped: list[str]
    dropout_time: datetime | None


def perturb(data: FamilyData, p: Perturbation) -> Perturbed:
    """``data`` with the bad input of ``p`` (seeded by the scenario's seed and ``p.seed``)."""
    rng = np.random.default_rng([data.scenario.seed, 97, p.seed])
    det, truth = data.detections, data.truth
    ids = data.stations["id"].to_list()
    n = len(ids)
    true_counts = (det.join(truth.drop_nulls("event_id"), on="detection_id")
                   .group_by("station").len())
    count = dict(zip(true_counts["station"].to_list(), true_counts["len"].to_list(),
                     strict=True))
    by_use = sorted(ids, key=lambda s: -count.get(s, 0))
    order = ([ids[k] for k in rng.permutation(n)] if p.pick_random else by_use)
    taken: list[str] = []

    def choose(k: int) -> list[str]:
        got = [s for s in order if s not in taken][:k]
        taken.extend(got)
        return got

    start_us = int(datetime.fromisoformat(data.scenario.start.replace("Z", "+00:00"))
                   .astimezone(UTC).timestamp() * 1e6)
    dur_s = data.scenario.duration_h * 3600.0
    drifted = choose(p.drift_stations)
    noisy = choose(p.noisy_stations)
    duplicated = choose(p.duplicate_stations)
    dropped = choose(round(p.dropout_fraction * n))
    t_us = pl.col("time").dt.epoch("us")
    if drifted:
        shift = p.drift_offset_s + p.drift_s_per_h * (t_us - start_us) / 3.6e9
        det = det.with_columns(
            pl.when(pl.col("station").is_in(drifted))
            .then((t_us + (shift * 1e6).round().cast(pl.Int64)).cast(pl.Datetime("us", "UTC")))
            .otherwise(pl.col("time")).alias("time"))
    extra_truth: list[pl.DataFrame] = []
    if noisy:
        false = truth.filter(pl.col("event_id").is_null()).join(det, on="detection_id")
        per_station = false.group_by("station").len()
        median = float(np.median(np.r_[per_station["len"].to_numpy(),
                                       np.zeros(n - per_station.height)]))
        k = rng.poisson(max(median, 1.0) * p.noisy_factor, len(noisy))
        st = np.repeat(np.array(noisy, dtype=object), k)
        t = rng.uniform(0, dur_s, len(st))
        new_ids = [f"N{i + 1:07d}" for i in range(len(st))]
        kinds = dict(zip(ids, data.stations["kind"].to_list(), strict=True))
        arr = dict(zip(ids, data.stations["array"].to_list(), strict=True))
        extra = pl.DataFrame({
            "detection_id": new_ids, "station": st.tolist(),
            "time": pl.Series(np.round(t * 1e6).astype(np.int64) + start_us
                              ).cast(pl.Datetime("us", "UTC")),
            "phase": ["acoustic" if kinds[s] == "acoustic" or rng.random() < 0.6 else "P"
                      for s in st],
            "back_azimuth_deg": [float(rng.uniform(0, 360)) if arr[s] else None for s in st],
            "amplitude": np.round(rng.exponential(2.0, len(st)) + 1.0, 4),
            "snr": np.round(rng.exponential(1.0, len(st)) + 3.0, 2)},
            schema=det.schema)
        det = pl.concat([det, extra])
        extra_truth.append(pl.DataFrame({"detection_id": new_ids, "event_id": [None] * len(st)},
                                        schema=truth.schema))
    if duplicated:
        copy = det.filter(pl.col("station").is_in(duplicated))
        jitter = np.round(rng.uniform(-p.duplicate_jitter_s, p.duplicate_jitter_s,
                                      copy.height) * 1e6).astype(np.int64)
        new_ids = [f"D{i + 1:07d}" for i in range(copy.height)]
        copy = copy.with_columns(
            pl.Series("detection_id", new_ids),
            (t_us + pl.Series(jitter)).cast(pl.Datetime("us", "UTC")).alias("time"))
        det = pl.concat([det, copy])
        extra_truth.append(pl.DataFrame({"detection_id": new_ids,
                                         "event_id": [None] * copy.height},
                                        schema=truth.schema))
    dropout_time = None
    if dropped:
        at_h = p.dropout_at_h if p.dropout_at_h is not None else data.scenario.duration_h / 2
        dropout_time = datetime.fromtimestamp((start_us + at_h * 3.6e9) / 1e6, UTC)
        det = det.filter(~(pl.col("station").is_in(dropped) & (pl.col("time") >= dropout_time)))
    det = det.sort("time", "detection_id")
    truth = pl.concat([truth, *extra_truth]).join(det.select("detection_id"),
                                                  on="detection_id", how="semi")
    return Perturbed(replace(data, detections=det, truth=truth), drifted, noisy, duplicated,
                     dropped, dropout_time)
