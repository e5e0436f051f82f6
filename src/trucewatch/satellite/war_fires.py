"""Satellite fire classes: war-related, agricultural, wildfire, industrial/persistent, normal.

Every detection gets one class and a reason (docs/satellite.md; every threshold is a
field of :class:`WarFireRules`). Per 0.1 degree cell-day, all sensors together:

1. **Excess** (The Economist's surplus, not a per-cell-day test alone). Per sensor the
   upper count of a normal year is the baseline's negative-binomial ``upper_quantile``
   of the expected count; the surplus is ``n - upper - offset``. A cell-day is an excess
   when the surplus of some sensor is at least 1 and ``P(N >= n) < p_threshold``.
2. **Explained excess.** An excess is *agricultural* in a crop cell (crop share at least
   the baseline's ``crop_share``) in the crop-fire season learned from the reference
   years, and a *wildfire* inside a burst (``wildfire_min_detections`` detections on
   at least two days within ``wildfire_radius_km`` over ``wildfire_days``) outside
   cropland; unless the area had *sustained* excess before: excess on at least
   ``min_history_days`` days within ``confirm_radius_km``, ``history_gap_days`` to
   ``history_days`` days earlier. Fighting that was there before the season does not
   turn into farming when the harvest starts.
3. **Confirmation, causal.** An unexplained excess is war-related when the area
   (``confirm_radius_km``) also had excess on at least ``min_confirmations`` other days
   in the ``confirm_days`` days *before* it. Only the past is used: the class of a
   detection on day D never depends on what is seen after D (a verdict as of D stands).
4. **Carry-over.** A detection that is not itself an excess, in a cell with a
   war-related excess within ``carry_days`` before, is war-related too; carry-over never
   crosses ``reset_at`` (a ceasefire's entry into force).
5. Other detections are agricultural (crop cell, crop season), wildfire (in a burst),
   industrial/persistent (a cell that burned on at least ``industrial_persistence`` of
   the reference days: steelworks, flares) or normal.

All steps are array operations: cell-days spread to the cells in reach, sorted keys and
binary searches over them (no loop over detections or cells, no dense grid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import numpy as np
import polars as pl
from numpy.typing import NDArray

from trucewatch.errors import BaselineError
from trucewatch.geo.grid import cell_indices, cell_labels
from trucewatch.satellite.baseline import Baseline, day_of_year, instrument
from trucewatch.satellite.landscape import Landscape

_T_BITS = 1 << 20  # days since 1970 fit in 20 bits until the year 4840
MAX_OUTSIDE_GRID = 0.1


class FireClass(StrEnum):
    WAR_RELATED = "war_related"
    AGRICULTURAL = "agricultural"
    WILDFIRE = "wildfire"
    INDUSTRIAL = "industrial"
    NORMAL = "normal"
    # a sensor the baseline has no reference for (e.g. MODIS rows against a VIIRS-only
    # baseline): left out of the classification, with the reason, never an error
    UNCLASSIFIED = "unclassified"


@dataclass(frozen=True)
class WarFireRules:
    p_threshold: float = 0.01
    offset: float = 2.0
    confirm_radius_km: float = 12.0
    confirm_days: int = 30
    min_confirmations: int = 8
    history_days: int = 120
    history_gap_days: int = 45
    min_history_days: int = 10
    wildfire_radius_km: float = 15.0
    wildfire_days: int = 7
    wildfire_min_detections: int = 80
    wildfire_jump: float = 5.0
    wildfire_density: float = 8.0
    # in woodland a spreading fire front shows fewer pixels per cell-day (canopy, smoke)
    woodland_share: float = 0.3
    woodland_density: float = 3.0
    industrial_persistence: float = 0.1
    carry_days: int = 10
    # count only the surplus of a war-related cell-day (The Economist's allocation, for
    # comparing with their series): the other detections of that cell-day are what a
    # normal year would have had there; a cell-day whose surplus is at least the median
    # surplus counts whole. Off by default: verdicts weigh every pixel of the cell-day
    surplus_only: bool = False
    # revision tier (docs/satellite.md): also confirm by what was seen up to this many days
    # *after*; 0 (the default) keeps every class causal, so a verdict as of D stands
    lookahead_days: int = 0
    reset_at: date | None = None


OUTPUT_COLUMNS = ("latitude", "longitude", "acq_date", "cell", "expected", "p_normal",
                  "war_related", "reason", "fire_class", "upper", "surplus")


def _keys(i: NDArray[np.int64], j: NDArray[np.int64], t: NDArray[np.int64]) -> NDArray[np.int64]:
    cell = (i + 2000) * 4000 + (j + 2000)
    return cell * _T_BITS + t


def _radius_cells(radius_km: float, lat_deg: float) -> tuple[int, int]:
    dy = 11.1195  # km per 0.1 degree of latitude
    dx = dy * max(math.cos(math.radians(lat_deg)), 0.05)
    return max(round(radius_km / dy), 0), max(round(radius_km / dx), 0)


@dataclass(frozen=True)
class Halo:
    """What a core of cell-days reaches beyond itself: cells north-south and east-west,
    days before and after (the classifier is local; a partitioned run
    (scale/reprocess.py) and the worker's incremental passes take their halos from it)."""

    cells_i: int
    cells_j: int
    days_before: int
    days_after: int

    @classmethod
    def of(cls, rules: WarFireRules, reach_lat: float) -> Halo:
        ci, cj = _radius_cells(rules.confirm_radius_km, reach_lat)
        wi, wj = _radius_cells(rules.wildfire_radius_km, reach_lat)
        # a carried-over row looks back carry_days to a war-related cell-day, whose own
        # class looks back over the longest feature window (history, confirmation, burst)
        window = max(rules.history_days, rules.confirm_days, rules.wildfire_days)
        return cls(max(ci, wi), max(cj, wj), rules.carry_days + window + 1,
                   rules.lookahead_days + 1)


class _Spread:
    """Cell-days spread to every cell of a (2ri+1) x (2rj+1) box: sorted (cell, day) keys
    with summed weights, so that "in reach of (cell, day), over days t-stop..t-start" is two
    binary searches per question (no loop over cells, no dense day x cell grid)."""

    def __init__(self, i: NDArray[np.int64], j: NDArray[np.int64], t: NDArray[np.int64],
                 weights: list[NDArray[np.float64]], ri: int, rj: int) -> None:
        grid_i, grid_j = np.meshgrid(np.arange(-ri, ri + 1), np.arange(-rj, rj + 1),
                                     indexing="ij")
        di, dj = grid_i.ravel(), grid_j.ravel()
        keys = _keys((i[:, None] + di).ravel(), (j[:, None] + dj).ravel(),
                     np.repeat(t, di.size))
        self.keys, inv = np.unique(keys, return_inverse=True)
        self.cums = [np.concatenate([[0.0], np.cumsum(np.bincount(
            inv, weights=np.repeat(w, di.size), minlength=self.keys.size))]) for w in weights]

    def _bounds(self, own: NDArray[np.int64], start: int, stop: int
                ) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        return (np.searchsorted(self.keys, own - stop, "left"),
                np.searchsorted(self.keys, own - start, "right"))

    def days(self, own: NDArray[np.int64], start: int, stop: int) -> NDArray[np.float32]:
        """Distinct days t-stop..t-start with something in reach (negative: after t)."""
        lo, hi = self._bounds(own, start, stop)
        return (hi - lo).astype(np.float32)

    def total(self, own: NDArray[np.int64], start: int, stop: int, k: int = 0
              ) -> NDArray[np.float32]:
        """The sum of weight ``k`` in reach over days t-stop..t-start."""
        lo, hi = self._bounds(own, start, stop)
        out: NDArray[np.float32] = (self.cums[k][hi] - self.cums[k][lo]).astype(np.float32)
        return out


@dataclass
class _CellDays:
    """Features of the unique cell-days (all sensors together)."""

    i: NDArray[np.int64]
    j: NDArray[np.int64]
    t: NDArray[np.int64]
    n: NDArray[np.int64]
    excess: NDArray[np.bool_]
    confirmations: NDArray[np.float32]
    history: NDArray[np.float32]
    burst: NDArray[np.float32]
    burst_days: NDArray[np.float32]
    before: NDArray[np.float32]  # mean detections per wildfire window in reach, history
    active: NDArray[np.float32]  # cell-days with detections in reach over the wildfire window


def reach_latitude(records: pl.DataFrame, baseline: Baseline) -> float:
    """The latitude at which the radii in km become cells: the mean over the classified
    cell-days (what :func:`classify` uses unless it is given one). A partitioned run passes
    the whole input's value to every part, so that each part reaches as far as the whole."""
    lacking = _lacking_sensors(baseline, records["sensor"].unique().to_list())
    if lacking:
        records = records.filter(~pl.col("sensor").is_in(list(lacking)).fill_null(False))
    lat = records["latitude"].to_numpy()
    lon = records["longitude"].to_numpy()
    i, j = cell_indices(lat, lon)
    days = records["acq_date"].cast(pl.Int32).to_numpy().astype(np.int64)
    cd = np.unique(_keys(i.astype(np.int64), j.astype(np.int64), days))
    if cd.size == 0:
        return 0.0
    return float(np.mean(cd // _T_BITS // 4000 - 2000)) / 10


def _features(cd_i: NDArray[np.int64], cd_j: NDArray[np.int64], cd_t: NDArray[np.int64],
              cd_n: NDArray[np.int64], cd_excess: NDArray[np.bool_], rules: WarFireRules,
              reach_lat: float | None = None) -> _CellDays:
    n_cd = cd_i.size
    if n_cd == 0:
        z = np.zeros(0, np.float32)
        return _CellDays(cd_i, cd_j, cd_t, cd_n, cd_excess, z, z, z, z, z, z)
    lat = float(np.mean(cd_i)) / 10 if reach_lat is None else reach_lat
    ci, cj = _radius_cells(rules.confirm_radius_km, lat)
    wi, wj = _radius_cells(rules.wildfire_radius_km, lat)
    own = _keys(cd_i, cd_j, cd_t)
    ex = np.flatnonzero(cd_excess)
    # days with an excess anywhere in reach (a day counts once however many cells)
    near = _Spread(cd_i[ex], cd_j[ex], cd_t[ex], [], ci, cj)
    conf = near.days(own, 1, rules.confirm_days)
    hist = near.days(own, rules.history_gap_days, rules.history_days)
    ahead = rules.lookahead_days
    if ahead > 0:  # the revision tier: what followed counts too
        conf += near.days(own, -ahead, -1)
        if ahead >= rules.history_gap_days:
            hist += near.days(own, -min(ahead, rules.history_days), -rules.history_gap_days)
    # detections in reach: how many (weight 0), on how many cell-days (weight 1)
    det = _Spread(cd_i, cd_j, cd_t, [cd_n.astype(np.float64), np.ones(n_cd)], wi, wj)
    w = rules.wildfire_days - 1
    burst = det.total(own, 0, w)
    bdays = det.days(own, 0, w)
    active = det.total(own, 0, w, k=1)
    before = det.total(own, rules.history_gap_days, rules.history_days) * (
        rules.wildfire_days / (rules.history_days - rules.history_gap_days + 1))
    return _CellDays(cd_i, cd_j, cd_t, cd_n, cd_excess, conf, hist, burst, bdays, before,
                     active)


def _check_grid(baseline: Baseline, i: NDArray[np.int64], j: NDArray[np.int64]) -> None:
    """A baseline fitted for another area says nothing here: refuse it."""
    if i.size == 0:
        return
    ii, jj = i - baseline.i0, j - baseline.j0
    outside = ~((ii >= 0) & (ii < baseline.shape[0]) & (jj >= 0) & (jj < baseline.shape[1]))
    share = float(outside.mean())
    if share > MAX_OUTSIDE_GRID:
        lat0, lon0 = baseline.i0 / 10, baseline.j0 / 10
        lat1, lon1 = lat0 + baseline.shape[0] / 10, lon0 + baseline.shape[1] / 10
        raise BaselineError(
            f"{share:.0%} of the detections lie outside the baseline's grid "
            f"({lat0:.1f}..{lat1:.1f} N, {lon0:.1f}..{lon1:.1f} E): it was fitted for "
            "another area", fix="fit a baseline on reference years of this area")


def _landscape_at(ls: Landscape | None, baseline: Baseline, i: NDArray[np.int64],
                  j: NDArray[np.int64], doy: NDArray[np.int64]
                  ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32],
                             NDArray[np.float32], NDArray[np.bool_]]:
    """(farmland share, in-season share of past fires, tree share, persistence, in crop
    season) per cell-day; zeros off the grid or without a landscape (or those grids)."""
    ii, jj = i - baseline.i0, j - baseline.j0
    inside = (ii >= 0) & (ii < baseline.shape[0]) & (jj >= 0) & (jj < baseline.shape[1])

    def at(grid: NDArray[np.float32] | None) -> NDArray[np.float32]:
        out = np.zeros(i.shape, np.float32)
        if grid is not None:
            out[inside] = np.nan_to_num(grid[ii[inside], jj[inside]], nan=0.0)
        return out

    if ls is None:
        return at(None), at(None), at(None), at(None), np.zeros(i.shape, bool)
    in_season: NDArray[np.bool_] = ls.crop_season[doy]
    return at(ls.crops), at(ls.seasonal), at(ls.trees), at(ls.persistence), in_season


def classify(records: pl.DataFrame, baseline: Baseline,
             rules: WarFireRules | None = None, *, reach_lat: float | None = None
             ) -> pl.DataFrame:
    """Classify detections (columns latitude, longitude, acq_date, sensor).

    Returns one row per input row, in input order, with ``cell``, ``expected``,
    ``p_normal``, ``war_related``, ``reason``, ``fire_class``, ``upper`` and ``surplus``
    added, plus ``cell_count``, ``baseline_sensor`` and ``excess`` (the cell-day is an
    excess, explained or not).

    Rows of a sensor the baseline has no reference for (not even one of the same
    instrument) are left out: fire class ``unclassified``, not war-related, no excess,
    and a reason that says which reference is missing; the other rows are classified as
    if those were absent. One such row (a MODIS file in a VIIRS-only store) never makes
    a cycle fail.

    ``reach_lat``: the latitude at which radii become cells (default: the input's own,
    :func:`reach_latitude`); a partitioned run gives every part the whole input's."""
    rules = rules or WarFireRules()
    lacking = _lacking_sensors(baseline, records["sensor"].unique().to_list())
    if not lacking:
        return _classify(records, baseline, rules, reach_lat)
    rows = records.with_row_index("_k")
    unknown = pl.col("sensor").is_in(list(lacking)).fill_null(False)
    rest = rows.filter(unknown)
    ok = rows.filter(~unknown)
    i32, j32 = cell_indices(rest["latitude"].to_numpy(), rest["longitude"].to_numpy())
    left_out = rest.select("_k", "latitude", "longitude", "acq_date").with_columns(
        pl.Series("cell", cell_labels(i32, j32)),
        pl.lit(None, pl.Float64).alias("expected"), pl.lit(None, pl.Float64).alias("p_normal"),
        pl.lit(0, pl.Int8).alias("war_related"),
        pl.lit(FireClass.UNCLASSIFIED.value).alias("fire_class"),
        pl.lit(None, pl.Float64).alias("upper"), pl.lit(None, pl.Float64).alias("surplus"),
        pl.lit(None, pl.Int64).alias("cell_count"), pl.lit("").alias("baseline_sensor"),
        pl.lit(False).alias("excess"),
        rest["sensor"].replace_strict(lacking, return_dtype=pl.String).alias("reason"))
    if ok.height == 0:
        return left_out.drop("_k")
    done = _classify(ok.drop("_k"), baseline, rules, reach_lat).with_columns(ok["_k"])
    return pl.concat([done, left_out.select(done.columns)], how="vertical_relaxed"
                     ).sort("_k").drop("_k")


def _lacking_sensors(baseline: Baseline, sensors: list[str | None]) -> dict[str, str]:
    """Sensor -> the reason its rows are unclassified, for the sensors the baseline has no
    reference for."""
    out: dict[str, str] = {}
    for s in sensors:
        if s is None:
            continue
        try:
            baseline.resolve_sensor(s)
        except BaselineError:
            out[s] = (f"unclassified: the baseline has no {instrument(s)} reference for {s} "
                      f"detections (it was fitted for {', '.join(sorted(baseline.sensors))}); "
                      f"fit a baseline on reference years with {s} data to classify them")
    return out


def _classify(records: pl.DataFrame, baseline: Baseline, rules: WarFireRules,
              reach_lat: float | None = None) -> pl.DataFrame:
    from scipy.stats import nbinom  # scipy.stats takes a second to import: only when used

    n_in = records.height
    lat = records["latitude"].to_numpy()
    lon = records["longitude"].to_numpy()
    i32, j32 = cell_indices(lat, lon)
    i, j = i32.astype(np.int64), j32.astype(np.int64)
    days = records["acq_date"].cast(pl.Int32).to_numpy().astype(np.int64)
    doy = day_of_year(records["acq_date"])
    _check_grid(baseline, i, j)

    # baseline sensor per input sensor (exact, or same instrument with a note)
    sensors = records["sensor"]
    sensor_arr = sensors.to_numpy()
    used = np.empty(n_in, dtype=object)
    notes = np.full(n_in, "", dtype=object)
    for s in sensors.unique().to_list():
        b_s, note = baseline.resolve_sensor(s)
        mask = sensor_arr == s
        used[mask] = b_s
        notes[mask] = note

    # per (cell, day, input sensor): count, expected, upper, surplus
    sensor_code = sensors.cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
    cd_key = _keys(i, j, days)
    key = cd_key * 16 + sensor_code
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    n = counts[inverse]
    expected = np.empty(n_in)
    p_normal = np.empty(n_in)
    upper = np.empty(n_in)
    for b_s in set(used.tolist()):
        mask = used == b_s
        expected[mask] = baseline.expected(b_s, i32[mask], j32[mask], doy[mask])
        p_normal[mask] = baseline.p_at_least(b_s, n[mask], expected[mask])
        k = baseline.sensors[b_s].dispersion
        # the quantile once per distinct expected count (cells share their day-of-year)
        m, back = np.unique(expected[mask], return_inverse=True)
        upper[mask] = nbinom.ppf(baseline.params.upper_quantile, k, k / (k + m))[back]
    surplus = n - upper - rules.offset
    row_excess = (surplus >= 1) & (p_normal < rules.p_threshold)

    # cell-days, all sensors together
    cd_uniq, first, cd_inv, cd_n = np.unique(cd_key, return_index=True, return_inverse=True,
                                             return_counts=True)
    cd_excess = np.zeros(cd_uniq.size, bool)
    np.logical_or.at(cd_excess, cd_inv, row_excess)
    f = _features(i[first], j[first], days[first], cd_n.astype(np.int64), cd_excess, rules,
                  reach_lat)
    cd_doy = doy[first]
    ls = baseline.landscape
    crops, seasonal, trees, pers, season = _landscape_at(ls, baseline, f.i, f.j, cd_doy)
    # farmland by the land-use map, or a place whose past fires came in the crop season
    crop_cell = (crops >= baseline.params.crop_share) \
        | (seasonal >= baseline.params.seasonal_share)
    open_cell = ~crop_cell
    sustained = f.history >= rules.min_history_days
    # a wildfire is a sudden, large, growing burst on open land: far above the area's own
    # activity before (fighting that burned at that level for months is not a wildfire)
    # and concentrated: a fire front burns many pixels per cell, shelling scatters a few
    burning = np.maximum(f.active, 1)  # cell-days with detections in reach
    per_cell_day = f.burst / burning
    dense = (f.burst >= rules.wildfire_density * burning) | (
        (trees >= rules.woodland_share) & (f.burst >= rules.woodland_density * burning))
    wild = (f.burst >= rules.wildfire_min_detections) & (f.burst_days >= 2) \
        & (open_cell | ~season) & (f.burst >= rules.wildfire_jump * f.before) \
        & ~sustained & (ls is not None) & dense
    agri = crop_cell & season & ~sustained & ~wild
    explained = wild | agri
    war_cd = f.excess & ~explained & (f.confirmations >= rules.min_confirmations)

    # carry-over: latest war-related cell-day in the same cell, strictly before
    war_keys = np.unique(_keys(f.i[war_cd], f.j[war_cd], f.t[war_cd]))
    own = cd_key
    pos = np.searchsorted(war_keys, own, "left") - 1
    prev = war_keys[np.clip(pos, 0, None)] if war_keys.size else np.zeros_like(own)
    same_cell = (pos >= 0) & (prev // _T_BITS == own // _T_BITS)
    t0 = prev % _T_BITS
    carried = same_cell & (days - t0 <= rules.carry_days) & ~cd_excess[cd_inv]
    if rules.reset_at is not None:
        reset = (rules.reset_at - date(1970, 1, 1)).days
        carried &= ~((t0 < reset) & (days >= reset))

    war_row = war_cd[cd_inv] | carried
    if rules.surplus_only and war_cd.any():
        # the cell-day's surplus (all sensors), and each row's rank inside its cell-day
        cd_surplus = np.zeros(cd_uniq.size)
        np.maximum.at(cd_surplus, cd_inv, np.ceil(np.maximum(surplus, 0.0)))
        median = float(np.median(cd_surplus[war_cd & (cd_surplus > 0)])) \
            if (war_cd & (cd_surplus > 0)).any() else 0.0
        order = np.lexsort((np.arange(n_in), cd_inv))
        rank = np.empty(n_in, np.int64)
        starts = np.searchsorted(cd_inv[order], cd_inv[order], "left")
        rank[order] = np.arange(n_in) - starts
        whole = cd_surplus >= median
        war_row = (war_cd[cd_inv] & (whole[cd_inv] | (rank < cd_surplus[cd_inv]))) | carried
    persistent = pers[cd_inv] >= rules.industrial_persistence
    klass = np.select(
        [war_row, persistent, wild[cd_inv], agri[cd_inv]],
        [FireClass.WAR_RELATED.value, FireClass.INDUSTRIAL.value, FireClass.WILDFIRE.value,
         FireClass.AGRICULTURAL.value], default=FireClass.NORMAL.value)
    out = records.select("latitude", "longitude", "acq_date").with_columns(
        pl.Series("cell", cell_labels(i32, j32)),
        pl.Series("expected", expected),
        pl.Series("p_normal", p_normal),
        pl.Series("war_related", war_row.astype(np.int8)),
        pl.Series("fire_class", klass.astype(str)),
        pl.Series("upper", upper),
        pl.Series("surplus", np.maximum(surplus, 0.0)),
        pl.Series("cell_count", n.astype(np.int64)),
        pl.Series("baseline_sensor", used.astype(str)),
        pl.Series("excess", cd_excess[cd_inv]),
        pl.Series("_carried", carried),
        pl.Series("_t0", t0).cast(pl.Date),
        pl.Series("_note", notes.astype(str)),
        pl.Series("_conf", f.confirmations[cd_inv]),
        pl.Series("_hist", f.history[cd_inv]),
        pl.Series("_burst", f.burst[cd_inv]),
        pl.Series("_before", f.before[cd_inv]),
        pl.Series("_density", per_cell_day[cd_inv]),
        pl.Series("_crops", crops[cd_inv]),
        pl.Series("_seasonal", seasonal[cd_inv]),
        pl.Series("_trees", trees[cd_inv]),
        pl.Series("_season", season[cd_inv]),
        pl.Series("_pers", pers[cd_inv]),
        pl.Series("_cdn", cd_n[cd_inv]),
    )
    crops_from = ls.crops_from if ls is not None else "none (baseline without landscape)"
    return out.with_columns(_reason_expr(rules, baseline, crops_from).alias("reason")).drop(
        "_carried", "_t0", "_note", "_conf", "_hist", "_burst", "_before", "_density", "_crops",
        "_seasonal", "_trees", "_season", "_pers", "_cdn")


def _reason_expr(r: WarFireRules, baseline: Baseline, crops_from: str) -> pl.Expr:
    c = pl.col
    share = baseline.params.crop_share
    stats = pl.format("{} detection(s) in the cell-day, normal-year upper {} (expected {}, "
                      "p_normal={})", c("_cdn"), c("upper").round(0).cast(pl.Int64),
                      c("expected").round(3), c("p_normal").round_sig_figs(2))
    history = pl.format("excess within {} km on {} day(s) {}-{} days before",
                        pl.lit(f"{r.confirm_radius_km:g}"), c("_hist").cast(pl.Int64),
                        pl.lit(r.history_gap_days), pl.lit(r.history_days))
    sshare = baseline.params.seasonal_share
    farm = (c("_crops") >= share) | (c("_seasonal") >= sshare)
    not_agri = (pl.when(~farm).then(
        pl.format("farmland share {} < {} and {}% of past fires here in the crop-fire season "
                  "(< {}%)", c("_crops").round(2), pl.lit(share),
                  (c("_seasonal") * 100).round(0).cast(pl.Int64), pl.lit(round(sshare * 100))))
        .when(~c("_season")).then(pl.lit("outside the crop-fire season"))
        .otherwise(pl.concat_str([pl.lit("fighting before the season: "), history])))
    not_wild = (pl.when(c("_burst") < r.wildfire_min_detections).then(
        pl.format("{} detection(s) within {} km over {} days (a wildfire has {}+)",
                  c("_burst").cast(pl.Int64), pl.lit(f"{r.wildfire_radius_km:g}"),
                  pl.lit(r.wildfire_days), pl.lit(r.wildfire_min_detections)))
        .when(farm & c("_season")).then(pl.lit("farmland in the crop-fire season"))
        .when(c("_hist") >= r.min_history_days).then(
            pl.concat_str([pl.lit("fighting before: "), history]))
        .when(c("_density") < r.woodland_density).then(
            pl.format("scattered: {} detection(s) per burning cell-day (a fire front has {}+, "
                      "{}+ in woodland)", c("_density").round(1),
                      pl.lit(f"{r.wildfire_density:g}"), pl.lit(f"{r.woodland_density:g}")))
        .when((c("_density") < r.wildfire_density) & (c("_trees") < r.woodland_share)).then(
            pl.format("scattered: {} detection(s) per burning cell-day outside woodland (tree "
                      "share {} < {}; a fire front has {}+)", c("_density").round(1),
                      c("_trees").round(2), pl.lit(f"{r.woodland_share:g}"),
                      pl.lit(f"{r.wildfire_density:g}")))
        .otherwise(pl.format("the area had {} detection(s) per {} days before: not a sudden "
                             "burst ({}x needed)", c("_before").round(1),
                             pl.lit(r.wildfire_days), pl.lit(f"{r.wildfire_jump:g}"))))
    klass = c("fire_class")
    base = (
        pl.when((klass == "war_related") & c("_carried")).then(pl.concat_str([
            pl.lit(f"war_related (carry-over): within {r.carry_days} days after a war-related "
                   "excess in this cell on "), c("_t0").cast(pl.Utf8)]))
        .when(klass == "war_related").then(pl.concat_str([
            pl.lit("war_related: excess, "), stats,
            pl.format("; confirmed: excess within {} km on {} of the {} days before",
                      pl.lit(f"{r.confirm_radius_km:g}"), c("_conf").cast(pl.Int64),
                      pl.lit(r.confirm_days)),
            pl.lit("; not agricultural because "), not_agri,
            pl.lit("; not a wildfire because "), not_wild]))
        .when(klass == "wildfire").then(pl.concat_str([
            pl.format("wildfire: a sudden burst of {} detections within {} km over {} days "
                      "(the area had {} per {} days before), {} per burning cell-day, not "
                      "farmland in the crop-fire season; ", c("_burst").cast(pl.Int64),
                      pl.lit(f"{r.wildfire_radius_km:g}"), pl.lit(r.wildfire_days),
                      c("_before").round(1), pl.lit(r.wildfire_days), c("_density").round(1)),
            stats]))
        .when(klass == "agricultural").then(pl.concat_str([
            pl.format("agricultural: farmland share {} (from {}), {}% of past fires here in "
                      "the crop-fire season, in that season, no sustained fighting before (",
                      c("_crops").round(2), pl.lit(crops_from),
                      (c("_seasonal") * 100).round(0).cast(pl.Int64)),
            history, pl.lit("); "), stats]))
        .when(klass == "industrial").then(pl.concat_str([
            pl.format("industrial/persistent: this cell burned on {}% of reference days; ",
                      (c("_pers") * 100).round(1)), stats]))
        .when(c("excess")).then(pl.concat_str([
            pl.lit("normal: excess not confirmed ("), stats,
            pl.format("; excess within {} km on {} of the {} days before, {} needed)",
                      pl.lit(f"{r.confirm_radius_km:g}"), c("_conf").cast(pl.Int64),
                      pl.lit(r.confirm_days), pl.lit(r.min_confirmations)),
            # an unexplained excess is evidence: say what it was not
            pl.lit("; not agricultural because "), not_agri,
            pl.lit("; not a wildfire because "), not_wild]))
        .otherwise(pl.concat_str([pl.lit("normal: within normal range ("), stats,
                                  pl.lit(")")]))
    )
    return pl.when(c("_note") != "").then(
        pl.concat_str([base, pl.lit(" ["), c("_note"), pl.lit("]")])).otherwise(base)
