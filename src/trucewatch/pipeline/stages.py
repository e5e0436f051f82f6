"""The cycle's stages: ingest -> classify -> locate -> fuse -> adjudicate -> rule -> publish.

Each stage is a small frozen dataclass (its configuration) with a ``name``, a typed input
(``input_type``, a dataclass whose fields are named after the earlier stages whose
outputs it reads) and ``run(ctx, data) -> output``, another typed dataclass. The cycle
(:mod:`trucewatch.pipeline.cycle`) runs a list of them, handing each the outputs it names;
:func:`run_stage` runs one alone, on an input given by hand. A stage is replaced by one
registered under the ``trucewatch.stages`` entry point (:mod:`trucewatch.pipeline.registry`)
that keeps its name and its input and output types.

What passes between stages are typed objects, never a round-trip through text, a file or
the store: the accepted station inventory is read once (by the intake), the sensor
period stays a pair of datetimes until the bulletin prints it, and the patrols of this
cycle's drone inputs come from the intake that read them (only inputs stored by an
earlier cycle or command are read back from the store's evidentiary copy).

As of the report date D (docs/fusion.md, "As-of processing"): every input is stored,
but the cycle for D uses only what was observed up to D's end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import polars as pl

from trucewatch.adjudication.allegations import AllegationJudge, Coverage
from trucewatch.adjudication.ceasefire import CeasefireView, build_view
from trucewatch.adjudication.coverage_maps import CoverageMaps
from trucewatch.adjudication.rules import RuleBook, since_entry_into_force
from trucewatch.errors import ConfigError, TrucewatchError
from trucewatch.fusion.evidence import drone_evidence, explosion_evidence, fire_evidence
from trucewatch.fusion.incidents import EVIDENCE_SCHEMA, IncidentFuser
from trucewatch.ingest.allegations import AllegationSource
from trucewatch.ingest.base import read_received, unpack
from trucewatch.ingest.drones import DroneSource, Patrol, read_patrols
from trucewatch.ingest.firms import FirmsSource, detections
from trucewatch.intake import Outcome, keep, open_input, receive
from trucewatch.intake.coalition import load_coalition
from trucewatch.intake.sources import (
    ConfigSource,
    DetectionSource,
    StationSource,
    network_uptime,
    stored_stations,
)
from trucewatch.intake.stream import advance
from trucewatch.integrity.envelope import is_envelope, open_envelope
from trucewatch.integrity.keys import KeyRegistry
from trucewatch.model.agreement import Agreement
from trucewatch.model.enums import SourceKind, SourceName
from trucewatch.model.incident import Incident, Violation
from trucewatch.pipeline.config import CycleConfig, FieldInputs, Plan, SensorInputs, plan_cycle
from trucewatch.pipeline.coverage_doc import build_maps, with_maps
from trucewatch.reports.archive import archive_product
from trucewatch.reports.basis import RenderBasis, agreement_bundle, save_basis
from trucewatch.reports.bulletin import BulletinFiles, render
from trucewatch.reports.coverage import coverage
from trucewatch.review.workflow import ReviewService
from trucewatch.satellite.baseline import Baseline, BaselineParams, fit_baseline
from trucewatch.satellite.war_fires import WarFireRules, classify
from trucewatch.sensors.association import LOCATED, ExplosionAssociator
from trucewatch.sensors.events import repeat_flags
from trucewatch.sensors.health import StationProblem
from trucewatch.sensors.propagation import Propagation, weather_for
from trucewatch.storage import IngestReport
from trucewatch.storage.protocols import (
    ArchiveStore,
    EvidenceStore,
    FullStore,
    ObservationStore,
)

Patrols = dict[str, list[Patrol]]  # raw sha256 of an accepted drone input -> its patrols


@dataclass
class CycleContext:
    """What every stage of one cycle shares: its configuration, the store, the key
    registry, the agreement and the cloud record (all read and checked before any
    stage runs, by :func:`trucewatch.pipeline.cycle.open_cycle`)."""

    config: CycleConfig
    store: FullStore
    registry: KeyRegistry
    agreement: Agreement
    cloud: dict[date, float | None] | None = None
    gaps: set[date] = field(default_factory=set)

    def progress(self, what: str, k: int, n: int) -> None:
        self.config.progress(what, k, n)


@runtime_checkable
class Stage(Protocol):
    """One step of the cycle. ``input_type`` is a dataclass whose fields are named after
    the stages whose outputs the step reads (the cycle fills them); ``run`` returns the
    step's output, a dataclass the later stages read."""

    input_type: ClassVar[type[Any]]

    @property
    def name(self) -> str:
        """Which step of the cycle this is (a plugin replacing ``fuse`` says ``fuse``)."""

    def run(self, ctx: CycleContext, data: Any) -> Any:
        """Do the step on ``data`` (an ``input_type``) and return its output."""


