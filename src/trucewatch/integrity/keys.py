"""The key registry: which Ed25519 public key a sensor, platform or party may sign with,
and when.

A registry file (JSON or YAML) lists keys::

    keys:
      - key_id: drone-ua-07/2026-05
        source: drone:UA-07          # who signs with it (source kind : platform id)
        public_key: <base64 of the 32 raw bytes>
        valid_from: 2026-05-01T00:00:00Z
        valid_until: 2026-06-01T00:00:00Z   # rotation: the next key takes over
        revoked_at: null                     # compromise: nothing signed from then on counts
        revoked_reason: ""
      - key_id: net-east/2026-05
        source: sensors:net-east             # a sensor network...
        speaks_for: [ST01, ST02, "E*"]       # ...and the stations it may speak for

A signature counts when its ``signed_at`` lies in ``[valid_from, valid_until)`` and
before ``revoked_at``.

A key is bound to what it speaks for: the source kind before the colon (``drone``,
``sensors``, ``allegations``, ``firms``, ``mission``) and the platform, station or party
after it, plus any listed in ``speaks_for`` (``*`` and ``?`` match as in file names).
An input signed by a key of another kind, or naming a platform, station or claimant
the key does not speak for, is refused (:mod:`trucewatch.intake`).
"""

from __future__ import annotations

import base64
import fnmatch
import json
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from trucewatch.errors import ConfigError, SignatureError
from trucewatch.model.serialization import format_time, parse_time


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    source: str
    public_key: bytes
    valid_from: datetime
    valid_until: datetime | None = None
    revoked_at: datetime | None = None
    revoked_reason: str = ""
    speaks_for: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """The source kind the key signs for (``drone`` of ``drone:UA-07``)."""
        return self.source.split(":", 1)[0]

    @property
    def subject(self) -> str:
        """The platform, network or party after the colon ('' when none)."""
        return self.source.split(":", 1)[1] if ":" in self.source else ""

    def speaks(self, who: str) -> bool:
        """May this key speak for the platform, station or party ``who``?"""
        return who == self.subject or any(fnmatch.fnmatchcase(who, p)
                                          for p in self.speaks_for)

    def to_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "source": self.source,
                "speaks_for": list(self.speaks_for),
                "public_key": base64.b64encode(self.public_key).decode(),
                "valid_from": format_time(self.valid_from),
                "valid_until": format_time(self.valid_until) if self.valid_until else None,
                "revoked_at": format_time(self.revoked_at) if self.revoked_at else None,
                "revoked_reason": self.revoked_reason}


