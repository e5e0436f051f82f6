"""Static covariates of the 0.1 degree grid: land use and population per cell.

Read from a folder in the layout of ``covariates-ukraine-0p1deg-gianman89`` (see
docs/satellite.md): ``land_use_2022_0p1deg.csv`` (LONGITUDE, LATITUDE,
LAND_USE_CLASS_0..4: fractions of none/water, trees, flooded vegetation/bare/rangeland,
crops, built) and ``pop_density_2020_0p1deg.csv`` (LATITUDE, LONGITUDE, POP_DENSITY).

Their points are cell *centres* at x.x degrees, so each covers x.x +- 0.05; trucewatch's
cell ``i = floor(lat * 10)`` covers i/10 .. (i+1)/10. A trucewatch cell is therefore
the mean of the four covariate points at its corners, each of which covers a quarter
of it (a missing corner is left out of the mean).

Covariates that do not cover the area are refused: a classifier that silently took
"no cropland" for "unknown" would call every harvest fire outside the file war-related.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from numpy.typing import NDArray

from trucewatch.errors import BaselineError, InputFileError
from trucewatch.geo.share import find_folder

LAND_USE_FILE = "land_use_2022_0p1deg.csv"
POPULATION_FILE = "pop_density_2020_0p1deg.csv"
LAND_CLASSES = ("water", "trees", "open", "crops", "built")
ENV_VAR = "TRUCEWATCH_COVARIATES"
# the mission's data share, as laid out beside a checkout (searched when nothing is given)
DEFAULT_DIRS = ("../shared/data/covariates-ukraine-0p1deg-gianman89",
                "shared/data/covariates-ukraine-0p1deg-gianman89")
MIN_COVERAGE = 0.9


@dataclass
class CellCovariates:
    """Per-cell fractions (``LAND_CLASSES``) and population density, NaN where unknown,
    on the grid ``i0, j0, shape`` of a baseline."""

    fractions: NDArray[np.float32]  # (5, ni, nj)
    population: NDArray[np.float32]  # (ni, nj) people per km2
    source: str

    def land(self, name: str) -> NDArray[np.float32]:
        out: NDArray[np.float32] = self.fractions[LAND_CLASSES.index(name)]
        return out


def find_covariates(explicit: Path | None = None) -> Path | None:
    """The covariate folder: ``explicit``, else $TRUCEWATCH_COVARIATES, else the data share."""
    return find_folder(explicit, ENV_VAR, DEFAULT_DIRS, (LAND_USE_FILE,))


def _corner_mean(points: pl.DataFrame, value_cols: list[str], i0: int, j0: int,
                 shape: tuple[int, int]) -> NDArray[np.float64]:
    """(len(value_cols), ni, nj): the mean of the covariate points at each cell's corners."""
    ni, nj = shape
    pi = np.rint(points["LATITUDE"].to_numpy() * 10).astype(np.int64)
    pj = np.rint(points["LONGITUDE"].to_numpy() * 10).astype(np.int64)
    vals = np.stack([points[c].cast(pl.Float64).to_numpy() for c in value_cols])
    total = np.zeros((len(value_cols), ni, nj))
    weight = np.zeros((ni, nj))
    ok = np.isfinite(vals).all(axis=0)
    for di in (0, 1):  # a point at corner (i, j) covers a quarter of cells i-1..i, j-1..j
        for dj in (0, 1):
            ci, cj = pi - di - i0, pj - dj - j0
            m = ok & (ci >= 0) & (ci < ni) & (cj >= 0) & (cj < nj)
            np.add.at(weight, (ci[m], cj[m]), 1.0)
            for k in range(len(value_cols)):
                np.add.at(total[k], (ci[m], cj[m]), vals[k, m])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / weight, np.nan)


def _read(path: Path) -> pl.DataFrame:
    # read as text: the published files carry stray tabs after some numbers
    raw = pl.read_csv(path, infer_schema=False)
    return raw.with_columns(pl.all().str.strip_chars().cast(pl.Float64, strict=False)
                            .name.keep()).rename(lambda c: c.strip())


def load_covariates(folder: Path, i0: int, j0: int, shape: tuple[int, int],
                    needed: NDArray[np.bool_] | None = None) -> CellCovariates:
    """Covariates on a baseline grid. ``needed`` marks the cells with detections: when fewer
    than 90 % of them have land use, the files do not cover the area and are refused."""
    folder = Path(folder)
    path = folder / LAND_USE_FILE
    if not path.is_file():
        raise InputFileError(f"{folder}: no {LAND_USE_FILE} (land-use covariates)",
                             path=str(path),
                             fix="give the covariates folder (docs/satellite.md lists its files)"
                                 " or leave --covariates out")
    try:
        land = _read(path)
        cols = [f"LAND_USE_CLASS_{k}" for k in range(5)]
        missing = [c for c in ["LATITUDE", "LONGITUDE", *cols] if c not in land.columns]
        if missing:
            raise BaselineError(f"{path}: missing column(s) {', '.join(missing)}",
                                fix="use the land-use file in the documented layout")
        fractions = _corner_mean(land, cols, i0, j0, shape)
        pop = np.full(shape, np.nan)
        ppath = folder / POPULATION_FILE
        if ppath.is_file():
            pop = _corner_mean(_read(ppath), ["POP_DENSITY"], i0, j0, shape)[0]
    except pl.exceptions.PolarsError as err:
        raise BaselineError(f"{path}: not a readable covariate CSV ({err})",
                            fix="use the land-use file in the documented layout") from err
    known = np.isfinite(fractions[0])
    if needed is not None and needed.any():
        share = float(known[needed].mean())
        if share < MIN_COVERAGE:
            raise BaselineError(
                f"the covariates in {folder} cover only {share:.0%} of the cells with "
                f"detections (at least {MIN_COVERAGE:.0%} needed)",
                fix="give covariates for the whole area, or fit without --covariates")
    return CellCovariates(fractions.astype(np.float32), pop.astype(np.float32), str(folder))
