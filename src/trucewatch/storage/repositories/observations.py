"""Observations: the stored detections of every source, as columnar tables."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from trucewatch.model import contract
from trucewatch.model.enums import SourceKind
from trucewatch.storage.dialect import (
    Box,
    as_time,
    great_circle_within,
    time_at_or_after,
    time_before,
    within_box,
    within_distance,
)
from trucewatch.storage.repositories.base import Repository


class ObservationRepository(Repository):
    """Reads of the ``observations`` table (written by EvidenceRepository.ingest)."""

    def _frame(self, stmt: Any, schema: dict[str, Any]) -> pl.DataFrame:
        return pl.DataFrame([tuple(r) for r in self._x(stmt)], orient="row", schema=schema)

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
                              before: datetime | None = None,
                              since: datetime | None = None) -> pl.DataFrame:
        """Stored observations as the observation contract (model.contract.SCHEMA, checked
        by ``conform``): what the stages read, whatever the source (satellite fires,
        located explosions, drone reports). ``kinds``: only these source kinds;
        ``before`` / ``since``: only those whose window starts before ``before`` / at or
        after ``since`` (compared as times in the database, not as stored text:
        storage.dialect.time_before). Ordered by start time (as a time), then id. A row stored
        before revision 0008 of a kind its adapter gave no klass or reliability for has
        them null; the stored times are read back at the precision they were written
        (docs/observation-contract.md)."""
        o = self._t("observations")
        stmt = sa.select(o.c.id, o.c.source_kind, o.c.source_id, o.c.sensor, o.c.time_start,
                         o.c.time_end, o.c.lat, o.c.lon, o.c.uncertainty_m, o.c.klass,
                         o.c.reliability, o.c.attributes, o.c.raw_sha256, o.c.raw_row)
        d = self._t("derived_events")
        dstmt = sa.select(*(d.c[c.name] for c in stmt.selected_columns))
        wanted = None if kinds is None else [str(getattr(k, "value", k)) for k in kinds]

        def kept(q: sa.Select[Any], t: sa.Table) -> sa.Select[Any]:
            if wanted is not None:
                q = q.where(t.c.source_kind.in_(wanted))
            if before is not None:
                q = q.where(time_before(self._dialect, t.c.time_start, before))
            if since is not None:
                q = q.where(time_at_or_after(self._dialect, t.c.time_start, since))
            return q

        stmt, dstmt = kept(stmt, o), kept(dstmt, d)
        schema = {
            "id": pl.String, "source_kind": pl.String, "source_id": pl.String,
            "sensor": pl.String, "time_start": pl.String, "time_end": pl.String,
            "lat": pl.Float64, "lon": pl.Float64, "uncertainty_m": pl.Float64,
            "klass": pl.String, "reliability": pl.Float64, "attributes": pl.String,
            "raw_sha256": pl.String, "raw_row": pl.Int64}
        # ordered by the times read, not by their text (a batch to the millisecond and
        # one to the second order differently as text within one second)
        df = self._with_derived(self._frame(stmt, schema), self._frame(dstmt, schema))
        df = df.with_columns(pl.col("time_start", "time_end").str.to_datetime(
            time_zone="UTC", time_unit="us")).sort("time_start", "id", maintain_order=True)
        return contract.conform(df, "stored observations")

    def observations_in_bbox(self, min_lon: float, min_lat: float, max_lon: float,
                             max_lat: float) -> list[str]:
        """Ids of the observations inside the box (edges included), any source."""
        o = self._t("observations")
        stmt = within_box(self._dialect, sa.select(o.c.id), o,
                          (min_lon, min_lat, max_lon, max_lat))
        return [r[0] for r in self._x(stmt)]

    def observations_in(self, box: Box | None = None, start: datetime | str | None = None,
                        end: datetime | str | None = None, kind: SourceKind | None = None,
                        near: tuple[float, float, float] | None = None,
                        limit: int | None = None) -> pl.DataFrame:
        """Observations in a box and/or within ``near`` = (lon, lat, metres), whose
        window overlaps [start, end), of one kind: id, source_kind, time_start, time_end,
        latitude, longitude, uncertainty_m, ordered by time. ``start``/``end``: aware
        datetimes or ISO-8601 text with an offset, compared with the stored times as
        times in the database (any offset or fraction of a second; a naive time is an
        InvalidInputError). The spatial filter runs in the database (R*Tree on SQLite;
        ST_Intersects / ST_DWithin on PostGIS); the sensor stream's derived events are
        included, filtered by plain comparisons and the haversine distance."""
        o, d = self._t("observations"), self._t("derived_events")
        stmt = sa.select(o.c.id, o.c.source_kind, o.c.time_start, o.c.time_end, o.c.lat,
                         o.c.lon, o.c.uncertainty_m)
        # the explosions the sensor stream located across files (revision 0009) are
        # observations too; a small table without a spatial index: plain comparisons
        dstmt = sa.select(d.c.id, d.c.source_kind, d.c.time_start, d.c.time_end, d.c.lat,
                          d.c.lon, d.c.uncertainty_m)
        if box is not None:
            stmt = within_box(self._dialect, stmt, o, box)
            dstmt = dstmt.where(d.c.lon.between(box[0], box[2]),
                                d.c.lat.between(box[1], box[3]))
        if near is not None:
            stmt = within_distance(self._dialect, stmt, o, *near)
            dstmt = dstmt.where(great_circle_within(d.c.lon, d.c.lat, *near))

        def when_and_kind(q: sa.Select[Any], t: sa.Table) -> sa.Select[Any]:
            if start is not None and start != "":
                q = q.where(time_at_or_after(self._dialect, t.c.time_end, start))
            if end is not None and end != "":
                q = q.where(time_before(self._dialect, t.c.time_start, end))
            if kind is not None:
                q = q.where(t.c.source_kind == kind.value)
            return q

        stmt, dstmt = when_and_kind(stmt, o), when_and_kind(dstmt, d)
        u = sa.union_all(stmt, dstmt).subquery()
        out = sa.select(u).order_by(as_time(self._dialect, u.c.time_start), u.c.id)
        if limit is not None:
            out = out.limit(limit)
        return self._frame(out, {
            "id": pl.String, "source_kind": pl.String, "time_start": pl.String,
            "time_end": pl.String, "latitude": pl.Float64, "longitude": pl.Float64,
            "uncertainty_m": pl.Float64})
