"""A hash-chained, append-only log.

Each entry's hash covers its own fields and the previous entry's hash, so changing,
removing or reordering any entry breaks every link after it; :func:`verify_chain`
names the first broken one. The hash is SHA-256 over canonical JSON (sorted keys,
no spaces, UTF-8), which any third party can recompute without trucewatch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class LogEntry:
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    details: str  # canonical JSON text
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "actor": self.actor, "action": self.action,
                "subject": self.subject, "details": self.details, "prev_hash": self.prev_hash}


def entry_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(body)).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    first_broken: int | None = None  # seq of the first entry that does not verify
    problem: str = ""
    head: str = GENESIS  # hash of the last good entry

    def one_line(self) -> str:
        if self.ok:
            return f"audit chain OK: {self.entries} entries, head {self.head[:16]}"
        return f"audit chain BROKEN at entry {self.first_broken}: {self.problem}"


def verify_chain(entries: Iterable[LogEntry]) -> ChainReport:
    prev, expected_seq, n = GENESIS, 1, 0
    for e in entries:
        n += 1
        if e.seq != expected_seq:
            return ChainReport(False, n, e.seq, f"sequence jumps from {expected_seq - 1} to "
                               f"{e.seq}: entries were removed or reordered", prev)
        if e.prev_hash != prev:
            return ChainReport(False, n, e.seq, "prev_hash does not match the previous "
                               "entry's hash: an earlier entry was altered or removed", prev)
        if entry_hash(e.body()) != e.hash:
            return ChainReport(False, n, e.seq, f"hash mismatch: entry {e.seq} ({e.action} "
                               f"{e.subject}) was altered after it was written", prev)
        prev, expected_seq = e.hash, expected_seq + 1
    return ChainReport(True, n, None, "", prev)
