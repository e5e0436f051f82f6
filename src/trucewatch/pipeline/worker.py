"""The processing worker: what the service stores becomes incidents, by itself.

``trucewatch serve`` runs one in a background thread (``--no-worker`` turns it off);
``trucewatch worker --store S --agreement A [--once] [--refit]`` runs it on its own.
Each pass:

1. reads the watermark (the number of input batches the last pass had seen; batches are
   never removed) and, when the store holds no new batch, does nothing;
2. loads the fitted baseline artifact (``<store>.baseline.npz`` beside a SQLite store, or
   ``--baseline``), fitted from the stored reference years the first time and versioned
   in its sidecar ``.json`` (version, years, the reference rows it was fitted on, its
   sha256). It is refitted on request (``--refit``) or when the reference archive it
   was fitted on has changed (rows added to a reference year), never otherwise;
3. classifies the monitored fires against it (all of them in a full pass; in an
   incremental pass only what the new batches can change: see below), fuses every
   source's stored evidence, adjudicates, rules on the allegations and stores the
   incidents, rulings and coverage, exactly as the batch cycle's classify, fuse,
   adjudicate and rule stages do (the same functions, on the same stored inputs),
   with no cutoff: everything stored counts;
4. writes all of it and the new watermark in one transaction (the watermark is the
   last log entry of that transaction, ``worker``/``worker_pass``).

Incremental passes. A worker process keeps what its last pass computed (the
monitored fire rows with their classes, every source's evidence, the evaluated fused
incidents, the allegation matches). The next pass reads only the observations of the
batches stored since (``observations_of_batches``) and recomputes only what they can
change:

* satellite rows: the new rows, and the old rows within the classifier's reach of them,
  are classified again against the stored baseline artifact, from those rows and their
  halo. The reach comes from the configured :class:`WarFireRules` through
  :class:`satellite.war_fires.Halo` (the radii in cells at the whole input's reach latitude;
  ``days_before`` = carry-over + the longest feature window + 1, ``days_after`` = the
  revision tier's look-ahead + 1). Old rows do change: a new fire can confirm, or carry
  over to, a neighbour's later fires. All other rows keep their classes;
* fusion: incidents are the connected components of the fuser's links, and a link
  between two unchanged observations is as it was; so only the incidents of the last
  pass that a changed observation can join (found among the observations within the
  fuser's time reach of it, ``max(time_slack_s, barrage_window_s)``), or that held a
  changed or removed one, are fused and evaluated again (``_affected``). What is fused
  again is bounded by those incidents, not by the stream's length;
* incidents: those of the recomputed windows, and those whose match to an allegation
  changed, are stored through :meth:`IncidentRepository.save_incidents` (in place, ids
  and review state kept); its removal of stale automatic incidents is limited to the
  owners of the recomputed observations (``within``). Incidents elsewhere are not
  written at all;
* rulings and coverage are global and cheap: every allegation is ruled again, every pass.
  The coverage is stored with its maps (pipeline.coverage_doc, the cycle's document),
  built again only when its inputs changed; without ``--cloud`` the cloud record and the
  coalition registry are those of the stored coverage (a cycle's), read on full passes.

A pass is full (the whole monitored period, as before) on the first pass of a process
(a restarted worker has no state), on a refit or a changed baseline, when the stored
watermark is not this process's last pass (another worker ran), or when the classifier's
radii in cells changed with the input's mean latitude. Its stats (``PassResult.stats``
and the ``worker_pass`` log entry) say which, and what it recomputed. An incremental
pass gives the full pass's result (tests/test_worker.py holds it on the built-in
stream, in and out of order). Passes coalesce: the loop waits for a quiet moment
(``quiet_s``) before a pass, so a burst of submissions costs one pass.

Detections are stored as received by the ingest route; each pass first takes the new
ones through the sensor stream's sliding window (:mod:`trucewatch.intake.stream`, in its
own transaction), which locates explosions across files and replaces the derived events
of the windows it recomputed, exactly as the batch cycle's locate stage does. An
incremental pass then fuses the explosions it added, and drops those it replaced.

Restart safety: a pass writes nothing until its single transaction commits; killed
before, nothing of it is kept and the next pass redoes it from the unchanged
watermark; killed after, the watermark already says it was done. Results are keyed
(incident ids, allegation ids), so a repeated pass changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from trucewatch.adjudication.allegations import AllegationJudge, Coverage
from trucewatch.adjudication.rules import RuleBook, since_entry_into_force
from trucewatch.agreement import load_agreement
from trucewatch.agreement.coalition import Coalition
from trucewatch.errors import ConfigError, TrucewatchError
from trucewatch.fusion.evidence import drone_evidence, explosion_evidence, fire_evidence
from trucewatch.fusion.incidents import EVIDENCE_SCHEMA, IncidentFuser
from trucewatch.geo.grid import cell_indices
from trucewatch.ingest.firms import FirmsFilter
from trucewatch.intake.sources import stored_stations
from trucewatch.intake.stream import StreamStep, advance
from trucewatch.model.agreement import Agreement
from trucewatch.model.enums import SourceKind
from trucewatch.model.incident import Incident
from trucewatch.pipeline.config import Plan, plan_cycle
from trucewatch.pipeline.coverage_doc import CoverageKeeper, stored_cloud, stored_coalition
from trucewatch.pipeline.stages import (
    AdjudicateInput,
    AdjudicateStage,
    FuseInput,
    FuseStage,
    Ingested,
    classify_with,
    coverage_of,
    run_stage,
    stored_fires,
)
from trucewatch.reports.coverage import read_cloud
from trucewatch.satellite.baseline import Baseline, BaselineParams, fit_baseline
from trucewatch.satellite.war_fires import Halo, WarFireRules, classify, reach_latitude
from trucewatch.sensors.association import ExplosionAssociator
from trucewatch.storage import open_store
from trucewatch.storage.postgis import is_postgres_url
from trucewatch.storage.protocols import IncidentStore, ObservationStore, PassStore, SourcesStore

ACTOR = "worker"
ACTION = "worker_pass"


class WorkerError(TrucewatchError):
    code = "worker_error"


@dataclass(frozen=True)
class WorkerConfig:
    """What the worker works on. ``baseline``: the artifact's path (default beside a
    SQLite store: ``<store>.baseline.npz``; a PostgreSQL store needs one given).
    ``reference_years``: default, the stored FIRMS years before the entry-into-force
    year (as the batch cycle)."""

    store: Path | str
    agreement: Path
    baseline: Path | None = None
    reference_years: tuple[int, ...] | None = None
    baseline_params: BaselineParams | None = None
    covariates: Path | None = None
    cloud: Path | None = None  # a cloud record (as `run --cloud`), when the mission has one
    fuser: IncidentFuser = field(default_factory=IncidentFuser)
    judge: AllegationJudge = field(default_factory=AllegationJudge)
    # locates the stored detections across files (intake.stream); None: the default one
    associator: ExplosionAssociator | None = None

    @property
    def baseline_path(self) -> Path:
        if self.baseline is not None:
            return Path(self.baseline)
        if is_postgres_url(self.store):
            raise ConfigError("a worker on a PostgreSQL store needs --baseline PATH",
                              fix="give --baseline where the fitted baseline is kept")
        return Path(str(self.store) + ".baseline.npz")


@dataclass(frozen=True)
class PassResult:
    ran: bool
    watermark: int  # input batches seen
    why: str  # one line: what the pass did, or why it did nothing
    incidents: int = 0
    baseline_version: int = 0
    seconds: float = 0.0
    # what the pass recomputed (mode "full" or "incremental"; rows_classified, the
    # monitored fire rows whose class it computed (halo excluded); evidence_fused, the
    # observations in the windows it fused; incidents_recomputed, the fused incidents it
    # evaluated; days, the first and last UTC day of the windows; why_full when full)
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Artifact:
    baseline: Baseline
    version: int
    sha256: str


@dataclass
class _State:
    """What the last pass of this process computed, which an incremental pass updates:
    valid only for the watermark it was made at, the baseline it classified with and the
    classifier's radii in cells. A restarted worker has none: its first pass is full."""

    watermark: int
    batches: frozenset[str]
    sha256: str  # the baseline artifact's
    radii: tuple[int, int]
    known: frozenset[str]  # every observation id already taken into account
    full: pl.DataFrame  # the monitored fire rows with the classifier's columns
    evidence: pl.DataFrame  # every source's evidence (EVIDENCE_SCHEMA)
    evaluated: pl.DataFrame  # every fused incident, evaluated by the rule book
    kept: frozenset[str]  # evaluated incidents an allegation matched (joined ids)


