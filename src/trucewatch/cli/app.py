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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trucewatch.errors import TrucewatchError

app = typer.Typer(help="Ceasefire monitoring and verification.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
satellite = typer.Typer(help="Satellite fire channel (NASA FIRMS).", no_args_is_help=True)
agreement_app = typer.Typer(help="The agreement file.", no_args_is_help=True)
app.add_typer(satellite, name="satellite")
app.add_typer(agreement_app, name="agreement")
sensors_app = typer.Typer(help="Ground sensor network: locate explosions.", no_args_is_help=True)
app.add_typer(sensors_app, name="sensors")
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


def _date(text: str | None, option: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{option} {text!r}: give a date as YYYY-MM-DD") from None


def _baseline_params(**given: Any) -> Any:
    """BaselineParams with the options given (None: the default); None when none given."""
    from dataclasses import fields, replace

    from trucewatch.fusion.baseline import BaselineParams

    chosen = {k: v for k, v in given.items() if v is not None}
    if not chosen:
        return None
    known = {f.name for f in fields(BaselineParams)}
    return replace(BaselineParams(), **{k: v for k, v in chosen.items() if k in known})


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
    sensor: Annotated[list[str] | None, typer.Option(
        help="use only this sensor id (repeatable), e.g. VIIRS_SNPP_SP")] = None,
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
    from trucewatch.fusion.baseline import fit_baseline as fit
    from trucewatch.fusion.covariates import find_covariates

    params = _baseline_params(min_rows_per_year=min_rows_per_year, window_days=window_days,
                              upper_quantile=upper_quantile, crop_share=crop_share)
    cov = None if no_covariates else find_covariates(covariates)
    _, records = _read_all(files, sensor)
    ref_years = _years(years) if years else sorted(
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
    lookahead_days: Annotated[int, typer.Option(
        help="revision tier: also confirm by what was seen this many days after (0: causal)")
                              ] = 0,
    sensor: Annotated[list[str] | None, typer.Option(
        help="use only this sensor id (repeatable)")] = None,
) -> None:
    """Classify every detection: war_related, agricultural, wildfire, industrial or normal,
    with its reason (one output row per valid input detection)."""
    import polars as pl

    from trucewatch.fusion.baseline import Baseline
    from trucewatch.fusion.war_fires import OUTPUT_COLUMNS, WarFireRules, classify

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


def receive_files(files: list[Path], store: Path, keys: Path | None,
                  source: Any = None) -> None:
    """Receive each file (signature policy, parsing, storage) and print one row per file.
    ``source``: the adapter to use; None recognises each file (inside its envelope)."""
    from trucewatch.ingest.base import read_received, unpack
    from trucewatch.intake import receive
    from trucewatch.intake.sources import adapter_for_input
    from trucewatch.integrity.envelope import is_envelope, open_envelope
    from trucewatch.integrity.keys import KeyRegistry
    from trucewatch.storage import open_store

    db = open_store(store)
    registry = KeyRegistry.load(keys) if keys else KeyRegistry()
    if keys:  # the registry that admitted these signatures is evidence too
        from trucewatch.intake.sources import ConfigSource

        receive(db, read_received(keys), keys.name, ConfigSource("keys"))
    t = Table("file", "rows", "new", "duplicates", "quarantined", "signed by", "outcome")
    with _progress() as progress:
        for k, f in enumerate(files):
            progress(f"ingest {f.name}", k, len(files))
            raw = read_received(f)  # kept as received: a gzip file stays gzip
            adapter = source
            if adapter is None:
                try:
                    payload = unpack(raw, f.name)
                    if is_envelope(payload):
                        payload = unpack(open_envelope(payload).payload, f.name)
                except TrucewatchError:
                    payload = raw  # receive() refuses it with the reason
                try:
                    adapter = adapter_for_input(db, payload, f.name)
                except TrucewatchError as bad:  # kept and refused, like any other input
                    db.refuse(raw, f.name, "unknown", bad.message)
                    t.add_row(f.name, "0", "0", "0", "0", "-", f"[red]refused[/]: {bad.message}")
                    continue
            o = receive(db, raw, f.name, adapter, registry=registry)
            r = o.report
            outcome = (f"[red]refused[/]: {o.refused}" if o.refused else
                       "already ingested: nothing changed" if r and r.already_ingested
                       else "stored")
            t.add_row(f.name, str(r.rows if r else 0), str(r.new if r else 0),
                      str(r.duplicates if r else 0), str(len(o.quarantined)),
                      o.signed_by or "-", outcome)
            for q in o.quarantined[:5]:
                err.print(f"  {f.name}: entry {q.row} quarantined: {q.reason}")
    out.print(t)
    db.close()


@app.command("ingest")
def ingest(files: Annotated[list[Path], typer.Argument(help="input files")],
           store: Annotated[Path, typer.Option(help="SQLite store")] = Path("trucewatch.db"),
           keys: Annotated[Path | None, typer.Option(help="key registry for signed "
                                                     "submissions")] = None,
           ) -> None:
    """Store raw inputs and their observations; invalid rows go to quarantine, refused
    submissions (bad signature, replay...) are kept with their reason."""
    receive_files(files, store, keys)


@app.command("quarantine")
def quarantine(store: Annotated[Path, typer.Option(help="SQLite store")] = Path(
        "trucewatch.db")) -> None:
    """List quarantined input rows with their reasons."""
    from trucewatch.storage import open_store

    t = Table("row", "reason", "raw")
    for q in open_store(store).quarantine():
        t.add_row(str(q.row), q.reason, q.raw[:80])
    out.print(t)


@app.command("run")
def run(
    out_dir: Annotated[Path, typer.Option("--out", help="output folder")] = Path("out"),
    agreement: Annotated[Path | None, typer.Option(help="agreement YAML (default: "
                                                   "the built-in scenario)")] = None,
    firms: Annotated[list[Path] | None, typer.Option(help="FIRMS files")] = None,
    years: Annotated[str | None, typer.Option(help="reference years, e.g. 2019,2020,2021 "
                                              "(default: the FIRMS years before the entry-"
                                              "into-force year)")] = None,
    cloud: Annotated[Path | None, typer.Option(help="CSV date,cloud_cover")] = None,
    report_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD: the cycle uses only "
                                                    "data up to this day's end (default: "
                                                    "the last data)")] = None,
    pdf: Annotated[bool, typer.Option(help="also write PDFs")] = True,
    stations: Annotated[Path | None, typer.Option(help="ground-sensor station inventory")] = None,
    detections: Annotated[list[Path] | None, typer.Option(help="ground-sensor detections")
                          ] = None,
    drones: Annotated[list[Path] | None, typer.Option(help="drone report documents (signed "
                                                      "envelopes or plain)")] = None,
    allegations: Annotated[list[Path] | None, typer.Option(help="allegation documents")] = None,
    keys: Annotated[Path | None, typer.Option(help="key registry (JSON/YAML)")] = None,
    accept_unsigned_sensors: Annotated[bool, typer.Option(
        "--accept-unsigned-sensors", help="use unsigned station inventories and detections "
        "(a laboratory network; by default they are kept but quarantined)")] = False,
    store: Annotated[str | None, typer.Option(help="store: a SQLite file (default "
                                              "OUT/trucewatch.db) or a postgresql:// URL")
                     ] = None,
    sensor: Annotated[list[str] | None, typer.Option(
        help="use only this FIRMS sensor id (repeatable), e.g. VIIRS_SNPP_SP")] = None,
    since: Annotated[str | None, typer.Option(help="use FIRMS detections from this date "
                                              "(YYYY-MM-DD)")] = None,
    until: Annotated[str | None, typer.Option(help="use FIRMS detections up to this date "
                                              "(YYYY-MM-DD)")] = None,
    min_rows_per_year: Annotated[int | None, typer.Option(
        help="baseline: a sensor's reference year needs this many detections")] = None,
    window_days: Annotated[int | None, typer.Option(
        help="baseline: day-of-year smoothing window")] = None,
    covariates: Annotated[Path | None, typer.Option(
        help="land-use covariate folder for the satellite classifier (default with "
             "--agreement: $TRUCEWATCH_COVARIATES, else the data share's when present)")] = None,
    no_covariates: Annotated[bool, typer.Option(
        "--no-covariates", help="classify fires without land-use covariates")] = False,
    language: Annotated[str, typer.Option(help="bulletin language: en, uk, ru or fr")] = "en",
) -> None:
    """Run a full verification cycle and write the bulletin (built-in scenario by default).
    Everything is stored, but the bulletin for --report-date uses only data up to its end;
    a re-run that would change a published bulletin writes a revision (.rev2) instead."""
    from trucewatch.ingest.firms import FirmsFilter
    from trucewatch.pipeline import FieldInputs, SensorInputs, run_cycle

    field_inputs = FieldInputs(drones=list(drones or []), allegations=list(allegations or []),
                               keys=keys)
    review = None
    builtin = agreement is None
    if agreement is None:
        from trucewatch.scenario import generate
        from trucewatch.scenario.multisource import apply_review

        files = generate(out_dir / "scenario")
        agreement, firms, cloud = files.agreement, [*files.reference, *files.current], \
            files.coverage
        if files.stations and files.detections and not stations:
            stations, detections = files.stations, [files.detections]
        if not drones and not allegations:
            field_inputs = FieldInputs(drones=files.drones, allegations=files.allegations,
                                       keys=files.keys)
            review = apply_review
        err.print(f"built-in scenario generated in {files.root}")
    if not firms:
        raise typer.BadParameter("give --firms files with --agreement")
    day = _date(report_date, "--report-date")
    from trucewatch.fusion.covariates import find_covariates

    # the built-in scenario's world is synthetic: real land use would not describe it
    cov = None if no_covariates or (builtin and covariates is None) \
        else find_covariates(covariates)
    flt = FirmsFilter(tuple(sensor or ()), _date(since, "--since"), _date(until, "--until"))
    params = _baseline_params(min_rows_per_year=min_rows_per_year, window_days=window_days)
    with _progress() as progress:
        from trucewatch.integrity.envelope import SourcePolicy

        sensors = SensorInputs(stations, detections, policy=SourcePolicy.OPTIONAL
                               if accept_unsigned_sensors else None) \
            if stations and detections else None
        result = run_cycle(agreement_path=agreement, firms_files=firms,
                           reference_years=_years(years) if years else None, out_dir=out_dir,
                           report_date=day, cloud_path=cloud, pdf=pdf, progress=progress,
                           sensors=sensors, field_inputs=field_inputs, review=review,
                           store_path=store, firms_filter=flt, baseline_params=params,
                           covariates=cov, covariates_required=covariates is not None,
                           language=language)
    v = result.view
    out.print(f"{len(v.incidents)} incident(s) since entry into force, "
              f"{len(v.violations)} candidate violation(s)")
    for o in result.submissions:
        if o.refused:
            err.print(f"[yellow]refused[/] {o.name}: {o.refused}")
    if result.rulings:
        from collections import Counter

        kinds = Counter(r["ruling"] for r in result.rulings)
        out.print("allegation rulings: " + ", ".join(f"{k} {n}" for k, n in sorted(
            kinds.items())))
    if result.review_log:
        out.print(f"scripted review of the built-in scenario: {len(result.review_log)} "
                  "action(s) by two analysts")
    for variant, b in result.bulletins.items():
        out.print(f"{variant} bulletin: {b.pdf or b.html}")
    out.print(f"restricted bulletin (HTML): {result.bulletins['restricted'].html}")
    out.print(f"store: {result.store_path}")


