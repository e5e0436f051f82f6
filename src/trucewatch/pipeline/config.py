"""What a cycle is asked to do (:class:`CycleConfig`), and the plan settled from it
before any heavy work (:func:`plan_cycle`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from trucewatch.adjudication.allegations import AllegationJudge
from trucewatch.errors import ConfigError
from trucewatch.fusion.incidents import IncidentFuser
from trucewatch.ingest.firms import FirmsFilter
from trucewatch.integrity.envelope import SourcePolicy
from trucewatch.satellite.baseline import BaselineParams
from trucewatch.sensors.association import ExplosionAssociator

if TYPE_CHECKING:
    from trucewatch.storage.protocols import ReviewDeskStore

Progress = Callable[[str, int, int], None]
# a scripted review decides through review.workflow.ReviewService, as a person would
Review = Callable[["ReviewDeskStore"], list[str]]


def _noop(_: str, __: int, ___: int) -> None:
    return None


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


@dataclass(frozen=True)
class CycleConfig:
    """One cycle's inputs and options (what ``run_cycle``'s keywords were).

    ``reference_years`` default to the years of FIRMS data before the entry-into-force
    year; ``report_date`` to the last data; ``store_path`` to ``out_dir/trucewatch.db``.
    ``covariates``: the land-use folder for the satellite classifier; when not
    ``covariates_required`` (found by default rather than given), covariates that do not
    cover the area are left out and the bulletin says so. ``stages``: built-in stage name
    -> the name of a registered stage plugin that replaces it (entry point group
    ``trucewatch.stages``, see :mod:`trucewatch.pipeline.registry`)."""

    agreement_path: Path
    firms_files: tuple[Path, ...]
    out_dir: Path
    reference_years: tuple[int, ...] | None = None
    report_date: date | None = None
    cloud_path: Path | None = None
    store_path: Path | str | None = None
    pdf: bool = True
    sensors: SensorInputs | None = None
    field_inputs: FieldInputs = field(default_factory=FieldInputs)
    review: Review | None = None
    firms_filter: FirmsFilter = field(default_factory=FirmsFilter)
    baseline_params: BaselineParams | None = None
    covariates: Path | None = None
    covariates_required: bool = True
    progress: Progress = _noop
    stages: Mapping[str, str] = field(default_factory=dict)
    language: str = "en"  # the bulletin's (reports.i18n: en, uk, ru, fr)
    mission_key: Path | None = None  # signs checkpoints (None: integrity.checkpoint's default)
    # the signed coalition registry (agreement/coalition.py): coverage is credited to it
    coalition: Path | None = None

    @property
    def store_where(self) -> Path | str:
        return self.store_path or self.out_dir / "trucewatch.db"

    def input_files(self) -> list[Path]:
        """Every input file the cycle reads (checked to exist before any work)."""
        fi, s = self.field_inputs, self.sensors
        return [p for p in [*self.firms_files, self.cloud_path, *fi.drones, *fi.allegations,
                            fi.keys, self.coalition,
                            *([s.stations, *s.detections] if s else [])]
                if p is not None]


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
