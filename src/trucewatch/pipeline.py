"""The verification cycle.

ingest (satellite, ground sensors, drones, allegations; signatures checked per source
policy) -> baseline -> classify fires -> locate explosions -> fuse all sources into
incidents -> agreement rules -> allegation rulings -> store -> (review) -> bulletin.

As of the report date D (docs/fusion.md, "As-of processing"): every input is stored,
but the cycle for D uses only what was observed up to D's end (FIRMS acq_date <= D,
explosions, drone reports and allegations received before D + 1 day 00:00Z), so the
bulletin for D does not change when later data arrive. Options are checked (agreement,
files, years, report date) before any heavy work.
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
from trucewatch.errors import ConfigError, InputFileError
from trucewatch.fusion.association import LOCATED, ExplosionAssociator
from trucewatch.fusion.baseline import BaselineParams, fit_baseline
from trucewatch.fusion.evidence import drone_evidence, explosion_evidence, fire_evidence
from trucewatch.fusion.incidents import EVIDENCE_SCHEMA, IncidentFuser
from trucewatch.fusion.propagation import weather_for
from trucewatch.fusion.war_fires import WarFireRules, classify
from trucewatch.ingest.allegations import AllegationSource
from trucewatch.ingest.base import read_received, unpack
from trucewatch.ingest.drones import DroneSource, read_patrols
from trucewatch.ingest.firms import FirmsFilter as FirmsFilter  # run_cycle's argument type
from trucewatch.ingest.firms import FirmsSource
from trucewatch.intake import Outcome, keep, open_input, receive
from trucewatch.intake.sources import ConfigSource, DetectionSource, StationSource
from trucewatch.integrity.envelope import SourcePolicy, is_envelope, open_envelope
from trucewatch.integrity.keys import KeyRegistry
from trucewatch.reports.bulletin import BulletinFiles, render
from trucewatch.reports.coverage import coverage, read_cloud
from trucewatch.reports.i18n import check_language
from trucewatch.review.workflow import ReviewService
from trucewatch.storage import IngestReport, SqliteStore, open_store
from trucewatch.storage.postgis import is_postgres_url

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


@dataclass(frozen=True)
class Plan:
    """What a cycle will do, settled before any heavy work."""

    reference_years: list[int]
    report_date: date
    first: date  # first monitored (non-reference) detection
    last: date  # last data (FIRMS or cloud record)

    @property
    def cutoff(self) -> datetime:
        """The end of the report date: nothing observed at or after it is used."""
        return datetime.combine(self.report_date + timedelta(days=1), datetime.min.time(),
                                UTC)


def plan_cycle(summary: pl.DataFrame, entry_into_force: date, reference_years: list[int] | None,
               report_date: date | None, cloud_days: list[date] | None = None,
               flt: FirmsFilter | None = None) -> Plan:
    """Check a cycle's options against the FIRMS detections available (``summary``: sensor,
    acq_date, n: the store's and the input files'), after the filter. Raises ConfigError
    naming the fix: no data, reference years absent or not before the report date, a
    report date before the first monitored day or after the last data."""
    flt = flt or FirmsFilter()
    s = flt.apply(summary)
    chosen = f" (with {flt.describe()})" if flt.describe() else ""
    if s.is_empty():
        raise ConfigError(f"no FIRMS detections to use{chosen}",
                          fix="give --firms files with detections, or widen --sensor/"
                              "--since/--until")
    present = sorted({int(y) for y in s["acq_date"].dt.year().unique().to_list()})
    if reference_years is None:
        years = [y for y in present if y < entry_into_force.year]
        if not years:
            raise ConfigError(
                f"no FIRMS detections before the entry-into-force year "
                f"{entry_into_force.year}{chosen} to learn normal years from "
                f"(years present: {', '.join(map(str, present))})",
                fix="add files of earlier years or give --years")
    else:
        years = sorted(set(reference_years))
        missing = [y for y in years if y not in present]
        if missing:
            raise ConfigError(
                f"reference year(s) {', '.join(map(str, missing))} have no FIRMS "
                f"detections{chosen} (years present: {', '.join(map(str, present))})",
                fix="choose --years among the years present, or add their files")
    current = s.filter(~pl.col("acq_date").dt.year().is_in(years))
    if current.is_empty():
        raise ConfigError(f"every FIRMS detection{chosen} is in the reference years "
                          f"{', '.join(map(str, years))}: nothing to monitor",
                          fix="add the monitored period's files or fewer --years")
    first: date = current["acq_date"].min()  # type: ignore[assignment]
    last: date = max([current["acq_date"].max(), *(cloud_days or [])])  # type: ignore[type-var, assignment]
    day = report_date or last
    if day < first:
        raise ConfigError(f"report date {day} is before the first monitored data ({first})",
                          fix=f"give --report-date between {first} and {last}")
    if day > last:
        raise ConfigError(f"report date {day} is after the last data ({last}): nothing "
                          "has been observed for it yet",
                          fix=f"give --report-date between {first} and {last}, or add the "
                              "newer files")
    later = [y for y in years if y >= day.year]
    if later:
        raise ConfigError(
            f"reference year(s) {', '.join(map(str, later))} are not before the report "
            f"date's year {day.year}: a baseline must not learn from the period it judges",
            fix="choose --years before the report date")
    return Plan(years, day, first, last)


def _check_files(paths: list[Path | None]) -> None:
    for p in paths:
        if p is not None and not Path(p).is_file():
            raise InputFileError(f"{p}: no such file", path=str(p),
                                 fix="check the path (run from the right folder?)")


def _time_before(df: pl.DataFrame, cutoff: datetime, col: str = "time_start") -> pl.DataFrame:
    if df.is_empty():
        return df
    return df.filter(pl.col(col).str.to_datetime(time_zone="UTC") < cutoff)


@dataclass
class SensorInputs:
    """A station inventory and detections files; each goes through the intake (signed by
    the network's key, or quarantined unsigned unless ``policy`` says otherwise)."""

    stations: Path
    detections: list[Path]
    associator: ExplosionAssociator | None = None
    policy: SourcePolicy | None = None  # None: the intake's default for sensor inputs


@dataclass
class FieldInputs:
    """Drone report documents, allegation documents and the key registry."""

    drones: list[Path] = field(default_factory=list)
    allegations: list[Path] = field(default_factory=list)
    keys: Path | None = None
    fuser: IncidentFuser = field(default_factory=IncidentFuser)
    judge: AllegationJudge = field(default_factory=AllegationJudge)


def run_cycle(*, agreement_path: Path, firms_files: list[Path],
              reference_years: list[int] | None = None,
              out_dir: Path, report_date: date | None = None, cloud_path: Path | None = None,
              store_path: Path | str | None = None, pdf: bool = True,
              progress: Progress = _noop, sensors: SensorInputs | None = None,
              field_inputs: FieldInputs | None = None, review: Review | None = None,
              firms_filter: FirmsFilter | None = None,
              baseline_params: BaselineParams | None = None,
              covariates: Path | None = None, covariates_required: bool = True,
              language: str = "en") -> CycleResult:
    """One cycle as of ``report_date`` (default: the last data). ``reference_years``
    default to the years of FIRMS data before the entry-into-force year. ``covariates``: the
    land-use folder for the satellite classifier; when not ``covariates_required`` (found
    by default rather than given), covariates that do not cover the area are left out and
    the bulletin says so."""
    flt = firms_filter or FirmsFilter()
    flt.check()
    check_language(language)
    agreement = load_agreement(agreement_path)  # fail early, before any work
    fi = field_inputs or FieldInputs()
    _check_files([*firms_files, cloud_path, *(fi.drones), *(fi.allegations), fi.keys,
                  *([sensors.stations, *sensors.detections] if sensors else [])])
    cloud, gaps = read_cloud(cloud_path) if cloud_path else (None, set())
    registry = KeyRegistry.load(fi.keys) if fi.keys else KeyRegistry()
    out_dir.mkdir(parents=True, exist_ok=True)
    firms_src = FirmsSource()
    received = []
    for k, f in enumerate(firms_files):
        progress(f"read {f.name}", k, len(firms_files))
        received.append(open_input(read_received(f), f.name, firms_src, registry=registry))
    batches = [r.batch for r in received if r.batch is not None]
    store_where = store_path or out_dir / "trucewatch.db"
    # a store this run creates is removed again if the run is refused before using it
    fresh = not is_postgres_url(store_where) and not Path(store_where).exists()
    store = open_store(store_where)
    try:
        plan = plan_cycle(pl.concat([store.fire_summary(), *(
            b.records.group_by("sensor", "acq_date").len("n").with_columns(
                pl.col("n").cast(pl.Int64)) for b in batches)]),
            agreement.entry_into_force.date(), reference_years, report_date,
            list(cloud or {}), flt)
    except ConfigError:
        store.close()
        if fresh:
            for leftover in Path(store_where).parent.glob(Path(store_where).name + "*"):
                leftover.unlink(missing_ok=True)  # the file and its -wal/-shm companions
        raise
    reference_years = plan.reference_years
    day, cutoff = plan.report_date, plan.cutoff
    # the agreement and the key registry this cycle applied are kept as evidence too
    config = [receive(store, read_received(path), path.name, ConfigSource(kind))
              for kind, path in (("agreement", agreement_path), ("keys", fi.keys))
              if path is not None]
    reports = []
    firms_out: list[Outcome] = []
    for k, r in enumerate(received):
        progress(f"ingest {r.name}", k, len(received))
        o = keep(store, r)
        firms_out.append(o)
        if o.report is not None:
            reports.append(o.report)
    progress("ingest", len(received), len(received))
    del batches, received
    # as of the report date: what the satellites saw up to D's end, through the filter
    detections = flt.apply(store.fire_detections(end=day))

    progress("baseline", 0, 4)
    baseline, covariate_note = fit_baseline(detections, reference_years, baseline_params,
                                            covariates, required=covariates_required)
    baseline_path = out_dir / "baseline.npz"
    baseline.save(baseline_path)

    t0 = agreement.entry_into_force.date()
    current = detections.filter(~pl.col("acq_date").dt.year().is_in(reference_years))
    progress("classify", 1, 4)
    classified = classify(current, baseline, WarFireRules(reset_at=t0))
    full = current.hstack(classified.select("cell", "expected", "p_normal", "war_related",
                                            "reason", "cell_count", "baseline_sensor",
                                            "excess", "fire_class"))
    submissions: list[Outcome] = [o for o in [*config, *firms_out] if not o.accepted]
    sensor_summary, stations = (_sensors(store, sensors, registry, reports, submissions,
                                         progress, cutoff) if sensors else (None, None))
    drone_src, alleg_src = DroneSource(), AllegationSource()
    for path in fi.drones:
        submissions.append(receive(store, read_received(path), path.name, drone_src,
                                   registry=registry))
    for path in fi.allegations:
        submissions.append(receive(store, read_received(path), path.name, alleg_src,
                                   registry=registry))

    progress("fuse and adjudicate", 2, 4)
    view = build_view(full, agreement, baseline)
    explosions = _time_before(store.explosions(), cutoff)
    drones = _time_before(store.observations("drone"), cutoff)
    allegations = [a for a in store.allegations() if _before(a.get("received_at"), cutoff)]
    evidence = pl.concat([
        fire_evidence(full, since=since_entry_into_force(agreement)),
        explosion_evidence(explosions),
        drone_evidence(drones),
    ]).cast(EVIDENCE_SCHEMA)  # type: ignore[arg-type]
    rulebook = RuleBook(agreement, fire_reasons=full.select("id", "reason"))
    fused, _ = fi.fuser.fuse(evidence)
    evaluated = rulebook.evaluate(fused)

    cloud = {d: c for d, c in (cloud or {}).items() if d <= day} if cloud_path else None
    gaps = {g for g in gaps if g <= day}
    cov = _coverage(stations, sensor_summary, dict(cloud or {}), gaps, store, cutoff)
    rulings, matched = fi.judge.rule(allegations, evaluated, cov, cutoff)
    kept_matched = evaluated["observation_ids"].list.join("|").is_in(list(matched))
    incidents, violations = rulebook.to_domain(evaluated, kept_matched)
    store.save_incidents(incidents, violations)
    store.save_rulings(rulings)
    store.save_coverage(cov.geojson())
    review_log = review(store) if review else []

    # the bulletin shows the store's state: reviewed incidents survive re-runs; as of D,
    # only incidents made of observations up to D (a later run's may hold later ones)
    known = (set(current["id"].to_list()) | set(explosions["id"].to_list())
             | set(drones["id"].to_list()))
    view.incidents = [i for i in store.incidents() if i.time_start < cutoff
                      and set(i.observation_ids) <= known]
    shown = {i.id for i in view.incidents}
    view.violations = [v for v in store.violations() if v.incident_id in shown]
    asked = {str(a.get("allegation_id") or a.get("id") or "") for a in allegations}
    report_date = day
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
    after = {"fire_detections": int(flt.apply(store.fire_summary()).filter(
        pl.col("acq_date") > day)["n"].sum()),
        "explosions": store.explosions().height - explosions.height,
        "drone_reports": store.observations("drone").height - drones.height,
        "allegations": len(store.allegations()) - len(allegations)}
    as_of = {"report_date": day.isoformat(), "cutoff": f"{cutoff:%Y-%m-%dT%H:%M}Z",
             "reference_years": reference_years, "firms_filter": flt.describe(),
             "used": {"fire_detections": current.height,
                      "reference_detections": detections.height - current.height,
                      "explosions": explosions.height, "drone_reports": drones.height,
                      "allegations": len(allegations)},
             "stored_after_cutoff": after, "satellite_covariates": covariate_note,
             "fire_classes": dict(full.group_by("fire_class").len().iter_rows()),
             # how the satellite channel explained each day's fires from the day before
             # entry into force: a quiet bulletin shows what it saw, not just silence
             "fire_classes_by_day": _classes_by_day(full, t0 - timedelta(days=1))}
    extra = {"review": ReviewService(store).figures().to_dict(), "as_of": as_of,
             "rulings": [r for r in store.rulings()
                         if str(r.get("allegation_id", "")) in asked],
             "review_scripted": review is not None,
             "refused": store.refused(), "integrity": _integrity(store),
             "evidence_sources": sorted(set(evidence["source_kind"].to_list())),
             "fused": {"observations": evidence.height, "incidents": fused.height,
                       "stored": len(view.incidents)}}
    bulletins = render(view, cover, report_date, out_dir, quarantined, summary,
                       pdf=pdf, sensors=sensor_summary, extra=extra, language=language)
    _publish(store, bulletins, report_date)
    store.publish_checkpoint(out_dir, report_date)  # the log's head, signed (mission key)
    store.close()
    return CycleResult(view, bulletins, reports, store_where, baseline_path,
                       submissions, rulings, review_log)


def _publish(store: SqliteStore, bulletins: dict[str, Any], day: date) -> None:
    """The written bulletins become the store's published products (the service serves
    only these); a product already published under its name is left as it was."""
    for variant, files in bulletins.items():
        for kind, path in (("html", files.html), ("pdf", files.pdf), ("json", files.json),
                           ("geojson", files.geojson)):
            if path is not None and Path(path).is_file():
                store.publish_product(Path(path), kind, day, variant)


def _classes_by_day(full: pl.DataFrame, since: date) -> dict[str, dict[str, int]]:
    per = (full.filter(pl.col("acq_date") >= since).group_by("acq_date", "fire_class").len()
           .sort("acq_date", "fire_class"))
    out: dict[str, dict[str, int]] = {}
    for d, c, n in per.iter_rows():
        out.setdefault(d.isoformat(), {})[str(c)] = int(n)
    return out


def _integrity(store: SqliteStore) -> dict[str, Any]:
    problems = store.verify()
    log = store.audit_log()
    return {"ok": not problems, "entries": len(log), "head": log[-1].hash if log else "",
            "problems": problems}


def _before(iso: object, cutoff: datetime) -> bool:
    if not iso:
        return True
    t = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=UTC)) < cutoff


