"""Files for GIS and spreadsheets: incidents as CSV, KML and GeoPackage, the agreement's
layers as GeoJSON, KML and GeoPackage (written by GDAL through pyogrio).

The tabular fields are the JSON's: ``location`` is spread into ``lat``, ``lon``,
``uncertainty_m``, ``precision_km``, ``where_prec`` and ``place``; a list is joined
with ``;``; an object (``attributes``) is its JSON text. A CSV cell that a spreadsheet
would run as a formula (``=``, ``+``, ``-``, ``@`` first) is prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape

MEDIA = {"csv": "text/csv; charset=utf-8", "kml": "application/vnd.google-earth.kml+xml",
         "gpkg": "application/geopackage+sqlite3", "geojson": "application/geo+json"}
FIRST = ("id", "category", "status", "time_start", "time_end", "sector_id", "lat", "lon",
         "uncertainty_m", "precision_km", "where_prec", "place")


def flat(item: dict[str, Any]) -> dict[str, Any]:
    """One incident's JSON as one row of scalars."""
    row: dict[str, Any] = {}
    for k, v in item.items():
        if k == "location" and isinstance(v, dict):
            row |= v
        elif isinstance(v, list):
            row[k] = ";".join(str(x) for x in v)
        elif isinstance(v, dict):
            row[k] = json.dumps(v, ensure_ascii=False, sort_keys=True)
        else:
            row[k] = v
    return row


def columns(rows: list[dict[str, Any]]) -> list[str]:
    seen = {k: None for r in rows for k in r}
    return [k for k in FIRST if k in seen or not rows] + \
        [k for k in seen if k not in FIRST]


def _cell(v: Any) -> Any:
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@"):
        return "'" + v
    return "" if v is None else v


def to_csv(items: list[dict[str, Any]]) -> bytes:
    rows = [flat(i) for i in items]
    cols = columns(rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in cols])
    return buf.getvalue().encode("utf-8")


def _field_arrays(rows: list[dict[str, Any]], cols: list[str]) -> list[np.ndarray]:
    out = []
    for c in cols:
        vals = [r.get(c) for r in rows]
        present = [v for v in vals if v is not None]
        if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present) \
                and len(present) == len(vals):
            out.append(np.asarray(vals, dtype=np.int64))
        elif present and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                             for v in present):
            out.append(np.asarray([np.nan if v is None else float(v) for v in vals],
                                  dtype=np.float64))
        else:
            out.append(np.asarray([None if v is None else str(v) for v in vals],
                                  dtype=object))
    return out


def _write(layers: list[tuple[str, list[Any], list[dict[str, Any]]]], driver: str,
           suffix: str) -> bytes:
    """Layers (name, shapely geometries, property rows) written with GDAL to one file."""
    from pyogrio.raw import write  # type: ignore[import-untyped]

    with tempfile.TemporaryDirectory(prefix="tw-export-") as tmp:
        path = Path(tmp) / f"export{suffix}"
        for name, geoms, rows in layers:
            cols = columns(rows) if rows else ["id"]
            fields = _field_arrays(rows, cols) if rows else [np.asarray([], dtype=object)]
            kinds = {g.geom_type for g in geoms}
            gtype = next(iter(kinds)) if len(kinds) == 1 else "Unknown"
            if kinds and kinds <= {"Polygon", "MultiPolygon"}:
                gtype = "MultiPolygon"
            elif kinds and kinds <= {"LineString", "MultiLineString"}:
                gtype = "MultiLineString"
            write(path, np.asarray(shapely.to_wkb(np.asarray(geoms, dtype=object)),
                                   dtype=object) if geoms else np.asarray([], dtype=object),
                  fields, cols, geometry_type=gtype if geoms else "Point",
                  crs="EPSG:4326", driver=driver, layer=name,
                  promote_to_multi=gtype.startswith("Multi"))
        return path.read_bytes()


def incidents_file(items: list[dict[str, Any]], kind: str) -> bytes:
    """Incidents (their JSON, located) as ``csv``, ``kml`` or ``gpkg``."""
    if kind == "csv":
        return to_csv(items)
    rows = [flat(i) for i in items]
    geoms = [shapely.Point(r["lon"], r["lat"]) for r in rows]
    if kind == "kml":
        for r in rows:  # KML's own name and description, shown by Google Earth and QGIS
            r.setdefault("Name", r.get("id"))
        return _write([("incidents", geoms, rows)], "LIBKML", ".kml")
    return _write([("incidents", geoms, rows)], "GPKG", ".gpkg")


def geojson_file(collection: dict[str, Any], kind: str) -> bytes:
    """A FeatureCollection with a ``layer`` property as ``geojson``, ``kml`` or ``gpkg``
    (one layer a ``layer`` value, in the order they first appear)."""
    if kind == "geojson":
        return json.dumps(collection, ensure_ascii=False).encode()
    layers: dict[str, tuple[list[Any], list[dict[str, Any]]]] = {}
    for f in collection["features"]:
        props = dict(f.get("properties") or {})
        name = str(props.get("layer", "features"))
        geoms, rows = layers.setdefault(name, ([], []))
        geoms.append(shape(f["geometry"]))
        rows.append(props)
    if kind == "kml":  # one layer, its features named and carrying their ``layer``
        geoms = [g for gs, _ in layers.values() for g in gs]
        rows = [r | {"Name": r.get("name") or r.get("id") or r.get("layer")}
                for _, rs in layers.values() for r in rs]
        return _write([("agreement", geoms, rows)], "LIBKML", ".kml")
    return _write([(n, g, r) for n, (g, r) in layers.items()], "GPKG", ".gpkg")


def coverage_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The coverage per day and sector (``maps.days[].sectors[]`` of ``/coverage``) as
    rows: the day's satellite state and sensor hours with each sector's figures."""
    rows = []
    for d in (doc.get("maps") or {}).get("days", []):
        sat = d.get("satellite") or {}
        for s in d.get("sectors", []):
            rows.append({"date": d["date"], "sector_id": s.get("id"),
                         "sector": s.get("name"), "satellite_state": sat.get("state"),
                         "cloud_cover": sat.get("cloud_cover"),
                         "sensor_hours": (d.get("sensors") or {}).get("hours"),
                         **{k: v for k, v in s.items() if k not in ("id", "name",
                                                                    "satellite")}})
    return rows


def coverage_file(doc: dict[str, Any], kind: str) -> bytes:
    """The coverage as ``csv`` (one row a day and sector), or its GeoJSON layers
    (``sensor_coverage``, ``patrol``, ``satellite``, ``capability``, ``not_heard``,
    ``patrol_swath``, ``not_observed``) as ``geojson``, ``kml`` or ``gpkg``."""
    if kind == "csv":
        rows = coverage_rows(doc)
        buf = io.StringIO()
        cols = list({k: None for r in rows for k in r}) or ["date", "sector_id"]
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in cols])
        return buf.getvalue().encode("utf-8")
    collection = {"type": "FeatureCollection", "features": doc.get("features", [])}
    if kind == "kml":
        for f in collection["features"]:
            p = f.setdefault("properties", {})
            p.setdefault("name", f"{p.get('layer', '')} {p.get('date', '')}".strip())
    return geojson_file(collection, kind)
