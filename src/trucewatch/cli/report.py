"""``trucewatch report --store S --date D``: a day's published products from the store."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

out = Console()


def from_store(store: Path, day: str | None, out_dir: Path, revision: int | None = None
               ) -> None:
    """Write the products published for ``day`` (latest revision) from ``store``."""
    from trucewatch.reports.archive import restore
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
