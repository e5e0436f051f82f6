"""The observation contract: one typed columnar table that every source adapter emits
(``Batch.observations``), that storage builds its rows from, and that the store gives
back (``contract_observations``) to the stages that read it (the fuse stage and
fusion.evidence; docs/observation-contract.md, "Who reads it").

A source's private record shape (FIRMS columns, a drone report, a located explosion)
stays inside its adapter: what crosses into the rest of the system is a polars
DataFrame with exactly the columns of :data:`SCHEMA`, in that order, checked by
:func:`conform`. Third-party adapters emit the same table (docs/observation-contract.md).

=================  ==============================  ========================================
column             type                            meaning
=================  ==============================  ========================================
``id``             String, required                stable id of the observation: the same
                                                   thing seen again (an overlapping
                                                   download) gets the same id
``source_kind``    Enum(SourceKind), required      what kind of source saw it
``source_id``      String, required                which source (``firms:VIIRS_SNPP_NRT``,
                                                   ``drone:UA-07``, ``sensors:network``)
``sensor``         String, nullable                the instrument or platform type
``time_start``     Datetime(us, UTC), required     start of the window it was seen in
``time_end``       Datetime(us, UTC), required     end of that window (inclusive);
                                                   an instant has it equal to time_start
``lat``, ``lon``   Float64, required               WGS84 degrees, finite, in range
``uncertainty_m``  Float64, required               1-sigma horizontal uncertainty, metres
``klass``          Enum(ObservedClass), nullable   what it shows (fire, explosion, ...)
``reliability``    Float64, nullable               the source's own confidence, 0..1
``attributes``     String, required                the source's private fields, one JSON
                                                   object per row (``{}`` when none)
``raw_sha256``     String, required                SHA-256 (hex) of the raw record
``raw_row``        Int64, required                 its row in the raw input (0: the whole)
``schema_version`` UInt16, required                :data:`SCHEMA_VERSION`
=================  ==============================  ========================================

Times carry the precision the source knows (FIRMS: the minute; located explosions: the
millisecond); the store writes each batch's times as ISO-8601 UTC text, to the second,
or to the millisecond when any time of the batch has a fraction of a second. The store
keeps every column but ``schema_version`` (``klass`` and ``reliability`` since revision
0008).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from trucewatch.errors import ContractError
from trucewatch.model.enums import ObservedClass, SourceKind

SCHEMA_VERSION = 1

SOURCE_KIND = pl.Enum([k.value for k in SourceKind])
OBSERVED_CLASS = pl.Enum([c.value for c in ObservedClass])
TIME = pl.Datetime("us", "UTC")

_COLUMNS: dict[str, pl.DataType] = {
    "id": pl.String(),
    "source_kind": SOURCE_KIND,
    "source_id": pl.String(),
    "sensor": pl.String(),
    "time_start": TIME,
    "time_end": TIME,
    "lat": pl.Float64(),
    "lon": pl.Float64(),
    "uncertainty_m": pl.Float64(),
    "klass": OBSERVED_CLASS,
    "reliability": pl.Float64(),
    "attributes": pl.String(),
    "raw_sha256": pl.String(),
    "raw_row": pl.Int64(),
    "schema_version": pl.UInt16(),
}
SCHEMA: pl.Schema = pl.Schema(_COLUMNS)
REQUIRED = ("id", "source_kind", "source_id", "time_start", "time_end", "lat", "lon",
            "uncertainty_m", "attributes", "raw_sha256", "raw_row", "schema_version")
OPTIONAL = tuple(c for c in SCHEMA if c not in REQUIRED)
# what conform fills when an adapter leaves an optional column out
_DEFAULTS: dict[str, Any] = {"attributes": "{}", "schema_version": SCHEMA_VERSION}

_FIX = "emit the columns of trucewatch.model.contract.SCHEMA (docs/observation-contract.md)"


def empty() -> pl.DataFrame:
    """A contract table with no rows (what a source that yields no observation emits)."""
    return SCHEMA.to_frame()


def _fail(column: str, what: str, where: str, rows: pl.Series | None = None) -> None:
    at = ""
    if rows is not None and rows.len():
        first = rows.head(3).to_list()
        at = f" (table row {', '.join(str(r) for r in first)}{', ...' if rows.len() > 3 else ''})"
    raise ContractError(f"{where}: observation column {column!r} {what}{at}", column=column,
                        fix=_FIX)


def conform(df: pl.DataFrame, where: str = "observations") -> pl.DataFrame:
    """``df`` as a contract table: its columns cast to :data:`SCHEMA` (strictly) and put
    in order, missing optional ones filled (null; ``attributes`` ``{}``,
    ``schema_version`` the current one), NaN uncertainty/reliability made null (so a
    NaN uncertainty is refused as null). Raises
    :class:`~trucewatch.errors.ContractError` naming the first column at fault: missing,
    not castable, null where required, or out of range. Extra columns are refused (a
    source's private fields go in ``attributes``). An id may repeat (the same detection
    twice in one file): the store keeps the first and counts the rest as duplicates."""
    extra = [c for c in df.columns if c not in SCHEMA]
    if extra:
        _fail(extra[0], "is not part of the contract (put a source's private fields in "
              "'attributes')", where)
    missing = [c for c in REQUIRED if c not in df.columns and c not in _DEFAULTS]
    if missing:
        _fail(missing[0], "is missing", where)
    cols: list[pl.Expr] = []
    for name, dtype in SCHEMA.items():
        if name not in df.columns:
            cols.append(pl.lit(_DEFAULTS.get(name), dtype=dtype).alias(name))
            continue
        have = df.schema[name]
        if have == dtype:
            cols.append(pl.col(name))
            continue
        try:
            df.select(pl.col(name).cast(dtype, strict=True))
        except (pl.exceptions.PolarsError, ValueError) as err:
            _fail(name, f"cannot be read as {dtype} (it is {have}): {str(err)[:120]}", where)
        cols.append(pl.col(name).cast(dtype, strict=True))
    out = df.select(cols).with_columns(pl.col("uncertainty_m", "reliability").fill_nan(None))
    index = pl.int_range(pl.len(), dtype=pl.Int64).alias("_i")
    checks: list[tuple[str, pl.Expr, str]] = [
        *((c, pl.col(c).is_null(), "is null") for c in REQUIRED),
        *((c, ~pl.col(c).is_finite(), "is not finite") for c in ("lat", "lon",
                                                                 "uncertainty_m")),
        ("lat", pl.col("lat").abs() > 90, "is outside -90..90"),
        ("lon", pl.col("lon").abs() > 180, "is outside -180..180"),
        ("uncertainty_m", pl.col("uncertainty_m") < 0, "is negative"),
        ("reliability", (pl.col("reliability") < 0) | (pl.col("reliability") > 1),
         "is outside 0..1"),
        ("time_end", pl.col("time_end") < pl.col("time_start"), "is before time_start"),
        ("schema_version", pl.col("schema_version") != SCHEMA_VERSION,
         f"is not {SCHEMA_VERSION}"),
    ]
    bad = out.select(index, *(e.fill_null(False).alias(f"_{k}") for k, (_, e, _) in
                              enumerate(checks)))
    flags = bad.select(pl.col(f"_{k}").any() for k in range(len(checks))).row(0)
    for k, hit in enumerate(flags):
        if hit:
            column, _, what = checks[k]
            _fail(column, what, where, bad.filter(pl.col(f"_{k}"))["_i"])
    return out
