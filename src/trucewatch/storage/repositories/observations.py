"""Observations: the stored detections of every source, as columnar tables."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa

from trucewatch.model import contract
from trucewatch.model.enums import SourceKind
from trucewatch.model.times import query_time
from trucewatch.storage.dialect import (
    Box,
    as_time,
    great_circle_within,
    time_at_or_after,
    time_before,
    within_box,
    within_distance,
)
from trucewatch.storage.repositories.base import COUNT_CAP, Repository


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
        """Located explosions from the ground-sensor network: those kept per batch
        (observations, before revision 0009) and those the sensor stream derived across
        batches (derived_events), ordered by start time as an instant, then id."""
        schema = {"id": pl.String, "time_start": pl.String, "latitude": pl.Float64,
                  "longitude": pl.Float64, "uncertainty_m": pl.Float64, "attributes": pl.String}
        return self._frame(self._in_order(
            ("id", "time_start", "lat", "lon", "uncertainty_m", "attributes"),
            SourceKind.SENSOR_NETWORK.value), schema)

    def observations(self, kind: str) -> pl.DataFrame:
        """Observations of one source kind (drone, ...) with their attributes JSON (the
        sensor stream's derived events of that kind included), ordered by start time as
        an instant, then id."""
        schema = {"id": pl.String, "source_id": pl.String, "time_start": pl.String,
                  "time_end": pl.String, "latitude": pl.Float64, "longitude": pl.Float64,
                  "uncertainty_m": pl.Float64, "attributes": pl.String}
        return self._frame(self._in_order(
            ("id", "source_id", "time_start", "time_end", "lat", "lon", "uncertainty_m",
             "attributes"), str(getattr(kind, "value", kind))), schema)

    def _in_order(self, columns: tuple[str, ...], kind: str) -> sa.Select[Any]:
        """``columns`` of one kind's observations and derived events, as one union
        ordered by the instant of ``time_start`` (not its text: "…T10:00:00.500Z" sorts
        before "…T10:00:00Z"), then id."""
        u = sa.union_all(*(sa.select(*(t.c[c] for c in columns))
                           .where(t.c.source_kind == kind)
                           for t in (self._t("observations"), self._t("derived_events"))
                           )).subquery()
        return sa.select(u).order_by(as_time(self._dialect, u.c.time_start), u.c.id)

    def count_observations(self, kinds: Iterable[SourceKind | str],
                           before: datetime | str | None = None,
                           since: datetime | str | None = None) -> int:
        """How many observations of these kinds (derived events included) start before
        ``before`` / at or after ``since``, counted in the database and compared as
        instants (storage.dialect.time_before): the as-of block's "used" and "stored
        after the cutoff" figures."""
        wanted = [str(getattr(k, "value", k)) for k in kinds]
        n = 0
        for t in (self._t("observations"), self._t("derived_events")):
            q = sa.select(sa.func.count()).select_from(t).where(t.c.source_kind.in_(wanted))
            if before is not None:
                q = q.where(time_before(self._dialect, t.c.time_start, before))
            if since is not None:
                q = q.where(time_at_or_after(self._dialect, t.c.time_start, since))
            n += int(self._x(q).scalar_one())
        return n

    def observation_span(self, kinds: Iterable[SourceKind | str]
                         ) -> tuple[datetime, datetime] | None:
        """The first and the last start time (aware, UTC) of the observations of these
        kinds, derived events included, as instants (None when there is none). The
        extreme text comes first (the kind/time index answers it); the instant extreme
        lies on its side of that row's instant, so the exact ordering by the instant
        only reads the rows within the text slack of it (storage.dialect)."""
        wanted = [str(getattr(k, "value", k)) for k in kinds]
        tables = (self._t("observations"), self._t("derived_events"))
        ends: list[datetime] = []
        for last in (False, True):
            pick = sa.func.max if last else sa.func.min
            texts = [self._x(sa.select(pick(t.c.time_start))
                             .where(t.c.source_kind.in_(wanted))).scalar() for t in tables]
            found = [_instant(x) for x in texts if x is not None]
            if not found:
                return None
            bound = max(found) if last else min(found)
            parts = []
            for t in tables:
                q = sa.select(t.c.time_start.label("t")).where(t.c.source_kind.in_(wanted))
                parts.append(q.where(time_at_or_after(self._dialect, t.c.time_start, bound))
                             if last else q.where(time_before(
                                 self._dialect, t.c.time_start, bound + _US)))
            u = sa.union_all(*parts).subquery()
            key = as_time(self._dialect, u.c.t)
            got = self._x(sa.select(u.c.t).order_by(key.desc() if last else key)
                          .limit(1)).scalar()
            # None only for a time finer than SQLite's milliseconds: the text's is kept
            ends.append(bound if got is None else _instant(got))
        return ends[0], ends[1]

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
        df = pl.concat([self._frame(stmt, schema), self._frame(dstmt, schema)])
        df = df.with_columns(pl.col("time_start", "time_end").str.to_datetime(
            time_zone="UTC", time_unit="us")).sort("time_start", "id", maintain_order=True)
        return contract.conform(df, "stored observations")

    def observations_in_bbox(self, min_lon: float, min_lat: float, max_lon: float,
                             max_lat: float) -> list[str]:
        """Ids of the observations inside the box (edges included), any source, the
        sensor stream's derived events included."""
        u = self._in_union(("id",), box=(min_lon, min_lat, max_lon, max_lat))
        return [r[0] for r in self._x(sa.select(u.c.id))]

    def _in_union(self, columns: tuple[str, ...], box: Box | None = None,
                  start: datetime | str | None = None, end: datetime | str | None = None,
                  kind: SourceKind | str | None = None,
                  near: tuple[float, float, float] | None = None,
                  first: int | None = None) -> sa.Subquery:
        """``columns`` of the observations and of the sensor stream's derived events
        (the explosions it located across files, revision 0009) in a box and/or within
        ``near``, whose window overlaps [start, end), of one kind: one union. The stored
        observations go through the spatial index; derived_events, a small table without
        one, through plain comparisons and the haversine distance. ``first``: only rows
        that can be among the first ``first`` by start time (:meth:`_first_bound`)."""
        parts = self._in_parts(columns, box, start, end, kind, near)
        if first is not None:
            bound = self._first_bound(box, start, end, kind, near, first)
            if bound is not None:
                parts = [(t, q.where(time_before(self._dialect, t.c.time_start, bound)))
                         for t, q in parts]
        return sa.union_all(*(q for _, q in parts)).subquery()

    def _in_parts(self, columns: tuple[str, ...], box: Box | None,
                  start: datetime | str | None, end: datetime | str | None,
                  kind: SourceKind | str | None, near: tuple[float, float, float] | None
                  ) -> list[tuple[sa.Table, sa.Select[Any]]]:
        o, d = self._t("observations"), self._t("derived_events")
        stmt = sa.select(*(o.c[c] for c in columns))
        dstmt = sa.select(*(d.c[c] for c in columns))
        if box is not None:
            stmt = within_box(self._dialect, stmt, o, box)
            dstmt = dstmt.where(d.c.lon.between(box[0], box[2]),
                                d.c.lat.between(box[1], box[3]))
        if near is not None:
            stmt = within_distance(self._dialect, stmt, o, *near)
            dstmt = dstmt.where(great_circle_within(d.c.lon, d.c.lat, *near))
        wanted = None if kind is None else str(getattr(kind, "value", kind))

        def when_and_kind(q: sa.Select[Any], t: sa.Table) -> sa.Select[Any]:
            if start is not None and start != "":
                q = q.where(time_at_or_after(self._dialect, t.c.time_end, start))
            if end is not None and end != "":
                q = q.where(time_before(self._dialect, t.c.time_start, end))
            if wanted is not None:
                q = q.where(t.c.source_kind == wanted)
            return q

        return [(o, when_and_kind(stmt, o)), (d, when_and_kind(dstmt, d))]

    def _first_bound(self, box: Box | None, start: datetime | str | None,
                     end: datetime | str | None, kind: SourceKind | str | None,
                     near: tuple[float, float, float] | None, n: int) -> datetime | None:
        """A time that the first ``n`` rows by instant all start before (None: no bound
        needed, fewer than ``n`` rows match). Ordering every matching row by its instant
        sorts them all (no index holds the instant); ordering by the text is the
        ``(source_kind, time_start)`` index's order. The first ``n`` of a table by text
        are ``n`` distinct rows, so the ``n``-th smallest instant is at most the latest
        of theirs, and that lies within the text slack of the greatest of their texts
        (its first 19 characters are within a day of any of their instants:
        storage.dialect). Rows after the bound cannot be among the first ``n``."""
        bounds: list[datetime] = []
        count = 0
        for t, q in self._in_parts(("time_start",), box, start, end, kind, near):
            first = q.order_by(t.c.time_start).limit(n).subquery()
            last, got = self._x(sa.select(sa.func.max(first.c.time_start), sa.func.count())
                                .select_from(first)).one()
            count += int(got)
            if last is not None:
                bounds.append(datetime.fromisoformat(str(last)[:19]).replace(tzinfo=UTC)
                              + _TEXT_SLACK)
        if count < n:
            return None
        return max(bounds)  # every candidate starts before it; there are n of them

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
        ``&&`` / ST_DWithin on PostGIS); the sensor stream's derived events are
        included, filtered by plain comparisons and the haversine distance."""
        u = self._in_union(("id", "source_kind", "time_start", "time_end", "lat", "lon",
                            "uncertainty_m"), box, start, end, kind, near, first=limit)
        out = sa.select(u).order_by(as_time(self._dialect, u.c.time_start), u.c.id)
        if limit is not None:
            out = out.limit(limit)
        return self._frame(out, {
            "id": pl.String, "source_kind": pl.String, "time_start": pl.String,
            "time_end": pl.String, "latitude": pl.Float64, "longitude": pl.Float64,
            "uncertainty_m": pl.Float64})

    def observations_page(self, kind: SourceKind | str, box: Box | None = None,
                          start: datetime | str | None = None,
                          end: datetime | str | None = None, limit: int = 100,
                          offset: int = 0) -> tuple[pl.DataFrame, int]:
        """One page of a kind's observations (derived events included) in a box, whose
        window overlaps [start, end) as instants, ordered by start time as an instant,
        then id, with their attributes JSON; and the total, counted up to COUNT_CAP
        (what the API's ``/observations`` sends). Everything is filtered, ordered and
        paged in the database."""
        count = self._in_union(("id",), box, start, end, kind)
        capped = sa.select(sa.literal(1)).select_from(count).limit(COUNT_CAP + 1).subquery()
        total = int(self._x(sa.select(sa.func.count()).select_from(capped)).scalar_one())
        u = self._in_union(("id", "source_id", "time_start", "time_end", "lat", "lon",
                            "uncertainty_m", "attributes"), box, start, end, kind,
                           first=limit + offset)
        rows = sa.select(u).order_by(as_time(self._dialect, u.c.time_start), u.c.id
                                     ).limit(limit).offset(offset)
        return self._frame(rows, {
            "id": pl.String, "source_id": pl.String, "time_start": pl.String,
            "time_end": pl.String, "latitude": pl.Float64, "longitude": pl.Float64,
            "uncertainty_m": pl.Float64, "attributes": pl.String}), total


_US = timedelta(microseconds=1)
# the first 19 characters of a stored time (to the second, any offset) lie within a day
# of its instant (storage.dialect)
_TEXT_SLACK = timedelta(days=1, seconds=1)


def _instant(text: str) -> datetime:
    """A stored time's text as an aware UTC datetime."""
    return query_time(str(text), "stored time")