def _coverage(stations: pl.DataFrame | None, summary: dict[str, Any] | None,
              cloud: dict[date, float | None] | None, gaps: set[date], store: SqliteStore,
              cutoff: datetime | None = None) -> Coverage:
    """What the mechanism could see: the accepted station inventory over the period its
    accepted detections span, and the patrols of the drone inputs the store accepted
    (a refused or quarantined input's patrols are not coverage, whatever its name)."""
    cov = Coverage(satellite_days=dict(cloud or {}), satellite_gaps=set(gaps))
    if stations is not None and summary and summary.get("start") not in (None, "-"):
        cov.stations = list(zip(stations["latitude"].to_list(),
                                stations["longitude"].to_list(), strict=True))
        cov.sensor_periods = [(datetime.fromisoformat(str(summary["start"]).replace("Z", "")
                                                      ).replace(tzinfo=UTC),
                               datetime.fromisoformat(str(summary["end"]).replace("Z", "")
                                                      ).replace(tzinfo=UTC))]
    for b in store.inputs("drone"):
        if int(b["rows"]) and int(b["quarantined"]) >= int(b["rows"]):
            continue  # nothing in it was accepted
        raw = unpack(store.raw_input(str(b["raw_sha256"])), str(b["name"]))
        payload = unpack(open_envelope(raw).payload, str(b["name"])) if is_envelope(raw) \
            else raw
        patrols, _ = read_patrols(payload, str(b["name"]))
        cov.patrols += [(p.time_start, p.time_end, list(p.track), p.swath_m) for p in patrols
                        if cutoff is None or p.time_start < cutoff]
    return cov