def run_stage(stage: Stage, ctx: CycleContext, data: Any) -> Any:
    """Run one stage alone on its typed input (checked to be its ``input_type``)."""
    if not isinstance(data, stage.input_type):
        raise ConfigError(f"stage {stage.name!r} takes a {stage.input_type.__name__}, not "
                          f"a {type(data).__name__}",
                          fix=f"build its input as {stage.input_type.__name__}(...)")
    return stage.run(ctx, data)


def input_for(stage: Stage, outputs: Mapping[str, Any]) -> Any:
    """A stage's input made of the earlier stages' outputs it names."""
    names = [f.name for f in fields(stage.input_type)]
    missing = [n for n in names if n not in outputs]
    if missing:
        raise ConfigError(f"stage {stage.name!r} needs the output of "
                          f"{', '.join(missing)}, which no earlier stage gave",
                          fix="run the stages in order: " + " -> ".join(STAGE_NAMES))
    return stage.input_type(**{n: outputs[n] for n in names})


# ------------------------------------------------------------------------------ ingest
@dataclass(frozen=True)
class IngestInput:
    """Nothing from earlier stages: the files are the configuration's."""


@dataclass
class Ingested:
    plan: Plan
    reports: list[IngestReport]  # accepted FIRMS files
    refused: list[Outcome]  # configuration and FIRMS inputs not accepted
    drones: list[Outcome]
    allegations: list[Outcome]
    patrols: Patrols  # of this cycle's accepted drone inputs
    # every stored satellite fire up to D, through the filter: the observation contract
    # with the satellite channel's columns (ingest.firms.detections)
    detections: pl.DataFrame


@dataclass(frozen=True)
class IngestStage:
    """FIRMS files, the agreement and key registry (kept as evidence), drone reports and
    allegations, each through the intake; the plan is settled (and a bad option refused)
    before anything is stored."""

    name: str = "ingest"
    input_type: ClassVar[type[Any]] = IngestInput

    def run(self, ctx: CycleContext, data: IngestInput) -> Ingested:
        cfg, store, registry = ctx.config, ctx.store, ctx.registry
        fi, flt = cfg.field_inputs, cfg.firms_filter
        firms_src = FirmsSource()
        received = []
        for k, f in enumerate(cfg.firms_files):
            ctx.progress(f"read {f.name}", k, len(cfg.firms_files))
            received.append(open_input(read_received(f), f.name, firms_src, registry=registry))
        batches = [r.batch for r in received if r.batch is not None]
        plan = plan_cycle(pl.concat([store.fire_summary(), *(
            b.records.group_by("sensor", "acq_date").len("n").with_columns(
                pl.col("n").cast(pl.Int64)) for b in batches)]),
            ctx.agreement.entry_into_force.date(),
            list(cfg.reference_years) if cfg.reference_years is not None else None,
            cfg.report_date, list(ctx.cloud or {}), flt)
        # the agreement and the key registry this cycle applied are kept as evidence too
        config = [receive(store, read_received(path), path.name, ConfigSource(kind))
                  for kind, path in ((SourceName.AGREEMENT, cfg.agreement_path),
                                     (SourceName.KEYS, fi.keys))
                  if path is not None]
        reports, firms_out = [], []
        for k, r in enumerate(received):
            ctx.progress(f"ingest {r.name}", k, len(received))
            o = keep(store, r)
            firms_out.append(o)
            if o.report is not None:
                reports.append(o.report)
        ctx.progress("ingest", len(received), len(received))
        del batches, received
        drones, patrols = _receive_drones(ctx, fi)
        alleg_src = AllegationSource()
        allegations = [receive(store, read_received(path), path.name, alleg_src,
                               registry=registry) for path in fi.allegations]
        # as of the report date: what the satellites saw up to D's end, through the filter
        fires = flt.apply(stored_fires(store, end=plan.report_date))
        return Ingested(plan, reports, [o for o in [*config, *firms_out] if not o.accepted],
                        drones, allegations, patrols, fires)


