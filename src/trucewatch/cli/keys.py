"""The Ed25519 key registry of platforms and sensors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from trucewatch.cli._common import (
    out,
)

keys_app = typer.Typer(help="The Ed25519 key registry of platforms and sensors.",
                       no_args_is_help=True)


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
