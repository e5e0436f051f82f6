"""Allegations: filed through the form (any role but a sensor's), read with their rulings
(a liaison: their party's own)."""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import Field, ValidationError

from trucewatch.api import guard
from trucewatch.api.auth import SEES_UNREVIEWED, Role
from trucewatch.api.deps import (
    DECIDED,
    AsAllegations,
    AsFiler,
    ConfigDep,
    IsoTime,
    Limit,
    Offset,
    Page,
    Period,
    StoreDep,
    page,
)
from trucewatch.api.geo import describe_point
from trucewatch.api.routes.ingest import (
    Outcome,
    SubmissionRefusedError,
    for_filer,
    read_submission,
)
from trucewatch.ingest.allegations import CATEGORIES
from trucewatch.intake import receive
from trucewatch.model.enums import ClaimantKind
from trucewatch.model.serialization import format_time

router = APIRouter()


class AllegationForm(Period):
    """One allegation, as filed through the form; the claimant is the token's owner."""

    text: str = Field(default="", max_length=20000)
    language: str | None = Field(default=None, pattern="^(fr|en|uk|ru)$")
    place: str | None = Field(default=None, max_length=200)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    time_start: IsoTime | None = None
    time_end: IsoTime | None = None
    category: str | None = Field(default=None, pattern="^(" + "|".join(CATEGORIES) + ")$")


FORM_SCHEMA = AllegationForm.model_json_schema()


@router.post("/allegations", tags=["allegations"], status_code=201, response_model=Outcome,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": FORM_SCHEMA}}}})
async def file_allegation(request: Request, who: AsFiler, store: StoreDep,
                          cfg: ConfigDep) -> Outcome:
    """One allegation, as filed through the form (``AllegationForm``); the claimant is
    the token's owner. A malformed or invalid one is answered in the error shape and
    kept, as sent, among the refused submissions."""
    aid = f"W-{uuid.uuid4().hex[:12]}"
    name = f"api-allegation-{aid}"
    raw = await read_submission(request, store, name, "allegations", who)
    try:
        body = _form(raw)
    except (RequestValidationError, HTTPException) as err:
        await run_in_threadpool(store.refuse, raw, name, "allegations", _why(err),
                                who.name)
        raise
    kind = {Role.LIAISON: ClaimantKind.PARTY, Role.PUBLIC: ClaimantKind.PUBLIC}.get(
        who.role, ClaimantKind.MONITOR)
    # the service's own fields first, then what was filed
    item: dict[str, Any] = {"allegation_id": aid, "claimant": who.party or who.name,
                            "claimant_kind": kind.value,
                            "received_at": format_time(datetime.now(UTC))}
    item |= {k: v for k, v in body.model_dump(mode="json").items() if v is not None}
    doc = json.dumps({"format": "trucewatch-allegations/1", "allegations": [item]},
                     ensure_ascii=False).encode()
    # who filed it, by principal id (what /allegations/mine follows): the adapter made
    # for this principal writes it, never the body
    o = await run_in_threadpool(receive, store, doc, name,
                                for_filer(cfg.sources["allegations"], who), actor=who.name)
    if o.refused:
        raise SubmissionRefusedError(409 if "replayed" in o.refused else 422, o.refused)
    if o.quarantined or o.report is None:
        raise SubmissionRefusedError(422, o.quarantined[0].reason if o.quarantined
                                     else "not stored")
    return Outcome(name=aid, accepted=True, batch_id=o.report.batch_id,
                   rows=1, new=1, quarantined=[], signed_by="")


@router.get("/allegations", tags=["allegations"], response_model=Page)
def allegations(who: AsAllegations, store: StoreDep, limit: Limit = 100,
                offset: Offset = 0) -> Page:
    """Allegations and their rulings (a liaison: their party's own). A role that does
    not see unreviewed incidents sees no ruling resting on one (it reads
    ``pending``), and no observation ids."""
    rulings = {r["allegation_id"]: r for r in store.rulings()}
    status = None if who.role in SEES_UNREVIEWED else {
        _key(i.observation_ids): i.status.value for i in store.incidents()}
    items = []
    for a in store.allegations():
        if who.role == Role.LIAISON and a.get("claimant") not in (who.party, who.name):
            continue
        ruling = rulings.get(a["allegation_id"])
        if ruling is not None and status is not None:
            ruling = _ruling_seen(ruling, status)
        items.append({"allegation": a, "ruling": ruling})
    return page(items[offset:offset + limit], len(items), limit, offset)


@router.get("/allegations/mine", tags=["allegations"], response_model=Page)
def my_allegations(who: AsFiler, store: StoreDep, limit: Limit = 100,
                   offset: Offset = 0) -> Page:
    """The allegations this principal filed through the form, newest first, each with
    its ``status``: ``received`` (not ruled on yet), ``under_review`` (the ruling waits
    on what was observed there being reviewed) or ``ruled`` (with the ``ruling``: its
    outcome, basis and reason). Another principal's allegations are never listed, even
    for the same party or name: they are matched by the filer's principal id."""
    rulings = {r["allegation_id"]: r for r in store.rulings()}
    status = None if who.role in SEES_UNREVIEWED else {
        _key(i.observation_ids): i.status.value for i in store.incidents()}
    items = []
    for a in reversed(store.allegations()):
        if not who.id or a.get("filed_by") != who.id:
            continue
        ruling = rulings.get(a["allegation_id"])
        if ruling is not None and status is not None:
            ruling = _ruling_seen(ruling, status)
        state = ("received" if ruling is None
                 else "under_review" if ruling.get("ruling") == "pending" else "ruled")
        resolved = a.get("resolved") or {}
        items.append({
            "allegation_id": a["allegation_id"], "received_at": a.get("received_at"),
            "text": a.get("text", ""), "place": _place(a),
            "category": resolved.get("category", a.get("category")), "status": state,
            "ruling": None if ruling is None else {
                k: ruling.get(k) for k in ("ruling", "basis", "reason")}})
    return page(items[offset:offset + limit], len(items), limit, offset)


def _place(a: dict[str, Any]) -> str:
    """Where an allegation was placed, as monitors say it ("8 km SW of Avdiyivka", from
    the gazetteer at the point it resolved to); the place named when none is near."""
    resolved = a.get("resolved") or {}
    if resolved.get("lat") is not None and resolved.get("lon") is not None:
        text = describe_point(float(resolved["lat"]), float(resolved["lon"]))
        if text:
            return text
    return str(a.get("place") or "")


def _form(raw: bytes) -> AllegationForm:
    """The allegation form from its JSON text: nesting bounded, then validated."""
    deep = guard.too_deep(raw)
    if deep:
        raise HTTPException(400, deep)
    try:
        return AllegationForm.model_validate_json(raw)
    except ValidationError as err:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])}
                                      for e in err.errors(include_url=False)]) from None


