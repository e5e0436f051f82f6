"""Geometry an agreement is built from when nobody drew it by hand.

* ``line_of_contact: {derive: ...}``: the edge of one feature of an occupied-area file
  (chosen by name) minus the state border, with the border slivers dropped.
* ``sectors: {admin_grid: ...}``: sectors as unions of administrative cells of a regular
  lon/lat grid (the 0.1 degree oblast grid), clipped to an outline; or
  ``sectors: {geojson: ..., id_property: ..., name_property: ...}``.

Every problem goes to ``errors`` with what to do about it (docs/agreement-format.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import shapely
from shapely.geometry.base import BaseGeometry

from trucewatch.agreement.geojson import read_geojson, valid_geometry
from trucewatch.errors import ConfigError
from trucewatch.geo.crs import crs_for, to_metric, to_wgs84
from trucewatch.model.agreement import Sector

DEFAULT_BORDER_TOLERANCE_KM = 5.0
"""Coarse country outlines and occupied-area polygons from other sources disagree by a few
km along the shared border; 5 km removes the whole Russian-border edge of the real ORDLO."""

Features = list[tuple[BaseGeometry, dict[str, Any]]]
_POLY = ("Polygon", "MultiPolygon")


def _read(spec: Any, base: Path, what: str, errors: list[str]) -> Features:
    return read_geojson(spec, base, what, errors)


def _source(spec: Any) -> str:
    return str(spec) if isinstance(spec, str) else "the inline GeoJSON"


def _path(spec: str, base: Path) -> Path:
    return Path(spec) if Path(spec).is_absolute() else base / spec


def feature_label(props: dict[str, Any], k: int) -> str:
    for key in ("name", "id", "NAME", "ID"):
        if isinstance(props.get(key), str | int) and not isinstance(props.get(key), bool):
            return str(props[key])
    texts = [v for v in props.values() if isinstance(v, str)]
    return texts[0] if texts else f"#{k} (no name property)"


def _labels(feats: Features, limit: int = 20) -> str:
    names = [feature_label(p, k) for k, (_, p) in enumerate(feats)]
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def select_features(feats: Features, wanted: Any, what: str, source: str,
                    errors: list[str]) -> Features:
    """The features named by ``wanted``: a name, a list of names, or '*' for all. A name
    matches a feature when it equals (ignoring case) one of its text or integer
    properties (name, id, ...)."""
    if not feats:
        return []
    if wanted is None:
        if len(feats) > 1:
            errors.append(f"{what}: {source} has {len(feats)} features ({_labels(feats)}); "
                          "choose one with 'feature: NAME' (a value of its name, id or "
                          "another property), a list of names, or \"feature: '*'\" for all")
            return []
        return feats
    if wanted == "*":
        return feats
    names = [wanted] if isinstance(wanted, str | int) else wanted
    if not isinstance(names, list) or not names or not all(
            isinstance(n, str | int) and not isinstance(n, bool) for n in names):
        errors.append(f"{what}: 'feature' must be a name, a list of names or '*' "
                      f"(got {wanted!r})")
        return []
    out: Features = []
    for name in names:
        key = str(name).strip().casefold()
        hits = [(g, p) for g, p in feats if key in {
            str(v).strip().casefold() for v in p.values()
            if isinstance(v, str | int) and not isinstance(v, bool)}]
        if not hits:
            errors.append(f"{what}: no feature named {str(name)!r} in {source}; the features "
                          f"there are: {_labels(feats)} (a name matches any text property "
                          "such as name or id)")
        out += [h for h in hits if not any(h is o for o in out)]
    return out


def _polygons(feats: Features, what: str, source: str, errors: list[str]) -> list[BaseGeometry]:
    polys = [g for g, _ in feats if g.geom_type in _POLY and not g.is_empty]
    if feats and not polys:
        kinds = sorted({g.geom_type for g, _ in feats})
        errors.append(f"{what}: the chosen feature(s) of {source} hold no polygons (got "
                      f"{', '.join(kinds)}); it must be a Polygon or MultiPolygon area"
                      + ("; to give the line itself write line_of_contact: {geojson: FILE}"
                         if what == "occupied_area" else ""))
    elif len(polys) < len(feats):
        errors.append(f"{what}: {len(feats) - len(polys)} of the chosen features of "
                      f"{source} are not polygons; choose only area features")
        return []
    return polys


def _km(d: dict[str, Any], key: str, default: float, what: str, errors: list[str],
        allow_zero: bool = False) -> float | None:
    v = d.get(key, default)
    if not isinstance(v, int | float) or isinstance(v, bool) or v < 0 or (v == 0 and
                                                                         not allow_zero):
        errors.append(f"{what}: '{key}' must be a number of km {'>= 0' if allow_zero else '> 0'}"
                      f" (got {v!r})")
        return None
    return float(v)


def _bounds(g: BaseGeometry) -> str:
    x0, y0, x1, y1 = g.bounds
    return f"lon {x0:.2f}..{x1:.2f}, lat {y0:.2f}..{y1:.2f}"


def derive_line(d: Any, base: Path, requested_crs: str, errors: list[str],
                warnings: list[str]) -> tuple[BaseGeometry | None, BaseGeometry | None,
                                              BaseGeometry | None]:
    """The line of contact, occupied area and state area (WGS84) of a ``derive`` block."""
    what = "line_of_contact.derive"
    if not isinstance(d, dict):
        errors.append(f"{what}: expected {{occupied_area: FILE, feature: NAME, state_border: "
                      f"FILE}} (got {d!r})")
        return None, None, None
    for key in ("occupied_area", "state_border"):
        if d.get(key) is None:
            errors.append(f"{what}: '{key}' is missing (a GeoJSON file of polygons)")
    unknown = sorted(set(d) - {"occupied_area", "feature", "state_border",
                               "border_tolerance_km", "min_segment_km"})
    if unknown:
        errors.append(f"{what}: unknown key(s) {', '.join(map(str, unknown))}; allowed: "
                      "occupied_area, feature, state_border, border_tolerance_km, "
                      "min_segment_km")
    tol_km = _km(d, "border_tolerance_km", DEFAULT_BORDER_TOLERANCE_KM, what, errors)
    min_km = _km(d, "min_segment_km", 2 * (tol_km or DEFAULT_BORDER_TOLERANCE_KM), what,
                 errors, allow_zero=True)
    if d.get("occupied_area") is None or d.get("state_border") is None:
        return None, None, None
    occ_src, brd_src = _source(d["occupied_area"]), _source(d["state_border"])
    occ_feats = select_features(_read(d["occupied_area"], base, "occupied_area", errors),
                                d.get("feature"), "occupied_area", occ_src, errors)
    occ = _polygons(occ_feats, "occupied_area", occ_src, errors)
    brd = _polygons(_read(d["state_border"], base, "state_border", errors), "state_border",
                    brd_src, errors)
    if not occ or not brd or tol_km is None or min_km is None:
        return None, None, None
    occupied = shapely.make_valid(shapely.union_all(occ))
    border = shapely.make_valid(shapely.union_all(brd))
    try:
        crs0 = crs_for(occupied, requested_crs)
    except ConfigError as err:
        errors.append(f"'crs': {err}")
        return None, None, None
    occ_m, brd_m = to_metric(occupied, crs0), to_metric(border, crs0)
    fix = ("check that both files are longitude, latitude (WGS84) and that state_border is "
           "the outline of the country the occupied area lies in")
    if not occ_m.intersects(brd_m):
        errors.append(f"{what}: the occupied area ({occ_src}, {_bounds(occupied)}) does not "
                      f"overlap the state border ({brd_src}, {_bounds(border)}) at all; {fix}")
        return None, None, None
    outside = occ_m.difference(brd_m).area / max(occ_m.area, 1e-9)
    if outside > 0.05:
        warnings.append(f"{what}: {outside:.0%} of the occupied area lies outside the state "
                        f"border; {fix}")
    ring = occ_m.boundary
    # the front is the occupied area's edge that is not the state border (or coast)
    edge = ring.difference(brd_m.boundary.buffer(tol_km * 1000))
    if edge.length > ring.length * (1 - 1e-6):
        errors.append(f"{what}: the occupied area does not meet the state border: none of its "
                      f"edge lies within border_tolerance_km ({tol_km:g} km) of {brd_src}, so "
                      "its whole outline would become the front; raise border_tolerance_km, "
                      f"{fix}, or give the line itself with line_of_contact: {{geojson: FILE}}")
        return None, None, None
    parts = shapely.get_parts(shapely.line_merge(edge)) if not edge.is_empty else np.array([])
    lengths = shapely.length(parts) if len(parts) else np.array([])
    keep, drop = parts[lengths >= min_km * 1000], lengths[lengths < min_km * 1000]
    if len(keep) == 0:
        errors.append(f"{what}: the occupied area lies entirely on the state border (nothing "
                      f"longer than min_segment_km = {min_km:g} km is left as a front line); "
                      "lower border_tolerance_km or min_segment_km, or check the files")
        return None, occupied, border
    if len(drop):
        warnings.append(f"line_of_contact: {len(drop)} piece(s) along the state border shorter "
                        f"than min_segment_km ({min_km:g} km, {drop.sum() / 1000:.1f} km in all) "
                        "dropped as border slivers")
    line_m = keep[0] if len(keep) == 1 else shapely.multilinestrings(list(keep))
    return to_wgs84(line_m, crs0), occupied, border


# sectors -------------------------------------------------------------------------------

def _polygonal(g: BaseGeometry) -> BaseGeometry:
    parts = [p for p in shapely.get_parts(shapely.get_parts(g))
             if p.geom_type == "Polygon" and p.area > 0]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def build_sectors(spec: Any, base: Path, errors: list[str]) -> list[Sector]:
    """Sectors from ``{geojson: FILE, id_property, name_property}``, a bare GeoJSON (path or
    object) or ``{admin_grid: CSV, id_column, groups, rest, clip}``."""
    if isinstance(spec, dict) and "admin_grid" in spec:
        return _grid_sectors(spec, base, errors)
    if isinstance(spec, dict) and spec.get("type") is None and "geojson" not in spec:
        errors.append("sectors: give {geojson: FILE, id_property: id, name_property: name} or "
                      "{admin_grid: FILE.csv, id_column: COLUMN, groups: {SECTOR: [ID, ...]}}")
        return []
    wrapped = isinstance(spec, dict) and "geojson" in spec
    opts: dict[str, Any] = spec if wrapped else {}
    id_prop, name_prop = opts.get("id_property"), opts.get("name_property")
    out: list[Sector] = []

    for k, (g, props) in enumerate(_read(opts["geojson"] if wrapped else spec, base, "sectors",
                                         errors)):
        if id_prop is not None and props.get(id_prop) is None:
            errors.append(f"sectors: feature {k} has no property {id_prop!r} (id_property); its "
                          f"properties: {', '.join(map(str, props)) or 'none'}")
            continue
        sid = str(props.get(id_prop or "id", f"S{k + 1}"))
        name = str(props.get(name_prop or "name", props.get("name", sid)))
        if g.geom_type not in _POLY:
            errors.append(f"sector {sid}: must be a polygon (got {g.geom_type})")
        elif valid_geometry(g, f"sector {sid}", errors):
            out.append(Sector(id=sid, name=name, geometry=g))
    return out


def _column(df: pl.DataFrame, given: Any, choices: tuple[str, ...]) -> str | None:
    if given is not None:
        return str(given) if str(given) in df.columns else None
    return next((c for c in df.columns if c.strip().casefold() in choices), None)


def _grid_sectors(spec: dict[str, Any], base: Path, errors: list[str]) -> list[Sector]:
    what = "sectors.admin_grid"
    src = spec["admin_grid"]
    if not isinstance(src, str):
        errors.append(f"{what}: expected a CSV path (got {src!r})")
        return []
    path = _path(src, base)
    try:
        df = pl.read_csv(path, infer_schema_length=0)  # every column as text
    except FileNotFoundError:
        errors.append(f"{what}: file {os.path.normpath(path)} not found (a relative path is "
                      "read from the agreement file's folder)")
        return []
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as err:
        errors.append(f"{what}: {path} is not a readable CSV ({err})")
        return []
    cols = ", ".join(df.columns)
    id_col = spec.get("id_column")
    if id_col is None:
        errors.append(f"{what}: 'id_column' is missing: name the column of {path.name} that "
                      f"holds the administrative ids (columns: {cols})")
        return []
    if str(id_col) not in df.columns:
        errors.append(f"{what}: {path.name} has no column {id_col!r} (id_column); its "
                      f"columns: {cols}")
        return []
    lon_col = _column(df, spec.get("lon_column"), ("longitude", "lon", "lng", "x"))
    lat_col = _column(df, spec.get("lat_column"), ("latitude", "lat", "y"))
    if lon_col is None or lat_col is None:
        errors.append(f"{what}: {path.name} needs cell-centre longitude and latitude columns "
                      "(LONGITUDE/LATITUDE, lon/lat, or name them with lon_column and "
                      f"lat_column); its columns: {cols}")
        return []
    cell = spec.get("cell_deg", 0.1)
    if not isinstance(cell, int | float) or isinstance(cell, bool) or not 0 < cell <= 10:
        errors.append(f"{what}: 'cell_deg' must be the cell size in degrees, e.g. 0.1 "
                      f"(got {cell!r})")
        return []
    df = df.select(pl.col(lon_col).str.strip_chars().cast(pl.Float64, strict=False).alias("x"),
                   pl.col(lat_col).str.strip_chars().cast(pl.Float64, strict=False).alias("y"),
                   pl.col(str(id_col)).str.strip_chars().alias("id"))
    bad = df.filter(pl.col("x").is_null() | pl.col("y").is_null() | pl.col("id").is_null()
                    | ~pl.col("x").is_between(-180, 180) | ~pl.col("y").is_between(-90, 90))
    if bad.height:
        errors.append(f"{what}: {bad.height} row(s) of {path.name} lack a valid longitude, "
                      "latitude or id")
        return []
    x, y = df["x"].to_numpy() / cell, df["y"].to_numpy() / cell
    ix, iy = np.rint(x), np.rint(y)
    if df.height and max(np.abs(x - ix).max(), np.abs(y - iy).max()) > 0.01:
        errors.append(f"{what}: the cell centres of {path.name} are not on a {cell:g} degree "
                      "grid (centres at multiples of cell_deg, e.g. 48.3, 37.5 for 0.1); set "
                      "cell_deg to the grid's cell size")
        return []
    ids = df["id"].to_numpy().astype(str)
    known = sorted(set(ids.tolist()))
    groups = spec.get("groups")
    if not isinstance(groups, dict) or not groups:
        errors.append(f"{what}: 'groups' must map each sector id to its administrative ids, "
                      f"e.g. groups: {{donetsk: [{known[0] if known else 'ID'}]}}")
        return []
    members: list[tuple[str, str, list[str]]] = []
    owner: dict[str, str] = {}
    for sid, g in groups.items():
        name: Any = sid
        if isinstance(g, dict):
            name, g = g.get("name", sid), g.get("ids")
        lst = [g] if isinstance(g, str | int) and not isinstance(g, bool) else g
        if not isinstance(lst, list) or not lst:
            errors.append(f"sectors.groups.{sid}: give a list of ids of column {id_col} (or "
                          "{ids: [...], name: ...})")
            continue
        wanted = [str(v).strip() for v in lst]
        missing = [v for v in wanted if v not in set(known)]
        if missing:
            errors.append(f"sectors.groups.{sid}: {', '.join(missing)} not found in column "
                          f"{id_col} of {path.name} (ids there: {', '.join(known[:40])}"
                          f"{', ...' if len(known) > 40 else ''})")
        for v in wanted:
            if v in owner and owner[v] != str(sid):
                errors.append(f"sectors.groups: {v} is in both {owner[v]} and {sid}; a place "
                              "must belong to one sector")
            owner.setdefault(v, str(sid))
        members.append((str(sid), str(name), wanted))
    rest = spec.get("rest")
    if rest is not None:
        rid, rname = (rest.get("id"), rest.get("name")) if isinstance(rest, dict) else (rest,
                                                                                       None)
        if not isinstance(rid, str | int) or isinstance(rid, bool):
            errors.append(f"sectors.rest: give the id of the sector of all other cells (or "
                          f"{{id: ..., name: ...}}; got {rest!r})")
        elif str(rid) in {m[0] for m in members}:
            errors.append(f"sectors.rest: id {rid!r} is also a group")
        else:
            others = sorted(set(known) - set(owner))
            members.append((str(rid), str(rname or rid), others))
    clip: BaseGeometry | None = None
    if spec.get("clip") is not None:
        polys = _polygons(_read(spec["clip"], base, "sectors.clip", errors), "sectors.clip",
                          _source(spec["clip"]), errors)
        if not polys:
            return []
        clip = shapely.make_valid(shapely.union_all(polys))
    if errors:
        return []
    # each cell is a box around its centre; edges from the integer index so that
    # neighbouring cells share them exactly and their union has no slivers
    boxes = shapely.box((ix - 0.5) * cell, (iy - 0.5) * cell, (ix + 0.5) * cell,
                        (iy + 0.5) * cell)
    out: list[Sector] = []
    for sid, name, wanted in members:
        geom = shapely.union_all(boxes[np.isin(ids, wanted)])
        if clip is not None:
            geom = geom.intersection(clip)
        geom = _polygonal(shapely.simplify(geom, 0))
        if geom.is_empty:
            errors.append(f"sector {sid}: no area left" + (
                f" after clipping to {_source(spec['clip'])}; does the outline cover the grid "
                "(both longitude, latitude)?" if clip is not None else ""))
            continue
        out.append(Sector(id=sid, name=name, geometry=geom,
                          extra={"admin_grid": path.name, "admin_ids": wanted}))
    return out
