"""Observation rows from a batch (the store's ``observations`` columns, in order).

Until every adapter emits the observation contract (model.contract), this is the one
place that knows the record shapes of the built-in sources.
"""

from __future__ import annotations

import hashlib
import json

import polars as pl

from trucewatch.ingest.base import Batch
from trucewatch.ingest.firms import seen_window
from trucewatch.model.enums import SourceKind

# FIRMS pixel: 375 m (VIIRS I-band) or 1 km (MODIS); 1-sigma ~ half the pixel
_UNCERTAINTY_M = {"MODIS": 500.0}
_DEFAULT_UNCERTAINTY_M = 190.0

COLUMNS = ("id", "source_kind", "source_id", "sensor", "time_start", "time_end", "acq_date",
           "lat", "lon", "uncertainty_m", "attributes", "raw_sha256", "batch_id", "raw_row")


def observation_rows(batch: Batch, batch_id: str) -> list[tuple[object, ...]]:
    if batch.kind in (SourceKind.STATION_INVENTORY, SourceKind.CONFIGURATION):
        return []  # kept and logged as inputs; nothing in them is an observation
    if batch.source == "sensor_events":
        return _explosion_rows(batch, batch_id)
    if batch.source == "allegations":
        return []  # allegations are claims, not observations: their own table
    if "obs_id" in batch.records.columns:
        return _generic_rows(batch, batch_id)
    r = batch.records
    if "seen_start" not in r.columns:  # records built without the FIRMS reader
        r = seen_window(r)
    # time_start/time_end: the window the satellite saw the fire in (ingest.firms
    # seen_start/seen_end, inclusive, UTC): the minute of acq_time, or for date-only rows
    # the overpass windows within acq_date (docs/data-formats.md)
    r = r.with_columns(pl.col("seen_start").dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("_t0"),
                       pl.col("seen_end").dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("_t1"))
    out: list[tuple[object, ...]] = []
    for row, lat, lon, lt, ln, d, minute, sensor, conf, frp, dn, raw, t0, t1, basis in r.select(
            "row", "latitude", "longitude", "lat_text", "lon_text", "acq_date", "acq_minute",
            "sensor", "confidence", "frp", "daynight", "raw", "_t0", "_t1", "time_basis"
    ).iter_rows():
        day = d.isoformat()
        identity = f"{batch.source}|{sensor}|{lt}|{ln}|{day}|{minute}"
        oid = "o-" + hashlib.sha256(identity.encode()).hexdigest()[:24]
        attrs = json.dumps({"sensor": sensor, "confidence": conf, "frp": frp, "daynight": dn,
                            "layout": batch.layout, "time_basis": basis})
        out.append((oid, batch.kind.value, f"{batch.source}:{sensor}", sensor, t0, t1, day,
                    lat, lon, _UNCERTAINTY_M.get(sensor, _DEFAULT_UNCERTAINTY_M), attrs,
                    hashlib.sha256(raw.encode()).hexdigest(), batch_id, row))
    return out


def _explosion_rows(batch: Batch, batch_id: str) -> list[tuple[object, ...]]:
    """Located explosions (records from sensors.events.observation_records)."""
    out: list[tuple[object, ...]] = []
    raw_sha = batch.sha256
    for r in batch.records.iter_rows(named=True):
        attrs = json.dumps({k: r[k] for k in ("event_id", "status", "n_defining", "n_stations",
                                               "rms_s", "major_m", "minor_m", "azimuth_deg")
                            if k in r}, default=float)
        t = r["t"]
        out.append((r["obs_id"], batch.kind.value, "sensors:network", "sensor_network", t, t,
                    t[:10], r["latitude"], r["longitude"], r["uncertainty_m"], attrs, raw_sha,
                    batch_id, 0))
    return out


def _generic_rows(batch: Batch, batch_id: str) -> list[tuple[object, ...]]:
    """Records already in observation form: obs_id, source_id, t0, t1 (ISO UTC), latitude,
    longitude, uncertainty_m, attributes (JSON text), raw_row, raw_sha256 (of the record)."""
    out: list[tuple[object, ...]] = []
    for r in batch.records.iter_rows(named=True):
        out.append((r["obs_id"], batch.kind.value, r["source_id"], batch.source, r["t0"],
                    r["t1"], r["t0"][:10], r["latitude"], r["longitude"], r["uncertainty_m"],
                    r["attributes"], r["raw_sha256"], batch_id, r["raw_row"]))
    return out
