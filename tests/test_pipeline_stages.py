"""The cycle as a list of stages: run one by one on typed inputs they equal run_cycle;
a stage plugin registered under the ``trucewatch.stages`` entry point replaces the
built-in stage of its name; a wrong plugin or input is a clear error."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest

from lab.cycle import builtin_config
from trucewatch.demo import ScenarioFiles
from trucewatch.errors import ConfigError
from trucewatch.pipeline import (
    STAGE_NAMES,
    CycleContext,
    builtin_stages,
    open_cycle,
    register_stage,
    run,
    run_stage,
    stage_plugins,
    stages_for,
)
from trucewatch.pipeline.stages import (
    AdjudicateInput,
    AdjudicateStage,
    ClassifyInput,
    ClassifyStage,
    FuseInput,
    FuseStage,
    IngestInput,
    IngestStage,
    LocateInput,
    LocateStage,
    PublishInput,
    PublishStage,
    RuleInput,
    RuleStage,
)

ROOT = Path(__file__).resolve().parents[1]


def _summarise(out: Path) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("record_golden",
                                                  ROOT / "benchmarks" / "record_golden.py")
    assert spec and spec.loader
    mod: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return cast(dict[str, Any], json.loads(json.dumps(mod.summarise(out), sort_keys=True,
                                                      default=str)))


def test_the_builtin_stages_are_the_documented_ones(scenario: ScenarioFiles,
                                                    tmp_path: Path) -> None:
    stages = builtin_stages(builtin_config(scenario, tmp_path))
    assert tuple(s.name for s in stages) == STAGE_NAMES == (
        "ingest", "classify", "locate", "fuse", "adjudicate", "rule", "publish")


def test_stages_run_one_by_one_equal_run_cycle(scenario: ScenarioFiles, built_cycle: Path,
                                               tmp_path: Path) -> None:
    """Each stage run alone, on an input built by hand from the earlier outputs, gives
    the same incidents, rulings and bulletins as run_cycle (the built_cycle fixture)."""
    config = builtin_config(scenario, tmp_path)
    fi = config.field_inputs
    ctx = open_cycle(config)
    try:
        ing = run_stage(IngestStage(), ctx, IngestInput())
        cls = run_stage(ClassifyStage(), ctx, ClassifyInput(ing))
        loc = run_stage(LocateStage(config.sensors), ctx, LocateInput(ing))
        fus = run_stage(FuseStage(fi.fuser), ctx, FuseInput(ing, cls))
        adj = run_stage(AdjudicateStage(), ctx, AdjudicateInput(cls, fus))
        rul = run_stage(RuleStage(fi.judge), ctx, RuleInput(ing, loc, fus, adj))
        pub = run_stage(PublishStage(pdf=False), ctx,
                        PublishInput(ing, cls, loc, fus, adj, rul))
    finally:
        ctx.store.close()
    assert loc.figures is not None and loc.figures.located > 0
    assert fus.incidents.height > 0 and rul.incidents and pub.bulletins
    got, want = _summarise(tmp_path), _summarise(built_cycle)
    assert got["incidents"] and got == want


def test_run_stage_refuses_another_stages_input() -> None:
    with pytest.raises(ConfigError, match="takes a FuseInput"):
        run_stage(FuseStage(), cast(CycleContext, None), IngestInput())


# a stage plugin, installed the way a package installs one: a module and a dist-info
# folder whose entry_points.txt registers it under the trucewatch.stages group
PLUGIN = '''
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from trucewatch.pipeline.stages import AdjudicateInput, AdjudicateStage, Adjudicated

RUNS: list[int] = []


@dataclass(frozen=True)
class NoRulesAdjudicator:
    """Adjudicates like the built-in stage, then breaks no rule (every candidate is
    flagged insufficient_evidence)."""

    name: str = "adjudicate"
    input_type: ClassVar[type[Any]] = AdjudicateInput

    def run(self, ctx: Any, data: AdjudicateInput) -> Adjudicated:
        RUNS.append(1)
        out = AdjudicateStage().run(ctx, data)
        ev = out.evaluated.with_columns(
            pl.when(pl.col("rule").is_not_null()).then(pl.lit("insufficient_evidence"))
            .otherwise(pl.col("flag")).alias("flag"),
            pl.lit(None, pl.String).alias("rule"))
        return Adjudicated(out.rulebook, ev, out.view)


@dataclass(frozen=True)
class MisnamedStage:
    name: str = "fuse"
    input_type: ClassVar[type[Any]] = AdjudicateInput

    def run(self, ctx: Any, data: Any) -> Any:
        raise AssertionError("never run")
'''


@pytest.fixture()
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                     ) -> Iterator[ModuleType]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "tw_test_stages.py").write_text(PLUGIN, encoding="utf-8")
    info = site / "tw_test_stages-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tw-test-stages\n"
                                   "Version: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [trucewatch.stages]
        no-rules = tw_test_stages:NoRulesAdjudicator
        misnamed = tw_test_stages:MisnamedStage
        """), encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    import tw_test_stages  # type: ignore[import-not-found]

    yield tw_test_stages
    sys.modules.pop("tw_test_stages", None)


def test_a_registered_plugin_replaces_the_stage_of_its_name(
        scenario: ScenarioFiles, built_cycle: Path, installed_plugin: ModuleType,
        tmp_path: Path) -> None:
    assert {"no-rules", "misnamed"} <= set(stage_plugins())
    config = builtin_config(scenario, tmp_path, stages={"adjudicate": "no-rules"})
    stages = stages_for(config)
    assert [s.name for s in stages] == list(STAGE_NAMES)
    assert type(stages[STAGE_NAMES.index("adjudicate")]).__name__ == "NoRulesAdjudicator"
    run(config)
    assert installed_plugin.RUNS == [1]
    got, want = _summarise(tmp_path), _summarise(built_cycle)
    assert want["violations"], "the built-in cycle finds violations"
    # the plugin's adjudication was used: no rule broken, so no violation stored, and the
    # incidents still exist (the fusion stage ran as before)
    assert got["violations"] == [] and got["incidents"]
    assert all(not i["rule"] for i in got["incidents"])


def test_a_plugin_must_keep_the_name_of_the_stage_it_replaces(
        scenario: ScenarioFiles, installed_plugin: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot replace 'adjudicate'"):
        stages_for(builtin_config(scenario, tmp_path, stages={"adjudicate": "misnamed"}))


def test_an_unknown_plugin_or_stage_is_a_clear_error(scenario: ScenarioFiles,
                                                     tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no stage plugin named 'nope'") as err:
        stages_for(builtin_config(scenario, tmp_path, stages={"fuse": "nope"}))
    assert "trucewatch.stages" in err.value.fix
    with pytest.raises(ConfigError, match="no built-in stage named 'fusion'"):
        stages_for(builtin_config(scenario, tmp_path, stages={"fusion": "nope"}))


@dataclass(frozen=True)
class _CountingFuse(FuseStage):
    """A fuse stage of the test's own (the built-in one, by another class)."""


def test_register_stage_from_code(scenario: ScenarioFiles, tmp_path: Path) -> None:
    made: list[object] = []

    def factory(config: object) -> _CountingFuse:
        made.append(config)
        return _CountingFuse()

    register_stage("counting-fuse", factory)
    config = builtin_config(scenario, tmp_path, stages={"fuse": "counting-fuse"})
    stages = stages_for(config)
    assert isinstance(stages[STAGE_NAMES.index("fuse")], _CountingFuse)
    assert made == [config]
