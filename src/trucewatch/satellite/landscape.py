"""What the landscape explains: crop share, the crop-fire season, persistent sources, and
the expected count learned from covariates (see :mod:`trucewatch.satellite.baseline`).

All estimated from the reference years and the covariate files: no hand-drawn boxes,
no calendar typed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from trucewatch.geo.grid import box_sum, circular_window_sum

if TYPE_CHECKING:
    from trucewatch.satellite.covariates import CellCovariates

DAYS = 366


@dataclass
class Landscape:
    """Per-cell grids (ni, nj) and the crop-fire season (366 booleans)."""

    # farmland share: crops + grass/bare/rangeland (what farmers burn: stubble, dry grass,
    # field margins) from land use, or without it the share of fires in the crop season
    crops: NDArray[np.float32]
    persistence: NDArray[np.float32]  # share of covered reference days with a detection
    crop_season: NDArray[np.bool_]  # (366,) day of year in the crop-fire season
    crops_from: str  # "land use (FOLDER)" or "fire seasonality (no covariates)"
    # further land use, NaN when no covariates were given
    trees: NDArray[np.float32]  # tree share (NaN without covariates)
    # the share of the cell's (3x3) reference fires that fell in the crop-fire season:
    # where people burn in that season, whatever the land-use map says
    seasonal: NDArray[np.float32] | None = None


def build_landscape(counts: NDArray[np.float64], days_with_fire: NDArray[np.float64],
                    cover_days: float, covariates: CellCovariates | None,
                    crop_share: float, season_ratio: float) -> Landscape:
    """``counts``: (ni, nj, 366) reference detections of every sensor by day of year;
    ``days_with_fire``: (ni, nj) reference cell-days with at least one detection;
    ``cover_days``: days the reference years covered."""
    persistence = (days_with_fire / max(cover_days, 1.0)).astype(np.float32)
    per_cell = counts.sum(axis=2)
    if covariates is not None:
        crops = np.nan_to_num(covariates.land("crops") + covariates.land("open"), nan=0.0)
        crop_cells = crops >= crop_share
        trees = covariates.land("trees").astype(np.float32)
    else:
        crop_cells = per_cell > 0
        trees = np.full(per_cell.shape, np.nan, dtype=np.float32)
    # the season: days when cropland burns well above its yearly mean rate
    w = 7  # a two-week moving mean of the daily rate
    daily = circular_window_sum(counts[crop_cells].sum(axis=0)[None, :], w)[0] / (2 * w + 1)
    season = daily >= season_ratio * max(float(daily.mean()), 1e-9)
    in_season = box_sum(counts[:, :, season].sum(axis=2), 1)
    total = box_sum(per_cell, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        seasonal = np.where(total >= 3, in_season / total, 0.0).astype(np.float32)
    if covariates is not None:
        crops_grid = crops.astype(np.float32)
        source = f"land use ({covariates.source})"
    else:  # without land use: where the fires come in that season
        crops_grid = seasonal
        source = "fire seasonality of the reference years (no land-use covariates)"
    return Landscape(crops=crops_grid, persistence=persistence, crop_season=season,
                     crops_from=source, trees=trees, seasonal=seasonal)


def learned_expectation(counts: NDArray[np.float64], cover: NDArray[np.float64],
                        covariates: CellCovariates, i0: int, j0: int, bins: int,
                        iterations: int, seed: int) -> NDArray[np.float64]:
    """(ni, nj, 366) mean count per cell-day learned from covariates, season and activity.

    ``counts``: one sensor's reference detections by cell and day of year; ``cover``:
    (366,) reference years covering each day. One row per cell and half-month (not per
    cell-day: the model is smooth in season, and this keeps fitting to a second or two);
    predictions are interpolated between half-month centres."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    ni, nj, _ = counts.shape
    edges = np.linspace(0, DAYS, bins + 1).astype(int)
    per_bin = np.stack([counts[:, :, a:b].sum(axis=2) for a, b in pairwise(edges)], axis=2)
    days = np.array([cover[a:b].sum() for a, b in pairwise(edges)])
    rate = per_bin / np.maximum(days, 1.0)  # mean count per cell-day in each bin
    yearly = counts.sum(axis=2) / max(float(cover.sum()), 1.0)
    ii, jj, bb = np.meshgrid(np.arange(ni), np.arange(nj), np.arange(bins), indexing="ij")
    centre = (edges[:-1] + edges[1:]) / 2 / DAYS * 2 * np.pi
    fr = covariates.fractions
    feats = np.column_stack([
        (ii + i0).ravel() / 10.0, (jj + j0).ravel() / 10.0,
        np.sin(centre)[bb].ravel(), np.cos(centre)[bb].ravel(),
        *(np.broadcast_to(f[:, :, None], (ni, nj, bins)).ravel() for f in fr),
        np.broadcast_to(np.log1p(covariates.population)[:, :, None], (ni, nj, bins)).ravel(),
        np.broadcast_to(np.log1p(yearly * 1000)[:, :, None], (ni, nj, bins)).ravel(),
    ]).astype(np.float32)
    target = rate.ravel()
    known = np.isfinite(np.broadcast_to(fr[0][:, :, None], (ni, nj, bins)).ravel())
    # no sample weights: the half-months cover nearly equal days, and weighted binning
    # costs seconds; no early stopping: a fixed, reproducible number of trees
    model = HistGradientBoostingRegressor(loss="poisson", max_iter=iterations,
                                          learning_rate=0.15, max_leaf_nodes=31,
                                          min_samples_leaf=50, l2_regularization=1.0,
                                          early_stopping=False, random_state=seed)
    model.fit(feats[known], target[known])
    pred = np.zeros(ni * nj * bins)
    # a rate is never above what the reference years ever showed in a half-month
    pred[known] = np.clip(model.predict(feats[known]), 0.0, float(target.max()))
    pred = pred.reshape(ni, nj, bins)
    # circular linear interpolation from half-month centres to days of year
    centres = (edges[:-1] + edges[1:]) / 2
    doy = np.arange(DAYS) + 0.5
    pos = np.interp(doy, np.concatenate([[centres[-1] - DAYS], centres, [centres[0] + DAYS]]),
                    np.arange(-1, bins + 1))
    lo = np.floor(pos).astype(int)
    frac = pos - lo
    out = pred[:, :, lo % bins] * (1 - frac) + pred[:, :, (lo + 1) % bins] * frac
    return np.asarray(out, dtype=np.float64)
