"""Multi-source fusion: observations of every source -> incidents.

Data format (one row per observation, see :data:`EVIDENCE_SCHEMA`)::

    id, source_kind, source_id, t_start, t_end (epoch s; an instant has them equal),
    seen_start, seen_end (epoch s: when the source saw it; an instant has them equal to
    the time, a satellite fire the overpass minute or windows; the fusion window
    t_start..t_end of a fire also reaches back over the lookback), latitude, longitude,
    sigma_m (1-sigma horizontal), klass (explosion, fire,
    crater, heavy_weapon, vehicle_movement), reliability (0..1), weapon_class, count,
    unconfirmed (a fire that is an improbable excess not yet confirmed as war-related)

Two observations belong to the same incident when

* they are of the same family: kinetic (explosion, crater, fire) or presence
  (heavy weapon, vehicle movement): a gun seen is not the shell that landed;
* their distance is within ``n_sigma * sqrt(sigma_i^2 + sigma_j^2) + incident_scale_m``
  (each source's own uncertainty: 375 m pixels, acoustic ellipses, drone geolocation
  error; the scale joins the rounds of one shelling);
* their time windows come within ``time_slack_s`` (a satellite fire's window opens
  ``lookback`` before the overpass, since the fire began between two overpasses);
* or both are ground-network events within ``barrage_merge_m`` and
  ``barrage_window_s``: the associator's known artifact in barrages (a false event
  made of several rounds' detections, located a few km from a real one).

Incidents are the connected components of that relation. Candidate pairs come from
one KD-tree query in (x, y, scaled time), so the cost grows with the number of
observations times their local density, never with all pairs.

For each incident: the window common to all its observations, or, when they have
none in common (fires seen at several overpasses), the span of the sightings;
``seen_start``/``seen_end``, the earliest and latest time any of its sources may have
seen it (epoch s; what an entry-into-force judgement needs); the
inverse-variance location, its uncertainty, the window, the
independent sources (satellite, sensor network, each drone platform), the
duplicates merged, and a confidence ``1 - prod(1 - r_k)`` over independent sources k
(r_k: the best reliability of source k), which rises with each independent source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from trucewatch.geo.crs import local_laea, project_points
from trucewatch.model.enums import ObservedClass, SourceKind

EVIDENCE_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "id": pl.String, "source_kind": pl.String, "source_id": pl.String,
    "t_start": pl.Float64, "t_end": pl.Float64, "seen_start": pl.Float64,
    "seen_end": pl.Float64, "latitude": pl.Float64,
    "longitude": pl.Float64, "sigma_m": pl.Float64, "klass": pl.String,
    "reliability": pl.Float64, "weapon_class": pl.String, "count": pl.Int64,
    "unconfirmed": pl.Boolean,
}


def with_seen(evidence: pl.DataFrame) -> pl.DataFrame:
    """``evidence`` with ``seen_start``/``seen_end`` filled where missing (tables built
    before the columns existed): from ``t_start``/``t_end``, exact for instants; a
    satellite fire's window then ended at its overpass, so both are ``t_end``."""
    ev = evidence
    fire = pl.col("source_kind") == _FIRE
    fallback = {"seen_start": pl.when(fire).then(pl.col("t_end")).otherwise(pl.col("t_start")),
                "seen_end": pl.col("t_end")}
    for seen, t in fallback.items():
        ev = ev.with_columns((pl.col(seen).fill_null(t) if seen in ev.columns else t)
                             .alias(seen))
    return ev
# plain values (polars reads a list of enum members as an Enum column)
_FIRE, _NET, _DRONE = (k.value for k in (SourceKind.SATELLITE_FIRE, SourceKind.SENSOR_NETWORK,
                                          SourceKind.DRONE))
_O = ObservedClass
KINETIC = (_O.EXPLOSION.value, _O.CRATER.value, _O.FIRE.value)
PRESENCE = (_O.HEAVY_WEAPON.value, _O.VEHICLE_MOVEMENT.value)
EXPLOSIVE = (_O.EXPLOSION.value, _O.CRATER.value)


