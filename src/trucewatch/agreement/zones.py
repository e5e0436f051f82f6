"""Which zone and sector each point falls in: prepared polygons, a bounding-box
prefilter, and one vectorized point-in-polygon test per zone for all points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from trucewatch.geo.crs import project_points, to_metric
from trucewatch.model.agreement import Agreement


@dataclass
class ZoneIndex:
    agreement: Agreement

    def __post_init__(self) -> None:
        crs = self.agreement.crs
        self.zone_ids = [z.id for z in self.agreement.zones]
        # each zone's kind (buffer, withdrawal, protected_site, disengagement), by zone id
        self.zone_kinds = {z.id: str(z.kind) for z in self.agreement.zones}
        self._zones_m = [to_metric(z.geometry, crs) for z in self.agreement.zones]
        shapely.prepare(self._zones_m)
        self.sector_ids = [s.id for s in self.agreement.sectors]
        self._sectors_m = [to_metric(s.geometry, crs) for s in self.agreement.sectors]
        shapely.prepare(self._sectors_m)
        self.loc_m = to_metric(self.agreement.line_of_contact, crs)

    def _points(self, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.object_]:
        x, y = project_points(np.asarray(lon, float), np.asarray(lat, float), self.agreement.crs)
        return np.asarray(shapely.points(x, y), dtype=object)

    def zone_pairs(self, lon: NDArray[np.float64], lat: NDArray[np.float64]
                   ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(point index, zone index) of every point-in-zone pair: one tree query."""
        if not self.zone_ids:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        x, y = project_points(np.asarray(lon, float), np.asarray(lat, float),
                              self.agreement.crs)
        # prepared point-in-polygon per zone (a handful of zones, many points): far faster
        # than a tree query against large, detailed polygons
        p_parts, z_parts = [], []
        for k, zone in enumerate(self._zones_m):
            xmin, ymin, xmax, ymax = zone.bounds
            cand = np.flatnonzero((x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax))
            hit = cand[shapely.intersects_xy(zone, x[cand], y[cand])]
            p_parts.append(hit)
            z_parts.append(np.full(hit.size, k))
        p_idx, z_idx = np.concatenate(p_parts), np.concatenate(z_parts)
        order = np.argsort(p_idx, kind="stable")
        return p_idx[order].astype(np.int64), z_idx[order].astype(np.int64)

    def zones_of(self, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> list[list[str]]:
        out: list[list[str]] = [[] for _ in range(len(lon))]
        if not self.zone_ids:
            return out
        p_idx, z_idx = self.zone_pairs(lon, lat)
        for p, z in zip(p_idx.tolist(), z_idx.tolist(), strict=True):
            out[p].append(self.zone_ids[z])
        return out

    def sector_of(self, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.str_]:
        x, y = project_points(np.asarray(lon, float), np.asarray(lat, float),
                              self.agreement.crs)
        out = np.full(len(x), "", dtype=object)
        for sid, sector in zip(self.sector_ids, self._sectors_m, strict=True):
            unset = np.flatnonzero(out == "")
            out[unset[shapely.intersects_xy(sector, x[unset], y[unset])]] = sid
        return out.astype(str)

    def distance_to_line_km(self, lon: NDArray[np.float64],
                            lat: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(shapely.distance(self._points(lon, lat), self.loc_m)) / 1000
