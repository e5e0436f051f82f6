"""CLI for issue 4: drone reports, allegations, review, keys and the integrity check."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from trucewatch.cli.app import app, err, out, receive_files

drones_app = typer.Typer(help="Drone detection reports.", no_args_is_help=True)
allegations_app = typer.Typer(help="Allegations from parties, monitors and the public.",
                              no_args_is_help=True)
review_app = typer.Typer(help="Analyst review (two-person rule for verified).",
                         no_args_is_help=True)
keys_app = typer.Typer(help="The Ed25519 key registry of platforms and sensors.",
                       no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens and their roles.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
app.add_typer(drones_app, name="drones")
app.add_typer(allegations_app, name="allegations")
app.add_typer(review_app, name="review")
app.add_typer(keys_app, name="keys")

StoreOpt = Annotated[Path, typer.Option(help="SQLite store")]
AsOpt = Annotated[str, typer.Option("--as", help="who acts (analyst or reviewer name)")]


@drones_app.command("ingest")
def drones_ingest(files: Annotated[list[Path], typer.Argument(help="report documents")],
                  store: StoreOpt = Path("trucewatch.db"),
                  keys: Annotated[Path | None, typer.Option(help="key registry")] = None
                  ) -> None:
    """Check signatures (drones must sign), then store reports or refuse with the reason."""
    from trucewatch.ingest.drones import DroneSource

    receive_files(files, store, keys, DroneSource())


@drones_app.command("schema")
def drones_schema() -> None:
    """Print the JSON Schema of one drone report."""
    from trucewatch.ingest.drones import report_schema

    out.print_json(json.dumps(report_schema()))


@allegations_app.command("ingest")
def allegations_ingest(files: Annotated[list[Path], typer.Argument(help="documents")],
                       store: StoreOpt = Path("trucewatch.db"),
                       keys: Annotated[Path | None, typer.Option(help="key registry")] = None
                       ) -> None:
    """Store allegations with what was extracted from their text; bad ones are quarantined."""
    from trucewatch.ingest.allegations import AllegationSource

    receive_files(files, store, keys, AllegationSource())


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


def _service(store: Path):  # type: ignore[no-untyped-def]
    from trucewatch.review.workflow import ReviewService
    from trucewatch.storage import open_store

    return ReviewService(open_store(store))


@review_app.command("queue")
def review_queue(store: StoreOpt = Path("trucewatch.db"),
                 limit: Annotated[int, typer.Option(help="rows to show")] = 30) -> None:
    """What needs action: candidates first, by confidence."""
    q = _service(store).queue()
    t = Table("incident", "status", "rule", "time", "sources", "confidence")
    for i in q[:limit]:
        t.add_row(i.id, i.status.value, i.attributes.get("rule") or "-",
                  f"{i.time_start:%Y-%m-%d %H:%M}Z", i.attributes.get("source", "-"),
                  f"{float(i.attributes.get('confidence', 0)):.2f}")
    out.print(t)
    out.print(f"{len(q)} incident(s) awaiting action")


@review_app.command("claim")
def review_claim(incident: str, who: AsOpt, store: StoreOpt = Path("trucewatch.db")) -> None:
    """Lock an incident for your review."""
    inc = _service(store).claim(incident, who)
    out.print(f"{who} holds {inc.id} ({inc.status.value}): {inc.reason}")


@review_app.command("release")
def review_release(incident: str, who: AsOpt, store: StoreOpt = Path("trucewatch.db")) -> None:
    """Give up your claim on an incident."""
    _service(store).release(incident, who)
    out.print(f"{who} released {incident}")


@review_app.command("decide")
def review_decide(
    incident: str, who: AsOpt,
    status: Annotated[str, typer.Option(help="pending_verification (propose), verified, "
                                        "unverifiable, inaccurate, duplicate, rejected")],
    why: Annotated[str, typer.Option(help="the reason, kept in the record")],
    duplicate_of: Annotated[str | None, typer.Option(help="for duplicate")] = None,
    store: StoreOpt = Path("trucewatch.db"),
) -> None:
    """Decide on a claimed incident. Verified needs a second, different person."""
    from trucewatch.model.enums import Status

    try:
        new = Status(status)
    except ValueError:
        raise typer.BadParameter(f"unknown status {status!r}") from None
    inc = _service(store).decide(incident, who, new, why, duplicate_of)
    out.print(f"{inc.id} is now {inc.status.value}")


@review_app.command("modify")
def review_modify(
    incident: str, who: AsOpt, why: Annotated[str, typer.Option(help="the reason")],
    lat: Annotated[float | None, typer.Option()] = None,
    lon: Annotated[float | None, typer.Option()] = None,
    uncertainty: Annotated[float | None, typer.Option(help="1-sigma, m")] = None,
    time: Annotated[str | None, typer.Option(help="new start, ISO UTC")] = None,
    store: StoreOpt = Path("trucewatch.db"),
) -> None:
    """Correct a claimed incident's location or time."""
    from trucewatch.model.serialization import parse_time

    inc = _service(store).modify(incident, who, why, lat=lat, lon=lon, uncertainty_m=uncertainty,
                                 time_start=parse_time(time) if time else None)
    out.print(f"{inc.id} modified: {inc.location.lat:.5f}, {inc.location.lon:.5f} "
              f"at {inc.time_start:%Y-%m-%d %H:%M}Z")


