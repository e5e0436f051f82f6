"""The 0.1 degree analysis grid (as in The Economist's model).

A cell is identified by integer indices ``i = floor(lat * 10)``, ``j = floor(lon * 10)``
and written ``"{i}_{j}"``: cell ``482_372`` covers 48.2-48.3 N, 37.2-37.3 E.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

CELL_DEG = 0.1


def cell_indices(
    lat: NDArray[np.float64], lon: NDArray[np.float64]
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    # the small epsilon keeps 48.3 (float 48.29999...) in cell 483, as a reader expects
    i = np.floor(np.asarray(lat) * 10 + 1e-9).astype(np.int32)
    j = np.floor(np.asarray(lon) * 10 + 1e-9).astype(np.int32)
    return i, j


def cell_labels(i: NDArray[np.int32], j: NDArray[np.int32]) -> NDArray[np.str_]:
    return np.char.add(np.char.add(i.astype(str), "_"), j.astype(str))


def cell_centre(i: NDArray[np.integer[Any]], j: NDArray[np.integer[Any]]) -> tuple[
    NDArray[np.float64], NDArray[np.float64]
]:
    return ((i + 0.5) * CELL_DEG).astype(np.float64), ((j + 0.5) * CELL_DEG).astype(np.float64)


def circular_window_sum(a: NDArray[np.float64], w: int, axis: int = -1) -> NDArray[np.float64]:
    """Sum over a circular window of +-w along ``axis`` (cumulative sums, O(n))."""
    a = np.moveaxis(a, axis, -1)
    n = a.shape[-1]
    padded = np.concatenate([a[..., n - w:], a, a[..., :w]], axis=-1)
    cs = np.cumsum(padded, axis=-1, dtype=np.float64)
    cs = np.concatenate([np.zeros((*a.shape[:-1], 1)), cs], axis=-1)
    out = cs[..., 2 * w + 1:] - cs[..., : n]
    return np.moveaxis(out, -1, axis)


def box_sum(a: NDArray[np.float64], r: int) -> NDArray[np.float64]:
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
