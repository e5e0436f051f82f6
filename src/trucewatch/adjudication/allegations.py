"""Ruling on allegations: match each to the fused incidents, then to what could be seen.

A ruling is one of :class:`~trucewatch.model.enums.Ruling`, with its reason and its
evidence (incident and violation ids, or the coverage that was checked):

* ``pending``: the period alleged is not fully processed yet (data ends earlier);
* ``violation``: a compatible incident matches in space and time and breaks a rule;
* ``no_violation``: a compatible incident matches but breaks no rule (before entry
  into force, outside restricted zones, notified training), or nothing was seen
  where a source able to see it was looking (sensor network or drone patrol for
  explosions; clear-sky satellite or drone for fires; drone for heavy weapons);
* ``insufficient_evidence``: the match is too weak to rule on, proves nothing where it
  is (a fire alone in a withdrawal zone), straddles entry into force, or only a source
  that cannot see this kind of event was looking (satellites do not see every
  explosion);
* ``not_observable``: no source covered that place at that time.

Matching: distance within ``n_sigma * sqrt(sigma_allegation^2 + sigma_incident^2) +
scale`` and windows that come within ``time_slack_s``; categories compatible
(explosion <-> explosion or fire; heavy weapon <-> heavy weapon).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
from scipy.spatial import cKDTree

from trucewatch.geo.crs import local_laea, project_points
from trucewatch.geo.distance import haversine_m
from trucewatch.geo.gazetteer import Gazetteer, PlaceRef
from trucewatch.model.enums import AllegationCategory, ObservedClass, Ruling
from trucewatch.model.serialization import parse_time

_A, _O = AllegationCategory, ObservedClass
COMPATIBLE = {_A.EXPLOSION: (_O.EXPLOSION, _O.FIRE), _A.FIRE: (_O.FIRE, _O.EXPLOSION),
              _A.STRIKE_ON_PROTECTED_SITE: (_O.EXPLOSION, _O.FIRE),
              _A.HEAVY_WEAPON: (_O.HEAVY_WEAPON,),
              _A.OTHER: (_O.EXPLOSION, _O.FIRE, _O.HEAVY_WEAPON, _O.VEHICLE_MOVEMENT)}


UNDECIDED = ("insufficient_evidence", "not_proof_in_zone", "same_day_ambiguous")

@dataclass
class Coverage:
    """What the mechanism could see. Station positions (lat, lon) with the periods the
    network reported; satellite days with their cloud cover (None: unknown) and days
    without data; drone patrols (track points with a swath and a window, and the
    platform that flew them). ``station_ids`` name the stations in order; ``outages``
    are (station index, start, end) spans in which the health check found a station
    silent or not hearing (None: from the start or to the end of the data)."""

    stations: list[tuple[float, float]] = field(default_factory=list)
    station_ids: list[str] = field(default_factory=list)
    outages: list[tuple[int, datetime | None, datetime | None]] = field(default_factory=list)
    patrol_platforms: list[str] = field(default_factory=list)
    sensor_periods: list[tuple[datetime, datetime]] = field(default_factory=list)
    # per station (in the order of ``stations``), its up intervals from its heartbeats;
    # None: the network sends none, every station counts over ``sensor_periods``
    station_up: list[list[tuple[datetime, datetime]]] | None = None
    satellite_days: dict[date, float | None] = field(default_factory=dict)
    satellite_gaps: set[date] = field(default_factory=set)
    patrols: list[tuple[datetime, datetime, list[tuple[float, float]], float]] = field(
        default_factory=list)
    min_stations: int = 4
    station_reach_km: float = 20.0
    max_cloud: float = 0.5
    # VIIRS (S-NPP, NOAA-20/21) overpasses over Ukraine, UTC hours: ~11 (day), ~23 (night)
    overpass_hours: tuple[float, ...] = (11.0, 23.0)

    def sensors(self, lat: float, lon: float, t0: datetime, t1: datetime) -> bool:
        if not self.stations or not any(a <= t0 and t1 <= b for a, b in self.sensor_periods):
            return False
        st = np.asarray(self.stations)
        if self.station_up is not None:  # heartbeats: only the stations up all along
            up = [any(a <= t0 and t1 <= b for a, b in iv) for iv in self.station_up]
            st = st[np.asarray(up, dtype=bool)]
            if not len(st):
                return False
        d = haversine_m(st[:, 0], st[:, 1], lat, lon) / 1000
        return int((d <= self.station_reach_km).sum()) >= self.min_stations

    def satellite(self, t0: datetime, t1: datetime) -> bool:
        """An overpass inside the window, on a day with data and a clear enough sky."""
        day = t0.date()
        while day <= t1.date():
            cloud = self.satellite_days.get(day, -1.0)
            usable = (day not in self.satellite_gaps and cloud is not None
                      and 0 <= cloud <= self.max_cloud)
            for h in self.overpass_hours:
                t = datetime.combine(day, datetime.min.time(), t0.tzinfo) + timedelta(hours=h)
                if usable and t0 <= t <= t1:
                    return True
            day += timedelta(days=1)
        return False

    def drone(self, lat: float, lon: float, t0: datetime, t1: datetime) -> str:
        for a, b, track, swath in self.patrols:
            if a <= t1 and t0 <= b:
                pts = np.asarray(track)
                if (haversine_m(pts[:, 1], pts[:, 0], lat, lon) <= swath / 2).any():
                    return f"drone patrol {a:%H:%M}-{b:%H:%M}Z"
        return ""


    def geojson(self, spacing_km: float = 2.0) -> dict[str, Any]:
        """Where the sensor network (at least ``min_stations`` within reach) and the drone
        patrols could see, as GeoJSON polygons with their periods; satellite days as a
        list. Cells of ``spacing_km`` approximate the network's area."""
        import shapely
        from shapely.geometry import mapping

        from trucewatch.geo.crs import local_laea, project_points, to_wgs84

        feats: list[dict[str, Any]] = []
        if self.stations:
            st = np.asarray(self.stations)
            crs = local_laea(float(st[:, 1].mean()), float(st[:, 0].mean()))
            x, y = project_points(st[:, 1], st[:, 0], crs)
            reach = self.station_reach_km * 1000
            step = spacing_km * 1000
            gx, gy = np.meshgrid(np.arange(x.min() - reach, x.max() + reach, step),
                                 np.arange(y.min() - reach, y.max() + reach, step))
            counts = cKDTree(np.column_stack([x, y])).query_ball_point(
                np.column_stack([gx.ravel(), gy.ravel()]), r=reach, return_length=True)
            ok = np.asarray(counts) >= self.min_stations
            cells = shapely.box(gx.ravel()[ok] - step / 2, gy.ravel()[ok] - step / 2,
                                gx.ravel()[ok] + step / 2, gy.ravel()[ok] + step / 2)
            if len(cells):
                area = to_wgs84(shapely.union_all(cells).simplify(step / 4), crs)
                for a, b in self.sensor_periods:
                    feats.append({"type": "Feature", "geometry": mapping(area), "properties": {
                        "layer": "sensor_coverage", "start": a.isoformat(),
                        "end": b.isoformat(), "min_stations": self.min_stations}})
        for a, b, track, swath in self.patrols:
            pts = np.asarray(track, dtype=float)
            crs = local_laea(float(pts[:, 0].mean()), float(pts[:, 1].mean()))
            px, py = project_points(pts[:, 0], pts[:, 1], crs)
            line = (shapely.LineString(np.column_stack([px, py])) if len(px) > 1
                    else shapely.Point(px[0], py[0]))
            feats.append({"type": "Feature", "geometry": mapping(to_wgs84(
                line.buffer(swath / 2), crs)), "properties": {
                "layer": "patrol", "start": a.isoformat(), "end": b.isoformat()}})
        days = [{"date": d.isoformat(), "cloud_cover": self.satellite_days.get(d),
                 "data": d not in self.satellite_gaps}
                for d in sorted(set(self.satellite_days) | self.satellite_gaps)]
        return {"type": "FeatureCollection", "features": feats, "satellite_days": days}


