"""The agreement file: check it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from trucewatch.cli._common import (
    err,
    out,
)

agreement_app = typer.Typer(help="The agreement file.", no_args_is_help=True)


@agreement_app.command("check")
def agreement_check(file: Annotated[Path, typer.Argument(help="agreement YAML")]) -> None:
    """Report zone areas and every problem of an agreement file."""
    from trucewatch.agreement import check_agreement

    report = check_agreement(file)
    for w in report.warnings:
        out.print(f"[yellow]warning:[/] {w}")
    if not report.ok:
        for e in report.errors:
            err.print(f"[red]problem:[/] {e}")
        err.print(f"{file}: {len(report.errors)} problem(s); fix them and run the check again")
        raise typer.Exit(1)
    a = report.agreement
    assert a is not None
    t = Table("zone", "kind", "side", "area km²")
    for z in a.zones:
        t.add_row(z.id, z.kind.value, z.side or "-", f"{z.area_km2:,.1f}")
    out.print(t)
    out.print(f"{file}: OK; entry into force {a.entry_into_force:%Y-%m-%d %H:%M}Z, "
              f"{len(a.sectors)} sectors, {len(a.protected_sites)} protected sites, CRS {a.crs}")
