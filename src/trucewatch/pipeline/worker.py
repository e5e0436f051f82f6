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
3. classifies the monitored fires against it, fuses every source's stored evidence,
   adjudicates, rules on the allegations and stores the incidents, rulings and
   coverage, exactly as the batch cycle's classify, fuse, adjudicate and rule stages
   do (the same functions, on the same stored inputs), with no cutoff: everything
   stored counts;
4. writes all of it and the new watermark in one transaction (the watermark is the
   last log entry of that transaction, ``worker``/``worker_pass``).

Incrementality, honestly: a pass runs only when new batches arrived and stored
incidents keep their identity (:meth:`IncidentRepository.save_incidents`: a re-fused
incident keeps its id, a reviewed one its review state), but each pass recomputes the
classification, fusion and adjudication of the whole monitored period (vectorised; a
few seconds for the built-in scenario). Passes coalesce: the loop waits for a quiet
moment (``quiet_s``) before a pass, so a burst of submissions costs one pass.

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

import polars as pl

from trucewatch.adjudication.allegations import AllegationJudge
from trucewatch.agreement import load_agreement
from trucewatch.errors import ConfigError, TrucewatchError
from trucewatch.fusion.incidents import IncidentFuser
from trucewatch.ingest.firms import FirmsFilter
from trucewatch.intake.sources import stored_stations
from trucewatch.model.agreement import Agreement
from trucewatch.model.enums import SourceKind
from trucewatch.pipeline.config import Plan, plan_cycle
from trucewatch.pipeline.stages import (
    AdjudicateInput,
    AdjudicateStage,
    FuseInput,
    FuseStage,
    Ingested,
    classify_with,
    coverage_of,
    run_stage,
)
from trucewatch.reports.coverage import read_cloud
from trucewatch.satellite.baseline import Baseline, BaselineParams, fit_baseline
from trucewatch.storage import open_store
from trucewatch.storage.postgis import is_postgres_url
from trucewatch.storage.protocols import FullStore

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


@dataclass(frozen=True)
class _Artifact:
    baseline: Baseline
    version: int
    sha256: str


