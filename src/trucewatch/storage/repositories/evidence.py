"""Evidence: raw inputs kept verbatim, batches, quarantine, refusals, the audit log and
its verification.

* Raw inputs are kept verbatim (zlib-compressed) under their SHA-256; ingesting the
  same file again is recognised and changes nothing.
* An observation's id is the hash of its identity (source, sensor, coordinates as
  printed, date, time), so overlapping downloads store each detection once.
* One batch is one transaction: a crash mid-ingest leaves no half batch.
"""

from __future__ import annotations

import hashlib
import json
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import polars as pl
import sqlalchemy as sa

from trucewatch.errors import NotFoundError, ReplayError, StorageError
from trucewatch.ingest.base import Batch, QuarantineEntry
from trucewatch.integrity.chain import LogEntry, verify_chain
from trucewatch.model.enums import SourceKind
from trucewatch.storage import binding
from trucewatch.storage.base import IngestReport
from trucewatch.storage.database import now
from trucewatch.storage.dialect import (
    bulk_cache,
    bulk_insert_ignore,
    index_points,
    insert_ignore,
    is_unique_violation,
)
from trucewatch.storage.repositories.base import Repository, dicts
from trucewatch.storage.repositories.rows import COLUMNS, hilbert_order, observation_frame

CHUNK = 20_000  # observation rows per insert (and per progress call)
# zlib level of the kept raw inputs: level 1 shrinks a FIRMS CSV 4.4x (level 6: 5.5x) in
# a third of level 6's time (which took up to 3 s of a 100 k-row batch on a loaded
# machine); every level decompresses alike, so level-6 copies read and verify as before
RAW_LEVEL = 1
INSERT_ORDER = "hilbert"  # or "id", "none" (as the batch came): benchmarks compare them
COUNTED = ("raw_inputs", "batches", "observations", "quarantine", "incidents", "violations",
           "allegations", "rulings", "refused", "audit_log")