class Worker:
    """Passes over one store (see the module docstring)."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.agreement: Agreement = load_agreement(config.agreement)
        self._artifact: _Artifact | None = None
        self._state: _State | None = None
        self._spans: dict[str, tuple[datetime, datetime] | None] = {}
        self._coverage = CoverageKeeper()
        # the cloud record and coalition registry the store's coverage last held, read
        # on each full pass (when the worker has no --cloud; see _coverage_doc)
        self._stored: tuple[dict[date, float | None], set[date], Coalition | None] = (
            {}, set(), None)
        self.rules = WarFireRules(reset_at=self.agreement.entry_into_force.date())

    # ------------------------------------------------------------------ watermark
    @staticmethod
    def watermark(store: IncidentStore) -> int:
        last = store.last_record(ACTOR, ACTION)
        return int(last["watermark"]) if last else 0

    def pending(self, store: IncidentStore) -> bool:
        return store.batch_count() > self.watermark(store)

    # ------------------------------------------------------------------ one pass
    def run_pass(self, refit: bool = False, force: bool = False,
                 full: bool = False) -> PassResult:
        """One pass (nothing when no batch arrived since the watermark, unless ``force``
        or ``refit``): incremental when this process's state of the last pass is still
        valid, else (or with ``full``, or on a refit) the whole monitored period."""
        t0 = time.monotonic()
        store = open_store(self.config.store)
        try:
            seen = store.batch_count()  # read first: a batch stored meanwhile waits
            mark = self.watermark(store)
            if seen <= mark and not (force or refit):
                return PassResult(False, mark, "nothing new since the watermark")
            stream = self._advance_stream(store)  # detections are located regardless
            if self._why_full(mark, None, refit or full):
                self._read_stored(store)  # before the plan: it reads the cloud record
            plan = self._plan(store)
            if plan is None:
                if stream.ran:
                    self._state = None  # the derived events changed under it
                return PassResult(False, mark, "no monitored FIRMS data stored yet: "
                                  "nothing to classify (waiting)",
                                  stats={"sensor_stream": stream.mode})
            batches = frozenset(store.batch_ids())
            seen = len(batches)  # the batches whose observations this pass takes in
            art = self._baseline(store, plan.reference_years, refit)
            why_full = self._why_full(mark, art, refit or full)
            if why_full:
                n, stats = self._process(store, plan, art, seen, batches)
                stats["why_full"] = why_full
            else:
                assert self._state is not None
                n, stats = self._incremental(store, plan, art, seen, batches, self._state,
                                             stream)
            stats["sensor_stream"] = {"mode": stream.mode, "inputs": len(stream.inputs),
                                      "added": len(stream.added),
                                      "removed": len(stream.removed)}
            what = stats["mode"]
            return PassResult(True, seen, f"{n} incidents from {seen} batches ({what})",
                              n, art.version, time.monotonic() - t0, stats)
        finally:
            store.close()

    def _advance_stream(self, store: PassStore) -> StreamStep:
        """The stored detections through the sensor stream's sliding window
        (intake.stream), committed on their own before the pass: a pass that fails after
        it leaves no state, so the next one is full and reads every derived event."""
        self._state, state = None, self._state  # until the step commits
        step = advance(store, stored_stations(store), self.config.associator)
        self._state = state
        return step

    def _sensor_period(self, store: SourcesStore) -> tuple[datetime, datetime] | None:
        """:func:`_sensor_period`, each stored detections input parsed once per process
        (inputs are never changed: their span is kept by raw sha256)."""
        return _sensor_period(store, self._spans)

    def _why_full(self, mark: int, art: _Artifact | None, asked: bool) -> str:
        """Why this pass must recompute the whole period ("" when it need not)."""
        st = self._state
        if asked:
            return "asked (refit or --full)"
        if st is None:
            return "first pass of this process (no state of an earlier pass)"
        if st.watermark != mark:
            return "the stored watermark is not this process's last pass"
        if art is not None and st.sha256 != art.sha256:
            return "the baseline was refitted"
        return ""

    def _plan(self, store: SourcesStore) -> Plan | None:
        summary = store.fire_summary()
        years = list(self.config.reference_years) if self.config.reference_years else None
        try:
            plan = plan_cycle(summary, self.agreement.entry_into_force.date(), years, None)
        except ConfigError as err:
            if "nothing to monitor" in err.message or "no FIRMS detections to use" \
                    in err.message:
                return None
            raise
        # live: no report date; everything stored counts (the day of the latest input)
        # the last start of a located explosion or drone report, as an instant (in the
        # database: the stored text of another precision or offset sorts otherwise)
        span = store.observation_span([SourceKind.SENSOR_NETWORK, SourceKind.DRONE])
        latest = [plan.last, *([span[1].date()] if span is not None else [])]
        for a in store.allegations():
            got = _day(a.get("received_at"))
            if got is not None:
                latest.append(got)
        latest += list(self._cloud()[0])
        return Plan(plan.reference_years, max(latest), plan.first, plan.last)

    def _cloud(self) -> tuple[dict[date, float | None], set[date]]:
        """The configured cloud record, else the one the stored coverage holds (a cycle
        run with ``--cloud`` stored it there; pipeline.coverage_doc.stored_cloud)."""
        if self.config.cloud is None:
            return dict(self._stored[0]), set(self._stored[1])
        days, gaps = read_cloud(self.config.cloud)
        return dict(days), gaps

    def _read_stored(self, store: PassStore) -> None:
        latest = store.latest_coverage()
        days, gaps = stored_cloud(latest)
        self._stored = (days, gaps, stored_coalition(latest, self.agreement))

    def _coverage_doc(self, store: PassStore, cov: Coverage, plan: Plan
                      ) -> tuple[str, dict[str, Any] | None]:
        """The coverage document with its maps ending on the pass's report day, as the
        cycle's rule stage stores it (credited to the stored coalition registry); None
        when the stored one is it already (pipeline.coverage_doc.CoverageKeeper)."""
        return self._coverage.document(store.latest_coverage, cov, self.agreement,
                                       plan.report_date, self._stored[2])

    def _baseline(self, store: ObservationStore, years: list[int], refit: bool) -> _Artifact:
        path = self.config.baseline_path
        meta_path = path.with_suffix(".json")
        fingerprint = _reference_fingerprint(store, years)
        meta: dict[str, Any] = {}
        if meta_path.is_file() and path.is_file():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        current = (meta.get("reference") == fingerprint and meta.get("sha256") == _sha(path))
        if current and not refit:
            if self._artifact is None or self._artifact.sha256 != meta["sha256"]:
                self._artifact = _Artifact(Baseline.load(path), int(meta["version"]),
                                           str(meta["sha256"]))
            return self._artifact
        detections = stored_fires(store)
        ref = detections.filter(pl.col("acq_date").dt.year().is_in(years))
        baseline, note = fit_baseline(ref, years, self.config.baseline_params,
                                      self.config.covariates, required=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        baseline.save(tmp)
        tmp.replace(path)  # whole or not at all
        version = int(meta.get("version", 0)) + 1
        why = ("refit requested" if refit else "first fit" if not meta
               else "reference archive changed")
        meta = {"format": "trucewatch/baseline-artifact", "version": version,
                "years": years, "reference": fingerprint, "sha256": _sha(path),
                "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "why": why, "covariates": note}
        tmp_meta = meta_path.with_name(meta_path.name + f".{os.getpid()}.tmp")
        tmp_meta.write_text(json.dumps(meta, indent=1), encoding="utf-8")
        tmp_meta.replace(meta_path)
        self._artifact = _Artifact(baseline, version, str(meta["sha256"]))
        return self._artifact

    def _process(self, store: PassStore, plan: Plan, art: _Artifact, seen: int,
                 batches: frozenset[str]) -> tuple[int, dict[str, Any]]:
        """The whole monitored period: classify, fuse, adjudicate, rule and store, in
        one transaction."""
        cfg = self.config
        self._state = None  # until this pass commits
        known = self._explosion_and_drone_ids(store)  # read before the fires: see _State
        detections = FirmsFilter().apply(stored_fires(store, end=plan.report_date))
        ingested = Ingested(plan, [], [], [], [], {}, detections)
        classified = classify_with(art.baseline, detections, plan.reference_years,
                                   self.agreement)
        ctx = _Context(store, self.agreement)
        fused = run_stage(FuseStage(cfg.fuser), ctx,  # type: ignore[arg-type]
                          FuseInput(ingested, classified))
        adjudicated = run_stage(AdjudicateStage(), ctx,  # type: ignore[arg-type]
                                AdjudicateInput(classified, fused))
        stations = stored_stations(store)
        period = self._sensor_period(store)
        cloud, gaps = self._cloud()
        cov = coverage_of(store, stations if stations.height else None, period, cloud,
                          gaps, plan.cutoff)
        self._coverage.forget()  # another writer may have stored one: compare again
        cov_key, cov_doc = self._coverage_doc(store, cov, plan)
        evaluated = adjudicated.evaluated
        rulings, matched = cfg.judge.rule(fused.allegations, evaluated, cov, plan.cutoff)
        kept = evaluated["observation_ids"].list.join("|").is_in(list(matched))
        incidents, violations = adjudicated.rulebook.to_domain(evaluated, kept)
        incidents.sort(key=_order)  # the same order on either path (ids are matched in it)
        days = classified.full["acq_date"]
        stats: dict[str, Any] = {
            "mode": "full", "rows_classified": classified.full.height,
            "evidence_fused": fused.evidence.height, "incidents_recomputed":
            evaluated.height, "days": [str(days.min()), str(days.max())] if days.len()
            else []}
        with store.atomic():
            store.save_rulings(rulings, actor=ACTOR)
            if cov_doc is not None:
                store.save_coverage(cov_doc, actor=ACTOR)
            saved = store.save_incidents(incidents, violations, actor=ACTOR)
            self._record(store, seen, art, plan, len(incidents), stats, saved)
        self._coverage.stored(cov_key)
        stats["saved"] = saved
        full = classified.full
        self._state = _State(
            seen, batches, art.sha256, self._radii(full, art),
            frozenset(full["id"].to_list()) | known, full,
            fused.evidence, evaluated, frozenset(_keys(evaluated.filter(kept))))
        return len(incidents), stats

    @staticmethod
    def _record(store: IncidentStore, seen: int, art: _Artifact, plan: Plan, n: int,
                stats: dict[str, Any], saved: dict[str, int]) -> None:
        """The pass's log entry, last in its transaction: the new watermark."""
        store.record(ACTOR, ACTION, "watermark", {
            "watermark": seen, "baseline_version": art.version,
            "baseline_sha256": art.sha256, "report_day": plan.report_date.isoformat(),
            "incidents": n, "recomputed": stats, "saved": saved})

    @staticmethod
    def _explosion_and_drone_ids(store: ObservationStore) -> frozenset[str]:
        return frozenset(store.explosions()["id"].to_list()) | frozenset(
            store.observations(SourceKind.DRONE)["id"].to_list())

    def _radii(self, records: pl.DataFrame, art: _Artifact) -> tuple[int, int]:
        """The classifier's reach in cells (north-south, east-west) at the whole input's
        reach latitude: a classification made with other radii is not comparable."""
        halo = Halo.of(self.rules, reach_latitude(records, art.baseline))
        return halo.cells_i, halo.cells_j

    # ------------------------------------------------------------ incremental pass
    def _incremental(self, store: PassStore, plan: Plan, art: _Artifact, seen: int,
                     batches: frozenset[str], st: _State, stream: StreamStep
                     ) -> tuple[int, dict[str, Any]]:
        """Only what the batches since the last pass can change (module docstring,
        "Incremental passes"); the same result as a full pass on the same store."""
        cfg = self.config
        fuser = cfg.fuser
        self._state = None  # until this pass commits
        arrived = store.observations_of_batches(sorted(batches - st.batches))
        arrived = arrived.filter(~pl.col("id").is_in(list(st.known)))
        fire_kind = SourceKind.SATELLITE_FIRE.value
        new_fire_ids = arrived.filter(pl.col("source_kind") == fire_kind)["id"]
        new_fires = pl.DataFrame()
        if new_fire_ids.len():
            days = arrived.filter(pl.col("source_kind") == fire_kind)["acq_date"] \
                .str.to_date()
            got = stored_fires(store, start=days.min(), end=days.max())  # type: ignore[arg-type]
            new_fires = FirmsFilter().apply(got.filter(pl.col("id").is_in(new_fire_ids
                                                                          .implode())))
            new_fires = new_fires.filter(
                ~pl.col("acq_date").dt.year().is_in(plan.reference_years))
        old = st.full
        records = old.select(new_fires.columns) if new_fires.height else old
        if new_fires.height:
            records = pl.concat([records, new_fires]).sort("acq_date", "id")
        radii = self._radii(records, art)
        if radii != st.radii:  # the mean latitude moved a radius across a cell: all differ
            n, stats = self._process(store, plan, art, seen, batches)
            stats["why_full"] = f"the classifier's radii in cells changed {st.radii} -> {radii}"
            return n, stats
        # 1. satellite rows: the new rows, and the old ones within the classifier's reach
        # of them, classified again against the stored baseline; all others keep theirs
        full, core_ids, reclassed, read_rows = self._reclassify(old, records, new_fires, art)
        # 2. evidence: the reclassified fires' evidence again, the new explosions and drone
        # reports added; what changed is what the fusion windows must cover
        since = since_entry_into_force(self.agreement)
        core_full = full.filter(pl.col("id").is_in(core_ids.implode()))
        new_ev = [fire_evidence(core_full, since=since)]
        ex_ids = pl.concat([arrived.filter(pl.col("source_kind") == SourceKind.SENSOR_NETWORK
                                           .value)["id"],
                            pl.Series("id", sorted(stream.added), dtype=pl.String)])
        dr_ids = arrived.filter(pl.col("source_kind") == SourceKind.DRONE.value)["id"]
        if ex_ids.len():
            new_ev.append(explosion_evidence(store.contract_observations(
                [SourceKind.SENSOR_NETWORK]).filter(pl.col("id").is_in(ex_ids.implode()))))
        if dr_ids.len():
            new_ev.append(drone_evidence(store.contract_observations(
                [SourceKind.DRONE]).filter(pl.col("id").is_in(dr_ids.implode()))))
        fresh = pl.concat(new_ev).cast(EVIDENCE_SCHEMA)  # type: ignore[arg-type]
        # the stream's windows replaced explosions: those it no longer derives are gone
        replaced = st.evidence.filter(pl.col("id").is_in(core_ids.implode())
                                      | pl.col("id").is_in(list(stream.removed)))
        evidence = pl.concat([st.evidence.filter(~pl.col("id").is_in(replaced["id"]
                                                                     .implode())), fresh])
        # a fire whose class or reason changed changes its incident's words even when
        # its evidence row is the same
        changed = _changed(replaced, fresh) | (reclassed & set(fresh["id"].to_list()))
        removed = replaced.filter(~pl.col("id").is_in(fresh["id"].implode()))
        # 3. fusion: the incidents a changed observation can join or split (module
        # docstring); the others are as the last pass fused them
        sub = evidence.filter(_affected(evidence, changed, set(removed["id"].to_list()),
                                        st.evaluated, fuser))
        fused, _ = fuser.fuse(sub)
        spans = _spans(fused)
        rulebook = RuleBook(self.agreement, fire_reasons=full.select("id", "reason"))
        recomputed = rulebook.evaluate(fused)
        gone_ids = set(sub["id"].to_list()) | set(removed["id"].to_list())
        stale = st.evaluated["observation_ids"].list.eval(
            pl.element().is_in(list(gone_ids))).list.any()
        evaluated = pl.concat([st.evaluated.filter(~stale), recomputed.select(
            st.evaluated.columns)], how="vertical_relaxed")
        # 4. rulings and coverage are global and cheap: every allegation, every pass
        allegations = [a for a in store.allegations()
                       if _received_before(a.get("received_at"), plan.cutoff)]
        stations = stored_stations(store)
        cov = coverage_of(store, stations if stations.height else None,
                          self._sensor_period(store), *self._cloud(), plan.cutoff)
        cov_key, cov_doc = self._coverage_doc(store, cov, plan)
        rulings, matched = cfg.judge.rule(allegations, evaluated, cov, plan.cutoff)
        keys = _keys(evaluated)
        kept = keys.is_in(list(matched))
        # the incidents to store again: those recomputed, and those whose match to an
        # allegation changed; stale stored ones are removed only among their owners'
        flipped = kept != keys.is_in(list(st.kept))
        is_new = pl.Series([False] * st.evaluated.filter(~stale).height
                           + [True] * recomputed.height, dtype=pl.Boolean)
        redo = is_new | flipped
        incidents, violations = rulebook.to_domain(evaluated.filter(redo), kept.filter(redo))
        incidents.sort(key=_order)
        within = gone_ids | {o for ids in evaluated.filter(redo)["observation_ids"].to_list()
                             for o in ids}
        d = sub.select((pl.col("seen_start").min(), pl.col("seen_end").max()))
        stats = {
            "mode": "incremental", "rows_classified": core_ids.len(),
            "rows_read": read_rows, "new_fire_rows": new_fires.height,
            "new_explosions": ex_ids.len(), "new_drone_reports": dr_ids.len(),
            "evidence_changed": len(changed) + removed.height, "evidence_fused": sub.height,
            "incidents_recomputed": int(redo.sum()),
            "days": [_utc_day(d.item(0, 0)), _utc_day(d.item(0, 1))] if sub.height else [],
            "windows": [[_utc_day(a), _utc_day(b)] for a, b in spans]}
        with store.atomic():
            store.save_rulings(rulings, actor=ACTOR)
            if cov_doc is not None:
                store.save_coverage(cov_doc, actor=ACTOR)
            saved = store.save_incidents(incidents, violations, actor=ACTOR,
                                         within=within)
            n = int(rulebook.stored(evaluated, kept).sum())  # what a full pass stores
            self._record(store, seen, art, plan, n, stats, saved)
        self._coverage.stored(cov_key)
        self._state = _State(
            seen, batches, art.sha256, radii,
            st.known | frozenset(arrived["id"].to_list()) | frozenset(stream.added), full,
            evidence, evaluated,
            frozenset(keys.filter(kept).to_list()))
        stats["saved"] = saved
        return n, stats

    def _reclassify(self, old: pl.DataFrame, records: pl.DataFrame,
                    new_fires: pl.DataFrame, art: _Artifact
                    ) -> tuple[pl.DataFrame, pl.Series, set[str], int]:
        """The monitored rows with their classes, the new rows' and those of the old
        rows they can change computed again (the core), from the core and its halo.

        The classifier is local (scale/reprocess.py): a cell-day's class depends on the
        rows within its radii (``Halo.cells_*``) over ``days_before`` days before it and
        ``days_after`` after. So a new row at cell c on day a can change the classes of
        rows within the radii of c on days a - days_after .. a + days_before (the core),
        and classifying those needs the rows within the radii of the core over the same
        days before and after it (the halo): both widths come from the configured
        :class:`WarFireRules`, none is a constant here."""
        cols = ["cell", "expected", "p_normal", "war_related", "reason", "cell_count",
                "baseline_sensor", "excess", "fire_class"]
        if new_fires.height == 0:
            return old, pl.Series("id", [], pl.String), set(), 0
        reach_lat = reach_latitude(records, art.baseline)
        halo = Halo.of(self.rules, reach_lat)
        i, j = (a.astype(np.int64) for a in cell_indices(records["latitude"].to_numpy(),
                                                          records["longitude"].to_numpy()))
        day = records["acq_date"].cast(pl.Int32).to_numpy().astype(np.int64)
        ni, nj = (a.astype(np.int64) for a in cell_indices(
            new_fires["latitude"].to_numpy(), new_fires["longitude"].to_numpy()))
        nday = new_fires["acq_date"].cast(pl.Int32).to_numpy().astype(np.int64)
        lo, hi = int(nday.min()) - halo.days_after, int(nday.max()) + halo.days_before
        core = (day >= lo) & (day <= hi) & _near(i, j, ni, nj, halo.cells_i, halo.cells_j)
        need = ((day >= lo - halo.days_before) & (day <= hi + halo.days_after)
                & _near(i, j, ni, nj, 2 * halo.cells_i, 2 * halo.cells_j))
        part = records.filter(pl.Series(need))
        out = classify(part, art.baseline, self.rules, reach_lat=reach_lat)
        in_core = pl.Series(core[need])
        core_full = part.hstack(out.select(cols)).filter(in_core)
        core_ids = core_full["id"]
        was = old.filter(pl.col("id").is_in(core_ids.implode())).select("id", *cols)
        before = dict(zip(was["id"].to_list(), was.drop("id").hash_rows().to_list(),
                          strict=True))
        now = core_full.select("id", *cols)
        reclassed = {k for k, h in zip(now["id"].to_list(), now.drop("id").hash_rows()
                                       .to_list(), strict=True) if before.get(k) != h}
        full = pl.concat([old.filter(~pl.col("id").is_in(core_ids.implode())),
                          core_full.select(old.columns)]).sort("acq_date", "id")
        return full, core_ids, reclassed, part.height

    # ------------------------------------------------------------------ the loop
    def run_forever(self, stop: threading.Event, interval_s: float = 1.0,
                    quiet_s: float = 0.5, on_pass: Callable[[PassResult], None] | None = None,
                    on_error: Callable[[BaseException], None] | None = None) -> None:
        """Passes until ``stop`` is set: every ``interval_s`` it looks for new batches,
        then waits until none arrived for ``quiet_s`` before a pass. An error in a pass
        is reported (``on_error``) and the pass retried at the next interval: inputs
        are stored, nothing is lost."""
        while not stop.is_set():
            try:
                store = open_store(self.config.store)
                try:
                    waiting = self.pending(store)
                    count = store.batch_count()
                finally:
                    store.close()
                if waiting:
                    while not stop.wait(quiet_s):  # let a burst finish
                        store = open_store(self.config.store)
                        try:
                            now = store.batch_count()
                        finally:
                            store.close()
                        if now == count:
                            break
                        count = now
                    result = self.run_pass()
                    if on_pass is not None:
                        on_pass(result)
                    if result.ran:
                        continue  # look again at once: more may have come meanwhile
            except Exception as err:  # kept running: the inputs stay stored for the next pass
                if on_error is not None:
                    on_error(err)
            stop.wait(interval_s)