@sensors_app.command("locate")
def sensors_locate(
    stations: Annotated[Path, typer.Argument(help="station inventory: CSV, JSON or StationXML")],
    detections: Annotated[Path, typer.Argument(help="detections CSV")],
    out_path: Annotated[Path, typer.Option("--out", help="EVENTS.csv to write")],
    assignments: Annotated[Path, typer.Option("--assignments", help="ASSIGN.csv to write")],
    temperature: Annotated[float, typer.Option(help="air temperature, degC")] = 15.0,
    wind_east: Annotated[float, typer.Option(help="wind towards east, m/s")] = 0.0,
    wind_north: Annotated[float, typer.Option(help="wind towards north, m/s")] = 0.0,
    vp: Annotated[float, typer.Option(help="P velocity, km/s (homogeneous)")] = 6.0,
    vs: Annotated[float, typer.Option(help="S velocity, km/s (homogeneous)")] = 3.46,
    layers: Annotated[Path | None, typer.Option(
        help="1-D model CSV: thickness_km,vp,vs per layer, top down (last = half-space)")] = None,
    min_stations: Annotated[int, typer.Option(help="defining stations for a location")] = 4,
    tolerance: Annotated[float, typer.Option(help="accepted misfit per detection, s")] = 0.2,
    pick_sigma: Annotated[float, typer.Option(help="1-sigma onset error, s")] = 0.1,
    max_distance: Annotated[float, typer.Option(help="max source-station distance, km")] = 40.0,
    quakeml: Annotated[Path | None, typer.Option(help="also write QuakeML here")] = None,
    quarantine_out: Annotated[Path | None, typer.Option(
        "--quarantine", help="write quarantined detections (line, reason, raw) here")] = None,
) -> None:
    """Associate detections into located explosions (see docs/sensors.md)."""
    from trucewatch.fusion.association import ExplosionAssociator
    from trucewatch.fusion.propagation import AcousticModel, Propagation, SeismicModel
    from trucewatch.fusion.sensor_events import locate_files, to_quakeml
    from trucewatch.ingest.sensors import read_detections, read_stations

    seismic = _layers(layers) if layers else SeismicModel.homogeneous(vp, vs)
    prop = Propagation(AcousticModel(temperature, wind_east, wind_north), seismic)
    associator = ExplosionAssociator(propagation=prop, min_stations=min_stations,
                                     tolerance_s=tolerance, pick_sigma_s=pick_sigma,
                                     max_distance_km=max_distance)
    table = read_stations(stations)
    batch = read_detections(detections, table)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("associating detections", total=max(1, batch.records.height))
        result = locate_files(table, batch, associator,
                              progress=lambda done, n: bar.update(task, completed=done, total=n))
    result.write(out_path, assignments)
    if quakeml:
        to_quakeml(result.association.events, quakeml)
    if quarantine_out:
        import polars as pl
        pl.DataFrame({"line": [q.row for q in batch.quarantine],
                      "reason": [q.reason for q in batch.quarantine],
                      "raw": [q.raw for q in batch.quarantine]},
                     schema={"line": pl.Int64, "reason": pl.String, "raw": pl.String}
                     ).write_csv(quarantine_out)
    ev = result.association.events
    n_loc = int((ev["status"] == "located").sum())
    n_assoc = int(result.association.assignments["event_id"].is_not_null().sum())
    out.print(f"{n_loc} located explosion(s), {ev.height - n_loc} not locatable; "
              f"{n_assoc} of {batch.n_rows} detections associated, "
              f"{len(batch.quarantine)} quarantined")
    for q in batch.quarantine[:5]:
        err.print(f"  quarantined line {q.row}: {q.reason}")
    if len(batch.quarantine) > 5:
        err.print(f"  ... and {len(batch.quarantine) - 5} more (--quarantine FILE lists all)")
    out.print(f"events: {out_path}\nassignments: {assignments}")


