"""Receiving a submission: signature check per source policy, parsing, storage.

Whatever happens, nothing is lost: a refused submission (unsigned where the policy
requires a signature, badly signed, revoked key, replayed, unreadable) is stored
verbatim as an evidentiary copy with the reason, and the refusal is logged in the
hash chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from trucewatch.errors import InputFileError, ReplayError, SignatureError
from trucewatch.ingest.base import Batch, QuarantineEntry, SourceAdapter, sha256
from trucewatch.integrity.envelope import SourcePolicy, is_envelope, open_envelope
from trucewatch.integrity.keys import KeyRegistry
from trucewatch.model.serialization import format_time
from trucewatch.storage.base import IngestReport
from trucewatch.storage.sqlite import SqliteStore

# default policies: platforms and sensors sign; people filing allegations need not
DEFAULT_POLICIES: dict[str, SourcePolicy] = {
    "drone": SourcePolicy.REQUIRE,
    "sensors": SourcePolicy.QUARANTINE,
    "allegations": SourcePolicy.OPTIONAL,
    "firms": SourcePolicy.OPTIONAL,  # NASA's files come over TLS, not signed
}


@dataclass
class Outcome:
    name: str
    report: IngestReport | None = None
    refused: str = ""
    signed_by: str = ""
    quarantined: list[QuarantineEntry] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.report is not None


def receive(store: SqliteStore, raw: bytes, name: str, adapter: SourceAdapter, *,
            registry: KeyRegistry | None = None, policy: SourcePolicy | None = None,
            now: datetime | None = None, actor: str = "ingest") -> Outcome:
    policy = policy or DEFAULT_POLICIES.get(adapter.name, SourcePolicy.OPTIONAL)
    source = adapter.name
    signed: dict[str, str] = {}
    payload = raw
    try:
        if is_envelope(raw):
            sub = open_envelope(raw)
            signer = sub.verify(registry or KeyRegistry(), now)
            payload = sub.payload
            signed = {"key_id": sub.key_id, "nonce": sub.nonce,
                      "signed_at": format_time(sub.signed_at), "signer": signer}
        elif policy == SourcePolicy.REQUIRE:
            raise SignatureError(f"unsigned submission: the {source} source policy requires "
                                 "an Ed25519 signature", fix="sign it with the platform's key")
        batch = _parse(adapter, payload, name, now)
    except (SignatureError, InputFileError) as err:
        store.refuse(raw, name, source, err.message, actor)
        return Outcome(name, refused=err.message)
    if signed:
        batch = replace(batch, raw=raw, sha256=sha256(raw), signed=signed)
    elif policy == SourcePolicy.QUARANTINE:
        batch = _quarantine_all(batch, f"unsigned submission quarantined by the {source} "
                                "source policy; vouch for it or resend it signed")
    try:
        report = store.ingest(batch, actor=actor)
    except ReplayError as err:
        return Outcome(name, refused=err.message)
    return Outcome(name, report, signed_by=signed.get("key_id", ""),
                   quarantined=batch.quarantine)


def _parse(adapter: SourceAdapter, raw: bytes, name: str, now: datetime | None) -> Batch:
    parse = adapter.parse
    if now is not None and "now" in parse.__code__.co_varnames:
        return parse(raw, name, now=now)  # type: ignore[call-arg]
    return parse(raw, name)


def _quarantine_all(batch: Batch, reason: str) -> Batch:
    text = batch.raw.decode("utf-8", errors="replace")
    return replace(batch, n_rows=1, records=batch.records.clear(),
                   quarantine=[QuarantineEntry(0, reason, text)])


