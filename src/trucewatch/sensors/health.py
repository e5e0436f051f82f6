"""Station health from the stream itself: bad clocks, noisy stations, silent stations.

A network that is being shelled does not stay healthy. This module looks at one
association result (the events located and the detections they took) and says,
station by station, what the data show, with no knowledge of the truth:

* **Clock** (:attr:`StationProblem.CLOCK`): for every located event in a station's
  range, the offsets of the station's detections from the event's predicted
  arrival (within ``clock_search_s``). A good clock piles them up at zero; a clock
  off by ``delta`` piles them up at ``delta`` (its detections then fit no event and
  are lost). Offsets are taken in groups of ``clock_group_events`` events in time
  order, so a drift is followed. A group whose pile is significant and more than
  ``clock_max_offset_s`` from zero marks the station's clock as off over that
  group's time; its detections there are quarantined (the estimated offset is in
  the reason). A smaller but consistent bias of the associated detections'
  residuals is reported (:attr:`StationProblem.CLOCK_BIAS`), not quarantined.
* **Noisy** (:attr:`StationProblem.NOISY`): unassociated detections per hour,
  against the median of the ``neighbours`` nearest stations. A station at
  ``noisy_ratio`` times its neighbours or more is flagged; at
  ``noisy_quarantine_ratio`` its detections are kept out of association
  (quarantined, reason given) and the others are associated again without it.
* **Silent** (:attr:`StationProblem.SILENT`): a station's detection rate of the
  located events within its usual range (the median distance of the events it
  heard), and the runs of those events it missed in a row. A run it would have
  heard at least ``silent_min_expected`` times (``P(missing all) < e^-5``) is an
  outage, from its last detection before to its first after (or the end).

:class:`NetworkHealth` holds the flags and the capability: the share of the
network's area that ``min_stations`` working stations reach, with every station,
and over each period in which stations were silent. Its :meth:`NetworkHealth.lines`
are the sentences the coverage output gives.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import numpy as np
import polars as pl
from numpy.typing import NDArray

from trucewatch.errors import ConfigError
from trucewatch.sensors.association import LOCATED, Association, ExplosionAssociator, Network, Picks

LOSS_WINDOW_S = 600.0  # stations going quiet within this of each other: one network loss
F = NDArray[np.float64]
I64 = NDArray[np.int64]


class StationProblem(StrEnum):
    CLOCK = "clock"  # detections off their events by seconds: quarantined
    CLOCK_BIAS = "clock_bias"  # a consistent residual bias within the tolerance: reported
    NOISY = "noisy"  # far more unexplained detections than its neighbours: quarantined
    SILENT = "silent"  # sent nothing while the network around it was busy: coverage
    DEAF = "deaf"  # sent detections, but missed the events it would have heard: coverage
    DUPLICATED = "duplicated"  # its stream came twice: the copies quarantined at intake


@dataclass(frozen=True)
class StationFlag:
    station: str
    problem: StationProblem
    start: datetime | None  # None: from the start of the data
    end: datetime | None  # None: to the end of the data
    value: float  # clock offset (s), noise ratio, or events missed
    n: int  # how many events or detections it rests on
    detail: str  # the sentence
    quarantines: bool = False  # its detections over the span are set aside


@dataclass
class NetworkHealth:
    n_stations: int
    flags: list[StationFlag] = field(default_factory=list)
    # (start, end, working stations, share of the area reached by min_stations of them)
    capability: list[tuple[datetime | None, datetime | None, int, float]] = field(
        default_factory=list)
    full_capability: float = float("nan")
    median_range_km: float = float("nan")  # median distance of the detections associated
    min_stations: int = 4

    def of(self, problem: StationProblem) -> list[StationFlag]:
        return [f for f in self.flags if f.problem is problem]

    def lines(self) -> list[str]:
        """The coverage and capability sentences (empty when nothing is wrong)."""
        out = [f.detail for f in self.flags]
        silent = self.of(StationProblem.SILENT) + self.of(StationProblem.DEAF)
        # many stations going quiet together: the network lost them (power, a strike)
        starts = sorted((f.start, f.station) for f in silent if f.start is not None)
        k = 0
        while k < len(starts):
            j = k
            while j + 1 < len(starts) and (starts[j + 1][0] - starts[k][0]).total_seconds() \
                    <= LOSS_WINDOW_S:
                j += 1
            group = {sid for _, sid in starts[k:j + 1]}
            if len(group) >= max(3, 0.2 * self.n_stations):
                out.append(f"Network loss: {len(group)} of {self.n_stations} stations went "
                           f"quiet between {_when(starts[k][0], '')} and "
                           f"{_when(starts[j][0], '')} ({', '.join(sorted(group))}).")
            k = j + 1
        if silent:
            out.append(f"{len({f.station for f in silent})} of {self.n_stations} stations were "
                       "silent or not hearing at some time: events in their range may be "
                       "missing then.")
        # the capability at its lowest, and at the end if it differs (the full list is
        # in ``capability``)
        shown = []
        if self.capability:
            shown.append(min(self.capability, key=lambda c: c[3]))
            if self.capability[-1][1] is None and self.capability[-1] is not shown[0]:
                shown.append(self.capability[-1])
        for start, end, n_up, share in shown:
            out.append(f"Capability from {_when(start, 'the start')} to {_when(end, 'the end')}: "
                       f"{n_up} of {self.n_stations} stations working; {share:.0%} of the "
                       f"network's area has {self.min_stations} of them within "
                       f"{self.median_range_km:.0f} km (where half the detections come from), "
                       f"against {self.full_capability:.0%} with every station.")
        return out


@dataclass(frozen=True)
class HealthCheck:
    """Thresholds of the station-health checks (see the module docstring)."""

    clock_search_s: float = 12.0
    clock_bin_s: float = 0.2
    clock_group_events: int = 15
    clock_min_hits: int = 5
    clock_max_offset_s: float = 0.5
    bias_warn_s: float = 0.08
    bias_min_detections: int = 15
    noisy_ratio: float = 25.0  # flagged (reported) at this
    noisy_quarantine_ratio: float = 60.0  # and kept out of association at this
    noisy_min_detections: int = 30
    neighbours: int = 5
    silent_min_expected: float = 5.0
    silent_min_count: float = 10.0  # detections it would have sent in a span it sent none
    silent_min_s: float = 600.0  # and the span is at least this long
    silent_group_min: float = 4.0  # the same, for stations going quiet together
    silent_min_hit_rate: float = 0.3
    min_share_change: float = 0.05  # capability periods reported when the share drops this
    # the sensor stream decides what to keep out span by span, each span (this long,
    # rounded to whole association windows, on the stream's window grid) on its own
    # data: so a later file cannot change what was decided on an earlier span, and the
    # worker's steps and the batch cycle decide alike (intake/stream.py)
    basis_s: float = 3600.0
    enabled: bool = True  # False: no check (locate_files then associates once)

    def __post_init__(self) -> None:
        for name in ("clock_search_s", "clock_bin_s", "clock_max_offset_s", "noisy_ratio",
                     "silent_min_expected", "basis_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive", fix=f"set {name} > 0")
        if self.clock_group_events < 3 or self.neighbours < 1:
            raise ConfigError("clock_group_events >= 3 and neighbours >= 1",
                              fix="use the defaults")

    # ---- the checks -------------------------------------------------------------------
    def check(self, associator: ExplosionAssociator, network: Network, picks: Picks,
              assoc: Association) -> NetworkHealth:
        ev = assoc.events.filter(pl.col("status") == LOCATED)
        health = NetworkHealth(len(network.ids), min_stations=associator.min_stations)
        if len(picks) == 0:
            return health
        t_end = float(picks.t.max())
        t0 = ((ev["time"].dt.epoch("us").to_numpy() - picks.epoch_us) / 1e6
              if ev.height else np.zeros(0))
        ex, ey = ev["x_km"].to_numpy(), ev["y_km"].to_numpy()
        ids = picks.ids.astype(str)
        asg = assoc.assignments.select("detection_id", "event_id", "residual_s")
        pos = {d: k for k, d in enumerate(ids.tolist())}
        a_rows = asg.drop_nulls("event_id")
        a_pick = np.array([pos[d] for d in a_rows["detection_id"].to_list() if d in pos],
                          dtype=np.int64)
        associated = np.zeros(len(picks), dtype=bool)
        associated[a_pick] = True
        ev_index = {e: k for k, e in enumerate(ev["event_id"].to_list())}
        a_ev = np.array([ev_index.get(e, -1) for e, d in zip(a_rows["event_id"].to_list(),
                         a_rows["detection_id"].to_list(), strict=True) if d in pos],
                        dtype=np.int64)
        a_res = a_rows.filter(pl.col("detection_id").is_in(list(pos)))["residual_s"] \
            .fill_null(np.nan).to_numpy()
        if len(a_pick):
            st_a = picks.station[a_pick[a_ev >= 0]]
            e_a = a_ev[a_ev >= 0]
            health.median_range_km = float(np.median(np.hypot(
                network.x_km[st_a] - ex[e_a], network.y_km[st_a] - ey[e_a]))) if len(e_a) \
                else float("nan")
        if not np.isfinite(health.median_range_km):
            health.median_range_km = float(associator.max_distance_km or 40.0) / 2
        clock = self._clock(associator, network, picks, t0, ex, ey)
        health.flags += clock
        health.flags += self._bias(network, picks, a_pick, a_res)
        off_clock = {f.station for f in clock}
        silent = self._gaps(network, picks, t_end)
        silent += [f for f in self._silent(associator, network, picks, t0, ex, ey, a_pick,
                                           a_ev, t_end)
                   if not any(g.station == f.station and _inside(f, g) for g in silent)]
        health.flags += self._noisy(network, picks, associated, silent, off_clock, t_end)
        health.flags += silent
        self._capability(associator, network, picks, health, silent, t_end)
        return health

    def _clock(self, cfg: ExplosionAssociator, net: Network, pk: Picks, t0: F, ex: F, ey: F
               ) -> list[StationFlag]:
        if len(t0) < self.clock_group_events:
            return []
        order = np.argsort(t0)
        t0, ex, ey = t0[order], ex[order], ey[order]
        tmax = (cfg.max_distance_km or 60.0) / cfg.propagation.slowest_speed(pk.phase)
        lo = np.searchsorted(t0, pk.t - tmax - self.clock_search_s)
        hi = np.searchsorted(t0, pk.t + self.clock_search_s, side="right")
        cnt = hi - lo
        p_idx = np.repeat(np.arange(len(pk)), cnt)
        e_idx = np.repeat(lo - np.cumsum(np.r_[0, cnt[:-1]]), cnt) + np.arange(int(cnt.sum()))
        st = pk.station[p_idx]
        dx, dy = net.x_km[st] - ex[e_idx], net.y_km[st] - ey[e_idx]
        d = np.hypot(dx, dy)
        off = pk.t[p_idx] - t0[e_idx] - cfg.propagation.travel_time(pk.phase[p_idx], dx, dy,
                                                                     net.z_km[st])
        ok = (np.abs(off) <= self.clock_search_s) & (d <= (cfg.max_distance_km or np.inf))
        st, e_idx, off = st[ok], e_idx[ok], off[ok]
        flags: list[StationFlag] = []
        nb = round(2 * self.clock_search_s / self.clock_bin_s)
        for s in np.unique(st):
            m = st == s
            se, so = e_idx[m], off[m]
            # the station's events in range, in groups of clock_group_events
            events = np.unique(se)
            groups = [events[k:k + self.clock_group_events]
                      for k in range(0, len(events), self.clock_group_events)]
            if len(groups) > 1 and len(groups[-1]) < self.clock_group_events // 2:
                groups[-2] = np.r_[groups[-2], groups[-1]]
                groups.pop()
            bad: list[tuple[float, float, float, int]] = []  # start, end, offset, hits
            for g in groups:
                gm = np.isin(se, g)
                o = so[gm]
                h, _ = np.histogram(o, bins=nb, range=(-self.clock_search_s,
                                                       self.clock_search_s))
                # a pile: two adjacent bins (an offset on a bin edge is not split)
                h2 = h[:-1] + h[1:]
                k = int(np.argmax(h2))
                bg = max(float(np.median(h2)), 0.5)
                if h2[k] < max(self.clock_min_hits, bg + 5.0 * math.sqrt(bg)):
                    continue
                centre = -self.clock_search_s + (k + 1) * self.clock_bin_s
                near = o[np.abs(o - centre) <= 1.5 * self.clock_bin_s]
                est = float(np.median(near))
                # a good clock piles up at zero: an off clock has (nearly) nothing there
                at_zero = int((np.abs(o) <= 1.5 * self.clock_bin_s).sum())
                if abs(est) > self.clock_max_offset_s and at_zero <= 0.25 * len(near):
                    bad.append((float(t0[g].min()), float(t0[g].max()), est, len(near)))
            if not bad:
                continue
            first, last = bad[0][0], bad[-1][1]
            last_group = len(groups) and bad[-1][1] >= float(t0[groups[-1]].max())
            first_group = bad[0][0] <= float(t0[groups[0]].min())
            offs = [b[2] for b in bad]
            hits = sum(b[3] for b in bad)
            sid = net.ids[int(s)]
            start = None if first_group else _dt(pk.epoch_us, first - tmax)
            end = None if last_group else _dt(pk.epoch_us, last + tmax)
            span = (f"{min(offs):+.1f} s" if len(offs) == 1 or
                    abs(max(offs) - min(offs)) < 0.3 else
                    f"{offs[0]:+.1f} s to {offs[-1]:+.1f} s")
            flags.append(StationFlag(
                sid, StationProblem.CLOCK, start, end, float(np.median(offs)), hits,
                f"Station {sid}: clock off by {span} from {_when(start, 'the start')} to "
                f"{_when(end, 'the end')} (its detections sit that far from the predicted "
                f"arrivals of {hits} located events); its detections then are quarantined.",
                quarantines=True))
        return flags

    def _bias(self, net: Network, pk: Picks, a_pick: I64, a_res: F) -> list[StationFlag]:
        if len(a_pick) == 0:
            return []
        st = pk.station[a_pick]
        flags = []
        for s in np.unique(st):
            r = a_res[(st == s) & np.isfinite(a_res)]
            if len(r) < self.bias_min_detections:
                continue
            med = float(np.median(r))
            mad = float(np.median(np.abs(r - med))) * 1.4826 + 1e-3
            if abs(med) > self.bias_warn_s and abs(med) > 3 * mad / math.sqrt(len(r)):
                sid = net.ids[int(s)]
                flags.append(StationFlag(
                    sid, StationProblem.CLOCK_BIAS, None, None, med, len(r),
                    f"Station {sid}: its associated detections are {med:+.2f} s late on "
                    f"average over {len(r)} detections (clock or picker bias; kept)."))
        return flags

    def _noisy(self, net: Network, pk: Picks, associated: NDArray[np.bool_],
               silent: list[StationFlag], skip: set[str], t_end: float
               ) -> list[StationFlag]:
        n = len(net.ids)
        t_start = float(pk.t.min())
        hours = np.full(n, max(t_end - t_start, 3600.0) / 3600.0)
        for f in silent:  # a silent station's working time is shorter
            k = net.ids.index(f.station)
            a = (_secs(pk.epoch_us, f.start) if f.start else t_start)
            b = (_secs(pk.epoch_us, f.end) if f.end else t_end)
            hours[k] = max(hours[k] - (b - a) / 3600.0, 0.25)
        cnt = np.bincount(pk.station[~associated], minlength=n).astype(np.float64)
        rate = cnt / hours
        d = np.hypot(net.x_km[:, None] - net.x_km[None, :], net.y_km[:, None] - net.y_km[None, :])
        np.fill_diagonal(d, np.inf)
        k = min(self.neighbours, n - 1)
        nearest = np.argsort(d, axis=1)[:, :k]
        floor = 1.0 / hours.max()
        ref = np.maximum(np.median(rate[nearest], axis=1), floor)
        ratio = rate / ref
        flags = []
        for s in np.flatnonzero((ratio >= self.noisy_ratio) & (cnt >= self.noisy_min_detections)):
            sid = net.ids[int(s)]
            if sid in skip:
                continue
            out = ratio[s] >= self.noisy_quarantine_ratio
            flags.append(StationFlag(
                sid, StationProblem.NOISY, None, None, float(ratio[s]), int(cnt[s]),
                f"Station {sid}: noisy, {rate[s]:.0f} unexplained detections an hour, "
                f"{ratio[s]:.0f}x the median of its {k} nearest stations ({ref[s]:.1f} an "
                "hour); " + ("its detections are kept out of association (quarantined)."
                             if out else "kept (its false detections are weighed by the "
                             "associator's per-station false rate when the joint stage is "
                             "on)."), quarantines=bool(out)))
        return flags

    def _gaps(self, net: Network, pk: Picks, t_end: float) -> list[StationFlag]:
        """Spans in which a station sent nothing while its ``neighbours`` nearest stations
        sent enough that it would have sent ``silent_min_count`` (its share of their
        detections over the whole period): barrages are local, so the far side of the
        network being busy says nothing."""
        n = len(net.ids)
        t_start = float(pk.t.min())
        order = np.lexsort((pk.t, pk.station))
        t_all, s_all = pk.t[order], pk.station[order]
        bounds = np.searchsorted(s_all, np.arange(n + 1))
        n_s = np.diff(bounds).astype(np.float64)
        d = np.hypot(net.x_km[:, None] - net.x_km[None, :], net.y_km[:, None] - net.y_km[None, :])
        np.fill_diagonal(d, np.inf)
        k_nb = min(self.neighbours + 1, n - 1)
        nearest = np.argsort(d, axis=1)[:, :k_nb]
        flags: list[StationFlag] = []
        cands: list[tuple[float, float, bool, bool, int, float, int, int]] = []
        for s in range(n):
            nb = nearest[s]
            n_nb = float(n_s[nb].sum())
            if n_s[s] == 0 or n_nb == 0:
                continue
            share = n_s[s] / n_nb
            times = t_all[bounds[s]:bounds[s + 1]]
            t_nb = np.sort(np.concatenate([t_all[bounds[j]:bounds[j + 1]] for j in nb]))
            edges = np.r_[t_start, times, t_end]
            lo = np.searchsorted(t_nb, edges[:-1], side="right")
            hi = np.searchsorted(t_nb, edges[1:], side="left")
            others = hi - lo
            expected = share * others
            for k in np.flatnonzero((expected >= self.silent_group_min)
                                    & (np.diff(edges) >= self.silent_min_s)):
                cands.append((float(edges[k]), float(edges[k + 1]), bool(k > 0),
                              bool(k + 1 < len(edges) - 1), s, float(expected[k]), int(others[k]),
                              k_nb))
        # alone, a span needs silent_min_count expected; stations going quiet together
        # (starts within LOSS_WINDOW_S) need silent_group_min each and twice that together
        cands.sort()
        group_ok = np.zeros(len(cands), dtype=bool)
        starts = np.array([c[0] for c in cands])
        for i in range(len(cands)):
            w = np.flatnonzero(np.abs(starts - starts[i]) <= LOSS_WINDOW_S / 2)
            grp = [cands[j] for j in w]
            # together: at least a fifth of the network, quiet over a common span
            common = min(c[1] for c in grp) - max(c[0] for c in grp)
            if (len({c[4] for c in grp}) >= max(3, 0.2 * n) and common >= self.silent_min_s
                    and sum(c[5] for c in grp) >= 3 * self.silent_min_count):
                group_ok[w] = True
        for c, together in zip(cands, group_ok, strict=True):
            a, b, has_start, has_end, s, exp, others_n, k_nb = c
            if exp < self.silent_min_count and not together:
                continue
            start = _dt(pk.epoch_us, a) if has_start else None
            end = _dt(pk.epoch_us, b) if has_end else None
            sid = net.ids[s]
            flags.append(StationFlag(
                sid, StationProblem.SILENT, start, end, exp, others_n,
                f"Station {sid}: silent from {_when(start, 'the start')} to "
                f"{_when(end, 'the end')}: it sent nothing while its {k_nb} nearest "
                f"stations sent {others_n} detections (about {exp:.0f} expected from it"
                + ("; others went quiet with it" if exp < self.silent_min_count else "")
                + ")."))
        return flags

    def _silent(self, cfg: ExplosionAssociator, net: Network, pk: Picks, t0: F, ex: F, ey: F,
                a_pick: I64, a_ev: I64, t_end: float) -> list[StationFlag]:
        n_sta, n_ev = len(net.ids), len(t0)
        if n_ev < 2:
            return []
        keep = a_ev >= 0
        heard = np.zeros((n_ev, n_sta), dtype=bool)
        heard[a_ev[keep], pk.station[a_pick[keep]]] = True
        heard_t = np.full((n_ev, n_sta), np.nan)
        heard_t[a_ev[keep], pk.station[a_pick[keep]]] = pk.t[a_pick[keep]]
        d = np.hypot(net.x_km[None, :] - ex[:, None], net.y_km[None, :] - ey[:, None])
        order = np.argsort(t0)
        flags: list[StationFlag] = []
        st_sorted = np.lexsort((pk.t, pk.station))
        st_t, st_s = pk.t[st_sorted], pk.station[st_sorted]
        bounds = np.searchsorted(st_s, np.arange(n_sta + 1))
        for s in range(n_sta):
            times = st_t[bounds[s]:bounds[s + 1]]
            sid = net.ids[s]
            if not heard[:, s].any():
                if len(times) == 0:
                    # never heard from: say so when events were located near it
                    near = int((d[:, s] <= np.median(d[heard])).sum()) if heard.any() else 0
                    if near >= self.silent_min_expected:
                        flags.append(StationFlag(
                            sid, StationProblem.SILENT, None, None, float(near), near,
                            f"Station {sid}: reported nothing over the period, though "
                            f"{near} explosions were located within its usual range."))
                continue
            r = float(np.median(d[heard[:, s], s]))
            inr = order[d[order, s] <= r]
            if len(inr) < 3:
                continue
            hit = heard[inr, s]
            rate = float(hit.mean())
            if rate < self.silent_min_hit_rate:
                continue
            # runs of misses between two hits (or an end)
            idx = np.flatnonzero(hit)
            edges = np.r_[-1, idx, len(hit)]
            for a, b in itertools.pairwise(edges):
                miss = b - a - 1
                if miss <= 0:
                    continue
                # a run's own misses leave the rate: compute it over the other events
                others = len(hit) - miss
                p = float(hit.sum()) / max(others, 1)
                if p * miss < self.silent_min_expected or p < self.silent_min_hit_rate:
                    continue
                # from its detection of the last event it heard to that of the next
                start_s = float(heard_t[inr[a], s]) if a >= 0 else None
                end_s = float(heard_t[inr[b], s]) if b < len(hit) else None
                lo_s = start_s if start_s is not None else -np.inf
                hi_s = end_s if end_s is not None else np.inf
                sent = int(((times > lo_s) & (times < hi_s)).sum())
                start = _dt(pk.epoch_us, start_s) if start_s is not None else None
                end = _dt(pk.epoch_us, end_s) if end_s is not None else None
                what = ("sent nothing" if sent == 0 else
                        f"sent {sent} detection(s), none of them fitting")
                flags.append(StationFlag(
                    sid, StationProblem.DEAF, start, end, float(miss), int(miss),
                    f"Station {sid}: not hearing from {_when(start, 'the start')} to "
                    f"{_when(end, 'the end')}: it missed {miss} located explosions in its "
                    f"usual range in a row (it hears {p:.0%} of them) and {what}."))
        return flags

    def _capability(self, cfg: ExplosionAssociator, net: Network, pk: Picks,
                    health: NetworkHealth, silent: list[StationFlag], t_end: float) -> None:
        n = len(net.ids)
        # a station's reach: the median distance at which the network's stations heard
        # the located events (at most the associator's limit)
        reach = min(cfg.max_distance_km or np.inf, health.median_range_km)
        x0, x1 = net.x_km.min() - cfg.margin_km, net.x_km.max() + cfg.margin_km
        y0, y1 = net.y_km.min() - cfg.margin_km, net.y_km.max() + cfg.margin_km
        gx, gy = np.meshgrid(np.linspace(x0, x1, 40), np.linspace(y0, y1, 40))
        dist = np.hypot(gx.ravel()[:, None] - net.x_km[None, :],
                        gy.ravel()[:, None] - net.y_km[None, :])
        within = dist <= reach

        def share(up: NDArray[np.bool_]) -> float:
            return float(((within & up[None, :]).sum(axis=1) >= cfg.min_stations).mean())

        health.full_capability = share(np.ones(n, dtype=bool))
        if not silent:
            return
        t_start = float(pk.t.min())
        spans = [(_secs(pk.epoch_us, f.start) if f.start else t_start,
                  _secs(pk.epoch_us, f.end) if f.end else t_end, net.ids.index(f.station))
                 for f in silent]
        cuts = sorted({t_start, t_end, *[a for a, _, _ in spans], *[b for _, b, _ in spans]})
        for a, b in itertools.pairwise(cuts):
            if b - a < 60.0:
                continue
            mid = 0.5 * (a + b)
            up = np.ones(n, dtype=bool)
            for sa, sb, k in spans:
                if sa <= mid < sb:
                    up[k] = False
            if up.all():
                continue
            sh = share(up)
            if health.full_capability - sh < self.min_share_change:
                continue
            health.capability.append((_dt(pk.epoch_us, a) if a > t_start else None,
                                      _dt(pk.epoch_us, b) if b < t_end else None,
                                      int(up.sum()), sh))


def _dt(epoch_us: int, s: float) -> datetime:
    return datetime.fromtimestamp((epoch_us + s * 1e6) / 1e6, UTC)


def _secs(epoch_us: int, t: datetime) -> float:
    return (t.timestamp() * 1e6 - epoch_us) / 1e6


def merge_flags(quarantined: list[StationFlag], last: list[StationFlag]) -> list[StationFlag]:
    """The flags of several rounds as one list: the quarantining flags of every round
    (one per station and problem, spanning them all), then the last round's other
    flags, less the silences of a station whose detections were quarantined there
    (quarantine, not the station, made those)."""
    out: list[StationFlag] = []
    groups: dict[tuple[str, StationProblem], list[StationFlag]] = {}
    for f in quarantined:
        groups.setdefault((f.station, f.problem), []).append(f)
    for (sid, problem), fs in groups.items():
        if len(fs) == 1:
            out.append(fs[0])
            continue
        start = None if any(f.start is None for f in fs) else min(f.start for f in fs
                                                                   if f.start)
        end = None if any(f.end is None for f in fs) else max(f.end for f in fs if f.end)
        vals = [f.value for f in fs]
        n = sum(f.n for f in fs)
        if problem is StationProblem.CLOCK:
            lo, hi = min(vals), max(vals)
            span = f"{lo:+.1f} s" if hi - lo < 0.3 else f"{lo:+.1f} s to {hi:+.1f} s"
            detail = (f"Station {sid}: clock off by {span} from {_when(start, 'the start')} "
                      f"to {_when(end, 'the end')} (its detections sit that far from the "
                      f"predicted arrivals of {n} located events); its detections then are "
                      "quarantined.")
        elif problem is StationProblem.NOISY:
            detail = (f"Station {sid}: noisy from {_when(start, 'the start')} to "
                      f"{_when(end, 'the end')} (up to {max(vals):.0f}x the unexplained "
                      f"detections of its nearest stations, over {len(fs)} spans); its "
                      "detections then are kept out of association (quarantined).")
        else:
            detail = fs[0].detail
        out.append(StationFlag(sid, problem, start, end, float(np.median(vals)), n, detail,
                               quarantines=True))
    for f in last:
        if f.quarantines:
            continue
        if f.problem in (StationProblem.SILENT, StationProblem.DEAF) and any(
                q.station == f.station and _overlap(f, q) for q in out):
            continue
        out.append(f)
    return out


def _overlap(f: StationFlag, g: StationFlag) -> bool:
    a0 = f.start.timestamp() if f.start else -math.inf
    a1 = f.end.timestamp() if f.end else math.inf
    b0 = g.start.timestamp() if g.start else -math.inf
    b1 = g.end.timestamp() if g.end else math.inf
    return a0 <= b1 and b0 <= a1


def _inside(f: StationFlag, g: StationFlag) -> bool:
    """``f``'s span lies within ``g``'s (None: open)."""
    lo = g.start is None or (f.start is not None and f.start >= g.start)
    hi = g.end is None or (f.end is not None and f.end <= g.end)
    return lo and hi


def _when(t: datetime | None, default: str) -> str:
    return f"{t:%Y-%m-%d %H:%M:%S}Z" if t else default
