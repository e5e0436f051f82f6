"""The verification cycle: a list of configured stages run in order.

ingest (satellite, drones, allegations; signatures checked per source policy) ->
classify (baseline, fires) -> locate (ground sensors -> explosions) -> fuse (all sources
into incidents) -> adjudicate (agreement rules) -> rule (allegation rulings; incidents
stored) -> publish ((review) -> bulletin, products, checkpoint). See
:mod:`trucewatch.pipeline.stages` for each stage's typed input and output.

As of the report date D (docs/fusion.md, "As-of processing"): every input is stored,
but the cycle for D uses only what was observed up to D's end (FIRMS acq_date <= D,
explosions, drone reports and allegations received before D + 1 day 00:00Z), so the
bulletin for D does not change when later data arrive. Options are checked (agreement,
files, years, report date) before any heavy work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from trucewatch.adjudication.ceasefire import CeasefireView
from trucewatch.agreement import load_agreement
from trucewatch.errors import ConfigError, InputFileError
from trucewatch.ingest.firms import FirmsFilter
from trucewatch.intake import Outcome
from trucewatch.integrity.keys import KeyRegistry
from trucewatch.pipeline.config import (
    CycleConfig,
    FieldInputs,
    Progress,
    Review,
    SensorInputs,
    _noop,
)
from trucewatch.pipeline.registry import stages_for
from trucewatch.pipeline.stages import (
    Classified,
    CycleContext,
    Ingested,
    Located,
    Published,
    Ruled,
    Stage,
    input_for,
    submissions_of,
)
from trucewatch.reports.bulletin import BulletinFiles
from trucewatch.reports.coverage import read_cloud
from trucewatch.reports.i18n import check_language
from trucewatch.satellite.baseline import BaselineParams
from trucewatch.storage import IngestReport, open_store
from trucewatch.storage.postgis import is_postgres_url


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

    @classmethod
    def of(cls, outputs: dict[str, Any], store_path: Path | str) -> CycleResult:
        """The result of a full cycle from its stages' outputs."""
        ing: Ingested = outputs["ingest"]
        loc: Located = outputs["locate"]
        pub: Published = outputs["publish"]
        ruled: Ruled = outputs["rule"]
        classified: Classified = outputs["classify"]
        return cls(pub.view, pub.bulletins, [*ing.reports, *loc.reports], store_path,
                   classified.baseline_path, submissions_of(ing, loc), ruled.rulings,
                   pub.review_log)


def _check_files(paths: list[Path]) -> None:
    for p in paths:
        if not Path(p).is_file():
            raise InputFileError(f"{p}: no such file", path=str(p),
                                 fix="check the path (run from the right folder?)")


def open_cycle(config: CycleConfig) -> CycleContext:
    """Check a cycle's options and files (before any work) and open its store."""
    config.firms_filter.check()
    check_language(config.language)  # refused before any work
    agreement = load_agreement(config.agreement_path)  # fail early, before any work
    _check_files(config.input_files())
    cloud: dict[date, float | None] | None = None
    gaps: set[date] = set()
    if config.cloud_path:
        days, gaps = read_cloud(config.cloud_path)
        cloud = dict(days)
    keys = config.field_inputs.keys
    registry = KeyRegistry.load(keys) if keys else KeyRegistry()
    config.out_dir.mkdir(parents=True, exist_ok=True)
    return CycleContext(config, open_store(config.store_where), registry, agreement,
                        cloud, gaps)


@dataclass
class Cycle:
    """Stages run in order, each on the outputs of the earlier ones it names."""

    stages: Sequence[Stage]

    @classmethod
    def for_config(cls, config: CycleConfig) -> Cycle:
        """The built-in stages, with the plugins ``config.stages`` names."""
        return cls(stages_for(config))

    def run_in(self, ctx: CycleContext, outputs: dict[str, Any] | None = None
               ) -> dict[str, Any]:
        """Run the stages in an open context; returns every stage's output by name
        (``outputs``: those of stages already run, to resume after them)."""
        done = dict(outputs or {})
        for stage in self.stages:
            done[stage.name] = stage.run(ctx, input_for(stage, done))
        return done

    def run(self, config: CycleConfig) -> dict[str, Any]:
        """Open the store, run the stages, close it. A store this run creates is removed
        again if the run is refused (ConfigError) before it stored anything."""
        where = config.store_where
        fresh = not is_postgres_url(where) and not Path(where).exists()
        ctx = open_cycle(config)
        closed = False
        try:
            return self.run_in(ctx)
        except ConfigError:
            unused = fresh and not ctx.store.batches()
            ctx.store.close()
            closed = True
            if unused:
                for leftover in Path(where).parent.glob(Path(where).name + "*"):
                    leftover.unlink(missing_ok=True)  # the file and its -wal/-shm companions
            raise
        finally:
            if not closed:
                ctx.store.close()


def run(config: CycleConfig) -> CycleResult:
    """One cycle as configured (the built-in stages, with any plugins it names)."""
    return CycleResult.of(Cycle.for_config(config).run(config), config.store_where)


def run_cycle(*, agreement_path: Path, firms_files: list[Path],
              reference_years: list[int] | None = None,
              out_dir: Path, report_date: date | None = None, cloud_path: Path | None = None,
              store_path: Path | str | None = None, pdf: bool = True,
              progress: Progress = _noop, sensors: SensorInputs | None = None,
              field_inputs: FieldInputs | None = None, review: Review | None = None,
              firms_filter: FirmsFilter | None = None,
              baseline_params: BaselineParams | None = None,
              covariates: Path | None = None, covariates_required: bool = True,
              language: str = "en", mission_key: Path | None = None,
              coalition: Path | None = None) -> CycleResult:
    """One cycle as of ``report_date`` (default: the last data): :func:`run` on the
    :class:`CycleConfig` these keywords make (kept for the CLI, tests and benchmarks)."""
    return run(CycleConfig(
        agreement_path=agreement_path, firms_files=tuple(firms_files),
        reference_years=tuple(reference_years) if reference_years is not None else None,
        out_dir=out_dir, report_date=report_date, cloud_path=cloud_path,
        store_path=store_path, pdf=pdf, progress=progress, sensors=sensors,
        field_inputs=field_inputs or FieldInputs(), review=review,
        firms_filter=firms_filter or FirmsFilter(), baseline_params=baseline_params,
        covariates=covariates, covariates_required=covariates_required,
        language=language, mission_key=mission_key, coalition=coalition))
