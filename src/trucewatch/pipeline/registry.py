"""Stage plugins, registered like sources.

A package registers a stage under the ``trucewatch.stages`` entry point group::

    [project.entry-points."trucewatch.stages"]
    acme-fuser = "acme.stages:make_fuser"

The object named is either a function called with the cycle's
:class:`~trucewatch.pipeline.config.CycleConfig`, or a stage class (made with its
``from_config(config)`` classmethod when it has one, else with its defaults); either
gives a :class:`~trucewatch.pipeline.stages.Stage` whose ``name`` is the built-in stage
it replaces (``fuse`` here), with that stage's input and output types. A cycle uses it
when its configuration asks for it by name::

    CycleConfig(..., stages={"fuse": "acme-fuser"})

:func:`register_stage` registers one from
code (for a script, or a test) under the same rules.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from trucewatch.errors import ConfigError
from trucewatch.pipeline.config import CycleConfig
from trucewatch.pipeline.stages import STAGE_NAMES, Stage, builtin_stages

GROUP = "trucewatch.stages"
StageFactory = Callable[[CycleConfig], Stage] | type

_REGISTERED: dict[str, StageFactory] = {}


def register_stage(name: str, factory: StageFactory) -> None:
    """Register a stage plugin under ``name`` from code (an installed package uses the
    entry point group instead)."""
    _REGISTERED[name] = factory


def stage_plugins() -> dict[str, StageFactory]:
    """Every registered stage plugin by name: installed packages' entry points, then
    those registered from code (which win)."""
    found: dict[str, StageFactory] = {}
    for ep in entry_points(group=GROUP):
        found[ep.name] = _factory(ep.name, ep.load())
    return {**found, **_REGISTERED}


def _factory(name: str, obj: Any) -> StageFactory:
    if not callable(obj):
        raise ConfigError(f"stage plugin {name!r} is not a class or a factory ({obj!r})",
                          fix=f"point the {GROUP} entry point at a class or a function "
                              "taking the CycleConfig")
    return obj  # type: ignore[no-any-return]


def plugin_stage(plugin: str, replaces: str, config: CycleConfig) -> Stage:
    """The registered stage ``plugin``, made for ``config``; it must replace ``replaces``."""
    if replaces not in STAGE_NAMES:
        raise ConfigError(f"no built-in stage named {replaces!r}",
                          fix="the stages are " + ", ".join(STAGE_NAMES))
    plugins = stage_plugins()
    if plugin not in plugins:
        known = ", ".join(sorted(plugins)) or "none installed"
        raise ConfigError(f"no stage plugin named {plugin!r} (registered: {known})",
                          fix=f"install the package that registers it under the {GROUP} "
                              "entry point group, or check the name")
    factory = plugins[plugin]
    if isinstance(factory, type):  # a stage class: from_config(config) if it has one
        make = getattr(factory, "from_config", None)
        stage = make(config) if callable(make) else factory()
    else:
        stage = factory(config)
    if not isinstance(stage, Stage):
        raise ConfigError(f"stage plugin {plugin!r} made {type(stage).__name__}, which is "
                          "not a stage (name, input_type, run)",
                          fix="return an object with a name, an input_type and run(ctx, "
                              "data)")
    if stage.name != replaces:
        raise ConfigError(f"stage plugin {plugin!r} is a {stage.name!r} stage; it cannot "
                          f"replace {replaces!r}",
                          fix=f"use it as {stage.name}={plugin}")
    return stage


def stages_for(config: CycleConfig) -> list[Stage]:
    """The cycle's stages: the built-in ones, each replaced by the plugin that
    ``config.stages`` names for it."""
    unknown = sorted(set(config.stages) - set(STAGE_NAMES))
    if unknown:
        raise ConfigError(f"no built-in stage named {', '.join(map(repr, unknown))}",
                          fix="the stages are " + ", ".join(STAGE_NAMES))
    return [plugin_stage(config.stages[s.name], s.name, config) if s.name in config.stages
            else s for s in builtin_stages(config)]
