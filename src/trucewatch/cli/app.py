"""``trucewatch`` command line. User errors end in one line that names the fix."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trucewatch.errors import TrucewatchError

app = typer.Typer(help="Ceasefire monitoring and verification.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
satellite = typer.Typer(help="Satellite fire channel (NASA FIRMS).", no_args_is_help=True)
agreement_app = typer.Typer(help="The agreement file.", no_args_is_help=True)
app.add_typer(satellite, name="satellite")
app.add_typer(agreement_app, name="agreement")
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total}"), TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("starting", total=1)

        def update(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=max(total, 1))

        yield update


def _years(text: str) -> list[int]:
    try:
        years = [int(y) for y in text.split(",") if y.strip()]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give years as 2012,2013,2016") from None
    if not years:
        raise typer.BadParameter("give at least one year")
    return years


def _read_all(files: list[Path]) -> Any:
    import polars as pl

    from trucewatch.ingest.firms import read_firms

    batches = [read_firms(f, keep_raw=False) for f in files]
    for b in batches:
        if b.quarantine:
            err.print(f"[yellow]{b.name}: {len(b.quarantine)} invalid row(s) quarantined, "
                      f"first: row {b.quarantine[0].row}: {b.quarantine[0].reason}")
    return batches, pl.concat([b.records for b in batches])


@satellite.command("fit-baseline")
def fit_baseline(
    files: Annotated[list[Path], typer.Argument(help="FIRMS CSV files (plain or .gz)")],
    years: Annotated[str, typer.Option(help="reference years, e.g. 2012,2013,2016")],
    out_path: Annotated[Path, typer.Option("--out", help="baseline file to write (.npz)")],
) -> None:
    """Learn normal fire activity per 0.1 degree cell and day of year."""
    from trucewatch.fusion.baseline import Baseline

    _, records = _read_all(files)
    base = Baseline.fit(records, _years(years))
    base.save(out_path)
    t = Table("sensor", "years", "detections", "dispersion k")
    for s, b in base.sensors.items():
        t.add_row(s, ",".join(map(str, b.years)), f"{b.rows:,}", f"{b.dispersion:.3f}")
    out.print(t)
    out.print(f"baseline written to {out_path}")


@satellite.command("classify")
def classify_cmd(
    files: Annotated[list[Path], typer.Argument(help="FIRMS CSV files (plain or .gz)")],
    baseline: Annotated[Path, typer.Option(help="baseline from fit-baseline")],
    out_path: Annotated[Path, typer.Option("--out", help="CSV to write")],
    p_threshold: Annotated[float, typer.Option(help="excess if P(count) below this")] = 0.01,
    min_confirmations: Annotated[int, typer.Option(help="nearby excess cell-days needed")] = 20,
    confirm_radius_km: Annotated[float, typer.Option(help="confirmation radius")] = 20.0,
    carry_days: Annotated[int, typer.Option(help="carry-over window after an excess")] = 10,
) -> None:
    """Flag war-related fires: one output row per input detection."""
    import polars as pl

    from trucewatch.fusion.baseline import Baseline
    from trucewatch.fusion.war_fires import OUTPUT_COLUMNS, WarFireRules, classify

    base = Baseline.load(baseline)
    batches, records = _read_all(files)
    rules = WarFireRules(p_threshold=p_threshold, min_confirmations=min_confirmations,
                         confirm_radius_km=confirm_radius_km, carry_days=carry_days)
    result = classify(records, base, rules)
    result.select(OUTPUT_COLUMNS).with_columns(pl.col("acq_date").cast(pl.Utf8)).write_csv(
        out_path)
    n_war = int(result["war_related"].sum())
    quarantined = sum(len(b.quarantine) for b in batches)
    out.print(f"{result.height:,} detections classified, {n_war:,} war-related "
              f"({n_war / max(result.height, 1):.1%}); {quarantined} row(s) quarantined; "
              f"written to {out_path}")


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


@app.command("ingest")
def ingest(files: Annotated[list[Path], typer.Argument(help="input files")],
           store: Annotated[Path, typer.Option(help="SQLite store")] = Path("trucewatch.db"),
           ) -> None:
    """Store raw inputs and their observations; invalid rows go to quarantine."""
    from trucewatch.ingest.base import adapter_for, read_raw
    from trucewatch.storage import SqliteStore

    db = SqliteStore(store)
    t = Table("file", "rows", "new", "duplicates", "quarantined", "note")
    with _progress() as progress:
        for k, f in enumerate(files):
            progress(f"ingest {f.name}", k, len(files))
            raw = read_raw(f)
            r = db.ingest(adapter_for(raw, f.name).parse(raw, f.name))
            t.add_row(f.name, str(r.rows), str(r.new), str(r.duplicates), str(r.quarantined),
                      "already ingested: nothing changed" if r.already_ingested else "")
    out.print(t)
    db.close()


@app.command("quarantine")
def quarantine(store: Annotated[Path, typer.Option(help="SQLite store")] = Path(
        "trucewatch.db")) -> None:
    """List quarantined input rows with their reasons."""
    from trucewatch.storage import SqliteStore

    t = Table("row", "reason", "raw")
    for q in SqliteStore(store).quarantine():
        t.add_row(str(q.row), q.reason, q.raw[:80])
    out.print(t)


@app.command("run")
def run(
    out_dir: Annotated[Path, typer.Option("--out", help="output folder")] = Path("out"),
    agreement: Annotated[Path | None, typer.Option(help="agreement YAML (default: "
                                                   "the built-in scenario)")] = None,
    firms: Annotated[list[Path] | None, typer.Option(help="FIRMS files")] = None,
    years: Annotated[str, typer.Option(help="reference years")] = "2023,2024,2025",
    cloud: Annotated[Path | None, typer.Option(help="CSV date,cloud_cover")] = None,
    report_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    pdf: Annotated[bool, typer.Option(help="also write PDFs")] = True,
) -> None:
    """Run a full verification cycle and write the bulletin (built-in scenario by default)."""
    from trucewatch.pipeline import run_cycle

    if agreement is None:
        from trucewatch.scenario import generate

        files = generate(out_dir / "scenario")
        agreement, firms, cloud = files.agreement, [*files.reference, *files.current], \
            files.coverage
        err.print(f"built-in scenario generated in {files.root}")
    if not firms:
        raise typer.BadParameter("give --firms files with --agreement")
    day = date.fromisoformat(report_date) if report_date else None
    with _progress() as progress:
        result = run_cycle(agreement_path=agreement, firms_files=firms,
                           reference_years=_years(years), out_dir=out_dir, report_date=day,
                           cloud_path=cloud, pdf=pdf, progress=progress)
    v = result.view
    out.print(f"{len(v.incidents)} incident(s) since entry into force, "
              f"{len(v.violations)} candidate violation(s)")
    for variant, b in result.bulletins.items():
        out.print(f"{variant} bulletin: {b.pdf or b.html}")
    out.print(f"restricted bulletin (HTML): {result.bulletins['restricted'].html}")
    out.print(f"store: {result.store_path}")


@app.command("report")
def report(
    agreement: Annotated[Path, typer.Option(help="agreement YAML")],
    firms: Annotated[list[Path], typer.Option(help="FIRMS files")],
    years: Annotated[str, typer.Option(help="reference years")],
    out_dir: Annotated[Path, typer.Option("--out", help="output folder")] = Path("out"),
    report_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
) -> None:
    """Write the bulletin for one day (same as run, with explicit inputs)."""
    run(out_dir=out_dir, agreement=agreement, firms=firms, years=years, cloud=None,
        report_date=report_date, pdf=True)


def main() -> None:
    try:
        app()
    except TrucewatchError as e:
        err.print(f"[red]error:[/] {e.one_line()}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