class Worker:
    """Passes over one store (see the module docstring)."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.agreement: Agreement = load_agreement(config.agreement)
        self._artifact: _Artifact | None = None

    # ------------------------------------------------------------------ watermark
    @staticmethod
    def watermark(store: FullStore) -> int:
        last = store.last_record(ACTOR, ACTION)
        return int(last["watermark"]) if last else 0

    def pending(self, store: FullStore) -> bool:
        return store.batch_count() > self.watermark(store)

    # ------------------------------------------------------------------ one pass
    def run_pass(self, refit: bool = False, force: bool = False) -> PassResult:
        """One pass (nothing when no batch arrived since the watermark, unless ``force``
        or ``refit``)."""
        t0 = time.monotonic()
        store = open_store(self.config.store)
        try:
            seen = store.batch_count()  # read first: a batch stored meanwhile waits
            mark = self.watermark(store)
            if seen <= mark and not (force or refit):
                return PassResult(False, mark, "nothing new since the watermark")
            plan = self._plan(store)
            if plan is None:
                return PassResult(False, mark, "no monitored FIRMS data stored yet: "
                                  "nothing to classify (waiting)")
            art = self._baseline(store, plan.reference_years, refit)
            n = self._process(store, plan, art, seen)
            return PassResult(True, seen, f"{n} incidents from {seen} batches",
                              n, art.version, time.monotonic() - t0)
        finally:
            store.close()

    def _plan(self, store: FullStore) -> Plan | None:
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
        latest = [plan.last, *(d for d in (_last_day(store.explosions()),
                                           _last_day(store.observations(SourceKind.DRONE)))
                               if d is not None)]
        for a in store.allegations():
            got = _day(a.get("received_at"))
            if got is not None:
                latest.append(got)
        latest += list(self._cloud()[0])
        return Plan(plan.reference_years, max(latest), plan.first, plan.last)

    def _cloud(self) -> tuple[dict[date, float | None], set[date]]:
        if self.config.cloud is None:
            return {}, set()
        days, gaps = read_cloud(self.config.cloud)
        return dict(days), gaps

    def _baseline(self, store: FullStore, years: list[int], refit: bool) -> _Artifact:
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
        detections = store.fire_detections()
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

    def _process(self, store: FullStore, plan: Plan, art: _Artifact, seen: int) -> int:
        """Classify, fuse, adjudicate, rule and store, in one transaction."""
        cfg = self.config
        detections = FirmsFilter().apply(store.fire_detections(end=plan.report_date))
        ingested = Ingested(plan, [], [], [], [], {}, detections)
        classified = classify_with(art.baseline, detections, plan.reference_years,
                                   self.agreement)
        ctx = _Context(store, self.agreement)
        fused = run_stage(FuseStage(cfg.fuser), ctx,  # type: ignore[arg-type]
                          FuseInput(ingested, classified))
        adjudicated = run_stage(AdjudicateStage(), ctx,  # type: ignore[arg-type]
                                AdjudicateInput(classified, fused))
        stations = stored_stations(store)
        period = _sensor_period(store)
        cloud, gaps = self._cloud()
        cov = coverage_of(store, stations if stations.height else None, period, cloud,
                          gaps, plan.cutoff)
        evaluated = adjudicated.evaluated
        rulings, matched = cfg.judge.rule(fused.allegations, evaluated, cov, plan.cutoff)
        kept = evaluated["observation_ids"].list.join("|").is_in(list(matched))
        incidents, violations = adjudicated.rulebook.to_domain(evaluated, kept)
        with store.atomic():
            store.save_rulings(rulings, actor=ACTOR)
            store.save_coverage(cov.geojson(), actor=ACTOR)
            store.save_incidents(incidents, violations, actor=ACTOR)
            store.record(ACTOR, ACTION, "watermark", {
                "watermark": seen, "baseline_version": art.version,
                "baseline_sha256": art.sha256, "report_day": plan.report_date.isoformat(),
                "incidents": len(incidents), "recomputed": "whole monitored period"})
        return len(incidents)

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

    store: FullStore
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
def _sha(path: Path) -> str:
    if not path.is_file():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _reference_fingerprint(store: FullStore, years: list[int]) -> dict[str, int]:
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


def _last_day(df: pl.DataFrame) -> date | None:
    if df.is_empty():
        return None
    return _day(df["time_start"].max())


def _sensor_period(store: FullStore) -> tuple[datetime, datetime] | None:
    """When the accepted ground-sensor detections were recorded (read from the stored
    detections inputs, as the batch cycle's figures; else the located explosions'
    span)."""
    from trucewatch.ingest.base import unpack
    from trucewatch.ingest.sensors import parse_detections
    from trucewatch.integrity.envelope import is_envelope, open_envelope
    from trucewatch.model.enums import SourceName

    times: list[datetime] = []
    stations = stored_stations(store)
    for b in store.inputs(SourceName.DETECTIONS):
        if int(b["quarantined"]) >= int(b["rows"]):
            continue
        name = str(b["name"])
        try:
            raw = unpack(store.raw_input(str(b["raw_sha256"])), name)
            payload = unpack(open_envelope(raw).payload, name) if is_envelope(raw) else raw
            recs = parse_detections(payload, name, stations).records
        except TrucewatchError:
            continue
        if recs.height:
            times += [recs["time"].min(), recs["time"].max()]  # type: ignore[list-item]
    if times:
        return min(times), max(times)
    ex = store.explosions()
    if ex.is_empty():
        return None
    t = ex["time_start"].str.to_datetime(time_zone="UTC")
    start, end = t.min(), t.max()
    if isinstance(start, datetime) and isinstance(end, datetime):
        return start, end
    return None
