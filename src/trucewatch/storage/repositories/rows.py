"""Observation rows from a batch's observation contract (model.contract), in the
store's ``observations`` column order: one vectorised select, the same for every source.

Storage knows no source's private shape: a batch's ``observations`` table is all it
reads. The times are written as ISO-8601 UTC text, to the second, or to the
millisecond when any time of the batch has a fraction of a second (FIRMS rows are to
the minute, located explosions to the millisecond); ``acq_date`` is the UTC date of
``time_start``; ``klass`` is the enum's text and ``reliability`` as given (both NULL
when the adapter gives none).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from trucewatch.model import contract

COLUMNS = ("id", "source_kind", "source_id", "sensor", "time_start", "time_end", "acq_date",
           "lat", "lon", "uncertainty_m", "attributes", "raw_sha256", "batch_id", "raw_row",
           "klass", "reliability")
SECONDS = "%Y-%m-%dT%H:%M:%SZ"
MILLISECONDS = "%Y-%m-%dT%H:%M:%S%.3fZ"


def time_format(obs: pl.DataFrame) -> str:
    """The text format of a batch's times: seconds, or milliseconds when any time of the
    batch has a fraction of a second (one format per batch, so a column reads back in
    one format)."""
    if obs.is_empty():
        return SECONDS
    frac = obs.select((pl.col("time_start", "time_end").dt.microsecond() != 0).any()).row(0)
    return MILLISECONDS if any(frac) else SECONDS


def observation_frame(obs: pl.DataFrame, batch_id: str, where: str = "observations"
                      ) -> pl.DataFrame:
    """The batch's observation rows as a table in :data:`COLUMNS` order, each id once
    (the first of a repeated id is kept, as the store's insert-or-ignore would)."""
    obs = contract.conform(obs, where)
    fmt = time_format(obs)
    return obs.unique(subset="id", keep="first", maintain_order=True).select(
        pl.col("id"),
        pl.col("source_kind").cast(pl.String),
        pl.col("source_id"),
        pl.col("sensor"),
        pl.col("time_start").dt.strftime(fmt),
        pl.col("time_end").dt.strftime(fmt),
        pl.col("time_start").dt.strftime("%Y-%m-%d").alias("acq_date"),
        pl.col("lat"),
        pl.col("lon"),
        pl.col("uncertainty_m"),
        pl.col("attributes"),
        pl.col("raw_sha256"),
        pl.lit(batch_id, dtype=pl.String).alias("batch_id"),
        pl.col("raw_row"),
        pl.col("klass").cast(pl.String),
        pl.col("reliability"),
    )


def hilbert_order(lon: np.ndarray, lat: np.ndarray, bits: int = 16) -> np.ndarray:
    """The permutation that puts points (degrees) in the order of a Hilbert curve over a
    global ``2**bits`` grid (cells of 0.0055 degrees of longitude at 16 bits): points near
    each other on the ground come near each other in the order. Rows inserted in this order
    fill SQLite's R*Tree node by node instead of all over the tree (and a batch's rows lie
    together on disk for a map query)."""
    n = 1 << bits
    x = np.clip(((lon + 180.0) / 360.0 * n).astype(np.int64), 0, n - 1)
    y = np.clip(((lat + 90.0) / 180.0 * n).astype(np.int64), 0, n - 1)
    d = np.zeros_like(x)
    s = n >> 1
    while s:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        # rotate the quadrant so that the curve joins up
        flip = ~ry & rx
        x = np.where(flip, s - 1 - x, x)
        y = np.where(flip, s - 1 - y, y)
        x, y = np.where(~ry, y, x), np.where(~ry, x, y)
        s >>= 1
    return np.argsort(d, kind="stable")
