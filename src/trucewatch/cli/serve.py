"""The API and the dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from trucewatch.cli._common import (
    out,
)


def serve(
    store: Annotated[Path | None, typer.Option(help="SQLite store (default: out/trucewatch.db "
                                               "of the quick start, else trucewatch.db)")] = None,
    agreement: Annotated[Path | None, typer.Option(help="agreement YAML")] = None,
    bulletins: Annotated[Path | None, typer.Option(help="folder of bulletins")] = None,
    keys: Annotated[Path | None, typer.Option(help="key registry")] = None,
    host: Annotated[str, typer.Option(help="interface")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    public: Annotated[bool, typer.Option(
        "--public", help="the mission publishes the public's view: /api/v1/public/* need "
        "no token")] = False,
    insecure_cookies: Annotated[bool, typer.Option(
        "--insecure-cookies", help="never mark the session cookie Secure (plain-http "
        "development on a network; loopback needs no flag)")] = False,
    products: Annotated[bool, typer.Option(
        help="run the products clock (tiered incident lists, the daily bulletin)")] = True,
    products_interval: Annotated[float, typer.Option(help="seconds between two ticks of "
                                                     "the products clock")] = 60.0,
    catch_up_days: Annotated[int, typer.Option(
        help="the products clock publishes a day that has no product yet only if it is "
             "at most this many days before the latest incident (a first start on a "
             "long history)")] = 7,
    products_out: Annotated[Path | None, typer.Option(
        help="folder for the clock's products (default: --bulletins, else "
             "STORE.products)")] = None,
    tiers: Annotated[str | None, typer.Option(
        help="tiers NAME=DELAY (default automatic=0m,6h=6h,24h=24h)")] = None,
    bulletin_at: Annotated[str | None, typer.Option(
        help="local time of the daily bulletin's cut (default 19:30)")] = None,
    products_clock: Annotated[str, typer.Option(
        help="the products clock's time: wall (the machine's clock) or data (the end of "
             "the latest day the store holds data for, never after the wall clock: a "
             "replay's products are cut as its data pass)")] = "wall",
    products_pdf: Annotated[bool, typer.Option(
        help="the products clock renders the daily bulletin's PDFs too (else HTML and "
             "JSON only: faster, for demos and tests)")] = True,
    timezone: Annotated[str | None, typer.Option(
        help="the daily bulletin's time zone (default Europe/Kyiv)")] = None,
    webhook_url: Annotated[str | None, typer.Option(
        help="push each new alert to this URL, signed (no URL: no webhooks)")] = None,
    webhook_secret_env: Annotated[str, typer.Option(
        help="environment variable holding the webhook's shared secret")
    ] = "TRUCEWATCH_WEBHOOK_SECRET",
    webhook_interval: Annotated[float, typer.Option(help="seconds between two webhook "
                                                    "dispatches")] = 30.0,
    webhook_timeout: Annotated[float, typer.Option(help="seconds to wait for the "
                                                   "subscriber's answer")] = 10.0,
    webhook_records: Annotated[Path | None, typer.Option(
        help="folder of the delivery record and dead letters (default: beside the "
             "store)")] = None,
    no_worker: Annotated[bool, typer.Option(
        "--no-worker", help="do not run the processing worker in the service (run "
        "`trucewatch worker` beside it, or nothing)")] = False,
    rate_limit: Annotated[float, typer.Option(
        help="requests a minute each principal may make on average (in this process; "
             "past it: 429 with Retry-After); 0 turns the limit off")] = 1200.0,
    rate_burst: Annotated[int, typer.Option(
        help="requests a principal may make at once under --rate-limit")] = 240,
) -> None:
    """Run the REST API (docs at /docs). With no admin yet, prints a first admin token."""
    import uvicorn

    from trucewatch.api import create_app
    from trucewatch.storage import open_store

    quick = Path("out")
    store = store or (quick / "trucewatch.db" if (quick / "trucewatch.db").exists()
                      else Path("trucewatch.db"))
    if agreement is None and (quick / "scenario" / "agreement.yaml").exists():
        agreement = quick / "scenario" / "agreement.yaml"
    if bulletins is None and quick.is_dir():
        bulletins = quick
    from trucewatch.api.ratelimit import RateLimit

    limit = RateLimit(rate_limit, rate_burst) if rate_limit else None  # before any work
    db = open_store(store)
    if db.bootstrap_open():  # no admin yet: the bootstrap admin (review.principals)
        token = db.add_token("admin", "admin", actor="bootstrap",
                             reissue=db.principal_named("admin") is not None)
        out.print(f"first start: admin token (shown once): {token}")
    db.close()
    out.print(f"serving {store} on http://{host}:{port} (docs: /docs)")
    if limit is None:
        out.print("rate limit: off")
    app = create_app(store, agreement, bulletins, keys, public=public,
                     insecure_cookies=insecure_cookies, rate_limit=limit)
    loops = []  # background loops (pipeline.background), one call each
    if products:
        loops.append(_products_clock(store, products_out or bulletins, products_interval,
                                     tiers, bulletin_at, timezone, catch_up_days,
                                     agreement, products_clock, products_pdf))
    if webhook_url:
        loops.append(_webhooks(store, webhook_url, webhook_secret_env, webhook_interval,
                               webhook_timeout, webhook_records))
    worker = None if no_worker else _start_worker(store, agreement)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if worker is not None:
            worker.stop()
        for loop in loops:
            loop.stop(timeout_s=5.0)


def _products_clock(store: Path, out_dir: Path | None, interval: float, tiers: str | None,
                    bulletin_at: str | None, timezone: str | None, catch_up_days: int = 7,
                    agreement: Path | None = None, clock: str = "wall",
                    pdf: bool = True) -> Any:
    from trucewatch.agreement import load_agreement
    from trucewatch.cli.products import clock_of, products_dir
    from trucewatch.pipeline.background import products_clock
    from trucewatch.pipeline.bulletins import StoreBulletins
    from trucewatch.reports.tiers import Schedule

    folder = products_dir(str(store), out_dir)
    mode = clock_of(clock)  # before anything starts: a bad value is a clear error
    schedule = Schedule.parse(tiers, bulletin_at, timezone)
    out.print(f"products clock: every {interval:g} s into {folder} (catch-up "
              f"{catch_up_days} days, {mode.value} clock)")
    maker = StoreBulletins(load_agreement(agreement) if agreement else None, pdf=pdf)
    return products_clock(store, folder, interval, schedule, catch_up_days, maker, mode)


def _webhooks(store: Path, url: str, secret_env: str, interval: float, timeout: float,
              records: Path | None) -> Any:
    from trucewatch.alerts import webhooks
    from trucewatch.cli.alerts import _hook
    from trucewatch.pipeline.background import webhook_dispatcher

    hook = _hook(url, secret_env, 5, timeout)
    if records is not None:
        sent, dead = records / "webhooks-sent.jsonl", records / "webhooks-dead.jsonl"
    else:
        sent, dead = webhooks.beside(store, "sent"), webhooks.beside(store, "dead")
    out.print(f"webhooks: every {interval:g} s to {url} (dead letters: {dead})")
    return webhook_dispatcher(store, hook, sent, dead, interval)  # type: ignore[arg-type]


def _start_worker(store: Path | str, agreement: Path | None):  # type: ignore[no-untyped-def]
    """The processing worker in a background thread (trucewatch.pipeline.worker); it
    needs the agreement: without one the service only stores what it receives."""
    if agreement is None:
        out.print("no --agreement: the processing worker is off (the service stores what "
                  "it receives)")
        return None
    from trucewatch.pipeline.worker import WorkerConfig, start

    return start(WorkerConfig(store, agreement), report=out.print)
