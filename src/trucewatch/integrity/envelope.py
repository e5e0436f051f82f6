"""Signed submissions: any raw input (a drone report, a detections file...) wrapped in a
JSON envelope with an Ed25519 signature.

Envelope (``format: trucewatch-signed/1``)::

    {"format": "trucewatch-signed/1", "key_id": "...", "signed_at": "2026-05-30T04:10:00Z",
     "nonce": "<unique per submission>", "payload_sha256": "<hex>",
     "payload": "<base64 of the raw bytes>", "signature": "<base64, 64 bytes>"}

The signature covers ``trucewatch-signed/1\\n{key_id}\\n{signed_at}\\n{nonce}\\n
{payload_sha256}``: changing the payload, the time, the nonce or the key breaks it.
Replays (a nonce already received) are refused by the store, which remembers nonces.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trucewatch.errors import SignatureError
from trucewatch.integrity.keys import KeyRegistry
from trucewatch.model.serialization import format_time, parse_time

FORMAT = "trucewatch-signed/1"
# a signing clock may run a little fast; beyond this a time in the future is refused
CLOCK_SKEW = timedelta(minutes=5)


class SourcePolicy(StrEnum):
    """What to do with an unsigned submission of a source."""

    REQUIRE = "require"  # refuse it (recorded, raw kept)
    QUARANTINE = "quarantine"  # keep it, quarantined, until someone vouches for it
    OPTIONAL = "optional"  # accept it, marked unsigned


@dataclass(frozen=True)
class SignedSubmission:
    key_id: str
    signed_at: datetime
    nonce: str
    payload: bytes
    payload_sha256: str
    signature: bytes

    def message(self) -> bytes:
        return _message(self.key_id, self.signed_at, self.nonce, self.payload_sha256)

    def verify(self, registry: KeyRegistry, now: datetime | None = None,
               expected_source: str | None = None) -> str:
        """Check the signature and the key's validity; return the key's source.
        Raises SignatureError with the reason."""
        now = now or datetime.now(UTC)
        if self.signed_at > now + CLOCK_SKEW:
            raise SignatureError(f"signed_at {format_time(self.signed_at)} is in the future",
                                 fix="check the platform's clock")
        if hashlib.sha256(self.payload).hexdigest() != self.payload_sha256:
            raise SignatureError("payload does not match its payload_sha256: the content was "
                                 "altered after signing", fix="resend the original submission")
        record = registry.check_usable(self.key_id, self.signed_at)
        if expected_source and record.source != expected_source:
            raise SignatureError(f"key {self.key_id} belongs to {record.source}, not "
                                 f"{expected_source}", fix="sign with the platform's own key")
        try:
            registry.public_key(self.key_id).verify(self.signature, self.message())
        except InvalidSignature:
            raise SignatureError(f"bad signature with key {self.key_id}: the submission was "
                                 "altered or signed with another key",
                                 fix="resend the original submission") from None
        return record.source


def _message(key_id: str, signed_at: datetime, nonce: str, payload_sha256: str) -> bytes:
    return f"{FORMAT}\n{key_id}\n{format_time(signed_at)}\n{nonce}\n{payload_sha256}".encode()


def sign_submission(payload: bytes, private_key: Ed25519PrivateKey, key_id: str,
                    signed_at: datetime, nonce: str) -> bytes:
    digest = hashlib.sha256(payload).hexdigest()
    sig = private_key.sign(_message(key_id, signed_at, nonce, digest))
    return json.dumps({"format": FORMAT, "key_id": key_id, "signed_at": format_time(signed_at),
                       "nonce": nonce, "payload_sha256": digest,
                       "payload": base64.b64encode(payload).decode(),
                       "signature": base64.b64encode(sig).decode()}, indent=1).encode()


def is_envelope(raw: bytes) -> bool:
    """An envelope is a JSON object whose (first) ``format`` is ``trucewatch-signed/1``: a
    document that merely quotes the name (an allegation's text) is none."""
    if raw.lstrip()[:1] != b"{":
        return False
    m = _FORMAT_KEY.search(raw[:4096])
    return m is not None and m.group(1) == FORMAT.encode()


_FORMAT_KEY = re.compile(rb'"format"\s*:\s*"([^"\\]{0,100})"')


def open_envelope(raw: bytes) -> SignedSubmission:
    """Parse an envelope (without verifying it). Raises SignatureError if malformed."""
    try:
        doc = json.loads(raw)
        if doc.get("format") != FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}, expected {FORMAT}")
        return SignedSubmission(
            key_id=str(doc["key_id"]), signed_at=parse_time(str(doc["signed_at"])),
            nonce=str(doc["nonce"]), payload=base64.b64decode(doc["payload"], validate=True),
            payload_sha256=str(doc["payload_sha256"]),
            signature=base64.b64decode(doc["signature"], validate=True))
    except (ValueError, KeyError, TypeError, binascii.Error, AttributeError,
            RecursionError) as err:
        raise SignatureError(f"malformed signed envelope ({err})",
                             fix=f"wrap the payload as documented ({FORMAT})") from err
