"""Analyst review under the two-person rule."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from trucewatch.cli._common import (
    AsOpt,
    StoreOpt,
    TokenOpt,
    acting,
    out,
    review_service,
    time_option,
)

review_app = typer.Typer(help="Analyst review (two-person rule for verified).",
                         no_args_is_help=True)


@review_app.command("queue")
def review_queue(store: StoreOpt = Path("trucewatch.db"),
                 limit: Annotated[int, typer.Option(help="rows to show")] = 30) -> None:
    """What needs action: candidates first, by confidence."""
    q = review_service(store).queue()
    t = Table("incident", "status", "rule", "time", "sources", "confidence")
    for i in q[:limit]:
        t.add_row(i.id, i.status.value, i.attributes.get("rule") or "-",
                  f"{i.time_start:%Y-%m-%d %H:%M}Z", i.attributes.get("source", "-"),
                  f"{float(i.attributes.get('confidence', 0)):.2f}")
    out.print(t)
    out.print(f"{len(q)} incident(s) awaiting action")


@review_app.command("claim")
def review_claim(incident: str, as_name: AsOpt = None, token: TokenOpt = None,
                 store: StoreOpt = Path("trucewatch.db")) -> None:
    """Lock an incident for your review (you: the token's principal)."""
    svc, who = acting(store, token, as_name)
    inc = svc.claim(incident, who)
    out.print(f"{who.display_name} holds {inc.id} ({inc.status.value}): {inc.reason}")


@review_app.command("release")
def review_release(incident: str, as_name: AsOpt = None, token: TokenOpt = None,
                   store: StoreOpt = Path("trucewatch.db")) -> None:
    """Give up your claim on an incident (someone else's is refused)."""
    svc, who = acting(store, token, as_name)
    svc.release(incident, who)
    out.print(f"{who.display_name} released {incident}")


@review_app.command("decide")
def review_decide(
    incident: str,
    status: Annotated[str, typer.Option(help="pending_verification (propose), verified, "
                                        "unverifiable, inaccurate, duplicate, rejected")],
    why: Annotated[str, typer.Option(help="the reason, kept in the record")],
    duplicate_of: Annotated[str | None, typer.Option(help="for duplicate")] = None,
    as_name: AsOpt = None, token: TokenOpt = None,
    store: StoreOpt = Path("trucewatch.db"),
) -> None:
    """Decide on a claimed incident. Verified needs a second, different principal, with
    a reviewer's (or admin's) token."""
    from trucewatch.api.auth import CONFIRMS, Role
    from trucewatch.errors import PermissionDeniedError
    from trucewatch.model.enums import Status

    try:
        new = Status(status)
    except ValueError:
        raise typer.BadParameter(f"unknown status {status!r}") from None
    svc, who = acting(store, token, as_name)
    if new == Status.VERIFIED and Role(who.role) not in CONFIRMS:
        raise PermissionDeniedError(f"{who.display_name} is {who.role}: only a reviewer (or "
                                    "an admin) confirms 'verified'",
                                    fix="a reviewer confirms with their own token")
    inc = svc.decide(incident, who, new, why, duplicate_of)
    out.print(f"{inc.id} is now {inc.status.value}")


@review_app.command("modify")
def review_modify(
    incident: str, why: Annotated[str, typer.Option(help="the reason")],
    lat: Annotated[float | None, typer.Option()] = None,
    lon: Annotated[float | None, typer.Option()] = None,
    uncertainty: Annotated[float | None, typer.Option(help="1-sigma, m")] = None,
    time: Annotated[str | None, typer.Option(help="new start, ISO UTC")] = None,
    as_name: AsOpt = None, token: TokenOpt = None,
    store: StoreOpt = Path("trucewatch.db"),
) -> None:
    """Correct a claimed incident's location or time."""
    start = time_option(time, "--time") if time else None
    svc, who = acting(store, token, as_name)
    inc = svc.modify(incident, who, why, lat=lat, lon=lon, uncertainty_m=uncertainty,
                     time_start=start)
    out.print(f"{inc.id} modified: {inc.location.lat:.5f}, {inc.location.lon:.5f} "
              f"at {inc.time_start:%Y-%m-%d %H:%M}Z")


@review_app.command("add")
def review_add(
    why: Annotated[str, typer.Option(help="what was seen, by whom")],
    category: Annotated[str, typer.Option(help="incident category")],
    lat: Annotated[float, typer.Option()], lon: Annotated[float, typer.Option()],
    time: Annotated[str, typer.Option(help="ISO UTC")],
    uncertainty: Annotated[float, typer.Option(help="1-sigma, m")] = 500.0,
    rule: Annotated[str, typer.Option(help="rule broken, if any")] = "",
    as_name: AsOpt = None, token: TokenOpt = None,
    store: StoreOpt = Path("trucewatch.db"),
) -> None:
    """Add an incident the automation missed."""
    from trucewatch.model.enums import Category

    try:
        cat = Category(category)
    except ValueError:
        raise typer.BadParameter(f"unknown category; use one of "
                                 f"{', '.join(c.value for c in Category)}") from None
    start = time_option(time, "--time")
    svc, who = acting(store, token, as_name)
    inc = svc.add(who, why, category=cat, lat=lat, lon=lon, uncertainty_m=uncertainty,
                  time_start=start, rule=rule)
    out.print(f"added {inc.id}")


@review_app.command("history")
def review_history(incident: str, store: StoreOpt = Path("trucewatch.db")) -> None:
    """Every version of an incident: who, when, why."""
    t = Table("version", "status", "action", "who", "when", "why")
    for h in review_service(store).store.incident_history(incident):
        t.add_row(str(h["version"]), h["status"], h["action"], h["who"], h["at"], h["why"])
    out.print(t)


@review_app.command("figures")
def review_figures(store: StoreOpt = Path("trucewatch.db")) -> None:
    """Automatic against reviewed: discarded, modified, added (as the CTBTO reports)."""
    for k, v in review_service(store).figures().to_dict().items():
        out.print(f"{k}: {v}")
