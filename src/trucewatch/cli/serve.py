"""The API and the dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    no_worker: Annotated[bool, typer.Option(
        "--no-worker", help="do not run the processing worker in the service (run "
        "`trucewatch worker` beside it, or nothing)")] = False,
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
    db = open_store(store)
    if db.bootstrap_open():  # no admin yet: the bootstrap admin (review.principals)
        token = db.add_token("admin", "admin", actor="bootstrap",
                             reissue=db.principal_named("admin") is not None)
        out.print(f"first start: admin token (shown once): {token}")
    db.close()
    out.print(f"serving {store} on http://{host}:{port} (docs: /docs)")
    app = create_app(store, agreement, bulletins, keys, public=public,
                     insecure_cookies=insecure_cookies)
    worker = None if no_worker else _start_worker(store, agreement)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if worker is not None:
            worker.stop()


def _start_worker(store: Path | str, agreement: Path | None):  # type: ignore[no-untyped-def]
    """The processing worker in a background thread (trucewatch.pipeline.worker); it
    needs the agreement: without one the service only stores what it receives."""
    if agreement is None:
        out.print("no --agreement: the processing worker is off (the service stores what "
                  "it receives)")
        return None
    from trucewatch.pipeline.worker import WorkerConfig, start

    return start(WorkerConfig(store, agreement), report=out.print)
