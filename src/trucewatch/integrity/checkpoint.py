"""Signed checkpoints of the audit log, as Certificate Transparency and Rekor sign tree heads.

A checkpoint (``out/checkpoint-DATE.json``, written by every bulletin run) states how
long the log was and what its head was, signed with the mission's Ed25519 key::

    {"format": "trucewatch-checkpoint/1", "log_id": <hash of entry 1>, "seq": <last seq>,
     "head": <hash of entry seq>, "signed_at": "2026-05-31T06:00:00Z",
     "key_id": "mission/<16 hex>", "public_key": <base64 raw>, "signature": <base64>}

The signature is over the UTF-8 text (no trailing newline)::

    trucewatch-checkpoint/1\\n{log_id}\\n{seq}\\n{head}\\n{signed_at}\\n{key_id}

Whoever holds a checkpoint can later show that the log was truncated behind it (fewer
than ``seq`` entries) or rewritten (entry ``seq`` has another hash, or the chain to it
no longer verifies): ``trucewatch verify --store S --checkpoint C.json``.

The mission key (private) lives where the operator says: ``--mission-key`` (``run``),
else ``$TRUCEWATCH_MISSION_KEY``, else ``$XDG_CONFIG_HOME/trucewatch/mission-key.pem``
(``~/.config/...``): never by default beside the store or the bulletins, where whoever
can write the store's folder could read it and re-sign. It is created on first use with
permissions 0600, its public half beside it in ``mission-key.pub.json``. A key found at
the old default place (``mission-key.pem`` beside a SQLite store or in the out folder)
is refused with the command that moves it.

**Pinning.** The first checkpoint of a store appends a ``pin_mission_key`` entry to its
log (key id, public key, valid from), before the head it signs; a later checkpoint by
another key is refused. ``verify --checkpoint`` trusts only an explicit source: the
registry given with ``--keys`` (held apart from the store: the parties, headquarters),
else the key pinned in the store's log (trust on first use: as good as the log's first
entries, which every checkpoint held elsewhere binds). The ``mission-keys.json`` each
run writes beside the checkpoint is for others to fetch and pin; it is never trusted
because of where it lies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from trucewatch.errors import ConfigError, SignatureError
from trucewatch.integrity.chain import GENESIS, LogEntry
from trucewatch.integrity.keys import KeyRecord, KeyRegistry, new_keypair
from trucewatch.model.serialization import format_time, parse_time

FORMAT = "trucewatch-checkpoint/1"
KEY_ENV = "TRUCEWATCH_MISSION_KEY"
KEY_FILE = "mission-key.pem"
REGISTRY_FILE = "mission-keys.json"
SOURCE = "mission:trucewatch"
PIN_ACTION = "pin_mission_key"


class LogHolder(Protocol):
    path: str

    def audit_log(self) -> list[LogEntry]: ...

    def log(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Checkpoint:
    log_id: str
    seq: int
    head: str
    signed_at: str
    key_id: str
    public_key: bytes
    signature: bytes

    def message(self) -> bytes:
        return "\n".join((FORMAT, self.log_id, str(self.seq), self.head, self.signed_at,
                          self.key_id)).encode()

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "log_id": self.log_id, "seq": self.seq, "head": self.head,
                "signed_at": self.signed_at, "key_id": self.key_id,
                "public_key": base64.b64encode(self.public_key).decode(),
                "signature": base64.b64encode(self.signature).decode()}

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        """Read a checkpoint file; ConfigError (one line) when it is not one."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError(f"format is not {FORMAT}")
            seq = doc["seq"]
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                raise ValueError("seq is not a count of entries")
            return cls(str(doc["log_id"]), seq, str(doc["head"]), str(doc["signed_at"]),
                       str(doc["key_id"]),
                       base64.b64decode(str(doc["public_key"]), validate=True),
                       base64.b64decode(str(doc["signature"]), validate=True))
        except (OSError, ValueError, KeyError, TypeError, binascii.Error) as err:
            raise ConfigError(f"{path} is not a readable trucewatch checkpoint ({err})",
                              fix="give the checkpoint-DATE.json a bulletin run wrote") from err


def key_id_of(public: bytes) -> str:
    return "mission/" + hashlib.sha256(public).hexdigest()[:16]


