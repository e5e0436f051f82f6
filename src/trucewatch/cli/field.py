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
AsOpt = Annotated[str | None, typer.Option(
    "--as", help="optional check: the name of the token's principal (refused if it is not)")]
TokenOpt = Annotated[str | None, typer.Option(
    "--token", envvar="TRUCEWATCH_TOKEN", show_envvar=True,
    help="your token (better: set TRUCEWATCH_TOKEN, which other users cannot see in ps)")]


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


def _acting(store: Path, token: str | None, as_name: str | None):  # type: ignore[no-untyped-def]
    """The review service and the token's principal, whose role must allow review (the
    API's matrix); --as, when given, must name that same principal."""
    from trucewatch.api.auth import MATRIX, Role
    from trucewatch.errors import AuthenticationError, PermissionDeniedError
    from trucewatch.model.principal import legacy_key
    from trucewatch.review.principals import authenticate

    svc = _service(store)
    who = authenticate(svc.store, token)
    if as_name is not None and legacy_key(as_name) != who.name:
        raise AuthenticationError(
            f"--as {as_name} does not match the token's principal {who.display_name}",
            fix="drop --as, or act with that person's own token")
    if Role(who.role) not in MATRIX["review"]:
        raise PermissionDeniedError(f"{who.display_name} is {who.role}: that role may not "
                                    "review", fix="use an analyst's or a reviewer's token")
    return svc, who


def _time_option(text: str, option: str):  # type: ignore[no-untyped-def]
    from trucewatch.errors import InvalidInputError
    from trucewatch.model.serialization import parse_time

    try:
        return parse_time(text)
    except ValueError as e:
        raise InvalidInputError(f"{option} {text!r}: {e}",
                                fix="give an ISO 8601 time with its zone, e.g. "
                                    "2026-05-30T04:00:00Z") from None


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
def review_claim(incident: str, as_name: AsOpt = None, token: TokenOpt = None,
                 store: StoreOpt = Path("trucewatch.db")) -> None:
    """Lock an incident for your review (you: the token's principal)."""
    svc, who = _acting(store, token, as_name)
    inc = svc.claim(incident, who)
    out.print(f"{who.display_name} holds {inc.id} ({inc.status.value}): {inc.reason}")


@review_app.command("release")
def review_release(incident: str, as_name: AsOpt = None, token: TokenOpt = None,
                   store: StoreOpt = Path("trucewatch.db")) -> None:
    """Give up your claim on an incident (someone else's is refused)."""
    svc, who = _acting(store, token, as_name)
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
    svc, who = _acting(store, token, as_name)
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
    start = _time_option(time, "--time") if time else None
    svc, who = _acting(store, token, as_name)
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
    start = _time_option(time, "--time")
    svc, who = _acting(store, token, as_name)
    inc = svc.add(who, why, category=cat, lat=lat, lon=lon, uncertainty_m=uncertainty,
                  time_start=start, rule=rule)
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
def verify(
    store: StoreOpt = Path("trucewatch.db"),
    checkpoint: Annotated[Path | None, typer.Option(
        help="a signed checkpoint (out/checkpoint-DATE.json): fail if the log was "
             "truncated or rewritten behind it")] = None,
    keys: Annotated[Path | None, typer.Option(
        help="mission key registry to check the checkpoint with (default: "
             "mission-keys.json beside the checkpoint)")] = None,
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

    if not is_postgres_url(store) and not Path(store).is_file():
        err.print(f"[red]problem:[/] no store at {escape(str(store))}", soft_wrap=True)
        raise typer.Exit(1)
    db = open_store(store)
    log = db.audit_log()
    problems: list[str] = []
    if checkpoint is not None:
        try:
            registry, _ = cp.trusted_registry(checkpoint, keys)
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
    held = f"; checkpoint {checkpoint.name} holds" if checkpoint is not None else ""
    out.print(escape(verify_chain(log).one_line()) + "; every state row matches the log; "
              f"all evidentiary copies match their SHA-256{held}", soft_wrap=True)


@keys_app.command("new")
def keys_new(
    key_id: str, source: Annotated[str, typer.Option(help="who signs, e.g. drone:UA-07")],
    registry: Annotated[Path, typer.Option(help="registry file to create or extend")],
    private_out: Annotated[Path, typer.Option(help="where to write the private key (PEM)")],
    valid_from: Annotated[str | None, typer.Option(help="ISO UTC, default now")] = None,
    rotates: Annotated[str | None, typer.Option(help="key id this one replaces")] = None,
    speaks_for: Annotated[list[str] | None, typer.Option(
        help="a station, platform or party the key may also speak for (repeat; * and ? "
             "match): a sensor network's stations")] = None,
) -> None:
    """Create a key pair: the public half goes to the registry, the private to the platform.
    The key is bound to SOURCE (kind:subject) and to the names given with --speaks-for."""
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
                    parse_time(valid_from) if valid_from else datetime.now(UTC),
                    speaks_for=tuple(speaks_for or ()))
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
    uvicorn.run(create_app(store, agreement, bulletins, keys), host=host, port=port,
                log_level="warning")