@dataclass
class _Context:
    """What the fuse and adjudicate stages read of a cycle's context."""

    store: SourcesStore
    agreement: Agreement

    def progress(self, what: str, k: int, n: int) -> None:
        return None


@dataclass
class Running:
    """A worker running in a background thread (:func:`start`)."""

    thread: threading.Thread
    stop_event: threading.Event
    passes: list[PassResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def stop(self, timeout_s: float = 30.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout_s)


def start(config: WorkerConfig, interval_s: float = 1.0, quiet_s: float = 0.5,
          report: Callable[[str], None] | None = None) -> Running:
    """Start a worker in a daemon thread (what ``trucewatch serve`` does)."""
    worker = Worker(config)  # the agreement is checked here, before the thread starts
    stop = threading.Event()
    running = Running(threading.Thread(target=lambda: None), stop)

    def on_pass(r: PassResult) -> None:
        running.passes.append(r)
        if report is not None and r.ran:
            report(f"worker: {r.why} ({r.seconds:.1f} s)")

    def on_error(err: BaseException) -> None:
        line = err.one_line() if isinstance(err, TrucewatchError) else repr(err)
        running.errors.append(line)
        if report is not None:
            report(f"worker: pass failed, retried at the next interval: {line}")

    running.thread = threading.Thread(
        target=worker.run_forever, args=(stop, interval_s, quiet_s, on_pass, on_error),
        daemon=True, name="trucewatch-worker")
    running.thread.start()
    return running


# ---------------------------------------------------------------------- helpers
def _keys(evaluated: pl.DataFrame) -> pl.Series:
    """An evaluated incident's key: its observation ids, joined (what the judge matches)."""
    return evaluated["observation_ids"].list.join("|")


def _order(x: Incident) -> tuple[datetime, str]:
    return x.time_start, x.id


def _received_before(iso: object, cutoff: datetime) -> bool:
    """As the fuse stage: an allegation received before the cutoff (or undated)."""
    if not iso:
        return True
    t = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=UTC)) < cutoff


