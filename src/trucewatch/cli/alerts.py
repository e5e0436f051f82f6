"""``trucewatch alerts``: the CAP feed from a store, and webhook delivery."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from trucewatch.cli._common import out

app = typer.Typer(help="Alerts on candidate violations: CAP 1.2 feed and webhooks.",
                  no_args_is_help=True)

StoreOpt = Annotated[Path, typer.Option(help="SQLite store")]


def _hook(url: str, secret_env: str, attempts: int, timeout: float) -> object:
    from trucewatch.alerts.webhooks import Webhook
    from trucewatch.errors import ConfigError

    secret = os.environ.get(secret_env, "")
    if not secret:
        raise ConfigError(f"no webhook secret in ${secret_env}",
                          fix=f"export {secret_env}=<the secret shared with the subscriber>")
    return Webhook(url, secret.encode(), max_attempts=attempts, timeout_s=timeout)


@app.command("cap")
def cap_feed(store: StoreOpt = Path("trucewatch.db"),
             public: Annotated[bool, typer.Option(help="the public feed (reviewed alerts "
                                                  "only, coarse locations)")] = False,
             out_path: Annotated[Path | None, typer.Option("--out", help="write the Atom "
                                                           "feed here (default: stdout)")
                                 ] = None) -> None:
    """Write the CAP 1.2 feed (an Atom feed of CAP alerts) from the store."""
    import sys

    from trucewatch.alerts import cap
    from trucewatch.storage import open_store

    audience = cap.Audience.PUBLIC if public else cap.Audience.RESTRICTED
    db = open_store(store)
    try:
        items = cap.alerts(db, audience)
    finally:
        db.close()
    body = cap.feed(items, audience, f"urn:trucewatch:alerts:{audience.value}")
    if out_path:
        out_path.write_bytes(body)
        out.print(f"{len(items)} alert(s) ({audience.value}) written to {out_path}")
    else:
        sys.stdout.buffer.write(body + b"\n")


@app.command("push")
def push(url: Annotated[str, typer.Option(help="the subscriber's webhook URL")],
         store: StoreOpt = Path("trucewatch.db"),
         secret_env: Annotated[str, typer.Option(help="environment variable holding the "
                                                 "shared secret")] = "TRUCEWATCH_WEBHOOK_SECRET",
         public: Annotated[bool, typer.Option(help="send the public alerts only")] = False,
         attempts: Annotated[int, typer.Option(help="tries per alert")] = 5,
         timeout: Annotated[float, typer.Option(help="seconds to wait for an answer")] = 10.0,
         ) -> None:
    """Send every alert not yet delivered to URL (signed, retried; failures go to the
    dead-letter file beside the store, STORE.webhooks-dead.jsonl)."""
    from trucewatch.alerts import cap, webhooks
    from trucewatch.storage import open_store

    hook = _hook(url, secret_env, attempts, timeout)
    db = open_store(store)
    try:
        r = webhooks.push_alerts(db, hook, webhooks.beside(store, "sent"),  # type: ignore[arg-type]
                                 webhooks.DeadLetters(webhooks.beside(store, "dead")),
                                 cap.Audience.PUBLIC if public else cap.Audience.RESTRICTED)
    finally:
        db.close()
    out.print(f"{len(r.sent)} alert(s) delivered, {len(r.failed)} dead-lettered, "
              f"{r.skipped} already delivered")
    if r.failed:
        raise typer.Exit(1)


@app.command("redeliver")
def redeliver(url: Annotated[str, typer.Option(help="the subscriber's webhook URL")],
              store: StoreOpt = Path("trucewatch.db"),
              secret_env: Annotated[str, typer.Option(help="environment variable holding "
                                                      "the shared secret")
                                    ] = "TRUCEWATCH_WEBHOOK_SECRET") -> None:
    """Try the dead letters for URL again; what still fails stays in the file."""
    from trucewatch.alerts import webhooks
    from trucewatch.storage import check_store

    check_store(store)

    dead = webhooks.DeadLetters(webhooks.beside(store, "dead"))
    done = webhooks.redeliver(_hook(url, secret_env, 5, 10.0), dead)  # type: ignore[arg-type]
    ok = sum(d.ok for d in done)
    out.print(f"{ok} of {len(done)} dead letter(s) delivered; {len(dead.records())} left")


@app.command("dead-letters")
def dead_letters(store: StoreOpt = Path("trucewatch.db")) -> None:
    """List the deliveries that did not succeed."""
    from rich.table import Table

    from trucewatch.alerts import webhooks
    from trucewatch.storage import check_store

    check_store(store)
    t = Table("at", "url", "event", "attempts", "last error")
    for r in webhooks.DeadLetters(webhooks.beside(store, "dead")).records():
        t.add_row(str(r["at"])[:19], str(r["url"]), str(r["event_id"]), str(r["attempts"]),
                  str(r["error"])[:80])
    out.print(t)
