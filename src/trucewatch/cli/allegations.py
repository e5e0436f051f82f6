"""Allegations from parties, monitors and the public."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from trucewatch.cli._common import (
    StoreOpt,
    TokenOpt,
    out,
    receive_files,
)

allegations_app = typer.Typer(help="Allegations from parties, monitors and the public.",
                              no_args_is_help=True)


@allegations_app.command("ingest")
def allegations_ingest(files: Annotated[list[Path], typer.Argument(help="documents")],
                       store: StoreOpt = Path("trucewatch.db"),
                       keys: Annotated[Path | None, typer.Option(help="key registry")] = None,
                       token: TokenOpt = None) -> None:
    """Store allegations with what was extracted from their text; bad ones are quarantined.
    With a token (--token or TRUCEWATCH_TOKEN), its principal is their filer, and follows
    them in "my allegations"; without one they have no filer (an operator's intake)."""
    from trucewatch.ingest.allegations import AllegationSource

    source, actor = AllegationSource(), "ingest"
    if token is not None and token.strip():
        who = _filer(store, token)
        source, actor = source.filed_by(who.id), who.name
    receive_files(files, store, keys, source, actor)


def _filer(store: Path, token: str):  # type: ignore[no-untyped-def]
    """The token's principal, whose role must allow filing allegations (the API's
    matrix: any role but a sensor network's)."""
    from trucewatch.api.auth import MATRIX, Role
    from trucewatch.errors import PermissionDeniedError
    from trucewatch.review.principals import authenticate
    from trucewatch.storage import open_store

    db = open_store(store)
    try:
        who = authenticate(db, token)
    finally:
        db.close()
    if Role(who.role) not in MATRIX["allegations_file"]:
        raise PermissionDeniedError(f"{who.display_name} is {who.role}: that role may not "
                                    "file allegations",
                                    fix="ingest with a token of a role that files them, or "
                                        "with none (no filer is recorded)")
    return who


@allegations_app.command("extract")
def allegations_extract(
    text: Annotated[str, typer.Argument(help="free text (fr, en, uk, ru)")],
    received_at: Annotated[str | None, typer.Option(help="ISO time, default now")] = None,
    language: Annotated[str | None, typer.Option(help="fr, en, uk or ru")] = None,
) -> None:
    """Show the places, times and category found in a text, with their confidence."""
    from trucewatch.ingest.extraction import Extractor
    from trucewatch.model.serialization import parse_time

    when = parse_time(received_at) if received_at else datetime.now(UTC)
    ex = Extractor().extract(text, when, language)
    out.print(f"language: {ex.language} ({'declared' if ex.language_declared else 'detected'})"
              f"; category: {ex.category or '-'} ({', '.join(ex.category_words) or 'no cue'})")
    t = Table("place in text", "resolved", "lat, lon", "confidence", "how", "candidates")
    for p in ex.places:
        t.add_row(p.text, p.name or "-", f"{p.lat:.4f}, {p.lon:.4f}" if p.name else "-",
                  f"{p.confidence:.2f}", p.how, str(p.candidates))
    out.print(t)
    t = Table("time in text", "window start (UTC)", "window end (UTC)", "confidence")
    for m in ex.times:
        t.add_row(m.text, m.start, m.end, f"{m.confidence:.2f}")
    out.print(t)


@allegations_app.command("rulings")
def allegations_rulings(store: StoreOpt = Path("trucewatch.db")) -> None:
    """List the rulings with their reasons."""
    from trucewatch.storage import open_store

    t = Table("allegation", "ruling", "basis", "reason")
    for r in open_store(store).rulings():
        t.add_row(r["allegation_id"], r["ruling"], r["basis"], r["reason"])
    out.print(t)
