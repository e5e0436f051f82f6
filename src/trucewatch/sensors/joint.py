"""The network's generative model for joint association (in the spirit of NET-VISA).

:class:`JointRefiner` is the configuration (one frozen dataclass, every parameter
documented); :class:`NetworkModel` holds what is learned from the stream itself,
window after window, never from a scenario generator:

* **timing noise** per phase, ``sigma(d)**2 = a + b d**2`` (pick and clock noise
  plus a term that grows with range, such as turbulence), fitted to the residuals
  of well-constrained events;
* **false-detection rate** per station: detections that no event explains, per
  second of the station's working time (shrunk towards the network's mean);
* **detection probability** per station, ``logit p = alpha + delta_s + beta * size
  - gamma * ln d`` (range, the event's source size from its amplitudes, and a
  per-station offset for the station's noise), a logistic regression on the
  (event, working station) pairs of well-constrained events;
* **back-azimuth** scatter of array stations;
* **event rate** (events per second over the search area), the prior.

With these, a detection assigned to an event has the log likelihood ratio against
being a false detection ``ln p + ln N(r; sigma) - ln lambda_s`` (+ the back-azimuth
term ``ln N(dbaz; sigma_baz) + ln 360``), and an event has the log posterior odds
``sum over its detections + sum over silent working stations of ln(1 - p) +
ln(rate / area) + ln((2 pi)^1.5 sqrt(det C))`` (a Laplace approximation of the
evidence, C the covariance of x, y, t0). The associator uses them to re-assign
detections between overlapping events, to drop events whose odds are poor, and to
rank what the cascade proposes (see :mod:`trucewatch.sensors.association`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from trucewatch.errors import ConfigError

F = NDArray[np.float64]
I64 = NDArray[np.int64]
_LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class JointRefiner:
    """Configuration of the joint re-assignment that follows the greedy cascade.

    The defaults are priors for the first window only; after it, the noise, false
    rates, detection curves and event rate come from the stream."""

    iterations: int = 3  # EM rounds (re-assign, relocate, drop poor events) per stage
    rebirth: bool = True  # search the detections left free by dropped events again
    # the EM's (event, detection) pairs within the associator's max_distance_km (or the
    # learned reach, when larger); False: at any range, the learned detection curve
    # alone weighs a far detection (ln p in its likelihood ratio). In the first
    # windows the reach is not learned yet, and a far explosion kept only its nearer
    # half of detections (roads busy, BENCHMARKS.md stop 24)
    em_distance_cap: bool = True
    # barrage proposals at the place of every event (0 turns them off): clusters of
    # implied origin times within this window, up to neighbour_span_s from the event
    neighbour_window_s: float = 0.0
    neighbour_span_s: float = 60.0
    # split/merge moves after EM, accepted when the window's joint log posterior rises
    # by more than move_margin (0 rounds: off); merges within merge_km and merge_s
    move_rounds: int = 0
    move_margin: float = 1.0
    merge_km: float = 3.0
    merge_s: float = 3.0
    # re-partition across nearby rounds (0 rounds: off): the weaker of every two events
    # within repartition_s and repartition_km whose log odds are below repartition_odds
    # is dissolved; its neighbours take what fits them (EM), the cascade searches the
    # detections left free again, EM runs; kept when the window's joint log posterior
    # rises by more than move_margin (a ghost that mixed two rounds gives its
    # detections back to the round they fit and the missing round can form). Off by
    # default: on the families benchmark's dense rows it changed no F1 (BENCHMARKS.md)
    repartition_rounds: int = 0
    repartition_s: float = 4.0
    repartition_km: float = 10.0
    repartition_odds: float = 40.0
    min_log_odds: float = 5.0  # an event is kept when its log posterior odds exceed this
    # cascade overrides while the joint stage is on (None keeps the associator's own
    # setting). With the joint stage a silent station counts its learned detection
    # probability (expected misses), so the associator's own limits need no loosening
    cascade_max_silent: int | None = None
    cascade_weak_max_silent: int | None = None
    # priors (first window), then learned
    prior_sigma_s: float = 0.1  # timing noise at zero range
    prior_sigma_per_km: float = 0.003  # its growth with range
    prior_r50_km: float = 12.0  # range of 50 % detection probability for a typical event
    prior_slope: float = 4.0  # gamma: steepness of the detection curve in ln(distance)
    prior_baz_sigma_deg: float = 5.0
    baz_gate: float = 4.0  # back-azimuth misfits beyond this many sigma never fit
    min_learn_stations: int = 6  # events used to learn the model have this many stations
    memory_rows: int = 40_000  # (event, station) rows kept for the detection curve
    max_p_detect: float = 0.98  # a silent station costs at most ln(1 - this)
    # detections are sought out to the range where the learned curve gives a large
    # event this detection probability (never nearer than the associator's
    # max_distance_km; see NetworkModel.reach_km); 0 keeps max_distance_km
    reach_p: float = 0.01
    station_prior_weight: float = 20.0  # pseudo-detections shrinking per-station rates

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ConfigError(f"iterations = {self.iterations}", fix="use 1 or more")
        if self.repartition_rounds < 0:
            raise ConfigError(f"repartition_rounds = {self.repartition_rounds}",
                              fix="use 0 (no re-partition) or more")
        for name in ("repartition_s", "repartition_km"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive", fix=f"set {name} > 0")
        if self.move_rounds < 0:
            raise ConfigError(f"move_rounds = {self.move_rounds}",
                              fix="use 0 (no split/merge moves) or more")
        for name in ("merge_km", "merge_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive", fix=f"set {name} > 0")
        for name in ("prior_sigma_s", "prior_r50_km", "prior_slope", "prior_baz_sigma_deg",
                     "baz_gate", "memory_rows"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive", fix=f"set {name} > 0")
        if not 0 <= self.reach_p < 1:
            raise ConfigError("reach_p must be in [0, 1)",
                              fix="use e.g. 0.01, or 0 to keep max_distance_km")
        if not 0 < self.max_p_detect < 1:
            raise ConfigError("max_p_detect must be between 0 and 1",
                              fix="use e.g. 0.98")


@dataclass
class NetworkModel:
    """What the stream has taught so far (mutable; one per associator run)."""

    cfg: JointRefiner
    n_sta: int
    area_km2: float
    # timing noise moments per phase (acoustic, P, S): n, sum d2, sum d4, sum r2, sum r2 d2
    sig_mom: F = field(default_factory=lambda: np.zeros((3, 5)))
    sig_ab: F = field(default_factory=lambda: np.zeros((3, 2)))
    false_count: F = field(default_factory=lambda: np.zeros(0))
    exposure_s: F = field(default_factory=lambda: np.zeros(0))
    coef: F = field(default_factory=lambda: np.zeros(3))  # alpha, beta, gamma
    delta: F = field(default_factory=lambda: np.zeros(0))  # per-station offsets
    rows: list[F] = field(default_factory=list)  # (station, size, ln d, detected)
    baz_mom: F = field(default_factory=lambda: np.zeros(2))  # n, sum dbaz^2
    events: float = 0.0
    time_s: float = 0.0
    size_mom: F = field(default_factory=lambda: np.zeros(3))  # n, sum, sum of squares
    _reach: tuple[tuple[float, float, float], float] | None = None  # cached reach_km

    @classmethod
    def start(cls, cfg: JointRefiner, n_sta: int, area_km2: float) -> NetworkModel:
        m = cls(cfg, n_sta, area_km2)
        a0, b0 = cfg.prior_sigma_s**2, cfg.prior_sigma_per_km**2
        m.sig_ab = np.array([[a0, b0], [a0 / 4, b0 / 4], [a0, b0]])
        m.false_count = np.zeros(n_sta)
        m.exposure_s = np.zeros(n_sta)
        m.coef = np.array([cfg.prior_slope * math.log(cfg.prior_r50_km), 1.0, cfg.prior_slope])
        m.delta = np.zeros(n_sta)
        return m

    # ---- the model ----------------------------------------------------------------
    def sigma(self, phase: NDArray[np.int8], d: F) -> F:
        ab = self.sig_ab[phase]
        return np.sqrt(np.maximum(ab[:, 0] + ab[:, 1] * d * d, 1e-6))

    def centred_size(self, size: F) -> F:
        if self.size_mom[0] < 10:  # no scale learned yet: sizes say nothing
            return np.zeros_like(size)
        mean = self.size_mom[1] / self.size_mom[0]
        return np.where(np.isfinite(size), size - mean, 0.0)

    def p_detect(self, station: I64, d: F, size: F) -> F:
        a, b, g = self.coef
        z = np.clip(a + self.delta[station] + b * size - g * np.log(np.maximum(d, 0.1)),
                    -30, 30)
        return np.asarray(np.clip(1.0 / (1.0 + np.exp(-z)), 1e-4, self.cfg.max_p_detect))

    def reach_km(self, floor: float, ceiling: float) -> float:
        """Range within which detections are sought: where the learned curve gives a
        large event (size at the 95th percentile of those learned) at a sensitive
        station (the 90th percentile of the offsets) a detection probability of
        ``reach_p``; never below ``floor`` (the configured distance), nor beyond
        ``ceiling`` (the search area). Before anything is learned: ``floor``."""
        key = (floor, ceiling, self.time_s)
        if self._reach is not None and self._reach[0] == key:
            return self._reach[1]
        r = self._reach_of(floor, ceiling)
        self._reach = (key, r)
        return r

    def _reach_of(self, floor: float, ceiling: float) -> float:
        n, s1, s2 = self.size_mom
        if n < 10 or not self.rows:
            return floor
        sd = math.sqrt(max(s2 / n - (s1 / n) ** 2, 0.0))
        a, b, g = self.coef
        p = self.cfg.reach_p
        if p <= 0:
            return floor
        z = math.log(p / (1 - p))
        ln_d = (a + float(np.percentile(self.delta, 90)) + b * 1.645 * sd - z) / g
        return float(min(max(math.exp(min(ln_d, 20.0)), floor), ceiling))

    def false_rate(self, station: I64, extra: F | None = None, extra_s: float = 0.0) -> F:
        """False detections per second at each station (shrunk towards the mean);
        ``extra`` counts unexplained detections of the current window."""
        cnt = self.false_count + (extra if extra is not None else 0.0)
        exp = self.exposure_s + extra_s
        mean = (cnt.sum() + 1.0) / max(exp.sum(), 1.0)
        w = self.cfg.station_prior_weight
        rate = (cnt + w * mean * 1.0) / np.maximum(exp + w, 1.0)
        return np.asarray(np.maximum(rate[station], 1e-6))

    def baz_sigma(self) -> float:
        n, s2 = self.baz_mom
        prior = self.cfg.prior_baz_sigma_deg
        return float(math.sqrt((s2 + 5 * prior**2) / (n + 5)))

    def rate_per_s(self, candidates_now: int, window_s: float) -> float:
        return (self.events + 0.5 * candidates_now + 1.0) / (self.time_s + window_s)

    def pick_llr(self, station: I64, phase: NDArray[np.int8], d: F, r: F, size: F,
                 dbaz: F, lam: F) -> F:
        """Log likelihood ratio, true arrival of this event vs false detection."""
        sig = self.sigma(phase, d)
        ll = (np.log(self.p_detect(station, d, size)) - 0.5 * (r / sig) ** 2 - np.log(sig)
              - 0.5 * _LOG_2PI - np.log(lam))
        sb = self.baz_sigma()
        has = np.isfinite(dbaz)
        ll = ll + np.where(has, -0.5 * (np.nan_to_num(dbaz) / sb) ** 2 - math.log(sb)
                           - 0.5 * _LOG_2PI + math.log(360.0), 0.0)
        return np.asarray(ll)

    # ---- learning from one window's result ----------------------------------------
    def learn(self, *, window_s: float, up: NDArray[np.bool_], unexplained: F,
              pick_station: I64, pick_phase: NDArray[np.int8], pick_d: F, pick_r: F,
              pick_dbaz: F, pick_event: I64, event_strong: NDArray[np.bool_],
              event_size: F, row_station: I64, row_event: I64, row_d: F,
              row_hit: NDArray[np.bool_], n_events: int) -> None:
        cfg = self.cfg
        self.time_s += window_s
        self.events += n_events
        self.false_count += unexplained
        self.exposure_s += np.where(up, window_s, 0.0)
        strong = event_strong[pick_event] if len(pick_event) else np.zeros(0, bool)
        # timing noise: residuals of strong events, clipped at 3 sigma of the current model
        if strong.any():
            ph, d, r = pick_phase[strong], pick_d[strong], pick_r[strong]
            cap = 3.0 * self.sigma(ph, d)
            r2 = np.minimum(r * r, cap * cap)
            d2 = d * d
            for p in range(3):
                m = ph == p
                if m.any():
                    self.sig_mom[p] += [m.sum(), d2[m].sum(), (d2[m] ** 2).sum(),
                                        r2[m].sum(), (r2[m] * d2[m]).sum()]
                    self.sig_ab[p] = _fit_ab(self.sig_mom[p], self.sig_ab[p])
            db = pick_dbaz[strong]
            db = db[np.isfinite(db)]
            if len(db):
                cap_b = 3.0 * self.baz_sigma()
                self.baz_mom += [len(db), float(np.minimum(db * db, cap_b * cap_b).sum())]
        sizes = event_size[event_strong & np.isfinite(event_size)]
        if len(sizes):
            self.size_mom += [len(sizes), float(sizes.sum()), float((sizes * sizes).sum())]
        # detection curve: (event, working station) rows of strong events
        keep = event_strong[row_event] if len(row_event) else np.zeros(0, bool)
        if keep.any():
            size = self.centred_size(event_size[row_event[keep]])
            self.rows.append(np.column_stack([row_station[keep].astype(np.float64), size,
                                              np.log(np.maximum(row_d[keep], 0.1)),
                                              row_hit[keep].astype(np.float64)]))
            allrows = np.concatenate(self.rows)
            if len(allrows) > cfg.memory_rows:
                allrows = allrows[-cfg.memory_rows:]
            self.rows = [allrows]
            if len(allrows) >= 50 and allrows[:, 3].min() < allrows[:, 3].max():
                prior = np.array([cfg.prior_slope * math.log(cfg.prior_r50_km), 1.0,
                                  cfg.prior_slope])
                self.coef, self.delta = _fit_detection(allrows, self.coef, self.delta,
                                                       self.n_sta, prior)


def _fit_ab(mom: F, old: F) -> F:
    """Least squares of r^2 = a + b d^2 from the moments; a, b >= 0; a prior of
    20 residuals at the old values keeps it stable when data are few."""
    n, s1, s2, y, yd = mom
    w = 20.0
    a_old, b_old = old
    # normal equations with pseudo-observations pulling towards the old values
    mat = np.array([[n + w, s1], [s1, s2 + w * 100.0]])
    rhs = np.array([y + w * a_old, yd + w * 100.0 * b_old])
    try:
        a, b = np.linalg.solve(mat, rhs)
    except np.linalg.LinAlgError:
        return old
    return np.array([max(a, 4e-4), max(b, 0.0)])  # at least 0.02 s at zero range


def _fit_detection(rows: F, coef: F, delta: F, n_sta: int, prior: F) -> tuple[F, F]:
    """Logistic regression logit p = alpha + delta_s + beta size - gamma ln d: damped
    Newton steps for (alpha, beta, gamma) with a weak Gaussian prior around the
    configured curve (sd 3, 1, 1), and a ridge step per station offset (sd 0.7)."""
    st = rows[:, 0].astype(np.int64)
    x = np.column_stack([np.ones(len(rows)), rows[:, 1], -rows[:, 2]])
    y = rows[:, 3]
    c = coef.copy()
    dl = delta.copy()
    prec = np.array([1 / 9, 1.0, 1.0])
    for _ in range(6):
        z = np.clip(x @ c + dl[st], -30, 30)
        p = 1.0 / (1.0 + np.exp(-z))
        w = np.maximum(p * (1 - p), 1e-6)
        h = (x * w[:, None]).T @ x + np.diag(prec)
        g = x.T @ (y - p) - prec * (c - prior)
        step = np.linalg.solve(h, g)
        c = c + np.clip(step, -2.0, 2.0)
        num = np.bincount(st, weights=y - p, minlength=n_sta) - dl * 2.0
        den = np.bincount(st, weights=w, minlength=n_sta) + 2.0
        dl = np.clip(dl + np.clip(num / den, -1.0, 1.0), -4, 4)
    if not np.isfinite(c).all() or c[2] <= 0.5:
        return coef, delta
    return c, dl


def wrap_deg(a: F) -> F:
    return np.asarray((a + 180.0) % 360.0 - 180.0)
