"""Submissions: ``POST /ingest/{source}``, and what every submission route shares (its
body read under the route's limit, the refusal recorded)."""

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from trucewatch.api import guard
from trucewatch.api.auth import Principal, may_ingest
from trucewatch.api.deps import MAX_BODY, AsIngest, ConfigDep, StoreDep
from trucewatch.errors import InputFileError, NotFoundError, TrucewatchError
from trucewatch.ingest.allegations import AllegationSource
from trucewatch.ingest.base import SourceAdapter
from trucewatch.intake import receive
from trucewatch.intake.sources import adapters
from trucewatch.storage.protocols import EvidenceStore

router = APIRouter()


class Outcome(BaseModel):
    name: str
    accepted: bool
    batch_id: str | None
    rows: int
    new: int
    quarantined: list[dict[str, Any]]
    signed_by: str


class SubmissionRefusedError(TrucewatchError):
    code = "submission_refused"

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"submission refused: {reason}",
                         fix="correct the submission and send it again; the refused one is "
                             "kept with its reason")
        self.status = status


def for_filer(adapter: SourceAdapter, who: Principal) -> SourceAdapter:
    """The adapter that receives ``who``'s submission: an allegations source records
    them as the filer (what "my allegations" follows); any other is unchanged."""
    if isinstance(adapter, AllegationSource):
        return adapter.filed_by(who.id)
    return adapter


async def read_submission(request: Request, store: EvidenceStore, name: str, source: str,
                          who: Principal) -> bytes:
    """A submission's body under its route's limit; past it, the refusal is recorded
    (nothing past the limit is read, so nothing of it is kept) and answered 413."""
    try:
        return await guard.read_body(request)
    except guard.BodyTooLargeError as err:
        await run_in_threadpool(store.refuse, b"", name, source,
                                f"{err.detail}: not read past the limit", who.name)
        raise


@router.post("/ingest/{source}", tags=["ingest"], response_model=Outcome,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": {"type": "object"}},
                 "text/csv": {"schema": {"type": "string"}}}}})
async def ingest(source: str, request: Request, who: AsIngest, store: StoreDep,
                 cfg: ConfigDep) -> Outcome:
    """One submission (a batch): a FIRMS CSV, a station inventory, a detections file,
    a drone report document or an allegations document, plain, gzipped or in a signed
    envelope, at most 50 MiB as sent. A token's role binds the sources it may post
    (a sensor network's: its station inventories, detections and station heartbeats,
    each signed by a key that speaks for its stations). Refused
    submissions are kept with their reason and answered 422 (replays 409, a body or
    a decompression past the limits 413)."""
    sources = cfg.sources
    # per request: detections are checked against the store's accepted inventory (and
    # stored as received: the worker locates them, intake.stream)
    known = (await run_in_threadpool(adapters, store)
             if source in ("stations", "detections", "heartbeats") else sources)
    if source not in known:
        names = sorted([*sources, "stations", "detections", "heartbeats"])
        raise NotFoundError(f"unknown source {source!r}",
                            fix=f"use one of {', '.join(names)}")
    adapter = known[source]
    if not may_ingest(who.role, adapter.kind):
        raise HTTPException(403, f"role {who.role.value} may not post {source} inputs "
                            "(a sensor token posts its network's station inventories "
                            "and detections)")
    name = f"api-{source}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    body = await read_submission(request, store, name, source, who)
    if not body:
        await run_in_threadpool(store.refuse, b"", name, source, "empty submission",
                                who.name)
        raise InputFileError("empty submission", fix="send the file's bytes as the body")
    deep = await run_in_threadpool(guard.too_deep, body)
    if deep:
        await run_in_threadpool(store.refuse, body, name, source, deep, who.name)
        raise SubmissionRefusedError(422, deep)
    # what a gzip body stands for is under the same limit as a plain one
    inflated = await run_in_threadpool(guard.inflated_past, body, MAX_BODY)
    if inflated:
        why = (f"gzip body of {len(body):,} bytes decompresses past {inflated:,} bytes "
               f"(the limit is {MAX_BODY // 2**20} MiB): refused as a possible "
               "decompression bomb")
        await run_in_threadpool(store.refuse, body, name, source, why, who.name)
        raise SubmissionRefusedError(413, why)
    o = await run_in_threadpool(receive, store, body, name, for_filer(adapter, who),
                                registry=cfg.registry, actor=who.name)
    if o.refused:
        # past the limits (a decompression bomb): 413; damaged or truncated gzip is
        # invalid input like any other (its zlib message says "decompressing"): 422
        status = 409 if "replayed" in o.refused else \
            413 if "decompression bomb" in o.refused else 422
        raise SubmissionRefusedError(status, o.refused)
    r = o.report
    assert r is not None
    return Outcome(name=name, accepted=True, batch_id=r.batch_id, rows=r.rows, new=r.new,
                   quarantined=[{"row": q.row, "reason": q.reason}
                                for q in o.quarantined], signed_by=o.signed_by)
