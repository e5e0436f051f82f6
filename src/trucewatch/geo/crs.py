"""Pick and use a local metric CRS: distances and areas are never measured in degrees."""

from __future__ import annotations

import contextlib
from functools import lru_cache

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

from trucewatch.errors import ConfigError


def local_laea(lon0: float, lat0: float) -> str:
    """A Lambert azimuthal equal-area CRS centred on the area: areas exact, distances
    within 0.1% over a few hundred km."""
    return f"+proj=laea +lat_0={lat0:.4f} +lon_0={lon0:.4f} +datum=WGS84 +units=m +no_defs"


def crs_for(geometry: BaseGeometry, requested: str = "auto") -> str:
    if requested and requested != "auto":
        try:
            crs = CRS.from_user_input(requested)
        except Exception as err:
            raise ConfigError(
                f"unknown CRS {requested!r}", fix="use an EPSG code such as EPSG:3035, or 'auto'"
            ) from err
        if not crs.is_projected:
            raise ConfigError(
                f"CRS {requested!r} is not projected (metres needed)",
                fix="use a projected CRS such as EPSG:3035 or 'auto'",
            )
        return requested
    c = geometry.centroid
    return local_laea(c.x, c.y)


@lru_cache(maxsize=32)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def to_metric(geometry: BaseGeometry, crs: str, densify_deg: float = 0.05) -> BaseGeometry:
    """Project WGS84 to ``crs``. Long edges are densified first so that an edge along a
    parallel stays on it (a straight edge in degrees is a curve in metres)."""
    t = _transformer("EPSG:4326", crs)
    if densify_deg and geometry.geom_type != "Point":
        # degenerate parts (e.g. a one-point ring in third-party data): project as is
        with contextlib.suppress(shapely.errors.GEOSException):
            geometry = shapely.segmentize(geometry, densify_deg)
    return shapely.transform(geometry, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def to_wgs84(geometry: BaseGeometry, crs: str) -> BaseGeometry:
    t = _transformer(crs, "EPSG:4326")
    return shapely.transform(geometry, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def project_points(
    lon: NDArray[np.float64], lat: NDArray[np.float64], crs: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x, y = _transformer("EPSG:4326", crs).transform(lon, lat)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