def new_keypair() -> tuple[Ed25519PrivateKey, bytes]:
    """A fresh private key and its raw 32-byte public key."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return private, public


class KeyRegistry:
    def __init__(self, records: list[KeyRecord] | None = None) -> None:
        self._by_id: dict[str, KeyRecord] = {}
        for r in records or []:
            self.add(r)

    def add(self, record: KeyRecord) -> None:
        if record.key_id in self._by_id:
            raise ConfigError(f"key {record.key_id} is registered twice",
                              fix="give each key a unique key_id")
        _check_names(record, self._by_id.values())
        if len(record.public_key) != 32:
            raise ConfigError(f"key {record.key_id}: an Ed25519 public key is 32 bytes, "
                              f"got {len(record.public_key)}", fix="export the raw public key")
        self._by_id[record.key_id] = record

    def rotate(self, old_id: str, new: KeyRecord) -> None:
        """End ``old_id`` where ``new`` begins, and register ``new``."""
        old = self.get(old_id)
        self._by_id[old_id] = replace(old, valid_until=new.valid_from)
        self.add(new)

    def revoke(self, key_id: str, at: datetime, reason: str) -> None:
        self._by_id[key_id] = replace(self.get(key_id), revoked_at=at, revoked_reason=reason)

    def get(self, key_id: str) -> KeyRecord:
        try:
            return self._by_id[key_id]
        except KeyError:
            raise SignatureError(f"unknown key {key_id!r}",
                                 fix="register the key in the key registry") from None

    def __len__(self) -> int:
        return len(self._by_id)

    def check_usable(self, key_id: str, signed_at: datetime) -> KeyRecord:
        """The key, if a signature made at ``signed_at`` may count; else SignatureError."""
        k = self.get(key_id)
        if signed_at < k.valid_from:
            raise SignatureError(f"key {key_id} was not valid yet at {format_time(signed_at)} "
                                 f"(valid from {format_time(k.valid_from)})",
                                 fix="sign with the key in force at the time")
        if k.valid_until is not None and signed_at >= k.valid_until:
            raise SignatureError(f"key {key_id} was rotated out at {format_time(k.valid_until)}"
                                 f"; submission signed at {format_time(signed_at)}",
                                 fix="sign with the current key")
        if k.revoked_at is not None and signed_at >= k.revoked_at:
            raise SignatureError(f"key {key_id} was revoked at {format_time(k.revoked_at)} "
                                 f"({k.revoked_reason or 'no reason given'})",
                                 fix="issue the platform a new key and re-sign")
        return k

    def public_key(self, key_id: str) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.get(key_id).public_key)

    # ------------------------------------------------------------- files
    @classmethod
    def load(cls, path: Path | str) -> KeyRegistry:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"{path}: cannot read the key registry ({err})",
                              fix="check the path given with --keys") from err
        return cls.from_text(text, str(path))

    @classmethod
    def from_text(cls, text: str, name: str) -> KeyRegistry:
        """A registry from its JSON or YAML text (JSON is YAML; aliases are refused)."""
        path = name
        if "&" in text and "*" in text and not text.lstrip().startswith("{"):
            # an anchor and an alias: YAML's way to make a tiny file expand without bound
            try:
                events = list(yaml.parse(text, Loader=yaml.SafeLoader))
            except (yaml.YAMLError, RecursionError):
                events = []
            if any(isinstance(e, yaml.AliasEvent) for e in events):
                raise ConfigError(f"{name}: YAML aliases (*name) are not accepted in a key "
                                  "registry", fix="write each key out in full")
        try:
            doc = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError, RecursionError) as err:
            raise ConfigError(f"{name}: not a readable key registry ({err})".splitlines()[0],
                              fix="write it as JSON or YAML with a list of keys") from err
        doc = doc or {}
        items = doc.get("keys", []) if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise ConfigError(f"{name}: a key registry is a mapping with a list of keys",
                              fix="see docs/review-and-integrity.md")
        records = []
        for k, item in enumerate(items):
            try:
                records.append(KeyRecord(
                    key_id=str(item["key_id"]), source=str(item["source"]),
                    public_key=base64.b64decode(item["public_key"], validate=True),
                    valid_from=parse_time(str(item["valid_from"])),
                    valid_until=parse_time(str(item["valid_until"]))
                    if item.get("valid_until") else None,
                    revoked_at=parse_time(str(item["revoked_at"]))
                    if item.get("revoked_at") else None,
                    revoked_reason=str(item.get("revoked_reason") or ""),
                    speaks_for=_names(item.get("speaks_for"))))
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                raise ConfigError(f"{path}: keys[{k}] is malformed ({err})",
                                  fix="each key needs key_id, source, public_key (base64), "
                                  "valid_from") from err
        return cls(records)

    def records(self) -> list[KeyRecord]:
        return list(self._by_id.values())

    def save(self, path: Path | str) -> None:
        doc = {"keys": [r.to_dict() for r in self._by_id.values()]}
        Path(path).write_text(json.dumps(doc, indent=2), encoding="utf-8")


def _check_names(record: KeyRecord, held: Any) -> None:
    """A key's id, source and the names it speaks for hold no hidden character and no
    mix of scripts, and neither its id nor its source looks like another key's
    (model.lookalike): ``drone:UА-07`` with a Cyrillic А beside ``drone:UA-07`` would
    read as that platform's key."""
    from trucewatch.model.lookalike import identifier_problem, lookalike

    held = list(held)
    for what, value in (("key id", record.key_id), ("source", record.source),
                        *(("speaks_for name", n) for n in record.speaks_for)):
        why = identifier_problem(value)
        if why:
            raise ConfigError(f"key {record.key_id!r}: {what} {why}",
                              fix="write it in one script, without hidden characters")
    twin = lookalike(record.key_id, (r.key_id for r in held))
    if twin is not None:
        raise ConfigError(f"key id {record.key_id!r} looks like key {twin!r} (letters of "
                          "another script, or case, that read the same)",
                          fix="give the key an id that does not look like another's")
    twin = lookalike(record.source, {r.source for r in held})
    if twin is not None:
        raise ConfigError(f"key {record.key_id!r}: source {record.source!r} looks like "
                          f"source {twin!r} of another key: its signatures would read as "
                          "that source's", fix="use the source's own name (a rotation "
                          "keeps the same source) or one that does not look like another's")


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("speaks_for must be a list of platform, station or party names")
    return tuple(value)