def stored_fires(store: ObservationStore, start: date | None = None,
                 end: date | None = None) -> pl.DataFrame:
    """The stored satellite fires seen on the UTC days [start, end] (either open), read
    as the observation contract and given the satellite channel's columns
    (ingest.firms.detections): what the baseline, the classifier and the fire evidence
    read, on the cycle's, the worker's and the derived bulletin's path alike."""
    since = None if start is None else datetime.combine(start, time(0), UTC)
    before = None if end is None else datetime.combine(end + timedelta(days=1), time(0), UTC)
    return detections(store.contract_observations([SourceKind.SATELLITE_FIRE],
                                                  before=before, since=since))


def _receive_drones(ctx: CycleContext, fi: FieldInputs) -> tuple[list[Outcome], Patrols]:
    """Each drone document through the intake; the patrols of those accepted are read
    from the payload the intake opened (not again from the store)."""
    src = DroneSource()
    out, patrols = [], {}
    for path in fi.drones:
        got = open_input(read_received(path), path.name, src, registry=ctx.registry)
        o = keep(ctx.store, got)
        out.append(o)
        if o.batch is not None and o.report is not None and _accepted_something(
                o.report.rows, o.report.quarantined):
            patrols[o.batch.sha256] = read_patrols(got.payload, path.name)[0]
    return out, patrols


def _accepted_something(rows: int, quarantined: int) -> bool:
    return not (rows and quarantined >= rows)


# ---------------------------------------------------------------------------- classify
@dataclass(frozen=True)
class ClassifyInput:
    ingest: Ingested


@dataclass
class Classified:
    baseline: Baseline
    baseline_path: Path
    covariate_note: str
    current: pl.DataFrame  # the monitored (non-reference) detections up to D
    full: pl.DataFrame  # ``current`` with the classifier's columns


@dataclass(frozen=True)
class ClassifyStage:
    """Fit the normal-years baseline and classify the monitored fires."""

    params: BaselineParams | None = None
    covariates: Path | None = None
    covariates_required: bool = True
    name: str = "classify"
    input_type: ClassVar[type[Any]] = ClassifyInput

    def run(self, ctx: CycleContext, data: ClassifyInput) -> Classified:
        ing = data.ingest
        years = ing.plan.reference_years
        ctx.progress("baseline", 0, 4)
        baseline, note = fit_baseline(ing.detections, years, self.params, self.covariates,
                                      required=self.covariates_required)
        path = ctx.config.out_dir / "baseline.npz"
        baseline.save(path)
        ctx.progress("classify", 1, 4)
        return classify_with(baseline, ing.detections, years, ctx.agreement, path, note)


def classify_with(baseline: Baseline, detections: pl.DataFrame, years: list[int],
                  agreement: Agreement, path: Path = Path(), note: str = "") -> Classified:
    """The classify stage's output from a fitted baseline (the cycle fits it first; the
    worker loads its artifact): the monitored fires with the classifier's columns."""
    t0 = agreement.entry_into_force.date()
    current = detections.filter(~pl.col("acq_date").dt.year().is_in(years))
    classified = classify(current, baseline, WarFireRules(reset_at=t0))
    full = current.hstack(classified.select(
        "cell", "expected", "p_normal", "war_related", "reason", "cell_count",
        "baseline_sensor", "excess", "fire_class"))
    return Classified(baseline, path, note, current, full)


# ------------------------------------------------------------------------------ locate
@dataclass(frozen=True)
class LocateInput:
    ingest: Ingested


