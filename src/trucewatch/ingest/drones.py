"""Drone detection reports (``trucewatch-drone/1``, documented in docs/drones.md).

One JSON document carries ``reports`` (what a platform saw: an explosion, a fire, a
crater, a heavy weapon, vehicle movement) and optional ``patrols`` (where the
platforms looked, for coverage). Each report's target is located from, in order:

1. ``target.lat/lon`` with its ``error_m``;
2. ``klv``: a MISB ST 0601 local set (base64), parsed with ``klvdata``: the frame
   centre (tags 23/24), its error from the slant range (tag 21) and a pointing error;
3. ``target.bearing_deg/range_m`` from the platform position (geodesic, WGS84), with
   the error propagated from the bearing and range errors.

A report whose explicit target disagrees with its KLV frame centre beyond 5 sigma,
whose time is in the future or which fails the schema is quarantined with the reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pyproj import Geod

from trucewatch.errors import InputFileError
from trucewatch.ingest.base import Batch, QuarantineEntry, sha256
from trucewatch.model import contract
from trucewatch.model.enums import ObservedClass, SourceKind, SourceName
from trucewatch.model.times import time_problem

FORMAT = "trucewatch-drone/1"
_GEOD = Geod(ellps="WGS84")
PLATFORM_GNSS_M = 10.0  # 1-sigma platform position error
BEARING_SIGMA_DEG = 2.0
RANGE_SIGMA_FRACTION = 0.05
POINTING_SIGMA_DEG = 1.0  # KLV sensor pointing (gimbal + INS)


DroneClass = ObservedClass  # what a drone report may show


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class PlatformPosition(_Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt_m: float = Field(default=0.0, ge=-500, le=30000)


class Target(_Strict):
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    error_m: float | None = Field(default=None, gt=0, le=50000)
    bearing_deg: float | None = Field(default=None, ge=0, lt=360)
    range_m: float | None = Field(default=None, gt=0, le=100000)

    @model_validator(mode="after")
    def _one_way(self) -> Target:
        has_point = self.lat is not None and self.lon is not None
        has_polar = self.bearing_deg is not None and self.range_m is not None
        if (self.lat is None) != (self.lon is None):
            raise ValueError("target needs both lat and lon")
        if (self.bearing_deg is None) != (self.range_m is None):
            raise ValueError("target needs both bearing_deg and range_m")
        if not (has_point or has_polar):
            raise ValueError("target needs lat/lon or bearing_deg/range_m")
        return self


class Media(_Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    uri: str = Field(min_length=1, max_length=2000)


class DroneReport(_Strict):
    report_id: str = Field(min_length=1, max_length=200)
    platform_id: str = Field(min_length=1, max_length=100)
    time: datetime
    platform: PlatformPosition
    target: Target | None = None
    klv: str | None = Field(default=None, min_length=4, max_length=200_000)
    class_: DroneClass = Field(alias="class")
    weapon_class: str | None = None
    count: int = Field(default=1, ge=1, le=10000)
    confidence: float = Field(ge=0, le=1)
    media: list[Media] = Field(default_factory=list)

    @model_validator(mode="after")
    def _located(self) -> DroneReport:
        if self.time.tzinfo is None:
            raise ValueError("time has no UTC offset; write it like 2026-05-30T04:12:00Z")
        if self.target is None and not self.klv:
            raise ValueError("report needs a target or KLV metadata to be located")
        return self


class Patrol(_Strict):
    platform_id: str
    time_start: datetime
    time_end: datetime
    track: list[tuple[float, float]] = Field(min_length=1)  # (lon, lat) points
    swath_m: float = Field(gt=0, le=50000)

    @model_validator(mode="after")
    def _ordered(self) -> Patrol:
        if self.time_start.tzinfo is None or self.time_end.tzinfo is None:
            raise ValueError("patrol times need a UTC offset")
        if self.time_end < self.time_start:
            raise ValueError("patrol ends before it starts")
        return self


def _reason(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:4]:
        where = ".".join(str(x) for x in e["loc"]) or "entry"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def klv_frame_centre(klv_b64: str) -> tuple[float, float, float, datetime | None]:
    """(lat, lon, 1-sigma error m, KLV time) of a MISB ST 0601 packet's frame centre."""
    import klvdata

    try:
        data = base64.b64decode(klv_b64, validate=True)
        packets = list(klvdata.StreamParser(data))
    except Exception as err:
        raise ValueError(f"klv: not a MISB ST 0601 packet ({type(err).__name__}: "
                         f"{err})") from err
    for pkt in packets:
        try:
            md: dict[int, tuple[str, ...]] = getattr(pkt, "MetadataList", dict)()
            if 23 in md and 24 in md:
                lat, lon = float(md[23][3]), float(md[24][3])
                slant = float(md[21][3]) if 21 in md else 5000.0
                err_m = math.hypot(PLATFORM_GNSS_M, slant * math.radians(POINTING_SIGMA_DEG))
                t = datetime.fromisoformat(md[2][3]).astimezone(UTC) if 2 in md else None
        except Exception as err:
            raise ValueError(f"klv: unreadable ST 0601 values ({type(err).__name__})") from err
        if 23 in md and 24 in md:
            if not (-90 <= lat <= 90 and -180 <= lon <= 180 and math.isfinite(err_m)):
                raise ValueError(f"klv: frame centre {lat}, {lon} out of range")
            return lat, lon, err_m, t
    raise ValueError("klv: no frame centre latitude/longitude (ST 0601 tags 23/24)")


