"""Drone detection reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from trucewatch.cli._common import (
    StoreOpt,
    out,
    receive_files,
)

drones_app = typer.Typer(help="Drone detection reports.", no_args_is_help=True)


@drones_app.command("ingest")
def drones_ingest(files: Annotated[list[Path], typer.Argument(help="report documents")],
                  store: StoreOpt = Path("trucewatch.db"),
                  keys: Annotated[Path | None, typer.Option(help="key registry")] = None
                  ) -> None:
    """Check signatures (drones must sign), then store reports or refuse with the reason."""
    from trucewatch.ingest.drones import DroneSource

    receive_files(files, store, keys, DroneSource())


@drones_app.command("schema")
def drones_schema() -> None:
    """Print the JSON Schema of one drone report."""
    from trucewatch.ingest.drones import report_schema

    out.print_json(json.dumps(report_schema()))
