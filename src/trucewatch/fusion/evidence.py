"""Each source's observations as fusion evidence (:data:`fusion.incidents.EVIDENCE_SCHEMA`).

The per-source choices live here, in one place:

* satellite fires: only war-related or improbable (excess) detections are evidence;
  the window opens ``lookback_s`` before the overpass (the fire began since the last
  look); 1-sigma = half the pixel (VIIRS 375 m -> 190 m, MODIS 1 km -> 500 m);
* located explosions: the associator's 95 % ellipse, as 1-sigma, and a reliability
  that grows with the number of defining stations; not-locatable events are not
  evidence of a place;
* drone reports: the geolocation error, the report's class and confidence.
"""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl

from trucewatch.fusion.incidents import EVIDENCE_SCHEMA

VIIRS_LOOKBACK_S = 12 * 3600.0
# a location defined by this many stations is taken at face value; fewer, less (a 4-station
# coincidence inside a barrage is the associator's typical false event, docs/sensors.md)
FULL_TRUST_DEFINING = 8.0


def _epoch(col: str) -> pl.Expr:
    return pl.col(col).str.to_datetime(time_zone="UTC").dt.epoch("ms") / 1000.0


def fire_evidence(classified: pl.DataFrame, since: datetime | None = None,
                  lookback_s: float = VIIRS_LOOKBACK_S) -> pl.DataFrame:
    """``classified``: the classifier's output (id, latitude, longitude, sensor, time_start,
    war_related, excess)."""
    f = classified.filter((pl.col("war_related") == 1) | pl.col("excess"))
    if since is not None:
        f = f.filter(pl.col("time_start").str.to_datetime(time_zone="UTC") >= since)
    t = _epoch("time_start")
    return f.select(
        "id", pl.lit("satellite_fire").alias("source_kind"),
        ("satellite:" + pl.col("sensor")).alias("source_id"),
        (t - lookback_s).alias("t_start"), t.alias("t_end"), "latitude", "longitude",
        pl.when(pl.col("sensor") == "MODIS").then(500.0).otherwise(190.0).alias("sigma_m"),
        pl.lit("fire").alias("klass"), pl.lit(1.0).alias("reliability"),
        pl.lit(None, pl.String).alias("weapon_class"), pl.lit(1).alias("count"),
        ((pl.col("war_related") != 1) & pl.col("excess")).alias("unconfirmed"),
    ).cast(EVIDENCE_SCHEMA)  # type: ignore[arg-type]


def explosion_evidence(explosions: pl.DataFrame) -> pl.DataFrame:
    """``explosions``: the store's located explosions (id, time_start, latitude, longitude,
    uncertainty_m, attributes)."""
    ex = explosions.filter(pl.col("attributes").str.json_path_match("$.status") == "located")
    t = _epoch("time_start")
    return ex.select(
        "id", pl.lit("sensor_network").alias("source_kind"),
        pl.lit("sensors:network").alias("source_id"), t.alias("t_start"), t.alias("t_end"),
        "latitude", "longitude", pl.col("uncertainty_m").alias("sigma_m"),
        pl.lit("explosion").alias("klass"),
        (pl.col("attributes").str.json_path_match("$.n_defining").cast(pl.Float64)
         / FULL_TRUST_DEFINING).clip(0.3, 1.0).alias("reliability"),
        pl.lit(None, pl.String).alias("weapon_class"), pl.lit(1).alias("count"),
        pl.lit(False).alias("unconfirmed"),
    ).cast(EVIDENCE_SCHEMA)  # type: ignore[arg-type]


def drone_evidence(drones: pl.DataFrame) -> pl.DataFrame:
    """``drones``: the store's drone observations (id, source_id, time_start, latitude,
    longitude, uncertainty_m, attributes JSON with class, confidence, weapon_class)."""
    attrs = [json.loads(a) for a in drones["attributes"].to_list()]
    t = _epoch("time_start")
    return drones.with_columns(
        pl.Series("klass", [a["class"] for a in attrs], dtype=pl.String),
        pl.Series("reliability", [float(a["confidence"]) for a in attrs], dtype=pl.Float64),
        pl.Series("weapon_class", [a.get("weapon_class") for a in attrs], dtype=pl.String),
        pl.Series("count", [int(a.get("count", 1)) for a in attrs], dtype=pl.Int64),
    ).select(
        "id", pl.lit("drone").alias("source_kind"), "source_id", t.alias("t_start"),
        t.alias("t_end"), "latitude", "longitude", pl.col("uncertainty_m").alias("sigma_m"),
        "klass", "reliability", "weapon_class", "count", pl.lit(False).alias("unconfirmed"),
    ).cast(EVIDENCE_SCHEMA)  # type: ignore[arg-type]