@dataclass(frozen=True)
class SensorFigures:
    """What the ground-sensor channel recorded before the cutoff. ``start``/``end`` are
    datetimes (UTC) until the bulletin prints them."""

    stations: int = 0
    detections: int = 0
    associated: int = 0
    located: int = 0
    not_locatable: int = 0
    quarantined: int = 0
    stations_reporting: int = 0
    start: datetime | None = None
    end: datetime | None = None
    not_used: str = ""
    # the network's station-health sentences (sensors/health.py NetworkHealth.lines():
    # silent, deaf, drifting, noisy stations, network loss, capability); () when sound
    health: tuple[str, ...] = ()

    @property
    def period(self) -> tuple[datetime, datetime] | None:
        """When the network's accepted detections were recorded (None: no detection)."""
        return (self.start, self.end) if self.start and self.end else None

    def summary(self) -> dict[str, object]:
        """The bulletin's sensor figures."""
        out: dict[str, object] = {
            "stations": self.stations, "detections": self.detections,
            "associated": self.associated, "located": self.located,
            "not_locatable": self.not_locatable, "quarantined": self.quarantined,
            "stations_reporting": self.stations_reporting,
            "start": f"{self.start:%Y-%m-%d %H:%M}Z" if self.start else "-",
            "end": f"{self.end:%Y-%m-%d %H:%M}Z" if self.end else "-",
            "health": list(self.health)}
        if self.not_used:
            out["not_used"] = self.not_used
        return out


@dataclass
class Located:
    figures: SensorFigures | None  # None: no sensor inputs
    stations: pl.DataFrame | None  # the accepted inventory (None: none accepted)
    reports: list[IngestReport]
    refused: list[Outcome]  # sensor inputs not usable
    # (station, start, end) of the outages the health check found (None: open end)
    outages: list[tuple[str, datetime | None, datetime | None]] = field(
        default_factory=list)


@dataclass(frozen=True)
class LocateStage:
    """Receive the station inventory and each detections file through the intake (each
    stored as received), then locate explosions across the files with the sensor
    stream (:func:`trucewatch.intake.stream.advance`), exactly as the worker does: the
    located explosions are derived events, not one batch's observations."""

    inputs: SensorInputs | None = None
    name: str = "locate"
    input_type: ClassVar[type[Any]] = LocateInput

    def run(self, ctx: CycleContext, data: LocateInput) -> Located:
        if self.inputs is None:
            return Located(None, None, [], [])
        return locate(ctx, self.inputs, data.ingest.plan.cutoff)


def locate(ctx: CycleContext, inputs: SensorInputs, cutoff: datetime | None) -> Located:
    """The sensor channel of one cycle (see :class:`LocateStage`); the figures count what
    was recorded before ``cutoff``."""
    store, registry = ctx.store, ctx.registry
    reports: list[IngestReport] = []
    refused: list[Outcome] = []
    st = receive(store, read_received(inputs.stations), inputs.stations.name,
                 StationSource(), registry=registry, policy=inputs.policy)
    if not st.usable or st.batch is None:
        why = st.refused or (st.quarantined[0].reason if st.quarantined else "empty")
        return Located(SensorFigures(
            not_used=f"station inventory {inputs.stations.name} not accepted: {why}"),
            None, [], [st])
    if st.report is not None:
        reports.append(st.report)
    stations = st.batch.records  # parsed once, by the intake
    totals = dict.fromkeys(("detections", "associated", "located", "not_locatable",
                            "quarantined"), 0)
    source = DetectionSource(stations)
    repeated: list[str] = []
    for k, path in enumerate(inputs.detections):
        ctx.progress(f"receive {path.name}", k, len(inputs.detections))
        o = receive(store, read_received(path), path.name, source, registry=registry,
                    policy=inputs.policy)
        if o.report is not None:
            reports.append(o.report)
        if o.batch is not None:  # a stream that came twice: said in the coverage
            repeated += [f.detail for f in repeat_flags(o.batch)]
        n_q = len(o.quarantined)  # rows quarantined at receipt (or the file, by policy)
        totals["quarantined"] += n_q
        if not o.usable:
            refused.append(o)
            continue
        totals["detections"] += n_q
    # located across files, as the worker does: the stream's windows over every stored
    # detection the new ones can change (intake.stream)
    ctx.progress("locate", 0, 1)
    associator = inputs.associator or ExplosionAssociator(
        propagation=weather_for(inputs.detections[0]) if inputs.detections else Propagation())
    # the accepted inventory as the worker reads it; with only this cycle's, the one
    # the intake parsed (the same table: it is parsed once)
    held = [b for b in store.inputs(SourceName.STATIONS)
            if int(b["quarantined"]) < int(b["rows"])]
    step = advance(store, stations if len(held) == 1 else stored_stations(store), associator)
    health: list[str] = [*(step.health.lines() if step.health is not None else []),
                         *repeated]
    outages = [(f.station, f.start, f.end) for f in (step.health.flags if step.health
                                                     else [])
               if f.problem in (StationProblem.SILENT, StationProblem.DEAF)]
    ev, recs = step.association.events, step.records
    assigned = step.association.assignments
    excluded = {d for d, _ in step.excluded}
    if cutoff is not None:  # as of the report date: what was recorded before its end
        ev = ev.filter(pl.col("time") < cutoff)
        recs = recs.filter(pl.col("time") < cutoff)
        assigned = assigned.filter(pl.col("detection_id").is_in(recs["detection_id"]
                                                                .implode()))
    for key, add in (("detections", recs.height + len(excluded)),
                     ("quarantined", len(excluded)),
                     ("associated", int(assigned["event_id"].is_not_null().sum())),
                     ("located", int((ev["status"] == LOCATED).sum())),
                     ("not_locatable", int((ev["status"] != LOCATED).sum()))):
        totals[key] += add
    reporting = set(recs["station"].to_list()) if recs.height else set()
    times: list[datetime] = ([recs["time"].min(), recs["time"].max()]  # type: ignore[list-item]
                             if recs.height else [])
    figures = SensorFigures(stations=stations.height, detections=totals["detections"],
                            associated=totals["associated"], located=totals["located"],
                            not_locatable=totals["not_locatable"],
                            quarantined=totals["quarantined"],
                            stations_reporting=len(reporting),
                            start=min(times) if times else None,
                            end=max(times) if times else None,
                            health=tuple(health))
    return Located(figures, stations, reports, refused, outages)


