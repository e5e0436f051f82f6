"""What every command group shares: the consoles, progress, option types and parsers,
file intake and the acting principal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trucewatch.errors import TrucewatchError

# soft_wrap: a printed line is never broken at the terminal's (or a pipe's 80-column)
# width, so that a path, a token or a count list piped to a script or a log stays on its
# line; tables still fit the width.
out = Console(soft_wrap=True)


err = Console(stderr=True, soft_wrap=True)


def baseline_params(**given: Any) -> Any:
    """BaselineParams with the options given (None: the default); None when none given."""
    from dataclasses import fields, replace

    from trucewatch.satellite.baseline import BaselineParams

    chosen = {k: v for k, v in given.items() if v is not None}
    if not chosen:
        return None
    known = {f.name for f in fields(BaselineParams)}
    return replace(BaselineParams(), **{k: v for k, v in chosen.items() if k in known})


StoreOpt = Annotated[Path, typer.Option(help="SQLite store")]


# the satellite options that classify, fit-baseline and reprocess share
LookaheadOpt = Annotated[int, typer.Option(
    help="revision tier: also confirm by what was seen this many days after (0: causal)")]


SensorOpt = Annotated[list[str] | None, typer.Option(
    help="use only this sensor id (repeatable), e.g. VIIRS_SNPP_SP")]


AsOpt = Annotated[str | None, typer.Option(
    "--as", help="optional check: the name of the token's principal (refused if it is not)")]


TokenOpt = Annotated[str | None, typer.Option(
    "--token", envvar="TRUCEWATCH_TOKEN", show_envvar=True,
    help="your token (better: set TRUCEWATCH_TOKEN, which other users cannot see in ps)")]


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total}"), TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("starting", total=1)

        def update(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=max(total, 1))

        yield update


def parse_years(text: str) -> list[int]:
    try:
        years = [int(y) for y in text.split(",") if y.strip()]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give years as 2012,2013,2016") from None
    if not years:
        raise typer.BadParameter("give at least one year")
    return years


def parse_date(text: str | None, option: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{option} {text!r}: give a date as YYYY-MM-DD") from None


def receive_files(files: list[Path], store: Path, keys: Path | None,
                  source: Any = None, actor: str = "ingest") -> None:
    """Receive each file (signature policy, parsing, storage) and print one row per file.
    ``source``: the adapter to use; None recognises each file (inside its envelope).
    ``actor``: who the audit log says received them."""
    from trucewatch.ingest.base import read_received, unpack
    from trucewatch.intake import receive
    from trucewatch.intake.sources import adapter_for_input
    from trucewatch.integrity.envelope import is_envelope, open_envelope
    from trucewatch.integrity.keys import KeyRegistry
    from trucewatch.storage import open_store

    db = open_store(store)
    registry = KeyRegistry.load(keys) if keys else KeyRegistry()
    if keys:  # the registry that admitted these signatures is evidence too
        from trucewatch.intake.sources import ConfigSource

        receive(db, read_received(keys), keys.name, ConfigSource("keys"))
    t = Table("file", "rows", "new", "duplicates", "quarantined", "signed by", "outcome")
    with progress_bar() as progress:
        for k, f in enumerate(files):
            progress(f"ingest {f.name}", k, len(files))
            raw = read_received(f)  # kept as received: a gzip file stays gzip
            adapter = source
            if adapter is None:
                try:
                    payload = unpack(raw, f.name)
                    if is_envelope(payload):
                        payload = unpack(open_envelope(payload).payload, f.name)
                except TrucewatchError:
                    payload = raw  # receive() refuses it with the reason
                try:
                    adapter = adapter_for_input(db, payload, f.name)
                except TrucewatchError as bad:  # kept and refused, like any other input
                    db.refuse(raw, f.name, "unknown", bad.message)
                    t.add_row(f.name, "0", "0", "0", "0", "-", f"[red]refused[/]: {bad.message}")
                    continue
            o = receive(db, raw, f.name, adapter, registry=registry, actor=actor)
            r = o.report
            outcome = (f"[red]refused[/]: {o.refused}" if o.refused else
                       "already ingested: nothing changed" if r and r.already_ingested
                       else "stored")
            t.add_row(f.name, str(r.rows if r else 0), str(r.new if r else 0),
                      str(r.duplicates if r else 0), str(len(o.quarantined)),
                      o.signed_by or "-", outcome)
            for q in o.quarantined[:5]:
                err.print(f"  {f.name}: entry {q.row} quarantined: {q.reason}")
    out.print(t)
    db.close()


def review_service(store: Path):  # type: ignore[no-untyped-def]
    from trucewatch.review.workflow import ReviewService
    from trucewatch.storage import open_store

    return ReviewService(open_store(store))


def acting(store: Path, token: str | None, as_name: str | None):  # type: ignore[no-untyped-def]
    """The review service and the token's principal, whose role must allow review (the
    API's matrix); --as, when given, must name that same principal."""
    from trucewatch.api.auth import MATRIX, Role
    from trucewatch.errors import AuthenticationError, PermissionDeniedError
    from trucewatch.model.principal import legacy_key
    from trucewatch.review.principals import authenticate

    svc = review_service(store)
    who = authenticate(svc.store, token)
    if as_name is not None and legacy_key(as_name) != who.name:
        raise AuthenticationError(
            f"--as {as_name} does not match the token's principal {who.display_name}",
            fix="drop --as, or act with that person's own token")
    if Role(who.role) not in MATRIX["review"]:
        raise PermissionDeniedError(f"{who.display_name} is {who.role}: that role may not "
                                    "review", fix="use an analyst's or a reviewer's token")
    return svc, who


def time_option(text: str, option: str):  # type: ignore[no-untyped-def]
    from trucewatch.errors import InvalidInputError
    from trucewatch.model.serialization import parse_time

    try:
        return parse_time(text)
    except ValueError as e:
        raise InvalidInputError(f"{option} {text!r}: {e}",
                                fix="give an ISO 8601 time with its zone, e.g. "
                                    "2026-05-30T04:00:00Z") from None
