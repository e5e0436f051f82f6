"""Observations: the stored detections of every source, as columnar tables."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from trucewatch.ingest.firms import time_basis
from trucewatch.model import contract
from trucewatch.model.enums import SourceKind
from trucewatch.storage.dialect import Box, within_box, within_distance
from trucewatch.storage.repositories.base import Repository


class ObservationRepository(Repository):
    """Reads of the ``observations`` table (written by EvidenceRepository.ingest)."""

    def _frame(self, stmt: Any, schema: dict[str, Any]) -> pl.DataFrame:
        return pl.DataFrame([tuple(r) for r in self._x(stmt)], orient="row", schema=schema)

    def fire_detections(self, start: date | None = None,
                        end: date | None = None) -> pl.DataFrame:
        """Stored FIRMS detections with acq_date in [start, end]: id, latitude, longitude,
        acq_date, sensor, time_start, time_end (the window the satellite saw it in, ISO UTC,
        inclusive) and time_basis (how that window is known, ingest.firms.time_basis)."""
        o = self._t("observations")
        stmt = sa.select(o.c.id, o.c.lat, o.c.lon, o.c.acq_date, o.c.sensor, o.c.time_start,
                         o.c.time_end).where(o.c.source_kind == SourceKind.SATELLITE_FIRE.value)
        if start:
            stmt = stmt.where(o.c.acq_date >= start.isoformat())
        if end:
            stmt = stmt.where(o.c.acq_date <= end.isoformat())
        df = self._frame(stmt.order_by(o.c.acq_date, o.c.id), {
            "id": pl.String, "latitude": pl.Float64, "longitude": pl.Float64,
            "acq_date": pl.String, "sensor": pl.String, "time_start": pl.String,
            "time_end": pl.String})
        # an acq_time row's window is its minute; a date-only row's spans hours
        span = (pl.col("time_end").str.to_datetime(time_zone="UTC")
                - pl.col("time_start").str.to_datetime(time_zone="UTC"))
        return df.with_columns(pl.col("acq_date").str.to_date(),
                               time_basis(pl.col("sensor"), span < pl.duration(minutes=2))
                               .alias("time_basis"))

    def observations_of_batches(self, batch_ids: list[str]) -> pl.DataFrame:
        """The observations those input batches stored (id, source_kind, acq_date,
        time_start), for an incremental pass: what arrived since a watermark. A row sent
        again in a later batch keeps its first batch, so it is not listed again."""
        o = self._t("observations")
        schema = {"id": pl.String, "source_kind": pl.String, "acq_date": pl.String,
                  "time_start": pl.String}
        frames = [self._frame(sa.select(o.c.id, o.c.source_kind, o.c.acq_date,
                                        o.c.time_start)
                              .where(o.c.batch_id.in_(batch_ids[k:k + 500])), schema)
                  for k in range(0, len(batch_ids), 500)]  # bounded IN lists
        return pl.concat(frames) if frames else pl.DataFrame(schema=schema)

    def fire_summary(self) -> pl.DataFrame:
        """Stored FIRMS detections per sensor and UTC date (sensor, acq_date, n): cheap, for
        checking a run's options before any heavy work."""
        o = self._t("observations")
        stmt = (sa.select(o.c.sensor, o.c.acq_date, sa.func.count())
                .where(o.c.source_kind == SourceKind.SATELLITE_FIRE.value)
                .group_by(o.c.sensor, o.c.acq_date))
        return self._frame(stmt, {"sensor": pl.String, "acq_date": pl.String,
                                  "n": pl.Int64}).with_columns(pl.col("acq_date").str.to_date())

    def explosions(self) -> pl.DataFrame:
        """Located explosions from the ground-sensor network."""
        o = self._t("observations")
        stmt = (sa.select(o.c.id, o.c.time_start, o.c.lat, o.c.lon, o.c.uncertainty_m,
                          o.c.attributes)
                .where(o.c.source_kind == SourceKind.SENSOR_NETWORK.value)
                .order_by(o.c.time_start, o.c.id))
        schema = {"id": pl.String, "time_start": pl.String, "latitude": pl.Float64,
                  "longitude": pl.Float64, "uncertainty_m": pl.Float64, "attributes": pl.String}
        d = self._t("derived_events")
        return self._with_derived(self._frame(stmt, schema), self._frame(
            sa.select(d.c.id, d.c.time_start, d.c.lat, d.c.lon, d.c.uncertainty_m,
                      d.c.attributes), schema))

    def _with_derived(self, stored: pl.DataFrame, derived: pl.DataFrame) -> pl.DataFrame:
        """Located explosions kept per batch (observations, before revision 0009) and
        those the sensor stream derived across batches (derived_events), as one table in
        the stored order (start time, then id)."""
        if derived.is_empty():
            return stored
        return pl.concat([stored, derived]).sort("time_start", "id")

    def observations(self, kind: str) -> pl.DataFrame:
        """Observations of one source kind (drone, ...) with their attributes JSON."""
        o = self._t("observations")
        stmt = (sa.select(o.c.id, o.c.source_id, o.c.time_start, o.c.time_end, o.c.lat,
                          o.c.lon, o.c.uncertainty_m, o.c.attributes)
                .where(o.c.source_kind == str(getattr(kind, "value", kind)))
                .order_by(o.c.time_start, o.c.id))
        schema = {"id": pl.String, "source_id": pl.String, "time_start": pl.String,
                  "time_end": pl.String, "latitude": pl.Float64, "longitude": pl.Float64,
                  "uncertainty_m": pl.Float64, "attributes": pl.String}
        d = self._t("derived_events")
        derived = self._frame(sa.select(d.c.id, d.c.source_id, d.c.time_start, d.c.time_end,
                                        d.c.lat, d.c.lon, d.c.uncertainty_m, d.c.attributes)
                              .where(d.c.source_kind == str(getattr(kind, "value", kind))),
                              schema)
        return self._with_derived(self._frame(stmt, schema), derived)

    def contract_observations(self, kinds: Iterable[SourceKind | str] | None = None,
                              before: datetime | None = None) -> pl.DataFrame:
        """Stored observations as the observation contract (model.contract.SCHEMA, checked
        by ``conform``): what the stages read, whatever the source. ``kinds``: only these
        source kinds; ``before``: only those whose window starts before it (compared as
        times, not as stored text). Ordered by stored start time, then id. A row stored
        before revision 0008 of a kind its adapter gave no klass or reliability for has
        them null; the stored times are read back at the precision they were written
        (docs/observation-contract.md)."""
        o = self._t("observations")
        stmt = sa.select(o.c.id, o.c.source_kind, o.c.source_id, o.c.sensor, o.c.time_start,
                         o.c.time_end, o.c.lat, o.c.lon, o.c.uncertainty_m, o.c.klass,
                         o.c.reliability, o.c.attributes, o.c.raw_sha256, o.c.raw_row)
        d = self._t("derived_events")
        dstmt = sa.select(*(d.c[c.name] for c in stmt.selected_columns))
        if kinds is not None:
            wanted = [str(getattr(k, "value", k)) for k in kinds]
            stmt = stmt.where(o.c.source_kind.in_(wanted))
            dstmt = dstmt.where(d.c.source_kind.in_(wanted))
        schema = {
            "id": pl.String, "source_kind": pl.String, "source_id": pl.String,
            "sensor": pl.String, "time_start": pl.String, "time_end": pl.String,
            "lat": pl.Float64, "lon": pl.Float64, "uncertainty_m": pl.Float64,
            "klass": pl.String, "reliability": pl.Float64, "attributes": pl.String,
            "raw_sha256": pl.String, "raw_row": pl.Int64}
        df = self._with_derived(self._frame(stmt.order_by(o.c.time_start, o.c.id), schema),
                                self._frame(dstmt, schema))
        df = df.with_columns(pl.col("time_start", "time_end").str.to_datetime(
            time_zone="UTC", time_unit="us"))
        if before is not None:
            df = df.filter(pl.col("time_start") < before)
        return contract.conform(df, "stored observations")

    def observations_in_bbox(self, min_lon: float, min_lat: float, max_lon: float,
                             max_lat: float) -> list[str]:
        """Ids of the observations inside the box (edges included), any source."""
        o = self._t("observations")
        stmt = within_box(self._dialect, sa.select(o.c.id), o,
                          (min_lon, min_lat, max_lon, max_lat))
        return [r[0] for r in self._x(stmt)]

    def observations_in(self, box: Box | None = None, start: str | None = None,
                        end: str | None = None, kind: SourceKind | None = None,
                        near: tuple[float, float, float] | None = None,
                        limit: int | None = None) -> pl.DataFrame:
        """Observations in a box and/or within ``near`` = (lon, lat, metres), whose
        window overlaps [start, end) (ISO UTC), of one kind: id, source_kind, time_start,
        time_end, latitude, longitude, uncertainty_m, ordered by time. The spatial filter
        runs in the database (R*Tree on SQLite; ST_Intersects / ST_DWithin on PostGIS)."""
        o = self._t("observations")
        stmt = sa.select(o.c.id, o.c.source_kind, o.c.time_start, o.c.time_end, o.c.lat,
                         o.c.lon, o.c.uncertainty_m)
        if box is not None:
            stmt = within_box(self._dialect, stmt, o, box)
        if near is not None:
            stmt = within_distance(self._dialect, stmt, o, *near)
        if start:
            stmt = stmt.where(o.c.time_end >= start)
        if end:
            stmt = stmt.where(o.c.time_start < end)
        if kind is not None:
            stmt = stmt.where(o.c.source_kind == kind.value)
        stmt = stmt.order_by(o.c.time_start, o.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return self._frame(stmt, {
            "id": pl.String, "source_kind": pl.String, "time_start": pl.String,
            "time_end": pl.String, "latitude": pl.Float64, "longitude": pl.Float64,
            "uncertainty_m": pl.Float64})