def _utc_day(epoch_s: object) -> str:
    return datetime.fromtimestamp(float(epoch_s), UTC).date().isoformat()  # type: ignore[arg-type]


def _near(i: np.ndarray, j: np.ndarray, ni: np.ndarray, nj: np.ndarray, ri: int,
          rj: int) -> np.ndarray:
    """Which cells (i, j) lie within ri x rj cells of one of the cells (ni, nj)."""
    cells = np.unique(np.column_stack([ni, nj]), axis=0)
    di, dj = np.meshgrid(np.arange(-ri, ri + 1), np.arange(-rj, rj + 1), indexing="ij")
    box_i = (cells[:, 0:1] + di.ravel()).ravel()
    box_j = (cells[:, 1:2] + dj.ravel()).ravel()
    span = 1 << 20  # cell indices are small (0.1 degree cells): one int key per cell
    reach = np.unique(box_i * span + box_j)
    return np.isin(i * span + j, reach)


def _time_reach(fuser: IncidentFuser) -> float:
    """The farthest apart in time (s) two linked observations' windows can be: the
    fuser links windows within ``time_slack_s`` of each other, and ground-network
    events whose times are within ``barrage_window_s`` (both configured on the fuser)."""
    return max(fuser.time_slack_s, fuser.barrage_window_s)


