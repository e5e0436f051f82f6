"""``trucewatch products``: the products clock (tiered incident lists, the daily
bulletin), run once at a given time (cron, tests) or listed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from trucewatch.cli._common import out

if TYPE_CHECKING:
    from trucewatch.reports.tiers import Clock

products_app = typer.Typer(help="Tiered products on a clock: automatic lists, revisions, "
                           "the daily bulletin.", no_args_is_help=True)

TiersOpt = Annotated[str | None, typer.Option(
    help="tiers NAME=DELAY, the first the automatic list (from the day's start), the "
         "others after the day's end (default automatic=0m,6h=6h,24h=24h)")]
BulletinAtOpt = Annotated[str | None, typer.Option(
    help="local time of the daily bulletin's cut (default 19:30)")]
TimezoneOpt = Annotated[str | None, typer.Option(
    help="the bulletin's time zone (default Europe/Kyiv)")]
CatchUpOpt = Annotated[int, typer.Option(
    help="publish a day that has no product yet only if it is at most this many days "
         "before the store's latest incident (a first tick on a store with a long "
         "history); older days are listed and left unpublished")]


def products_dir(store: str, given: Path | None) -> Path:
    """Where the clock writes its products: ``given``, else ``<store>.products/``."""
    from trucewatch.errors import ConfigError

    if given is not None:
        return given
    if "://" in store:
        raise ConfigError("a database URL has no folder to write products beside",
                          fix="give --out DIR (e.g. the service's bulletins folder)")
    return Path(store).with_name(Path(store).name + ".products")


def clock_of(text: str) -> Clock:
    """``wall`` or ``data`` as a :class:`~trucewatch.reports.tiers.Clock`."""
    from trucewatch.errors import ConfigError
    from trucewatch.reports.tiers import Clock

    try:
        return Clock(text.strip().lower())
    except ValueError:
        raise ConfigError(f"products clock {text!r} is neither wall nor data",
                          fix="give --products-clock wall (live) or data (a replay)"
                          ) from None


def _now(text: str | None) -> datetime:
    from trucewatch.errors import ConfigError

    if not text:
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--now {text!r} is not an ISO 8601 time",
                          fix="e.g. 2026-05-31T19:35:00Z") from None
    if t.tzinfo is None:
        raise ConfigError(f"--now {text!r} has no UTC offset", fix="end it with Z or +00:00")
    return t


@products_app.command("tick")
def tick(store: Annotated[str, typer.Option(help="store (file or postgresql:// URL)")],
         now: Annotated[str | None, typer.Option(help="the clock's time (ISO 8601 with an "
                                                 "offset; default: now)")] = None,
         clock: Annotated[str, typer.Option(
             help="wall (NOW) or data (the end of the store's latest data day, never "
                  "after NOW: a replayed or restored store)")] = "wall",
         out_dir: Annotated[Path | None, typer.Option("--out", help="folder for the "
                                                      "products (default STORE.products)")
                            ] = None,
         tiers: TiersOpt = None, bulletin_at: BulletinAtOpt = None,
         timezone: TimezoneOpt = None,
         catch_up_days: CatchUpOpt = 7,
         render: Annotated[bool, typer.Option(
             help="render the daily bulletin's HTML and PDF at the cut (else JSON only)")
         ] = True,
         pdf: Annotated[bool, typer.Option(help="with --render: the PDFs too")] = True,
         agreement: Annotated[Path | None, typer.Option(
             help="agreement YAML for the rendered bulletin (default: the one the store "
                  "keeps)")] = None) -> None:
    """Publish every product due at NOW whose content is not published yet (a changed
    one as a new revision; a published product is never edited)."""
    import time

    from trucewatch.agreement import load_agreement
    from trucewatch.pipeline.bulletins import StoreBulletins
    from trucewatch.reports.tiers import Schedule, clock_time
    from trucewatch.reports.tiers import tick as run_tick
    from trucewatch.storage import open_store

    if "://" not in store and not Path(store).is_file():
        raise typer.BadParameter(f"--store {store}: no such file")
    schedule = Schedule.parse(tiers, bulletin_at, timezone)
    when, mode = _now(now), clock_of(clock)
    maker = StoreBulletins(load_agreement(agreement) if agreement else None, pdf=pdf) \
        if render else None
    t0 = time.monotonic()
    db = open_store(store)
    try:
        when = clock_time(db, mode, when)
        r = run_tick(db, when, products_dir(store, out_dir), schedule,
                     catch_up_days=catch_up_days, bulletins=maker)
    finally:
        db.close()
    for p in r.published:
        out.print(f"published {p.name} ({p.reason})")
    for name in r.lost:
        out.print(f"{name}: published meanwhile by another clock on this store (no-op)")
    for day, why in r.not_rendered.items():
        out.print(f"bulletin {day}: HTML/PDF not rendered ({why}); JSON only")
    if r.skipped_days:
        out.print(f"{len(r.skipped_days)} older day(s) without products left unpublished "
                  f"({r.skipped_days[0]} to {r.skipped_days[-1]}; --catch-up-days "
                  f"{catch_up_days}: raise it to publish them)")
    out.print(f"{len(r.published)} product(s) published at {when.isoformat()}, "
              f"{r.unchanged} unchanged, in {time.monotonic() - t0:.1f} s")


@products_app.command("list")
def list_products(store: Annotated[str, typer.Option(help="store")]) -> None:
    """The published products, oldest first, with their tier and revision."""
    from trucewatch.reports.archive import revision_of
    from trucewatch.reports.tiers import tier_of
    from trucewatch.storage import open_store

    db = open_store(store)
    try:
        rows = db.products()
    finally:
        db.close()
    t = Table("product", "day", "tier", "rev", "audience", "published")
    for p in rows:
        t.add_row(str(p["name"]), str(p["report_date"]), tier_of(str(p["name"])) or "-",
                  str(revision_of(str(p["name"]))), str(p["audience"]),
                  str(p["published_at"])[:19])
    out.print(t)
