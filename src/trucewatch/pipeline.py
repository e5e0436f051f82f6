"""The verification cycle: ingest -> baseline -> classify -> adjudicate -> store -> bulletin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl

from trucewatch.adjudication.ceasefire import CeasefireView, build_view
from trucewatch.adjudication.explosions import explosion_incidents
from trucewatch.agreement import load_agreement
from trucewatch.fusion.association import LOCATED, ExplosionAssociator
from trucewatch.fusion.baseline import Baseline
from trucewatch.fusion.propagation import weather_for
from trucewatch.fusion.sensor_events import events_batch, locate_files
from trucewatch.fusion.war_fires import WarFireRules, classify
from trucewatch.ingest.firms import read_firms
from trucewatch.ingest.sensors import read_detections, read_stations
from trucewatch.reports.bulletin import BulletinFiles, render
from trucewatch.reports.coverage import coverage, read_cloud
from trucewatch.storage import IngestReport, SqliteStore

Progress = Callable[[str, int, int], None]


@dataclass
class CycleResult:
    view: CeasefireView
    bulletins: dict[str, BulletinFiles]
    ingested: list[IngestReport]
    store_path: Path
    baseline_path: Path


def _noop(_: str, __: int, ___: int) -> None:
    return None


@dataclass
class SensorInputs:
    stations: Path
    detections: list[Path]
    associator: ExplosionAssociator | None = None


def run_cycle(*, agreement_path: Path, firms_files: list[Path], reference_years: list[int],
              out_dir: Path, report_date: date | None = None, cloud_path: Path | None = None,
              store_path: Path | None = None, pdf: bool = True,
              progress: Progress = _noop, sensors: SensorInputs | None = None) -> CycleResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    agreement = load_agreement(agreement_path)  # fail early, before any work
    store = SqliteStore(store_path or out_dir / "trucewatch.db")
    reports = []
    for k, f in enumerate(firms_files):
        progress(f"ingest {f.name}", k, len(firms_files))
        reports.append(store.ingest(read_firms(f)))
    progress("ingest", len(firms_files), len(firms_files))
    detections = store.fire_detections()

    progress("baseline", 0, 3)
    baseline = Baseline.fit(detections, reference_years)
    baseline_path = out_dir / "baseline.npz"
    baseline.save(baseline_path)

    t0 = agreement.entry_into_force.date()
    current = detections.filter(~pl.col("acq_date").dt.year().is_in(reference_years))
    progress("classify", 1, 3)
    classified = classify(current, baseline, WarFireRules(reset_at=t0))
    full = current.hstack(classified.select("cell", "expected", "p_normal", "war_related",
                                            "reason", "cell_count", "baseline_sensor",
                                            "excess"))
    sensor_summary = _sensors(store, sensors, reports, progress) if sensors else None
    progress("adjudicate", 2, 3)
    view = build_view(full, agreement, baseline)
    ex_inc, ex_vio = explosion_incidents(store.explosions(), agreement)
    view.incidents += ex_inc
    view.violations += ex_vio
    store.save_incidents(view.incidents, view.violations)
    # reviewed incidents survive a re-run; the bulletin shows the store's statuses
    view.incidents = store.incidents()

    cloud, gaps = read_cloud(cloud_path) if cloud_path else (None, set())
    last_known = max([current["acq_date"].max(), *(cloud or {})])  # type: ignore[type-var]
    report_date = report_date or last_known  # type: ignore[assignment]
    start = current["acq_date"].min()
    cov = coverage(current["acq_date"], start, report_date, cloud, gaps)  # type: ignore[arg-type]
    quarantined = len(store.quarantine())
    summary = [{"name": r.name, "rows": r.rows, "new": r.new, "duplicates": r.duplicates,
                "quarantined": r.quarantined} for r in reports]
    progress("report", 3, 3)
    bulletins = render(view, cov, report_date, out_dir, quarantined, summary,  # type: ignore[arg-type]
                       pdf=pdf, sensors=sensor_summary)
    store.close()
    return CycleResult(view, bulletins, reports, Path(store.path), baseline_path)


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
