"""From station and detection files to located explosions: the ground-sensor channel.

Glue between the inputs (:mod:`trucewatch.ingest.sensors`), the associator and
the outputs: EVENTS.csv / ASSIGN.csv in the documented layout, QuakeML through
ObsPy, and Observations for the store (located explosions, with uncertainty).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from trucewatch.ingest.base import Batch, QuarantineEntry
from trucewatch.model import contract
from trucewatch.model.enums import ObservedClass, SourceKind, SourceName
from trucewatch.sensors.association import (
    LOCATED,
    Association,
    ExplosionAssociator,
    Network,
    Picks,
)
from trucewatch.sensors.health import (
    HealthCheck,
    NetworkHealth,
    StationFlag,
    StationProblem,
    merge_flags,
)

EVENT_COLUMNS = ["event_id", "time", "latitude", "longitude", "major_m", "minor_m",
                 "azimuth_deg", "n_defining", "status"]


@dataclass
class SensorResult:
    stations: pl.DataFrame
    batch: Batch  # the detections as read: valid records and quarantine
    association: Association
    network: Network
    health: NetworkHealth | None = None  # None: not checked

    def assignments_all(self) -> pl.DataFrame:
        """Every input detection exactly once: quarantined ones unassociated."""
        header = self.batch.raw.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff")
        col = [c.strip().lower() for c in header.split(",")].index("detection_id")
        ids = [next(csv.reader([e.raw]), [""] * (col + 1))[col:col + 1] or [""]
               for e in self.batch.quarantine]
        q = pl.DataFrame({"detection_id": [i[0].strip() for i in ids],
                          "event_id": [None] * len(self.batch.quarantine)},
                         schema={"detection_id": pl.String, "event_id": pl.String})
        a = self.association.assignments.select("detection_id", "event_id")
        return pl.concat([a, q])

    def write_quakeml(self, path: Path) -> None:
        """QuakeML with every event's picks and arrivals (residuals) and its ellipse."""
        to_quakeml(self.association.events, path, assignments=self.association.assignments,
                   detections=self.batch.records, stations=self.stations)

    def write(self, events_csv: Path, assign_csv: Path) -> None:
        ev = self.association.events.select(EVENT_COLUMNS).with_columns(
            pl.col("time").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
            pl.col("latitude").round(6), pl.col("longitude").round(6),
            pl.col("major_m").round(1), pl.col("minor_m").round(1),
            pl.col("azimuth_deg").round(1))
        ev.write_csv(events_csv)
        self.assignments_all().write_csv(assign_csv)


def locate_files(stations: pl.DataFrame, batch: Batch, associator: ExplosionAssociator,
                 progress: Callable[[int, int], None] | None = None,
                 health: HealthCheck | None = None) -> SensorResult:
    """Associate the batch's detections. With ``health`` (the default is
    ``HealthCheck()``; pass ``NO_HEALTH_CHECK`` to skip it), the stations' health is
    checked on the result: detections of a station whose clock is off, and of a noisy
    station, move to the batch's quarantine (each with its reason) and the rest is
    associated again, up to ``MAX_HEALTH_ROUNDS`` times (a bad clock first hides
    behind the events it spoils). ``SensorResult.health`` says what was found."""
    check = HealthCheck() if health is None else health
    network = Network.from_table(stations)
    recs = batch.records.sort("time")
    lines = batch.raw.decode("utf-8", "replace").splitlines() if check.enabled else []
    moved: list[QuarantineEntry] = []
    kept_flags: list[StationFlag] = []
    for _ in range(MAX_HEALTH_ROUNDS):
        picks = Picks.from_table(recs, network)
        assoc = _associate(associator, network, picks, progress)
        if not check.enabled:
            return SensorResult(stations, batch, assoc, network, None)
        found = check.check(associator, network, picks, assoc)
        bad, reason, quarantining = flagged(recs, found.flags)
        kept_flags += quarantining
        if not bad.any():
            break
        rows = recs["row"].to_numpy()
        moved += [QuarantineEntry(int(r), str(why), lines[int(r) - 1]
                                  if 0 < int(r) <= len(lines) else "")
                  for r, why in zip(rows[bad], reason[bad], strict=True)]
        recs = recs.filter(pl.Series(~bad))
    final = replace(found, flags=merge_flags(kept_flags, found.flags) + repeat_flags(batch))
    if moved:
        batch = replace(batch, records=recs, quarantine=[*batch.quarantine,
                                                         *sorted(moved, key=lambda q: q.row)])
        batch.check_accounting()
    return SensorResult(stations, batch, assoc, network, final)


