"""Explosion association: detections from many stations -> located explosions.

The algorithm is one configured object, :class:`ExplosionAssociator`. It works on
arrays (see :class:`Network` and :class:`Picks` for the data format) in four steps:

1. **Space-time bisection** (the idea of PyOcto's octree, in 2-D + time because
   explosions are at the surface). A volume is a box in x, y and origin time. A
   detection is *consistent* with a volume when some origin in the box could
   have produced it: its arrival time minus the smallest and largest travel time
   from the box to its station (widened by the tolerances) overlaps the box's
   time span. Volumes consistent with detections from at least ``min_stations``
   stations are halved along their longest side (sizes compared in seconds, a
   length divided by the slowest wave speed) until they are smaller than
   ``leaf_s``; the others are dropped. Every level is one vectorized pass over
   (volume, detection) pairs.
2. **Candidates.** In each surviving leaf, one detection per station and phase
   (the one whose implied origin time is nearest the leaf's) is located by
   batched Gauss-Newton (:mod:`trucewatch.fusion.location`). Leaves that chose
   the same detections are one candidate.
3. **Resolution.** Candidates compete for detections. In rounds, a candidate is
   accepted when it is the best (most stations, then smallest misfit) for every
   detection it defines; the detections it takes leave every other candidate,
   which are relocated and rescored. A detection belongs to at most one event.
4. **Windows.** Steps 1-3 run on successive windows of ``window_s`` of origin
   time, each with the detections that could belong to it. Batch mode feeds the
   whole day; streaming mode (:meth:`ExplosionAssociator.stream`) feeds chunks
   as they arrive and keeps only the detections that can still be associated,
   so memory is bounded. Both run the same windows and give the same events.

An event whose geometry does not constrain a position (for example all
stations in a line) keeps its detections and is reported ``not_locatable``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl
from numpy.typing import NDArray

from trucewatch.errors import ConfigError
from trucewatch.fusion.location import ellipse_95, locate
from trucewatch.fusion.propagation import PHASE_NAMES, Propagation
from trucewatch.geo.crs import _transformer, local_laea, project_points

F = NDArray[np.float64]
I64 = NDArray[np.int64]

LOCATED = "located"
NOT_LOCATABLE = "not_locatable"


@dataclass(frozen=True)
class Network:
    """Stations in a local metric frame (km). ``z_km`` is elevation above the sources'
    ground level; ``timing_s`` the 1-sigma clock accuracy of each station."""

    ids: tuple[str, ...]
    x_km: F
    y_km: F
    z_km: F
    timing_s: F
    crs: str
    kind: tuple[str, ...] = ()

    @classmethod
    def from_table(cls, table: pl.DataFrame) -> Network:
        """Columns: id, latitude, longitude, elevation_m, and optional timing_s, kind."""
        if table.height < 3:
            raise ConfigError(
                f"the network has {table.height} station(s); locating an explosion needs "
                "at least 3 (4 for a checked location)",
                fix="give the full station inventory")
        lat = table["latitude"].to_numpy().astype(np.float64)
        lon = table["longitude"].to_numpy().astype(np.float64)
        crs = local_laea(float(np.mean(lon)), float(np.mean(lat)))
        x, y = project_points(lon, lat, crs)
        elev = table["elevation_m"].fill_null(0.0).to_numpy().astype(np.float64)
        timing = (table["timing_s"].fill_null(0.001).to_numpy().astype(np.float64)
                  if "timing_s" in table.columns else np.full(table.height, 0.001))
        kind = tuple(table["kind"].to_list()) if "kind" in table.columns else ()
        # sources are at ground level; use the lowest station as that level
        return cls(tuple(table["id"].cast(pl.String).to_list()), x / 1000.0, y / 1000.0,
                   (elev - elev.min()) / 1000.0, timing, crs, kind)

    def to_latlon(self, x_km: F, y_km: F) -> tuple[F, F]:
        lon, lat = _transformer(self.crs, "EPSG:4326").transform(x_km * 1000.0, y_km * 1000.0)
        return np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)


@dataclass(frozen=True)
class Picks:
    """Detections as arrays. ``t`` is seconds since ``epoch_us`` (UTC microseconds)."""

    ids: NDArray[np.object_]
    station: I64
    phase: NDArray[np.int8]
    t: F
    epoch_us: int

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def from_table(cls, table: pl.DataFrame, network: Network,
                   epoch_us: int | None = None) -> Picks:
        """Columns: detection_id, station, time (datetime UTC), phase (acoustic/P/S)."""
        index = {s: k for k, s in enumerate(network.ids)}
        station = table["station"].cast(pl.String).replace_strict(index, default=-1,
                                                                  return_dtype=pl.Int64)
        if (station < 0).any():
            unknown = sorted(set(table.filter(station < 0)["station"].to_list()))[:5]
            raise ConfigError(f"detections from unknown stations: {', '.join(unknown)}",
                              fix="add them to the inventory or quarantine those rows first")
        us = table["time"].dt.epoch("us").to_numpy().astype(np.int64)
        if epoch_us is None:
            epoch_us = int(us.min()) if len(us) else 0
        phase = table["phase"].str.to_lowercase().replace_strict(
            {"acoustic": 0, "p": 1, "s": 2}, return_dtype=pl.Int8).to_numpy()
        return cls(table["detection_id"].cast(pl.String).to_numpy().astype(object),
                   station.to_numpy().astype(np.int64), phase.astype(np.int8),
                   (us - epoch_us) / 1e6, epoch_us)

    def take(self, idx: I64) -> Picks:
        return Picks(self.ids[idx], self.station[idx], self.phase[idx], self.t[idx],
                     self.epoch_us)


@dataclass
class Association:
    """Events and the assignment of every detection (event_id null when unassociated)."""

    events: pl.DataFrame
    assignments: pl.DataFrame

    @staticmethod
    def concat(parts: list[Association]) -> Association:
        return Association(pl.concat([p.events for p in parts]) if parts else _empty_events(),
                           pl.concat([p.assignments for p in parts]) if parts
                           else _empty_assignments())


EVENT_SCHEMA: dict[str, type[pl.DataType] | pl.DataType] = {
    "event_id": pl.String, "time": pl.Datetime("us", "UTC"), "latitude": pl.Float64,
    "longitude": pl.Float64, "major_m": pl.Float64, "minor_m": pl.Float64,
    "azimuth_deg": pl.Float64, "n_defining": pl.Int64, "n_stations": pl.Int64,
    "rms_s": pl.Float64, "status": pl.String, "x_km": pl.Float64, "y_km": pl.Float64,
    "sigma_t_s": pl.Float64,
}
ASSIGN_SCHEMA: dict[str, type[pl.DataType] | pl.DataType] = {
    "detection_id": pl.String, "event_id": pl.String, "residual_s": pl.Float64}


def _empty_events() -> pl.DataFrame:
    return pl.DataFrame(schema=EVENT_SCHEMA)


def _empty_assignments() -> pl.DataFrame:
    return pl.DataFrame(schema=ASSIGN_SCHEMA)


@dataclass(frozen=True)
class ExplosionAssociator:
    """Configured associator; see docs/sensors.md for how to tune each parameter."""

    propagation: Propagation = field(default_factory=Propagation)
    min_stations: int = 4  # defining stations for a located event (3 unknowns + 1 check)
    tolerance_s: float = 0.2  # accepted misfit of one detection, seconds ...
    relative_tolerance: float = 0.002  # ... plus this fraction of its travel time
    pick_sigma_s: float = 0.1  # 1-sigma onset-time error of a detection
    leaf_s: float = 0.25  # bisection stops at volumes this small (seconds)
    margin_km: float = 10.0  # search this far outside the stations' bounding box
    max_distance_km: float | None = 40.0  # no station hears an explosion further away
    window_s: float = 600.0  # origin-time window per pass
    max_volumes: int = 200_000  # per bisection level; beyond it the best are kept
    max_silent_stations: int | None = 2  # working stations nearer than the 3rd that heard it
    max_ellipse_km: float = 5.0  # a larger 95 % semi-major axis is reported not_locatable

    def __post_init__(self) -> None:
        if self.min_stations < 3:
            raise ConfigError(f"min_stations = {self.min_stations}",
                              fix="a surface location has 3 unknowns: use 3 or more")
        for name in ("tolerance_s", "pick_sigma_s", "leaf_s", "window_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive", fix=f"set {name} > 0")
        if self.max_distance_km is not None and self.max_distance_km <= 0:
            raise ConfigError("max_distance_km must be positive",
                              fix="give a distance in km, or None for no limit")

    # ---- public API -------------------------------------------------------------------
    def associate(self, network: Network, picks: Picks) -> Association:
        """Batch mode: every detection at once."""
        return Association.concat(list(self.stream(network, [picks])))

    def stream(self, network: Network, chunks: Iterable[Picks],
               latency_s: float = 0.0) -> Iterator[Association]:
        """Streaming mode. ``chunks`` arrive in time order, except that a detection may
        arrive up to ``latency_s`` after a later one. Yields one Association per
        closed window; memory holds only detections that can still be associated."""
        ctx = _Context.build(self, network)
        buf = _empty_picks()
        epoch: int | None = None
        ws: float | None = None
        counter = [0]
        for chunk in chunks:
            if len(chunk) == 0:
                continue
            if epoch is None:
                epoch = chunk.epoch_us
            chunk = _rebase(chunk, epoch)
            buf = _concat(buf, chunk)
            if ws is None:
                ws = math.floor((float(buf.t.min()) - ctx.tmax) / self.window_s) * self.window_s
            latest = float(buf.t.max()) - latency_s
            while ws + self.window_s + ctx.tmax <= latest:
                part, buf = self._close_window(ctx, buf, ws, counter)
                ws += self.window_s
                yield part
        while ws is not None and len(buf):
            part, buf = self._close_window(ctx, buf, ws, counter)
            ws += self.window_s
            yield part

    # ---- one window ---------------------------------------------------------------------
    def _close_window(self, ctx: _Context, buf: Picks, ws: float,
                      counter: list[int]) -> tuple[Association, Picks]:
        we = ws + self.window_s
        usable = np.flatnonzero(buf.t <= we + ctx.tmax)
        ev, pair_ev, pair_pick, resid = self._solve(ctx, buf.take(usable), ws, we)
        used = np.zeros(len(buf), dtype=bool)
        used[usable[pair_pick]] = True
        # detections before the window's end can only belong to events found by now
        done = (buf.t < we) & ~used
        ids = [f"{counter[0] + k + 1:06d}" for k in range(len(ev["x"]))]
        counter[0] += len(ids)
        events = self._events_frame(ctx, ev, ids, buf.epoch_us)
        ev_ids = np.array(ids, dtype=object)
        assigned = pl.DataFrame({"detection_id": buf.ids[usable[pair_pick]].tolist(),
                                 "event_id": ev_ids[pair_ev].tolist(),
                                 "residual_s": resid}, schema=ASSIGN_SCHEMA)
        unassigned = pl.DataFrame({"detection_id": buf.ids[done].tolist(),
                                   "event_id": [None] * int(done.sum()),
                                   "residual_s": [None] * int(done.sum())},
                                  schema=ASSIGN_SCHEMA)
        keep = np.flatnonzero(~used & ~done)
        return Association(events, pl.concat([assigned, unassigned])), buf.take(keep)

    def _solve(self, ctx: _Context, pk: Picks, ws: float, we: float
               ) -> tuple[dict[str, F], I64, I64, F]:
        """Threshold cascade: strong events (many stations) are found first and take their
        detections, so that the ghosts those detections would form with others never get
        refined (what PyOcto's best-first queue achieves, here in vectorized passes)."""
        if len(pk) == 0:
            return _no_events()
        order = np.lexsort((pk.t, pk.phase, pk.station))  # the bisection relies on it
        pk = pk.take(order)
        free = np.ones(len(pk), dtype=bool)
        found: list[tuple[dict[str, F], I64, I64, F]] = []
        n_sta = len(ctx.network.ids)
        # a station that detected anything in the window is working (negative evidence)
        up = np.zeros(n_sta, dtype=bool)
        up[pk.station] = True
        for threshold in self.cascade():
            if threshold > n_sta:
                continue
            idx = np.flatnonzero(free)
            sub = pk.take(idx)
            leaf_box, pair_leaf, pair_pick = _bisect(self, ctx, sub, ws, we, threshold)
            cand = _candidates(self, ctx, sub, leaf_box, pair_leaf, pair_pick)
            if cand is None:
                continue
            ev, pair_ev, pick_idx, resid = _resolve(self, ctx, sub, *cand, threshold, up)
            keep = ev["t0"] < we
            if not keep.any():
                continue
            remap = np.cumsum(keep) - 1
            sel = keep[pair_ev]
            found.append(({k: v[keep] for k, v in ev.items()}, remap[pair_ev[sel]],
                          idx[pick_idx[sel]], resid[sel]))
            free[idx[pick_idx[sel]]] = False
        if not found:
            return _no_events()
        evs = {k: np.concatenate([f[0][k] for f in found]) for k in found[0][0]}
        offsets = np.cumsum([0] + [len(f[0]["x"]) for f in found[:-1]])
        pair_ev = np.concatenate([f[1] + o for f, o in zip(found, offsets, strict=True)])
        pick_idx = np.concatenate([f[2] for f in found])
        # report events in time order
        t_order = np.argsort(evs["t0"], kind="stable")
        rank = np.empty_like(t_order)
        rank[t_order] = np.arange(len(t_order))
        evs = {k: v[t_order] for k, v in evs.items()}
        return evs, rank[pair_ev], order[pick_idx], np.concatenate([f[3] for f in found])

    def cascade(self) -> list[int]:
        """Station-count thresholds of the successive passes, strongest first."""
        steps = [32, 24, 16, 12, 9, 7, 5]
        return [n for n in steps if n > self.min_stations] + [self.min_stations]

    def _events_frame(self, ctx: _Context, ev: dict[str, F], ids: list[str],
                      epoch_us: int) -> pl.DataFrame:
        if not ids:
            return _empty_events()
        lat, lon = ctx.network.to_latlon(ev["x"], ev["y"])
        cov = ev["cov"].reshape(-1, 3, 3)
        major, minor, az = ellipse_95(cov[:, :2, :2])
        ok = ev["ok"].astype(bool) & (np.nan_to_num(major, nan=np.inf) <= self.max_ellipse_km * 1e3)
        status = np.where(ok, LOCATED, NOT_LOCATABLE)
        us = np.round(ev["t0"] * 1e6).astype(np.int64) + epoch_us
        return pl.DataFrame({
            "event_id": ids, "time": pl.Series(us).cast(pl.Datetime("us", "UTC")),
            "latitude": lat, "longitude": lon, "major_m": major, "minor_m": minor,
            "azimuth_deg": az, "n_defining": ev["n_def"].astype(np.int64),
            "n_stations": ev["n_sta"].astype(np.int64), "rms_s": ev["rms"],
            "status": status.tolist(), "x_km": ev["x"], "y_km": ev["y"],
            "sigma_t_s": np.sqrt(cov[:, 2, 2]),
        }, schema=EVENT_SCHEMA)


# ---- internals ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Context:
    cfg: ExplosionAssociator
    network: Network
    box: tuple[float, float, float, float]
    speed: float  # slowest wave speed: converts lengths to seconds
    tmax: float  # longest possible travel time plus tolerance

    @classmethod
    def build(cls, cfg: ExplosionAssociator, network: Network) -> _Context:
        m = cfg.margin_km
        box = (float(network.x_km.min()) - m, float(network.x_km.max()) + m,
               float(network.y_km.min()) - m, float(network.y_km.max()) + m)
        diag = math.hypot(box[1] - box[0], box[3] - box[2])
        dmax = min(diag, cfg.max_distance_km or diag)
        speed = cfg.propagation.slowest_speed(np.array([0, 1, 2], dtype=np.int8))
        tmax = dmax / speed * (1 + cfg.relative_tolerance) + cfg.tolerance_s
        return cls(cfg, network, box, speed, tmax)


def _empty_picks() -> Picks:
    return Picks(np.array([], dtype=object), np.array([], dtype=np.int64),
                 np.array([], dtype=np.int8), np.array([], dtype=np.float64), 0)


def _rebase(p: Picks, epoch_us: int) -> Picks:
    return replace(p, t=p.t + (p.epoch_us - epoch_us) / 1e6, epoch_us=epoch_us)


def _concat(a: Picks, b: Picks) -> Picks:
    return Picks(np.concatenate([a.ids, b.ids]), np.concatenate([a.station, b.station]),
                 np.concatenate([a.phase, b.phase]), np.concatenate([a.t, b.t]), b.epoch_us)


def _no_events() -> tuple[dict[str, F], I64, I64, F]:
    e = np.array([], dtype=np.float64)
    ev = {k: e for k in ("x", "y", "t0", "n_def", "score", "n_sta", "rms", "ok")}
    ev["cov"] = np.zeros((0, 9))
    i = np.array([], dtype=np.int64)
    return ev, i, i, e


def _consistent(cfg: ExplosionAssociator, ctx: _Context, box: F, sx: F, sy: F, sz: F,
                ph: NDArray[np.int8], t: F) -> NDArray[np.bool_]:
    """Could some origin in ``box`` (x0, x1, y0, y1, t0, t1) have produced the detection?

    The travel time from the box is bounded twice and the tighter bound kept: by the
    nearest and farthest distance (good for big boxes), and by the exact time from
    the box centre plus or minus half its diagonal times the largest slowness (good
    for small boxes, and exact with wind)."""
    hx = np.maximum(np.maximum(box[:, 0] - sx, sx - box[:, 1]), 0.0)
    hy = np.maximum(np.maximum(box[:, 2] - sy, sy - box[:, 3]), 0.0)
    dmin_h = np.hypot(hx, hy)
    fx = np.maximum(np.abs(sx - box[:, 0]), np.abs(sx - box[:, 1]))
    fy = np.maximum(np.abs(sy - box[:, 2]), np.abs(sy - box[:, 3]))
    dmax_h = np.hypot(fx, fy)
    ok = np.ones(len(t), dtype=bool)
    if cfg.max_distance_km is not None:
        ok = dmin_h <= cfg.max_distance_km
        dmax_h = np.minimum(dmax_h, cfg.max_distance_km)
    z2 = sz * sz
    prop = cfg.propagation
    lo, hi = prop.bounds(ph, np.sqrt(dmin_h**2 + z2), np.sqrt(dmax_h**2 + z2))
    cx = 0.5 * (box[:, 0] + box[:, 1])
    cy = 0.5 * (box[:, 2] + box[:, 3])
    tc = prop.travel_time(ph, sx - cx, sy - cy, sz)
    spread = 0.5 * np.hypot(box[:, 1] - box[:, 0], box[:, 3] - box[:, 2]) * prop.max_slowness(ph)
    lo = np.maximum(lo, tc - spread)
    hi = np.minimum(hi, tc + spread)
    rel = cfg.relative_tolerance
    tol = cfg.tolerance_s
    return ok & (t - hi * (1 + rel) - tol <= box[:, 5]) & (t - lo * (1 - rel) + tol >= box[:, 4])


def _station_counts(vol: I64, station: I64, n_vol: int) -> I64:
    """Distinct stations per volume; pairs sorted by (volume, detection), detections by station."""
    if len(vol) == 0:
        return np.zeros(n_vol, dtype=np.int64)
    new = np.empty(len(vol), dtype=bool)
    new[0] = True
    new[1:] = (vol[1:] != vol[:-1]) | (station[1:] != station[:-1])
    return np.bincount(vol[new], minlength=n_vol)


def _bisect(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, ws: float, we: float,
            threshold: int) -> tuple[F, I64, I64]:
    net = ctx.network
    sx, sy, sz = net.x_km[pk.station], net.y_km[pk.station], net.z_km[pk.station]
    boxes = np.array([[*ctx.box, ws, we]])
    pv = np.zeros(len(pk), dtype=np.int64)
    pp = np.arange(len(pk), dtype=np.int64)
    leaves: list[F] = []
    leaf_pv: list[I64] = []
    leaf_pp: list[I64] = []
    n_leaves = 0
    while len(boxes):
        ok = _consistent(cfg, ctx, boxes[pv], sx[pp], sy[pp], sz[pp], pk.phase[pp], pk.t[pp])
        pv, pp = pv[ok], pp[ok]
        counts = _station_counts(pv, pk.station[pp], len(boxes))
        alive = counts >= threshold
        size = np.stack([(boxes[:, 1] - boxes[:, 0]) / ctx.speed,
                         (boxes[:, 3] - boxes[:, 2]) / ctx.speed,
                         boxes[:, 5] - boxes[:, 4]], axis=1)
        leaf = alive & (size.max(axis=1) <= cfg.leaf_s)
        if leaf.any():
            new_id = np.cumsum(leaf) - 1 + n_leaves
            sel = leaf[pv]
            leaves.append(boxes[leaf])
            leaf_pv.append(new_id[pv[sel]])
            leaf_pp.append(pp[sel])
            n_leaves += int(leaf.sum())
        split = alive & ~leaf
        if not split.any():
            break
        if int(split.sum()) * 2 > cfg.max_volumes:
            # memory bound: refine only the best-supported volumes (like a best-first queue)
            cut = np.sort(counts[split])[::-1][cfg.max_volumes // 2 - 1]
            split &= counts > cut if (counts[split] > cut).any() else counts >= cut
        parent_id = np.cumsum(split) - 1
        sel = split[pv]
        pv, pp = parent_id[pv[sel]], pp[sel]
        parents = boxes[split]
        dim = np.argmax(size[split], axis=1)
        lo_col = np.array([0, 2, 4])[dim]
        hi_col = lo_col + 1
        rows = np.arange(len(parents))
        mid = 0.5 * (parents[rows, lo_col] + parents[rows, hi_col])
        first = parents.copy()
        second = parents.copy()
        first[rows, hi_col] = mid
        second[rows, lo_col] = mid
        boxes = np.empty((2 * len(parents), 6))
        boxes[0::2] = first
        boxes[1::2] = second
        # children 2k and 2k+1; a stable sort on the child id keeps detections in order
        child = np.concatenate([2 * pv, 2 * pv + 1])
        pp = np.concatenate([pp, pp])
        order = np.argsort(child, kind="stable")
        pv, pp = child[order], pp[order]
    if not leaves:
        e = np.array([], dtype=np.int64)
        return np.zeros((0, 6)), e, e
    return np.concatenate(leaves), np.concatenate(leaf_pv), np.concatenate(leaf_pp)


def _candidates(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, leaf_box: F,
                pair_leaf: I64, pair_pick: I64) -> tuple[I64, I64, F, F] | None:
    """One detection per (leaf, station, phase), then leaves with the same set merged."""
    if len(pair_leaf) == 0:
        return None
    net = ctx.network
    cx = 0.5 * (leaf_box[:, 0] + leaf_box[:, 1])
    cy = 0.5 * (leaf_box[:, 2] + leaf_box[:, 3])
    ct = 0.5 * (leaf_box[:, 4] + leaf_box[:, 5])
    st = pk.station[pair_pick]
    ph = pk.phase[pair_pick]
    tt = cfg.propagation.travel_time(ph, net.x_km[st] - cx[pair_leaf],
                                     net.y_km[st] - cy[pair_leaf], net.z_km[st])
    miss = np.abs(pk.t[pair_pick] - tt - ct[pair_leaf])
    order = np.lexsort((miss, ph, st, pair_leaf))
    pl_, pp_ = pair_leaf[order], pair_pick[order]
    key_change = np.ones(len(order), dtype=bool)
    key_change[1:] = ((pl_[1:] != pl_[:-1]) | (st[order][1:] != st[order][:-1])
                      | (ph[order][1:] != ph[order][:-1]))
    pl_, pp_ = pl_[key_change], pp_[key_change]
    # identical detection sets -> one candidate (hash = sum of random 64-bit tags)
    tags = np.random.default_rng(0).integers(0, 2**63, size=len(pk), dtype=np.uint64)
    h = np.zeros(len(leaf_box), dtype=np.uint64)
    np.add.at(h, pl_, tags[pp_])
    present = np.zeros(len(leaf_box), dtype=bool)
    present[pl_] = True
    _, first = np.unique(np.where(present, h, np.uint64(0)), return_index=True)
    first = first[present[first]]
    keep_leaf = np.zeros(len(leaf_box), dtype=bool)
    keep_leaf[first] = True
    new_id = np.cumsum(keep_leaf) - 1
    sel = keep_leaf[pl_]
    return new_id[pl_[sel]], pp_[sel], cx[keep_leaf], cy[keep_leaf]


def _score(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, seg: I64, pick: I64, n: int,
           x0: F, y0: F) -> tuple[dict[str, F], NDArray[np.bool_], F]:
    """Locate candidates, then count the stations whose detections fit (defining)."""
    net = ctx.network
    st = pk.station[pick]
    sx, sy, sz = net.x_km[st], net.y_km[st], net.z_km[st]
    sigma = np.sqrt(cfg.pick_sigma_s**2 + net.timing_s[st] ** 2)
    sol = locate(seg, n, sx, sy, sz, pk.phase[pick], pk.t[pick], sigma, x0, y0,
                 cfg.propagation, huber_s=cfg.tolerance_s)
    tt = pk.t[pick] - sol.t0[seg] - sol.residual
    fits = np.abs(sol.residual) <= cfg.tolerance_s + cfg.relative_tolerance * tt
    if cfg.max_distance_km is not None:
        fits &= np.hypot(sx - sol.x[seg], sy - sol.y[seg]) <= cfg.max_distance_km
    n_sta = _station_counts(seg[fits], st[fits], n)
    n_def = np.bincount(seg[fits], minlength=n)
    rms = np.sqrt(np.bincount(seg[fits], weights=sol.residual[fits] ** 2, minlength=n)
                  / np.maximum(n_def, 1))
    # fit quality: a detection counts fully when it fits exactly, nothing at the tolerance
    tol_i = cfg.tolerance_s + cfg.relative_tolerance * tt
    quality = np.bincount(seg[fits], weights=1 - (sol.residual[fits] / tol_i[fits]) ** 2,
                          minlength=n)
    ev = {"x": sol.x, "y": sol.y, "t0": sol.t0, "n_def": n_def.astype(np.float64),
          "score": quality,
          "n_sta": n_sta.astype(np.float64), "rms": rms, "ok": sol.ok.astype(np.float64),
          "cov": sol.cov.reshape(n, 9)}
    return ev, fits, sol.residual


def _resolve(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, seg: I64, pick: I64,
             x0: F, y0: F, threshold: int, up: NDArray[np.bool_]
             ) -> tuple[dict[str, F], I64, I64, F]:
    """Accept candidates with at least ``threshold`` defining stations, best first; weaker
    ones wait for a later pass of the cascade with their detections still free."""
    n = len(x0)
    ev, fits, resid = _score(cfg, ctx, pk, seg, pick, n, x0, y0)
    seg, pick, resid = seg[fits], pick[fits], resid[fits]
    cand = np.arange(n)  # original candidate id of each live candidate
    accepted: list[tuple[dict[str, F], I64, I64, F]] = []
    claimed = np.zeros(len(pk), dtype=bool)
    while True:
        live = ev["n_sta"] >= threshold
        if cfg.max_silent_stations is not None:
            live &= _silent(ctx, pk, seg, pick, len(live), ev, up) <= cfg.max_silent_stations
        if not live.any():
            break
        # rank: best fit quality (many stations, small residuals) first; ties by id
        rank = np.empty(len(live), dtype=np.int64)
        rank[np.lexsort((cand, -ev["score"]))] = np.arange(len(live))
        rank[~live] = np.iinfo(np.int64).max
        best = np.full(len(pk), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(best, pick, rank[seg])
        mine = best[pick] == rank[seg]
        wins = np.bincount(seg, weights=mine, minlength=len(live)) == np.bincount(
            seg, minlength=len(live))
        winners = live & wins
        w_ent = winners[seg]
        remap = np.cumsum(winners) - 1
        accepted.append(({k: v[winners] for k, v in ev.items()}, remap[seg[w_ent]],
                         pick[w_ent], resid[w_ent]))
        claimed[pick[w_ent]] = True
        # losers give up claimed detections; survivors are relocated from where they were
        rest = live & ~winners
        ent = rest[seg] & ~claimed[pick]
        if not ent.any():
            break
        keep_c = np.zeros(len(live), dtype=bool)
        keep_c[seg[ent]] = True
        new_id = np.cumsum(keep_c) - 1
        seg, pick = new_id[seg[ent]], pick[ent]
        cand = cand[keep_c]
        ev, fits, resid = _score(cfg, ctx, pk, seg, pick, int(keep_c.sum()),
                                 ev["x"][keep_c], ev["y"][keep_c])
        seg, pick, resid = seg[fits], pick[fits], resid[fits]
    if not accepted:
        return _no_events()
    evs = {k: np.concatenate([a[0][k] for a in accepted]) for k in accepted[0][0]}
    offsets = np.cumsum([0] + [len(a[0]["x"]) for a in accepted[:-1]])
    pair_ev = np.concatenate([a[1] + o for a, o in zip(accepted, offsets, strict=True)])
    return (evs, pair_ev, np.concatenate([a[2] for a in accepted]),
            np.concatenate([a[3] for a in accepted]))


def _silent(ctx: _Context, pk: Picks, seg: I64, pick: I64, n: int, ev: dict[str, F],
            up: NDArray[np.bool_]) -> I64:
    """Working stations nearer to each candidate than its 3rd-nearest defining station that
    did not hear it. A real explosion is heard first by the nearest stations; a ghost
    made of unrelated detections is not (the negative evidence NET-VISA also uses)."""
    net = ctx.network
    dist = np.hypot(net.x_km[None, :] - ev["x"][:, None], net.y_km[None, :] - ev["y"][:, None])
    heard = np.zeros((n, len(net.ids)), dtype=bool)
    heard[seg, pk.station[pick]] = True
    d_heard = np.where(heard, dist, np.inf)
    k = 3
    kth = np.partition(d_heard, k - 1, axis=1)[:, k - 1] if d_heard.shape[1] >= k else \
        np.full(n, np.inf)
    silent = up[None, :] & ~heard & (dist < kth[:, None])
    return silent.sum(axis=1)


def phase_name(code: int) -> str:
    return PHASE_NAMES[code]
