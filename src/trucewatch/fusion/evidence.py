"""Each source's observations as fusion evidence (:data:`fusion.incidents.EVIDENCE_SCHEMA`).

The per-source choices live here, in one place:

* satellite fires: only war-related or improbable (excess) detections are evidence;
  the contract's ``time_start``/``time_end`` is when the satellite saw it (the acq_time
  minute, or for date-only rows the overpass windows within the UTC date, ingest.firms);
  the fusion window opens ``lookback_s`` before it (the fire began since the last look)
  and closes at its end; 1-sigma is the contract's uncertainty (half the pixel: VIIRS
  375 m -> 190 m, MODIS 1 km -> 500 m);
* located explosions: the associator's 95 % ellipse, as 1-sigma, and the contract's
  reliability, which grows with the number of defining stations (sensors.events);
  not-locatable events (reliability 0) are not evidence of a place;
* drone reports: the geolocation error, the report's class and confidence (the
  contract's klass and reliability).

Every source comes as the observation contract (model.contract), read from the store by
``contract_observations``; satellite fires also carry the classifier's columns (which
of them are evidence), added by the classify stage to their contract rows.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from trucewatch.fusion.incidents import EVIDENCE_SCHEMA
from trucewatch.model.enums import ObservedClass, SourceKind

VIIRS_LOOKBACK_S = 12 * 3600.0


def fire_evidence(classified: pl.DataFrame, since: datetime | None = None,
                  lookback_s: float = VIIRS_LOOKBACK_S) -> pl.DataFrame:
    """``classified``: the satellite fires as the observation contract (model.contract:
    id, source_id, time_start, time_end, lat, lon, uncertainty_m, klass, reliability)
    with the classifier's columns (war_related, excess[, fire_class]), as the classify
    stage gives them (pipeline.stages.classify_with over ingest.firms.detections).
    Where and when each was seen, and how well, are the contract's; which fires are
    evidence is the classifier's. ``since``: only fires that may have been seen at or
    after it (time_end >= since)."""
    # an excess the classifier explains (agricultural, wildfire, industrial) is no evidence
    unexplained = (pl.col("fire_class") == "normal") if "fire_class" in classified.columns \
        else pl.lit(True)
    f = classified.filter((pl.col("war_related") == 1) | (pl.col("excess") & unexplained))
    seen0 = pl.col("time_start").dt.epoch("ms") / 1000.0
    seen1 = pl.col("time_end").dt.epoch("ms") / 1000.0
    if since is not None:
        f = f.filter(seen1 >= since.timestamp())
    return f.select(
        "id", pl.lit(SourceKind.SATELLITE_FIRE.value).alias("source_kind"), "source_id",
        (seen0 - lookback_s).alias("t_start"), seen1.alias("t_end"),
        seen0.alias("seen_start"), seen1.alias("seen_end"),
        pl.col("lat").alias("latitude"), pl.col("lon").alias("longitude"),
        pl.col("uncertainty_m").alias("sigma_m"),
        pl.col("klass").cast(pl.String).fill_null(ObservedClass.FIRE.value),
        pl.col("reliability").fill_null(1.0),
        pl.lit(None, pl.String).alias("weapon_class"), pl.lit(1).alias("count"),
        # confirmed only when the detection's own cell-day is a war-related excess: a pixel
        # carried over from an earlier excess, or an excess not yet confirmed, is weak alone
        ~((pl.col("war_related") == 1) & pl.col("excess")).alias("unconfirmed"),
    ).cast(EVIDENCE_SCHEMA)  # type: ignore[arg-type]


def _instant() -> pl.Expr:
    """Epoch seconds of a contract table's ``time_start`` (Datetime, UTC)."""
    return pl.col("time_start").dt.epoch("ms") / 1000.0


def explosion_evidence(explosions: pl.DataFrame) -> pl.DataFrame:
    """``explosions``: located explosions as the observation contract (the store's
    ``contract_observations([SourceKind.SENSOR_NETWORK])``). Their klass and reliability
    are the contract's (sensors.events: the reliability grows with the defining stations);
    an event the network could not locate has reliability 0 and is no evidence of a
    place."""
    ex = explosions.filter(pl.col("reliability").fill_null(1.0) > 0)
    t = _instant()
    return ex.select(
        "id", pl.lit(SourceKind.SENSOR_NETWORK.value).alias("source_kind"),
        pl.col("source_id"), t.alias("t_start"), t.alias("t_end"),
        t.alias("seen_start"), t.alias("seen_end"), pl.col("lat").alias("latitude"),
        pl.col("lon").alias("longitude"), pl.col("uncertainty_m").alias("sigma_m"),
        pl.col("klass").cast(pl.String).fill_null(ObservedClass.EXPLOSION.value),
        pl.col("reliability"),
        pl.lit(None, pl.String).alias("weapon_class"), pl.lit(1).alias("count"),
        pl.lit(False).alias("unconfirmed"),
    ).cast(EVIDENCE_SCHEMA)  # type: ignore[arg-type]


def drone_evidence(drones: pl.DataFrame) -> pl.DataFrame:
    """``drones``: drone reports as the observation contract (the store's
    ``contract_observations([SourceKind.DRONE])``): klass and reliability (the report's
    class and confidence) are the contract's; the weapon class and the count, a drone
    report's own fields, are read from its ``attributes``."""
    attrs = pl.col("attributes")
    t = _instant()
    return drones.select(
        "id", pl.lit(SourceKind.DRONE.value).alias("source_kind"), "source_id",
        t.alias("t_start"), t.alias("t_end"), t.alias("seen_start"), t.alias("seen_end"),
        pl.col("lat").alias("latitude"), pl.col("lon").alias("longitude"),
        pl.col("uncertainty_m").alias("sigma_m"),
        pl.col("klass").cast(pl.String), "reliability",
        attrs.str.json_path_match("$.weapon_class").alias("weapon_class"),
        attrs.str.json_path_match("$.count").cast(pl.Int64).fill_null(1).alias("count"),
        pl.lit(False).alias("unconfirmed"),
    ).cast(EVIDENCE_SCHEMA)  # type: ignore[arg-type]
