"""The sensor stream's tables (revision 0009): located explosions derived across
detections batches, the batches taken into each network's stream, and each network's
resume point (sensors/stream.py writes them; docs/pipeline.md, "Sensor stream")."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import sqlalchemy as sa

from trucewatch.storage.database import now
from trucewatch.storage.repositories.base import Repository, dicts
from trucewatch.storage.repositories.rows import observation_frame

ACTOR = "stream"
ACTION = "stream_step"
# stream_detections (revision 0010): the first copy of each detection id in a stream
FIRST_SCHEMA = {"detection_id": pl.String, "batch_id": pl.String, "row": pl.Int64,
                "station": pl.String, "phase": pl.String, "time_us": pl.Int64}
FIRST_COLUMNS = tuple(FIRST_SCHEMA)

class StreamRepository(Repository):
    """Reads and the one write of the sensor stream (all of a step in one transaction)."""

    def stream_state(self, network: str) -> dict[str, Any] | None:
        s = self._t("stream_state")
        got = dicts(self._x(sa.select(s).where(s.c.network == network)))
        return got[0] if got else None

    def stream_inputs(self, network: str | None = None) -> list[dict[str, Any]]:
        """The detections batches taken into a network's stream (every network's when
        None): batch_id, network, t_min_us, t_max_us, detections, at."""
        s = self._t("stream_inputs")
        stmt = sa.select(s)
        if network is not None:
            stmt = stmt.where(s.c.network == network)
        return dicts(self._x(stmt.order_by(s.c.at, s.c.batch_id)))

    def derived_events(self, network: str | None = None,
                       after_window_us: int | None = None) -> pl.DataFrame:
        """The located explosions of the stream (one network's, and only those of the
        windows after ``after_window_us``, when given), with every stored column."""
        d = self._t("derived_events")
        stmt = sa.select(d)
        if network is not None:
            stmt = stmt.where(d.c.network == network)
        if after_window_us is not None:
            stmt = stmt.where(d.c.window_us > after_window_us)
        rows = [tuple(r) for r in self._x(stmt.order_by(d.c.time_start, d.c.id))]
        schema = {c.name: _polars(c.type) for c in d.columns}
        return pl.DataFrame(rows, orient="row", schema=schema)

    def stream_detections(self, network: str, ids: list[str] | None = None,
                          limit: int | None = None) -> pl.DataFrame:
        """The first copy of each detection id taken into a network's stream (of ``ids``
        only, when given; at most ``limit`` rows): detection_id, batch_id, row, station,
        phase, time_us."""
        sd = self._t("stream_detections")
        cols = [sd.c[n] for n in FIRST_COLUMNS]
        if ids is None:
            got = [tuple(r) for r in self._x(sa.select(*cols).where(sd.c.network == network)
                                             .limit(limit))]
        else:
            got = []
            for k in range(0, len(ids), 500):
                got += [tuple(r) for r in self._x(sa.select(*cols).where(
                    sd.c.network == network, sd.c.detection_id.in_(ids[k:k + 500])))]
        return pl.DataFrame(got, orient="row", schema=FIRST_SCHEMA)

    def save_stream_step(self, network: str, state: dict[str, Any],
                         inputs: list[dict[str, Any]], events: pl.DataFrame,
                         after_window_us: int | None, actor: str = ACTOR,
                         details: dict[str, Any] | None = None,
                         firsts: pl.DataFrame | None = None,
                         replace_firsts: bool = False) -> dict[str, int]:
        """One step of a network's stream, all or nothing: the derived events of the
        windows after ``after_window_us`` (all of the network's when None) are replaced
        by ``events`` (the observation contract plus window_us and detection_ids), the
        ``inputs`` taken are recorded, the first copies of the detection ids new to the
        stream (``firsts``, FIRST_COLUMNS; with ``replace_firsts`` they replace the
        network's) are kept, and the network's ``state`` is written. Every row written
        or removed is bound in the step's log entry."""
        d, si, ss = (self._t(n) for n in ("derived_events", "stream_inputs", "stream_state"))
        sd = self._t("stream_detections")
        at = now()
        with self._transaction():
            new_rows = (pl.DataFrame(schema=FIRST_SCHEMA) if firsts is None
                        else firsts.select(FIRST_COLUMNS).cast(FIRST_SCHEMA))  # type: ignore[arg-type]
            if replace_firsts:  # only what differs is removed and written (and bound)
                kept = self.stream_detections(network)
                gone = kept.join(new_rows, on=list(FIRST_COLUMNS), how="anti")
                new_rows = new_rows.join(kept, on=list(FIRST_COLUMNS), how="anti")
                ids = gone["detection_id"].to_list()
                if ids:
                    self._bind("stream_detections", [(network, i) for i in ids])
                    for k in range(0, len(ids), 500):
                        self._x(sd.delete().where(sd.c.network == network,
                                                  sd.c.detection_id.in_(ids[k:k + 500])))
            if new_rows.height:
                rows = new_rows.with_columns(pl.lit(network).alias("network")).to_dicts()
                self._bind("stream_detections",
                           [(network, r["detection_id"]) for r in rows], new=not replace_firsts)
                self._x(sd.insert(), rows)
            old = d.c.network == network
            if after_window_us is not None:
                old = sa.and_(old, d.c.window_us > after_window_us)
            self._bind_where("derived_events", old)
            self._x(d.delete().where(old))
            rows = _derived_rows(events, network, at)
            # an id found again (the same explosion, re-derived) replaces the row kept
            ids = [r["id"] for r in rows]
            if ids:
                self._bind("derived_events", [(i,) for i in ids])
                for k in range(0, len(ids), 500):
                    self._x(d.delete().where(d.c.id.in_(ids[k:k + 500])))
                self._x(d.insert(), rows)
            if inputs:
                self._bind("stream_inputs", [(r["batch_id"],) for r in inputs], new=True)
                self._x(si.insert(), [{**r, "network": network, "at": at} for r in inputs])
            self._bind("stream_state", [(network,)])
            self._x(ss.delete().where(ss.c.network == network))
            self._x(ss.insert().values(network=network, at=at, **state))
            self._log(actor, ACTION, network, {**(details or {}), "events": len(rows),
                                               "inputs": [r["batch_id"] for r in inputs]})
        return {"events": len(rows), "inputs": len(inputs)}


def _polars(typ: Any) -> Any:
    name = type(typ).__name__.lower()
    if "int" in name:
        return pl.Int64
    if "double" in name or "real" in name or "float" in name:
        return pl.Float64
    return pl.String


def _derived_rows(events: pl.DataFrame, network: str, at: str) -> list[dict[str, Any]]:
    if events.is_empty():
        return []
    events = events.unique(subset="id", keep="first", maintain_order=True)
    base = observation_frame(events.drop("window_us", "detection_ids"), "", "derived events")
    ids = events["detection_ids"]
    if ids.dtype != pl.String:  # a list of detection ids per event: kept as JSON text
        ids = pl.Series("detection_ids", [json.dumps(v) for v in ids.to_list()],
                        dtype=pl.String)
    out = base.drop("batch_id").with_columns(
        events["window_us"].cast(pl.Int64), ids.alias("detection_ids"),
        pl.lit(network).alias("network"), pl.lit(at).alias("derived_at"))
    return out.to_dicts()


__all__ = ["ACTION", "ACTOR", "FIRST_COLUMNS", "FIRST_SCHEMA", "StreamRepository"]