def locate(report: DroneReport) -> tuple[float, float, float, str]:
    """Target (lat, lon, 1-sigma error m, method)."""
    klv = klv_frame_centre(report.klv) if report.klv else None
    t = report.target
    if t is not None and t.lat is not None and t.lon is not None:
        err = t.error_m or 30.0
        if klv is not None:
            _, _, d = _GEOD.inv(t.lon, t.lat, klv[1], klv[0])
            if d > 5 * math.hypot(err, klv[2]):
                raise ValueError(f"target is {d:.0f} m from the KLV frame centre (more than "
                                 "5 sigma): the report and its metadata disagree")
        return t.lat, t.lon, err, "target"
    if klv is not None:
        return klv[0], klv[1], klv[2], "klv_frame_centre"
    if t is None or t.bearing_deg is None or t.range_m is None:
        raise ValueError("report needs a target or KLV metadata to be located")
    p = report.platform
    lon, lat, _ = _GEOD.fwd(p.lon, p.lat, t.bearing_deg, t.range_m)
    err = math.sqrt((t.range_m * math.radians(BEARING_SIGMA_DEG)) ** 2
                    + (t.range_m * RANGE_SIGMA_FRACTION) ** 2 + PLATFORM_GNSS_M ** 2)
    return float(lat), float(lon), err, "bearing_range"


RECORD_SCHEMA = {"obs_id": pl.String, "source_id": pl.String, "t0": pl.String,
                 "t1": pl.String, "latitude": pl.Float64, "longitude": pl.Float64,
                 "uncertainty_m": pl.Float64, "attributes": pl.String, "raw_row": pl.Int64,
                 "raw_sha256": pl.String}


