"""The built-in cycle's outcome (incidents, violations, rulings, bulletin figures) is the
one recorded in tests/golden/builtin-cycle.json: a refactoring changes none of it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _recorder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("record_golden",
                                                  ROOT / "benchmarks" / "record_golden.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _diff(want: Any, got: Any, where: str = "") -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        out = []
        for k in sorted(set(want) | set(got)):
            if k not in got:
                out.append(f"{where}.{k}: missing")
            elif k not in want:
                out.append(f"{where}.{k}: new")
            else:
                out += _diff(want[k], got[k], f"{where}.{k}")
        return out
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        return [d for k, (a, b) in enumerate(zip(want, got, strict=True))
                for d in _diff(a, b, f"{where}[{k}]")]
    return [] if want == got else [f"{where}: {want!r} -> {got!r}"[:300]]


@pytest.fixture(params=["sqlite", "postgis"])
def cycle_run(request: pytest.FixtureRequest) -> tuple[Path, str | None]:
    """The built-in cycle's out folder and its store, on each backend (the same scenario
    and code; PostGIS skips, with the reason, only where a cluster cannot start)."""
    if request.param == "sqlite":
        return request.getfixturevalue("built_cycle"), None
    name, out = request.getfixturevalue("built_cycle_pg")
    server: str = request.getfixturevalue("pg_server")
    return out, server.rsplit("/", 1)[0] + "/" + name


def test_builtin_cycle_outcome_is_the_recorded_one(cycle_run: tuple[Path, str | None]
                                                   ) -> None:
    rec = _recorder()
    want = json.loads(rec.GOLDEN.read_text())
    got = json.loads(json.dumps(rec.summarise(*cycle_run), sort_keys=True, default=str))
    assert got["incidents"], "the built-in cycle made no incident: the summary is empty"
    problems = _diff(want, got)
    assert not problems, (
        f"the built-in cycle's outcome differs from {rec.GOLDEN.relative_to(ROOT)} in "
        f"{len(problems)} place(s):\n  " + "\n  ".join(problems[:30]) +
        "\nIf (and only if) this change is intended, re-record it with "
        "`PYTHONPATH=src:benchmarks python benchmarks/record_golden.py` and say why in "
        "the commit.")
