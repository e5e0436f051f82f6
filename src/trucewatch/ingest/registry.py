"""The source registry: which adapter understands an input.

Built-in sources are plugins of the same interface (:class:`~trucewatch.ingest.base.SourceAdapter`)
a third party implements and registers under the ``trucewatch.sources`` entry point. The
registry sits above the adapters, so that no adapter imports it (no cycle).
"""

from __future__ import annotations

from importlib.metadata import entry_points

from trucewatch.errors import ConfigError, UnknownLayoutError
from trucewatch.ingest.allegations import AllegationSource
from trucewatch.ingest.base import LAYOUTS_FIX, SourceAdapter, header_of
from trucewatch.ingest.drones import DroneSource
from trucewatch.ingest.firms import FirmsSource


def sources() -> list[SourceAdapter]:
    """Built-in sources first, then those registered by installed packages. A registered
    source whose name holds a hidden character, mixes scripts or looks like another
    source's name (``fіrms`` with a Cyrillic і) is refused: inputs, refusals and the
    audit log name sources, and a look-alike would pass for the other."""
    from trucewatch.model.lookalike import identifier_problem, lookalike

    found: list[SourceAdapter] = [FirmsSource(), DroneSource(), AllegationSource()]
    for ep in entry_points(group="trucewatch.sources"):
        src = ep.load()()
        name = str(src.name)
        why = identifier_problem(name)
        twin = lookalike(name, [str(s.name) for s in found])
        if why or twin is not None:
            raise ConfigError(
                f"source plugin {ep.name!r} ({ep.value}): its name "
                + (why or f"{name!r} looks like the source {twin!r}"),
                fix="uninstall the plugin, or have it named in one script and unlike "
                    "another source")
        found.append(src)
    return found


def adapter_for(raw: bytes, name: str) -> SourceAdapter:
    header = header_of(raw)
    for src in sources():
        if src.sniff(header):
            return src
    raise UnknownLayoutError(
        f"{name}: unknown layout (columns: {', '.join(header[:12]) or 'none'})",
        path=name,
        fix=LAYOUTS_FIX,
    )