def _raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def default_key_path() -> Path:
    """``$XDG_CONFIG_HOME/trucewatch/mission-key.pem`` (``~/.config`` without it)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "trucewatch" / KEY_FILE


def mission_key_path(store_path: str, out_dir: Path, given: Path | None = None) -> Path:
    """Where the mission key is: ``given`` (``--mission-key``), else $TRUCEWATCH_MISSION_KEY,
    else :func:`default_key_path`. ConfigError when none was said and a key lies at the
    old default place (beside a SQLite store, in the out folder): it must be moved."""
    if given is not None:
        return Path(given)
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV])
    default = default_key_path()
    old = [Path(out_dir) / KEY_FILE]
    if store_path and store_path != ":memory:" and "://" not in store_path:
        old.insert(0, Path(store_path).parent / KEY_FILE)
    for legacy in old:
        if legacy.exists() and legacy.resolve() != default.resolve():
            raise ConfigError(
                f"the mission key lies beside the store at {legacy}: whoever can write "
                "that folder could re-sign the log",
                fix=f"move it out (mkdir -p {default.parent} && mv {legacy} "
                    f"{_public_file(legacy)} {default.parent}/), or point ${KEY_ENV} at "
                    "its new place")
    return default


def _public_file(key_path: Path) -> Path:
    return key_path.with_name(key_path.stem + ".pub.json")


def mission_key(path: Path) -> tuple[Ed25519PrivateKey, KeyRecord]:
    """The mission key at ``path`` and its registry record, created on first use (0600,
    the public record beside it)."""
    pub_file = _public_file(path)
    if path.exists():
        try:
            private = load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as err:
            raise ConfigError(f"{path}: not a readable mission key ({err})",
                              fix=f"restore the mission key, or point ${KEY_ENV} at it"
                              ) from err
        if not isinstance(private, Ed25519PrivateKey):
            raise ConfigError(f"{path}: the mission key is not an Ed25519 key",
                              fix="create it with trucewatch (delete the file to start anew)")
        public = _raw_public(private)
        record = None
        if pub_file.exists():
            found = [r for r in KeyRegistry.load(pub_file).records()
                     if r.public_key == public]
            record = found[0] if found else None
        if record is None:  # the public record was lost: the key's file time stands in
            made = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(microsecond=0)
            record = KeyRecord(key_id_of(public), SOURCE, public, made)
            KeyRegistry([record]).save(pub_file)
        return private, record
    private, public = new_keypair()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    try:  # whole or not at all: two first runs at once both end with the same key
        os.link(tmp, path)
    except FileExistsError:
        return mission_key(path)
    finally:
        tmp.unlink()
    record = KeyRecord(key_id_of(public), SOURCE, public,
                       datetime.now(UTC).replace(microsecond=0))
    KeyRegistry([record]).save(pub_file)
    return private, record


def sign(log: Sequence[LogEntry], private: Ed25519PrivateKey,
         now: datetime | None = None) -> Checkpoint:
    """A checkpoint of ``log`` as it is now."""
    public = _raw_public(private)
    at = format_time((now or datetime.now(UTC)).replace(microsecond=0))
    unsigned = Checkpoint(log[0].hash if log else GENESIS, log[-1].seq if log else 0,
                          log[-1].hash if log else GENESIS, at, key_id_of(public), public, b"")
    return replace(unsigned, signature=private.sign(unsigned.message()))


def pinned(log: Sequence[LogEntry]) -> tuple[KeyRecord, int] | None:
    """The mission key pinned in the log (its first ``pin_mission_key`` entry) and that
    entry's seq; None when the log pins none. ConfigError when the pin is unreadable."""
    entry = next((e for e in log if e.action == PIN_ACTION), None)
    if entry is None:
        return None
    try:
        d = json.loads(entry.details)
        public = base64.b64decode(str(d["public_key"]), validate=True)
        record = KeyRecord(str(d["key_id"]), SOURCE, public, parse_time(str(d["valid_from"])))
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise ConfigError(f"the mission key pinned at log entry {entry.seq} is unreadable "
                          f"({err})", fix="give --keys with the mission key registry "
                          "held apart from the store") from err
    if record.key_id != key_id_of(public):
        raise ConfigError(f"the mission key pinned at log entry {entry.seq} names "
                          f"{record.key_id}, not its public key's id {key_id_of(public)}",
                          fix="give --keys with the mission key registry held apart from "
                          "the store")
    return record, entry.seq


