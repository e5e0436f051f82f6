"""API tokens and their roles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from trucewatch.cli._common import (
    StoreOpt,
    TokenOpt,
    out,
)

tokens_app = typer.Typer(help="API tokens and their roles.", no_args_is_help=True)


@tokens_app.command("new")
def tokens_new(name: str, role: Annotated[str, typer.Option(help="admin, analyst, reviewer, "
                                                            "coalition, liaison, public, "
                                                            "sensor")],
               party: Annotated[str | None, typer.Option(help="for liaison: the party")] = None,
               reissue: Annotated[bool, typer.Option(
                   "--reissue", help="another token for the existing principal NAME (a "
                                     "new role or party changes the principal's)")] = False,
               token: TokenOpt = None,
               store: StoreOpt = Path("trucewatch.db")) -> None:
    """Create an API token (printed once, as the last word; only its hash is stored).
    Needs an admin's token, except the first token of a store, which is its admin's."""
    from trucewatch.api.auth import Role
    from trucewatch.review.principals import issue_token
    from trucewatch.storage import open_store

    try:
        Role(role)
    except ValueError:
        raise typer.BadParameter(f"unknown role {role!r}; use one of "
                                 f"{', '.join(r.value for r in Role)}") from None
    if role == "liaison" and not party:
        raise typer.BadParameter("a liaison token needs --party")
    db = open_store(store)
    actor, made = issue_token(db, name, role, party, token=token, reissue=reissue)
    p = db.principal_named(name)
    assert p is not None
    first = "first admin of this store (bootstrap): " if actor == "bootstrap" else ""
    again = "another " if reissue else ""
    out.print(f"{first}{again}token for {p.display_name} ({role}, principal {p.id}): {made}",
              soft_wrap=True, highlight=False)


@tokens_app.command("list")
def tokens_list(store: StoreOpt = Path("trucewatch.db")) -> None:
    """Principals and their tokens: names, roles, parties, token ids (never the tokens)."""
    from rich.table import Column

    from trucewatch.storage import open_store

    db = open_store(store)
    t = Table("name", "role", "party", *(Column(c, overflow="fold") for c in (
        "principal", "token id", "created", "revoked", "disabled")))
    tokens = db.tokens()
    for p in db.principals():
        mine = [r for r in tokens if r["principal_id"] == p.id]
        for r in mine or [{"token_id": None, "created_at": p.created_at, "revoked_at": None}]:
            t.add_row(p.display_name, p.role, p.party or "-", p.id, str(r["token_id"] or "-"),
                      *(str(x or "-")[:16] for x in (r["created_at"], r["revoked_at"],
                                                     p.disabled_at)))
    out.print(t)


@tokens_app.command("revoke")
def tokens_revoke(name: str,
                  token_id: Annotated[str | None, typer.Option(
                      help="only this token (its id in `tokens list`)")] = None,
                  disable: Annotated[bool, typer.Option(
                      "--disable", help="also disable the principal for good (its name "
                                        "stays taken)")] = False,
                  token: TokenOpt = None,
                  store: StoreOpt = Path("trucewatch.db")) -> None:
    """Revoke a principal's live tokens (an admin's token needed); the principal keeps
    its name and may be reissued a token (tokens new NAME --role R --reissue)."""
    from trucewatch.review.principals import revoke
    from trucewatch.storage import open_store

    _, n = revoke(open_store(store), name, token=token, token_id=token_id, disable=disable)
    out.print(f"{n} token(s) of {name} revoked" + ("; principal disabled" if disable else ""))
