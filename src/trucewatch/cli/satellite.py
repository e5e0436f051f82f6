"""Satellite fire channel commands (NASA FIRMS): fit a baseline, classify."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from trucewatch.cli._common import (
    LookaheadOpt,
    SensorOpt,
    baseline_params,
    err,
    out,
    parse_years,
)

satellite = typer.Typer(help="Satellite fire channel (NASA FIRMS).", no_args_is_help=True)


def _read_all(files: list[Path], sensors: list[str] | None = None) -> Any:
    import polars as pl

    from trucewatch.ingest.firms import FirmsFilter, read_firms

    flt = FirmsFilter(tuple(sensors or ()))
    flt.check()  # the same check as `run --sensor`
    batches = [read_firms(f, keep_raw=False) for f in files]
    for b in batches:
        if b.quarantine:
            err.print(f"[yellow]{b.name}: {len(b.quarantine)} invalid row(s) quarantined, "
                      f"first: row {b.quarantine[0].row}: {b.quarantine[0].reason}")
    records = flt.apply(pl.concat([b.records for b in batches]))
    if sensors and records.height == 0:
        raise typer.BadParameter(f"no detections of {', '.join(sensors)} in the files")
    return batches, records


@satellite.command("fit-baseline")
def fit_baseline(
    files: Annotated[list[Path], typer.Argument(help="FIRMS CSV files (plain or .gz)")],
    out_path: Annotated[Path, typer.Option("--out", help="baseline file to write (.npz)")],
    years: Annotated[str | None, typer.Option(
        help="reference years, e.g. 2012,2013,2016 (default: every year in the files)")] = None,
    covariates: Annotated[Path | None, typer.Option(
        help="land-use/population covariate folder (default: $TRUCEWATCH_COVARIATES, else "
             "../shared/data/covariates-ukraine-0p1deg-gianman89 when present)")] = None,
    no_covariates: Annotated[bool, typer.Option(
        "--no-covariates", help="fit from the fires alone (no learned expectation)")] = False,
    sensor: SensorOpt = None,
    min_rows_per_year: Annotated[int | None, typer.Option(
        help="a sensor's reference year needs this many detections (default 2000)")] = None,
    window_days: Annotated[int | None, typer.Option(help="day-of-year smoothing (+-days)")
                           ] = None,
    upper_quantile: Annotated[float | None, typer.Option(
        help="normal-year upper count quantile (default 0.95)")] = None,
    crop_share: Annotated[float | None, typer.Option(
        help="a crop cell has at least this crop share (default 0.5)")] = None,
) -> None:
    """Learn normal fire activity per 0.1 degree cell and day of year (and what the
    landscape explains: crops, the crop-fire season, persistent sources)."""
    from trucewatch.satellite.baseline import fit_baseline as fit
    from trucewatch.satellite.covariates import find_covariates

    params = baseline_params(min_rows_per_year=min_rows_per_year, window_days=window_days,
                              upper_quantile=upper_quantile, crop_share=crop_share)
    cov = None if no_covariates else find_covariates(covariates)
    _, records = _read_all(files, sensor)
    ref_years = parse_years(years) if years else sorted(
        set(records["acq_date"].dt.year().unique().to_list()))
    base, note = fit(records, ref_years, params, cov, required=covariates is not None)
    base.save(out_path)
    t = Table("sensor", "years", "detections", "dispersion k", "learned")
    for s, b in base.sensors.items():
        t.add_row(s, ",".join(map(str, b.years)), f"{b.rows:,}", f"{b.dispersion:.3f}",
                  "yes" if b.learned else "no")
    out.print(t)
    out.print(note)
    out.print(f"baseline written to {out_path}")


@satellite.command("classify")
def classify_cmd(
    files: Annotated[list[Path], typer.Argument(help="FIRMS CSV files (plain or .gz)")],
    baseline: Annotated[Path, typer.Option(help="baseline from fit-baseline")],
    out_path: Annotated[Path, typer.Option("--out", help="CSV to write")],
    p_threshold: Annotated[float, typer.Option(help="excess needs P(count) below this")] = 0.01,
    offset: Annotated[float, typer.Option(help="surplus = count - upper - offset")] = 2.0,
    min_confirmations: Annotated[int, typer.Option(
        help="days with excess in reach, in the confirm window before")] = 8,
    confirm_radius_km: Annotated[float, typer.Option(help="confirmation radius")] = 12.0,
    confirm_days: Annotated[int, typer.Option(help="confirmation window (days before)")] = 30,
    carry_days: Annotated[int, typer.Option(help="carry-over window after an excess")] = 10,
    lookahead_days: LookaheadOpt = 0,
    sensor: SensorOpt = None,
) -> None:
    """Classify every detection: war_related, agricultural, wildfire, industrial or normal,
    with its reason (one output row per valid input detection)."""
    import polars as pl

    from trucewatch.satellite.baseline import Baseline
    from trucewatch.satellite.war_fires import OUTPUT_COLUMNS, WarFireRules, classify

    base = Baseline.load(baseline)
    batches, records = _read_all(files, sensor)
    rules = WarFireRules(p_threshold=p_threshold, offset=offset,
                         min_confirmations=min_confirmations,
                         confirm_radius_km=confirm_radius_km, confirm_days=confirm_days,
                         carry_days=carry_days, lookahead_days=lookahead_days)
    result = classify(records, base, rules)
    result.select(OUTPUT_COLUMNS).with_columns(pl.col("acq_date").cast(pl.Utf8)).write_csv(
        out_path)
    n_war = int(result["war_related"].sum())
    quarantined = sum(len(b.quarantine) for b in batches)
    classes = result["fire_class"].value_counts().sort("count", descending=True)
    out.print(f"{result.height:,} detections classified, {n_war:,} war-related "
              f"({n_war / max(result.height, 1):.1%}); "
              + ", ".join(f"{c} {k:,}" for c, k in classes.iter_rows())
              + f"; {quarantined} row(s) quarantined; written to {out_path}")
