"""Locations and geometry as the API serves them.

* Every incident location carries ``place`` ("12 km SE of Zolote", from the gazetteer),
  ``precision_km`` and a coded ``where_prec`` (:data:`WHERE_PREC`, after UCDP's
  ``where_prec`` and ACLED's ``geo_precision``; documented in docs/api.md).
* The public's locations are snapped to a grid of the public precision
  (:func:`round_point`); their place is described from the rounded point, so that it
  says nothing finer.
* Polygons follow RFC 7946 §3.1.6: exterior rings counter-clockwise, holes clockwise
  (:func:`rewind`, :func:`oriented`).
"""

from __future__ import annotations

import threading
from enum import IntEnum
from typing import Any

import numpy as np
from shapely.geometry import GeometryCollection, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from trucewatch.geo.gazetteer import Gazetteer, describe

KM_PER_DEG = 111.32  # a degree of latitude (and of longitude at the equator)
# the public grid: 0.1 degree, as the public bulletins round (reports/)
PUBLIC_PRECISION_KM = 11.132  # = 0.1 degree of latitude


class WherePrec(IntEnum):
    """How precisely a served location places an incident (``where_prec``)."""

    EXACT = 1  # within 1 km: as located
    NEAR = 2  # within 5 km
    AREA = 3  # within 25 km (the public grid by default)
    REGION = 4  # coarser: the sector or district only


WHERE_PREC_LIMITS_KM = ((WherePrec.EXACT, 1.0), (WherePrec.NEAR, 5.0),
                        (WherePrec.AREA, 25.0))


def where_prec(precision_km: float) -> WherePrec:
    for code, limit in WHERE_PREC_LIMITS_KM:
        if precision_km <= limit:
            return code
    return WherePrec.REGION


def grid_step_deg(precision_km: float) -> float:
    return precision_km / KM_PER_DEG


def round_point(lat: float, lon: float, precision_km: float) -> tuple[float, float]:
    """A point snapped to the node of a grid of ``precision_km`` (in degrees of latitude,
    the same step in longitude: a cell is never smaller than the precision says)."""
    step = grid_step_deg(precision_km)
    return (round(round(lat / step) * step, 6), round(round(lon / step) * step, 6))


_LOADING = threading.Lock()


def gazetteer() -> Gazetteer:
    """The gazetteer, loaded once per process (the first load takes seconds: the app
    starts it in the background, and concurrent first requests wait for that one)."""
    with _LOADING:
        return Gazetteer.load()


def describe_point(lat: float, lon: float) -> str:
    """"8 km SW of Avdiyivka" for a point, to the kilometre; "" without a gazetteer."""
    return _describe(lat, lon)


def _describe(lat: float, lon: float) -> str:
    try:
        return describe(lat, lon, gazetteer())
    except (ValueError, IndexError):  # an empty gazetteer: no place to name
        return ""


def located(item: dict[str, Any], public_km: float | None = None) -> dict[str, Any]:
    """An incident's JSON with its location's ``place``, ``precision_km`` and
    ``where_prec``; with ``public_km``, the location rounded to that precision (and its
    uncertainty no finer)."""
    loc = dict(item.get("location") or {})
    if "lat" not in loc or "lon" not in loc:
        return item
    own_km = float(loc.get("uncertainty_m") or 0.0) / 1000
    if public_km is not None:
        lat, lon = round_point(float(loc["lat"]), float(loc["lon"]), public_km)
        km = max(public_km, own_km)
        loc = {"lat": lat, "lon": lon, "uncertainty_m": round(km * 1000)}
    else:
        km = own_km
    loc |= {"precision_km": round(km, 3), "where_prec": int(where_prec(km)),
            "place": _describe(float(loc["lat"]), float(loc["lon"]))}
    return item | {"location": loc}


# ------------------------------------------------------------------ RFC 7946 winding
def oriented(geom: BaseGeometry) -> BaseGeometry:
    """A geometry with every polygon's exterior counter-clockwise, its holes clockwise."""
    if isinstance(geom, Polygon):
        return orient(geom, 1.0)
    if isinstance(geom, MultiPolygon):
        return MultiPolygon([orient(p, 1.0) for p in geom.geoms])
    if isinstance(geom, GeometryCollection):
        return GeometryCollection([oriented(g) for g in geom.geoms])
    return geom


def _signed_area(ring: list[Any] | tuple[Any, ...]) -> float:
    xy = np.asarray([p[:2] for p in ring], dtype=np.float64)
    if len(xy) < 3:
        return 0.0
    x, y = xy[:, 0], xy[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2


def _rings(rings: list[Any] | tuple[Any, ...]) -> list[Any]:
    out = []
    for k, ring in enumerate(rings):
        area = _signed_area(ring)
        # exterior (k == 0) counter-clockwise (area > 0), holes clockwise
        if (k == 0 and area < 0) or (k > 0 and area > 0):
            ring = ring[::-1]
        out.append([list(p) for p in ring])
    return out


def rewind(obj: Any) -> Any:
    """A GeoJSON object (geometry, feature, collection, or any JSON holding them) with
    its polygons wound as RFC 7946 says; everything else as it was."""
    if isinstance(obj, (list, tuple)):
        return [rewind(x) for x in obj]
    if not isinstance(obj, dict):
        return obj
    kind = obj.get("type")
    coords = obj.get("coordinates")
    if kind == "Polygon" and isinstance(coords, (list, tuple)):
        return obj | {"coordinates": _rings(coords)}
    if kind == "MultiPolygon" and isinstance(coords, (list, tuple)):
        return obj | {"coordinates": [_rings(p) for p in coords]}
    return {k: rewind(v) for k, v in obj.items()}
