"""The verification cycle: ingest -> baseline -> classify -> adjudicate -> store -> bulletin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from trucewatch.adjudication.ceasefire import CeasefireView, build_view
from trucewatch.agreement import load_agreement
from trucewatch.fusion.baseline import Baseline
from trucewatch.fusion.war_fires import WarFireRules, classify
from trucewatch.ingest.firms import read_firms
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


def run_cycle(*, agreement_path: Path, firms_files: list[Path], reference_years: list[int],
              out_dir: Path, report_date: date | None = None, cloud_path: Path | None = None,
              store_path: Path | None = None, pdf: bool = True,
              progress: Progress = _noop) -> CycleResult:
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
    progress("adjudicate", 2, 3)
    view = build_view(full, agreement, baseline)
    store.save_incidents(view.incidents, view.violations)
    # reviewed incidents survive a re-run; the bulletin shows the store's statuses
    view.incidents = store.incidents()

    cloud, gaps = read_cloud(cloud_path) if cloud_path else (None, set())
    last_known = max([current["acq_date"].max(), *(cloud or {})])  # type: ignore[type-var]
    report_date = report_date or last_known
    start = current["acq_date"].min()
    cov = coverage(current["acq_date"], start, report_date, cloud, gaps)  # type: ignore[arg-type]
    quarantined = len(store.quarantine())
    summary = [{"name": r.name, "rows": r.rows, "new": r.new, "duplicates": r.duplicates,
                "quarantined": r.quarantined} for r in reports]
    progress("report", 3, 3)
    bulletins = render(view, cov, report_date, out_dir, quarantined, summary,  # type: ignore[arg-type]
                       pdf=pdf)
    store.close()
    return CycleResult(view, bulletins, reports, Path(store.path), baseline_path)
