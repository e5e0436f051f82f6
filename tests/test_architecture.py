"""The layout is the architecture: import contracts, the lab outside the core, the README's
layout section, and a core install that works without the heavy extras."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trucewatch.demo import ScenarioFiles
from trucewatch.extras import EXTRAS

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "trucewatch"
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path, src: Path) -> subprocess.CompletedProcess[str]:
    if not LINT.exists():
        pytest.skip("import-linter is not installed (it comes with the [test] extra)")
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_import_contracts_hold() -> None:
    """No cycle, and no import from a lower layer to a higher one (pyproject's contracts)."""
    proc = _lint(ROOT, ROOT / "src")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("model/enums.py", "import trucewatch.storage  # noqa", "Layers"),
    ("geo/grid.py", "import trucewatch.geo.gazetteer  # noqa", "cycles"),
    ("pipeline.py", "import trucewatch.demo  # noqa", "Layers"),
])
def test_the_contracts_catch_an_upward_import_or_a_cycle(tmp_path: Path, module: str,
                                                         line: str, broken: str) -> None:
    """The contracts can fail: the same tree with one bad import planted breaks them."""
    copy = tmp_path / "src" / "trucewatch"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__", "static"))
    target = copy / module
    if not target.exists():  # the module moved: plant the import in its package instead
        target = copy / module.replace(".py", "") / "__init__.py"
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    if broken == "cycles":  # close the cycle: gazetteer already imports geo.distance
        dist = copy / "geo" / "distance.py"
        dist.write_text(dist.read_text(encoding="utf-8") + "\nimport trucewatch.geo.grid  # noqa\n",
                        encoding="utf-8")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    proc = _lint(tmp_path, tmp_path / "src")
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "BROKEN" in proc.stdout and broken.lower() in proc.stdout.lower()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_package_never_imports_the_lab() -> None:
    """Generators, scoring and harnesses live in benchmarks/lab, outside the package."""
    offenders = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                 if any(m == "lab" or m.startswith("lab.") for m in _imports(p))]
    assert offenders == []
    assert not (SRC / "testing").exists() and not (SRC / "scenario").exists()


def _layout_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^## Layout[^\n]*\n(.*?)(?=^## |^Docs: )", text, re.S | re.M)
    assert m, "README.md has no '## Layout' section"
    return m.group(1)


def test_readme_layout_section_matches_the_tree() -> None:
    section = _layout_section()
    listed = set(re.findall(r"^\s*([a-z_]+)/\s", section, re.M))
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in SRC.glob("*.py")} - {"__init__", "__main__"}
    assert packages - listed == set(), "packages missing from README's layout section"
    listed_modules = set(re.findall(r"^\s*([a-z_]+)\.py\s", section, re.M))
    assert modules - listed_modules - listed == set(), "modules missing from the section"
    assert listed - packages - modules - {"benchmarks", "lab", "src"} == set(), \
        "README lists packages that do not exist"
    assert (ROOT / "benchmarks" / "lab" / "__init__.py").exists()


# Modules of every extra made unimportable, as on a core install (pip install trucewatch).
BLOCKER = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = {blocked!r}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None
    sys.meta_path.insert(0, Block())
    for m in list(sys.modules):
        if m.split(".")[0] in BLOCKED:
            del sys.modules[m]
""")


def _core(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    blocked = sorted({m for _, mods in EXTRAS.values() for m in mods})
    prelude = BLOCKER.format(blocked=blocked)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return _core(f"""
        from trucewatch.cli.app import main
        sys.argv = ["trucewatch", *{args!r}]
        main()
    """, cwd)


def test_core_install_ingests_classifies_and_fuses(scenario: ScenarioFiles,
                                                   tmp_path: Path) -> None:
    """Without any extra: store FIRMS and drone inputs, fit and classify the satellite
    channel, locate explosions, fuse evidence into incidents and apply the rules."""
    store = tmp_path / "core.db"
    ingest = _cli(["ingest", *map(str, scenario.reference[:1] + scenario.current),
                   "--store", str(store)], tmp_path)
    assert ingest.returncode == 0, ingest.stderr[-3000:]
    assert "stored" in ingest.stdout
    fused = _core(f"""
        from pathlib import Path
        import polars as pl
        from trucewatch.adjudication.ceasefire import build_view
        from trucewatch.adjudication.rules import RuleBook
        from trucewatch.agreement import load_agreement
        from trucewatch.fusion.evidence import drone_evidence, fire_evidence
        from trucewatch.fusion.incidents import EVIDENCE_SCHEMA, IncidentFuser
        from trucewatch.satellite.baseline import fit_baseline
        from trucewatch.satellite.war_fires import WarFireRules, classify
        from trucewatch.storage import open_store
        import trucewatch.sensors.association
        store = open_store(Path({str(store)!r}))
        agreement = load_agreement(Path({str(scenario.agreement)!r}))
        from trucewatch.ingest.firms import detections as fire_table
        detections = fire_table(store.contract_observations(["satellite_fire"]))
        t0 = agreement.entry_into_force
        years = sorted(set(detections["acq_date"].dt.year().to_list()) - {{t0.year}})
        baseline, _ = fit_baseline(detections, years, None, None)
        current = detections.filter(pl.col("acq_date").dt.year() == t0.year)
        classified = classify(current, baseline, WarFireRules(reset_at=t0.date()))
        full = current.hstack(classified.select("cell", "expected", "p_normal", "war_related",
                                                "reason", "cell_count", "baseline_sensor",
                                                "excess", "fire_class"))
        evidence = pl.concat([fire_evidence(full, since=t0),
                              drone_evidence(store.contract_observations(["drone"]))]
                             ).cast(EVIDENCE_SCHEMA)
        fused, _ = IncidentFuser().fuse(evidence)
        evaluated = RuleBook(agreement, fire_reasons=full.select("id", "reason")).evaluate(fused)
        build_view(full, agreement, baseline)
        print("war-related", int(classified["war_related"].sum()), "incidents", fused.height,
              "candidates", evaluated.height)
        print("loaded", sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))
    """, tmp_path)
    assert fused.returncode == 0, fused.stderr[-3000:]
    assert "loaded []" in fused.stdout
    counts = dict(zip(*[iter(fused.stdout.split()[:6])] * 2, strict=True))
    assert int(counts["war-related"]) > 0 and int(counts["incidents"]) > 0, fused.stdout


@pytest.mark.parametrize(("args", "extra"), [
    (["run", "--out", "OUT"], "pdf"),
    (["serve", "--store", "S.db"], "service"),
    (["allegations", "extract", "Обстріл біля Зайцевого о 03:00"], "nlp"),
])
def test_a_missing_extra_is_one_clear_error_naming_it(tmp_path: Path, args: list[str],
                                                      extra: str) -> None:
    args = [a.replace("OUT", str(tmp_path / "out")).replace("S.db", str(tmp_path / "s.db"))
            for a in args]
    proc = _cli(args, tmp_path)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert f"'{extra}' extra" in proc.stderr and f"trucewatch[{extra}]" in proc.stderr
    assert "Traceback" not in proc.stderr
