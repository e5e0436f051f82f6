"""GeoJSON as an agreement gives it: read inline or from a file beside the YAML, and
checked (finite, in range, valid, not across the antimeridian). Problems are collected in
``errors`` as sentences, never raised, so that one check reports them all."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry


def read_geojson(spec: Any, base: Path, what: str, errors: list[str]) -> list[tuple[BaseGeometry,
                                                                                 dict[str, Any]]]:
    """Features of a GeoJSON given inline or as a path relative to the YAML file."""
    if isinstance(spec, str):
        path = (base / spec) if not Path(spec).is_absolute() else Path(spec)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            errors.append(f"{what}: file {os.path.normpath(path)} not found (a relative path "
                          "is read from the agreement file's folder)")
            return []
        except json.JSONDecodeError as err:
            errors.append(f"{what}: {path} is not valid JSON ({err})")
            return []
        except RecursionError:
            errors.append(f"{what}: {path} is JSON nested too deeply")
            return []
    elif isinstance(spec, dict):
        data = spec
    else:
        errors.append(f"{what}: expected a GeoJSON path or object")
        return []
    feats = data.get("features") if data.get("type") == "FeatureCollection" else (
        [data] if data.get("type") == "Feature" else [{"geometry": data, "properties": {}}])
    out = []
    for k, f in enumerate(feats or []):
        try:
            g = shape(f["geometry"])
        except Exception as err:
            errors.append(f"{what}: feature {k} has no readable geometry ({err})")
            continue
        if not np.isfinite(shapely.get_coordinates(g)).all():
            errors.append(f"{what}: feature {k} has coordinates that are not finite numbers "
                          "(NaN or infinity)")
            continue
        # checked here, before any union: GEOS overflows on coordinates such as 1e292
        if not g.is_empty and (bad := out_of_range(f"{what}: feature {k} has", g.bounds)):
            errors.append(bad)
            continue
        out.append((g, dict(f.get("properties") or {})))
    if not out:
        errors.append(f"{what}: no features")
    return out



def out_of_range(what: str, bounds: tuple[float, float, float, float]) -> str | None:
    """The error for a geometry whose ``bounds`` leave longitude/latitude, else None."""
    xmin, ymin, xmax, ymax = bounds
    if -180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90:
        return None
    return (f"{what} coordinates out of range (lon {xmin:g}..{xmax:g}, lat {ymin:g}.."
            f"{ymax:g}); GeoJSON is longitude, latitude in degrees")


def valid_geometry(g: BaseGeometry, what: str, errors: list[str]) -> bool:
    if g.is_empty:
        errors.append(f"{what}: geometry is empty")
        return False
    if bad := out_of_range(f"{what}:", g.bounds):
        errors.append(bad)
        return False
    if not g.is_valid:
        errors.append(f"{what}: invalid geometry ({shapely.is_valid_reason(g)}); "
                      "fix the ring or run it through shapely.make_valid")
        return False
    jump = antimeridian_jump(g)
    if jump is not None:
        (x0, y0), (x1, y1) = jump
        errors.append(f"{what}: the segment from lon {x0:g}, lat {y0:g} to lon {x1:g}, lat "
                      f"{y1:g} crosses the antimeridian (180 degrees of longitude), which "
                      "GeoJSON reads as going the long way round the Earth; lines and areas "
                      "across the antimeridian are not supported")
        return False
    return True



def antimeridian_jump(g: BaseGeometry) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The first segment of ``g`` that spans more than 180 degrees of longitude."""
    for part in shapely.get_parts(g):
        lines = shapely.get_rings(part) if part.geom_type == "Polygon" else [part]
        for line in lines:
            xy = shapely.get_coordinates(line)
            k = np.flatnonzero(np.abs(np.diff(xy[:, 0])) > 180)
            if k.size:
                a, b = xy[k[0]], xy[k[0] + 1]
                return (float(a[0]), float(a[1])), (float(b[0]), float(b[1]))
    return None