def _affected(evidence: pl.DataFrame, changed: set[str], removed: set[str],
              fused_before: pl.DataFrame, fuser: IncidentFuser) -> pl.Series:
    """Which observations the pass must fuse again (a mask over ``evidence``): the
    changed ones, and every observation of an incident of the last pass
    (``fused_before``'s ``observation_ids``) that a changed one can now join, or that
    held a changed or removed one (it may split).

    Incidents are the connected components of the fuser's links. A link between two
    unchanged observations is as it was, so an incident of the last pass that holds no
    changed or removed observation and is linked to no changed one is unchanged; the
    set returned is closed under the new links (a union of whole new incidents). Links
    reach at most the fuser's time reach (:func:`_time_reach`), so the changed
    observations' neighbours are found among the observations within that reach of
    one of them: what is fused again is bounded by the changed incidents, not by the
    stream's length (the split at time gaps it replaces fused every observation again
    in a barrage that never paused for 30 min)."""
    n = evidence.height
    if n == 0 or not (changed or removed):
        return pl.Series([False] * n, dtype=pl.Boolean)
    ids = evidence["id"]
    is_changed = ids.is_in(list(changed)).to_numpy()
    seeds = set(removed)
    if is_changed.any():
        t0, t1 = evidence["t_start"].to_numpy(), evidence["t_end"].to_numpy()
        reach = _time_reach(fuser)
        a, b = t0[is_changed] - reach, t1[is_changed] + reach
        order = np.argsort(a, kind="stable")
        a, b = a[order], np.maximum.accumulate(b[order])
        # the changed intervals' reach as disjoint runs; a row is a candidate when it
        # meets the last run starting before its end
        brk = np.r_[True, a[1:] > b[:-1]]
        starts, ends = a[brk], np.maximum.reduceat(b, np.flatnonzero(brk))
        k = np.searchsorted(starts, t1, side="right") - 1
        near = (k >= 0) & (ends[np.maximum(k, 0)] >= t0)
        cand = evidence.filter(pl.Series(near))
        label = fuser.components(cand)
        reached = np.isin(label, label[cand["id"].is_in(list(changed)).to_numpy()])
        seeds |= set(cand["id"].filter(pl.Series(reached)).to_list())
    members = fused_before.select(pl.int_range(pl.len()).alias("_k"),
                                  "observation_ids").explode("observation_ids")
    hit = members.filter(pl.col("observation_ids").is_in(list(seeds)))["_k"].unique()
    again = set(members.filter(pl.col("_k").is_in(hit.implode()))["observation_ids"]
                .to_list()) | seeds
    return ids.is_in(list(again))


