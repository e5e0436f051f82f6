"""The store: receive inputs, list the quarantine, verify the record."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from trucewatch.cli._common import (
    StoreOpt,
    err,
    out,
    receive_files,
)


def ingest(files: Annotated[list[Path], typer.Argument(help="input files")],
           store: Annotated[Path, typer.Option(help="SQLite store")] = Path("trucewatch.db"),
           keys: Annotated[Path | None, typer.Option(help="key registry for signed "
                                                     "submissions")] = None,
           ) -> None:
    """Store raw inputs and their observations; invalid rows go to quarantine, refused
    submissions (bad signature, replay...) are kept with their reason."""
    receive_files(files, store, keys)


def quarantine(store: Annotated[Path, typer.Option(help="SQLite store")] = Path(
        "trucewatch.db")) -> None:
    """List quarantined input rows with their reasons."""
    from trucewatch.storage import open_store

    t = Table("row", "reason", "raw")
    for q in open_store(store).quarantine():
        t.add_row(str(q.row), q.reason, q.raw[:80])
    out.print(t)


def verify(
    store: StoreOpt = Path("trucewatch.db"),
    checkpoint: Annotated[Path | None, typer.Option(
        help="a signed checkpoint (out/checkpoint-DATE.json): fail if the log was "
             "truncated or rewritten behind it")] = None,
    keys: Annotated[Path | None, typer.Option(
        help="the mission key registry to trust (mission-keys.json, held apart from the "
             "store); default: the key the store pinned in its log. A registry beside "
             "the checkpoint is never trusted by itself")] = None,
) -> None:
    """Check the hash-chained log, every evidentiary copy and every state row against the
    log (replayed); with --checkpoint, the log against a signed head. Names the first
    difference; exit status 1 on any problem."""
    from rich.markup import escape

    from trucewatch.errors import ConfigError
    from trucewatch.integrity import checkpoint as cp
    from trucewatch.integrity.chain import verify_chain
    from trucewatch.storage import open_store
    from trucewatch.storage.postgis import is_postgres_url

    if not is_postgres_url(store) and not Path(store).exists():
        err.print(f"[red]problem:[/] no store at {escape(str(store))}", soft_wrap=True)
        raise typer.Exit(1)
    db = open_store(store)
    log = db.audit_log()
    problems: list[str] = []
    trusted = ""
    if checkpoint is not None:
        try:
            registry, trusted = cp.trusted_registry(log, keys)
            problems += cp.check(cp.Checkpoint.load(checkpoint), log, registry,
                                 f"checkpoint {checkpoint.name}")
        except ConfigError as e:
            problems.append(e.one_line())
    problems += db.verify()
    db.close()
    if problems:
        for p in problems:
            err.print(f"[red]problem:[/] {escape(p)}", soft_wrap=True)
        raise typer.Exit(1)
    held = f"; checkpoint {checkpoint.name} holds (against {trusted})" \
        if checkpoint is not None else ""
    out.print(escape(verify_chain(log).one_line()) + "; every state row matches the log; "
              "all evidentiary copies match their SHA-256; spatial indexes, review locks, "
              f"schema and product files hold{escape(held)}", soft_wrap=True)
