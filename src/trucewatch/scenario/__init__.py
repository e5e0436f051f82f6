"""The built-in, generated scenario (seeded; FIRMS data cannot be shipped)."""

from trucewatch.scenario.builtin import ScenarioFiles, generate

__all__ = ["ScenarioFiles", "generate"]