@dataclass(frozen=True)
class AllegationJudge:
    n_sigma: float = 3.0
    incident_scale_m: float = 1000.0
    time_slack_s: float = 1800.0

    def rule(self, allegations: list[dict[str, Any]], incidents: pl.DataFrame,
             coverage: Coverage, horizon: datetime) -> tuple[list[dict[str, Any]], set[str]]:
        """Rulings, and the observation-id keys of incidents matched (to keep them)."""
        matches = self._matches(allegations, incidents)
        near = _places(allegations)
        out, matched_keys = [], set()
        rows = incidents.to_dicts() if incidents.height else []
        for a, found, ref in zip(allegations, matches, near, strict=True):
            res = a["resolved"]
            t0, t1 = parse_time(res["time_start"]), parse_time(res["time_end"])
            hits = [rows[k] for k in found]
            for h in hits:
                matched_keys.add("|".join(sorted(h["observation_ids"])))
            ruling, reason, coverage_used = self._decide(res, t0, t1, hits, coverage, horizon)
            ex = a.get("extraction") or {}
            if ex.get("truncated"):  # a long text: its place/time came from part of it
                reason += (f" (a long text: only {ex['chars_read']} of its {ex['chars']} "
                           "characters were searched for dates)")
            out.append({
                "allegation_id": a["allegation_id"], "ruling": ruling.value, "basis": "automatic",
                "reason": reason, "claimant": a["claimant"],
                "claimant_kind": a["claimant_kind"], "category": res["category"],
                # where, as monitors say it ("8 km SW of Avdiyivka"), and how the point
                # was found ("coordinates", "place:NAME", "text:NAME")
                "place": ref.text() if ref else res["where"],
                "near": ref.to_dict() if ref else None, "located_by": res["where"],
                "time_start": res["time_start"],
                "time_end": res["time_end"],
                "evidence": {"incident_observations": [h["observation_ids"] for h in hits],
                             "rules": sorted({h["rule"] for h in hits if h["rule"]}),
                             "coverage": coverage_used}})
        return out, matched_keys

    def _matches(self, allegations: list[dict[str, Any]], inc: pl.DataFrame) -> list[list[int]]:
        if not allegations or inc.height == 0:
            return [[] for _ in allegations]
        lat = np.array([a["resolved"]["lat"] for a in allegations])
        lon = np.array([a["resolved"]["lon"] for a in allegations])
        sig = np.array([a["resolved"]["uncertainty_m"] for a in allegations])
        crs = local_laea(float(inc["longitude"].mean()), float(inc["latitude"].mean()))  # type: ignore[arg-type]
        ix, iy = project_points(inc["longitude"].to_numpy(), inc["latitude"].to_numpy(), crs)
        ax, ay = project_points(lon, lat, crs)
        isig = inc["sigma_m"].to_numpy()
        reach = self.n_sigma * np.hypot(sig, isig.max()) + self.incident_scale_m
        cand = cKDTree(np.column_stack([ix, iy])).query_ball_point(
            np.column_stack([ax, ay]), r=reach)
        ts, te = inc["t_start"].to_numpy(), inc["t_end"].to_numpy()
        klass = inc["klass"].to_numpy()
        out = []
        for k, a in enumerate(allegations):
            c = np.asarray(cand[k], dtype=np.int64)
            res = a["resolved"]
            a0 = parse_time(res["time_start"]).timestamp()
            a1 = parse_time(res["time_end"]).timestamp()
            d = np.hypot(ix[c] - ax[k], iy[c] - ay[k])
            ok = ((d <= self.n_sigma * np.hypot(sig[k], isig[c]) + self.incident_scale_m)
                  & (ts[c] <= a1 + self.time_slack_s) & (te[c] >= a0 - self.time_slack_s)
                  & np.isin(klass[c], COMPATIBLE.get(res["category"], COMPATIBLE[_A.OTHER])))
            out.append(sorted(c[ok].tolist()))
        return out

    def _decide(self, res: dict[str, Any], t0: datetime, t1: datetime,
                hits: list[dict[str, Any]], cov: Coverage, horizon: datetime
                ) -> tuple[Ruling, str, list[str]]:
        if t1 > horizon:
            return (Ruling.PENDING, f"the period alleged ends after the data processed so far "
                    f"({horizon:%Y-%m-%d %H:%M}Z)", [])
        if any(h["rule"] for h in hits):
            rules = sorted({h["rule"] for h in hits if h["rule"]})
            return (Ruling.VIOLATION, f"matched {len(hits)} incident(s) breaking "
                    f"{', '.join(rules)}", [])
        if hits:
            # what was seen there cannot settle it: evidence too weak, a fire where a fire
            # alone proves nothing (the allegation may be of the shelling that lit it), or
            # a sighting whose window straddles entry into force
            if all(h["flag"] in UNDECIDED for h in hits):
                flags = sorted({str(h["flag"]) for h in hits})
                return (Ruling.INSUFFICIENT_EVIDENCE, "matched only incidents that cannot "
                        f"settle it ({', '.join(flags)})", [])
            why = "; ".join(sorted({h["flag"] or "outside restricted zones" for h in hits}))
            return Ruling.NO_VIOLATION, f"observed, but breaks no rule ({why})", []
        lat, lon, cat = float(res["lat"]), float(res["lon"]), res["category"]
        seen = []
        if cov.sensors(lat, lon, t0, t1):
            seen.append("ground sensor network")
        patrol = cov.drone(lat, lon, t0, t1)
        if patrol:
            seen.append(patrol)
        # satellites see fires (and the fires explosions start), never a gun or a vehicle
        satellite = cat != AllegationCategory.HEAVY_WEAPON and cov.satellite(t0, t1)
        able = {_A.EXPLOSION: bool(seen), _A.STRIKE_ON_PROTECTED_SITE: bool(seen),
                _A.FIRE: bool(patrol) or satellite, _A.HEAVY_WEAPON: bool(patrol),
                _A.OTHER: bool(seen)}.get(cat, bool(seen))
        if satellite:
            seen.append("satellite (clear sky)")
        if able:
            return (Ruling.NO_VIOLATION, f"nothing observed where {', '.join(seen)} "
                    "could see it", seen)
        if seen:
            return (Ruling.INSUFFICIENT_EVIDENCE, f"only {', '.join(seen)} covered it, which "
                    f"cannot see every {cat.replace('_', ' ')}", seen)
        return Ruling.NOT_OBSERVABLE, "no source covered this place at this time", []


def _places(allegations: list[dict[str, Any]]) -> list[PlaceRef | None]:
    """Each allegation's resolved point as "X km DIR of PLACE" from the gazetteer, to the
    kilometre (its point is as exact as that at best); None without a gazetteer."""
    if not allegations:
        return []
    try:
        return list(Gazetteer.load().describe_many(
            [float(a["resolved"]["lat"]) for a in allegations],
            [float(a["resolved"]["lon"]) for a in allegations], 1.0))
    except (ValueError, IndexError):  # an empty gazetteer: no place to name
        return [None] * len(allegations)