# -------------------------------------------------------------------------------- fuse
@dataclass(frozen=True)
class FuseInput:
    ingest: Ingested
    classify: Classified


@dataclass
class Fused:
    evidence: pl.DataFrame  # every source's observations up to D, one schema
    incidents: pl.DataFrame  # the fuser's incident table
    # the located explosions and drone reports used (stored, before the cutoff), as the
    # observation contract (model.contract)
    explosions: pl.DataFrame
    drones: pl.DataFrame
    allegations: list[dict[str, Any]]  # the allegations received before the cutoff


@dataclass(frozen=True)
class FuseStage:
    """Every source's observations up to D as one evidence table, fused into incidents.
    The store is the record of what was observed (earlier cycles' and commands' inputs
    count as much as this cycle's)."""

    fuser: IncidentFuser = field(default_factory=IncidentFuser)
    name: str = "fuse"
    input_type: ClassVar[type[Any]] = FuseInput

    def run(self, ctx: CycleContext, data: FuseInput) -> Fused:
        ctx.progress("fuse and adjudicate", 2, 4)
        store, cutoff = ctx.store, data.ingest.plan.cutoff
        full = data.classify.full
        # the observation contract, as stored: located explosions and drone reports
        explosions = store.contract_observations([SourceKind.SENSOR_NETWORK], before=cutoff)
        drones = store.contract_observations([SourceKind.DRONE], before=cutoff)
        allegations = [a for a in store.allegations()
                       if _before(a.get("received_at"), cutoff)]
        evidence = pl.concat([
            fire_evidence(full, since=since_entry_into_force(ctx.agreement)),
            explosion_evidence(explosions),
            drone_evidence(drones),
        ]).cast(EVIDENCE_SCHEMA)  # type: ignore[arg-type]
        fused, _ = self.fuser.fuse(evidence)
        return Fused(evidence, fused, explosions, drones, allegations)


def _before(iso: object, cutoff: datetime) -> bool:
    if not iso:
        return True
    t = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=UTC)) < cutoff


# -------------------------------------------------------------------------- adjudicate
@dataclass(frozen=True)
class AdjudicateInput:
    classify: Classified
    fuse: Fused


@dataclass
class Adjudicated:
    rulebook: RuleBook
    evaluated: pl.DataFrame  # the incidents with sector, zones, rule and flag
    view: CeasefireView  # the satellite channel per sector and zone