def _layers(path: Path) -> Any:
    import polars as pl

    from trucewatch.fusion.propagation import Layer, SeismicModel

    try:
        t = pl.read_csv(path)
        rows = [Layer(float(r["thickness_km"]) if r["thickness_km"] not in (None, "")
                      else float("inf"), float(r["vp"]), float(r["vs"]))
                for r in t.iter_rows(named=True)]
    except (pl.exceptions.PolarsError, KeyError, ValueError, TypeError) as e:
        raise typer.BadParameter(f"{path}: expected columns thickness_km,vp,vs ({e})") from e
    rows[-1] = Layer(float("inf"), rows[-1].vp, rows[-1].vs)
    return SeismicModel(tuple(rows))


@sensors_app.command("simulate")
def sensors_simulate(
    out_dir: Annotated[Path, typer.Argument(help="folder for stations.csv, detections.csv, "
                                            "events.csv and truth.csv")],
    preset: Annotated[str, typer.Option(help="quiet, moderate or barrage")] = "moderate",
    hours: Annotated[float, typer.Option(help="duration")] = 24.0,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
) -> None:
    """Generate a ground-sensor scenario with ground truth."""
    from dataclasses import replace

    from trucewatch.scenario.sensors import PRESETS, generate

    if preset not in PRESETS:
        raise typer.BadParameter(f"unknown preset {preset!r}; use {', '.join(PRESETS)}")
    sc = replace(PRESETS[preset], duration_h=hours)
    if seed is not None:
        sc = replace(sc, seed=seed)
    data = generate(sc)
    paths = data.write(out_dir)
    out.print(f"{data.stations.height} stations, {data.events.height} explosions, "
              f"{data.detections.height} detections: {paths['detections'].parent}")


@app.command("report")
def report(
    agreement: Annotated[Path, typer.Option(help="agreement YAML")],
    firms: Annotated[list[Path], typer.Option(help="FIRMS files")],
    years: Annotated[str, typer.Option(help="reference years")],
    out_dir: Annotated[Path, typer.Option("--out", help="output folder")] = Path("out"),
    report_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    language: Annotated[str, typer.Option(help="bulletin language: en, uk, ru or fr")] = "en",
) -> None:
    """Write the bulletin for one day (same as run, with explicit inputs)."""
    run(out_dir=out_dir, agreement=agreement, firms=firms, years=years, cloud=None,
        report_date=report_date, pdf=True, language=language)


def main() -> None:
    import trucewatch.cli.field  # noqa: F401  (registers its commands on app)

    try:
        app()
    except TrucewatchError as e:
        err.print(f"[red]error:[/] {e.one_line()}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