def publish(store: LogHolder, out_dir: Path, day: date,
            key_path: Path | None = None) -> Path:
    """Write ``out_dir/checkpoint-DAY.json`` (``.revN.json`` when that exists) for the
    store's log as it is now, and the mission key's public record into
    ``out_dir/mission-keys.json``. The store's first checkpoint pins its key in the log;
    ConfigError when the key is not the one the store pinned."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    private, record = mission_key(mission_key_path(store.path, out_dir, key_path))
    pin = pinned(store.audit_log())
    if pin is None:
        store.log("mission", PIN_ACTION, record.key_id, {
            "key_id": record.key_id, "source": SOURCE,
            "public_key": base64.b64encode(record.public_key).decode(),
            "valid_from": format_time(record.valid_from)})
    elif pin[0].public_key != record.public_key:
        raise ConfigError(f"this store pinned mission key {pin[0].key_id} (log entry "
                          f"{pin[1]}); the key at hand is {record.key_id}",
                          fix=f"point --mission-key or ${KEY_ENV} at the mission key the "
                              "store pinned")
    cp = sign(store.audit_log(), private)
    registry_path = out_dir / REGISTRY_FILE
    registry = KeyRegistry.load(registry_path) if registry_path.exists() else KeyRegistry()
    if not any(r.key_id == record.key_id for r in registry.records()):
        registry.add(record)
        registry.save(registry_path)
    # a published checkpoint is never overwritten: a later run for the same day signs
    # its own head into checkpoint-DAY.rev2.json, .rev3..., beside it
    path = out_dir / f"checkpoint-{day.isoformat()}.json"
    k = 1
    while path.exists():
        k += 1
        path = out_dir / f"checkpoint-{day.isoformat()}.rev{k}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(cp.to_dict(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def trusted_registry(log: Sequence[LogEntry],
                     keys: Path | None = None) -> tuple[KeyRegistry, str]:
    """The registry a checkpoint of ``log`` is checked against, and where it came from:
    ``keys`` (``verify --keys``) if given, else the key pinned in the log. Never a file
    because it lies beside the checkpoint. ConfigError when there is neither."""
    if keys is not None:
        if not Path(keys).is_file():
            raise ConfigError(f"no mission key registry at {keys}",
                              fix="give --keys the mission-keys.json held apart from the store")
        return KeyRegistry.load(keys), f"the registry {keys}"
    pin = pinned(log)
    if pin is None:
        raise ConfigError("no trusted mission key to check the checkpoint with: the store "
                          "pins none (its log was written before pinning) and --keys was "
                          "not given; a mission-keys.json beside the checkpoint is not "
                          "trusted",
                          fix="give --keys with the mission key registry held apart from "
                              "the store (the parties', headquarters' copy)")
    return KeyRegistry([pin[0]]), f"the key pinned at log entry {pin[1]}"


def check(cp: Checkpoint, log: Sequence[LogEntry], registry: KeyRegistry,
          name: str = "the checkpoint") -> list[str]:
    """The problems of ``log`` against checkpoint ``cp`` (empty when it holds), each one
    line: a signature or key that does not check, a log truncated or rewritten behind it."""
    try:
        signed_at = parse_time(cp.signed_at)
        record = registry.check_usable(cp.key_id, signed_at)
    except ValueError as err:
        return [f"{name} has an unreadable signing time {cp.signed_at!r} ({err})"]
    except SignatureError as err:
        return [f"{name} is not signed by a mission key in the registry: {err}"]
    if record.public_key != cp.public_key:
        return [f"{name} carries a public key other than the registry's for {cp.key_id}"]
    try:
        Ed25519PublicKey.from_public_bytes(record.public_key).verify(cp.signature,
                                                                     cp.message())
    except (InvalidSignature, ValueError):
        return [f"{name}: bad signature by {cp.key_id}: the checkpoint was altered or not "
                "signed with the mission key"]
    if len(log) < cp.seq or (log and log[-1].seq < cp.seq):
        have = log[-1].seq if log else 0
        return [f"log truncated behind {name}: it signed {cp.seq} entries (head "
                f"{cp.head[:16]}), the store has {have}"]
    if cp.seq == 0:
        return []
    if log[0].hash != cp.log_id:
        return [f"log rewritten behind {name}: entry 1 has hash {log[0].hash[:16]}, the "
                f"checkpoint's log begins with {cp.log_id[:16]}"]
    at = next((e for e in log if e.seq == cp.seq), None)
    if at is None or at.hash != cp.head:
        return [f"log rewritten behind {name}: entry {cp.seq} has hash "
                f"{at.hash[:16] if at else 'none'}, the checkpoint signed {cp.head[:16]}"]
    return []
