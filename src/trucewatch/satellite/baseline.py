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

**Learned from covariates** (format 2). When land-use covariates are given, a
gradient-boosted model (scikit-learn's ``HistGradientBoostingRegressor``, Poisson loss)
learns the mean count of a cell in each half-month from its land use (crops, trees,
open land, built, water), population, position, season and its own yearly activity, and
the expected count becomes the larger of the cell's smoothed history and the model: a
cropland cell with no burning on record still expects the harvest fires that cropland
of its kind has in that season. The upper quantile used by the classifier is the
negative binomial's ``upper_quantile`` of that mean, with ``k`` refitted against it.

**Landscape** (format 2), from the reference years and covariates, for the classes of
:mod:`trucewatch.satellite.war_fires`: per cell the crop share (covariates) or, without
covariates, the share of its reference detections that fall in the crop-fire season;
the crop-fire season itself (days of year when cropland burns at least
``crop_season_ratio`` (1.5) times its yearly mean rate, learned from the data, not a
calendar typed in); and persistence (the share of covered days with a detection:
steelworks and gas flares burn on most days).
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
from trucewatch.geo.grid import box_sum, cell_indices, circular_window_sum
from trucewatch.satellite.covariates import CellCovariates, load_covariates
from trucewatch.satellite.landscape import Landscape, build_landscape, learned_expectation

FORMAT = "trucewatch-fire-baseline"
FORMAT_VERSION = 2
DAYS = 366


@dataclass(frozen=True)
class BaselineParams:
    window_days: int = 15
    neighbourhood_cells: int = 1
    cell_weight: float = 0.5
    min_expected: float = 0.002
    min_rows_per_year: int = 2000
    margin_cells: int = 3
    # learned expectation (used when covariates are given)
    learner_iterations: int = 60
    learner_bins: int = 24
    upper_quantile: float = 0.95
    # landscape
    crop_share: float = 0.5
    seasonal_share: float = 0.8
    crop_season_ratio: float = 1.5
    seed: int = 0


def instrument(sensor: str) -> str:
    return sensor.split("_", 1)[0]


def day_of_year(dates: pl.Series) -> NDArray[np.int64]:
    return (dates.dt.ordinal_day().to_numpy().astype(np.int64) - 1).clip(0, DAYS - 1)


@dataclass
class SensorBaseline:
    expected: NDArray[np.float32]  # (ni, nj, 366): mean count in a normal year
    dispersion: float  # negative-binomial k (variance = m + m^2 / k)
    years: list[int]
    rows: int
    learned: bool = False  # expected raised to the covariate model where it is higher


@dataclass
class Baseline:
    i0: int
    j0: int
    shape: tuple[int, int]
    params: BaselineParams
    sensors: dict[str, SensorBaseline] = field(default_factory=dict)
    landscape: Landscape | None = None

    # ---------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, records: pl.DataFrame, years: list[int],
            params: BaselineParams | None = None,
            covariates: Path | CellCovariates | None = None) -> Baseline:
        """Fit from detections (columns latitude, longitude, acq_date, sensor); with
        ``covariates`` (a folder or loaded grids), the expectation is also learned from
        land use and population (module docstring)."""
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
        cov: CellCovariates | None = None
        if isinstance(covariates, CellCovariates):
            cov = covariates
        elif covariates is not None:
            needed = np.zeros(shape, dtype=bool)
            needed[ref["_i"].to_numpy(), ref["_j"].to_numpy()] = True
            cov = load_covariates(Path(covariates), i0, j0, shape, needed)
        for sensor in sorted(kept["sensor"].unique().to_list()):
            sy = sorted(kept.filter(pl.col("sensor") == sensor)["_y"].to_list())
            sub = ref.filter((pl.col("sensor") == sensor) & pl.col("_y").is_in(sy))
            base.sensors[sensor] = _fit_sensor(sub, sy, shape, params, cov, i0, j0)
        if not base.sensors:
            raise BaselineError(
                f"no sensor has {params.min_rows_per_year} detections in any reference year",
                fix="add reference years or lower min_rows_per_year",
            )
        base.landscape = _landscape(ref, shape, params, cov)
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
            "sensors": {s: {"dispersion": b.dispersion, "years": b.years, "rows": b.rows,
                            "learned": b.learned}
                        for s, b in self.sensors.items()},
            "landscape": ({"crops_from": self.landscape.crops_from}
                          if self.landscape is not None else None),
        }
        arrays: dict[str, NDArray[Any]] = {f"expected__{s}": b.expected
                                           for s, b in self.sensors.items()}
        if self.landscape is not None:
            ls = self.landscape
            arrays |= {"landscape__crops": ls.crops, "landscape__persistence": ls.persistence,
                       "landscape__crop_season": ls.crop_season,
                       "landscape__trees": ls.trees}
            if ls.seasonal is not None:
                arrays["landscape__seasonal"] = ls.seasonal
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
                params = {k: v for k, v in meta["params"].items()
                          if k in BaselineParams.__dataclass_fields__}
                base = cls(i0=meta["i0"], j0=meta["j0"], shape=tuple(meta["shape"]),
                           params=BaselineParams(**params))
                for s, info in meta["sensors"].items():
                    base.sensors[s] = SensorBaseline(expected=z[f"expected__{s}"],
                                                     dispersion=info["dispersion"],
                                                     years=info["years"], rows=info["rows"],
                                                     learned=bool(info.get("learned")))
                if meta.get("landscape"):
                    base.landscape = Landscape(
                        crops=z["landscape__crops"], persistence=z["landscape__persistence"],
                        crop_season=z["landscape__crop_season"],
                        crops_from=meta["landscape"]["crops_from"],
                        trees=z["landscape__trees"],
                        seasonal=(z["landscape__seasonal"] if "landscape__seasonal" in z.files
                                  else None))
                return base
        except FileNotFoundError as err:
            raise InputFileError(f"{path}: no such baseline file", path=str(path),
                                 fix="build one with `trucewatch satellite fit-baseline`") from err
        except (ValueError, KeyError, OSError) as err:
            raise BaselineError(f"{path}: not a readable baseline ({err})",
                                fix="rebuild it with `trucewatch satellite fit-baseline`") from err


