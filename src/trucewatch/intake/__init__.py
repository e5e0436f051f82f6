"""The one intake every input passes: FIRMS files, station inventories, detections,
drone reports, allegations, key registries and agreements, from every command and route.

Each input, in two steps:

1. :func:`open_input` (nothing stored yet): unpack it as received (bounded gunzip),
   open its signed envelope if it has one and check the signature, the key's validity
   and the key's **binding** (its source kind, and every platform, station or claimant
   the input speaks for), apply the source's signature policy, and parse it with the
   source's adapter;
2. :func:`keep`: store it, whatever the outcome. Accepted: the batch, with the input's
   bytes exactly as received (gzip stays gzip) as the evidentiary copy. Quarantined by
   policy (unsigned where the policy quarantines): kept, with no usable record. Refused
   (unsigned where required, bad signature, mis-bound key, replay, unreadable): kept
   verbatim with the reason. Every outcome is in the hash-chained audit log.

:func:`receive` does both. Nothing is lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import polars as pl

from trucewatch.errors import (
    BindingError,
    ReplayError,
    SignatureError,
    StorageError,
    TrucewatchError,
)
from trucewatch.ingest.base import Batch, QuarantineEntry, SourceAdapter, sha256, unpack
from trucewatch.ingest.heartbeats import quarantine_after_signature
from trucewatch.integrity.envelope import (
    CLOCK_SKEW,
    SourcePolicy,
    is_envelope,
    open_envelope,
)
from trucewatch.integrity.keys import KeyRecord, KeyRegistry
from trucewatch.model.enums import SignerKind, SourceName
from trucewatch.model.serialization import format_time, parse_time
from trucewatch.storage.base import IngestReport
from trucewatch.storage.protocols import EvidenceStore

log = logging.getLogger(__name__)

# platforms and sensors sign; people filing allegations need not; NASA's files come over
# TLS, unsigned. Unsigned sensor inputs are kept but quarantined: a made-up detections
# file or station inventory must not become located explosions.
DEFAULT_POLICIES: dict[str, SourcePolicy] = {
    SourceName.DRONE: SourcePolicy.REQUIRE,
    SourceName.STATIONS: SourcePolicy.QUARANTINE,
    SourceName.DETECTIONS: SourcePolicy.QUARANTINE,
    SourceName.HEARTBEATS: SourcePolicy.QUARANTINE,
    SourceName.ALLEGATIONS: SourcePolicy.OPTIONAL,
    SourceName.FIRMS: SourcePolicy.OPTIONAL,
    SourceName.AGREEMENT: SourcePolicy.OPTIONAL,
    SourceName.KEYS: SourcePolicy.OPTIONAL,
}

# which kind of key may sign each source's inputs (KeyRecord.kind)
SIGNER_KIND: dict[str, str] = {
    SourceName.DRONE: SignerKind.DRONE,
    SourceName.STATIONS: SignerKind.SENSORS,
    SourceName.DETECTIONS: SignerKind.SENSORS,
    SourceName.HEARTBEATS: SignerKind.SENSORS,
    SourceName.ALLEGATIONS: SignerKind.ALLEGATIONS,
    SourceName.FIRMS: SignerKind.FIRMS,
    SourceName.AGREEMENT: SignerKind.MISSION,
    SourceName.KEYS: SignerKind.MISSION,
}


def signer_kind(adapter: SourceAdapter) -> str:
    """The key kind that may sign this source (a third-party source: its own name)."""
    return SIGNER_KIND.get(adapter.name, adapter.name)


def speakers(adapter: SourceAdapter, batch: Batch, payload: bytes) -> set[str]:
    """The platforms, stations or parties an input speaks for (empty: nobody in
    particular, as a FIRMS file); adapters say it with a ``speakers`` method."""
    method = getattr(adapter, "speakers", None)
    return set(method(batch, payload)) if callable(method) else set()


@dataclass
class Received:
    """An input opened and checked, not yet stored."""

    name: str
    source: str
    raw: bytes  # exactly as received
    policy: SourcePolicy
    batch: Batch | None = None
    refused: str = ""
    signed: dict[str, str] = field(default_factory=dict)
    # what the adapter parsed: the input unpacked and out of its envelope (empty when
    # refused), so that a later step needs not open it again
    payload: bytes = b""

    @property
    def quarantined_by_policy(self) -> bool:
        return self.batch is not None and not self.signed and \
            self.policy == SourcePolicy.QUARANTINE


@dataclass
class Outcome:
    name: str
    report: IngestReport | None = None
    refused: str = ""
    signed_by: str = ""
    quarantined: list[QuarantineEntry] = field(default_factory=list)
    batch: Batch | None = None  # what was stored (records empty when quarantined whole)

    @property
    def accepted(self) -> bool:
        return self.report is not None

    @property
    def usable(self) -> bool:
        """Stored with records that may be used (not refused, not quarantined whole)."""
        return self.batch is not None and self.batch.records.height > 0


def open_input(raw: bytes, name: str, adapter: SourceAdapter, *,
               registry: KeyRegistry | None = None, policy: SourcePolicy | None = None,
               now: datetime | None = None) -> Received:
    """Check and parse an input as received; nothing is stored (see :func:`keep`)."""
    source = adapter.name
    policy = policy or DEFAULT_POLICIES.get(source, SourcePolicy.OPTIONAL)
    got = Received(name, source, raw, policy)
    try:
        payload = unpack(raw, name)
        record: KeyRecord | None = None
        if is_envelope(payload):
            sub = open_envelope(payload)
            reg = registry or KeyRegistry()
            sub.verify(reg, now)
            record = reg.get(sub.key_id)
            received = now or datetime.now(UTC)
            if record.revoked_at is not None and received >= record.revoked_at:
                # signed_at is the signer's word: whoever holds a compromised key can
                # backdate it, so nothing received after the revocation counts
                raise SignatureError(
                    f"key {sub.key_id} was revoked at {format_time(record.revoked_at)} "
                    f"({record.revoked_reason or 'no reason given'}); a submission "
                    "received after its revocation is refused, whatever its signed_at",
                    fix="re-sign with the platform's new key")
            want = signer_kind(adapter)
            if record.kind != want:
                raise BindingError(
                    f"key {sub.key_id} is bound to {record.source}: it may not sign a "
                    f"{source} input (which needs a {want} key)",
                    fix=f"sign {source} inputs with a {want} key registered for them")
            payload = unpack(sub.payload, name)
            got.signed = {"key_id": sub.key_id, "nonce": sub.nonce,
                          "signed_at": format_time(sub.signed_at), "signer": record.source}
        elif policy == SourcePolicy.REQUIRE:
            raise SignatureError(f"unsigned submission: the {source} source policy requires "
                                 "an Ed25519 signature", fix="sign it with the platform's key")
        batch = _parse(adapter, payload, name, now)
        if record is not None:
            if source == SourceName.HEARTBEATS:  # per row: each a station's own word
                batch = quarantine_after_signature(batch, sub.signed_at, CLOCK_SKEW)
            else:
                _check_signed_after_content(batch, got.signed["signed_at"])
            foreign = sorted(w for w in speakers(adapter, batch, payload)
                             if not record.speaks(w))
            if foreign:
                more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
                raise BindingError(
                    f"key {record.key_id} ({record.source}) does not speak for "
                    f"{', '.join(foreign[:3])}{more}", fix="each platform, station or party "
                    "signs with its own key (the registry's source and speaks_for)")
        got.batch = batch
        got.payload = payload
    except (SignatureError, TrucewatchError) as err:
        if isinstance(err, StorageError):
            raise
        got.refused = err.message
    except Exception as err:  # a parser's bug must not lose the input: kept and refused
        log.exception("reading %s", name)
        got.refused = f"internal error while reading ({type(err).__name__}: {err})"[:500]
    return got


def keep(store: EvidenceStore, got: Received, actor: str = "ingest") -> Outcome:
    """Store a checked input, whatever its outcome (accepted, quarantined, refused)."""
    if got.batch is None:
        store.refuse(got.raw, got.name, got.source, got.refused, actor)
        return Outcome(got.name, refused=got.refused)
    batch = replace(got.batch, raw=got.raw, sha256=sha256(got.raw), signed=got.signed)
    if got.quarantined_by_policy:
        batch = _quarantine_all(batch, f"unsigned submission quarantined by the {got.source} "
                                "source policy; vouch for it or resend it signed")
    try:
        report = store.ingest(batch, actor=actor)
    except ReplayError as err:
        return Outcome(got.name, refused=err.message)
    return Outcome(got.name, report, signed_by=got.signed.get("key_id", ""),
                   quarantined=batch.quarantine, batch=batch)


def receive(store: EvidenceStore, raw: bytes, name: str, adapter: SourceAdapter, *,
            registry: KeyRegistry | None = None, policy: SourcePolicy | None = None,
            now: datetime | None = None, actor: str = "ingest") -> Outcome:
    """Open, check and keep one input (see the module's docstring)."""
    return keep(store, open_input(raw, name, adapter, registry=registry, policy=policy,
                                  now=now), actor)


def _check_signed_after_content(batch: Batch, signed_at: str) -> None:
    """A signature cannot come before what it signs: an envelope signed before the
    latest observation in it was backdated (a revoked key's favourite trick)."""
    times = [parse_time(str(v)) for col in ("t0", "t1", "t") if col in batch.records.columns
             for v in batch.records[col].drop_nulls().to_list()]
    # detections stored as received carry their times as datetimes
    if "time" in batch.records.columns and batch.records["time"].dtype == pl.Datetime(
            "us", "UTC") and batch.records["time"].drop_nulls().len():
        times.append(batch.records["time"].max())  # type: ignore[arg-type]
    if not times:
        return
    when = max(times)
    if when > parse_time(signed_at) + CLOCK_SKEW:
        raise SignatureError(f"signed at {signed_at}, before the observation of "
                             f"{format_time(when)} it contains: a backdated signature",
                             fix="sign a submission after what it reports")


def _parse(adapter: SourceAdapter, raw: bytes, name: str, now: datetime | None) -> Batch:
    parse = adapter.parse
    if now is not None and "now" in parse.__code__.co_varnames:
        return parse(raw, name, now=now)  # type: ignore[call-arg]
    return parse(raw, name)


def _quarantine_all(batch: Batch, reason: str) -> Batch:
    text = unpack(batch.raw, batch.name)[:1_000_000].decode("utf-8", errors="replace")
    return replace(batch, n_rows=1, records=batch.records.clear(),
                   observations=batch.observations.clear(),
                   quarantine=[QuarantineEntry(0, reason, text)])
