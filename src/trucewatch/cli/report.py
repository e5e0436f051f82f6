"""``trucewatch report --store S --date D``: a day's published products from the store."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from trucewatch.cli._common import out


def from_store(store: Path, day: str | None, out_dir: Path, revision: int | None = None,
               *, render: bool = False, pdf: bool = True, agreement: Path | None = None,
               language: str = "en") -> None:
    """Write the products published for ``day`` (latest revision) from ``store``; with
    ``render``, or when no bulletin is published for ``day``, render the day's bulletin
    from the store (reports/basis.py)."""
    from trucewatch.errors import NotFoundError, TrucewatchError
    from trucewatch.reports.archive import products_of, restore
    from trucewatch.storage import open_store

    if not day:
        raise typer.BadParameter("give --date YYYY-MM-DD with --store")
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise typer.BadParameter(f"--date {day!r}: give a date as YYYY-MM-DD") from None
    if not Path(store).exists():
        raise typer.BadParameter(f"--store {store}: no such file")
    db = open_store(store)
    try:
        published = {str(p["name"]) for p in db.products()
                     if p["report_date"] == when.isoformat()}
        has_bulletin = any(n.startswith("bulletin-") and not n.endswith(".json")
                           for n in published)
        if render or not has_bulletin:
            if not render:
                out.print(f"no bulletin published for {when}: rendering it from the store")
            try:
                _render(db, when, out_dir, pdf, agreement, language)
            except TrucewatchError as err:
                if render or published:
                    raise
                try:  # nothing published, nothing to render from: name the days there are
                    products_of(db, when, revision)
                except NotFoundError as none:
                    raise NotFoundError(f"{none.message}, and it cannot be rendered from "
                                        f"the store ({err.message})", fix=none.fix) from err
                raise
            if render or not published:
                return
        products_of(db, when, revision)  # NotFoundError naming the published days
        done = restore(db, when, out_dir, revision)
    finally:
        db.close()
    t = Table("product", "audience", "sha256", "from")
    for r in done:
        t.add_row(r.path.name, str(r.product["audience"]), str(r.product["sha256"])[:16],
                  "store" if r.from_store else "recorded file (now archived)")
    out.print(t)
    out.print(f"{len(done)} product(s) for {when} written to {out_dir}, each checked "
              "against its published SHA-256")


def _render(db: Any, when: date, out_dir: Path, pdf: bool, agreement: Path | None,
            language: str) -> None:
    import time

    from trucewatch.agreement import load_agreement
    from trucewatch.reports.basis import load_basis, render_from_store

    t0 = time.monotonic()
    given = load_agreement(agreement) if agreement else None
    basis = load_basis(db, when)
    if basis is None:
        from trucewatch.pipeline.bulletins import derive_basis

        out.print(f"{when}: no render basis kept (no cycle ran for it): deriving it from "
                  "the stored detections and the worker's baseline artifact")
        basis = derive_basis(db, when, given)
    files = render_from_store(
        db, when, out_dir, basis=basis, agreement=given, pdf=pdf,
        language=language, progress=lambda what: out.print(
            f"[{time.monotonic() - t0:5.1f} s] {what}"))
    t = Table("rendered", "variant")
    for variant, f in files.items():
        for p in (f.html, f.pdf, f.json, f.geojson, f.coverage):
            if p is not None:
                t.add_row(p.name, variant)
    out.print(t)
    out.print(f"bulletin for {when} rendered from the store in "
              f"{time.monotonic() - t0:.1f} s into {out_dir} (not published: the "
              "products clock and the cycle publish)")
