"""Which zone and sector each point falls in: one STRtree query for all points."""

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
        self._zone_tree = shapely.STRtree([to_metric(z.geometry, crs)
                                           for z in self.agreement.zones])
        self.sector_ids = [s.id for s in self.agreement.sectors]
        self._sector_tree = shapely.STRtree([to_metric(s.geometry, crs)
                                             for s in self.agreement.sectors])
        self.loc_m = to_metric(self.agreement.line_of_contact, crs)

    def _points(self, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.object_]:
        x, y = project_points(np.asarray(lon, float), np.asarray(lat, float), self.agreement.crs)
        return np.asarray(shapely.points(x, y), dtype=object)

    def zone_pairs(self, lon: NDArray[np.float64], lat: NDArray[np.float64]
                   ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(point index, zone index) of every point-in-zone pair: one tree query."""
        if not self.zone_ids:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        p_idx, z_idx = self._zone_tree.query(self._points(lon, lat), predicate="intersects")
        return p_idx.astype(np.int64), z_idx.astype(np.int64)

    def zones_of(self, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> list[list[str]]:
        out: list[list[str]] = [[] for _ in range(len(lon))]
        if not self.zone_ids:
            return out
        p_idx, z_idx = self.zone_pairs(lon, lat)
        for p, z in zip(p_idx.tolist(), z_idx.tolist(), strict=True):
            out[p].append(self.zone_ids[z])
        return out

    def sector_of(self, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.str_]:
        pts = self._points(lon, lat)
        out = np.full(len(pts), "", dtype=object)
        if self.sector_ids:
            p_idx, s_idx = self._sector_tree.query(pts, predicate="intersects")
            out[p_idx] = np.asarray(self.sector_ids, dtype=object)[s_idx]
        return out.astype(str)

    def distance_to_line_km(self, lon: NDArray[np.float64],
                            lat: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(shapely.distance(self._points(lon, lat), self.loc_m)) / 1000
