"""Receiving the coalition registry: it counts only signed, by a ``mission`` key of the
key registry (the same registry, keys and envelope as every asset's submissions).
An unsigned, altered, badly signed or wrongly keyed registry is refused with its
reason (:class:`~trucewatch.errors.SignatureError`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from trucewatch.agreement.coalition import Coalition, parse_coalition
from trucewatch.errors import ConfigError, SignatureError
from trucewatch.integrity.envelope import is_envelope, open_envelope
from trucewatch.integrity.keys import KeyRegistry
from trucewatch.model.agreement import Agreement

SIGNER_KIND = "mission"


def read_coalition(raw: bytes, name: str, agreement: Agreement, keys: KeyRegistry,
                   now: datetime | None = None) -> Coalition:
    """The registry in ``raw`` (a signed envelope), checked. Raises SignatureError
    (refused: the reason) or ConfigError (its content)."""
    if not is_envelope(raw):
        raise SignatureError(f"{name}: the coalition registry is not signed",
                             fix="sign it with the mission key: trucewatch keys sign FILE "
                             "--key-id MISSION_KEY --private-key KEY.pem --out SIGNED.json")
    env = open_envelope(raw)
    source = env.verify(keys, now)
    if source.split(":", 1)[0] != SIGNER_KIND:
        raise SignatureError(f"{name}: signed by key {env.key_id} of {source}, not a mission "
                             "key", fix="sign the coalition registry with the mission's key")
    try:
        text = env.payload.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{name}: the registry is not UTF-8 text", fix="save it as UTF-8"
                          ) from err
    reg = parse_coalition(text, name, [s.id for s in agreement.sectors],
                          {r.source for r in keys.records()})
    return Coalition(reg.mission, reg.contributors, env.key_id, reg.extra)


def load_coalition(path: Path, agreement: Agreement, keys: KeyRegistry,
                   now: datetime | None = None) -> Coalition:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the coalition registry ({err})",
                          fix="check the path given with --coalition") from err
    return read_coalition(raw, path.name, agreement, keys, now)