def _why(err: Exception) -> str:
    """A refusal's reason, from the error the request was answered with."""
    if isinstance(err, RequestValidationError):
        e: dict[str, Any] = next(iter(err.errors()), {})
        loc = ".".join(str(x) for x in e.get("loc", ())[1:]) or "body"
        return f"invalid form: {loc}: {e.get('msg', '')}"[:500]
    return str(getattr(err, "detail", err))[:500]


def _key(observation_ids: list[str]) -> str:
    return "|".join(sorted(observation_ids))


def _ruling_seen(ruling: dict[str, Any], status: dict[str, str]) -> dict[str, Any]:
    """A ruling as a role that does not see unreviewed incidents may read it: never an
    observation id; a ruling that rests on an incident not yet reviewed reads
    ``pending``, with nothing of that incident (its rule, its existence)."""
    evidence = dict(ruling.get("evidence") or {})
    matched = evidence.pop("incident_observations", None) or []
    if ruling.get("basis") != "reviewed" and any(
            status.get(_key(ids)) not in DECIDED for ids in matched):
        keep = ("allegation_id", "claimant", "claimant_kind", "category", "place",
                "near", "time_start", "time_end")
        return {k: ruling[k] for k in keep if k in ruling} | {
            "ruling": "pending", "basis": "awaiting_review", "evidence": {},
            "reason": "under review: what was observed there has not been reviewed yet"}
    return ruling | {"evidence": evidence}
