"""Ground sensor network commands: locate explosions, simulate a network."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from trucewatch.cli._common import (
    err,
    out,
)

sensors_app = typer.Typer(help="Ground sensor network: locate explosions.", no_args_is_help=True)


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
    from trucewatch.ingest.sensors import read_detections, read_stations
    from trucewatch.sensors.association import ExplosionAssociator
    from trucewatch.sensors.events import locate_files
    from trucewatch.sensors.propagation import AcousticModel, Propagation, SeismicModel

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
        result.write_quakeml(quakeml)  # picks, arrivals with residuals, the ellipse
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
    for line in result.health.lines() if result.health else []:  # what could not be heard
        out.print(f"  {line}")
    if len(batch.quarantine) > 5:
        err.print(f"  ... and {len(batch.quarantine) - 5} more (--quarantine FILE lists all)")
    out.print(f"events: {out_path}\nassignments: {assignments}")


def _layers(path: Path) -> Any:
    import polars as pl

    from trucewatch.sensors.propagation import Layer, SeismicModel

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

    from trucewatch.demo.sensors import PRESETS, generate

    if preset not in PRESETS:
        raise typer.BadParameter(f"unknown preset {preset!r}; use {', '.join(PRESETS)}")
    sc = replace(PRESETS[preset], duration_h=hours)
    if seed is not None:
        sc = replace(sc, seed=seed)
    data = generate(sc)
    paths = data.write(out_dir)
    out.print(f"{data.stations.height} stations, {data.events.height} explosions, "
              f"{data.detections.height} detections: {paths['detections'].parent}")
