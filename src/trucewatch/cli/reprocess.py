"""Reprocessing years of archive on a Dask cluster (identical to one process)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trucewatch.cli._common import (
    LookaheadOpt,
    SensorOpt,
    err,
    out,
    parse_years,
    progress_bar,
)


def reprocess(
    files: Annotated[list[Path], typer.Argument(help="FIRMS CSV files (plain or .gz)")],
    out_path: Annotated[Path, typer.Option("--out", help="CSV to write (classify's columns)")],
    baseline: Annotated[Path | None, typer.Option(
        help="baseline from fit-baseline; without it, one is fitted on --years")] = None,
    years: Annotated[str | None, typer.Option(
        help="reference years to fit the baseline on (2012,2013,2016)")] = None,
    classify_years: Annotated[str | None, typer.Option(
        "--classify-years", help="only classify these years (default: every other year)")
                              ] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="a Dask scheduler (tcp://host:8786); default: a LocalCluster on this machine")
                         ] = None,
    workers: Annotated[int, typer.Option(help="LocalCluster worker processes")] = 2,
    tile_cells: Annotated[int, typer.Option(help="tile side in 0.1 degree cells")] = 20,
    block_days: Annotated[int, typer.Option(help="days per block")] = 366,
    lookahead_days: LookaheadOpt = 0,
    sensor: SensorOpt = None,
    no_covariates: Annotated[bool, typer.Option(
        "--no-covariates", help="fit without land-use covariates")] = False,
) -> None:
    """Classify years of FIRMS archive on Dask, partitioned by tile x block of days (each
    sent with the halo of cells and days the classifier reaches), with results identical to
    `trucewatch satellite classify` in one process."""
    import polars as pl

    from trucewatch.cli.satellite import _read_all
    from trucewatch.satellite.baseline import Baseline, fit_baseline
    from trucewatch.satellite.covariates import find_covariates
    from trucewatch.satellite.war_fires import OUTPUT_COLUMNS, WarFireRules
    from trucewatch.scale.reprocess import Partitioning, Reprocessor

    if baseline is None and not years:
        raise typer.BadParameter("give --baseline B.npz, or --years to fit one")
    _, records = _read_all(files, sensor)
    ref = parse_years(years) if years else []
    if baseline is not None:
        base = Baseline.load(baseline)
    else:
        cov = None if no_covariates else find_covariates(None)
        base, note = fit_baseline(records, ref, None, cov, required=False)
        err.print(f"baseline fitted on {', '.join(map(str, ref))}; {note}")
    chosen = parse_years(classify_years) if classify_years else None
    current = records.filter(pl.col("acq_date").dt.year().is_in(chosen) if chosen
                             else ~pl.col("acq_date").dt.year().is_in(ref))
    engine = Reprocessor(WarFireRules(lookahead_days=lookahead_days),
                         Partitioning(tile_cells, block_days), scheduler, workers)
    with progress_bar() as progress:
        result = engine.classify(current, base, progress)
    result.select(OUTPUT_COLUMNS).with_columns(pl.col("acq_date").cast(pl.Utf8)).write_csv(
        out_path)
    n_war = int(result["war_related"].sum())
    out.print(f"{result.height:,} detections classified on Dask, {n_war:,} war-related; "
              f"written to {out_path}")
