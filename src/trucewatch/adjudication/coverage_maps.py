"""What could be seen, drawn: per sector and day, three maps and their figures.

* **Satellite clear sky.** The cloud record is one fraction per day for the whole
  mission area (``date, cloud_cover, data_available``), and a FIRMS row proves an
  overpass with data but not its footprint. So the honest resolution is *one state
  per day over the mission area*: ``clear`` (cloud at most ``max_cloud``, data),
  ``cloudy``, ``no_data`` or ``cloud_unknown``; every sector gets the day's state.
  Only ``clear`` counts as observed.
* **Sensor detection capability**, on a grid of ``spacing_km`` cells over the mission
  area: the smallest charge (kg TNT-equivalent) that the stations up at the time would
  have heard with probability >= 0.9 by at least ``min_stations`` of them
  (:class:`trucewatch.sensors.capability.CapabilityModel`). A day is cut where a
  station's outage starts or ends; a cell's figure is its *worst* over the hours the
  network reported that day. Where no charge up to ``max_charge_kg`` is heard, or the
  network sent nothing that day, the cell is not observed.
* **Drone patrol swaths** flown that day (track buffered by half the swath).

"Not observed" (``not_observed`` layer) is where none of the three saw. The output is
one JSON document (figures per day and sector) and GeoJSON features (a ``layer`` and a
``date`` each), what the API, the exports and the bulletin maps all use.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from trucewatch.adjudication.allegations import Coverage
from trucewatch.agreement.coalition import Coalition
from trucewatch.geo.crs import local_laea, project_points, to_metric, to_wgs84
from trucewatch.model.agreement import Agreement
from trucewatch.sensors.capability import CapabilityModel

# the classes of the capability map: a cell is in the first class whose bound it meets
CHARGE_CLASSES_KG = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
SATELLITE_RESOLUTION = (
    "one state per day for the whole mission area: the cloud record has one cloud "
    "fraction per day and no footprint; FIRMS rows prove an overpass, not its swath")
SATELLITE_STATES = ("clear", "cloudy", "no_data", "cloud_unknown")


@dataclass(frozen=True)
class CoverageMaps:
    capability: CapabilityModel = field(default_factory=CapabilityModel)
    spacing_km: float = 2.0
    max_cells: int = 6000  # a larger area gets coarser cells
    days: int = 7  # the report day and the days before it (not before entry into force)

    def mission_area(self, agreement: Agreement) -> BaseGeometry:
        if agreement.sectors:
            return shapely.union_all([s.geometry for s in agreement.sectors])
        return agreement.line_of_contact.buffer(0.2)

    def build(self, cov: Coverage, agreement: Agreement, report_date: date,
              coalition: Coalition | None = None) -> dict[str, Any]:
        area = self.mission_area(agreement)
        c = area.centroid
        crs = local_laea(float(c.x), float(c.y))
        area_m = to_metric(area, crs)
        x0, y0, x1, y1 = area_m.bounds
        step = self.spacing_km * 1000
        while ((x1 - x0) / step + 1) * ((y1 - y0) / step + 1) > self.max_cells:
            step *= 1.5
        gx, gy = np.meshgrid(np.arange(x0 + step / 2, x1, step),
                             np.arange(y0 + step / 2, y1, step))
        cx, cy = gx.ravel(), gy.ravel()
        inside = shapely.contains_xy(area_m, cx, cy)
        cx, cy = cx[inside], cy[inside]
        sectors = [(s, shapely.contains_xy(to_metric(s.geometry, crs), cx, cy))
                   for s in agreement.sectors]
        if cov.stations:
            st = np.asarray(cov.stations, dtype=float)
            sx, sy = project_points(st[:, 1], st[:, 0], crs)
            dist = np.hypot(cx[:, None] - sx[None, :], cy[:, None] - sy[None, :]) / 1000
        else:
            dist = np.zeros((len(cx), 0))
        first = max(report_date - timedelta(days=self.days - 1),
                    agreement.entry_into_force.date())
        grid = _Grid(crs, step, cx, cy)
        day_docs, feats, credits = [], [], []
        d = min(first, report_date)
        while d <= report_date:
            doc, fs, cr = self._day(cov, d, grid, dist, sectors, coalition)
            day_docs.append(doc)
            feats += fs
            credits += cr
            d += timedelta(days=1)
        extra: dict[str, Any] = {}
        if coalition is not None:
            extra["coalition"] = coalition_doc(coalition, agreement, day_docs, credits)
        return {**extra,"type": "FeatureCollection", "features": feats, "days": day_docs,
                "grid_km": round(step / 1000, 3), "capability_model":
                self.capability.describe(), "capability": {
                    "probability": self.capability.probability,
                    "min_stations": self.capability.min_stations,
                    "reference_charge_kg": self.capability.reference_charge_kg,
                    "max_charge_kg": self.capability.max_charge_kg},
                "charge_classes_kg": list(CHARGE_CLASSES_KG),
                "satellite_resolution": SATELLITE_RESOLUTION}

    # ------------------------------------------------------------------ one day
    def _day(self, cov: Coverage, day: date, grid: _Grid, dist: np.ndarray,
             sectors: list[tuple[Any, np.ndarray]], coalition: Coalition | None = None
             ) -> tuple[dict[str, Any], list[Any], list[dict[str, Any]]]:
        t0 = datetime.combine(day, datetime.min.time(), UTC)
        t1 = t0 + timedelta(days=1)
        iso = day.isoformat()
        n = len(grid.x)
        # satellite: the day's one state
        cloud = cov.satellite_days.get(day)
        state = ("no_data" if day in cov.satellite_gaps else
                 "cloud_unknown" if cloud is None else
                 "clear" if 0 <= cloud <= cov.max_cloud else "cloudy")
        clear = state == "clear"
        # sensors: the worst charge over the segments the network reported
        charge, hours, up_min = np.full(n, np.inf), 0.0, 0
        segments = self._segments(cov, t0, t1)
        ever_up = np.zeros(dist.shape[1], dtype=bool)
        for _a, _b, up in segments:
            ever_up |= up
        if segments and dist.shape[1]:
            worst = np.zeros(n)
            ups = []
            for a, b, up in segments:
                hours += (b - a).total_seconds() / 3600
                ups.append(int(up.sum()))
                worst = np.maximum(worst, self.capability.min_charge(
                    np.where(up[None, :], dist, np.inf)))
            charge, up_min = worst, min(ups)
        heard = np.isfinite(charge)
        # drones: the swaths flown that day
        swaths = []
        for k, (a, b, track, swath) in enumerate(cov.patrols):
            if a < t1 and b >= t0:
                pts = np.asarray(track, dtype=float)
                px, py = project_points(pts[:, 0], pts[:, 1], grid.crs)
                geom = (shapely.LineString(np.column_stack([px, py])) if len(px) > 1
                        else shapely.Point(px[0], py[0])).buffer(swath / 2)
                platform = cov.patrol_platforms[k] if k < len(cov.patrol_platforms) else ""
                swaths.append((a, b, geom, platform))
        patrolled = np.zeros(n, dtype=bool)
        if swaths:
            patrolled = shapely.contains_xy(shapely.union_all([s[2] for s in swaths]),
                                            grid.x, grid.y)
        observed = heard | patrolled | clear
        cell_km2 = (grid.step / 1000) ** 2
        rows = []
        for s, m in sectors:
            cells = int(m.sum())
            ch = charge[m & heard]
            rows.append({
                "id": s.id, "name": s.name, "cells": cells,
                "satellite": state, "satellite_clear": clear,
                "sensor_observed_share": _share(heard, m),
                "median_charge_kg": _round(float(np.median(ch))) if len(ch) else None,
                "best_charge_kg": _round(float(ch.min())) if len(ch) else None,
                "patrolled_share": _share(patrolled, m),
                "observed_share": _share(observed, m),
                "not_observed_km2": round(float((m & ~observed).sum()) * cell_km2, 1)})
        feats: list[dict[str, Any]] = []
        feats.append(_feature(grid.area(np.ones(n, dtype=bool)), {
            "layer": "satellite", "date": iso, "state": state, "cloud_cover": cloud,
            "observed": clear}))
        lower = 0.0
        for bound in CHARGE_CLASSES_KG:
            sel = heard & (charge > lower) & (charge <= bound)
            if sel.any():
                feats.append(_feature(grid.area(sel), {
                    "layer": "capability", "date": iso, "max_charge_kg": bound,
                    "min_charge_kg": lower}))
            lower = bound
        if (~heard).any():
            feats.append(_feature(grid.area(~heard), {"layer": "not_heard", "date": iso,
                                                      "observed": False}))
        for a, b, geom, platform in swaths:
            feats.append(_feature(to_wgs84(geom, grid.crs), {
                "layer": "patrol_swath", "date": iso, "start": a.isoformat(),
                "end": b.isoformat(), "platform": platform}))
        if (~observed).any():
            feats.append(_feature(grid.area(~observed), {"layer": "not_observed",
                                                         "date": iso, "observed": False}))
        doc = {"date": iso,
               "satellite": {"state": state, "cloud_cover": cloud, "observed": clear},
               "sensors": {"hours": round(hours, 2), "stations": len(cov.stations),
                           "stations_up_min": up_min,
                           "observed_share": _share(heard, np.ones(n, dtype=bool))},
               "patrols": len(swaths),
               "observed_share": _share(observed, np.ones(n, dtype=bool)),
               "sectors": rows}
        credits = [] if coalition is None else self._credits(
            coalition, cov, iso, sectors, heard, clear, swaths, grid, dist, ever_up)
        return doc, feats, credits

    def _credits(self, coalition: Coalition, cov: Coverage, iso: str,
                 sectors: list[tuple[Any, np.ndarray]], heard: np.ndarray, clear: bool,
                 swaths: list[tuple[datetime, datetime, BaseGeometry, str]], grid: _Grid,
                 dist: np.ndarray, up: np.ndarray) -> list[dict[str, Any]]:
        """Who covered which sector that day by which asset, and the share of the sector
        each asset's observation covers (satellite: the day's clear sky, fires only).
        A patrol by a platform no registered asset flies is credited to no one
        (``contributor`` empty), never hidden."""
        out: list[dict[str, Any]] = []
        reach = 2 * self.capability.refiner.prior_r50_km  # a station's say in a cell
        ids = cov.station_ids
        flown: dict[tuple[str, str, str], np.ndarray] = {}
        for _a, _b, geom, platform in swaths:
            owner = next(((c, a) for c, a in coalition.assets()
                          if a.channel == "drone" and a.flies(platform)), None)
            key = (owner[0].id, owner[1].id, "drone") if owner else ("", platform, "drone")
            cells = shapely.contains_xy(geom, grid.x, grid.y)
            flown[key] = flown.get(key, np.zeros(len(grid.x), dtype=bool)) | cells
        for c, a in coalition.assets():
            if a.channel == "sensors" and dist.shape[1] and ids:
                mine = np.array([a.runs(sid) and bool(up[k]) for k, sid in enumerate(ids)])
                if mine.any():
                    near = (dist[:, mine] <= reach).any(axis=1)
                    flown[(c.id, a.id, "sensors")] = heard & near
        for s, m in sectors:
            for (cid, aid, channel), cells in flown.items():
                share = _share(cells, m)
                if share > 0:
                    out.append({"date": iso, "sector": s.id, "contributor": cid,
                                "asset": aid, "channel": channel, "share": share})
            if clear:
                for c, a in coalition.assets():
                    if a.channel == "satellite" and s.id in a.sectors:
                        out.append({"date": iso, "sector": s.id, "contributor": c.id,
                                    "asset": a.id, "channel": "satellite", "share": 1.0})
        return out

    def _segments(self, cov: Coverage, t0: datetime, t1: datetime
                  ) -> list[tuple[datetime, datetime, np.ndarray]]:
        """(start, end, stations up) over the parts of the day the network reported."""
        n = len(cov.stations)
        out = []
        for a, b in cov.sensor_periods:
            lo, hi = max(a, t0), min(b, t1)
            if hi <= lo:
                continue
            spans = [(k, s or a, e or b) for k, s, e in cov.outages]
            cuts = sorted({lo, hi, *[t for _, s, e in spans for t in (s, e) if lo < t < hi]})
            for p, q in itertools.pairwise(cuts):
                mid = p + (q - p) / 2
                up = np.ones(n, dtype=bool)
                for k, s, e in spans:
                    if s <= mid < e and 0 <= k < n:
                        up[k] = False
                out.append((p, q, up))
        return out


@dataclass(frozen=True)
class _Grid:
    crs: str
    step: float
    x: np.ndarray
    y: np.ndarray

    cache: dict[bytes, BaseGeometry] = field(default_factory=dict, compare=False)

    def area(self, sel: np.ndarray) -> BaseGeometry:
        """The selected cells as one WGS84 (multi)polygon (the same cells: the same
        polygon, computed once; cells of a grid share edges, so a coverage union)."""
        key = np.packbits(sel).tobytes()
        if key not in self.cache:
            h = self.step / 2
            boxes = shapely.box(self.x[sel] - h, self.y[sel] - h, self.x[sel] + h,
                                self.y[sel] + h)
            self.cache[key] = to_wgs84(shapely.coverage_union_all(boxes).simplify(
                self.step / 8), self.crs)
        return self.cache[key]


def coalition_doc(coalition: Coalition, agreement: Agreement, days: list[dict[str, Any]],
                  credits: list[dict[str, Any]]) -> dict[str, Any]:
    """The registry, the credits, and the gaps: sectors no contributor declares for a
    channel, and each day's sectors a channel covered for no contributor (with the
    share of the sector that nothing observed)."""
    sector_ids = [s.id for s in agreement.sectors]
    gaps = []
    for d in days:
        for r in d["sectors"]:
            got = {c["channel"] for c in credits if c["date"] == d["date"]
                   and c["sector"] == r["id"] and c["contributor"]}
            missing = [ch for ch in ("sensors", "drone", "satellite") if ch not in got]
            if missing:
                gaps.append({"date": d["date"], "sector": r["id"], "uncovered": missing,
                             "not_observed_share": round(1 - r["observed_share"], 3),
                             "no_contributor": not got})
    return {"registry": coalition.to_dict(), "credits": credits, "gaps": gaps,
            "undeclared": coalition.undeclared(sector_ids)}


def _feature(geom: BaseGeometry, props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": mapping(geom), "properties": props}


def _share(sel: np.ndarray, m: np.ndarray) -> float:
    cells = int(m.sum())
    return round(float((sel & m).sum()) / cells, 3) if cells else 0.0


def _round(x: float) -> float:
    return float(f"{x:.2g}") if math.isfinite(x) else x