MAX_HEALTH_ROUNDS = 2
REPEATS_NAMED = 10  # a station with this many repeats at intake: its stream came twice


def repeat_flags(batch: Batch) -> list[StationFlag]:
    """The stations whose detections came twice (REPEATS_NAMED or more quarantined at
    intake as repeats of earlier ones: a duplicated stream), as coverage sentences;
    each copy's quarantine entry names the detection it repeats."""
    header = batch.raw.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff")
    cols = [c.strip().lower() for c in header.split(",")]
    if "station" not in cols:
        return []
    col = cols.index("station")
    counts: dict[str, int] = {}
    for q in batch.quarantine:
        if "duplicate" in q.reason or "same station, phase and time" in q.reason:
            row = next(csv.reader([q.raw]), [])
            if len(row) > col:
                counts[row[col].strip()] = counts.get(row[col].strip(), 0) + 1
    return [StationFlag(
        sid, StationProblem.DUPLICATED, None, None, float(n), n,
        f"Station {sid}: {n} detections repeat earlier ones (its stream came twice?); "
        "they are quarantined at intake, each naming the detection it repeats.")
        for sid, n in sorted(counts.items()) if n >= REPEATS_NAMED]


def flagged(recs: pl.DataFrame, flags: list[StationFlag]
            ) -> tuple[NDArray[np.bool_], NDArray[np.object_], list[StationFlag]]:
    """Which detections (``station``, ``time``) a quarantining flag covers, each with its
    reason, and the flags that covered any: what the health check keeps out of the next
    round (the per-file path here and the sensor stream, intake.stream)."""
    bad = np.zeros(recs.height, dtype=bool)
    reason = np.full(recs.height, "", dtype=object)
    t_us = recs["time"].dt.epoch("us").to_numpy()
    st = recs["station"].to_numpy()
    used: list[StationFlag] = []
    for f in flags:
        if not f.quarantines:
            continue
        lo = f.start.timestamp() * 1e6 if f.start else -np.inf
        hi = f.end.timestamp() * 1e6 if f.end else np.inf
        m = (st == f.station) & (t_us >= lo) & (t_us <= hi) & ~bad
        bad |= m
        reason[m] = _health_reason(f)
        used.append(f)
    return bad, reason, used
NO_HEALTH_CHECK = HealthCheck(enabled=False)


def _health_reason(f: StationFlag) -> str:
    if f.problem is StationProblem.CLOCK:
        return (f"station {f.station}: clock off by about {f.value:+.1f} s at this time "
                f"(estimated from {f.n} located events; health check)")
    return (f"station {f.station}: noisy, {f.value:.0f}x the unexplained detections of its "
            "nearest stations; kept out of association (health check)")