@dataclass(frozen=True)
class AdjudicateStage:
    """The agreement's rules on the fused incidents (sector, zones, the rule broken or
    the flag that keeps it from being a violation)."""

    name: str = "adjudicate"
    input_type: ClassVar[type[Any]] = AdjudicateInput

    def run(self, ctx: CycleContext, data: AdjudicateInput) -> Adjudicated:
        full = data.classify.full
        view = build_view(full, ctx.agreement, data.classify.baseline)
        rulebook = RuleBook(ctx.agreement, fire_reasons=full.select("id", "reason"))
        return Adjudicated(rulebook, rulebook.evaluate(data.fuse.incidents), view)


# -------------------------------------------------------------------------------- rule
@dataclass(frozen=True)
class RuleInput:
    ingest: Ingested
    locate: Located
    fuse: Fused
    adjudicate: Adjudicated


@dataclass
class Ruled:
    coverage: Coverage
    maps: dict[str, Any]  # per day and sector (adjudication/coverage_maps.py)
    rulings: list[dict[str, Any]]
    incidents: list[Incident]
    violations: list[Violation]


@dataclass(frozen=True)
class RuleStage:
    """Rule on the allegations against what the mechanism could see, and store the
    incidents (those kept: candidates and the ones an allegation matched), violations,
    rulings and coverage."""

    judge: AllegationJudge = field(default_factory=AllegationJudge)
    maps: CoverageMaps = field(default_factory=CoverageMaps)
    name: str = "rule"
    input_type: ClassVar[type[Any]] = RuleInput

    def run(self, ctx: CycleContext, data: RuleInput) -> Ruled:
        store, plan = ctx.store, data.ingest.plan
        day, cutoff = plan.report_date, plan.cutoff
        cloud = {d: c for d, c in (ctx.cloud or {}).items() if d <= day}
        gaps = {g for g in ctx.gaps if g <= day}
        fig = data.locate.figures
        cov = coverage_of(store, data.locate.stations, fig.period if fig else None, cloud,
                          gaps, cutoff, data.ingest.patrols, data.locate.outages)
        evaluated = data.adjudicate.evaluated
        rulings, matched = self.judge.rule(data.fuse.allegations, evaluated, cov, cutoff)
        kept_matched = evaluated["observation_ids"].list.join("|").is_in(list(matched))
        incidents, violations = data.adjudicate.rulebook.to_domain(evaluated, kept_matched)
        store.save_incidents(incidents, violations)
        store.save_rulings(rulings)
        coalition, refused = None, ""
        if ctx.config.coalition is not None:
            try:
                coalition = load_coalition(ctx.config.coalition, ctx.agreement, ctx.registry)
            except TrucewatchError as err:  # refused: the bulletin says why, nothing credited
                refused = f"{ctx.config.coalition.name}: {err}"
        maps = build_maps(cov, ctx.agreement, day, self.maps, coalition, refused)
        store.save_coverage(with_maps(cov, maps))
        return Ruled(cov, maps, rulings, incidents, violations)


def coverage_of(store: EvidenceStore, stations: pl.DataFrame | None,
                sensor_period: tuple[datetime, datetime] | None,
                cloud: dict[date, float | None] | None, gaps: set[date],
                cutoff: datetime | None = None, patrols: Patrols | None = None,
                outages: list[tuple[str, datetime | None, datetime | None]] | None = None
                ) -> Coverage:
    """What the mechanism could see: the accepted station inventory over the period its
    accepted detections span, and the patrols of the drone inputs the store accepted
    (a refused or quarantined input's patrols are not coverage, whatever its name).
    ``patrols``: those this cycle's intake read, by raw sha256; an input stored earlier
    is read from the store's evidentiary copy."""
    cov = Coverage(satellite_days=dict(cloud or {}), satellite_gaps=set(gaps))
    if stations is not None and sensor_period is not None:
        cov.stations = list(zip(stations["latitude"].to_list(),
                                stations["longitude"].to_list(), strict=True))
        cov.sensor_periods = [sensor_period]
        cov.station_ids = [str(x) for x in stations["id"].to_list()] \
            if "id" in stations.columns else []
        index = {sid: k for k, sid in enumerate(cov.station_ids)}
        cov.outages = [(index[sid], a, b) for sid, a, b in outages or [] if sid in index]
        # the network's heartbeats say which stations were up when (intake.sources)
        up = network_uptime(store, cutoff or sensor_period[1])
        if up is not None:
            cov.station_up = [up.up.get(str(s), []) for s in stations["id"].to_list()]
    known = patrols or {}
    for b in store.inputs(SourceName.DRONE):
        if not _accepted_something(int(b["rows"]), int(b["quarantined"])):
            continue  # nothing in it was accepted
        sha, name = str(b["raw_sha256"]), str(b["name"])
        found = known.get(sha)
        if found is None:
            raw = unpack(store.raw_input(sha), name)
            payload = unpack(open_envelope(raw).payload, name) if is_envelope(raw) else raw
            found, _ = read_patrols(payload, name)
        kept = [p for p in found if cutoff is None or p.time_start < cutoff]
        cov.patrols += [(p.time_start, p.time_end, list(p.track), p.swath_m) for p in kept]
        cov.patrol_platforms += [p.platform_id for p in kept]
    return cov


