"""Ground-sensor inputs: the station inventory and the detections.

Stations (CSV, JSON or StationXML through ObsPy) are configuration: any problem is
an error that lists every bad station. Detections are data: each bad row is
quarantined with its line number and every reason that applies, and the valid
rows go on (``valid + quarantined = rows``, checked on every batch).

A detection is quarantined when its station is unknown, its time has no UTC
offset, cannot be read or lies outside the plausible range (:mod:`trucewatch.model.times`:
before 1990 or in the future), its phase is unknown or impossible
at that kind of station (P or S at a microphone), its back-azimuth, apparent
velocity, amplitude or SNR is out of range, or it repeats an earlier detection
(same id, or same station and phase within ``NEAR_DUPLICATE_S``: a duplicated
stream; the entry names the detection it repeats).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from trucewatch.errors import InputFileError
from trucewatch.ingest.base import Batch, QuarantineEntry, header_of, read_raw, sha256
from trucewatch.model.enums import SourceKind, SourceName
from trucewatch.model.physics import (
    MAX_SEISMIC_SPEED,
    MAX_SOUND_SPEED,
    MIN_SEISMIC_SPEED,
    MIN_SOUND_SPEED,
)
from trucewatch.model.times import EARLIEST, FUTURE_SLACK

_AC, _IS, _SE = SourceKind.ACOUSTIC, SourceKind.INFRASOUND, SourceKind.SEISMIC
STATION_KINDS = (_AC.value, _IS.value, _SE.value)
STATION_COLUMNS = ("id", "latitude", "longitude", "elevation_m", "kind")
DETECTION_COLUMNS = ("detection_id", "station", "time", "phase")
# two detections of one station and phase closer than this are one detection sent twice
# (a picker's dead time is longer; rounds of a barrage reach a station seconds apart)
NEAR_DUPLICATE_S = 0.05
_PHASES_AT = {_AC: {"acoustic"}, _IS: {"acoustic"}, _SE: {"acoustic", "p", "s"}}


# ---------------------------------------------------------------------------- stations
def read_stations(path: Path) -> pl.DataFrame:
    """Columns: id, latitude, longitude, elevation_m, kind, array, timing_s."""
    return parse_stations(read_raw(path), path)


def parse_stations(raw: bytes, name: Path | str) -> pl.DataFrame:
    """A station inventory from its bytes (CSV, JSON or StationXML)."""
    path = Path(name)
    head = raw[:400].lstrip()
    if head.startswith(b"<"):
        table = _stationxml(raw, path)
    elif head.startswith((b"[", b"{")):
        table = _station_json(raw, path)
    else:
        table = _station_csv(raw, path)
    return _check_stations(table, str(path))


def _station_csv(raw: bytes, path: Path) -> pl.DataFrame:
    header = header_of(raw)
    twice = sorted({c for c in header if header.count(c) > 1 and c in STATION_COLUMNS})
    if twice:
        raise InputFileError(f"{path}: column(s) named twice in the header: "
                             f"{', '.join(twice)}", path=str(path),
                             fix="give each column once (is the header line damaged?)")
    missing = [c for c in STATION_COLUMNS if c not in header]
    if missing:
        raise InputFileError(f"{path}: station inventory lacks columns {', '.join(missing)}",
                             path=str(path), fix="columns: " + ", ".join(STATION_COLUMNS)
                             + " (optional: array, timing_s)")
    try:
        return pl.read_csv(io.BytesIO(raw), infer_schema=False)
    except pl.exceptions.PolarsError as err:
        raise InputFileError(f"{path}: not a readable CSV ({err})", path=str(path),
                             fix="save the inventory as comma-separated UTF-8") from err


def _station_json(raw: bytes, path: Path) -> pl.DataFrame:
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as err:
        raise InputFileError(f"{path}: invalid JSON at line {err.lineno} ({err.msg})",
                             path=str(path), fix="give a list of station objects") from err
    except (UnicodeDecodeError, RecursionError) as err:
        why = "not UTF-8" if isinstance(err, UnicodeDecodeError) else "nested too deeply"
        raise InputFileError(f"{path}: JSON {why}", path=str(path),
                             fix="give a list of station objects in UTF-8") from err
    rows = doc.get("stations", []) if isinstance(doc, dict) else doc
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InputFileError(f"{path}: expected a list of station objects",
                             path=str(path), fix='[{"id": ..., "latitude": ...}, ...]')
    return pl.DataFrame([{k: None if v is None else str(v) for k, v in r.items()}
                         for r in rows], infer_schema_length=None)


def _stationxml(raw: bytes, path: Path) -> pl.DataFrame:
    from obspy import read_inventory

    try:
        inv = read_inventory(io.BytesIO(raw), format="STATIONXML")
    except Exception as err:
        raise InputFileError(f"{path}: not a readable StationXML document ({err})",
                             path=str(path), fix="validate it against FDSN StationXML 1.x"
                             ) from err
    rows = []
    for net in inv:
        for sta in net:
            codes = {c.code[-1:].upper() for c in sta.channels} | {
                c.code[1:2].upper() for c in sta.channels}
            # SEED band/instrument codes: D = pressure (infrasound/acoustic), H/L/N = seismic
            kind = _IS.value if "D" in codes else _SE.value
            rows.append({"id": f"{net.code}.{sta.code}", "latitude": str(sta.latitude),
                         "longitude": str(sta.longitude), "elevation_m": str(sta.elevation),
                         "kind": kind, "array": "false", "timing_s": None})
    columns = (*STATION_COLUMNS, "array", "timing_s")
    return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String))


def _check_stations(t: pl.DataFrame, name: str) -> pl.DataFrame:
    missing = [c for c in STATION_COLUMNS if c not in t.columns]
    if missing:
        raise InputFileError(f"{name}: station inventory lacks {', '.join(missing)}",
                             path=name, fix="columns: " + ", ".join(STATION_COLUMNS)
                             + " (optional: array, timing_s)")
    # only the columns read (others, even oddly named or repeated ones, are ignored)
    t = t.select(c for c in (*STATION_COLUMNS, "array", "timing_s") if c in t.columns)
    for col in ("array", "timing_s"):
        if col not in t.columns:
            t = t.with_columns(pl.lit(None, dtype=pl.String).alias(col))
    t = t.with_columns(pl.col(c).cast(pl.String) for c in t.columns)
    num = t.with_columns(
        pl.col("latitude").cast(pl.Float64, strict=False).alias("lat_"),
        pl.col("longitude").cast(pl.Float64, strict=False).alias("lon_"),
        pl.col("elevation_m").fill_null("0").cast(pl.Float64, strict=False).alias("elev_"),
        pl.col("timing_s").fill_null("0.001").cast(pl.Float64, strict=False).alias("timing_"),
        pl.col("kind").str.strip_chars().str.to_lowercase().alias("kind_"))
    problems = []
    for k, r in enumerate(num.iter_rows(named=True), start=1):
        sid = (r["id"] or "").strip()
        why = []
        if not sid:
            why.append("empty id")
        if r["lat_"] is None or not -90 <= r["lat_"] <= 90:
            why.append(f"latitude {r['latitude']!r} not in -90..90")
        if r["lon_"] is None or not -180 <= r["lon_"] <= 180:
            why.append(f"longitude {r['longitude']!r} not in -180..180")
        if r["elev_"] is None or not -500 <= r["elev_"] <= 9000:
            why.append(f"elevation_m {r['elevation_m']!r} not in -500..9000 m")
        if r["kind_"] not in STATION_KINDS:
            why.append(f"kind {r['kind']!r} not one of {', '.join(STATION_KINDS)}")
        if r["timing_"] is None or not 0 <= r["timing_"] <= 1:
            why.append(f"timing_s {r['timing_s']!r} not in 0..1 s")
        if why:
            problems.append(f"station {k} ({sid or '?'}): {'; '.join(why)}")
    dup = num.filter(pl.col("id").is_duplicated())["id"].unique().drop_nulls().to_list()
    if dup:
        problems.append(f"duplicate station ids: {', '.join(sorted(dup)[:10])}")
    if problems:
        raise InputFileError(f"{name}: {len(problems)} problem(s) in the station inventory: "
                             + " | ".join(problems[:20]), path=name,
                             fix="correct these stations; the associator needs every "
                             "position exact")
    return num.select(
        pl.col("id").str.strip_chars(), pl.col("lat_").alias("latitude"),
        pl.col("lon_").alias("longitude"), pl.col("elev_").alias("elevation_m"),
        pl.col("kind_").alias("kind"),
        pl.col("array").fill_null("false").str.to_lowercase().is_in(["true", "1", "yes"])
        .alias("array"), pl.col("timing_").alias("timing_s"))


# -------------------------------------------------------------------------- detections
def read_detections(path: Path, stations: pl.DataFrame, now: datetime | None = None) -> Batch:
    return parse_detections(read_raw(path), str(path), stations, now=now)


def parse_detections(raw: bytes, name: str, stations: pl.DataFrame | None,
                     now: datetime | None = None) -> Batch:
    header = header_of(raw)
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise InputFileError(f"{name}: column(s) named twice in the header: "
                             f"{', '.join(twice[:5])}", path=name,
                             fix="give each column once (is the header line damaged?)")
    missing = [c for c in DETECTION_COLUMNS if c not in header]
    if missing:
        raise InputFileError(f"{name}: detections lack columns {', '.join(missing)}", path=name,
                             fix="columns: detection_id, station, time (ISO 8601 UTC), phase; "
                             "optional: back_azimuth_deg, apparent_velocity_km_s, amplitude, snr")
    text = raw.decode("utf-8", errors="replace")
    lines = text.splitlines()
    try:
        t = pl.read_csv(io.BytesIO(raw), infer_schema=False, truncate_ragged_lines=False)
    except pl.exceptions.PolarsError as err:
        raise InputFileError(f"{name}: not a readable CSV ({err})", path=name,
                             fix="save the detections as comma-separated UTF-8") from err
    t.columns = [c.strip().lower() for c in t.columns]
    for col in ("back_azimuth_deg", "apparent_velocity_km_s", "amplitude", "snr"):
        if col not in t.columns:
            t = t.with_columns(pl.lit(None, dtype=pl.String).alias(col))
    now = now or datetime.now(UTC)
    kinds = dict(zip(stations["id"].to_list(), stations["kind"].to_list(), strict=True)) \
        if stations is not None else {}
    t = t.with_row_index("line", offset=2).with_columns(
        pl.col("time").str.strip_chars().alias("time_s"),
        pl.col("phase").str.strip_chars().str.to_lowercase().alias("phase_l"),
        pl.col("station").str.strip_chars().alias("station_s"),
        pl.col("detection_id").str.strip_chars().alias("id_s"),
        *(pl.col(c).str.strip_chars().cast(pl.Float64, strict=False).alias(c + "_f")
          for c in ("back_azimuth_deg", "apparent_velocity_km_s", "amplitude", "snr")))
    has_tz = pl.col("time_s").str.contains(r"(Z|[+-]\d\d:?\d\d)$")
    t = t.with_columns(
        pl.when(has_tz).then(_iso_time(pl.col("time_s"))).alias("time_dt"),
        pl.col("station_s").replace_strict(kinds, default=None).alias("kind"))
    reasons = [
        (pl.col("id_s").is_null() | (pl.col("id_s") == ""), "empty detection_id"),
        (pl.col("kind").is_null(), "unknown station (not in the inventory)"),
        (pl.col("time_s").is_null() | ~has_tz.fill_null(False),
         "time has no UTC offset (write ...Z or +00:00)"),
        (has_tz.fill_null(False) & pl.col("time_dt").is_null(), "time is not ISO 8601"),
        (pl.col("time_dt") > now + FUTURE_SLACK, "time is in the future"),
        (pl.col("time_dt") < EARLIEST, f"time is before {EARLIEST.date().isoformat()} (the "
         "earliest plausible observation time)"),
        (~pl.col("phase_l").is_in(["acoustic", "p", "s"]).fill_null(False),
         "phase not one of acoustic, P, S"),
        (pl.col("phase_l").is_in(["p", "s"]) & pl.col("kind").is_in([_AC.value, _IS.value]),
         "P or S phase at an acoustic/infrasound station"),
        (_bad_number("back_azimuth_deg") | ~pl.col("back_azimuth_deg_f").is_between(
            0, 360, closed="left").fill_null(True), "back_azimuth_deg not in 0..360"),
        (_bad_number("apparent_velocity_km_s") | _impossible_velocity(),
         "impossible apparent velocity for this phase"),
        (_bad_number("amplitude") | _not_finite_positive("amplitude_f"),
         "amplitude negative or not a number"),
        (_bad_number("snr") | _not_finite_positive("snr_f"), "snr negative or not a number"),
    ]
    t = t.with_columns(pl.concat_list([pl.when(c.fill_null(False)).then(pl.lit(r))
                                       for c, r in reasons]).list.drop_nulls().alias("why"))
    # duplicates among otherwise valid rows: the first one is kept
    ok = t.filter(pl.col("why").list.len() == 0)
    first_id = ok.group_by("id_s").agg(pl.col("line").min().alias("first_line"))
    # near-duplicates (a stream delivered twice, re-numbered or re-timed by rounding):
    # detections of one station and phase closer than NEAR_DUPLICATE_S form one run;
    # the run's first line is kept, the others name it
    near = (ok.unique("id_s", keep="first").sort("station_s", "phase_l", "time_dt", "line")
            .with_columns(
                ((pl.col("time_dt").diff().dt.total_microseconds() > NEAR_DUPLICATE_S * 1e6)
                 | (pl.col("station_s") != pl.col("station_s").shift())
                 | (pl.col("phase_l") != pl.col("phase_l").shift())).fill_null(True)
                .cum_sum().alias("run")))
    near = near.with_columns(
        pl.col("line").min().over("run").alias("first_key_line"),
        pl.col("id_s").sort_by("line").first().over("run").alias("first_key_id"),
        ((pl.col("time_dt") - pl.col("time_dt").sort_by("line").first().over("run"))
         .dt.total_microseconds().abs() / 1000.0).alias("apart_ms"),
    ).select("line", "first_key_line", "first_key_id", "apart_ms")
    t = (t.join(first_id, on="id_s", how="left").join(near, on="line", how="left")
         .sort("line"))
    valid = pl.col("why").list.len() == 0
    dup_id = valid & (pl.col("line") > pl.col("first_line"))
    dup_key = valid & (pl.col("line") > pl.col("first_key_line")) & ~dup_id
    t = t.with_columns(pl.concat_list([
        pl.col("why"),
        pl.when(dup_id).then(pl.concat_str(pl.lit("duplicate detection_id (first at line "),
                                           pl.col("first_line").cast(pl.String), pl.lit(")"))),
        pl.when(dup_key & (pl.col("apart_ms") == 0)).then(pl.concat_str(
            pl.lit("same station, phase and time as line "),
            pl.col("first_key_line").cast(pl.String), pl.lit(" (detection "),
            pl.col("first_key_id"), pl.lit(")"))),
        pl.when(dup_key & (pl.col("apart_ms") > 0)).then(pl.concat_str(
            pl.lit("near-duplicate of detection "), pl.col("first_key_id"),
            pl.lit(" (line "), pl.col("first_key_line").cast(pl.String),
            pl.lit("): same station and phase, "),
            pl.col("apart_ms").round(1).cast(pl.String),
            pl.lit(" ms apart (a stream sent twice?)"))),
    ]).list.drop_nulls().alias("why"))
    bad = t.filter(pl.col("why").list.len() > 0)
    quarantine = [QuarantineEntry(int(line), "; ".join(why),
                                  lines[int(line) - 1] if int(line) - 1 < len(lines) else "")
                  for line, why in bad.select("line", "why").iter_rows()]
    good = t.filter(pl.col("why").list.len() == 0).select(
        pl.col("line").alias("row"), pl.col("id_s").alias("detection_id"),
        pl.col("station_s").alias("station"), pl.col("time_dt").alias("time"),
        pl.col("phase_l").replace({"p": "P", "s": "S"}).alias("phase"),
        pl.col("back_azimuth_deg_f").alias("back_azimuth_deg"),
        pl.col("apparent_velocity_km_s_f").alias("apparent_velocity_km_s"),
        pl.col("amplitude_f").alias("amplitude"), pl.col("snr_f").alias("snr"),
        pl.col("kind").alias("station_kind"))
    batch = Batch(source=SourceName.SENSOR_DETECTIONS, kind=SourceKind.ACOUSTIC,
                  layout="detections", name=name, raw=raw, sha256=sha256(raw),
                  n_rows=t.height, records=good, quarantine=quarantine)
    batch.check_accounting()
    return batch


# the spellings of an ISO 8601 time with a UTC offset that detections may use; each row is
# read with the first that fits (no format is inferred from the first row, where one odd
# row made every other row unreadable)
_TIME_FORMATS = tuple(f"%Y-%m-%d{sep}%H:%M{sec}%z" for sep in ("T", " ")
                      for sec in (":%S%.f", ""))


def _iso_time(text: pl.Expr) -> pl.Expr:
    """An ISO 8601 text with a UTC offset (``Z``, ``+HH:MM``, ``+HHMM``) as UTC microseconds;
    null when it is not one."""
    norm = text.str.replace(r"[zZ]$", "+00:00")
    return pl.coalesce([norm.str.to_datetime(f, time_zone="UTC", strict=False, time_unit="us")
                        for f in _TIME_FORMATS])


def _not_finite_positive(col: str) -> pl.Expr:
    """A value was read but is negative, NaN or infinite (an empty value is no value)."""
    v = pl.col(col)
    return (~(v.is_finite() & (v >= 0))).fill_null(False)


def _bad_number(col: str) -> pl.Expr:
    """A value was given but is not a number."""
    given = pl.col(col).is_not_null() & (pl.col(col).str.strip_chars() != "")
    return given & pl.col(col + "_f").is_null()


def _impossible_velocity() -> pl.Expr:
    v = pl.col("apparent_velocity_km_s_f")
    acoustic = pl.col("phase_l") == "acoustic"
    return (v.is_not_null() & ((acoustic & ~v.is_between(MIN_SOUND_SPEED, MAX_SOUND_SPEED))
                               | (~acoustic & ~v.is_between(MIN_SEISMIC_SPEED,
                                                            MAX_SEISMIC_SPEED)))).fill_null(False)