def _sensors(store: SqliteStore, inputs: SensorInputs, registry: KeyRegistry,
             reports: list[IngestReport], outcomes: list[Outcome], progress: Progress,
             cutoff: datetime | None = None) -> tuple[dict[str, object], pl.DataFrame | None]:
    """Receive the station inventory and each detections file through the intake, locate
    explosions from the accepted detections against the accepted inventory, and store
    them as observations. The figures count what was recorded before ``cutoff``. Returns
    the figures and the stations used (None when the inventory was not accepted)."""
    st = receive(store, read_received(inputs.stations), inputs.stations.name,
                 StationSource(), registry=registry, policy=inputs.policy)
    totals = {"stations": 0, "detections": 0, "associated": 0, "located": 0,
              "not_locatable": 0, "quarantined": 0}
    if not st.usable or st.batch is None:
        why = st.refused or (st.quarantined[0].reason if st.quarantined else "empty")
        outcomes.append(st)
        return {**totals, "stations_reporting": 0, "start": "-", "end": "-",
                "not_used": f"station inventory {inputs.stations.name} not accepted: {why}"}, \
            None
    if st.report is not None:
        reports.append(st.report)
    stations = st.batch.records
    totals["stations"] = stations.height
    paths = {p.name: p for p in inputs.detections}
    source = DetectionSource(stations, lambda name: inputs.associator or ExplosionAssociator(
        propagation=weather_for(paths[name])))
    reporting: set[str] = set()
    times: list[datetime] = []
    for k, path in enumerate(inputs.detections):
        progress(f"locate {path.name}", k, len(inputs.detections))
        o = receive(store, read_received(path), path.name, source, registry=registry,
                    policy=inputs.policy)
        if o.report is not None:
            reports.append(o.report)
        result = source.results.get(path.name)
        if not o.usable or result is None:
            outcomes.append(o)
            totals["quarantined"] += len(o.quarantined)
            continue
        ev = result.association.events
        recs = result.batch.records
        assigned = result.association.assignments
        if cutoff is not None:  # as of the report date: what was recorded before its end
            ev = ev.filter(pl.col("time") < cutoff)
            recs = recs.filter(pl.col("time") < cutoff)
            assigned = assigned.filter(pl.col("detection_id").is_in(recs["detection_id"]
                                                                    .implode()))
        n_q = len(result.batch.quarantine)
        for key, add in (("detections", recs.height + n_q), ("quarantined", n_q),
                         ("associated", int(assigned["event_id"].is_not_null().sum())),
                         ("located", int((ev["status"] == LOCATED).sum())),
                         ("not_locatable", int((ev["status"] != LOCATED).sum()))):
            totals[key] += add
        reporting |= set(recs["station"].to_list())
        if recs.height:
            times += [recs["time"].min(), recs["time"].max()]  # type: ignore[list-item]
    return {**totals, "stations_reporting": len(reporting),
            "start": f"{min(times):%Y-%m-%d %H:%M}Z" if times else "-",
            "end": f"{max(times):%Y-%m-%d %H:%M}Z" if times else "-"}, stations
