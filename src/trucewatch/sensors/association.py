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
   batched Gauss-Newton (:mod:`trucewatch.sensors.location`). Leaves that chose
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

5. **Joint re-assignment** (``joint=JointRefiner()``, off by default): after the
   cascade, hard EM over each window on a generative model of the network learned
   from the stream (:mod:`trucewatch.sensors.joint`): detections go to the event
   under which their likelihood ratio against a false detection is highest,
   events are relocated, events with poor posterior odds are dropped, and the
   freed detections are searched again. Back-azimuths gate fits and enter the
   likelihood. The model learns from each closed window before the next, so
   batch and streaming still give the same events.

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
from trucewatch.geo.crs import _transformer, local_laea, project_points
from trucewatch.sensors import kernels
from trucewatch.sensors.joint import JointRefiner, NetworkModel, wrap_deg
from trucewatch.sensors.location import ellipse_95, locate
from trucewatch.sensors.propagation import Propagation

__all__ = ["Association", "ExplosionAssociator", "JointRefiner", "Network", "Picks"]

F = NDArray[np.float64]
I64 = NDArray[np.int64]

LOCATED = "located"
KERNEL_MIN_PAIRS = 400_000  # (box, detection) pairs of a level from which "auto" compiles
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
    amp: F | None = None  # peak amplitude (any consistent unit per kind), NaN if unknown
    baz: F | None = None  # back-azimuth (degrees from north, station to source), NaN if none

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
        amp = (table["amplitude"].cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
               .astype(np.float64) if "amplitude" in table.columns
               else np.full(table.height, np.nan))
        baz = (table["back_azimuth_deg"].cast(pl.Float64, strict=False).fill_null(np.nan)
               .to_numpy().astype(np.float64) if "back_azimuth_deg" in table.columns
               else np.full(table.height, np.nan))
        return cls(table["detection_id"].cast(pl.String).to_numpy().astype(object),
                   station.to_numpy().astype(np.int64), phase.astype(np.int8),
                   (us - epoch_us) / 1e6, epoch_us, amp, baz)

    def amplitudes(self) -> F:
        return self.amp if self.amp is not None else np.full(len(self.t), np.nan)

    def back_azimuths(self) -> F:
        return self.baz if self.baz is not None else np.full(len(self.t), np.nan)

    def take(self, idx: I64) -> Picks:
        return Picks(self.ids[idx], self.station[idx], self.phase[idx], self.t[idx],
                     self.epoch_us, self.amplitudes()[idx], self.back_azimuths()[idx])


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
    amplitude_decay: float | None = 1.3  # amplitude ~ size / distance^decay; None: ignore
    max_amplitude_spread: float = 1.0  # ln units; larger scatter is not one explosion
    weak_max_silent: int = 1  # the same for events with at most min_stations + 1 stations
    max_ellipse_km: float = 5.0  # a larger 95 % semi-major axis is reported not_locatable
    min_aperture_ratio: float = 0.05  # defining stations flatter than this: not_locatable
    joint: JointRefiner | None = None  # joint re-assignment after the cascade; None: off
    # the bisection's loops: "auto" compiled (numba, the sensors extra) when installed,
    # else numpy; "compiled" requires numba; "numpy" is the reference (same results)
    kernel: str = "auto"

    def __post_init__(self) -> None:
        if self.min_stations < 3:
            raise ConfigError(f"min_stations = {self.min_stations}",
                              fix="a surface location has 3 unknowns: use 3 or more")
        for name in ("tolerance_s", "pick_sigma_s", "leaf_s", "window_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive", fix=f"set {name} > 0")
        if self.kernel not in ("auto", "compiled", "numpy"):
            raise ConfigError(f"kernel = {self.kernel!r}",
                              fix="use 'auto', 'compiled' (numba) or 'numpy'")
        if self.kernel == "compiled" and not kernels.AVAILABLE:
            raise ConfigError("kernel = 'compiled' but numba is not installed",
                              fix="pip install 'trucewatch[sensors]', or use kernel='auto'")
        if self.max_distance_km is not None and self.max_distance_km <= 0:
            raise ConfigError("max_distance_km must be positive",
                              fix="give a distance in km, or None for no limit")

    # ---- public API -------------------------------------------------------------------
    def associate(self, network: Network, picks: Picks) -> Association:
        """Batch mode: every detection at once (the same windows as streaming)."""
        parts = [p for p in self._windows(network, [picks], 0.0) if p.events or p.det_ids]
        if not parts:
            return Association(_empty_events(), _empty_assignments())
        with_events = [p for p in parts if p.events]
        if not with_events:
            return Association(_empty_events(), _Part.assignments_of(parts))
        ev = {k: np.concatenate([p.ev[k] for p in with_events]) for k in with_events[0].ev}
        ids = [i for p in with_events for i in p.events]
        frame = self._events_frame(with_events[0].ctx, ev, ids, with_events[0].epoch_us)
        return Association(frame, _Part.assignments_of(parts))

    def stream(self, network: Network, chunks: Iterable[Picks],
               latency_s: float = 0.0) -> Iterator[Association]:
        """Streaming mode. ``chunks`` arrive in time order, except that a detection may
        arrive up to ``latency_s`` after a later one. Yields one Association per
        closed window; memory holds only detections that can still be associated."""
        for part in self._windows(network, chunks, latency_s):
            yield Association(part.events_frame(), _Part.assignments_of([part]))

    def reach_s(self, network: Network) -> float:
        """How long after a window's end a detection can still belong to one of its
        events (the longest travel time plus the tolerances): a window starting at
        ``ws`` reads the detections up to ``ws + window_s + reach_s``."""
        return _Context.build(self, network).tmax

    def resume(self, network: Network, picks: Picks, start_s: float | None = None,
               stop_s: float | None = None) -> Iterator[tuple[float, Association]]:
        """Batch mode from a window on, for a sliding window over a stream that is
        stored (intake/stream.py): ``picks`` are the detections not yet taken by the
        windows before ``start_s`` (a window start on the grid of ``picks.epoch_us``;
        None: the first window, as :meth:`associate`). Windows are closed from there
        exactly as :meth:`associate` closes them (the same rule for the next window,
        the same buffer) until every detection is taken, or up to the first window
        starting at ``stop_s`` or later (not solved); yields each window's start
        (seconds after ``picks.epoch_us``) with its Association. With the joint stage
        the network model learns across windows, so only ``start_s=None`` is the
        batch result."""
        if self.joint is not None and start_s is not None:
            raise ConfigError("the joint stage learns from every window before: it cannot "
                              "resume in the middle of a stream",
                              fix="recompute the stream from its first window")
        if len(picks) == 0:
            return
        ctx = _Context.build(self, network)
        buf = picks
        ws = (math.floor((float(buf.t.min()) - ctx.tmax) / self.window_s) * self.window_s
              if start_s is None else start_s)
        counter = [0]
        while len(buf):
            ws = self._first_useful(ctx, buf, ws)
            if stop_s is not None and ws >= stop_s:
                return
            part, buf = self._close_window(ctx, buf, ws, counter)
            if part.events or part.det_ids:
                yield ws, Association(part.events_frame(), _Part.assignments_of([part]))
            ws += self.window_s

    def _windows(self, network: Network, chunks: Iterable[Picks],
                 latency_s: float) -> Iterator[_Part]:
        return self._windows_with(_Context.build(self, network), network, chunks, latency_s)

    def _windows_with(self, ctx: _Context, network: Network, chunks: Iterable[Picks],
                      latency_s: float) -> Iterator[_Part]:
        """The windows, in time order, with a given context (its network model, when
        the joint stage is on, learns from each closed window before the next)."""
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
            # the first window that cannot be closed yet: windows are closed up to it
            stop = math.floor((latest - ctx.tmax) / self.window_s) * self.window_s
            ws = min(self._first_useful(ctx, buf, ws), max(ws, stop))
            while ws + self.window_s + ctx.tmax <= latest:
                part, buf = self._close_window(ctx, buf, ws, counter)
                ws = min(self._first_useful(ctx, buf, ws + self.window_s), max(ws, stop))
                yield part
        while ws is not None and len(buf):
            ws = self._first_useful(ctx, buf, ws)
            part, buf = self._close_window(ctx, buf, ws, counter)
            ws += self.window_s
            yield part

    def _first_useful(self, ctx: _Context, buf: Picks, ws: float) -> float:
        """``ws``, or a later window start when the windows before it hold no detection of
        ``buf`` (each would close with nothing): a gap of years between two detections
        costs nothing (it once walked every window in between). The window one before
        the earliest detection's is kept, so a detection on a window's edge is seen as it
        was; windows stay on the same grid."""
        if not len(buf):
            return ws
        first = (math.floor((float(buf.t.min()) - ctx.tmax) / self.window_s) - 1) \
            * self.window_s
        return max(ws, first)

    # ---- one window ---------------------------------------------------------------------
    def _close_window(self, ctx: _Context, buf: Picks, ws: float,
                      counter: list[int]) -> tuple[_Part, Picks]:
        we = ws + self.window_s
        usable = np.flatnonzero(buf.t <= we + ctx.tmax)
        ev, pair_ev, pair_pick, resid = self._solve(ctx, buf.take(usable), ws, we)
        used = np.zeros(len(buf), dtype=bool)
        used[usable[pair_pick]] = True
        # detections before the window's end can only belong to events found by now
        done = (buf.t < we) & ~used
        ids = [f"{counter[0] + k + 1:06d}" for k in range(len(ev["x"]))]
        counter[0] += len(ids)
        ev_ids = np.array(ids, dtype=object)
        part = _Part(self, ctx, ev, ids, buf.epoch_us,
                     [*buf.ids[usable[pair_pick]].tolist(), *buf.ids[done].tolist()],
                     [*ev_ids[pair_ev].tolist(), *([None] * int(done.sum()))],
                     [*resid.tolist(), *([None] * int(done.sum()))])
        keep = np.flatnonzero(~used & ~done)
        return part, buf.take(keep)

    def _solve(self, ctx: _Context, pk: Picks, ws: float, we: float
               ) -> tuple[dict[str, F], I64, I64, F]:
        """One window. With the joint stage, detections are sought out to the reach the
        network model has learned so far (:meth:`NetworkModel.reach_km`)."""
        if ctx.model is not None and self.max_distance_km is not None:
            diag = math.hypot(ctx.box[1] - ctx.box[0], ctx.box[3] - ctx.box[2])
            reach = ctx.model.reach_km(self.max_distance_km, diag)
            if reach > self.max_distance_km:
                cfg = replace(self, max_distance_km=reach)
                ctx = replace(ctx, cfg=cfg,
                              search=replace(ctx.search, max_distance_km=reach))
                return cfg._solve_within(ctx, pk, ws, we)
        return self._solve_within(ctx, pk, ws, we)

    def _solve_within(self, ctx: _Context, pk: Picks, ws: float, we: float
                      ) -> tuple[dict[str, F], I64, I64, F]:
        """Threshold cascade: strong events (many stations) are found first and take their
        detections, so that the ghosts those detections would form with others never get
        refined (what PyOcto's best-first queue achieves, here in vectorized passes)."""
        if len(pk) == 0:
            return _no_events()
        order = np.lexsort((pk.t, pk.phase, pk.station))  # the bisection relies on it
        pk = pk.take(order)
        n_sta = len(ctx.network.ids)
        # a station that detected anything in the window is working (negative evidence)
        up = np.zeros(n_sta, dtype=bool)
        up[pk.station] = True
        found = ctx.search._passes(ctx, pk, np.ones(len(pk), dtype=bool), ws, we, up)
        if not found:
            return _no_events()
        evs = {k: np.concatenate([f[0][k] for f in found]) for k in found[0][0]}
        for _ in range(2):
            evs, pair_ev, pick_idx, resid = _reassign(self, ctx, pk, evs)
            if len(evs["x"]) == 0:
                return _no_events()
        if self.joint is not None and ctx.model is not None:
            evs, pair_ev, pick_idx, resid = _joint(self, ctx, pk, evs, pair_ev, pick_idx,
                                                   ws, we, up)
            if len(evs["x"]) == 0:
                return _no_events()
        # report events in time order
        t_order = np.argsort(evs["t0"], kind="stable")
        rank = np.empty_like(t_order)
        rank[t_order] = np.arange(len(t_order))
        evs = {k: v[t_order] for k, v in evs.items()}
        return evs, rank[pair_ev], order[pick_idx], resid

    def _passes(self, ctx: _Context, pk: Picks, free: NDArray[np.bool_], ws: float,
                we: float, up: NDArray[np.bool_]) -> list[tuple[dict[str, F], I64, I64, F]]:
        """The cascade's passes over the ``free`` detections (``pk`` sorted by station,
        phase and time); each found event takes its detections."""
        free = free.copy()
        found: list[tuple[dict[str, F], I64, I64, F]] = []
        n_sta = len(ctx.network.ids)
        for threshold in self.cascade():
            # a pass needs detections from at least `threshold` stations: skip it cheaply
            if threshold > n_sta or np.unique(pk.station[free]).size < threshold:
                continue
            if not _may_gather(self, ctx, pk, free, threshold):
                continue
            idx = np.flatnonzero(free)
            sub = pk.take(idx)
            leaf_box, pair_leaf, pair_pick = _bisect(self, ctx, sub, ws, we, threshold, up)
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
        return found

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
        ok = (ev["ok"].astype(bool) & (ev["flat"] >= self.min_aperture_ratio)
              & (np.nan_to_num(major, nan=np.inf) <= self.max_ellipse_km * 1e3))
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