@review_app.command("add")
def review_add(
    who: AsOpt, why: Annotated[str, typer.Option(help="what was seen, by whom")],
    category: Annotated[str, typer.Option(help="incident category")],
    lat: Annotated[float, typer.Option()], lon: Annotated[float, typer.Option()],
    time: Annotated[str, typer.Option(help="ISO UTC")],
    uncertainty: Annotated[float, typer.Option(help="1-sigma, m")] = 500.0,
    rule: Annotated[str, typer.Option(help="rule broken, if any")] = "",
    store: StoreOpt = Path("trucewatch.db"),
) -> None:
    """Add an incident the automation missed."""
    from trucewatch.model.enums import Category
    from trucewatch.model.serialization import parse_time

    try:
        cat = Category(category)
    except ValueError:
        raise typer.BadParameter(f"unknown category; use one of "
                                 f"{', '.join(c.value for c in Category)}") from None
    inc = _service(store).add(who, why, category=cat, lat=lat, lon=lon,
                              uncertainty_m=uncertainty, time_start=parse_time(time),
                              rule=rule)
    out.print(f"added {inc.id}")


@review_app.command("history")
def review_history(incident: str, store: StoreOpt = Path("trucewatch.db")) -> None:
    """Every version of an incident: who, when, why."""
    t = Table("version", "status", "action", "who", "when", "why")
    for h in _service(store).store.incident_history(incident):
        t.add_row(str(h["version"]), h["status"], h["action"], h["who"], h["at"], h["why"])
    out.print(t)


@review_app.command("figures")
def review_figures(store: StoreOpt = Path("trucewatch.db")) -> None:
    """Automatic against reviewed: discarded, modified, added (as the CTBTO reports)."""
    for k, v in _service(store).figures().to_dict().items():
        out.print(f"{k}: {v}")


@app.command("verify")
def verify(store: StoreOpt = Path("trucewatch.db")) -> None:
    """Check the hash-chained log and every evidentiary copy; name the first broken link."""
    from trucewatch.integrity.chain import verify_chain
    from trucewatch.storage import open_store

    db = open_store(store)
    problems = db.verify()
    if problems:
        for p in problems:
            err.print(f"[red]problem:[/] {p}")
        raise typer.Exit(1)
    out.print(verify_chain(db.audit_log()).one_line() + "; all evidentiary copies match "
              "their SHA-256")


@keys_app.command("new")
def keys_new(
    key_id: str, source: Annotated[str, typer.Option(help="who signs, e.g. drone:UA-07")],
    registry: Annotated[Path, typer.Option(help="registry file to create or extend")],
    private_out: Annotated[Path, typer.Option(help="where to write the private key (PEM)")],
    valid_from: Annotated[str | None, typer.Option(help="ISO UTC, default now")] = None,
    rotates: Annotated[str | None, typer.Option(help="key id this one replaces")] = None,
) -> None:
    """Create a key pair: the public half goes to the registry, the private to the platform."""
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    from trucewatch.integrity.keys import KeyRecord, KeyRegistry, new_keypair
    from trucewatch.model.serialization import parse_time

    reg = KeyRegistry.load(registry) if registry.exists() else KeyRegistry()
    private, public = new_keypair()
    rec = KeyRecord(key_id, source, public,
                    parse_time(valid_from) if valid_from else datetime.now(UTC))
    if rotates:
        reg.rotate(rotates, rec)
    else:
        reg.add(rec)
    private_out.write_bytes(private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                                  NoEncryption()))
    private_out.chmod(0o600)
    reg.save(registry)
    out.print(f"key {key_id} for {source} registered in {registry}; private key in "
              f"{private_out} (keep it on the platform only)")


