"""The built-in scenario's full cycle (sensors, drones, allegations, the signed coalition
registry and the scripted review, no PDFs), as tests and benchmarks run it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from trucewatch.demo import ScenarioFiles

if TYPE_CHECKING:
    from trucewatch.pipeline import CycleConfig


def builtin_cycle(scenario: ScenarioFiles, out: Path, store: Path | str | None = None
                  ) -> None:
    """Run the cycle over ``scenario`` into ``out`` (the store there, or ``store``)."""
    from trucewatch.demo.multisource import apply_review
    from trucewatch.pipeline import FieldInputs, SensorInputs, run_cycle

    assert scenario.stations and scenario.detections
    run_cycle(agreement_path=scenario.agreement,
              firms_files=[*scenario.reference, *scenario.current],
              reference_years=[2023, 2024, 2025], out_dir=out, cloud_path=scenario.coverage,
              pdf=False, sensors=SensorInputs(scenario.stations, [scenario.detections]),
              field_inputs=FieldInputs(scenario.drones, scenario.allegations, scenario.keys),
              review=apply_review, store_path=store, coalition=scenario.coalition)


def builtin_config(scenario: ScenarioFiles, out: Path, store: Path | str | None = None,
                   stages: dict[str, str] | None = None) -> CycleConfig:
    """The same cycle as :func:`builtin_cycle`, as a configuration (``stages``: built-in
    stage name -> registered plugin replacing it)."""
    from trucewatch.demo.multisource import apply_review
    from trucewatch.pipeline import CycleConfig, FieldInputs, SensorInputs

    assert scenario.stations and scenario.detections
    return CycleConfig(
        agreement_path=scenario.agreement,
        firms_files=(*scenario.reference, *scenario.current),
        reference_years=(2023, 2024, 2025), out_dir=out, cloud_path=scenario.coverage,
        pdf=False, sensors=SensorInputs(scenario.stations, [scenario.detections]),
        field_inputs=FieldInputs(scenario.drones, scenario.allegations, scenario.keys),
        review=apply_review, store_path=store, stages=dict(stages or {}),
        coalition=scenario.coalition)