def fit_baseline(records: pl.DataFrame, years: list[int], params: BaselineParams | None,
                 covariates: Path | None, *, required: bool = True) -> tuple[Baseline, str]:
    """The baseline and a note on its covariates. Covariates that were given are required;
    covariates found by default (``required=False``) that do not cover the area are left
    out, and the note says so."""
    try:
        base = Baseline.fit(records, years, params, covariates=covariates)
        return base, (f"land use from {covariates}" if covariates else
                      "no land-use covariates (crop share from the fires' seasonality)")
    except (BaselineError, InputFileError) as err:
        if required or covariates is None:
            raise
        return Baseline.fit(records, years, params), (
            f"land-use covariates in {covariates} left out: {err.message}")


def _counts(sub: pl.DataFrame, shape: tuple[int, int]) -> NDArray[np.float64]:
    ni, nj = shape
    doy = day_of_year(sub["acq_date"])
    flat = (sub["_i"].to_numpy().astype(np.int64) * nj + sub["_j"].to_numpy()) * DAYS + doy
    return np.bincount(flat, minlength=ni * nj * DAYS).reshape(ni, nj, DAYS).astype(np.float64)


def _landscape(ref: pl.DataFrame, shape: tuple[int, int],
               p: BaselineParams, cov: CellCovariates | None) -> Landscape:
    counts = _counts(ref, shape)
    cd = ref.select("_i", "_j", "acq_date").unique()
    days_with_fire = np.zeros(shape)
    np.add.at(days_with_fire, (cd["_i"].to_numpy(), cd["_j"].to_numpy()), 1.0)
    span = ref.group_by("_y").agg(pl.col("acq_date").min().alias("a"),
                                  pl.col("acq_date").max().alias("b"))
    cover_days = float(sum((b - a).days + 1 for a, b in zip(span["a"], span["b"],
                                                             strict=True)))
    return build_landscape(counts, days_with_fire, cover_days, cov, p.crop_share,
                           p.crop_season_ratio)


def _fit_sensor(sub: pl.DataFrame, years: list[int], shape: tuple[int, int],
                p: BaselineParams, cov: CellCovariates | None = None, i0: int = 0,
                j0: int = 0) -> SensorBaseline:
    counts = _counts(sub, shape)

    # how many reference years covered each day of year for this sensor
    cover = np.zeros(DAYS)
    span = sub.group_by("_y").agg(pl.col("acq_date").min().alias("a"),
                                  pl.col("acq_date").max().alias("b"))
    for a, b in zip(span["a"], span["b"], strict=True):
        da, db = a.timetuple().tm_yday - 1, b.timetuple().tm_yday - 1
        cover[da:db + 1] += 1
    w = p.window_days
    cover_t = circular_window_sum(cover[None, None, :], w)[0, 0]
    cover_t = np.maximum(cover_t, 1.0)

    counts_t = circular_window_sum(counts, w)
    r = p.neighbourhood_cells
    local = counts_t / cover_t
    nbr = box_sum(counts_t, r) / ((2 * r + 1) ** 2 * cover_t)
    expected = np.maximum(p.cell_weight * local + (1 - p.cell_weight) * nbr, p.min_expected)
    learned = cov is not None
    if learned:
        assert cov is not None
        model = learned_expectation(counts, cover, cov, i0, j0, p.learner_bins,
                                    p.learner_iterations, p.seed)
        expected = np.maximum(expected, model)

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
                          rows=sub.height, learned=learned)
