"""The `trucewatch` command: the root application and its command groups, one module each."""

from __future__ import annotations

import inspect
import sys

import typer
from rich.markup import escape

from trucewatch.cli import (
    agreement,
    alerts,
    allegations,
    cycle,
    drones,
    keys,
    poll,
    products,
    replay,
    reprocess,
    review,
    satellite,
    sensors,
    serve,
    store,
    tokens,
    worker,
)
from trucewatch.cli._common import err
from trucewatch.errors import TrucewatchError
from trucewatch.extras import as_missing_extra

app = typer.Typer(help="Ceasefire monitoring and verification.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)

app.command("run")(cycle.run)
app.command("report")(cycle.report)
app.command("ingest")(store.ingest)
app.command("quarantine")(store.quarantine)
app.command("verify")(store.verify)
app.command("serve")(serve.serve)
app.command("reprocess")(reprocess.reprocess)
app.command("replay")(replay.replay)
app.command("worker")(worker.worker)
app.add_typer(satellite.satellite, name="satellite")
app.add_typer(agreement.agreement_app, name="agreement")
app.add_typer(sensors.sensors_app, name="sensors")
app.add_typer(tokens.tokens_app, name="tokens")
app.add_typer(drones.drones_app, name="drones")
app.add_typer(allegations.allegations_app, name="allegations")
app.add_typer(review.review_app, name="review")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(alerts.app, name="alerts")
app.add_typer(products.products_app, name="products")
satellite.satellite.command("poll")(poll.poll)


def _unwrapped(doc: str) -> str:
    """``doc`` with each paragraph on one line: docstrings are wrapped at 100 columns for
    the source, and the rich help would otherwise break every line there (the commands
    panel of ``trucewatch --help`` mid-sentence)."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _unwrap_help(group: typer.Typer) -> None:
    for info in group.registered_commands:
        doc = info.help if info.help is not None else inspect.getdoc(info.callback)
        if doc:
            info.help = _unwrapped(doc)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _unwrap_help(sub.typer_instance)


_unwrap_help(app)


def main() -> None:
    try:
        app()
    except TrucewatchError as e:
        err.print(f"[red]error:[/] {escape(e.one_line())}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except ImportError as e:  # an optional extra not installed: say which, no traceback
        extra = as_missing_extra(e)
        if extra is None:
            raise
        err.print(f"[red]error:[/] {escape(extra.one_line())}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)

