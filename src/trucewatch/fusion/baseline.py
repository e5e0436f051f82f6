"""Expected-fire baseline: normal fire activity per 0.1 degree cell and day of year.

Model (see docs/satellite.md). For each sensor, counts of detections from the
reference years are accumulated on the grid by day of year, then smoothed:

* over the season: a circular +-``window_days`` moving sum;
* over space: a blend of the cell itself (weight ``cell_weight``) and the mean of
  its ``(2 r + 1)^2`` neighbourhood, so that a cell with no history still gets
  its surroundings' activity;

and divided by the number of reference years that covered each day (a partial
year counts only where that sensor has data). The result ``expected`` is the
mean count in a normal year. Counts are over-dispersed (a field burn gives
dozens of detections in one cell-day), so the probability of an observed count
uses a negative binomial with mean ``expected`` and a dispersion ``k`` fitted
per sensor by the method of moments.

The baseline is sensor-aware: counts differ by instrument (MODIS 1 km vs VIIRS
375 m) and processing level (S-NPP archive vs NOAA-20 NRT). A sensor missing from
the baseline may borrow another sensor of the same instrument (VIIRS -> VIIRS),
which is said in every reason it produces; across instruments it is refused.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy.special import betainc

from trucewatch.errors import BaselineError, InputFileError
from trucewatch.geo.grid import cell_indices

FORMAT = "trucewatch-fire-baseline"
FORMAT_VERSION = 1
DAYS = 366


@dataclass(frozen=True)
class BaselineParams:
    window_days: int = 15
    neighbourhood_cells: int = 1
    cell_weight: float = 0.5
    min_expected: float = 0.002
    min_rows_per_year: int = 2000
    margin_cells: int = 3


def instrument(sensor: str) -> str:
    return sensor.split("_", 1)[0]


def day_of_year(dates: pl.Series) -> NDArray[np.int64]:
    return (dates.dt.ordinal_day().to_numpy().astype(np.int64) - 1).clip(0, DAYS - 1)


def _circular_window_sum(a: NDArray[np.float64], w: int, axis: int = -1) -> NDArray[np.float64]:
    """Sum over a circular window of +-w along ``axis`` (cumulative sums, O(n))."""
    a = np.moveaxis(a, axis, -1)
    n = a.shape[-1]
    padded = np.concatenate([a[..., n - w:], a, a[..., :w]], axis=-1)
    cs = np.cumsum(padded, axis=-1, dtype=np.float64)
    cs = np.concatenate([np.zeros((*a.shape[:-1], 1)), cs], axis=-1)
    out = cs[..., 2 * w + 1:] - cs[..., : n]
    return np.moveaxis(out, -1, axis)


def _box_sum(a: NDArray[np.float64], r: int) -> NDArray[np.float64]:
    """Sum over a (2r+1) x (2r+1) box on the first two axes (zero outside)."""
    if r == 0:
        return a
    out = np.zeros_like(a)
    ni, nj = a.shape[:2]
    for di in range(-r, r + 1):  # (2r+1)^2 array shifts, not a loop over cells
        for dj in range(-r, r + 1):
            src_i = slice(max(0, -di), ni - max(0, di))
            dst_i = slice(max(0, di), ni - max(0, -di))
            src_j = slice(max(0, -dj), nj - max(0, dj))
            dst_j = slice(max(0, dj), nj - max(0, -dj))
            out[dst_i, dst_j] += a[src_i, src_j]
    return out


@dataclass
class SensorBaseline:
    expected: NDArray[np.float32]  # (ni, nj, 366): mean count in a normal year
    dispersion: float  # negative-binomial k (variance = m + m^2 / k)
    years: list[int]
    rows: int


@dataclass
class Baseline:
    i0: int
    j0: int
    shape: tuple[int, int]
    params: BaselineParams
    sensors: dict[str, SensorBaseline] = field(default_factory=dict)

    # ---------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, records: pl.DataFrame, years: list[int],
            params: BaselineParams | None = None) -> Baseline:
        """Fit from detections (columns latitude, longitude, acq_date, sensor)."""
        params = params or BaselineParams()
        if not years:
            raise BaselineError("no reference years given", fix="pass --years 2019,2020,2021")
        ref = records.filter(pl.col("acq_date").dt.year().is_in(years))
        if ref.height == 0:
            present = sorted(set(records["acq_date"].dt.year().unique().to_list()))
            raise BaselineError(
                f"no detections in the reference years {years}",
                fix=f"choose years present in the input: {present}",
            )
        i, j = cell_indices(ref["latitude"].to_numpy(), ref["longitude"].to_numpy())
        m = params.margin_cells
        i0, j0 = int(i.min()) - m, int(j.min()) - m
        shape = (int(i.max()) - i0 + 1 + m, int(j.max()) - j0 + 1 + m)
        base = cls(i0=i0, j0=j0, shape=shape, params=params)
        ref = ref.with_columns(pl.Series("_i", i - i0), pl.Series("_j", j - j0),
                               pl.col("acq_date").dt.year().alias("_y"))
        per = ref.group_by("sensor", "_y").len()
        kept = per.filter(pl.col("len") >= params.min_rows_per_year)
        for sensor in sorted(kept["sensor"].unique().to_list()):
            sy = sorted(kept.filter(pl.col("sensor") == sensor)["_y"].to_list())
            sub = ref.filter((pl.col("sensor") == sensor) & pl.col("_y").is_in(sy))
            base.sensors[sensor] = _fit_sensor(sub, sy, shape, params)
        if not base.sensors:
            raise BaselineError(
                f"no sensor has {params.min_rows_per_year} detections in any reference year",
                fix="add reference years or lower min_rows_per_year",
            )
        return base

    # ---------------------------------------------------------------- lookup
    def resolve_sensor(self, sensor: str) -> tuple[str, str]:
        """The baseline sensor used for ``sensor`` and a note ('' when exact)."""
        if sensor in self.sensors:
            return sensor, ""
        same = [s for s in self.sensors if instrument(s) == instrument(sensor)]
        if same:
            best = max(same, key=lambda s: self.sensors[s].rows)
            return best, f"baseline of {best} used for {sensor}"
        raise BaselineError(
            f"the baseline has no {instrument(sensor)} sensor for {sensor} detections "
            f"(it was fitted for {', '.join(sorted(self.sensors))})",
            fix=f"fit a baseline on reference years with {sensor} data",
        )

    def expected(self, sensor: str, i: NDArray[np.int32], j: NDArray[np.int32],
                 doy: NDArray[np.int64]) -> NDArray[np.float64]:
        sb = self.sensors[sensor]
        ii, jj = i - self.i0, j - self.j0
        inside = (ii >= 0) & (ii < self.shape[0]) & (jj >= 0) & (jj < self.shape[1])
        out = np.full(i.shape, self.params.min_expected, dtype=np.float64)
        out[inside] = sb.expected[ii[inside], jj[inside], doy[inside]]
        return out

    def p_at_least(self, sensor: str, n: NDArray[np.int64],
                   expected: NDArray[np.float64]) -> NDArray[np.float64]:
        """P(N >= n) in a normal year, negative binomial with mean ``expected``."""
        k = self.sensors[sensor].dispersion
        p = betainc(np.maximum(n, 1).astype(np.float64), k, expected / (expected + k))
        return np.where(n <= 0, 1.0, p)

    # ---------------------------------------------------------------- file format
    def save(self, path: Path) -> None:
        meta = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "i0": self.i0, "j0": self.j0,
            "shape": list(self.shape), "params": asdict(self.params),
            "sensors": {s: {"dispersion": b.dispersion, "years": b.years, "rows": b.rows}
                        for s, b in self.sensors.items()},
        }
        arrays = {f"expected__{s}": b.expected for s, b in self.sensors.items()}
        with Path(path).open("wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path) -> Baseline:
        try:
            with np.load(Path(path), allow_pickle=False) as z:
                meta: dict[str, Any] = json.loads(str(z["meta"]))
                if meta.get("format") != FORMAT:
                    raise BaselineError(f"{path} is not a trucewatch fire baseline",
                                        fix="build one with `trucewatch satellite fit-baseline`")
                if meta["format_version"] > FORMAT_VERSION:
                    raise BaselineError(f"{path}: baseline format {meta['format_version']} is "
                                        "newer than this trucewatch", fix="upgrade trucewatch")
                base = cls(i0=meta["i0"], j0=meta["j0"], shape=tuple(meta["shape"]),
                           params=BaselineParams(**meta["params"]))
                for s, info in meta["sensors"].items():
                    base.sensors[s] = SensorBaseline(expected=z[f"expected__{s}"],
                                                     dispersion=info["dispersion"],
                                                     years=info["years"], rows=info["rows"])
                return base
        except FileNotFoundError as err:
            raise InputFileError(f"{path}: no such baseline file", path=str(path),
                                 fix="build one with `trucewatch satellite fit-baseline`") from err
        except (ValueError, KeyError, OSError) as err:
            raise BaselineError(f"{path}: not a readable baseline ({err})",
                                fix="rebuild it with `trucewatch satellite fit-baseline`") from err


def _fit_sensor(sub: pl.DataFrame, years: list[int], shape: tuple[int, int],
                p: BaselineParams) -> SensorBaseline:
    ni, nj = shape
    doy = day_of_year(sub["acq_date"])
    ii, jj = sub["_i"].to_numpy(), sub["_j"].to_numpy()
    flat = (ii.astype(np.int64) * nj + jj) * DAYS + doy
    counts = np.bincount(flat, minlength=ni * nj * DAYS).reshape(ni, nj, DAYS).astype(np.float64)

    # how many reference years covered each day of year for this sensor
    cover = np.zeros(DAYS)
    span = sub.group_by("_y").agg(pl.col("acq_date").min().alias("a"),
                                  pl.col("acq_date").max().alias("b"))
    for a, b in zip(span["a"], span["b"], strict=True):
        da, db = a.timetuple().tm_yday - 1, b.timetuple().tm_yday - 1
        cover[da:db + 1] += 1
    w = p.window_days
    cover_t = _circular_window_sum(cover[None, None, :], w)[0, 0]
    cover_t = np.maximum(cover_t, 1.0)

    counts_t = _circular_window_sum(counts, w)
    r = p.neighbourhood_cells
    local = counts_t / cover_t
    nbr = _box_sum(counts_t, r) / ((2 * r + 1) ** 2 * cover_t)
    expected = np.maximum(p.cell_weight * local + (1 - p.cell_weight) * nbr, p.min_expected)

    # dispersion k by moments over covered cell-days: sum (n - m)^2 - n = sum m^2 / k
    g = sub.group_by("_y", "_i", "_j", pl.col("acq_date").dt.ordinal_day().alias("_d")).len()
    n = g["len"].to_numpy().astype(np.float64)
    m = expected[g["_i"].to_numpy(), g["_j"].to_numpy(),
                 (g["_d"].to_numpy().astype(np.int64) - 1).clip(0, DAYS - 1)]
    sum_m2 = float(np.einsum("ijd,ijd,d->", expected, expected, cover))
    sum_sq = float(np.sum((n - m) ** 2 - m**2)) + sum_m2
    excess_var = sum_sq - float(n.sum())
    k = float(np.clip(sum_m2 / excess_var, 0.01, 100.0)) if excess_var > 0 else 100.0
    return SensorBaseline(expected=expected.astype(np.float32), dispersion=k, years=years,
                          rows=sub.height)
