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

Each valid row also gets the time the satellite saw it (docs/data-formats.md): an
observation window ``seen_start``, ``seen_end`` (UTC, inclusive) and ``time_basis``.
With ``acq_time`` the window is that minute; a date-only row (``minimal``) gets the
overpass windows of its satellite over its longitude (:func:`overpass_windows`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from trucewatch.errors import ConfigError, InputFileError, UnknownLayoutError
from trucewatch.ingest.base import (
    LAYOUTS_FIX,
    Batch,
    QuarantineEntry,
    header_of,
    read_raw,
    sha256,
)
from trucewatch.model import contract
from trucewatch.model.enums import ObservedClass, SourceKind, SourceName
from trucewatch.model.times import EARLIEST, FUTURE_SLACK_DAYS

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


# Overpass times of the FIRMS satellites, as local solar time (LST) of the equator
# crossings of their sun-synchronous orbits (NASA: VIIRS on Suomi NPP, NOAA-20 and
# NOAA-21, "1:30 pm / 1:30 am" ascending/descending, https://www.earthdata.nasa.gov/
# data/instruments/viirs and https://www.nesdis.noaa.gov/our-satellites/currently-flying/
# joint-polar-satellite-system; MODIS Terra 10:30 descending / 22:30, Aqua 13:30
# ascending / 01:30, https://modis.gsfc.nasa.gov/about/). A place off the ground track
# is seen earlier or later (a 3000 km VIIRS / 2330 km MODIS swath at mid-latitudes
# spans about +-1.4 h of local time, and the next orbit's swath overlaps), so each
# crossing is widened by OVERPASS_HALF_WIDTH_H.
OVERPASS_LST_H: dict[str, tuple[float, ...]] = {
    "VIIRS": (13.5, 1.5), "TERRA": (10.5, 22.5), "AQUA": (13.5, 1.5)}
OVERPASS_HALF_WIDTH_H = 1.5
# which satellites' overpasses a sensor id can be (MODIS rows of a minimal file do not
# say Terra or Aqua: both; all VIIRS satellites share the same crossing times)
_SENSOR_PLATFORMS: dict[str, tuple[str, ...]] = {
    "MODIS": ("TERRA", "AQUA"), "MODIS_TERRA": ("TERRA",), "MODIS_AQUA": ("AQUA",)}
_BASIS = {
    "VIIRS": "overpass windows (VIIRS S-NPP/NOAA-20/NOAA-21, 13:30/01:30 LST +-1.5 h)",
    "MODIS": "overpass windows (MODIS, satellite unknown: Terra 10:30/22:30 or Aqua "
             "13:30/01:30 LST +-1.5 h)",
    "MODIS_TERRA": "overpass windows (MODIS Terra, 10:30/22:30 LST +-1.5 h)",
    "MODIS_AQUA": "overpass windows (MODIS Aqua, 13:30/01:30 LST +-1.5 h)",
}
UNKNOWN_BASIS = "whole UTC day (satellite unknown)"
ACQ_TIME_BASIS = "acq_time (that minute)"
_DAY_MS = 86_400_000


def _platforms(sensor: str | None) -> tuple[str, ...]:
    if sensor is None:
        return ()
    if sensor in _SENSOR_PLATFORMS:
        return _SENSOR_PLATFORMS[sensor]
    return ("VIIRS",) if sensor.startswith("VIIRS") else ()


def time_basis(sensor: pl.Expr, exact: pl.Expr) -> pl.Expr:
    """The ``time_basis`` text of rows: ``exact`` (an acq_time) or the sensor's overpasses."""
    viirs = sensor.str.starts_with("VIIRS")
    by_sensor = (pl.when(viirs).then(pl.lit(_BASIS["VIIRS"]))
                 .otherwise(sensor.replace_strict(_BASIS, default=UNKNOWN_BASIS,
                                                  return_dtype=pl.Utf8)))
    return pl.when(exact).then(pl.lit(ACQ_TIME_BASIS)).otherwise(by_sensor)


def overpass_windows(records: pl.DataFrame) -> pl.DataFrame:
    """The possible acquisition times of date-only detections: for each row of
    ``records`` (columns ``longitude``, ``acq_date``, ``sensor``; a ``row`` column is
    kept if present, else the row's index), the parts of its satellites' overpass
    windows that fall within its UTC date, one output row per part: ``row``,
    ``win_start``, ``win_end`` (Datetime ms UTC, end inclusive, i.e. 23:59:59.999 at
    most). Local solar time = UTC + longitude/15 h. A sensor whose satellites are unknown
    gets the whole UTC day."""
    base = records.select(
        (pl.col("row") if "row" in records.columns else pl.int_range(pl.len())).alias("row"),
        pl.col("longitude").cast(pl.Float64), pl.col("acq_date").cast(pl.Date),
        pl.col("sensor").cast(pl.Utf8))
    crossings = pl.DataFrame(
        [(s, lst) for s in (*_SENSOR_PLATFORMS, "VIIRS") for p in _platforms(s)
         for lst in OVERPASS_LST_H[p]], schema={"_key": pl.Utf8, "_lst": pl.Float64},
        orient="row").unique()
    key = (pl.when(pl.col("sensor").str.starts_with("VIIRS")).then(pl.lit("VIIRS"))
           .otherwise(pl.col("sensor")))
    day0 = pl.col("acq_date").cast(pl.Datetime("ms")).dt.epoch("ms")
    half = round(OVERPASS_HALF_WIDTH_H * 3_600_000)
    # a crossing at LST h on local day k is at UTC h - lon/15 h on that day; the windows
    # of local days D-1, D, D+1 can reach UTC date D
    known = (base.with_columns(key.alias("_key")).join(crossings, on="_key", how="inner")
             .join(pl.DataFrame({"_k": [-1, 0, 1]}, schema={"_k": pl.Int64}), how="cross")
             .with_columns((day0 + pl.col("_k") * _DAY_MS
                            + ((pl.col("_lst") - pl.col("longitude") / 15.0) * 3_600_000)
                            .round(0).cast(pl.Int64)).alias("_c"))
             .with_columns(pl.max_horizontal(pl.col("_c") - half, day0).alias("_a"),
                           pl.min_horizontal(pl.col("_c") + half, day0 + _DAY_MS - 1)
                           .alias("_b"))
             .filter(pl.col("_a") <= pl.col("_b")))
    unknown = base.join(base.with_columns(key.alias("_key")).join(
        crossings, on="_key", how="semi").select("row"), on="row", how="anti").with_columns(
        day0.alias("_a"), (day0 + _DAY_MS - 1).alias("_b"))
    out = pl.concat([known.select("row", "_a", "_b"), unknown.select("row", "_a", "_b")])
    return out.select(
        "row", pl.col("_a").cast(pl.Datetime("ms", "UTC")).alias("win_start"),
        pl.col("_b").cast(pl.Datetime("ms", "UTC")).alias("win_end"),
    ).unique().sort("row", "win_start")


def seen_window(records: pl.DataFrame) -> pl.DataFrame:
    """``records`` (row, longitude, acq_date, acq_minute, sensor) with ``seen_start``,
    ``seen_end`` (Datetime ms UTC, inclusive) and ``time_basis`` added: the minute of
    ``acq_time`` where known, else the earliest/latest of :func:`overpass_windows`."""
    exact = pl.col("acq_minute").is_not_null()
    day0 = pl.col("acq_date").cast(pl.Datetime("ms", "UTC"))
    minute = day0 + pl.duration(minutes=pl.col("acq_minute").fill_null(0))
    # the same windows as overpass_windows, as offsets from the day's start, computed with
    # numpy over a handful of crossings (no join: a million rows in a fraction of a second)
    names = (*_SENSOR_PLATFORMS, "VIIRS")
    code = records.select(
        pl.when(pl.col("sensor").str.starts_with("VIIRS")).then(pl.lit("VIIRS"))
        .otherwise(pl.col("sensor")).replace_strict(
            {n: k for k, n in enumerate(names)}, default=-1, return_dtype=pl.Int32)
    ).to_series().to_numpy()
    lon = records["longitude"].cast(pl.Float64).fill_null(0.0).to_numpy()
    half = OVERPASS_HALF_WIDTH_H * 3_600_000
    # every crossing time once, for all rows at once; whose crossing it is, by a lookup
    hours = sorted({h for n in names for p in _platforms(n) for h in OVERPASS_LST_H[p]})
    owns = np.zeros((len(names) + 1, len(hours)), dtype=bool)  # last row: unknown sensor
    for k, name in enumerate(names):
        for m, h in enumerate(hours):
            owns[k, m] = any(h in OVERPASS_LST_H[p] for p in _platforms(name))
    code = np.where(code < 0, len(names), code)
    first = np.full(lon.shape, np.inf)
    last = np.full(lon.shape, -np.inf)
    shift = lon / 15.0 * 3_600_000
    for m, lst in enumerate(hours):
        mine = owns[code, m]
        for day in (-1, 0, 1):
            c = lst * 3_600_000 - shift + day * _DAY_MS
            a, b = np.maximum(c - half, 0.0), np.minimum(c + half, _DAY_MS - 1.0)
            ok = mine & (a <= b)
            np.minimum(first, np.where(ok, a, np.inf), out=first)
            np.maximum(last, np.where(ok, b, -np.inf), out=last)
    first[~np.isfinite(first)] = 0.0  # satellite unknown: the whole UTC day
    last[~np.isfinite(last)] = _DAY_MS - 1.0
    offset0 = pl.lit(pl.Series(np.round(first).astype(np.int64)))
    offset1 = pl.lit(pl.Series(np.round(last).astype(np.int64)))
    return records.with_columns(
        pl.when(exact).then(minute).otherwise(day0 + pl.duration(milliseconds=offset0))
        .alias("seen_start"),
        pl.when(exact).then(minute + pl.duration(seconds=59))
        .otherwise(day0 + pl.duration(milliseconds=offset1)).alias("seen_end"),
        time_basis(pl.col("sensor"), exact).alias("time_basis"),
    )


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

    name: str = SourceName.FIRMS
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
        # another source's input (a drone or allegations document) or no known layout at
        # all: one UnknownLayoutError either way, never a traceback
        seen = (f"it reads as a {header[0][1:] or 'JSON'} document"
                if header and header[0][:1] == "{"
                else f"unknown layout (columns: {', '.join(header[:12]) or 'none'})")
        raise UnknownLayoutError(
            f"{name}: not a FIRMS CSV: {seen}", path=name,
            fix="send FIRMS CSV files to the FIRMS reader and other inputs to their own "
            "command or route; see docs/data-formats.md" if header[:1] and header[0][:1] == "{"
            else LAYOUTS_FIX)
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
    latest = (today + timedelta(days=FUTURE_SLACK_DAYS)).date()

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
        (date < pl.lit(EARLIEST.date()), f"acq_date is before {EARLIEST.date().isoformat()}"),
        # a number the file gives must be a finite one (NaN is not JSON; FIRMS never writes it)
        (~pl.col("frp_f").is_finite(), "frp is not a finite number"),
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
    good = seen_window(good)
    quarantine = [
        QuarantineEntry(int(r), reason, rawline)
        for r, reason, rawline in zip(bad["row"], bad["_reason"], bad["raw"], strict=True)
    ]
    batch = Batch(source=SourceName.FIRMS, kind=SourceKind.SATELLITE_FIRE, layout=layout, name=name,
                  raw=raw, sha256=sha256(raw) if raw else "", n_rows=n_rows, records=good,
                  quarantine=quarantine, observations=observations(good, layout))
    batch.check_accounting()
    return batch


# FIRMS pixel: 375 m (VIIRS I-band) or 1 km (MODIS); 1-sigma ~ half the pixel
UNCERTAINTY_M = {"MODIS": 500.0}
DEFAULT_UNCERTAINTY_M = 190.0


def _sha256_hex(texts: pl.Series) -> list[str]:
    return [hashlib.sha256(t.encode()).hexdigest() for t in texts]


def observations(records: pl.DataFrame, layout: str) -> pl.DataFrame:
    """FIRMS records (parse_firms's ``records``) in the observation contract
    (model.contract). The id is the hash of the detection's identity (source, sensor,
    coordinates as printed, date, minute), so an overlapping download stores each
    detection once; the window is the one the satellite saw it in (seen_start, seen_end);
    confidence, frp, daynight, layout and time_basis go in ``attributes``."""
    if "seen_start" not in records.columns:  # records built without the reader
        records = seen_window(records)
    sensor_text = pl.col("sensor").cast(pl.String).fill_null("None")
    identity = pl.concat_str(
        pl.lit(f"{SourceName.FIRMS}|"), sensor_text, pl.lit("|"), pl.col("lat_text"),
        pl.lit("|"), pl.col("lon_text"), pl.lit("|"), pl.col("acq_date").dt.to_string("%Y-%m-%d"),
        pl.lit("|"), pl.col("acq_minute").cast(pl.String).fill_null("None"))
    keyed = records.select(identity.alias("identity"), pl.col("raw"))
    ids = pl.Series("id", _sha256_hex(keyed["identity"]), pl.String)
    raw_sha = pl.Series("raw_sha256", _sha256_hex(keyed["raw"]), pl.String)
    out = records.select(
        (pl.lit("o-") + ids.str.slice(0, 24)).alias("id"),
        pl.lit(SourceKind.SATELLITE_FIRE.value).alias("source_kind"),
        (pl.lit(f"{SourceName.FIRMS}:") + sensor_text).alias("source_id"),
        pl.col("sensor").cast(pl.String),
        # kept to the second, as the store has always written them
        pl.col("seen_start").dt.truncate("1s").alias("time_start"),
        pl.col("seen_end").dt.truncate("1s").alias("time_end"),
        pl.col("latitude").alias("lat"),
        pl.col("longitude").alias("lon"),
        pl.col("sensor").cast(pl.String).replace_strict(
            UNCERTAINTY_M, default=DEFAULT_UNCERTAINTY_M, return_dtype=pl.Float64
        ).alias("uncertainty_m"),
        pl.lit(ObservedClass.FIRE.value).alias("klass"),
        pl.struct(pl.col("sensor"), pl.col("confidence"), pl.col("frp"), pl.col("daynight"),
                  pl.lit(layout).alias("layout"), pl.col("time_basis")
                  ).struct.json_encode().alias("attributes"),
        raw_sha,
        pl.col("row").cast(pl.Int64).alias("raw_row"),
    )
    return contract.conform(out, "FIRMS records")


def detections(fires: pl.DataFrame) -> pl.DataFrame:
    """Satellite fires as the observation contract (the store's
    ``contract_observations([SourceKind.SATELLITE_FIRE])``, or a batch's
    ``observations``) as the satellite channel's detection table: every contract column,
    and the ones the baseline and the classifier read, ``latitude``, ``longitude`` (the
    contract's lat, lon), ``acq_date`` (the UTC date of ``time_start``: a FIRMS window
    lies within its UTC date) and ``time_basis`` (how the window is known: one minute is
    an acq_time, a longer one the sensor's overpasses), in (acq_date, id) order. Only
    this reader knows what a FIRMS sighting's window means; the store gives the
    contract."""
    fires = contract.conform(fires, "satellite fires")
    span = pl.col("time_end") - pl.col("time_start")
    return fires.with_columns(
        pl.col("lat").alias("latitude"), pl.col("lon").alias("longitude"),
        pl.col("time_start").dt.date().alias("acq_date"),
        # an acq_time row's window is its minute; a date-only row's spans hours
        time_basis(pl.col("sensor"), span < pl.duration(minutes=2)).alias("time_basis"),
    ).sort("acq_date", "id", maintain_order=True)


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


@dataclass(frozen=True)
class FirmsFilter:
    """Which stored FIRMS detections a cycle uses: sensor ids (empty: all) and an
    acq_date range (inclusive). Every row is still stored."""

    sensors: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None

    def check(self) -> None:
        unknown = [s for s in self.sensors if s not in SENSORS]
        if unknown:
            raise ConfigError(f"unknown FIRMS sensor {', '.join(unknown)}",
                              fix=f"use one of {', '.join(SENSORS)}")
        if self.since and self.until and self.since > self.until:
            raise ConfigError(f"--since {self.since} is after --until {self.until}",
                              fix="give --since on or before --until")

    def apply(self, df: pl.DataFrame) -> pl.DataFrame:
        """Rows of ``df`` (columns sensor, acq_date) this filter keeps."""
        keep = pl.lit(True)
        if self.sensors:
            keep &= pl.col("sensor").is_in(list(self.sensors))
        if self.since:
            keep &= pl.col("acq_date") >= self.since
        if self.until:
            keep &= pl.col("acq_date") <= self.until
        return df.filter(keep)

    def describe(self) -> str:
        parts = [f"--sensor {','.join(self.sensors)}"] if self.sensors else []
        parts += [f"--since {self.since}"] if self.since else []
        parts += [f"--until {self.until}"] if self.until else []
        return " ".join(parts)
