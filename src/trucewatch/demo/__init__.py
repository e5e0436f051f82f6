"""The built-in, generated scenario (seeded; FIRMS data cannot be shipped)."""

from trucewatch.demo.builtin import ScenarioFiles, generate

__all__ = ["ScenarioFiles", "generate"]