def _spans(fused: pl.DataFrame) -> list[tuple[float, float]]:
    """The time spans (epoch s) the recomputed incidents cover, overlapping ones merged."""
    if fused.is_empty():
        return []
    lo = np.minimum(fused["t_start"].to_numpy(), fused["seen_start"].to_numpy())
    hi = np.maximum(fused["t_end"].to_numpy(), fused["seen_end"].to_numpy())
    out: list[tuple[float, float]] = []
    for x, y in sorted(zip(lo.tolist(), hi.tolist(), strict=True)):
        if out and x <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], y))
        else:
            out.append((x, y))
    return out


def _changed(before: pl.DataFrame, after: pl.DataFrame) -> set[str]:
    """Ids of the evidence rows that are new or differ (``after`` against ``before``)."""
    cols = list(EVIDENCE_SCHEMA)
    b = dict(zip(before["id"].to_list(), before.select(cols).hash_rows().to_list(),
                 strict=True))
    a = after.select(cols)
    return {k for k, h in zip(a["id"].to_list(), a.hash_rows().to_list(), strict=True)
            if b.get(k) != h}


def _sha(path: Path) -> str:
    if not path.is_file():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _reference_fingerprint(store: ObservationStore, years: list[int]) -> dict[str, int]:
    """Rows per reference year stored (what a baseline was fitted on)."""
    s = store.fire_summary()
    if s.is_empty():
        return {}
    per = (s.filter(pl.col("acq_date").dt.year().is_in(years))
           .group_by(pl.col("acq_date").dt.year().alias("y")).agg(pl.col("n").sum()))
    return {str(y): int(n) for y, n in sorted(per.iter_rows())}