def _document(raw: bytes, name: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputFileError(f"{name}: not valid UTF-8 JSON ({err})", path=name,
                             fix=f"send a {FORMAT} document, see docs/drones.md") from err
    except RecursionError as err:
        raise InputFileError(f"{name}: JSON nested too deeply", path=name,
                             fix=f"send a {FORMAT} document, see docs/drones.md") from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputFileError(f"{name}: not a drone report document (format is "
                             f"{doc.get('format') if isinstance(doc, dict) else None!r})",
                             path=name, fix=f"set \"format\": \"{FORMAT}\"")
    for key in ("reports", "patrols"):
        if not isinstance(doc.get(key) or [], list):
            raise InputFileError(f"{name}: '{key}' must be a list (got "
                                 f"{type(doc[key]).__name__})", path=name,
                                 fix=f"give \"{key}\": [...], see docs/drones.md")
    return doc


def observations(records: pl.DataFrame) -> pl.DataFrame:
    """Drone reports (records of RECORD_SCHEMA) in the observation contract: an instant,
    what the report shows (``klass``) and the report's confidence (``reliability``)."""
    attrs = pl.col("attributes")
    return contract.conform(records.select(
        pl.col("obs_id").alias("id"),
        pl.lit(SourceKind.DRONE.value).alias("source_kind"),
        pl.col("source_id"),
        pl.lit(SourceName.DRONE.value).alias("sensor"),
        pl.col("t0").str.to_datetime(time_zone="UTC", time_unit="us").alias("time_start"),
        pl.col("t1").str.to_datetime(time_zone="UTC", time_unit="us").alias("time_end"),
        pl.col("latitude").alias("lat"), pl.col("longitude").alias("lon"),
        pl.col("uncertainty_m"),
        attrs.str.json_path_match("$.class").alias("klass"),
        attrs.str.json_path_match("$.confidence").cast(pl.Float64).alias("reliability"),
        attrs, pl.col("raw_sha256"), pl.col("raw_row"),
    ), "drone reports")


class DroneSource:
    """Source adapter for drone report documents."""

    name: str = SourceName.DRONE
    kind = SourceKind.DRONE

    def sniff(self, header: list[str]) -> bool:
        return bool(header) and header[0] == "{" + FORMAT

    def speakers(self, batch: Batch, payload: bytes) -> set[str]:
        """The platforms a document speaks for: its reports' and its patrols'."""
        # each report's platform_id field (its source_id is an id, not parsed)
        found = set(batch.records["attributes"].str.json_path_match("$.platform_id")
                    .drop_nulls().to_list()) if batch.records.height else set()
        patrols, _ = read_patrols(payload, batch.name)
        return found | {p.platform_id for p in patrols}

    def parse(self, raw: bytes, name: str, now: datetime | None = None) -> Batch:
        now = now or datetime.now(UTC)
        doc = _document(raw, name)
        items = doc.get("reports") or []
        records: list[dict[str, Any]] = []
        quarantine: list[QuarantineEntry] = []
        seen: set[str] = set()
        for k, item in enumerate(items, start=1):
            text = json.dumps(item, ensure_ascii=False, sort_keys=True)
            try:
                rep = DroneReport.model_validate(item)
                why = time_problem(rep.time, now)
                if why:
                    raise ValueError(why)
                if rep.report_id in seen:
                    raise ValueError(f"duplicate report_id {rep.report_id}")
                lat, lon, err_m, method = locate(rep)
            except ValidationError as err:
                quarantine.append(QuarantineEntry(k, _reason(err), text))
                continue
            except ValueError as err:
                quarantine.append(QuarantineEntry(k, str(err), text))
                continue
            seen.add(rep.report_id)
            t = rep.time.astimezone(UTC).isoformat().replace("+00:00", "Z")
            attrs = {"class": rep.class_.value, "weapon_class": rep.weapon_class,
                     "count": rep.count, "confidence": rep.confidence,
                     "platform_id": rep.platform_id, "report_id": rep.report_id,
                     "geolocation": method, "media": [m.model_dump() for m in rep.media],
                     "platform": rep.platform.model_dump()}
            records.append({
                "obs_id": "o-" + hashlib.sha256(f"drone|{rep.report_id}".encode())
                .hexdigest()[:24],
                "source_id": f"drone:{rep.platform_id}", "t0": t, "t1": t,
                "latitude": lat, "longitude": lon, "uncertainty_m": err_m,
                "attributes": json.dumps(attrs, sort_keys=True), "raw_row": k,
                "raw_sha256": sha256(text.encode())})
        table = pl.DataFrame(records, schema=RECORD_SCHEMA)
        return Batch(source=self.name, kind=self.kind, layout=FORMAT, name=name, raw=raw,
                     sha256=sha256(raw), n_rows=len(items), records=table,
                     quarantine=quarantine, observations=observations(table))


def read_patrols(raw: bytes, name: str, now: datetime | None = None
                 ) -> tuple[list[Patrol], list[QuarantineEntry]]:
    now = now or datetime.now(UTC)
    doc = _document(raw, name)
    patrols, bad = [], []
    for k, item in enumerate(doc.get("patrols") or [], start=1):
        try:
            patrol = Patrol.model_validate(item)
        except ValidationError as err:
            bad.append(QuarantineEntry(k, "patrol: " + _reason(err), json.dumps(item)))
            continue
        why = (time_problem(patrol.time_start, now, "time_start")
               or time_problem(patrol.time_end, now, "time_end"))
        if why:
            bad.append(QuarantineEntry(k, "patrol: " + why, json.dumps(item)))
        else:
            patrols.append(patrol)
    return patrols, bad


def report_schema() -> dict[str, Any]:
    """JSON Schema of one report (docs/drones.md is generated from it)."""
    return DroneReport.model_json_schema(by_alias=True)


def klv_packet(time: datetime, lat: float, lon: float, slant_range_m: float) -> str:
    """A minimal MISB ST 0601 local set (time, slant range, frame centre), base64: what a
    platform's encoder would send; used by the scenario and tests."""
    from klvdata import misb0601 as st0601

    micros = int(time.timestamp() * 1e6).to_bytes(8, "big")
    payload = b"".join(bytes(e) for e in (
        st0601.PrecisionTimeStamp(micros), st0601.SlantRange(slant_range_m),
        st0601.FrameCenterLatitude(lat), st0601.FrameCenterLongitude(lon)))
    return base64.b64encode(bytes(st0601.UASLocalMetadataSet(payload))).decode()
