"""NASA FIRMS thermal anomalies: VIIRS (S-NPP, NOAA-20, NOAA-21) and MODIS CSV.

Layouts understood (detected from the header, see docs/data-formats.md):

* ``viirs``: archive (standard processing, has ``type``), near-real-time and
  area-API files; columns ``latitude, longitude, bright_ti4, scan, track,
  acq_date, acq_time, satellite, [instrument,] confidence, version, bright_ti5,
  frp, daynight[, type]``;
* ``modis``: the same with ``brightness``/``bright_t31`` and numeric confidence;
* ``minimal``: ``latitude, longitude, acq_date[, sensor_guess]``; the sensor is
  read from ``sensor_guess`` or inferred from the coordinates' decimals (6:
  S-NPP archive, 5: VIIRS NRT, <=4: MODIS).

Each valid row gets a ``sensor`` id (``MODIS``, ``VIIRS_SNPP_SP``,
``VIIRS_SNPP_NRT``, ``VIIRS_NOAA20_NRT``, ``VIIRS_NOAA20_SP``,
``VIIRS_NOAA21_NRT`` or ``VIIRS_NRT`` when the satellite is unknown) because
fire counts differ between instruments and processing levels.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from trucewatch.errors import InputFileError
from trucewatch.ingest.base import (
    Batch,
    QuarantineEntry,
    adapter_for,
    header_of,
    read_raw,
    sha256,
)
from trucewatch.model.enums import SourceKind

SENSORS = (
    "MODIS",
    "VIIRS_SNPP_SP",
    "VIIRS_SNPP_NRT",
    "VIIRS_NOAA20_SP",
    "VIIRS_NOAA20_NRT",
    "VIIRS_NOAA21_NRT",
    "VIIRS_NRT",
)

_MINIMAL = {"latitude", "longitude", "acq_date"}
_VIIRS = {"latitude", "longitude", "bright_ti4", "acq_date", "acq_time", "satellite",
          "confidence", "version"}
_MODIS = {"latitude", "longitude", "brightness", "acq_date", "acq_time", "satellite",
          "confidence", "version"}

# FIRMS spells satellites differently in archive, NRT and API files
_SATELLITE = {
    "n": "SNPP", "npp": "SNPP", "snpp": "SNPP", "suomi npp": "SNPP", "suomi-npp": "SNPP",
    "n20": "NOAA20", "noaa-20": "NOAA20", "noaa20": "NOAA20", "j1": "NOAA20", "1": "NOAA20",
    "n21": "NOAA21", "noaa-21": "NOAA21", "noaa21": "NOAA21", "j2": "NOAA21", "2": "NOAA21",
    "t": "TERRA", "terra": "TERRA", "a": "AQUA", "aqua": "AQUA",
}
_SENSOR_GUESS = {"MODIS": "MODIS", "VIIRS_6dec": "VIIRS_SNPP_SP", "VIIRS_5dec": "VIIRS_NRT"}
_VIIRS_CONFIDENCE = {"l": "low", "low": "low", "n": "nominal", "nominal": "nominal",
                     "h": "high", "high": "high"}


def detect_layout(header: list[str]) -> str | None:
    cols = set(header)
    if cols >= _VIIRS:
        return "viirs"
    if cols >= _MODIS:
        return "modis"
    if cols >= _MINIMAL:
        return "minimal"
    return None


class FirmsSource:
    """The FIRMS source adapter (built in, registered like any third-party source)."""

    name = "firms"
    kind = SourceKind.SATELLITE_FIRE

    def sniff(self, header: list[str]) -> bool:
        return detect_layout(header) is not None

    def parse(self, raw: bytes, name: str) -> Batch:
        return parse_firms(raw, name)


def read_firms(path: Path | str, *, keep_raw: bool = True) -> Batch:
    """Read a FIRMS file (plain or gzip). ``keep_raw=False`` skips holding the file's
    bytes and hashing them, for analysis runs that do not store anything."""
    path = Path(path)
    if keep_raw:
        return parse_firms(read_raw(path), path.name)
    if not path.is_file():
        read_raw(path)  # raises the helpful InputFileError
    return parse_firms(path, path.name)


def _num(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars().cast(pl.Float64, strict=False)


def _read_lines(source: bytes | Path) -> pl.DataFrame:
    # polars splits lines natively (and decompresses gzip); blank lines come back null
    try:
        return pl.read_csv(source, has_header=False, separator="\x1f", quote_char=None,
                           infer_schema=False, new_columns=["raw"], encoding="utf8-lossy")
    except pl.exceptions.PolarsError:
        # a stray unit separator (0x1f) in the text: split the lines in Python instead
        data = source if isinstance(source, bytes) else read_raw(source)
        text = data.decode("utf-8", errors="replace").splitlines()
        return pl.DataFrame({"raw": [t if t.strip() else None for t in text]},
                            schema={"raw": pl.Utf8})


def parse_firms(source: bytes | Path, name: str, *, today: datetime | None = None) -> Batch:
    """Parse a FIRMS CSV. Raises only for a file-level problem (unknown layout)."""
    raw = source if isinstance(source, bytes) else b""
    empty = isinstance(source, bytes) and not source.strip()
    lines = pl.DataFrame({"raw": []}, schema={"raw": pl.Utf8}) if empty else _read_lines(source)
    first = lines["raw"][0] if lines.height else ""
    header = header_of((first or "").encode())
    layout = detect_layout(header)
    if layout is None:
        adapter_for((first or "").encode(), name)  # raises UnknownLayoutError
        raise AssertionError("unreachable")
    ncols = len(header)
    df = (
        lines.slice(1)
        .with_row_index("row", offset=2)
        .with_columns(pl.col("raw").str.strip_chars_end("\r"))
        .filter(pl.col("raw").str.strip_chars() != "")
    )
    n_rows = df.height
    df = df.with_columns((pl.col("raw").str.count_matches(",", literal=True) + 1).alias("_nf"))
    names = [c if c else f"_unnamed{k}" for k, c in enumerate(header)]
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise InputFileError(f"{name}: column(s) named twice in the header: "
                             f"{', '.join(twice[:5])}", path=name,
                             fix="give each column once (is the header line damaged?)")
    fields = None
    if n_rows == lines.height - 1 and bool((df["_nf"] == ncols).all()):
        # fast path: every line has the right number of fields, let the CSV reader split
        try:
            fields = pl.read_csv(source, infer_schema=False, encoding="utf8-lossy",
                                 quote_char=None, new_columns=names, has_header=True)
        except pl.exceptions.PolarsError:
            fields = None  # odd bytes the fast reader does not take: split line by line
    if fields is not None and fields.height == df.height:
        df = pl.concat([df, fields], how="horizontal")
    else:
        df = df.with_columns(
            pl.col("raw").str.split_exact(",", ncols - 1).struct.rename_fields(names)
            .alias("_f")).unnest("_f")
    today = today or datetime.now(UTC)
    latest = (today + timedelta(days=1)).date()

    minute, time_ok = _acq_minute() if layout != "minimal" else (
        pl.lit(None, dtype=pl.Int32), pl.lit(True))
    sat = (pl.col("satellite").str.to_lowercase().replace_strict(
        _SATELLITE, default=None, return_dtype=pl.Utf8) if layout != "minimal"
        else pl.lit(None, dtype=pl.Utf8))
    nrt = pl.col("version").str.to_uppercase().str.contains("NRT") if layout != "minimal" \
        else pl.lit(False)
    if layout == "minimal":
        sensor = _minimal_sensor(header)
        confidence = pl.lit(None, dtype=pl.Utf8)
    elif layout == "viirs":
        sensor = pl.when(sat.is_in(["TERRA", "AQUA"])).then(None).otherwise(
            pl.concat_str([pl.lit("VIIRS_"), sat,
                           pl.when(nrt).then(pl.lit("_NRT")).otherwise(pl.lit("_SP"))]))
        confidence = pl.col("confidence").str.to_lowercase().replace_strict(
            _VIIRS_CONFIDENCE, default=None, return_dtype=pl.Utf8)
    else:
        sensor = pl.when(sat.is_in(["TERRA", "AQUA"])).then(pl.lit("MODIS"))
        confidence = _num("confidence").cast(pl.Int32, strict=False).cast(pl.Utf8)
    typed = df.with_columns(
        _num("latitude").alias("latitude_f"),
        _num("longitude").alias("longitude_f"),
        pl.col("acq_date").str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
        .alias("acq_date_d"),
        minute.cast(pl.Int32).alias("acq_minute"),
        time_ok.alias("_time_ok"),
        sat.alias("_sat"),
        sensor.cast(pl.Utf8).alias("sensor"),
        confidence.alias("confidence_n"),
        (_num("frp") if "frp" in header else pl.lit(None, dtype=pl.Float64)).alias("frp_f"),
        (pl.col("daynight").str.to_uppercase() if "daynight" in header
         else pl.lit(None, dtype=pl.Utf8)).alias("daynight_n"),
    )
    lat, lon, date = pl.col("latitude_f"), pl.col("longitude_f"), pl.col("acq_date_d")
    checks: list[tuple[pl.Expr, pl.Expr | str]] = [
        (pl.col("raw").str.contains("\ufffd", literal=True), "not valid UTF-8"),
        (pl.col("_nf") != ncols,
         pl.format("expected {} fields, found {}", pl.lit(ncols), pl.col("_nf"))),
        (lat.is_null(), "latitude is not a number"),
        (~lat.is_between(-90, 90), "latitude out of range [-90, 90]"),
        (lon.is_null(), "longitude is not a number"),
        (~lon.is_between(-180, 180), "longitude out of range [-180, 180]"),
        (date.is_null(), "acq_date is not a YYYY-MM-DD date"),
        (date > pl.lit(latest), "acq_date is in the future"),
    ]
    if layout == "minimal":
        checks.append((pl.col("sensor").is_null(),
                       "sensor_guess is not MODIS, VIIRS_6dec or VIIRS_5dec"))
    else:
        checks += [
            (~pl.col("_time_ok"), "acq_time is not HHMM or HH:MM[:SS]"),
            (pl.col("_sat").is_null(), "unknown satellite"),
            (pl.col("_sat").is_not_null() & pl.col("sensor").is_null(),
             f"satellite does not match a {layout.upper()} file"),
            (pl.col("confidence_n").is_null(),
             "confidence is not low/nominal/high" if layout == "viirs"
             else "confidence is not a number in 0-100"),
        ]
        if layout == "modis":
            checks.append((~_num("confidence").is_between(0, 100),
                           "confidence is not a number in 0-100"))
    conds = [c.fill_null(False) for c, _ in checks]
    typed = typed.with_columns(pl.any_horizontal(conds).alias("_bad"))
    bad = typed.filter(pl.col("_bad")).with_columns(
        pl.concat_str([pl.when(c).then(m if isinstance(m, pl.Expr) else pl.lit(m))
                       for c, (_, m) in zip(conds, checks, strict=True)],
                      separator="; ", ignore_nulls=True).alias("_reason"))
    good = typed.filter(~pl.col("_bad")).select(
        pl.col("row").cast(pl.Int64),
        pl.col("latitude_f").alias("latitude"),
        pl.col("longitude_f").alias("longitude"),
        pl.col("latitude").alias("lat_text"),
        pl.col("longitude").alias("lon_text"),
        pl.col("acq_date_d").alias("acq_date"),
        pl.col("acq_minute"),
        pl.col("sensor"),
        pl.col("confidence_n").alias("confidence"),
        pl.col("frp_f").alias("frp"),
        pl.col("daynight_n").alias("daynight"),
        pl.col("raw"),
    )
    quarantine = [
        QuarantineEntry(int(r), reason, rawline)
        for r, reason, rawline in zip(bad["row"], bad["_reason"], bad["raw"], strict=True)
    ]
    batch = Batch(source="firms", kind=SourceKind.SATELLITE_FIRE, layout=layout, name=name,
                  raw=raw, sha256=sha256(raw) if raw else "", n_rows=n_rows, records=good,
                  quarantine=quarantine)
    batch.check_accounting()
    return batch


def _minimal_sensor(header: list[str]) -> pl.Expr:
    if "sensor_guess" in header:
        return pl.col("sensor_guess").replace_strict(_SENSOR_GUESS, default=None,
                                                     return_dtype=pl.Utf8)
    # no sensor column: infer from the printed precision, as the FIRMS products differ
    decimals = pl.max_horizontal(
        pl.col("latitude").str.split(".").list.get(1, null_on_oob=True).str.len_chars()
        .fill_null(0),
        pl.col("longitude").str.split(".").list.get(1, null_on_oob=True).str.len_chars()
        .fill_null(0),
    )
    return (pl.when(decimals >= 6).then(pl.lit("VIIRS_SNPP_SP"))
            .when(decimals == 5).then(pl.lit("VIIRS_NRT"))
            .otherwise(pl.lit("MODIS")))


def _acq_minute() -> tuple[pl.Expr, pl.Expr]:
    t = pl.col("acq_time").str.strip_chars()
    colon = t.str.contains(":")
    hhmm = t.str.zfill(4)
    hh = pl.when(colon).then(t.str.split(":").list.get(0, null_on_oob=True)).otherwise(
        hhmm.str.slice(0, 2)).cast(pl.Int32, strict=False)
    mm = pl.when(colon).then(t.str.split(":").list.get(1, null_on_oob=True)).otherwise(
        hhmm.str.slice(2, 2)).cast(pl.Int32, strict=False)
    ok = (t.str.contains(r"^(\d{1,4}|\d{1,2}:\d{2}(:\d{2})?)$").fill_null(False)
          & hh.is_between(0, 23) & mm.is_between(0, 59))
    return (hh * 60 + mm), ok.fill_null(False)