def _day(iso: object) -> date | None:
    if not iso:
        return None
    t = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC).date()


def _sensor_period(store: SourcesStore,
                   spans: dict[str, tuple[datetime, datetime] | None] | None = None
                   ) -> tuple[datetime, datetime] | None:
    """When the accepted ground-sensor detections were recorded (read from the stored
    detections inputs, as the batch cycle's figures; else the located explosions'
    span)."""
    from trucewatch.ingest.base import unpack
    from trucewatch.ingest.sensors import parse_detections
    from trucewatch.integrity.envelope import is_envelope, open_envelope
    from trucewatch.model.enums import SourceName

    times: list[datetime] = []
    stations = stored_stations(store)
    inventory = hashlib.sha256(stations.write_csv().encode()).hexdigest()
    for b in store.inputs(SourceName.DETECTIONS):
        if int(b["quarantined"]) >= int(b["rows"]):
            continue
        name = str(b["name"])
        # the span of a stored input depends on it and on the inventory it is read against
        sha = str(b["raw_sha256"]) + "|" + inventory
        if spans is not None and sha in spans:
            span = spans[sha]
        else:
            span = None
            try:
                raw = unpack(store.raw_input(str(b["raw_sha256"])), name)
                payload = unpack(open_envelope(raw).payload, name) if is_envelope(raw) \
                    else raw
                recs: pl.DataFrame | None = parse_detections(payload, name, stations).records
            except TrucewatchError:
                recs = None
            if recs is not None and recs.height:
                span = (recs["time"].min(), recs["time"].max())  # type: ignore[assignment]
            if spans is not None and recs is not None:
                spans[sha] = span
        if span is not None:
            times += list(span)
    if times:
        return min(times), max(times)
    return store.observation_span([SourceKind.SENSOR_NETWORK])
