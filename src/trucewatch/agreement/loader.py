"""Read, validate and build an agreement file.

The YAML names the entry into force, the line of contact (GeoJSON lines, or
derived from an occupied-area polygon minus the state border), per-side buffer
widths, per-weapon-class withdrawal distances, protected sites and sectors.
Zones are built in a metric CRS and reported in km^2. Every problem found is
collected, so one run of ``trucewatch agreement check`` lists them all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import yaml
from shapely.geometry.base import BaseGeometry

from trucewatch.agreement.areas import build_sectors, derive_line
from trucewatch.agreement.geojson import read_geojson, valid_geometry
from trucewatch.errors import AgreementError
from trucewatch.geo.crs import crs_for, to_metric, to_wgs84
from trucewatch.model.agreement import (
    EVIDENCE_CLASSES,
    EVIDENCE_ZONE_KINDS,
    VERDICTS,
    Agreement,
    DisengagementArea,
    ProtectedSite,
    Sector,
    Side,
    TrainingArea,
    Zone,
    buffer_zone_id,
    disengagement_zone_id,
    site_zone_id,
    withdrawal_zone_id,
)
from trucewatch.model.enums import ZoneKind
from trucewatch.model.serialization import parse_time
from trucewatch.model.times import EARLIEST, LATEST_AGREEMENT_TIME

FORMAT = "trucewatch-agreement"
# an agreement is a short text (its lines and areas are usually GeoJSON files beside it);
# a file beyond these limits is refused before it is parsed
MAX_AGREEMENT_BYTES = 4 * 2**20
MAX_YAML_DEPTH = 64  # nested collections (inline GeoJSON needs fewer than 10)
MAX_YAML_NODES = 2_000_000  # values once every alias is expanded (an alias bomb: billions)
# protected_sites kinds read as disengagement areas (the replay's files write the first)
DISENGAGEMENT_KINDS = ("disengagement_area", "disengagement")


@dataclass
class CheckReport:
    agreement: Agreement | None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _crossing(lines: list[BaseGeometry]) -> tuple[float, float] | None:
    """Where the given lines cross themselves or one another (lon, lat), if they do. Lines
    that meet at their ends, or where one line ends on another, are fine."""
    for g in lines:
        for part in shapely.get_parts(g):
            if not part.is_simple:
                return _self_crossing(part)
    parts = [p for g in lines for p in shapely.get_parts(g)]
    if len(parts) > 1:
        a, b = shapely.STRtree(parts).query(parts, predicate="crosses")
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            if x < y:
                p = parts[x].intersection(parts[y]).representative_point()
                return float(p.x), float(p.y)
    return None


def _self_crossing(line: BaseGeometry) -> tuple[float, float]:
    """A point where a non-simple LineString meets itself."""
    xy = shapely.get_coordinates(line)
    xy = xy[np.r_[True, np.any(np.diff(xy, axis=0) != 0, axis=1)]]  # no repeated points
    if len(xy) < 2:
        return float(xy[0, 0]), float(xy[0, 1])
    segs = shapely.linestrings(np.stack([xy[:-1], xy[1:]], axis=1))
    closed = len(xy) > 3 and bool(np.all(xy[0] == xy[-1]))
    a, b = shapely.STRtree(segs).query(segs, predicate="intersects")
    n = len(segs)
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        if x >= y:
            continue
        ix = segs[x].intersection(segs[y])
        if ix.is_empty:
            continue
        adjacent = y == x + 1 or (closed and x == 0 and y == n - 1)
        if not adjacent or ix.geom_type != "Point":  # adjacent ones share a vertex only
            p = ix.representative_point()
            return float(p.x), float(p.y)
    return float(xy[0, 0]), float(xy[0, 1])  # a degenerate case: say where the line starts


def _number(data: dict[str, Any], key: str, what: str, errors: list[str],
            positive: bool = True) -> float | None:
    v = data.get(key)
    if not isinstance(v, int | float) or isinstance(v, bool):
        errors.append(f"{what}: '{key}' must be a number (got {v!r})")
        return None
    if positive and v <= 0:
        errors.append(f"{what}: '{key}' must be > 0 (got {v})")
        return None
    return float(v)


def _disc_problem(lat: float, lon: float, radius_m: float) -> str | None:
    """What is wrong with a disc (a protected site, a disengagement area), if anything."""
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return "lat/lon out of range"
    if radius_m <= 0:
        return "radius_m must be > 0"
    return None


def check_agreement(path: Path | str) -> CheckReport:
    """Load an agreement and report every problem; never raises for content errors."""
    try:
        return _check(Path(path))
    except (TypeError, AttributeError, KeyError, ValueError, IndexError, OverflowError,
            RecursionError) as err:
        # a value of the wrong kind somewhere the checks above did not foresee
        return CheckReport(None, [f"{path}: malformed agreement ({type(err).__name__}: "
                                  f"{err}); compare it with docs/agreement-format.md"])


_TEXT_KEYS = re.compile(r"^(name|id):[ \t]+([^'\"\n][^\n]*:[ \t][^\n]*?)[ \t]*$", re.M)


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with bounds: at most MAX_YAML_DEPTH nested collections, at most
    MAX_YAML_NODES values once aliases are expanded (each node's expanded size is summed
    while composing, so an alias bomb is refused after a few hundred nodes, before anything
    is built from it), and no alias inside its own anchor (a recursive document)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._size: dict[int, int] = {}
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            node = super().compose_node(parent, index)
            if id(node) not in self._size:
                raise yaml.composer.ComposerError(
                    None, None, "a recursive alias (an anchor used inside itself) is not "
                    "allowed in an agreement", mark)
            return node
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"values nested more than {MAX_YAML_DEPTH} levels deep",
                self.peek_event().start_mark)  # type: ignore[no-untyped-call]
        node = super().compose_node(parent, index)
        self._depth -= 1
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(self._size[id(c)] for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(self._size[id(k)] + self._size[id(v)] for k, v in node.value)
        if size > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"the document expands to more than {MAX_YAML_NODES:,} values "
                "through its anchors and aliases; write the values out instead",
                getattr(node, "start_mark", None))
        self._size[id(node)] = size
        return node


def _safe_load(text: str) -> Any:
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _read_yaml(text: str, warnings: list[str]) -> Any:
    """YAML, forgiving one common slip: a top-level ``name:`` or ``id:`` whose text holds
    ": " (``name: placebo: same dates``), which YAML takes for a nested mapping. Such a
    value is read as the text it is, with a warning; anything else stays an error."""
    try:
        return _safe_load(text)
    except yaml.YAMLError:
        fixed, n = _TEXT_KEYS.subn(lambda m: f"{m[1]}: {json.dumps(m[2])}", text)
        if not n:
            raise
        doc = _safe_load(fixed)  # still an error if that was not the only problem
        warnings.append("a top-level name/id holding ': ' was read as text; quote it "
                        "(name: \"...\") to make the file valid YAML")
        return doc


def _check(path: Path) -> CheckReport:
    errors: list[str] = []
    warnings: list[str] = []
    try:
        size = path.stat().st_size
        if size > MAX_AGREEMENT_BYTES:
            return CheckReport(None, [f"{path}: {size:,} bytes, larger than the "
                                      f"{MAX_AGREEMENT_BYTES:,} an agreement may have; keep "
                                      "large geometries in GeoJSON files beside it"])
        doc = _read_yaml(path.read_text(encoding="utf-8"), warnings)
    except FileNotFoundError:
        return CheckReport(None, [f"{path}: no such file"])
    except UnicodeDecodeError as err:
        return CheckReport(None, [f"{path}: not UTF-8 text (byte {err.start}); save the file "
                                  "as UTF-8"])
    except OSError as err:
        return CheckReport(None, [f"{path}: cannot read ({err.strerror})"])
    except (yaml.YAMLError, ValueError, TypeError) as err:
        # PyYAML raises ValueError for impossible dates (2026-13-01) while constructing
        return CheckReport(None, [f"{path}: not valid YAML ({err})"])
    if not isinstance(doc, dict):
        return CheckReport(None, [f"{path}: expected a mapping at the top level"])
    if doc.get("format") != FORMAT:
        errors.append(f"'format' must be '{FORMAT}' (got {doc.get('format')!r})")
    base = path.parent

    eif: datetime | None = None
    raw_eif = doc.get("entry_into_force")
    try:
        eif = parse_time(raw_eif if isinstance(raw_eif, str) else raw_eif.isoformat())  # type: ignore[union-attr]
    except AttributeError:
        errors.append("'entry_into_force' is missing; write it as 2026-04-20T00:00:00Z")
    except ValueError as err:
        errors.append(f"'entry_into_force': {err}")
    if eif is not None and not EARLIEST <= eif < LATEST_AGREEMENT_TIME:
        errors.append(f"'entry_into_force' {eif.isoformat()} is not between "
                      f"{EARLIEST.date()} and {LATEST_AGREEMENT_TIME.date()}")
        eif = None

    # line of contact ------------------------------------------------------
    loc_spec = doc.get("line_of_contact")
    loc: BaseGeometry | None = None
    occupied: BaseGeometry | None = None
    border: BaseGeometry | None = None
    if not isinstance(loc_spec, dict):
        errors.append("'line_of_contact' is missing: give {geojson: FILE} or "
                      "{derive: {occupied_area: FILE, state_border: FILE}}")
    elif "geojson" in loc_spec:
        geoms = [g for g, _ in read_geojson(loc_spec["geojson"], base, "line_of_contact", errors)]
        lines = [g for g in geoms if g.geom_type in ("LineString", "MultiLineString")]
        if len(lines) != len(geoms):
            errors.append("line_of_contact: only LineString/MultiLineString features allowed")
        if lines:
            try:
                loc = shapely.line_merge(shapely.union_all(lines))
            except shapely.errors.GEOSException as err:
                errors.append(f"line_of_contact: the lines cannot be joined ({err})")
                loc = None
            if loc is not None and valid_geometry(loc, "line_of_contact", errors):
                where = _crossing(lines)
                if where is not None:
                    errors.append(f"line_of_contact crosses itself at lon {where[0]:.5g}, lat "
                                  f"{where[1]:.5g}: a line of contact must not cross itself "
                                  "or another of its lines (they may meet at their ends)")
    elif "derive" in loc_spec:
        # the occupied area's edge minus the state border, slivers dropped (areas.py)
        loc, occupied, border = derive_line(loc_spec["derive"], base, doc.get("crs", "auto"),
                                            errors, warnings)
        if loc is not None and not loc.is_empty:
            valid_geometry(loc, "line_of_contact (derived)", errors)  # e.g. across the antimeridian
    else:
        errors.append("line_of_contact: give 'geojson' or 'derive'")

    crs = "EPSG:3035"
    if loc is not None and not loc.is_empty:
        try:
            crs = crs_for(loc, doc.get("crs", "auto"))
        except Exception as err:
            errors.append(f"'crs': {err}")

    # sides, withdrawal ----------------------------------------------------
    sides: list[Side] = []
    # a line derived from an occupied area has government/occupied sides, even when the
    # derivation failed (its own error says why; no second, false one about the sides)
    derived = isinstance(loc_spec, dict) and "derive" in loc_spec and "geojson" not in loc_spec
    expected_sides = ({"government", "occupied"} if occupied is not None or derived
                      else {"left", "right"})
    for k, s in enumerate(doc.get("sides") or []):
        what = f"sides[{k}]"
        if not isinstance(s, dict) or "id" not in s:
            errors.append(f"{what}: needs id, name and buffer_km")
            continue
        if s["id"] not in expected_sides:
            errors.append(f"{what}: id must be one of {sorted(expected_sides)} "
                          f"(got {s['id']!r}); 'left'/'right' are relative to the line's "
                          "direction, 'government'/'occupied' to the occupied area")
        w = _number(s, "buffer_km", what, errors)
        sides.append(Side(id=str(s["id"]), name=str(s.get("name", s["id"])), buffer_km=w or 0.0))
    if {s.id for s in sides} != expected_sides:
        errors.append(f"'sides' must define exactly {sorted(expected_sides)}")
    withdrawal: dict[str, float] = {}
    for cls_name, dist in (doc.get("withdrawal_km") or {}).items():
        v = _number({"d": dist}, "d", f"withdrawal_km.{cls_name}", errors)
        if v is not None:
            withdrawal[str(cls_name)] = v
            for s in sides:
                if s.buffer_km and v < s.buffer_km:
                    warnings.append(f"withdrawal_km.{cls_name} ({v:g} km) is narrower than "
                                    f"the {s.id} buffer zone ({s.buffer_km:g} km)")

    # protected sites, sectors ---------------------------------------------
    sites: list[ProtectedSite] = []
    # a protected_sites entry of kind disengagement_area is a disengagement area (a zone
    # kind of its own), like the entries of disengagement_areas
    dis_items: list[tuple[str, Any]] = []
    for k, s in enumerate(doc.get("protected_sites") or []):
        what = f"protected_sites[{k}]"
        if isinstance(s, dict) and s.get("kind") in DISENGAGEMENT_KINDS:
            dis_items.append((what, s))
            continue
        try:
            site = ProtectedSite(id=str(s["id"]), name=str(s.get("name", s["id"])),
                                 kind=str(s.get("kind", "civilian")), lat=float(s["lat"]),
                                 lon=float(s["lon"]), radius_m=float(s["radius_m"]))
        except (KeyError, TypeError, ValueError) as err:
            errors.append(f"{what}: needs id, lat, lon, radius_m ({err})")
            continue
        problem = _disc_problem(site.lat, site.lon, site.radius_m)
        if problem:
            errors.append(f"{what} ({site.id}): {problem}")
        else:
            sites.append(site)
    training = _training_areas(doc.get("live_fire_training") or [], errors)
    dis_spec = doc.get("disengagement_areas") or []
    if not isinstance(dis_spec, list):
        errors.append("'disengagement_areas' must be a list of {id, name, lat, lon, radius_m} "
                      "or {id, name, geojson: FILE}")
        dis_spec = []
    disengagement = _disengagement_areas(
        dis_items + [(f"disengagement_areas[{k}]", d) for k, d in enumerate(dis_spec)],
        base, errors)
    evidence_rules = _evidence_rules(doc.get("evidence_rules"), errors)
    sectors: list[Sector] = []
    sec_spec = doc.get("sectors")
    if sec_spec is not None:  # GeoJSON features or administrative-grid cells (areas.py)
        sectors = build_sectors(sec_spec, base, errors)
    for dup in {s.id for s in sectors if [x.id for x in sectors].count(s.id) > 1}:
        errors.append(f"sector id {dup!r} is used more than once")
    for dup in {s.id for s in sites if [x.id for x in sites].count(s.id) > 1}:
        errors.append(f"protected site id {dup!r} is used more than once")

    zones: list[Zone] = []
    if loc is not None and not loc.is_empty and not errors:
        try:
            zones = _build_zones(loc, occupied, border, sides, withdrawal, sites, crs,
                                 disengagement=disengagement)
            _check_sectors(sectors, zones, crs, errors, warnings)
            _check_training(training, zones, crs, errors)
        except shapely.errors.GEOSException as err:
            errors.append(f"zones could not be built from these geometries ({err})")
    if errors or eif is None or loc is None:
        return CheckReport(None, errors, warnings)
    agreement = Agreement(
        id=str(doc.get("id", path.stem)), name=str(doc.get("name", path.stem)),
        entry_into_force=eif, line_of_contact=loc, sides=sides, withdrawal_km=withdrawal,
        protected_sites=sites, sectors=sectors, zones=zones, crs=crs,
        grace_period_hours=float(doc.get("grace_period_hours", 0.0)),
        training_areas=training, disengagement_areas=disengagement,
        evidence_rules=evidence_rules,
    )
    return CheckReport(agreement, errors, warnings)


def _side_regions(loc_m: BaseGeometry, occ_m: BaseGeometry | None, brd_m: BaseGeometry | None,
                  reach_m: float) -> dict[str, BaseGeometry]:
    if occ_m is not None:
        gov = (brd_m.difference(occ_m) if brd_m is not None
               else loc_m.buffer(reach_m).difference(occ_m))
        return {"occupied": occ_m, "government": gov}
    # single-sided buffers: positive distance is the left of the line's direction
    parts = list(getattr(loc_m, "geoms", [loc_m]))
    left = shapely.union_all([p.buffer(reach_m, single_sided=True) for p in parts])
    right = shapely.union_all([p.buffer(-reach_m, single_sided=True) for p in parts])
    return {"left": left, "right": right.difference(left)}


def _build_zones(loc: BaseGeometry, occupied: BaseGeometry | None, border: BaseGeometry | None,
                 sides: list[Side], withdrawal: dict[str, float], sites: list[ProtectedSite],
                 crs: str, disengagement: list[DisengagementArea] | None = None) -> list[Zone]:
    loc_m = to_metric(loc, crs)
    occ_m = to_metric(occupied, crs) if occupied is not None else None
    brd_m = to_metric(border, crs) if border is not None else None
    reach = 1000 * (max([*withdrawal.values(), *(s.buffer_km for s in sides)]) + 5)
    regions = _side_regions(loc_m, occ_m, brd_m, reach)
    zones: list[Zone] = []

    def add(zid: str, kind: ZoneKind, g_m: BaseGeometry, **kw: Any) -> None:
        g_m = shapely.make_valid(g_m)
        zones.append(Zone(id=zid, kind=kind, geometry=to_wgs84(g_m, crs),
                          area_km2=round(g_m.area / 1e6, 3), **kw))

    for s in sides:
        add(buffer_zone_id(s.id), ZoneKind.BUFFER,
            loc_m.buffer(s.buffer_km * 1000).intersection(regions[s.id]),
            side=s.id, distance_km=s.buffer_km)
    for cls_name, d in sorted(withdrawal.items()):
        for s in sides:
            add(withdrawal_zone_id(cls_name, s.id), ZoneKind.WITHDRAWAL,
                loc_m.buffer(d * 1000).intersection(regions[s.id]),
                side=s.id, weapon_class=cls_name, distance_km=d)
    for site in sites:
        pt = to_metric(shapely.Point(site.lon, site.lat), crs)
        add(site_zone_id(site.id), ZoneKind.PROTECTED_SITE, pt.buffer(site.radius_m),
            distance_km=site.radius_m / 1000)
    for area in disengagement or []:
        g_m = (to_metric(area.geometry, crs) if area.geometry is not None else
               to_metric(shapely.Point(area.lon, area.lat), crs).buffer(area.radius_m))
        add(disengagement_zone_id(area.id), ZoneKind.DISENGAGEMENT, g_m,
            distance_km=area.radius_m / 1000 if area.geometry is None else None)
    return zones


def _check_sectors(sectors: list[Sector], zones: list[Zone], crs: str, errors: list[str],
                   warnings: list[str]) -> None:
    if not sectors:
        warnings.append("no sectors: counts will not be broken down by sector")
        return
    geoms = [to_metric(s.geometry, crs) for s in sectors]
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        if x < y:
            overlap = geoms[x].intersection(geoms[y]).area / 1e6
            if overlap > 0.01:
                errors.append(f"sectors {sectors[x].id} and {sectors[y].id} overlap by "
                              f"{overlap:.2f} km2; a place must belong to one sector")
    covered = shapely.union_all(geoms)
    for z in zones:
        if z.kind == ZoneKind.BUFFER:
            zm = to_metric(z.geometry, crs)
            outside = zm.difference(covered).area / 1e6
            if zm.area > 0 and outside / (zm.area / 1e6) > 0.01:
                warnings.append(f"{outside:.1f} km2 of zone {z.id} lies in no sector")


def _training_areas(items: list[Any], errors: list[str]) -> list[TrainingArea]:
    out = []
    for k, t in enumerate(items):
        what = f"live_fire_training[{k}]"
        try:
            windows = [(parse_time(str(w["start"])), parse_time(str(w["end"])))
                       for w in t.get("windows", [])]
            area = TrainingArea(id=str(t["id"]), name=str(t.get("name", t["id"])),
                                lat=float(t["lat"]), lon=float(t["lon"]),
                                radius_m=float(t["radius_m"]), windows=windows)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            errors.append(f"{what}: needs id, lat, lon, radius_m and windows of start/end "
                          f"UTC times ({err})")
            continue
        if any(b <= a for a, b in area.windows):
            errors.append(f"{what} ({area.id}): a window ends before it starts")
        elif any(not EARLIEST <= t < LATEST_AGREEMENT_TIME for w in area.windows for t in w):
            errors.append(f"{what} ({area.id}): a window is not between {EARLIEST.date()} "
                          f"and {LATEST_AGREEMENT_TIME.date()}")
        elif not area.windows:
            errors.append(f"{what} ({area.id}): give at least one notified window")
        else:
            out.append(area)
    return out


def _disengagement_areas(items: list[tuple[str, Any]], base: Path,
                         errors: list[str]) -> list[DisengagementArea]:
    """Disengagement areas: {id, name, lat, lon, radius_m} discs or {id, name, geojson}
    polygons (a path relative to the YAML file, or inline GeoJSON)."""
    out: list[DisengagementArea] = []
    for what, d in items:
        if not isinstance(d, dict) or "id" not in d:
            errors.append(f"{what}: a disengagement area needs id, name and either lat, lon, "
                          "radius_m or geojson")
            continue
        aid, name = str(d["id"]), str(d.get("name", d["id"]))
        if "geojson" in d:
            geoms = [g for g, _ in read_geojson(d["geojson"], base, f"{what} ({aid})", errors)]
            polys = [g for g in geoms if g.geom_type in ("Polygon", "MultiPolygon")]
            if len(polys) != len(geoms):
                errors.append(f"{what} ({aid}): geojson must hold Polygon/MultiPolygon features")
                continue
            if not polys:
                continue
            g = shapely.union_all(polys)
            if not valid_geometry(g, f"{what} ({aid})", errors):
                continue
            p = g.representative_point()
            out.append(DisengagementArea(id=aid, name=name, lat=p.y, lon=p.x, geometry=g))
            continue
        try:
            area = DisengagementArea(id=aid, name=name, lat=float(d["lat"]),
                                     lon=float(d["lon"]), radius_m=float(d["radius_m"]))
        except (KeyError, TypeError, ValueError) as err:
            errors.append(f"{what} ({aid}): needs lat, lon, radius_m or geojson ({err})")
            continue
        problem = _disc_problem(area.lat, area.lon, area.radius_m)
        if problem:
            errors.append(f"{what} ({aid}): {problem}")
        else:
            out.append(area)
    ids = [a.id for a in out]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        errors.append(f"disengagement area id {dup!r} is used more than once")
    return out


def _evidence_rules(spec: Any, errors: list[str]) -> dict[str, dict[str, str]]:
    """``evidence_rules``: zone kind -> evidence class -> verdict, each checked against the
    known vocabularies. Only what the file declares is kept: entries not given fall back to
    DEFAULT_EVIDENCE_RULES (:meth:`Agreement.evidence_rule`)."""
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        errors.append("'evidence_rules' must map zone kind -> evidence class -> verdict, e.g. "
                      "{withdrawal: {fire: none}}")
        return {}
    out: dict[str, dict[str, str]] = {}
    for kind, per_class in spec.items():
        if kind not in EVIDENCE_ZONE_KINDS:
            errors.append(f"evidence_rules: unknown zone kind {kind!r}; use one of "
                          f"{', '.join(EVIDENCE_ZONE_KINDS)}")
            continue
        if not isinstance(per_class, dict):
            errors.append(f"evidence_rules.{kind}: expected a mapping of evidence class -> "
                          f"verdict (got {per_class!r})")
            continue
        for klass, verdict in per_class.items():
            if klass not in EVIDENCE_CLASSES:
                errors.append(f"evidence_rules.{kind}: unknown evidence class {klass!r}; use "
                              f"one of {', '.join(EVIDENCE_CLASSES)}")
            elif verdict not in VERDICTS:
                # YAML reads a bare `none` as a string, `null`/`~` as None, `no` as False
                errors.append(f"evidence_rules.{kind}.{klass}: unknown verdict {verdict!r}; "
                              f"use one of {', '.join(VERDICTS)}")
            else:
                out.setdefault(str(kind), {})[str(klass)] = str(verdict)
    return out


def _check_training(areas: list[TrainingArea], zones: list[Zone], crs: str,
                    errors: list[str]) -> None:
    """Training is notified away from the line: a range inside a buffer zone is an error."""
    for t in areas:
        disc = to_metric(shapely.Point(t.lon, t.lat), crs).buffer(t.radius_m)
        for z in zones:
            if z.kind == ZoneKind.BUFFER and disc.intersects(to_metric(z.geometry, crs)):
                errors.append(f"live-fire training area {t.id} overlaps buffer zone {z.id}: "
                              "training there cannot be told from a violation")


def load_agreement(path: Path | str) -> Agreement:
    report = check_agreement(path)
    if not report.ok or report.agreement is None:
        raise AgreementError(
            f"{path}: {len(report.errors)} problem(s): " + "; ".join(report.errors),
            problems=report.errors,
            fix="run `trucewatch agreement check FILE` and correct each problem",
        )
    return report.agreement
