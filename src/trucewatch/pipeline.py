"""The verification cycle.

ingest (satellite, ground sensors, drones, allegations; signatures checked per source
policy) -> baseline -> classify fires -> locate explosions -> fuse all sources into
incidents -> agreement rules -> allegation rulings -> store -> (review) -> bulletin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from trucewatch.adjudication.allegations import AllegationJudge, Coverage
from trucewatch.adjudication.ceasefire import CeasefireView, build_view
from trucewatch.adjudication.rules import RuleBook, since_entry_into_force
from trucewatch.agreement import load_agreement
from trucewatch.fusion.association import LOCATED, ExplosionAssociator
from trucewatch.fusion.baseline import Baseline
from trucewatch.fusion.evidence import drone_evidence, explosion_evidence, fire_evidence
from trucewatch.fusion.incidents import EVIDENCE_SCHEMA, IncidentFuser
from trucewatch.fusion.propagation import weather_for
from trucewatch.fusion.sensor_events import events_batch, locate_files
from trucewatch.fusion.war_fires import WarFireRules, classify
from trucewatch.ingest.allegations import AllegationSource
from trucewatch.ingest.base import read_raw
from trucewatch.ingest.drones import DroneSource, read_patrols
from trucewatch.ingest.firms import read_firms
from trucewatch.ingest.sensors import read_detections, read_stations
from trucewatch.intake import Outcome, receive
from trucewatch.integrity.envelope import is_envelope, open_envelope
from trucewatch.integrity.keys import KeyRegistry
from trucewatch.reports.bulletin import BulletinFiles, render
from trucewatch.reports.coverage import coverage, read_cloud
from trucewatch.review.workflow import ReviewService
from trucewatch.storage import IngestReport, SqliteStore, open_store

Progress = Callable[[str, int, int], None]
Review = Callable[[SqliteStore], list[str]]


@dataclass
class CycleResult:
    view: CeasefireView
    bulletins: dict[str, BulletinFiles]
    ingested: list[IngestReport]
    store_path: Path | str  # a SQLite file or a postgresql:// URL
    baseline_path: Path
    submissions: list[Outcome] = field(default_factory=list)
    rulings: list[dict[str, Any]] = field(default_factory=list)
    review_log: list[str] = field(default_factory=list)


def _noop(_: str, __: int, ___: int) -> None:
    return None


@dataclass
class SensorInputs:
    stations: Path
    detections: list[Path]
    associator: ExplosionAssociator | None = None


@dataclass
class FieldInputs:
    """Drone report documents, allegation documents and the key registry."""

    drones: list[Path] = field(default_factory=list)
    allegations: list[Path] = field(default_factory=list)
    keys: Path | None = None
    fuser: IncidentFuser = field(default_factory=IncidentFuser)
    judge: AllegationJudge = field(default_factory=AllegationJudge)


def run_cycle(*, agreement_path: Path, firms_files: list[Path], reference_years: list[int],
              out_dir: Path, report_date: date | None = None, cloud_path: Path | None = None,
              store_path: Path | str | None = None, pdf: bool = True,
              progress: Progress = _noop, sensors: SensorInputs | None = None,
              field_inputs: FieldInputs | None = None, review: Review | None = None
              ) -> CycleResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    agreement = load_agreement(agreement_path)  # fail early, before any work
    fi = field_inputs or FieldInputs()
    registry = KeyRegistry.load(fi.keys) if fi.keys else KeyRegistry()
    store = open_store(store_path or out_dir / "trucewatch.db")
    store_where = store_path or out_dir / "trucewatch.db"
    reports = []
    for k, f in enumerate(firms_files):
        progress(f"ingest {f.name}", k, len(firms_files))
        reports.append(store.ingest(read_firms(f)))
    progress("ingest", len(firms_files), len(firms_files))
    detections = store.fire_detections()

    progress("baseline", 0, 4)
    baseline = Baseline.fit(detections, reference_years)
    baseline_path = out_dir / "baseline.npz"
    baseline.save(baseline_path)

    t0 = agreement.entry_into_force.date()
    current = detections.filter(~pl.col("acq_date").dt.year().is_in(reference_years))
    progress("classify", 1, 4)
    classified = classify(current, baseline, WarFireRules(reset_at=t0))
    full = current.hstack(classified.select("cell", "expected", "p_normal", "war_related",
                                            "reason", "cell_count", "baseline_sensor",
                                            "excess"))
    sensor_summary = _sensors(store, sensors, reports, progress) if sensors else None
    submissions: list[Outcome] = []
    drone_src, alleg_src = DroneSource(), AllegationSource()
    for path in fi.drones:
        submissions.append(receive(store, read_raw(path), path.name, drone_src,
                                   registry=registry))
    for path in fi.allegations:
        submissions.append(receive(store, read_raw(path), path.name, alleg_src,
                                   registry=registry))

    progress("fuse and adjudicate", 2, 4)
    view = build_view(full, agreement, baseline)
    evidence = pl.concat([
        fire_evidence(full, since=since_entry_into_force(agreement)),
        explosion_evidence(store.explosions()),
        drone_evidence(store.observations("drone")),
    ]).cast(EVIDENCE_SCHEMA)  # type: ignore[arg-type]
    rulebook = RuleBook(agreement)
    fused, _ = fi.fuser.fuse(evidence)
    evaluated = rulebook.evaluate(fused)

    cloud, gaps = read_cloud(cloud_path) if cloud_path else (None, set())
    last_known: date = max([current["acq_date"].max(), *(cloud or {})])  # type: ignore[type-var, assignment]
    horizon = datetime.combine(last_known + timedelta(days=1), datetime.min.time(), UTC)
    cov = _coverage(sensors, sensor_summary, dict(cloud or {}), gaps, fi.drones, store)
    rulings, matched = fi.judge.rule(store.allegations(), evaluated, cov, horizon)
    keep = evaluated["observation_ids"].list.join("|").is_in(list(matched))
    incidents, violations = rulebook.to_domain(evaluated, keep)
    store.save_incidents(incidents, violations)
    store.save_rulings(rulings)
    store.save_coverage(cov.geojson())
    review_log = review(store) if review else []

    # the bulletin shows the store's state: reviewed incidents survive re-runs
    view.incidents = store.incidents()
    view.violations = store.violations()
    report_date = report_date or last_known
    start = current["acq_date"].min()
    cover = coverage(current["acq_date"], start, report_date, cloud, gaps)  # type: ignore[arg-type]
    quarantined = len(store.quarantine())
    summary = [{"name": r.name, "rows": r.rows, "new": r.new, "duplicates": r.duplicates,
                "quarantined": r.quarantined} for r in reports]
    summary += [{"name": o.name, "rows": o.report.rows if o.report else 0,
                 "new": o.report.new if o.report else 0, "duplicates": 0,
                 "quarantined": len(o.quarantined), "refused": o.refused,
                 "signed_by": o.signed_by} for o in submissions]
    progress("report", 3, 4)
    extra = {"review": ReviewService(store).figures().to_dict(), "rulings": store.rulings(),
             "review_scripted": review is not None,
             "refused": store.refused(), "integrity": _integrity(store),
             "evidence_sources": sorted(set(evidence["source_kind"].to_list())),
             "fused": {"observations": evidence.height, "incidents": fused.height,
                       "stored": len(view.incidents)}}
    bulletins = render(view, cover, report_date, out_dir, quarantined, summary,
                       pdf=pdf, sensors=sensor_summary, extra=extra)
    store.close()
    return CycleResult(view, bulletins, reports, store_where, baseline_path,
                       submissions, rulings, review_log)


def _integrity(store: SqliteStore) -> dict[str, Any]:
    problems = store.verify()
    log = store.audit_log()
    return {"ok": not problems, "entries": len(log), "head": log[-1].hash if log else "",
            "problems": problems}


def _coverage(sensors: SensorInputs | None, summary: dict[str, Any] | None,
              cloud: dict[date, float | None] | None, gaps: set[date], drones: list[Path],
              store: SqliteStore) -> Coverage:
    cov = Coverage(satellite_days=dict(cloud or {}), satellite_gaps=set(gaps))
    if sensors and summary and summary.get("start") not in (None, "-"):
        st = read_stations(sensors.stations)
        cov.stations = list(zip(st["latitude"].to_list(), st["longitude"].to_list(),
                                strict=True))
        cov.sensor_periods = [(datetime.fromisoformat(str(summary["start"]).replace("Z", "")
                                                      ).replace(tzinfo=UTC),
                               datetime.fromisoformat(str(summary["end"]).replace("Z", "")
                                                      ).replace(tzinfo=UTC))]
    accepted = {r["name"] for r in store.batches()}
    for path in drones:
        if path.name not in accepted:
            continue  # a refused submission's patrols are not coverage either
        raw = read_raw(path)
        payload = open_envelope(raw).payload if is_envelope(raw) else raw
        patrols, _ = read_patrols(payload, path.name)
        cov.patrols += [(p.time_start, p.time_end, list(p.track), p.swath_m) for p in patrols]
    return cov


def _sensors(store: SqliteStore, inputs: SensorInputs, reports: list[IngestReport],
             progress: Progress) -> dict[str, object]:
    """Locate explosions from each detections file and store them as observations."""
    stations = read_stations(inputs.stations)
    totals = {"stations": stations.height, "detections": 0, "associated": 0, "located": 0,
              "not_locatable": 0, "quarantined": 0}
    reporting: set[str] = set()
    times: list[datetime] = []
    for k, path in enumerate(inputs.detections):
        progress(f"locate {path.name}", k, len(inputs.detections))
        batch = read_detections(path, stations)
        # each file is located with the air it was recorded in (weather.json beside it)
        associator = inputs.associator or ExplosionAssociator(propagation=weather_for(path))
        result = locate_files(stations, batch, associator)
        reports.append(store.ingest(events_batch(result)))
        ev = result.association.events
        totals["detections"] += batch.n_rows
        totals["quarantined"] += len(batch.quarantine)
        totals["associated"] += int(result.association.assignments["event_id"]
                                    .is_not_null().sum())
        totals["located"] += int((ev["status"] == LOCATED).sum())
        totals["not_locatable"] += int((ev["status"] != LOCATED).sum())
        reporting |= set(batch.records["station"].to_list())
        if batch.records.height:
            times += [batch.records["time"].min(), batch.records["time"].max()]  # type: ignore[list-item]
    return {**totals, "stations_reporting": len(reporting),
            "start": f"{min(times):%Y-%m-%d %H:%M}Z" if times else "-",
            "end": f"{max(times):%Y-%m-%d %H:%M}Z" if times else "-"}
