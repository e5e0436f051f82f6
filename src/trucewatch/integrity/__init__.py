"""Evidence integrity: Ed25519 signed submissions, the key registry, the hash-chained log.

A low layer (like ``geo``): ingest and storage use it; it imports only the model.
"""

from trucewatch.integrity.chain import ChainReport, LogEntry, entry_hash, verify_chain
from trucewatch.integrity.envelope import (
    SignedSubmission,
    SourcePolicy,
    open_envelope,
    sign_submission,
)
from trucewatch.integrity.keys import KeyRecord, KeyRegistry, new_keypair

__all__ = ["ChainReport", "KeyRecord", "KeyRegistry", "LogEntry", "SignedSubmission",
           "SourcePolicy", "entry_hash", "new_keypair", "open_envelope", "sign_submission",
           "verify_chain"]