class _ReplayedError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EvidenceRepository(Repository):
    """Raw inputs, batches, quarantine, refusals and the audit log."""

    # test hook: simulate a crash after this many observation rows of a batch
    _fail_after_rows: int | None = None

    # ------------------------------------------------------------- ingest
    def ingest(self, batch: Batch, on_progress: Callable[[int], None] | None = None,
               actor: str = "ingest") -> IngestReport:
        """Store a batch all-or-nothing and log it; a replayed signed submission is refused
        (recorded, raw kept) with ReplayError."""
        if not batch.raw:
            raise StorageError(f"{batch.name}: batch has no raw bytes to keep",
                               fix="read the file with keep_raw=True")
        batch_id = f"b-{uuid.uuid4().hex[:12]}"
        frame = observation_frame(batch.observations, batch_id, batch.name)
        try:
            return self._ingest(batch, batch_id, frame, on_progress, actor)
        except _ReplayedError as replay:
            reason = replay.reason
        except Exception as err:
            # two processes received the same signed submission at once: the second one's
            # nonce insert fails inside its transaction (rolled back), and it is a replay
            if not (batch.signed and is_unique_violation(err)):
                raise
            first = self._first_received(batch.signed["key_id"], batch.signed["nonce"])
            reason = (f"replayed submission: nonce {batch.signed['nonce']} was first "
                      f"received at {first or 'the same moment'}")
        self.refuse(batch.raw, batch.name, batch.source, reason, actor)
        raise ReplayError(f"{batch.name}: {reason}",
                          fix="send each submission once, with a fresh nonce")

    def _first_received(self, key_id: str, nonce: str) -> str | None:
        """When this key's submission with this nonce was received (nonces are unique per
        signing key: another key's nonce, however guessable, is never this key's replay)."""
        sub = self._t("submissions")
        first = self._x(sa.select(sub.c.received_at).where(sub.c.key_id == key_id,
                                                           sub.c.nonce == nonce)).scalar()
        return None if first is None else str(first)

    def _ingest(self, batch: Batch, batch_id: str, frame: pl.DataFrame,
                on_progress: Callable[[int], None] | None, actor: str) -> IngestReport:
        # the checks run inside the writing transaction, so that two processes receiving
        # the same input at once see each other (SQLite: BEGIN IMMEDIATE serialises them)
        b, q = self._t("batches"), self._t("quarantine")
        with bulk_cache(self._dialect, self._db.conn, frame.height), self._transaction():
            seen = self._x(sa.select(b.c.id, b.c.rows, b.c.new, b.c.duplicates,
                                     b.c.quarantined).where(b.c.raw_sha256 == batch.sha256)
                           ).first()
            if seen:
                return IngestReport(seen[0], batch.name, batch.sha256, seen[1], 0, seen[1] -
                                    seen[4], seen[4], already_ingested=True)
            if batch.signed:
                first = self._first_received(batch.signed["key_id"], batch.signed["nonce"])
                if first:
                    raise _ReplayedError(f"replayed submission: nonce "
                                         f"{batch.signed['nonce']} was first received at "
                                         f"{first}")
            self._bind_ingest(batch, batch_id)
            self._keep_raw(batch.raw, batch.sha256, batch.name, batch.source, batch.layout)
            self._x(b.insert().values(id=batch_id, raw_sha256=batch.sha256,
                                      source=batch.source, name=batch.name,
                                      rows=batch.n_rows, new=0, duplicates=0,
                                      quarantined=len(batch.quarantine), ingested_at=now()))
            new = self._insert_observations(frame, batch_id, on_progress)
            n_obs = batch.observations.height
            if batch.quarantine:
                self._x(q.insert(), [{"batch_id": batch_id, "raw_sha256": batch.sha256,
                                      "row": e.row, "reason": e.reason, "raw": e.raw}
                                     for e in batch.quarantine])
            self._x(b.update().where(b.c.id == batch_id).values(new=new,
                                                                 duplicates=n_obs - new))
            if batch.kind == SourceKind.ALLEGATION:
                self._store_allegations(batch, batch_id)
            if batch.signed:
                self._x(self._t("submissions").insert().values(
                    nonce=batch.signed["nonce"], key_id=batch.signed["key_id"],
                    signer=batch.signed["signer"], signed_at=batch.signed["signed_at"],
                    raw_sha256=batch.sha256, received_at=now()))
            self._log(actor, "ingest", batch_id, {
                "name": batch.name, "source": batch.source, "raw_sha256": batch.sha256,
                "rows": batch.n_rows, "new": new, "quarantined": len(batch.quarantine),
                "signed_by": batch.signed.get("key_id", "")})
        return IngestReport(batch_id, batch.name, batch.sha256, batch.n_rows, new,
                            n_obs - new, len(batch.quarantine), already_ingested=False)

    def _insert_observations(self, frame: pl.DataFrame, batch_id: str,
                             on_progress: Callable[[int], None] | None) -> int:
        """Insert the batch's rows (each id once), skipping ids already stored, and index
        their points; how many were new. The rows go in in Hilbert order of their points
        (rows.hilbert_order), so that SQLite's R*Tree, filled from them in rowid order,
        grows node by node. When every row was new, the rows' hashes are bound from the
        values written (storage.binding.hash_frame) instead of reading the batch back.

        The hashes are computed in a second thread while the database inserts and indexes
        the rows: polars and SHA-256 run there while sqlite3 (inside a statement) and
        psycopg (waiting for the server to finish its COPY) have released the
        interpreter, so on two cores the hashing costs no wall time. They are used only
        when every row was new; otherwise the batch is read back, as before."""
        obs = self._t("observations")
        new = 0
        if INSERT_ORDER == "hilbert" and frame.height > 1:
            frame = frame[hilbert_order(frame["lon"].to_numpy(), frame["lat"].to_numpy())]
        elif INSERT_ORDER == "id":
            frame = frame.sort("id")
        frame = frame.select(COLUMNS)
        with ThreadPoolExecutor(max_workers=1) as pool:
            hashed = (pool.submit(binding.hash_frame, "observations", frame)
                      if frame.height else None)
            try:
                for k in range(0, frame.height, CHUNK):
                    part = frame.slice(k, CHUNK)
                    if (self._fail_after_rows is not None
                            and k + part.height > self._fail_after_rows):
                        raise StorageError("simulated crash during ingest (test hook)")
                    new += bulk_insert_ignore(self._dialect, self._db.conn, obs, part)
                    if on_progress:
                        on_progress(part.height)
                index_points(self._dialect, self._db.conn, obs, obs.c.batch_id == batch_id)
            except BaseException:
                if hashed is not None:
                    hashed.cancel()
                raise
            if hashed is not None and new == frame.height:
                # every row written is the batch's: bind them as written (a row skipped
                # because its id was stored before is another batch's, so the batch is
                # read back then)
                self._db.pending.written[("observations", batch_id)] = hashed.result()
        return new

    def _store_allegations(self, batch: Batch, batch_id: str) -> None:
        """An id already received is not overwritten: the new entry is quarantined."""
        a, q = self._t("allegations"), self._t("quarantine")
        for r in batch.records.iter_rows(named=True):
            first = self._x(sa.select(a.c.batch_id).where(a.c.id == r["id"])).scalar()
            if first:
                self._x(q.insert().values(
                    batch_id=batch_id, raw_sha256=batch.sha256, row=0,
                    reason=f"allegation_id {r['id']} was already received (batch {first}); "
                           "send a correction under a new id", raw=r["doc"]))
                continue
            self._x(a.insert().values(id=r["id"], received_at=r["received_at"],
                                      claimant=r["claimant"], raw_sha256=batch.sha256,
                                      batch_id=batch_id, doc=r["doc"]))

    def _bind_ingest(self, batch: Batch, batch_id: str) -> None:
        """An ingest binds its batch, its nonce and, per batch, the rows it adds to the
        bulk tables (observations, quarantine, allegations: read back when it logs)."""
        self._bind("batches", [(batch_id,)], new=True)
        if batch.signed:
            self._bind("submissions", [(batch.signed["nonce"], batch.signed["key_id"])])
        self._db.pending.batches.append(batch_id)

    def _keep_raw(self, raw: bytes, sha: str, name: str, source: str, layout: str) -> None:
        self._bind("raw_inputs", [(sha,)])
        self._x(insert_ignore(self._dialect, self._t("raw_inputs")).values(
            sha256=sha, name=name, source=source, layout=layout, size=len(raw),
            received_at=now(), content=zlib.compress(raw, RAW_LEVEL)))

    def refuse(self, raw: bytes, name: str, source: str, reason: str,
               actor: str = "ingest") -> None:
        """Record a refused submission: its raw bytes are kept and the refusal logged."""
        sha = hashlib.sha256(raw).hexdigest()
        ref = self._t("refused")
        with self._transaction():
            self._keep_raw(raw, sha, name, f"refused:{source}", "")
            rid = self._x(ref.insert().values(raw_sha256=sha, name=name, source=source,
                                              reason=reason, at=now()).returning(ref.c.id)
                          ).scalar_one()
            self._bind("refused", [(rid,)], new=True)
            self._log(actor, "refuse", name, {"raw_sha256": sha, "source": source,
                                              "reason": reason})

    def refused(self) -> list[dict[str, object]]:
        r = self._t("refused")
        return dicts(self._x(sa.select(r.c.raw_sha256, r.c.name, r.c.source, r.c.reason,
                                       r.c.at).order_by(r.c.id)))

    # ------------------------------------------------------------- audit log
    def log(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
        with self._transaction():
            self._log(actor, action, subject, details)

    def audit_log(self) -> list[LogEntry]:
        g = self._t("audit_log")
        return [LogEntry(*r) for r in self._x(
            sa.select(g.c.seq, g.c.at, g.c.actor, g.c.action, g.c.subject, g.c.details,
                      g.c.prev_hash, g.c.hash).order_by(g.c.seq))]

    def verify(self) -> list[str]:
        """Check the whole chain, every evidentiary copy against the log both ways, and
        the state: the log replayed against every bound table (storage.binding), and
        what the log does not bind row by row (storage.checks: spatial indexes, review
        locks, schema, published product files). The problems found, empty when
        everything verifies; the first names the first broken link or the first
        difference (table, key and the entry that wrote it)."""
        from trucewatch.storage import checks

        shape = checks.schema(self._db.conn)
        if checks.incomplete(shape):  # the other checks would fail on what is missing
            return [*shape, "the log and the rows were not checked: the schema is "
                    "incomplete (restore the store from a copy)"]
        log = self.audit_log()
        report = verify_chain(log)
        problems = [] if report.ok else [report.one_line()]
        logged: dict[str, tuple[int, str]] = {}
        for e in log:
            try:
                d = json.loads(e.details)
            except ValueError:
                continue  # the chain check names it
            sha = d.get("raw_sha256") if isinstance(d, dict) else None
            if isinstance(sha, str):
                logged.setdefault(sha, (e.seq, str(d.get("name") or e.subject)))
        stored = set()
        r = self._t("raw_inputs")
        for sha, name, content in self._x(sa.select(r.c.sha256, r.c.name, r.c.content)
                                          .order_by(r.c.received_at, r.c.sha256)):
            stored.add(sha)
            try:
                ok = hashlib.sha256(zlib.decompress(content)).hexdigest() == sha
            except zlib.error:
                ok = False
            if not ok:
                problems.append(f"evidentiary copy {sha[:16]} does not match its SHA-256: "
                                "the stored raw input was altered")
            if sha not in logged:
                problems.append(f"raw input {name} ({sha[:16]}) has no entry in the audit log")
        problems += [f"evidentiary copy {sha[:16]} ({name}) logged at entry {seq} is missing "
                     "from raw_inputs" for sha, (seq, name) in logged.items()
                     if sha not in stored]
        return [*problems, *binding.check(self._db.conn, log), *shape,
                *checks.spatial(self._db.conn), *checks.locks(self._db.conn, log),
                *checks.products(self._db.conn)]

    # ------------------------------------------------------------- reads
    def quarantine(self, batch_id: str | None = None) -> list[QuarantineEntry]:
        q = self._t("quarantine")
        stmt = sa.select(q.c.row, q.c.reason, q.c.raw)
        if batch_id:
            stmt = stmt.where(q.c.batch_id == batch_id)
        return [QuarantineEntry(*r) for r in self._x(stmt.order_by(q.c.id))]

    def raw_input(self, sha256: str) -> bytes:
        r = self._t("raw_inputs")
        content = self._x(sa.select(r.c.content).where(r.c.sha256 == sha256)).scalar()
        if content is None:
            raise NotFoundError(f"no raw input {sha256}",
                                fix="check the SHA-256 against the batches of the store")
        return zlib.decompress(content)

    def inputs(self, source: str) -> list[dict[str, Any]]:
        """The stored batches of one source, oldest first: id, name, raw_sha256, rows,
        quarantined, ingested_at (refused inputs are not batches: see ``refused``)."""
        b = self._t("batches")
        return dicts(self._x(sa.select(b.c.id, b.c.name, b.c.raw_sha256, b.c.rows,
                                       b.c.quarantined, b.c.ingested_at)
                             .where(b.c.source == source).order_by(b.c.ingested_at, b.c.id)))

    def batches(self) -> list[dict[str, object]]:
        b = self._t("batches")
        return dicts(self._x(sa.select(b.c.id, b.c.name, b.c.rows, b.c.new, b.c.duplicates,
                                       b.c.quarantined, b.c.ingested_at)
                             .order_by(b.c.ingested_at)))

    def counts(self) -> dict[str, int]:
        return {t: int(self._x(sa.select(sa.func.count()).select_from(self._t(t)))
                       .scalar_one()) for t in COUNTED}