# ----------------------------------------------------------------------------- publish
@dataclass(frozen=True)
class PublishInput:
    ingest: Ingested
    classify: Classified
    locate: Located
    fuse: Fused
    adjudicate: Adjudicated
    rule: Ruled


@dataclass
class Published:
    view: CeasefireView  # with the store's incidents and violations as of D
    bulletins: dict[str, BulletinFiles]
    review_log: list[str]


@dataclass(frozen=True)
class PublishStage:
    """The (scripted) review, then the bulletins from the store's state as of D, published
    as the store's products, and the audit log's head signed (checkpoint)."""

    pdf: bool = True
    name: str = "publish"
    input_type: ClassVar[type[Any]] = PublishInput

    def run(self, ctx: CycleContext, data: PublishInput) -> Published:
        store, cfg = ctx.store, ctx.config
        ing, cls, fus = data.ingest, data.classify, data.fuse
        plan = ing.plan
        day, cutoff = plan.report_date, plan.cutoff
        review_log = cfg.review(store) if cfg.review else []
        view = data.adjudicate.view
        current, full = cls.current, cls.full
        # the bulletin shows the store's state: reviewed incidents survive re-runs; as of D,
        # only incidents made of observations up to D (a later run's may hold later ones)
        known = (set(current["id"].to_list()) | set(fus.explosions["id"].to_list())
                 | set(fus.drones["id"].to_list()))
        view.incidents = [i for i in store.incidents() if i.time_start < cutoff
                          and set(i.observation_ids) <= known]
        shown = {i.id for i in view.incidents}
        view.violations = [v for v in store.violations() if v.incident_id in shown]
        asked = {str(a.get("allegation_id") or a.get("id") or "") for a in fus.allegations}
        cloud = {d: c for d, c in (ctx.cloud or {}).items() if d <= day} \
            if cfg.cloud_path else None
        gaps = {g for g in ctx.gaps if g <= day}
        cover = coverage(current["acq_date"], current["acq_date"].min(), day, cloud, gaps)  # type: ignore[arg-type]
        quarantined = len(store.quarantine())
        submissions = submissions_of(ing, data.locate)
        reports = [*ing.reports, *data.locate.reports]
        summary = [{"name": r.name, "rows": r.rows, "new": r.new, "duplicates": r.duplicates,
                    "quarantined": r.quarantined} for r in reports]
        summary += [{"name": o.name, "rows": o.report.rows if o.report else 0,
                     "new": o.report.new if o.report else 0, "duplicates": 0,
                     "quarantined": len(o.quarantined), "refused": o.refused,
                     "signed_by": o.signed_by} for o in submissions]
        ctx.progress("report", 3, 4)
        flt, explosions, drones = cfg.firms_filter, fus.explosions, fus.drones
        after = {"fire_detections": int(flt.apply(store.fire_summary()).filter(
            pl.col("acq_date") > day)["n"].sum()),
            # counted in the database, as instants (the "used" side is before=cutoff)
            "explosions": store.count_observations([SourceKind.SENSOR_NETWORK],
                                                   since=cutoff),
            "drone_reports": store.count_observations([SourceKind.DRONE], since=cutoff),
            "allegations": len(store.allegations()) - len(fus.allegations)}
        t0 = ctx.agreement.entry_into_force.date()
        as_of = {"report_date": day.isoformat(), "cutoff": f"{cutoff:%Y-%m-%dT%H:%M}Z",
                 "reference_years": plan.reference_years, "firms_filter": flt.describe(),
                 "used": {"fire_detections": current.height,
                          "reference_detections": ing.detections.height - current.height,
                          "explosions": explosions.height, "drone_reports": drones.height,
                          "allegations": len(fus.allegations)},
                 "stored_after_cutoff": after, "satellite_covariates": cls.covariate_note,
                 "fire_classes": dict(full.group_by("fire_class").len().iter_rows()),
                 # how the satellite channel explained each day's fires from the day before
                 # entry into force: a quiet bulletin shows what it saw, not just silence
                 "fire_classes_by_day": _classes_by_day(full, t0 - timedelta(days=1))}
        extra = {"review": ReviewService(store).figures().to_dict(), "as_of": as_of,
                 "rulings": [r for r in store.rulings()
                             if str(r.get("allegation_id", "")) in asked],
                 "review_scripted": cfg.review is not None,
                 "refused": store.refused(), "integrity": _integrity(store),
                 "evidence_sources": sorted(set(fus.evidence["source_kind"].to_list())),
                 "coverage_maps": data.rule.maps,
                 "coalition": data.rule.maps.get("coalition"),
                 "fused": {"observations": fus.evidence.height,
                           "incidents": fus.incidents.height,
                           "stored": len(view.incidents)}}
        figures = data.locate.figures
        sensors = figures.summary() if figures else None
        # what the renderer needs that the store's rows do not say, kept in the store:
        # the day's bulletin renders again from the store alone (reports/basis.py)
        save_basis(store, RenderBasis(
            day, cutoff, view.daily, cover, data.rule.maps, sensors, as_of,
            sorted(set(fus.evidence["source_kind"].to_list())),
            {"observations": fus.evidence.height, "incidents": fus.incidents.height},
            summary, cfg.review is not None,
            agreement=agreement_bundle(cfg.agreement_path)))
        bulletins = render(view, cover, day, cfg.out_dir, quarantined, summary,
                           pdf=self.pdf, sensors=sensors, extra=extra, language=cfg.language)
        _publish(store, bulletins, day)
        # the log's head, signed (the mission key, pinned in the log by the first one)
        store.publish_checkpoint(cfg.out_dir, day, cfg.mission_key)
        return Published(view, bulletins, review_log)


