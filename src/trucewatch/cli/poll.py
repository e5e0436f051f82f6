"""``trucewatch satellite poll``: FIRMS near-real-time polling into a store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trucewatch.cli._common import err, out


def poll(
    bbox: Annotated[str, typer.Option(help="west,south,east,north (degrees)")],
    store: Annotated[Path, typer.Option(help="SQLite store")] = Path("trucewatch.db"),
    source: Annotated[list[str] | None, typer.Option(
        help="FIRMS source (repeatable; default VIIRS_NOAA20_NRT)")] = None,
    every: Annotated[float, typer.Option(help="seconds between polls")] = 900.0,
    once: Annotated[bool, typer.Option("--once", help="poll once and stop")] = False,
    map_key: Annotated[str | None, typer.Option(
        help="FIRMS MAP_KEY (default: $FIRMS_MAP_KEY)")] = None,
    base_url: Annotated[str, typer.Option(help="FIRMS server")] =
        "https://firms.modaps.eosdis.nasa.gov",
    first_days: Annotated[int, typer.Option(help="days back on the very first poll")] = 1,
    max_backfill_days: Annotated[int, typer.Option(
        help="the longest outage backfilled; older days are logged as a gap")] = 60,
    keys: Annotated[Path | None, typer.Option(help="key registry (signed FIRMS relays)")
                    ] = None,
) -> None:
    """Poll the FIRMS area API on a schedule; every response goes through the intake,
    and after an outage the first poll backfills from the stored watermark."""
    from trucewatch.ingest.firms_api import FirmsClient
    from trucewatch.intake.firms_poll import FirmsPoller, PollResult, parse_bbox
    from trucewatch.integrity.keys import KeyRegistry
    from trucewatch.storage import open_store

    db = open_store(store)
    poller = FirmsPoller(db, FirmsClient(map_key, base_url=base_url), parse_bbox(bbox),
                         tuple(source or ("VIIRS_NOAA20_NRT",)),
                         KeyRegistry.load(keys) if keys else KeyRegistry(),
                         first_days=first_days, max_backfill_days=max_backfill_days)

    def show(results: list[PollResult]) -> None:
        for r in results:
            what = (f"{r.rows} rows, {r.new} new, {r.duplicates} already stored, "
                    f"{r.quarantined} quarantined" if r.ok else f"[red]failed[/]: {r.error}")
            out.print(f"{r.source} {r.start} +{r.days}d: {what}")

    try:
        poller.run(every, polls=1 if once else None, on_poll=show)
    except KeyboardInterrupt:
        err.print("stopped")
    finally:
        db.close()
