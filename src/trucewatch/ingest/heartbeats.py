"""Station heartbeats: each station of a sensor network says "I am up" every so often.

A heartbeats file is CSV (``station,time`` and any other columns, such as ``battery_v``,
kept verbatim in the evidentiary copy) or JSON (a list of objects with ``station`` and
``time``, or ``{"heartbeats": [...]}``). It is data: each bad row is quarantined with its
line (CSV) or item (JSON, 1-based) number and every reason that applies, and the valid
rows go on (``valid + quarantined = rows``). A heartbeat is quarantined when:

* its station is not in the accepted station inventory (unknown station);
* its time has no UTC offset or is not ISO 8601;
* its time is more than ``FUTURE_SLACK`` (5 min) after its receipt, or more than
  ``max_age`` (default 7 days) before it: the station's clock jumped (a heartbeat says
  the station is up *now*; one that far off says nothing about when);
* it repeats an earlier row (same station and time);
* signed: it is later than the envelope's ``signed_at`` (beyond the clock skew): a
  signature cannot come before the heartbeat it vouches for, so the signature was
  backdated or the station's clock ran ahead (:func:`quarantine_after_signature`, called
  by the intake once the envelope is open).

Up and down intervals are derived from the accepted heartbeats by
:mod:`trucewatch.sensors.uptime`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl

from trucewatch.errors import InputFileError
from trucewatch.ingest.base import Batch, QuarantineEntry, header_of, sha256
from trucewatch.model.enums import SourceKind, SourceName
from trucewatch.model.times import FUTURE_SLACK

MAX_AGE = timedelta(days=7)
COLUMNS = ("station", "time")


# the common form, parsed vectorised; anything else goes through ``_time`` row by row
_FAST = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:[Zz]|[+-]\d{2}:\d{2})$"


def _rows(raw: bytes, name: str) -> tuple[pl.DataFrame, Callable[[int], str], int]:
    """(``station``, ``time`` as text, stripped; a function giving row k's raw text; the
    number of the first row) of a CSV or JSON."""
    head = raw[:200].lstrip()
    if head.startswith((b"[", b"{")):
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError) as err:
            raise InputFileError(f"{name}: not readable JSON ({err})"[:300], path=name,
                                 fix='give [{"station": ..., "time": ...}, ...]') from None
        items = doc.get("heartbeats") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise InputFileError(f"{name}: expected a list of heartbeats", path=name,
                                 fix='[{"station": "ST01", "time": "2026-05-30T10:00:00Z"}]')
        cols: dict[str, list[str]] = {k: [] for k in COLUMNS}
        for it in items:
            d = it if isinstance(it, dict) else {}
            for k in COLUMNS:
                cols[k].append("" if d.get(k) is None else str(d.get(k)))
        frame = pl.DataFrame(cols, schema=dict.fromkeys(COLUMNS, pl.String))

        def item_text(k: int) -> str:
            return json.dumps(items[k], ensure_ascii=False)[:1000]

        return frame, item_text, 1  # as sent (a CSV's cells are stripped, a JSON's not)
    header = header_of(raw)
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InputFileError(f"{name}: heartbeats lack columns {', '.join(missing)}",
                             path=name, fix="columns: station, time (ISO 8601 with an "
                                            "offset); others are kept as sent")
    try:
        t = pl.read_csv(io.BytesIO(raw), infer_schema=False)
    except pl.exceptions.PolarsError as err:
        raise InputFileError(f"{name}: not a readable CSV ({err})"[:300], path=name,
                             fix="save the heartbeats as comma-separated UTF-8") from None
    t.columns = [c.strip().lower() for c in t.columns]
    frame = t.select(pl.col(c).fill_null("").str.strip_chars() for c in COLUMNS)
    lines: list[str] = []

    def line_text(k: int) -> str:  # only quarantined rows need it: split once, then
        if not lines:
            lines.extend(raw.decode("utf-8", errors="replace").splitlines() or [""])
        return lines[k + 1] if k + 1 < len(lines) else ""

    return frame, line_text, 2


def _time(text: str) -> datetime | None:
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z",
                                                                                "+00:00"))
    except ValueError:
        return None
    return t.astimezone(UTC) if t.tzinfo is not None else None


def _times(text: pl.Series) -> pl.Series:
    """UTC times of ISO 8601 texts (null: no offset, or not a time): the common form
    vectorised, the rest (other ISO forms ``datetime.fromisoformat`` reads) one by one."""
    fast = text.str.contains(_FAST)
    got = (text.str.replace(r"[Zz]$", "+00:00")
           .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_unit="us",
                            time_zone="UTC"))
    got = pl.select(pl.when(fast).then(got).otherwise(None).alias("t")).to_series()
    slow = (fast.not_() | got.is_null()) & (text != "")
    idx = slow.arg_true()
    if idx.len():
        values = [_time(str(text[int(k)])) for k in idx]
        got = got.scatter(idx, pl.Series(values, dtype=pl.Datetime("us", "UTC")))
    return got


def parse_heartbeats(raw: bytes, name: str, stations: set[str] | None,
                     now: datetime | None = None, max_age: timedelta | None = MAX_AGE
                     ) -> Batch:
    """A heartbeats file as a batch of ``row, station, time`` (see the module's doc).
    ``stations`` None and ``now`` None with ``max_age`` None: read back as stored (the
    station and clock checks were made at receipt). The checks are vectorised; only
    the rows quarantined are gone through one by one, for their reasons."""
    read_back = stations is None and now is None and max_age is None
    now = now or datetime.now(UTC)
    frame, text_of, first = _rows(raw, name)
    n = frame.height
    df = frame.with_columns(_times(frame["time"]).alias("t"),
                            (pl.int_range(pl.len(), dtype=pl.Int64) + first).alias("line"))
    no_station = pl.col("station") == ""
    unknown = (no_station.not_() & pl.col("station").is_in(sorted(stations)).not_()
               if stations is not None else pl.lit(False))
    if read_back:
        future = old = pl.lit(False)
    else:
        future = pl.col("t") > now + FUTURE_SLACK
        old = (pl.col("t") < now - max_age) if max_age is not None else pl.lit(False)
    df = df.with_columns(
        (no_station | unknown | pl.col("t").is_null() | future.fill_null(False)
         | old.fill_null(False)).alias("other"))
    # a repeat: the same station and time as an earlier row that had no other problem
    firsts = (df.filter(pl.col("other").not_()).group_by("station", "t")
              .agg(pl.col("line").min().alias("first")))
    df = df.join(firsts, on=["station", "t"], how="left", maintain_order="left",
                 nulls_equal=False)
    dup = pl.col("other").not_() & (pl.col("line") != pl.col("first"))
    df = df.with_columns(dup.fill_null(False).alias("dup"))
    good = df.filter(pl.col("other").not_() & pl.col("dup").not_())
    records = good.select(pl.col("line").alias("row"), "station",
                          pl.col("t").alias("time"))
    quarantine: list[QuarantineEntry] = []
    where = "line" if first == 2 else "item"
    for line, sid, text, t, earlier in df.filter(pl.col("other") | pl.col("dup")).select(
            "line", "station", "time", "t", "first").iter_rows():
        why = []
        if not sid:
            why.append("empty station")
        elif stations is not None and sid not in stations:
            why.append(f"unknown station {sid[:40]!r} (not in the accepted station "
                       "inventory)")
        if t is None:
            why.append("time has no UTC offset or is not ISO 8601 (write ...Z or +00:00)"
                       if text else "empty time")
        elif read_back:
            pass
        elif t > now + FUTURE_SLACK:
            why.append(f"clock jump: time {t:%Y-%m-%dT%H:%M:%SZ} is "
                       f"{_span(t - now)} after its receipt")
        elif max_age is not None and t < now - max_age:
            why.append(f"clock jump: time {t:%Y-%m-%dT%H:%M:%SZ} is "
                       f"{_span(now - t)} before its receipt (more than "
                       f"{_span(max_age)})")
        if not why:
            why.append(f"duplicate heartbeat (same station and time as {where} {earlier})")
        quarantine.append(QuarantineEntry(int(line), "; ".join(why),
                                          text_of(int(line) - first)))
    batch = Batch(source=SourceName.HEARTBEATS, kind=SourceKind.STATION_INVENTORY,
                  layout="heartbeats", name=name, raw=raw, sha256=sha256(raw),
                  n_rows=n, records=records, quarantine=quarantine)
    batch.check_accounting()
    return batch


def quarantine_after_signature(batch: Batch, signed_at: datetime, skew: timedelta
                               ) -> Batch:
    """``batch`` with its heartbeats later than ``signed_at + skew`` moved to the
    quarantine, each with the reason (the intake's backdating check, per row)."""
    late = batch.records.filter(pl.col("time") > signed_at + skew)
    if late.is_empty():
        return batch
    frame, text_of, first = _rows(batch.raw, batch.name)
    del frame
    moved = [QuarantineEntry(int(row), f"backdated signature: signed at "
                             f"{signed_at:%Y-%m-%dT%H:%M:%SZ}, {_span(t - signed_at)} before "
                             f"this heartbeat's time {t:%Y-%m-%dT%H:%M:%SZ} (more than the "
                             f"{_span(skew)} clock skew allowed); sign after what you report",
                             text_of(int(row) - first))
             for row, _, t in late.iter_rows()]
    entries = sorted([*batch.quarantine, *moved], key=lambda q: q.row)
    kept = batch.records.filter(pl.col("time") <= signed_at + skew)
    out = replace(batch, records=kept, quarantine=entries)
    out.check_accounting()
    return out


def _span(d: timedelta) -> str:
    s = d.total_seconds()
    return f"{s / 86400:.1f} days" if s >= 86400 else f"{s / 3600:.1f} h" if s >= 3600 \
        else f"{s / 60:.0f} min"