@dataclass
class _Part:
    """What one closed window produced, as plain lists (frames are built once)."""

    cfg: ExplosionAssociator
    ctx: _Context
    ev: dict[str, F]
    events: list[str]
    epoch_us: int
    det_ids: list[str]
    event_ids: list[str | None]
    residuals: list[float | None]

    def events_frame(self) -> pl.DataFrame:
        return self.cfg._events_frame(self.ctx, self.ev, self.events, self.epoch_us)

    @staticmethod
    def assignments_of(parts: list[_Part]) -> pl.DataFrame:
        return pl.DataFrame({
            "detection_id": [d for p in parts for d in p.det_ids],
            "event_id": [e for p in parts for e in p.event_ids],
            "residual_s": [r for p in parts for r in p.residuals]}, schema=ASSIGN_SCHEMA)


@dataclass(frozen=True)
class _Context:
    cfg: ExplosionAssociator
    network: Network
    box: tuple[float, float, float, float]
    speed: float  # slowest wave speed: converts lengths to seconds
    tmax: float  # longest possible travel time plus tolerance
    search: ExplosionAssociator  # the configuration of the cascade's passes
    model: NetworkModel | None  # learned from the stream (joint stage on), else None
    kernel_table: tuple[F, I64, F] | None = None  # compiled kernels' travel times, or None

    @classmethod
    def build(cls, cfg: ExplosionAssociator, network: Network) -> _Context:
        m = cfg.margin_km
        box = (float(network.x_km.min()) - m, float(network.x_km.max()) + m,
               float(network.y_km.min()) - m, float(network.y_km.max()) + m)
        diag = math.hypot(box[1] - box[0], box[3] - box[2])
        # with the joint stage the reach is learned and may grow to the whole area
        dmax = min(diag, cfg.max_distance_km or diag) if (
            cfg.joint is None or cfg.joint.reach_p <= 0) else diag
        speed = cfg.propagation.slowest_speed(np.array([0, 1, 2], dtype=np.int8))
        tmax = dmax / speed * (1 + cfg.relative_tolerance) + cfg.tolerance_s
        search, model = cfg, None
        if cfg.joint is not None:
            j = cfg.joint
            search = replace(cfg, max_silent_stations=(
                j.cascade_max_silent if j.cascade_max_silent is not None
                else cfg.max_silent_stations), weak_max_silent=(
                j.cascade_weak_max_silent if j.cascade_weak_max_silent is not None
                else cfg.weak_max_silent))
            model = NetworkModel.start(j, len(network.ids),
                                       (box[1] - box[0]) * (box[3] - box[2]))
        table = None
        if cfg.kernel != "numpy" and kernels.AVAILABLE:
            if kernels.fits_table(cfg.propagation):
                table = kernels.propagation_table(cfg.propagation)
            elif cfg.kernel == "compiled":
                raise ConfigError(f"the layered model has more than {kernels.MAX_HEAD} "
                                  "head waves, more than the compiled kernel takes",
                                  fix="use kernel='numpy' or fewer layers")
        return cls(cfg, network, box, speed, tmax, search, model, table)