@keys_app.command("revoke")
def keys_revoke(key_id: str, registry: Annotated[Path, typer.Option()],
                reason: Annotated[str, typer.Option()],
                at: Annotated[str | None, typer.Option(help="ISO UTC, default now")] = None
                ) -> None:
    """Revoke a key: nothing signed with it from then on is accepted."""
    from trucewatch.integrity.keys import KeyRegistry
    from trucewatch.model.serialization import parse_time

    reg = KeyRegistry.load(registry)
    reg.revoke(key_id, parse_time(at) if at else datetime.now(UTC), reason)
    reg.save(registry)
    out.print(f"key {key_id} revoked")


@keys_app.command("sign")
def keys_sign(file: Path, key_id: Annotated[str, typer.Option()],
              private_key: Annotated[Path, typer.Option(help="PEM from keys new")],
              out_path: Annotated[Path, typer.Option("--out")],
              nonce: Annotated[str | None, typer.Option(help="default: random")] = None) -> None:
    """Wrap a submission in a signed envelope (what a platform does before sending)."""
    import uuid

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from trucewatch.integrity.envelope import sign_submission

    key = load_pem_private_key(private_key.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise typer.BadParameter(f"{private_key} is not an Ed25519 private key")
    out_path.write_bytes(sign_submission(file.read_bytes(), key, key_id, datetime.now(UTC),
                                         nonce or uuid.uuid4().hex))
    out.print(f"signed envelope written to {out_path}")


@tokens_app.command("new")
def tokens_new(name: str, role: Annotated[str, typer.Option(help="admin, analyst, reviewer, "
                                                            "coalition, liaison, public, "
                                                            "sensor")],
               party: Annotated[str | None, typer.Option(help="for liaison: the party")] = None,
               store: StoreOpt = Path("trucewatch.db")) -> None:
    """Create an API token (printed once; only its hash is stored)."""
    from trucewatch.api.auth import Role
    from trucewatch.storage import open_store

    try:
        Role(role)
    except ValueError:
        raise typer.BadParameter(f"unknown role {role!r}; use one of "
                                 f"{', '.join(r.value for r in Role)}") from None
    if role == "liaison" and not party:
        raise typer.BadParameter("a liaison token needs --party")
    token = open_store(store).add_token(name, role, party)
    out.print(f"token for {name} ({role}): {token}")


@tokens_app.command("list")
def tokens_list(store: StoreOpt = Path("trucewatch.db")) -> None:
    """Token names, roles and parties (never the tokens)."""
    from trucewatch.storage import open_store

    t = Table("name", "role", "party", "created", "revoked")
    for r in open_store(store).tokens():
        t.add_row(*(str(r[k] or "-") for k in ("name", "role", "party", "created_at",
                                               "revoked_at")))
    out.print(t)


@tokens_app.command("revoke")
def tokens_revoke(name: str, store: StoreOpt = Path("trucewatch.db")) -> None:
    from trucewatch.storage import open_store

    open_store(store).revoke_token(name)
    out.print(f"token {name} revoked")


@app.command("serve")
def serve(
    store: Annotated[Path | None, typer.Option(help="SQLite store (default: out/trucewatch.db "
                                               "of the quick start, else trucewatch.db)")] = None,
    agreement: Annotated[Path | None, typer.Option(help="agreement YAML")] = None,
    bulletins: Annotated[Path | None, typer.Option(help="folder of bulletins")] = None,
    keys: Annotated[Path | None, typer.Option(help="key registry")] = None,
    host: Annotated[str, typer.Option(help="interface")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """Run the REST API (docs at /docs). With no tokens yet, prints a first admin token."""
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
    if not db.tokens():
        token = db.add_token("admin", "admin", actor="serve")
        out.print(f"first start: admin token (shown once): {token}")
    db.close()
    out.print(f"serving {store} on http://{host}:{port} (docs: /docs)")
    uvicorn.run(create_app(store, agreement, bulletins, keys), host=host, port=port,
                log_level="warning")
