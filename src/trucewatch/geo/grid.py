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