def _associate(associator: ExplosionAssociator, network: Network, picks: Picks,
               progress: Callable[[int, int], None] | None) -> Association:
    if progress is None:
        return associator.associate(network, picks)
    # same windows as batch mode; chunks only drive the progress bar
    parts = []
    n = len(picks)
    step = max(1, n // 50)
    chunks = (picks.take(np.arange(k, min(n, k + step))) for k in range(0, n, step))
    done = 0
    for part in associator.stream(network, chunks):
        parts.append(part)
        done += part.assignments.height
        progress(done, n)
    return Association.concat(parts)


def to_quakeml(events: pl.DataFrame, path: Path, *, assignments: pl.DataFrame | None = None,
               detections: pl.DataFrame | None = None, stations: pl.DataFrame | None = None
               ) -> None:
    """Write located explosions as QuakeML 1.2 (event type 'explosion', automatic).

    The horizontal uncertainty is an ``originUncertainty`` ellipse (95 %, semi-axes in
    metres, azimuth of the major axis from north; preferredDescription "uncertainty
    ellipse"). With ``assignments`` (detection_id, event_id, residual_s), ``detections``
    (detection_id, station, time, phase, optional back_azimuth_deg) and ``stations`` (id,
    latitude, longitude), each event also carries its picks and their arrivals with the
    time residual, epicentral distance (degrees) and station azimuth."""
    from obspy import UTCDateTime
    from obspy.core.event import (
        Arrival,
        Catalog,
        Comment,
        CreationInfo,
        Event,
        Origin,
        OriginQuality,
        OriginUncertainty,
        Pick,
        QuantityError,
        ResourceIdentifier,
        WaveformStreamID,
    )
    from obspy.geodetics import gps2dist_azimuth, kilometers2degrees

    picks_of: dict[str, list[dict[str, Any]]] = {}
    if assignments is not None and detections is not None and stations is not None:
        cols = ["detection_id", "station", "time", "phase"] + (
            ["back_azimuth_deg"] if "back_azimuth_deg" in detections.columns else [])
        rows = (assignments.drop_nulls("event_id")
                .join(detections.select(cols), on="detection_id")
                .join(stations.select(pl.col("id").cast(pl.String).alias("station"),
                                      pl.col("latitude").alias("st_lat"),
                                      pl.col("longitude").alias("st_lon")), on="station"))
        for r in rows.iter_rows(named=True):
            picks_of.setdefault(str(r["event_id"]), []).append(r)
    cat = Catalog(creation_info=CreationInfo(agency_id="trucewatch"))
    for r in events.iter_rows(named=True):
        unc = None
        if r["major_m"] is not None and r["major_m"] == r["major_m"]:
            unc = OriginUncertainty(max_horizontal_uncertainty=r["major_m"],
                                    min_horizontal_uncertainty=r["minor_m"],
                                    azimuth_max_horizontal_uncertainty=r["azimuth_deg"],
                                    confidence_level=95.0,
                                    preferred_description="uncertainty ellipse")
        eid = str(r["event_id"])
        o = Origin(resource_id=ResourceIdentifier(f"smi:trucewatch/origin/{eid}"),
                   time=UTCDateTime(r["time"].isoformat()), latitude=r["latitude"],
                   longitude=r["longitude"], depth=0.0, depth_type="operator assigned",
                   evaluation_mode="automatic", evaluation_status="preliminary",
                   origin_uncertainty=unc,
                   quality=OriginQuality(used_station_count=r["n_stations"],
                                         associated_phase_count=r["n_defining"],
                                         standard_error=r["rms_s"]))
        picks = []
        for p in picks_of.get(eid, []):
            dist_m, az, _ = gps2dist_azimuth(r["latitude"], r["longitude"], p["st_lat"],
                                             p["st_lon"])
            baz = p.get("back_azimuth_deg")
            pick = Pick(resource_id=ResourceIdentifier(f"smi:trucewatch/pick/{p['detection_id']}"),
                        time=UTCDateTime(p["time"].isoformat()),
                        waveform_id=WaveformStreamID(network_code="TW",
                                                     station_code=str(p["station"])),
                        phase_hint=str(p["phase"]), evaluation_mode="automatic",
                        backazimuth=float(baz) if baz is not None and baz == baz else None)
            picks.append(pick)
            res = p["residual_s"]
            o.arrivals.append(Arrival(
                pick_id=pick.resource_id, phase=str(p["phase"]),
                time_residual=float(res) if res is not None else None,
                distance=kilometers2degrees(dist_m / 1000.0), azimuth=az, time_weight=1.0))
        if picks:
            o.quality.associated_phase_count = len(picks)
            o.time_errors = QuantityError(uncertainty=r.get("sigma_t_s"))
        ev = Event(resource_id=ResourceIdentifier(f"smi:trucewatch/event/{eid}"),
                   event_type="explosion", event_type_certainty="suspected", origins=[o],
                   picks=picks, comments=[Comment(text=f"status: {r['status']}")])
        ev.preferred_origin_id = o.resource_id
        cat.append(ev)
    cat.write(str(path), format="QUAKEML")


def observation_records(events: pl.DataFrame) -> pl.DataFrame:
    """Located explosions as store records: a stable id from time and place, 1-sigma
    uncertainty from the 95 % ellipse (semi-major / 2.448)."""
    def oid(t: str, lat: float, lon: float) -> str:
        return "o-" + hashlib.sha256(f"sensors|{t}|{lat:.5f}|{lon:.5f}".encode()).hexdigest()[:24]

    rows = events.with_columns(pl.col("time").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").alias("t"))
    return rows.with_columns(
        pl.struct("t", "latitude", "longitude").map_elements(
            lambda s: oid(s["t"], s["latitude"], s["longitude"]), return_dtype=pl.String
        ).alias("obs_id"),
        (pl.col("major_m") / 2.448).fill_nan(None).fill_null(5000.0).alias("uncertainty_m"))


# a location defined by this many stations is taken at face value; fewer, less (a 4-station
# coincidence inside a barrage is the associator's typical false event, docs/sensors.md)
FULL_TRUST_DEFINING = 8.0
MIN_TRUST = 0.3  # the reliability of a located event defined by the fewest stations


def reliability(recs: pl.DataFrame) -> pl.Expr:
    """The network's own confidence in each event's place (the contract's
    ``reliability``): ``n_defining / FULL_TRUST_DEFINING`` clipped to MIN_TRUST..1 for a
    located event; 0 for one that could not be located, which is no evidence of a place."""
    if "status" not in recs.columns:
        return pl.lit(0.0)
    trust = (pl.col("n_defining").cast(pl.Float64) / FULL_TRUST_DEFINING).clip(MIN_TRUST, 1.0) \
        if "n_defining" in recs.columns else pl.lit(None, pl.Float64)
    return pl.when(pl.col("status") == LOCATED).then(trust).otherwise(0.0)


EVENT_ATTRIBUTES = ("event_id", "status", "n_defining", "n_stations", "rms_s", "major_m",
                    "minor_m", "azimuth_deg")


def observations(recs: pl.DataFrame, raw_sha256: str) -> pl.DataFrame:
    """Located explosions (observation_records) in the observation contract: an instant
    to the millisecond, the ellipse and the solution's figures in ``attributes``; the raw
    record is the detections file (its SHA-256, row 0)."""
    t = pl.col("time").dt.truncate("1ms").cast(contract.TIME)  # the millisecond of the id
    attrs = [c for c in EVENT_ATTRIBUTES if c in recs.columns]
    out = recs.select(
        pl.col("obs_id").alias("id"),
        pl.lit(SourceKind.SENSOR_NETWORK.value).alias("source_kind"),
        pl.lit("sensors:network").alias("source_id"),
        pl.lit(SourceKind.SENSOR_NETWORK.value).alias("sensor"),
        t.alias("time_start"), t.alias("time_end"),
        pl.col("latitude").alias("lat"), pl.col("longitude").alias("lon"),
        pl.col("uncertainty_m"),
        pl.lit(ObservedClass.EXPLOSION.value).alias("klass"),
        reliability(recs).alias("reliability"),
        (pl.struct(*attrs).struct.json_encode() if attrs else pl.lit("{}")).alias("attributes"),
        pl.lit(raw_sha256).alias("raw_sha256"),
        pl.lit(0, dtype=pl.Int64).alias("raw_row"),
    )
    return contract.conform(out, "located explosions")


def events_batch(result: SensorResult) -> Batch:
    """The located explosions as a store batch; the raw input kept is the detections file,
    its quarantine the detections' quarantine."""
    b = result.batch
    recs = observation_records(result.association.events)
    return Batch(source=SourceName.SENSOR_EVENTS, kind=SourceKind.SENSOR_NETWORK,
                 layout="explosions", name=b.name, raw=b.raw, sha256=b.sha256,
                 n_rows=recs.height + len(b.quarantine), records=recs, quarantine=b.quarantine,
                 observations=observations(recs, b.sha256))
