"""The verification cycle: run it (built-in scenario or real data) and report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trucewatch.cli._common import (
    baseline_params,
    err,
    out,
    parse_date,
    parse_years,
    progress_bar,
)


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
    mission_key: Annotated[Path | None, typer.Option(
        envvar="TRUCEWATCH_MISSION_KEY", show_envvar=True,
        help="the mission's private key that signs checkpoints (default: "
             "~/.config/trucewatch/mission-key.pem, made on first use); keep it off the "
             "store's folder")] = None,
    coalition: Annotated[Path | None, typer.Option(
        help="the signed coalition registry (docs/coalition.md): coverage credited to "
             "each contributor")] = None,
) -> None:
    """Run a full verification cycle and write the bulletin (built-in scenario by default).
    Everything is stored, but the bulletin for --report-date uses only data up to its end;
    a re-run that would change a published bulletin writes a revision (.rev2) instead."""
    from trucewatch.ingest.firms import FirmsFilter
    from trucewatch.pipeline import FieldInputs, SensorInputs, run_cycle
    from trucewatch.storage import check_store

    check_store(store or out_dir / "trucewatch.db")  # before the cycle's work, not after
    from trucewatch.integrity.checkpoint import mission_key_path

    mission_key_path(str(store or out_dir / "trucewatch.db"), out_dir, mission_key)
    field_inputs = FieldInputs(drones=list(drones or []), allegations=list(allegations or []),
                               keys=keys)
    review = None
    builtin = agreement is None
    if agreement is None:
        from trucewatch.demo import generate
        from trucewatch.demo.multisource import apply_review

        files = generate(out_dir / "scenario")
        agreement, firms, cloud = files.agreement, [*files.reference, *files.current], \
            files.coverage
        if files.stations and files.detections and not stations:
            stations, detections = files.stations, [files.detections]
        if not drones and not allegations:
            field_inputs = FieldInputs(drones=files.drones, allegations=files.allegations,
                                       keys=files.keys)
            review = apply_review
            # its coalition registry, signed by the mission key of its key registry (a
            # --coalition given replaces it)
            coalition = coalition or files.coalition
        err.print(f"built-in scenario generated in {files.root}")
    if not firms:
        raise typer.BadParameter("give --firms files with --agreement")
    day = parse_date(report_date, "--report-date")
    from trucewatch.satellite.covariates import find_covariates

    # the built-in scenario's world is synthetic: real land use would not describe it
    cov = None if no_covariates or (builtin and covariates is None) \
        else find_covariates(covariates)
    flt = FirmsFilter(tuple(sensor or ()), parse_date(since, "--since"),
                      parse_date(until, "--until"))
    params = baseline_params(min_rows_per_year=min_rows_per_year, window_days=window_days)
    with progress_bar() as progress:
        from trucewatch.integrity.envelope import SourcePolicy

        sensors = SensorInputs(stations, detections, policy=SourcePolicy.OPTIONAL
                               if accept_unsigned_sensors else None) \
            if stations and detections else None
        result = run_cycle(agreement_path=agreement, firms_files=firms,
                           reference_years=parse_years(years) if years else None, out_dir=out_dir,
                           report_date=day, cloud_path=cloud, pdf=pdf, progress=progress,
                           sensors=sensors, field_inputs=field_inputs, review=review,
                           store_path=store, firms_filter=flt, baseline_params=params,
                           covariates=cov, covariates_required=covariates is not None,
                           language=language, mission_key=mission_key,
                           coalition=coalition)
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
    for variant, b in result.bulletins.items():  # every file written, as the README says
        written = (b.pdf, b.html, b.json, b.geojson, b.coverage)
        out.print(f"{variant} bulletin: " + ", ".join(str(f) for f in written if f is not None))
    out.print(f"store: {result.store_path}")


def report(
    agreement: Annotated[Path | None, typer.Option(help="agreement YAML")] = None,
    firms: Annotated[list[Path] | None, typer.Option(help="FIRMS files")] = None,
    years: Annotated[str | None, typer.Option(help="reference years")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="output folder")] = Path("out"),
    report_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    language: Annotated[str, typer.Option(help="bulletin language: en, uk, ru or fr")] = "en",
    store: Annotated[Path | None, typer.Option(help="render the products published for "
                                               "--date from this store alone")] = None,
    day: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD (with --store)")
                   ] = None,
    revision: Annotated[int | None, typer.Option(help="with --store: this revision "
                                                 "(default: the latest)")] = None,
    render: Annotated[bool, typer.Option(
        "--render", help="with --store: render the day's bulletin (HTML, PDF, JSON) from "
        "the store's current state instead of writing the published files; also done "
        "when no bulletin is published for the day")] = False,
    pdf: Annotated[bool, typer.Option(help="with --render: write the PDFs too")] = True,
) -> None:
    """Write the bulletin for one day: from a store's published products (--store S
    --date D: no re-ingest; a day with no bulletin published is rendered from the
    store), or as run does with explicit inputs."""
    if store is not None:
        from trucewatch.cli.report import from_store

        return from_store(store, day or report_date, out_dir, revision, render=render,
                          pdf=pdf, agreement=agreement, language=language)
    if agreement is None or not firms or not years:
        raise typer.BadParameter("give --store S --date D, or --agreement, --firms and "
                                 "--years")
    run(out_dir=out_dir, agreement=agreement, firms=firms, years=years, cloud=None,
        report_date=report_date, pdf=True, language=language)