def submissions_of(ingest: Ingested, located: Located) -> list[Outcome]:
    """The inputs reported one by one in the bulletin: those not accepted among the
    configuration, FIRMS and sensor inputs, and every drone and allegation input."""
    return [*ingest.refused, *located.refused, *ingest.drones, *ingest.allegations]


def _publish(store: ArchiveStore, bulletins: dict[str, Any], day: date) -> None:
    """The written bulletins become the store's published products (the service serves
    only these); a product already published under its name is left as it was."""
    for variant, files in bulletins.items():
        for kind, path in (("html", files.html), ("pdf", files.pdf), ("json", files.json),
                           ("geojson", files.geojson), ("geojson", files.coverage)):
            if path is not None and Path(path).is_file():
                store.publish_product(Path(path), kind, day, variant)
                archive_product(store, Path(path))  # renderable from the store alone


def _classes_by_day(full: pl.DataFrame, since: date) -> dict[str, dict[str, int]]:
    per = (full.filter(pl.col("acq_date") >= since).group_by("acq_date", "fire_class").len()
           .sort("acq_date", "fire_class"))
    out: dict[str, dict[str, int]] = {}
    for d, c, n in per.iter_rows():
        out.setdefault(d.isoformat(), {})[str(c)] = int(n)
    return out


def _integrity(store: EvidenceStore) -> dict[str, Any]:
    problems = store.verify()
    log = store.audit_log()
    return {"ok": not problems, "entries": len(log), "head": log[-1].hash if log else "",
            "problems": problems}


STAGE_NAMES = ("ingest", "classify", "locate", "fuse", "adjudicate", "rule", "publish")


def builtin_stages(config: CycleConfig) -> list[Stage]:
    """The built-in stages, configured from ``config``, in order."""
    fi = config.field_inputs
    return [IngestStage(),
            ClassifyStage(config.baseline_params, config.covariates,
                          config.covariates_required),
            LocateStage(config.sensors), FuseStage(fi.fuser), AdjudicateStage(),
            RuleStage(fi.judge), PublishStage(config.pdf)]
