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
* it repeats an earlier row (same station and time).

Up and down intervals are derived from the accepted heartbeats by
:mod:`trucewatch.sensors.uptime`.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import polars as pl

from trucewatch.errors import InputFileError
from trucewatch.ingest.base import Batch, QuarantineEntry, header_of, sha256
from trucewatch.model.enums import SourceKind, SourceName
from trucewatch.model.times import FUTURE_SLACK

MAX_AGE = timedelta(days=7)
COLUMNS = ("station", "time")


def _rows(raw: bytes, name: str) -> tuple[list[dict[str, str]], list[str], int]:
    """(rows as text, their raw text, the number of the first row) of a CSV or JSON."""
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
        rows, texts = [], []
        for it in items:
            d = it if isinstance(it, dict) else {}
            rows.append({k: "" if d.get(k) is None else str(d.get(k)) for k in COLUMNS})
            texts.append(json.dumps(it, ensure_ascii=False)[:1000])
        return rows, texts, 1
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
    lines = raw.decode("utf-8", errors="replace").splitlines()
    rows = [{k: (r.get(k) or "").strip() for k in COLUMNS} for r in t.iter_rows(named=True)]
    return rows, [lines[k + 1] if k + 1 < len(lines) else "" for k in range(len(rows))], 2


def _time(text: str) -> datetime | None:
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z",
                                                                                "+00:00"))
    except ValueError:
        return None
    return t.astimezone(UTC) if t.tzinfo is not None else None


def parse_heartbeats(raw: bytes, name: str, stations: set[str] | None,
                     now: datetime | None = None, max_age: timedelta | None = MAX_AGE
                     ) -> Batch:
    """A heartbeats file as a batch of ``row, station, time`` (see the module's doc).
    ``stations`` None and ``now`` None with ``max_age`` None: read back as stored (the
    station and clock checks were made at receipt)."""
    read_back = stations is None and now is None and max_age is None
    now = now or datetime.now(UTC)
    rows, texts, first = _rows(raw, name)
    good: list[dict[str, object]] = []
    quarantine: list[QuarantineEntry] = []
    seen: dict[tuple[str, datetime], int] = {}
    for k, (r, text) in enumerate(zip(rows, texts, strict=True)):
        line = first + k
        why = []
        sid, t = r["station"], _time(r["time"])
        if not sid:
            why.append("empty station")
        elif stations is not None and sid not in stations:
            why.append(f"unknown station {sid[:40]!r} (not in the accepted station "
                       "inventory)")
        if t is None:
            why.append("time has no UTC offset or is not ISO 8601 (write ...Z or +00:00)"
                       if r["time"] else "empty time")
        elif read_back:
            pass
        elif t > now + FUTURE_SLACK:
            why.append(f"clock jump: time {t:%Y-%m-%dT%H:%M:%SZ} is "
                       f"{_span(t - now)} after its receipt")
        elif max_age is not None and t < now - max_age:
            why.append(f"clock jump: time {t:%Y-%m-%dT%H:%M:%SZ} is "
                       f"{_span(now - t)} before its receipt (more than "
                       f"{_span(max_age)})")
        if not why and t is not None:
            if (sid, t) in seen:
                why.append(f"duplicate heartbeat (same station and time as "
                           f"{'line' if first == 2 else 'item'} {seen[(sid, t)]})")
            else:
                seen[(sid, t)] = line
        if why:
            quarantine.append(QuarantineEntry(line, "; ".join(why), text))
        else:
            good.append({"row": line, "station": sid, "time": t})
    records = pl.DataFrame(good, schema={"row": pl.Int64, "station": pl.String,
                                         "time": pl.Datetime("us", "UTC")})
    batch = Batch(source=SourceName.HEARTBEATS, kind=SourceKind.STATION_INVENTORY,
                  layout="heartbeats", name=name, raw=raw, sha256=sha256(raw),
                  n_rows=len(rows), records=records, quarantine=quarantine)
    batch.check_accounting()
    return batch


def _span(d: timedelta) -> str:
    s = d.total_seconds()
    return f"{s / 86400:.1f} days" if s >= 86400 else f"{s / 3600:.1f} h" if s >= 3600 \
        else f"{s / 60:.0f} min"
