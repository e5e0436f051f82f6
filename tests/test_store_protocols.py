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
    stale = {(m, n) for m, n in ALLOWED if (m, n) not in wide}
    assert not stale, f"allowed but no longer naming FullStore (shrink ALLOWED): {stale}"


@pytest.mark.parametrize("proto", [p.EvidenceStore, p.ObservationStore, p.IncidentStore,
                                   p.ReviewStore, p.PrincipalStore, p.ProductStore,
                                   p.AtomicStore, p.ArchiveStore, p.DecidedStore,
                                   p.ReviewDeskStore, p.SourcesStore, p.BulletinStore,
                                   p.ClockStore, p.PassStore])
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


def test_a_worker_pass_and_the_clock_are_not_every_concern() -> None:
    """The narrow unions leave out what their modules never touch: a worker pass holds
    no tokens or products, a derived basis writes nothing."""
    def names(proto: type) -> set[str]:
        return {n for c in proto.__mro__ if c not in (object,) and c.__module__ == p.__name__
                for n in vars(c) if not n.startswith("_")}

    assert "add_token" not in names(p.PassStore) and "publish_product" not in names(
        p.PassStore)
    assert {"atomic", "save_incidents", "contract_observations"} <= names(p.PassStore)
    assert "save_incidents" not in names(p.SourcesStore)
    assert "publish_product" in names(p.ClockStore) and "close" not in names(p.ClockStore)