def _may_gather(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, free: NDArray[np.bool_],
                threshold: int) -> bool:
    """False when no span of time as long as one explosion's arrivals can last holds
    free detections from ``threshold`` stations: then the pass cannot find anything
    and its bisection (whose fixed cost per level dominates a quiet window) is skipped.
    An upper bound, so a pass that could find an event is never skipped."""
    t = np.sort(pk.t[free])
    if len(t) < threshold:
        return False
    diag = math.hypot(ctx.box[1] - ctx.box[0], ctx.box[3] - ctx.box[2])
    dmax = min(diag, cfg.max_distance_km or diag)
    span = 1.1 * dmax / ctx.speed * (1 + cfg.relative_tolerance) + 2 * cfg.tolerance_s + 1.0
    hi = np.searchsorted(t, t + span, side="right")
    cnt = hi - np.arange(len(t))
    if int(cnt.max()) < threshold:
        return False
    if int(cnt.sum()) > 200_000:
        return True
    # distinct stations per span (detections of one station count once), counting only
    # the later detections that could share an origin with the first: two arrivals of
    # one phase differ by at most the stations' distance times the largest slowness
    # (the travel-time field's gradient; 1.1 for the wind's sideways term) plus both
    # tolerances. An event's earliest detection sees all its others, so still a bound
    o = np.argsort(pk.t[free], kind="stable")
    st = pk.station[free][o]
    ph = pk.phase[free][o]
    i = np.repeat(np.arange(len(t)), cnt)
    j = np.arange(len(i)) - np.repeat(np.cumsum(cnt) - cnt, cnt) + i
    net = ctx.network
    a, b = st[i], st[j]
    d3 = np.sqrt((net.x_km[a] - net.x_km[b]) ** 2 + (net.y_km[a] - net.y_km[b]) ** 2
                 + (net.z_km[a] - net.z_km[b]) ** 2)
    tt_max = dmax / ctx.speed
    reach = (1.1 * d3 / ctx.speed + 2 * cfg.tolerance_s
             + 2 * cfg.relative_tolerance * tt_max + 1e-6)
    ok = (ph[i] != ph[j]) | (t[j] - t[i] <= reach)
    key = np.unique(i[ok] * len(net.ids) + st[j[ok]])
    return bool(np.bincount(key // len(net.ids)).max() >= threshold)


def _empty_picks() -> Picks:
    return Picks(np.array([], dtype=object), np.array([], dtype=np.int64),
                 np.array([], dtype=np.int8), np.array([], dtype=np.float64), 0,
                 np.array([], dtype=np.float64), np.array([], dtype=np.float64))


def _rebase(p: Picks, epoch_us: int) -> Picks:
    return replace(p, t=p.t + (p.epoch_us - epoch_us) / 1e6, epoch_us=epoch_us)


def _concat(a: Picks, b: Picks) -> Picks:
    return Picks(np.concatenate([a.ids, b.ids]), np.concatenate([a.station, b.station]),
                 np.concatenate([a.phase, b.phase]), np.concatenate([a.t, b.t]), b.epoch_us,
                 np.concatenate([a.amplitudes(), b.amplitudes()]),
                 np.concatenate([a.back_azimuths(), b.back_azimuths()]))


def _no_events() -> tuple[dict[str, F], I64, I64, F]:
    e = np.array([], dtype=np.float64)
    ev = dict.fromkeys(("x", "y", "t0", "n_def", "score", "flat", "amp_spread", "n_sta",
                        "rms", "ok"), e)
    ev["cov"] = np.zeros((0, 9))
    i = np.array([], dtype=np.int64)
    return ev, i, i, e


def _consistent(cfg: ExplosionAssociator, x0: F, y0: F, t0: F, size: tuple[float, float, float],
                sx: F, sy: F, sz: F, ph: NDArray[np.int8], t: F) -> NDArray[np.bool_]:
    """Could some origin in the box [x0, x0+wx] x [y0, y0+wy] x [t0, t0+wt] have produced
    the detection? All boxes of one bisection level have the same size.

    The travel time from the box is bounded either by the nearest and farthest
    distance (big boxes) or by the exact time from the box centre plus or minus half
    its diagonal times the largest slowness (small boxes; exact with wind)."""
    wx, wy, wt = size
    prop = cfg.propagation
    half = 0.5 * math.hypot(wx, wy)
    if half <= 2.0:
        dx = sx - (x0 + 0.5 * wx)
        dy = sy - (y0 + 0.5 * wy)
        tc = prop.travel_time(ph, dx, dy, sz)
        spread = half * prop.max_slowness(ph)
        lo = np.maximum(tc - spread, 0.0)
        hi = tc + spread
        ok = (np.hypot(dx, dy) - half <= cfg.max_distance_km if cfg.max_distance_km is not None
              else np.ones(len(t), dtype=bool))
    else:
        hx = np.maximum(np.maximum(x0 - sx, sx - x0 - wx), 0.0)
        hy = np.maximum(np.maximum(y0 - sy, sy - y0 - wy), 0.0)
        dmin_h = np.hypot(hx, hy)
        dmax_h = np.hypot(np.maximum(np.abs(sx - x0), np.abs(sx - x0 - wx)),
                          np.maximum(np.abs(sy - y0), np.abs(sy - y0 - wy)))
        ok = np.ones(len(t), dtype=bool)
        if cfg.max_distance_km is not None:
            ok = dmin_h <= cfg.max_distance_km
            dmax_h = np.minimum(dmax_h, cfg.max_distance_km)
        z2 = sz * sz
        lo, hi = prop.bounds(ph, np.sqrt(dmin_h**2 + z2), np.sqrt(dmax_h**2 + z2))
    rel = cfg.relative_tolerance
    tol = cfg.tolerance_s
    return ok & (t - hi * (1 + rel) - tol <= t0 + wt) & (t - lo * (1 - rel) + tol >= t0)


def _station_counts(vol: I64, station: I64, n_vol: int) -> I64:
    """Distinct stations per volume; pairs sorted by (volume, detection), detections by station."""
    if len(vol) == 0:
        return np.zeros(n_vol, dtype=np.int64)
    new = np.empty(len(vol), dtype=bool)
    new[0] = True
    new[1:] = (vol[1:] != vol[:-1]) | (station[1:] != station[:-1])
    return np.bincount(vol[new], minlength=n_vol)


def _bisect(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, ws: float, we: float,
            threshold: int, up: NDArray[np.bool_] | None = None) -> tuple[F, I64, I64]:
    """Leaves (x0, x1, y0, y1, t0, t1) with their consistent detections (leaf, pick)."""
    net = ctx.network
    sx, sy, sz = net.x_km[pk.station], net.y_km[pk.station], net.z_km[pk.station]
    # one level: lower corners per box, one shared size
    corner = np.array([[ctx.box[0], ctx.box[2], ws]])
    size = np.array([ctx.box[1] - ctx.box[0], ctx.box[3] - ctx.box[2], we - ws])
    pv = np.zeros(len(pk), dtype=np.int64)
    pp = np.arange(len(pk), dtype=np.int64)
    leaves: list[F] = []
    leaf_pv: list[I64] = []
    leaf_pp: list[I64] = []
    n_leaves = 0
    level = 0
    # small levels stay in numpy until the kernels are loaded: loading them costs about
    # half a CPU second once per process, more than a small input's whole run; once
    # loaded, every level uses them (both give the same arrays)
    forced = cfg.kernel == "compiled"
    while len(corner):
        compiled = ctx.kernel_table is not None and (
            forced or len(pv) >= KERNEL_MIN_PAIRS or kernels.warm())
        if ctx.kernel_table is not None and compiled:
            tab, n_head, slow = ctx.kernel_table
            pv, pp, counts = kernels.level_filter(
                np.ascontiguousarray(corner[:, 0]), np.ascontiguousarray(corner[:, 1]),
                np.ascontiguousarray(corner[:, 2]), float(size[0]), float(size[1]),
                float(size[2]), pv, pp, sx, sy, sz, pk.phase, pk.t, pk.station, tab, n_head,
                slow, float(cfg.max_distance_km or 0.0), cfg.max_distance_km is not None,
                float(cfg.relative_tolerance), float(cfg.tolerance_s), len(corner))
        else:
            ok = _consistent(cfg, corner[pv, 0], corner[pv, 1], corner[pv, 2],
                             (float(size[0]), float(size[1]), float(size[2])),
                             sx[pp], sy[pp], sz[pp], pk.phase[pp], pk.t[pp])
            pv, pp = pv[ok], pp[ok]
            counts = _station_counts(pv, pk.station[pp], len(corner))
        alive = counts >= threshold
        seconds = size / np.array([ctx.speed, ctx.speed, 1.0])
        half = 0.5 * math.hypot(size[0], size[1])
        if up is not None and cfg.max_silent_stations is not None and half <= 3.0 and (
                level % 3 == 0):
            alive &= _volume_silent(ctx, corner, size, pv, pk.station[pp], up, alive
                                    ) <= cfg.max_silent_stations
        level += 1
        if seconds.max() <= cfg.leaf_s:
            if alive.any():
                new_id = np.cumsum(alive) - 1 + n_leaves
                sel = alive[pv]
                c = corner[alive]
                leaves.append(np.column_stack([c[:, 0], c[:, 0] + size[0], c[:, 1],
                                               c[:, 1] + size[1], c[:, 2], c[:, 2] + size[2]]))
                leaf_pv.append(new_id[pv[sel]])
                leaf_pp.append(pp[sel])
                n_leaves += int(alive.sum())
            break
        if not alive.any():
            break
        if int(alive.sum()) * 2 > cfg.max_volumes:
            # memory bound: refine only the best-supported volumes (like a best-first queue)
            cut = np.sort(counts[alive])[::-1][cfg.max_volumes // 2 - 1]
            alive &= counts > cut if (counts[alive] > cut).any() else counts >= cut
        parents = corner[alive]
        if compiled:
            pv, pp = kernels.split_children(pv, pp, alive)
        else:
            parent_id = np.cumsum(alive) - 1
            sel = alive[pv]
            pv, pp = parent_id[pv[sel]], pp[sel]
        dim = int(np.argmax(seconds))
        size = size.copy()
        size[dim] *= 0.5
        second = parents.copy()
        second[:, dim] += size[dim]
        corner = np.empty((2 * len(parents), 3))
        corner[0::2] = parents
        corner[1::2] = second
        if not compiled:
            # children 2k and 2k+1; a stable sort on the child id keeps detections in order
            child = np.concatenate([2 * pv, 2 * pv + 1])
            pp = np.concatenate([pp, pp])
            order = np.argsort(child, kind="stable")
            pv, pp = child[order], pp[order]
    if not leaves:
        e = np.array([], dtype=np.int64)
        return np.zeros((0, 6)), e, e
    return np.concatenate(leaves), np.concatenate(leaf_pv), np.concatenate(leaf_pp)


def _volume_silent(ctx: _Context, corner: F, size: F, pv: I64, station: I64,
                   up: NDArray[np.bool_], alive: NDArray[np.bool_]) -> F:
    """Lower bound of the silent stations of each volume (see :func:`_silent`): working
    stations certainly nearer to any point of the box than its 3rd-nearest consistent
    station, and without a consistent detection. Dead or far volumes cost nothing."""
    out = np.zeros(len(corner), dtype=np.float64)
    idx = np.flatnonzero(alive)
    if len(idx) == 0:
        return out
    pos = np.full(len(corner), -1)
    pos[idx] = np.arange(len(idx))
    heard = np.zeros((len(idx), len(ctx.network.ids)), dtype=bool)
    m = pos[pv] >= 0
    heard[pos[pv[m]], station[m]] = True
    out[idx] = _silent_stations(ctx.network, corner[idx, 0] + 0.5 * size[0],
                                corner[idx, 1] + 0.5 * size[1], heard, up,
                                half=0.5 * math.hypot(size[0], size[1]), model=ctx.model)
    return out


def _one_per_station(pk: Picks, seg: I64, pick: I64, miss: F) -> tuple[I64, I64]:
    """Keep, per (segment, station, phase), the detection with the smallest ``miss``;
    the result is ordered by segment then station."""
    if len(pick) == 0:
        return seg[:0], pick[:0]
    # one int64 key in the order of (segment, station, phase): a two-key lexsort, the
    # same stable order as the four keys, in about half the time
    st, ph = pk.station[pick].astype(np.int64), pk.phase[pick].astype(np.int64)
    key = (seg.astype(np.int64) * (int(st.max()) + 1) + st) * 3 + ph
    order = np.lexsort((miss, key))
    k_ = key[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = k_[1:] != k_[:-1]
    return seg[order][first], pick[order][first]


def _dedupe(n_pk: int, n: int, seg: I64, pick: I64) -> NDArray[np.bool_]:
    """Segments that chose exactly the same detections: keep the first of each set
    (hash = sum of random 64-bit tags)."""
    tags = np.random.default_rng(0).integers(0, 2**63, size=n_pk, dtype=np.uint64)
    h = np.zeros(n, dtype=np.uint64)
    np.add.at(h, seg, tags[pick])
    present = np.zeros(n, dtype=bool)
    present[seg] = True
    _, first = np.unique(np.where(present, h, np.uint64(0)), return_index=True)
    keep = np.zeros(n, dtype=bool)
    keep[first[present[first]]] = True
    return keep


def _candidates(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, leaf_box: F,
                pair_leaf: I64, pair_pick: I64) -> tuple[I64, I64, F, F] | None:
    """Candidate explosions from the leaves. Each leaf first takes, per station and
    phase, the detection whose implied origin time is nearest the leaf's; leaves with
    the same choice merge. Each candidate is then located and takes again, among all
    detections consistent with its leaf, the best-fitting one per station and phase,
    and is relocated: in a barrage the first choice is often a neighbouring round's."""
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
    seg, pick = _one_per_station(pk, pair_leaf, pair_pick, miss)
    keep = _dedupe(len(pk), len(leaf_box), seg, pick)
    new_id = np.cumsum(keep) - 1
    sel = keep[seg]
    seg, pick = new_id[seg[sel]], pick[sel]
    x, y = cx[keep], cy[keep]
    # all consistent detections of the kept leaves, for the second choice
    in_kept = keep[pair_leaf]
    all_seg, all_pick = new_id[pair_leaf[in_kept]], pair_pick[in_kept]
    n = int(keep.sum())
    for _ in range(1):
        st = pk.station[pick]
        sigma = np.sqrt(cfg.pick_sigma_s**2 + net.timing_s[st] ** 2)
        sol = locate(seg, n, net.x_km[st], net.y_km[st], net.z_km[st], pk.phase[pick],
                     pk.t[pick], sigma, x, y, cfg.propagation, huber_s=cfg.tolerance_s)
        x, y = sol.x, sol.y
        ast = pk.station[all_pick]
        att = cfg.propagation.travel_time(pk.phase[all_pick], net.x_km[ast] - x[all_seg],
                                          net.y_km[ast] - y[all_seg], net.z_km[ast])
        miss = np.abs(pk.t[all_pick] - att - sol.t0[all_seg])
        seg, pick = _one_per_station(pk, all_seg, all_pick, miss)
    keep = _dedupe(len(pk), n, seg, pick)
    new_id = np.cumsum(keep) - 1
    sel = keep[seg]
    return new_id[seg[sel]], pick[sel], x[keep], y[keep]


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
    fits &= _baz_fits(ctx, pk, pick, sol.x[seg], sol.y[seg])
    n_sta = _station_counts(seg[fits], st[fits], n)
    n_def = np.bincount(seg[fits], minlength=n)
    rms = np.sqrt(np.bincount(seg[fits], weights=sol.residual[fits] ** 2, minlength=n)
                  / np.maximum(n_def, 1))
    # fit quality: a detection counts fully when it fits exactly, nothing at the tolerance
    tol_i = cfg.tolerance_s + cfg.relative_tolerance * tt
    quality = np.bincount(seg[fits], weights=1 - (sol.residual[fits] / tol_i[fits]) ** 2,
                          minlength=n)
    # spread of the defining stations: all in a line leaves a mirror image (not locatable)
    w = fits.astype(np.float64)
    cnt = np.maximum(np.bincount(seg, weights=w, minlength=n), 1)
    mx = np.bincount(seg, weights=w * sx, minlength=n) / cnt
    my = np.bincount(seg, weights=w * sy, minlength=n) / cnt
    ex, ey = sx - mx[seg], sy - my[seg]
    cxx = np.bincount(seg, weights=w * ex * ex, minlength=n) / cnt
    cyy = np.bincount(seg, weights=w * ey * ey, minlength=n) / cnt
    cxy = np.bincount(seg, weights=w * ex * ey, minlength=n) / cnt
    root = np.sqrt(((cxx - cyy) / 2) ** 2 + cxy**2)
    lmax, lmin = (cxx + cyy) / 2 + root, np.maximum((cxx + cyy) / 2 - root, 0)
    flat = np.sqrt(lmin / np.maximum(lmax, 1e-12))
    ev = {"x": sol.x, "y": sol.y, "t0": sol.t0, "n_def": n_def.astype(np.float64),
          "score": quality, "flat": flat,
          "amp_spread": _amplitude_spread(cfg, pk, seg, pick, fits, n, sx - sol.x[seg],
                                          sy - sol.y[seg]),
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
            # weak events (few stations) are where coincidences hide: no silence allowed
            allowed = np.where(ev["n_sta"] <= cfg.min_stations + 1, cfg.weak_max_silent,
                               cfg.max_silent_stations)
            live &= _silent(ctx, pk, seg, pick, len(live), ev, up) <= allowed
        if cfg.amplitude_decay is not None:
            live &= ~(ev["amp_spread"] > cfg.max_amplitude_spread)
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


def _in_time_range(cfg: ExplosionAssociator, ctx: _Context, pk: Picks,
                   ev: dict[str, F]) -> tuple[I64, I64, F, F, F, F]:
    """Every (event, detection) pair in time range of each event (from its origin minus
    the tolerance to the longest travel time after it): event index, detection index,
    offsets east and north (km), travel time and residual (s)."""
    order = np.argsort(pk.t, kind="stable")
    t_sorted = pk.t[order]
    lo = np.searchsorted(t_sorted, ev["t0"] - cfg.tolerance_s)
    hi = np.searchsorted(t_sorted, ev["t0"] + ctx.tmax, side="right")
    n_each = hi - lo
    e_idx = np.repeat(np.arange(len(lo)), n_each)
    starts = np.repeat(lo - np.cumsum(np.r_[0, n_each[:-1]]), n_each)
    p_idx = order[np.arange(len(e_idx)) + starts]
    net = ctx.network
    st = pk.station[p_idx]
    dx, dy = net.x_km[st] - ev["x"][e_idx], net.y_km[st] - ev["y"][e_idx]
    tt = cfg.propagation.travel_time(pk.phase[p_idx], dx, dy, net.z_km[st])
    r = pk.t[p_idx] - ev["t0"][e_idx] - tt
    return e_idx, p_idx, dx, dy, tt, r


def _reassign(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, ev: dict[str, F]
              ) -> tuple[dict[str, F], I64, I64, F]:
    """Give every detection of the window to the event it fits best (one per station and
    phase), relocate, and dissolve events left below ``min_stations``. Repairs the
    greedy passes, where a weaker event may have taken a detection a stronger one
    explains better."""
    e_idx, p_idx, dx, dy, tt, r = _in_time_range(cfg, ctx, pk, ev)
    norm = np.abs(r) / (cfg.tolerance_s + cfg.relative_tolerance * tt)
    fit = norm <= 1.0
    if cfg.max_distance_km is not None:
        fit &= np.hypot(dx, dy) <= cfg.max_distance_km
    fit &= _baz_fits(ctx, pk, p_idx, ev["x"][e_idx], ev["y"][e_idx])
    e_idx, p_idx, norm = e_idx[fit], p_idx[fit], norm[fit]
    # each detection to its best event, then one detection per (event, station, phase)
    o = np.lexsort((norm, p_idx))
    first = np.r_[True, p_idx[o][1:] != p_idx[o][:-1]]
    e_idx, p_idx, norm = e_idx[o][first], p_idx[o][first], norm[o][first]
    e_idx, p_idx = _one_per_station(pk, e_idx, p_idx, norm)  # ordered by event, station
    # relocate from where they were; keep events that still have enough stations
    n = len(ev["x"])
    new, fits, resid = _score(cfg, ctx, pk, e_idx, p_idx, n, ev["x"], ev["y"])
    keep = new["n_sta"] >= cfg.min_stations
    if cfg.amplitude_decay is not None:
        keep &= ~(new["amp_spread"] > cfg.max_amplitude_spread)
    sel = fits & keep[e_idx]
    remap = np.cumsum(keep) - 1
    return ({k: v[keep] for k, v in new.items()}, remap[e_idx[sel]], p_idx[sel], resid[sel])


def _amplitude_spread(cfg: ExplosionAssociator, pk: Picks, seg: I64, pick: I64,
                      fits: NDArray[np.bool_], n: int, dx: F, dy: F) -> F:
    """Scatter (natural log) of the source size implied by each defining detection's
    amplitude, ``ln(amp) + decay * ln(distance)`` per phase. A real explosion gives one
    size at every station; detections of unrelated origin do not. NaN with fewer than
    three amplitudes."""
    if cfg.amplitude_decay is None:
        return np.full(n, np.nan)
    amp = pk.amplitudes()[pick]
    use = fits & np.isfinite(amp) & (amp > 0)
    size = np.log(np.where(use, amp, 1.0)) + cfg.amplitude_decay * np.log(
        np.maximum(np.hypot(dx, dy), 0.1))
    # each phase has its own scale: centre per (event, phase)
    key = seg * 3 + pk.phase[pick]
    w = use.astype(np.float64)
    cnt = np.bincount(key, weights=w, minlength=3 * n)
    mean = np.bincount(key, weights=w * size, minlength=3 * n) / np.maximum(cnt, 1)
    dev = np.where(use, size - mean[key], 0.0)
    num = np.bincount(seg, weights=dev * dev, minlength=n)
    m = np.bincount(seg, weights=w, minlength=n)
    groups = np.bincount(np.arange(3 * n) // 3, weights=(cnt > 0), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.sqrt(num / np.maximum(m - groups, 1))
    return np.where(m >= 3, spread, np.nan)


def _silent(ctx: _Context, pk: Picks, seg: I64, pick: I64, n: int, ev: dict[str, F],
            up: NDArray[np.bool_]) -> F:
    """Working stations nearer to each candidate than its 3rd-nearest defining station that
    did not hear it. A real explosion is heard first by the nearest stations; a ghost
    made of unrelated detections is not (the negative evidence NET-VISA also uses)."""
    heard = np.zeros((n, len(ctx.network.ids)), dtype=bool)
    heard[seg, pk.station[pick]] = True
    size = (_event_sizes(ctx.cfg, ctx, pk, seg, pick, n, ev["x"], ev["y"])
            if ctx.model is not None else None)
    return _silent_stations(ctx.network, ev["x"], ev["y"], heard, up, model=ctx.model,
                            size=size)


def _silent_stations(net: Network, x: F, y: F, heard: NDArray[np.bool_],
                     up: NDArray[np.bool_], half: float = 0.0,
                     model: NetworkModel | None = None, size: F | None = None) -> F:
    """Per point (x, y) with the stations that ``heard`` it: working stations without a
    detection nearer than the 3rd-nearest that heard it. ``half`` widens every distance
    by that much (a box of that half-diagonal), so that the count is a lower bound.

    With a network ``model`` (the joint stage), each silent station counts its learned
    detection probability at that range (and the event's ``size`` when given, else a
    typical one): the expected number of misses, so that stations where detection is
    a coin toss (far from the explosion, or deaf) do not veto it as a near, sensitive
    one does. The widened distance keeps it a lower bound."""
    dist = np.hypot(net.x_km[None, :] - x[:, None], net.y_km[None, :] - y[:, None])
    d_heard = np.where(heard, dist, np.inf)
    kth = (np.partition(d_heard, 2, axis=1)[:, 2] if heard.shape[1] >= 3
           else np.full(len(x), np.inf))
    silent = up[None, :] & ~heard & (dist + half < kth[:, None] - half)
    if model is None:
        return np.asarray(silent.sum(axis=1), dtype=np.float64)
    pi, sj = np.nonzero(silent)
    sz = (model.centred_size(size[pi]) if size is not None else np.zeros(len(pi)))
    p = model.p_detect(sj.astype(np.int64), dist[pi, sj] + half, sz)
    return np.asarray(np.bincount(pi, weights=p, minlength=len(x)), dtype=np.float64)


def _baz_misfit(ctx: _Context, pk: Picks, pick: I64, x: F, y: F) -> F:
    """Observed minus predicted back-azimuth (degrees, -180..180) of each detection for a
    source at (x, y); NaN where the station measured none."""
    net = ctx.network
    st = pk.station[pick]
    pred = np.degrees(np.arctan2(x - net.x_km[st], y - net.y_km[st]))
    return wrap_deg(pk.back_azimuths()[pick] - pred)


def _baz_fits(ctx: _Context, pk: Picks, pick: I64, x: F, y: F) -> NDArray[np.bool_]:
    """With the joint stage on, a back-azimuth further than ``baz_gate`` sigma from the
    direction of the source does not fit (arrays only; others always fit)."""
    if ctx.model is None or pk.baz is None or not np.isfinite(pk.baz).any():
        return np.ones(len(pick), dtype=bool)
    db = _baz_misfit(ctx, pk, pick, x, y)
    return np.asarray(~(np.abs(db) > ctx.model.cfg.baz_gate * ctx.model.baz_sigma()))


def _event_sizes(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, seg: I64, pick: I64,
                 n: int, x: F, y: F) -> F:
    """Source size per event, mean of ln(amplitude) + decay ln(distance) over its
    detections (NaN without amplitudes); P and acoustic amplitudes are not mixed:
    only the acoustic ones count."""
    net = ctx.network
    st = pk.station[pick]
    amp = pk.amplitudes()[pick]
    use = np.isfinite(amp) & (amp > 0) & (pk.phase[pick] == 0)
    d = np.maximum(np.hypot(net.x_km[st] - x[seg], net.y_km[st] - y[seg]), 0.1)
    decay = cfg.amplitude_decay if cfg.amplitude_decay is not None else 1.3
    size = np.log(np.where(use, amp, 1.0)) + decay * np.log(d)
    cnt = np.bincount(seg, weights=use, minlength=n)
    tot = np.bincount(seg, weights=np.where(use, size, 0.0), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / cnt, np.nan)


def _pairs(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, ev: dict[str, F]
           ) -> tuple[I64, I64, F, F, F]:
    """Every (event, detection) pair that fits within the tolerances (time, distance,
    back-azimuth): event, detection, residual, distance, back-azimuth misfit."""
    e_idx, p_idx, dx, dy, tt, r = _in_time_range(cfg, ctx, pk, ev)
    d = np.hypot(dx, dy)
    fit = np.abs(r) <= cfg.tolerance_s + cfg.relative_tolerance * tt
    if cfg.max_distance_km is not None:
        fit &= d <= cfg.max_distance_km
    db = _baz_misfit(ctx, pk, p_idx, ev["x"][e_idx], ev["y"][e_idx])
    fit &= _baz_fits(ctx, pk, p_idx, ev["x"][e_idx], ev["y"][e_idx])
    return e_idx[fit], p_idx[fit], r[fit], d[fit], db[fit]


def _silence(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, ev: dict[str, F],
             seg: I64, pick: I64, up: NDArray[np.bool_], size: F
             ) -> tuple[F, I64, I64, F, NDArray[np.bool_]]:
    """Per event, the sum of ln(1 - p) over working stations in range that did not
    detect it and have no detection near its predicted arrival (a detection taken by
    another event masks nothing out: it could be this one's). Also the (event,
    station) rows with their distance and whether the station detected it."""
    model = ctx.model
    assert model is not None
    net = ctx.network
    n, n_sta = len(ev["x"]), len(net.ids)
    e = np.repeat(np.arange(n), n_sta)
    s = np.tile(np.arange(n_sta), n)
    dx, dy = net.x_km[s] - ev["x"][e], net.y_km[s] - ev["y"][e]
    d = np.hypot(dx, dy)
    heard = np.zeros((n, n_sta), dtype=bool)
    heard[seg, pk.station[pick]] = True
    hit = heard.ravel()
    cand = up[s] & (d <= (cfg.max_distance_km or np.inf))
    # masked: some detection at the station within the tolerance of the predicted arrival
    tt = cfg.propagation.travel_time(np.zeros(len(e), dtype=np.int8), dx, dy, net.z_km[s])
    arrival = ev["t0"][e] + tt
    big = 1e9
    key = np.sort(pk.station * big + pk.t)
    tol = cfg.tolerance_s + cfg.relative_tolerance * tt
    q = s * big + arrival
    i = np.searchsorted(key, q - tol)
    near = (i < len(key)) & (key[np.minimum(i, len(key) - 1)] <= q + tol)
    # only stations nearer than the event's 3rd-nearest detecting station: there the
    # detection curve is steep and learned well; far silence says little (and depends
    # most on a curve shared by different kinds of station)
    d_heard = np.where(heard, d.reshape(n, n_sta), np.inf)
    kth = (np.partition(d_heard, 2, axis=1)[:, 2] if n_sta >= 3 else np.full(n, np.inf))
    silent = cand & ~hit & ~near & (d < kth[e])
    p = model.p_detect(s, d, model.centred_size(size[e]))
    pen = np.bincount(e, weights=np.where(silent, np.log1p(-p), 0.0), minlength=n)
    rows = cand & (hit | ~near)
    return (np.asarray(pen, dtype=np.float64), s[rows].astype(np.int64),
            e[rows].astype(np.int64), np.asarray(d[rows], dtype=np.float64), hit[rows])


def _joint(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, ev: dict[str, F],
           a_ev: I64, a_pick: I64, ws: float, we: float, up: NDArray[np.bool_]
           ) -> tuple[dict[str, F], I64, I64, F]:
    """Joint re-assignment of the window (hard EM on the generative model): every
    detection goes to the event under which its log likelihood ratio against a false
    detection is highest (if positive), one per event, station and phase; events are
    relocated; events whose log posterior odds are below ``min_log_odds`` are dropped
    and their detections freed. Then the cascade searches the free detections again
    (new events), and EM runs once more. Finally the model learns from the window."""
    jc = cfg.joint
    model = ctx.model
    assert jc is not None and model is not None
    learn_cfg = cfg
    if not jc.em_distance_cap:
        cfg = replace(cfg, max_distance_km=None)
    resid = np.zeros(len(a_pick))
    odds = np.zeros(len(ev["x"]))
    stages = 2 if (jc.rebirth or jc.neighbour_window_s > 0) else 1
    for stage in range(stages):
        for _ in range(jc.iterations):
            before = (len(ev["x"]), a_ev, a_pick, ev["x"], ev["y"])
            ev, a_ev, a_pick, resid, odds = _em_step(cfg, ctx, pk, ev, a_ev, a_pick, ws, we,
                                                     up)
            if len(ev["x"]) == 0 or _settled(before, ev, a_ev, a_pick):
                break
        if stage + 1 == stages:
            break
        if jc.neighbour_window_s > 0 and len(ev["x"]):
            near = _propose_neighbours(cfg, ctx, pk, ev, we)
            if near is not None:
                ev = {k: np.concatenate([ev[k], near[k]]) for k in ev}
        free = np.ones(len(pk), dtype=bool)
        free[a_pick] = False
        if not jc.rebirth or np.unique(pk.station[free]).size < cfg.min_stations:
            continue
        found = ctx.search._passes(ctx, pk, free, ws, we, up)
        if not found:
            continue
        new = {k: np.concatenate([f[0][k] for f in found]) for k in found[0][0]}
        n_old = len(ev["x"])
        a_ev = np.concatenate([a_ev, *[f[1] + n_old + sum(len(g[0]["x"]) for g in found[:k])
                                       for k, f in enumerate(found)]])
        a_pick = np.concatenate([a_pick, *[f[2] for f in found]])
        ev = {k: np.concatenate([ev[k], new[k]]) for k in ev}
    if jc.repartition_rounds > 0 and len(ev["x"]) > 1:
        ev, a_ev, a_pick, resid, odds = _repartition(cfg, ctx, pk, ev, a_ev, a_pick, resid,
                                                     odds, ws, we, up)
    if jc.move_rounds > 0 and len(ev["x"]):
        ev, a_ev, a_pick, resid, odds = _moves(cfg, ctx, pk, ev, a_ev, a_pick, resid, odds,
                                               ws, we, up)
    # the model learns as before (the curve's rows within the associator's distance)
    _learn(learn_cfg, ctx, pk, ev, a_ev, a_pick, resid, odds, ws, we, up)
    return ev, a_ev, a_pick, resid


def _settled(before: tuple[int, I64, I64, F, F], ev: dict[str, F], a_ev: I64,
             a_pick: I64, tol_km: float = 1e-4) -> bool:
    """EM has reached its fixed point: the same events hold the same detections and
    none moved by more than ``tol_km`` (10 cm), so a further step would repeat this one
    (a quiet window's EM usually settles after one step)."""
    n, b_ev, b_pick, bx, by = before
    if n != len(ev["x"]) or len(b_pick) != len(a_pick):
        return False
    return bool(np.array_equal(b_ev, a_ev) and np.array_equal(b_pick, a_pick)
                and np.all(np.abs(bx - ev["x"]) <= tol_km)
                and np.all(np.abs(by - ev["y"]) <= tol_km))


def _repartition(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, ev: dict[str, F],
                 a_ev: I64, a_pick: I64, resid: F, odds: F, ws: float, we: float,
                 up: NDArray[np.bool_]) -> tuple[dict[str, F], I64, I64, F, F]:
    """Likelihood re-partition across nearby rounds. In a barrage, a ghost mixes the
    detections of rounds a second or two apart; re-assignment alone keeps it (each of
    its detections fits it within the tolerance, and the round it should belong to
    may be missing). Proposal: dissolve every suspect (the weaker of two events within
    ``repartition_s`` and ``repartition_km``, with log odds below ``repartition_odds``),
    let the other events take what fits them (hard EM), search the detections left
    free with the cascade, and run EM again. The window's joint log posterior (sum of
    the events' log posterior odds; a detection on no event counts as false) decides:
    the proposal is kept when it rises by more than ``move_margin``. Everything is
    learned from the stream (the network model), nothing from a generator."""
    jc = cfg.joint
    assert jc is not None
    for _ in range(jc.repartition_rounds):
        n = len(ev["x"])
        if n < 2:
            break
        t0 = ev["t0"]
        o = np.argsort(t0, kind="stable")
        # pairs within repartition_s in origin time (sorted sweep, not all pairs)
        hi = np.searchsorted(t0[o], t0[o] + jc.repartition_s, side="right")
        cnt = hi - np.arange(n) - 1
        i = np.repeat(np.arange(n), cnt)
        j = i + 1 + (np.arange(len(i)) - np.repeat(np.cumsum(cnt) - cnt, cnt))
        a, b = o[i], o[j]
        near = np.hypot(ev["x"][a] - ev["x"][b], ev["y"][a] - ev["y"][b]) <= jc.repartition_km
        a, b = a[near], b[near]
        weak = np.where(odds[a] <= odds[b], a, b)
        suspect = np.zeros(n, dtype=bool)
        suspect[weak[odds[weak] < jc.repartition_odds]] = True
        if not suspect.any():
            break
        keep = ~suspect
        remap = np.cumsum(keep) - 1
        sel = keep[a_ev]
        t_ev = {k: v[keep] for k, v in ev.items()}
        t_a, t_p = remap[a_ev[sel]], a_pick[sel]
        t_odds = odds[keep]
        if len(t_ev["x"]):
            t_ev, t_a, t_p, t_r, t_odds = _em_step(cfg, ctx, pk, t_ev, t_a, t_p, ws, we, up)
        free = np.ones(len(pk), dtype=bool)
        free[t_p] = False
        found = (ctx.search._passes(ctx, pk, free, ws, we, up)
                 if np.unique(pk.station[free]).size >= cfg.min_stations else [])
        if found:
            n_old = len(t_ev["x"])
            offs = np.cumsum([n_old] + [len(f[0]["x"]) for f in found[:-1]])
            t_a = np.concatenate([t_a, *[f[1] + off for f, off in zip(found, offs,
                                                                       strict=True)]])
            t_p = np.concatenate([t_p, *[f[2] for f in found]])
            t_ev = {k: np.concatenate([t_ev[k], *[f[0][k] for f in found]]) for k in t_ev}
        if not len(t_ev["x"]):
            break
        for _ in range(jc.iterations):
            t_ev, t_a, t_p, t_r, t_odds = _em_step(cfg, ctx, pk, t_ev, t_a, t_p, ws, we, up)
            if len(t_ev["x"]) == 0:
                break
        if not float(t_odds.sum()) > float(odds.sum()) + jc.move_margin:
            break
        ev, a_ev, a_pick, resid, odds = t_ev, t_a, t_p, t_r, t_odds
    return ev, a_ev, a_pick, resid, odds


def _gather(a_ev: I64, a_pick: I64, n: int, events: I64) -> tuple[I64, I64]:
    """The detections of ``events`` (segment k: those of ``events[k]``)."""
    o = np.argsort(a_ev, kind="stable")
    picks = a_pick[o]
    cnt = np.bincount(a_ev, minlength=n)
    start = np.r_[0, np.cumsum(cnt)[:-1]]
    c = cnt[events]
    seg = np.repeat(np.arange(len(events)), c)
    offs = np.repeat(start[events] - np.r_[0, np.cumsum(c)[:-1]], c)
    return seg.astype(np.int64), picks[np.arange(len(seg)) + offs]


def _proposals(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, seg: I64, pick: I64,
               m: int, x0: F, y0: F, lam: F, up: NDArray[np.bool_], rate: float
               ) -> tuple[dict[str, F], I64, I64, F, F, NDArray[np.bool_]]:
    """Locate ``m`` proposed events (one detection per station and phase) and give
    their log posterior odds; ``valid`` where an event stands on its own."""
    new, fits, resid = _score(cfg, ctx, pk, seg, pick, m, x0, y0)
    seg, pick, resid = seg[fits], pick[fits], resid[fits]
    odds = _odds_of(cfg, ctx, pk, new, seg, pick, resid, lam, up, rate)
    valid = (new["n_sta"] >= cfg.min_stations) & np.isfinite(odds)
    if cfg.amplitude_decay is not None:
        valid &= ~(new["amp_spread"] > cfg.max_amplitude_spread)
    return new, seg, pick, resid, odds, valid


def _cut(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, ev: dict[str, F], a_ev: I64,
         a_pick: I64, cur: F, own1: I64, own2: I64, lam: F, up: NDArray[np.bool_],
         rate: float) -> tuple[F, dict[str, F], I64, I64, F]:
    """Proposal k: the detections of events ``own1[k]`` and ``own2[k]`` (one event when
    equal), cut in two at the largest gap of their implied origin times seen from the
    more probable event (each side with ``min_stations`` detections); each half is
    located, takes again the best-fitting detection per station among the free ones
    and the owners', and is relocated. Returns the gain in log posterior (-inf where
    a half does not stand) and the halves (segments 2k, 2k+1)."""
    net = ctx.network
    n = len(ev["x"])
    m = len(own1)
    s1, q1 = _gather(a_ev, a_pick, n, own1)
    two = own2 != own1
    s2_, q2_ = _gather(a_ev, a_pick, n, own2[two])
    seg = np.concatenate([s1, np.flatnonzero(two)[s2_]])
    pick = np.concatenate([q1, q2_])
    lead = np.where(cur[own1] >= cur[own2], own1, own2)
    st = pk.station[pick]
    tt = cfg.propagation.travel_time(pk.phase[pick], net.x_km[st] - ev["x"][lead][seg],
                                     net.y_km[st] - ev["y"][lead][seg], net.z_km[st])
    r = pk.t[pick] - tt - ev["t0"][lead][seg]
    order = np.lexsort((r, seg))
    seg, pick, r = seg[order], pick[order], r[order]
    size = np.bincount(seg, minlength=m)
    first = np.r_[0, np.cumsum(size)[:-1]]
    rank = np.arange(len(seg)) - first[seg]
    gap = np.r_[np.diff(r), 0.0]
    # a cut after position k leaves k + 1 and size - k - 1 detections
    allowed = (rank + 1 >= cfg.min_stations) & (size[seg] - rank - 1 >= cfg.min_stations)
    gap = np.where(allowed, gap, -1.0)
    best = np.full(m, -1.0)
    np.maximum.at(best, seg, gap)
    none = np.iinfo(np.int64).max
    at = np.full(m, none)
    hit = (gap == best[seg]) & (gap > 0)
    np.minimum.at(at, seg[hit], rank[hit])
    h_seg = 2 * seg + (rank > at[seg]).astype(np.int64)
    x0 = np.repeat(ev["x"][lead], 2)
    y0 = np.repeat(ev["y"][lead], 2)
    h_seg, h_pick = _one_per_station(pk, h_seg, pick, np.abs(r))
    new, _, _, _, _, _ = _proposals(cfg, ctx, pk, h_seg, h_pick, 2 * m, x0, y0, lam, up,
                                    rate)
    owner = np.full(len(pk), -1, dtype=np.int64)
    owner[a_pick] = a_ev
    e2, q2, rr, _, _ = _pairs(cfg, ctx, pk, new)
    o_ = owner[q2]
    mine = (o_ < 0) | (o_ == own1[e2 // 2]) | (o_ == own2[e2 // 2])
    e2, q2, rr = e2[mine], q2[mine], np.abs(rr[mine])
    o = np.lexsort((rr, q2))
    lead_q = np.r_[True, q2[o][1:] != q2[o][:-1]] if len(o) else np.zeros(0, bool)
    e2, q2, rr = e2[o][lead_q], q2[o][lead_q], rr[o][lead_q]
    e2, q2 = _one_per_station(pk, e2, q2, rr)
    new, s2, p2, r2, od, ok = _proposals(cfg, ctx, pk, e2, q2, 2 * m, new["x"], new["y"],
                                         lam, up, rate)
    both = ok[0::2] & ok[1::2] & (at < none)
    old = cur[own1] + np.where(two, cur[own2], 0.0)
    return np.where(both, od[0::2] + od[1::2] - old, -np.inf), new, s2, p2, r2


def _moves(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, ev: dict[str, F], a_ev: I64,
           a_pick: I64, resid: F, odds: F, ws: float, we: float, up: NDArray[np.bool_]
           ) -> tuple[dict[str, F], I64, I64, F, F]:
    """Split and merge moves, accepted when they raise the joint log posterior of the
    window (the sum of the events' log posterior odds: a detection left to no event
    counts as false, each event pays its prior). **Merge**: two events within
    ``merge_km`` and ``merge_s`` become one (their detections, one per station and
    phase, relocated from the more probable one). **Split**: an event with at least
    ``2 min_stations`` detections is cut at the largest gap of its residuals (two
    rounds of a barrage that one event took). All proposals of a round are scored at
    once; the best non-overlapping ones that raise the posterior by more than
    ``move_margin`` are applied, then hard EM runs once more, for ``move_rounds``."""
    jc = cfg.joint
    model = ctx.model
    assert jc is not None and model is not None
    net = ctx.network
    for _ in range(jc.move_rounds):
        n = len(ev["x"])
        if n == 0:
            break
        lam = _false_rates(ctx, pk, a_pick, we, up)
        rate = model.rate_per_s(n, cfg.window_s)
        cur = _odds_of(cfg, ctx, pk, ev, a_ev, a_pick, resid, lam, up, rate)
        gains: list[F] = []
        members: list[list[tuple[int, ...]]] = []
        made: list[tuple[dict[str, F], I64, I64, F, I64]] = []  # new events per proposal
        # merges
        close = ((np.abs(ev["t0"][:, None] - ev["t0"][None, :]) <= jc.merge_s)
                 & (np.hypot(ev["x"][:, None] - ev["x"][None, :],
                             ev["y"][:, None] - ev["y"][None, :]) <= jc.merge_km))
        ii, jj = np.nonzero(np.triu(close, 1))
        if len(ii):
            seg_i, pick_i = _gather(a_ev, a_pick, n, ii)
            seg_j, pick_j = _gather(a_ev, a_pick, n, jj)
            seg = np.concatenate([seg_i, seg_j])
            pick = np.concatenate([pick_i, pick_j])
            lead = np.where(cur[ii] >= cur[jj], ii, jj)
            x0, y0, t0 = ev["x"][lead], ev["y"][lead], ev["t0"][lead]
            st = pk.station[pick]
            tt = cfg.propagation.travel_time(pk.phase[pick], net.x_km[st] - x0[seg],
                                             net.y_km[st] - y0[seg], net.z_km[st])
            seg, pick = _one_per_station(pk, seg, pick, np.abs(pk.t[pick] - tt - t0[seg]))
            new, s2, p2, r2, om, ok = _proposals(cfg, ctx, pk, seg, pick, len(ii), x0, y0,
                                                 lam, up, rate)
            g = np.where(ok, om - cur[ii] - cur[jj], -np.inf)
            gains.append(g)
            members.extend([(int(a), int(b))] for a, b in zip(ii, jj, strict=True))
            made.extend((new, s2, p2, r2, np.array([k])) for k in range(len(ii)))
        # splits of one event, and re-partitions of two close ones (their detections
        # cut into two by implied origin time: two rounds that both events mixed)
        cnt = np.bincount(a_ev, minlength=n)
        big = np.flatnonzero(cnt >= 2 * cfg.min_stations)
        pair = (cnt[ii] >= cfg.min_stations) & (cnt[jj] >= cfg.min_stations) if len(ii) \
            else np.zeros(0, dtype=bool)
        own1 = np.concatenate([big, ii[pair]]).astype(np.int64)
        own2 = np.concatenate([big, jj[pair]]).astype(np.int64)
        if len(own1):
            g, new, s2, p2, r2 = _cut(cfg, ctx, pk, ev, a_ev, a_pick, cur, own1, own2, lam,
                                      up, rate)
            gains.append(g)
            members.extend([(int(a),) if a == b else (int(a), int(b))]
                           for a, b in zip(own1, own2, strict=True))
            made.extend((new, s2, p2, r2, np.array([2 * k, 2 * k + 1]))
                        for k in range(len(own1)))
        if not gains:
            break
        gain = np.concatenate(gains)
        taken = np.zeros(n, dtype=bool)
        accepted: list[int] = []
        for k in np.argsort(-gain, kind="stable"):
            if not gain[k] > jc.move_margin:
                break
            evs = members[k][0]
            if taken[list(evs)].any():
                continue
            taken[list(evs)] = True
            accepted.append(int(k))
        if not accepted:
            break
        # the untouched events, then the accepted proposals' events
        keep = ~taken
        remap = np.cumsum(keep) - 1
        sel = keep[a_ev]
        parts_ev = [{k: v[keep] for k, v in ev.items()}]
        parts_a = [remap[a_ev[sel]]]
        parts_p = [a_pick[sel]]
        parts_r = [resid[sel]]
        base = int(keep.sum())
        for k in accepted:
            new, s2, p2, r2, which = made[k]
            for w in which.tolist():
                m = s2 == w
                parts_ev.append({key: v[w:w + 1] for key, v in new.items()})
                parts_a.append(np.full(int(m.sum()), base, dtype=np.int64))
                parts_p.append(p2[m])
                parts_r.append(r2[m])
                base += 1
        ev = {k: np.concatenate([p[k] for p in parts_ev]) for k in ev}
        a_ev, a_pick = np.concatenate(parts_a), np.concatenate(parts_p)
        resid = np.concatenate(parts_r)
        ev, a_ev, a_pick, resid, odds = _em_step(cfg, ctx, pk, ev, a_ev, a_pick, ws, we, up)
    return ev, a_ev, a_pick, resid, odds


def _em_step(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, ev: dict[str, F],
             a_ev: I64, a_pick: I64, ws: float, we: float, up: NDArray[np.bool_]
             ) -> tuple[dict[str, F], I64, I64, F, F]:
    model = ctx.model
    jc = cfg.joint
    assert model is not None and jc is not None
    n = len(ev["x"])
    size = _event_sizes(cfg, ctx, pk, a_ev, a_pick, n, ev["x"], ev["y"])
    lam = _false_rates(ctx, pk, a_pick, we, up)
    e_idx, p_idx, r, d, db = _pairs(cfg, ctx, pk, ev)
    st = pk.station[p_idx]
    ll = model.pick_llr(st, pk.phase[p_idx], d, r, model.centred_size(size[e_idx]), db,
                        lam[st])
    # each detection to its best event (if better than a false detection)
    o = np.lexsort((-ll, p_idx))
    first = np.r_[True, p_idx[o][1:] != p_idx[o][:-1]] if len(o) else np.zeros(0, bool)
    sel = o[first]
    sel = sel[ll[sel] > 0]
    e_idx, p_idx, ll = e_idx[sel], p_idx[sel], ll[sel]
    e_idx, p_idx = _one_per_station(pk, e_idx, p_idx, -ll)
    new, fits, resid = _score(cfg, ctx, pk, e_idx, p_idx, n, ev["x"], ev["y"])
    e_idx, p_idx, resid = e_idx[fits], p_idx[fits], resid[fits]
    # log posterior odds of every event at its new place
    rate = model.rate_per_s(n, cfg.window_s)
    odds = _odds_of(cfg, ctx, pk, new, e_idx, p_idx, resid, lam, up, rate)
    keep = (new["n_sta"] >= cfg.min_stations) & (odds >= jc.min_log_odds)
    if cfg.amplitude_decay is not None:
        keep &= ~(new["amp_spread"] > cfg.max_amplitude_spread)
    sel = keep[e_idx]
    remap = np.cumsum(keep) - 1
    return ({k: v[keep] for k, v in new.items()}, remap[e_idx[sel]], p_idx[sel], resid[sel],
            odds[keep])


def _odds_of(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, new: dict[str, F],
             e_idx: I64, p_idx: I64, resid: F, lam: F, up: NDArray[np.bool_],
             rate: float) -> F:
    """Log posterior odds of each event of ``new`` (against all its detections being
    false and no event): its detections' log likelihood ratios, the silent working
    stations, the prior and the Laplace volume of its location."""
    model = ctx.model
    assert model is not None
    n = len(new["x"])
    st = pk.station[p_idx]
    d = np.hypot(ctx.network.x_km[st] - new["x"][e_idx], ctx.network.y_km[st] - new["y"][e_idx])
    db = _baz_misfit(ctx, pk, p_idx, new["x"][e_idx], new["y"][e_idx])
    size = _event_sizes(cfg, ctx, pk, e_idx, p_idx, n, new["x"], new["y"])
    ll = model.pick_llr(st, pk.phase[p_idx], d, resid, model.centred_size(size[e_idx]), db,
                        lam[st])
    pen, *_ = _silence(cfg, ctx, pk, new, e_idx, p_idx, up, size)
    cov = new["cov"].reshape(-1, 3, 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        logdet = np.linalg.slogdet(np.nan_to_num(cov, nan=0.0))[1]
    logdet = np.where(np.isfinite(logdet), logdet, -30.0)
    prior = math.log(rate / model.area_km2) + 1.5 * math.log(2 * math.pi) + 0.5 * logdet
    return np.asarray(np.bincount(e_idx, weights=ll, minlength=n) + pen + prior,
                      dtype=np.float64)


def _false_rates(ctx: _Context, pk: Picks, a_pick: I64, we: float,
                 up: NDArray[np.bool_]) -> F:
    """Per station, false detections per second: the model's rate, updated with this
    window's unexplained detections."""
    model = ctx.model
    assert model is not None
    n_sta = len(ctx.network.ids)
    unexplained = np.ones(len(pk), dtype=bool)
    unexplained[a_pick] = False
    unexplained &= pk.t < we
    extra = np.bincount(pk.station[unexplained], minlength=n_sta).astype(np.float64)
    return model.false_rate(np.arange(n_sta), extra, ctx.cfg.window_s)


def _learn(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, ev: dict[str, F], a_ev: I64,
           a_pick: I64, resid: F, odds: F, ws: float, we: float,
           up: NDArray[np.bool_]) -> None:
    """Update the network model with the window's result (only events inside the
    window; strong ones teach the noise and detection curves)."""
    model = ctx.model
    jc = cfg.joint
    assert model is not None and jc is not None
    n = len(ev["x"])
    n_sta = len(ctx.network.ids)
    unexplained = np.ones(len(pk), dtype=bool)
    unexplained[a_pick] = False
    unexplained &= pk.t < we
    extra = np.bincount(pk.station[unexplained], minlength=n_sta).astype(np.float64)
    st = pk.station[a_pick]
    d = (np.hypot(ctx.network.x_km[st] - ev["x"][a_ev], ctx.network.y_km[st] - ev["y"][a_ev])
         if n else np.zeros(0))
    db = _baz_misfit(ctx, pk, a_pick, ev["x"][a_ev], ev["y"][a_ev]) if n else np.zeros(0)
    size = _event_sizes(cfg, ctx, pk, a_ev, a_pick, n, ev["x"], ev["y"])
    strong = (ev["n_sta"] >= jc.min_learn_stations) & (odds > 5.0) & (ev["t0"] < we)
    if n:
        _, r_st, r_ev, r_d, r_hit = _silence(cfg, ctx, pk, ev, a_ev, a_pick, up, size)
    else:
        r_st = r_ev = np.zeros(0, dtype=np.int64)
        r_d = np.zeros(0)
        r_hit = np.zeros(0, dtype=bool)
    model.learn(window_s=cfg.window_s, up=up, unexplained=extra, pick_station=st,
                pick_phase=pk.phase[a_pick], pick_d=d, pick_r=resid, pick_dbaz=db,
                pick_event=a_ev, event_strong=strong, event_size=size, row_station=r_st,
                row_event=r_ev, row_d=r_d, row_hit=r_hit, n_events=int((odds > 0).sum()))


def _propose_neighbours(cfg: ExplosionAssociator, ctx: _Context, pk: Picks, ev: dict[str, F],
                        we: float) -> dict[str, F] | None:
    """Barrage proposals: rounds of a barrage land near each other, so at the place of
    every event, the detections' implied origin times (arrival minus travel time from
    there) cluster at the other rounds' times. Each cluster of at least
    ``min_stations`` stations within ``neighbour_window_s`` that no event near that
    place explains yet becomes a candidate, is located from there, takes the
    best-fitting detection per station and is relocated. The likelihood then decides
    (the EM that follows)."""
    jc = cfg.joint
    assert jc is not None
    net = ctx.network
    n = len(ev["x"])
    span = jc.neighbour_span_s
    order = np.argsort(pk.t, kind="stable")
    t_sorted = pk.t[order]
    lo = np.searchsorted(t_sorted, ev["t0"] - span)
    hi = np.searchsorted(t_sorted, ev["t0"] + span + ctx.tmax, side="right")
    cnt = hi - lo
    e_idx = np.repeat(np.arange(n), cnt)
    starts = np.repeat(lo - np.cumsum(np.r_[0, cnt[:-1]]), cnt)
    p_idx = order[np.arange(len(e_idx)) + starts]
    st = pk.station[p_idx]
    dx, dy = net.x_km[st] - ev["x"][e_idx], net.y_km[st] - ev["y"][e_idx]
    ot = pk.t[p_idx] - cfg.propagation.travel_time(pk.phase[p_idx], dx, dy, net.z_km[st])
    ok = np.abs(ot - ev["t0"][e_idx]) <= span
    if cfg.max_distance_km is not None:
        ok &= np.hypot(dx, dy) <= cfg.max_distance_km
    e_idx, p_idx, ot = e_idx[ok], p_idx[ok], ot[ok]
    if len(e_idx) == 0:
        return None
    # clusters: bins of half the window per event, counted over two adjacent bins
    w = jc.neighbour_window_s
    base = ev["t0"][e_idx] - span
    b = np.floor((ot - base) / (0.5 * w)).astype(np.int64)
    nb = int(2 * span / (0.5 * w)) + 2
    c = np.bincount(e_idx * nb + b, minlength=n * nb).reshape(n, nb)
    wc = c[:, :-1] + c[:, 1:]
    pad = np.pad(wc, ((0, 0), (1, 1)), constant_values=-1)
    peak = (wc >= cfg.min_stations) & (wc >= pad[:, :-2]) & (wc > pad[:, 2:])
    ce, cb = np.nonzero(peak)
    c_t = ev["t0"][ce] - span + (cb + 1) * 0.5 * w
    # not explained yet: no event within 2 km and 1 s of that origin time
    dist = np.hypot(ev["x"][ce][:, None] - ev["x"][None, :],
                    ev["y"][ce][:, None] - ev["y"][None, :])
    taken = ((dist < 2.0) & (np.abs(c_t[:, None] - ev["t0"][None, :]) < w)).any(axis=1)
    keep = ~taken & (c_t < we)
    ce, c_t = ce[keep], c_t[keep]
    if len(ce) == 0:
        return None
    # each candidate: the pairs of its event within the window of its time
    m = len(ce)
    cand_of = np.full(n, -1)
    seg_l, pick_l, miss_l = [], [], []
    by_event: dict[int, list[int]] = {}
    for k, e in enumerate(ce.tolist()):
        by_event.setdefault(e, []).append(k)
    o = np.argsort(e_idx, kind="stable")
    e_s, p_s, ot_s = e_idx[o], p_idx[o], ot[o]
    bounds = np.searchsorted(e_s, np.arange(n + 1))
    for e, ks in by_event.items():
        sl = slice(bounds[e], bounds[e + 1])
        for k in ks:
            d = np.abs(ot_s[sl] - c_t[k])
            sel = d <= 0.5 * w
            seg_l.append(np.full(int(sel.sum()), k))
            pick_l.append(p_s[sl][sel])
            miss_l.append(d[sel])
    del cand_of
    seg = np.concatenate(seg_l)
    pick = np.concatenate(pick_l)
    seg, pick = _one_per_station(pk, seg, pick, np.concatenate(miss_l))
    new, _, _ = _score(cfg, ctx, pk, seg, pick, m, ev["x"][ce], ev["y"][ce])
    # take again the best-fitting detection per station at the new place, relocate
    good = (new["n_sta"] >= cfg.min_stations) & (new["t0"] < we)
    if not good.any():
        return None
    new = {k: v[good] for k, v in new.items()}
    e2, p2, r2, _, _ = _pairs(cfg, ctx, pk, new)
    e2, p2 = _one_per_station(pk, e2, p2, np.abs(r2))
    again, _, _ = _score(cfg, ctx, pk, e2, p2, len(new["x"]), new["x"], new["y"])
    good = (again["n_sta"] >= cfg.min_stations) & (again["t0"] < we)
    return {k: v[good] for k, v in again.items()} if good.any() else None
