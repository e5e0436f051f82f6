"""The store's concerns as protocols (storage.protocols): the facade offers each one, and
the API, review, reports, intake and pipeline modules type against the narrowest they
use. Only what holds the store for every concern names ``FullStore``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from trucewatch.storage import open_store
from trucewatch.storage import protocols as p

SRC = Path(__file__).resolve().parents[1] / "src" / "trucewatch"
PACKAGES = ("api", "review", "reports", "pipeline", "intake")
# (module, the function or class whose annotation names FullStore): each holds the store
# for every concern, or is left for a reason
ALLOWED = {
    ("api/deps.py", "get_store"),  # opens the facade for a request
    ("api/deps.py", "<module>"),  # StoreDep: the dependency every route takes
    ("pipeline/stages.py", "CycleContext"),  # every stage reads its store
    ("pipeline/stages.py", "coverage_of"),  # kept: the worker's branch edits its callers
    ("pipeline/config.py", "<module>"),  # the scripted review is handed the cycle's store
    ("pipeline/worker.py", "*"),  # one pass reads and writes every concern
    ("reports/tiers.py", "*"),  # the products clock: incidents, products, evidence, log
    ("intake/firms_poll.py", "*"),  # the poller's state (evidence and the log)
    # merged this stop from a branch written before the narrow protocols; to narrow next
    ("pipeline/bulletins.py", "*"),  # the render basis: evidence, incidents, products, log
    ("reports/basis.py", "*"),  # the bulletin from the store: every concern it renders
}


def _uses(path: Path) -> set[str]:
    """The functions / classes of ``path`` with an annotation naming FullStore."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def names(node: ast.AST | None) -> bool:
        return node is not None and "FullStore" in ast.unparse(node)

    for top in ast.walk(tree):
        if isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef):
            args = [*top.args.args, *top.args.kwonlyargs, *top.args.posonlyargs]
            if any(names(a.annotation) for a in args) or names(top.returns):
                found.add(top.name)
        elif isinstance(top, ast.ClassDef) and any(
                isinstance(b, ast.AnnAssign) and names(b.annotation) for b in top.body):
            found.add(top.name)
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign | ast.AnnAssign) and "FullStore" in ast.unparse(stmt):
            found.add("<module>")
    return found


def test_modules_type_against_the_narrowest_protocol() -> None:
    wide = {(str(f.relative_to(SRC)), name) for pkg in PACKAGES
            for f in sorted((SRC / pkg).rglob("*.py")) for name in _uses(f)}
    assert wide, "no module names FullStore: the scan finds nothing"
    extra = {(m, n) for m, n in wide if (m, n) not in ALLOWED and (m, "*") not in ALLOWED}
    assert not extra, ("these type against FullStore though they use fewer concerns; "
                       f"use the narrowest protocol of storage.protocols: {sorted(extra)}")


@pytest.mark.parametrize("proto", [p.EvidenceStore, p.ObservationStore, p.IncidentStore,
                                   p.ReviewStore, p.PrincipalStore, p.ProductStore,
                                   p.ArchiveStore, p.ReviewDeskStore])
def test_the_facade_offers_every_concern(proto: type, tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    try:
        assert isinstance(store, proto)
    finally:
        store.close()


def test_one_concern_is_not_another() -> None:
    from trucewatch.storage.database import Database
    from trucewatch.storage.repositories.principals import PrincipalRepository

    repo = PrincipalRepository(Database(":memory:"))
    assert isinstance(repo, p.PrincipalStore) and isinstance(repo, p.TokenStore)
    assert not isinstance(repo, p.IncidentStore)