@dataclass(frozen=True)
class IncidentFuser:
    n_sigma: float = 3.0
    incident_scale_m: float = 1000.0
    time_slack_s: float = 1800.0
    max_sigma_m: float = 5000.0  # a worse location is not fused (it would join everything)
    # the ground network's barrage artifacts: events formed from a barrage's mixed
    # detections lie 1-4 km from a real round, within seconds (measured, docs/fusion.md);
    # network events that close in time are one incident
    barrage_merge_m: float = 4000.0
    barrage_window_s: float = 60.0
    reliability: dict[str, float] = field(default_factory=lambda: {
        _FIRE: 0.6, _NET: 0.8, _DRONE: 0.9})

    def fuse(self, evidence: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(incidents, membership). ``membership``: id, incident (int label)."""
        ev = with_seen(evidence).select(list(EVIDENCE_SCHEMA)).cast(EVIDENCE_SCHEMA)  # type: ignore[arg-type]
        n = ev.height
        if n == 0:
            return _empty_incidents(), pl.DataFrame(schema={"id": pl.String,
                                                            "incident": pl.Int64})
        label = self.components(ev)
        ev = ev.with_columns(pl.Series("incident", label, dtype=pl.Int64))
        return self.aggregate(ev), ev.select("id", "incident")

    def components(self, ev: pl.DataFrame) -> np.ndarray:
        lat, lon = ev["latitude"].to_numpy(), ev["longitude"].to_numpy()
        crs = local_laea(float(np.mean(lon)), float(np.mean(lat)))
        x, y = project_points(lon, lat, crs)
        sigma = np.minimum(ev["sigma_m"].to_numpy(), self.max_sigma_m)
        t0, t1 = ev["t_start"].to_numpy(), ev["t_end"].to_numpy()
        mid, half = (t0 + t1) / 2, (t1 - t0) / 2
        kinetic = ev["klass"].is_in(KINETIC).to_numpy()
        r_max = max(self.n_sigma * np.sqrt(2) * float(sigma.max()) + self.incident_scale_m,
                    self.barrage_merge_m)
        t_reach = self.time_slack_s + 2 * float(half.max())
        # time scaled so that the reachable window maps onto the spatial reach; the ball
        # of radius r*sqrt(2) then contains every pair within both reaches
        pts = np.column_stack([x, y, (mid - mid.min()) * (r_max / max(t_reach, 1.0))])
        pairs = cKDTree(pts).query_pairs(r=r_max * np.sqrt(2) * 1.000001,
                                         output_type="ndarray")
        i, j = pairs[:, 0], pairs[:, 1]
        d = np.hypot(x[i] - x[j], y[i] - y[j])
        gate = self.n_sigma * np.hypot(sigma[i], sigma[j]) + self.incident_scale_m
        gap = np.abs(mid[i] - mid[j]) - half[i] - half[j]
        ok = (d <= gate) & (gap <= self.time_slack_s) & (kinetic[i] == kinetic[j])
        network = (ev["source_kind"] == _NET).to_numpy()
        ok |= (network[i] & network[j] & (d <= self.barrage_merge_m)
               & (np.abs(mid[i] - mid[j]) <= self.barrage_window_s))
        n = ev.height
        graph = coo_matrix((np.ones(int(ok.sum())), (i[ok], j[ok])), shape=(n, n))
        _, label = connected_components(graph, directed=False)
        return np.asarray(label, dtype=np.int64)

    def aggregate(self, ev: pl.DataFrame) -> pl.DataFrame:
        """Incidents from evidence with an ``incident`` label column (any clustering's)."""
        # a source kind's reliability, scaled by the observation's own (a drone report's
        # confidence; 1.0 otherwise)
        default = pl.col("source_kind").replace_strict(self.reliability, default=0.5,
                                                       return_dtype=pl.Float64)
        rel = (default * pl.col("reliability").fill_null(1.0)).clip(0.0, 0.999)
        indep = (pl.when(pl.col("source_kind") == _DRONE).then(pl.col("source_id"))
                 .otherwise(pl.col("source_kind")))
        ev = with_seen(ev).with_columns(indep.alias("indep"),
                                        (1.0 / pl.col("sigma_m") ** 2).alias("w"),
                                        rel.alias("rel"))
        per_source = ev.group_by("incident", "indep").agg(pl.col("rel").max())
        conf = per_source.group_by("incident").agg(
            (1.0 - (1.0 - pl.col("rel")).product()).alias("confidence"),
            pl.len().alias("n_sources"), pl.col("indep").sort().alias("sources"))
        inc = ev.group_by("incident").agg(
            ((pl.col("latitude") * pl.col("w")).sum() / pl.col("w").sum()).alias("latitude"),
            ((pl.col("longitude") * pl.col("w")).sum() / pl.col("w").sum()).alias("longitude"),
            (1.0 / pl.col("w").sum().sqrt()).alias("sigma_fused_m"),
            (pl.col("latitude").std().fill_null(0.0) * 111_000).alias("spread_m"),
            pl.col("t_start").max().alias("_t0_in"), pl.col("t_end").min().alias("_t1_in"),
            pl.col("t_end").min().alias("_t0_out"), pl.col("t_end").max().alias("_t1_out"),
            pl.col("seen_start").min().alias("seen_start"),
            pl.col("seen_end").max().alias("seen_end"),
            pl.col("id").sort().alias("observation_ids"), pl.len().alias("n_obs"),
            pl.col("klass").is_in(EXPLOSIVE).any().alias("_explosive"),
            (pl.col("klass") == _O.HEAVY_WEAPON.value).any().alias("_weapon"),
            pl.col("klass").is_in(KINETIC).any().alias("kinetic"),
            (pl.col("source_kind") == _FIRE).sum().alias("fires"),
            ((pl.col("source_kind") == _FIRE) & pl.col("unconfirmed")).sum()
            .alias("unconfirmed_fires"),
            (pl.col("source_kind") == _NET).sum().alias("explosions"),
            (pl.col("source_kind") == _DRONE).sum().alias("drone_reports"),
            pl.col("weapon_class").drop_nulls().mode().first().alias("weapon_class"),
            pl.col("source_kind").unique().sort().alias("source_kinds"),
        ).join(conf, on="incident")
        overlap = pl.col("_t0_in") <= pl.col("_t1_in")
        return inc.with_columns(
            pl.when(overlap).then(pl.col("_t0_in")).otherwise(pl.col("_t0_out")).alias("t_start"),
            pl.when(overlap).then(pl.col("_t1_in")).otherwise(pl.col("_t1_out")).alias("t_end"),
            pl.max_horizontal("sigma_fused_m", "spread_m").alias("sigma_m"),
            pl.when(pl.col("kinetic")).then(
                pl.when(pl.col("_explosive")).then(pl.lit(_O.EXPLOSION.value))
                .otherwise(pl.lit(_O.FIRE.value)))
            .otherwise(pl.when(pl.col("_weapon")).then(pl.lit(_O.HEAVY_WEAPON.value))
                       .otherwise(pl.lit(_O.VEHICLE_MOVEMENT.value))).alias("klass"),
            (pl.col("n_obs") - pl.col("n_sources")).alias("duplicates_merged"),
        ).drop("_t0_in", "_t1_in", "_t0_out", "_t1_out", "_explosive", "_weapon",
               "sigma_fused_m").sort("t_start", "incident")


def _empty_incidents() -> pl.DataFrame:
    return pl.DataFrame(schema={
        "incident": pl.Int64, "latitude": pl.Float64, "longitude": pl.Float64,
        "spread_m": pl.Float64, "observation_ids": pl.List(pl.String), "n_obs": pl.UInt32,
        "kinetic": pl.Boolean, "fires": pl.UInt32, "unconfirmed_fires": pl.UInt32,
        "explosions": pl.UInt32, "drone_reports": pl.UInt32, "weapon_class": pl.String,
        "source_kinds": pl.List(pl.String), "confidence": pl.Float64, "n_sources": pl.UInt32,
        "sources": pl.List(pl.String), "seen_start": pl.Float64, "seen_end": pl.Float64,
        "t_start": pl.Float64, "t_end": pl.Float64, "sigma_m": pl.Float64, "klass": pl.String,
        "duplicates_merged": pl.Int64})
