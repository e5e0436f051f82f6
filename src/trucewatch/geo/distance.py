"""Great-circle distance on the WGS84 mean sphere (accurate to ~0.5 %, enough for gates)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

EARTH_RADIUS_M = 6_371_000.0


def haversine_m(lat: ArrayLike, lon: ArrayLike, lat0: float, lon0: float
                ) -> NDArray[np.float64]:
    la, lo = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float))
    la0, lo0 = np.radians(lat0), np.radians(lon0)
    h = np.sin((la - la0) / 2) ** 2 + np.cos(la) * np.cos(la0) * np.sin((lo - lo0) / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(h)), dtype=np.float64)
