"""The verification cycle as a list of configured stages (see :mod:`.stages` and
:mod:`.cycle`); ``run_cycle`` keeps the keyword interface of earlier releases."""

from trucewatch.ingest.firms import FirmsFilter
from trucewatch.pipeline.config import (
    CycleConfig,
    FieldInputs,
    Plan,
    Progress,
    Review,
    SensorInputs,
    plan_cycle,
)
from trucewatch.pipeline.cycle import Cycle, CycleResult, open_cycle, run, run_cycle
from trucewatch.pipeline.registry import register_stage, stage_plugins, stages_for
from trucewatch.pipeline.stages import (
    STAGE_NAMES,
    CycleContext,
    Stage,
    builtin_stages,
    coverage_of,
    run_stage,
)

__all__ = [
    "STAGE_NAMES",
    "Cycle",
    "CycleConfig",
    "CycleContext",
    "CycleResult",
    "FieldInputs",
    "FirmsFilter",
    "Plan",
    "Progress",
    "Review",
    "SensorInputs",
    "Stage",
    "builtin_stages",
    "coverage_of",
    "open_cycle",
    "plan_cycle",
    "register_stage",
    "run",
    "run_cycle",
    "run_stage",
    "stage_plugins",
    "stages_for",
]
