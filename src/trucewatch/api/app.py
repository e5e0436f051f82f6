"""The trucewatch service: one FastAPI app over a store, an agreement and bulletins.

Every request carries ``Authorization: Bearer <token>`` (or the dashboard's session
cookie); the token's role decides (:mod:`trucewatch.api.auth`). Authentication, size
limits and security headers come first (:mod:`trucewatch.api.guard`), before any body is
read. Every write is attributed to the token's name in the audit chain. Errors have one
shape (:mod:`trucewatch.api.errors`); a malformed submission is answered in it and kept
as refused. Blocking work (parsing, storing) runs off the event loop. Interactive docs
(``/docs``, ``/redoc``) are served from the package itself: no CDN.
"""


import hashlib
import json
import os
import re
import secrets
import stat
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Self

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import APIKeyCookie, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from trucewatch import __version__
from trucewatch.api import errors, guard, session
from trucewatch.api.auth import (
    CONFIRMS,
    SEES_HUBS,
    SEES_MEDIA,
    SEES_UNREVIEWED,
    Principal,
    Role,
    may_ingest,
)
from trucewatch.errors import InputFileError, NotFoundError, TrucewatchError
from trucewatch.ingest.allegations import CATEGORIES
from trucewatch.ingest.base import SourceAdapter
from trucewatch.ingest.registry import sources as all_sources
from trucewatch.intake import receive
from trucewatch.intake.sources import adapters
from trucewatch.integrity.keys import KeyRegistry
from trucewatch.model.enums import Category, ClaimantKind, Status
from trucewatch.model.serialization import format_time, to_dict
from trucewatch.model.times import time_problem
from trucewatch.review.workflow import ReviewService
from trucewatch.storage import SqliteStore, open_store
from trucewatch.storage.sqlite import COUNT_CAP

MAX_BODY = guard.INGEST_LIMIT
DECIDED = [s.value for s in Status if s not in (Status.AUTOMATIC,
                                                 Status.PENDING_VERIFICATION)]
MEDIA_TYPES = {"json": "application/json", "html": "text/html; charset=utf-8",
               "pdf": "application/pdf", "geojson": "application/geo+json"}


class Error(BaseModel):
    error: str
    status: int
    message: str
    fix: str
    details: list[dict[str, Any]]


ERRORS: dict[int | str, dict[str, Any]] = {
    k: {"model": Error, "description": d} for k, d in (
        (400, "the body is not valid JSON"), (401, "missing or unknown token"),
        (403, "the token's role may not do this"),
        (404, "not found"), (409, "conflict (claim held, replay, illegal transition)"),
        (413, "the body is over the route's limit (or decompresses past it)"),
        (422, "invalid input"))}


class Page(BaseModel):
    """``total`` is exact up to 10,000; above, it reads 10,001 and ``total_capped`` is
    true (page on with ``next_offset``)."""

    items: list[dict[str, Any]]
    total: int
    total_capped: bool = False
    limit: int
    offset: int
    next_offset: int | None


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_only(value: object) -> object:
    """Times travel as ISO 8601 strings; a number (or a numeric string) is not a time."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO.match(value)):
        return value
    raise ValueError("give the time as ISO 8601 with its UTC offset, e.g. "
                     "2026-05-30T04:00:00Z")


def to_utc(value: datetime) -> datetime:
    """A time in UTC; a ValueError (answered 422), not an OverflowError, when that leaves
    the years 1 to 9999 (``0001-01-01T00:00:00+05:00``)."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"time {value.isoformat()} is out of range in UTC") from None


def _plausible(value: datetime) -> datetime:
    """An observation's time: in the plausible range (model/times.py), in UTC."""
    problem = time_problem(value, datetime.now(UTC))
    if problem:
        raise ValueError(problem)
    return to_utc(value)


# a time in a submission (an allegation, an incident): plausible, converted to UTC; a
# time in a query: anything that has a UTC equivalent (year 1 to 9999)
IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_only), AfterValidator(_plausible),
                    Field(strict=False)]
QueryTime = Annotated[AwareDatetime, BeforeValidator(_iso_only), AfterValidator(to_utc),
                      Field(strict=False)]


class Strict(BaseModel):
    """Strict: a bool is not a number, a number is not a string; unknown fields refused.
    Enumerations and times are read from their JSON strings."""

    model_config = ConfigDict(strict=True, extra="forbid")


class Period(Strict):
    """A model with ``time_start`` and ``time_end``: the end is not before the start."""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        start, end = getattr(self, "time_start", None), getattr(self, "time_end", None)
        if start is not None and end is not None and end < start:
            raise ValueError("time_end is before time_start")
        return self


class Decision(Strict):
    status: Status = Field(strict=False)
    why: str = Field(min_length=1, max_length=2000)
    duplicate_of: str | None = Field(default=None, max_length=100)


class Modification(Strict):
    why: str = Field(min_length=1, max_length=2000)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    uncertainty_m: float | None = Field(default=None, gt=0, le=100000)
    time_start: IsoTime | None = None


class NewIncident(Period):
    why: str = Field(min_length=1, max_length=2000)
    category: Category = Field(strict=False)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    uncertainty_m: float = Field(gt=0, le=100000)
    time_start: IsoTime
    time_end: IsoTime | None = None
    rule: str = Field(default="", max_length=100)


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


class Outcome(BaseModel):
    name: str
    accepted: bool
    batch_id: str | None
    rows: int
    new: int
    quarantined: list[dict[str, Any]]
    signed_by: str


Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Bbox = Annotated[str | None, Query(pattern=r"^-?\d+(\.\d+)?(,-?\d+(\.\d+)?){3}$",
                                   description="min_lon,min_lat,max_lon,max_lat")]


def get_store(request: Request) -> Iterator[SqliteStore]:
    """One connection per request (SQLite connections stay in their thread)."""
    store = open_store(request.app.state.store_path, pooled=True)
    try:
        yield store
    finally:
        store.close()


StoreDep = Annotated[SqliteStore, Depends(get_store)]


def authenticate(store: SqliteStore, token: str) -> Principal | None:
    """The principal a token stands for (None: unknown or revoked)."""
    owner = store.token_owner(token)
    if owner is None:
        return None
    return Principal(owner.name, Role(owner.role), owner.party, owner.id)


# documented in the OpenAPI document; the guard has already checked them
_BEARER = HTTPBearer(auto_error=False, description="an API token")
_COOKIE = APIKeyCookie(name=guard.COOKIE, auto_error=False,
                       description="the dashboard's session (POST /api/v1/session)")


def principal(request: Request, _b: Annotated[Any, Security(_BEARER)] = None,
              _c: Annotated[Any, Security(_COOKIE)] = None) -> Principal:
    """The request's principal: authenticated by the guard before any body was read."""
    who = request.scope.get("state", {}).get("principal")
    if not isinstance(who, Principal):
        raise HTTPException(401, "no token", headers={"WWW-Authenticate": "Bearer"})
    return who


def allowed(action: str) -> Callable[..., Principal]:
    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.may(action):
            raise HTTPException(403, f"role {who.role.value} may not use {action}")
        return who
    return check


AsMe = Annotated[Principal, Depends(allowed("me"))]
AsIngest = Annotated[Principal, Depends(allowed("ingest"))]
AsObservations = Annotated[Principal, Depends(allowed("observations"))]
AsIncidents = Annotated[Principal, Depends(allowed("incidents"))]
AsViolations = Annotated[Principal, Depends(allowed("violations"))]
AsAggregates = Annotated[Principal, Depends(allowed("aggregates"))]
AsReview = Annotated[Principal, Depends(allowed("review"))]
AsFiler = Annotated[Principal, Depends(allowed("allegations_file"))]
AsAllegations = Annotated[Principal, Depends(allowed("allegations_read"))]
AsBulletins = Annotated[Principal, Depends(allowed("bulletins_public"))]
AsAgreement = Annotated[Principal, Depends(allowed("agreement"))]
AsCoverage = Annotated[Principal, Depends(allowed("coverage"))]


def create_app(store_path: Path | str, agreement_path: Path | None = None,
               bulletins_dir: Path | None = None, keys_path: Path | None = None) -> Any:
    app = FastAPIOffline(
        title="trucewatch", version=__version__,
        description="Ceasefire monitoring and verification. Send `Authorization: Bearer "
                    "<token>`; errors share one JSON shape (`Error`).")
    errors.install(app)
    app.state.store_path = str(store_path)
    open_store(app.state.store_path).close()  # create or migrate before the first request

    def lookup(token: str) -> Principal | None:
        store = open_store(app.state.store_path, pooled=True)
        try:
            return authenticate(store, token)
        finally:
            store.close()

    secret = secrets.token_bytes(32)  # binds a session's CSRF token to this process
    guard.install(app, lookup, secret)
    agreement = None
    if agreement_path is not None:
        from trucewatch.agreement import load_agreement

        agreement = load_agreement(agreement_path)
    registry = KeyRegistry.load(keys_path) if keys_path else KeyRegistry()
    api = APIRouter(prefix="/api/v1", responses=ERRORS)

    @app.get("/api/v1/health", tags=["service"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @api.get("/me", tags=["service"])
    def me(who: AsMe) -> dict[str, Any]:
        return {"name": who.name, "role": who.role.value, "party": who.party}

    api.include_router(session.router(lookup, secret, allowed("me")))

    # ------------------------------------------------------------- ingest
    # the built-in sources and any a plugin registered, by name
    sources: dict[str, SourceAdapter] = {src.name: src for src in all_sources()}

    @api.post("/ingest/{source}", tags=["ingest"], response_model=Outcome,
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"type": "object"}},
                  "text/csv": {"schema": {"type": "string"}}}}})
    async def ingest(source: str, request: Request, who: AsIngest, store: StoreDep
                     ) -> Outcome:
        """One submission (a batch): a FIRMS CSV, a station inventory, a detections file,
        a drone report document or an allegations document, plain, gzipped or in a signed
        envelope, at most 50 MiB as sent. A token's role binds the sources it may post
        (a sensor network's: its station inventories and detections). Refused
        submissions are kept with their reason and answered 422 (replays 409, a body or
        a decompression past the limits 413)."""
        # per request: detections are located against the store's accepted inventory
        known = (await run_in_threadpool(adapters, store)
                 if source in ("stations", "detections") else sources)
        if source not in known:
            names = sorted([*sources, "stations", "detections"])
            raise NotFoundError(f"unknown source {source!r}",
                                fix=f"use one of {', '.join(names)}")
        adapter = known[source]
        if not may_ingest(who.role, adapter.kind):
            raise HTTPException(403, f"role {who.role.value} may not post {source} inputs "
                                "(a sensor token posts its network's station inventories "
                                "and detections)")
        name = f"api-{source}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        body = await _read(request, store, name, source, who)
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
        o = await run_in_threadpool(receive, store, body, name, adapter, registry=registry,
                                    actor=who.name)
        if o.refused:
            status = 409 if "replayed" in o.refused else \
                413 if "decompress" in o.refused else 422
            raise SubmissionRefusedError(status, o.refused)
        r = o.report
        assert r is not None
        return Outcome(name=name, accepted=True, batch_id=r.batch_id, rows=r.rows, new=r.new,
                       quarantined=[{"row": q.row, "reason": q.reason}
                                    for q in o.quarantined], signed_by=o.signed_by)

    # ------------------------------------------------------------- queries
    def _page(items: list[dict[str, Any]], total: int, limit: int, offset: int) -> Page:
        capped = total > COUNT_CAP
        nxt = offset + limit if (offset + limit < total or capped) and len(items) == limit \
            else None
        return Page(items=items, total=total, total_capped=capped, limit=limit,
                    offset=offset, next_offset=nxt)

    def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
        if text is None:
            return None
        a, b, c, d = (float(x) for x in text.split(","))
        if not (-180 <= a <= c <= 180 and -90 <= b <= d <= 90):
            raise HTTPException(422, "bbox must be min_lon,min_lat,max_lon,max_lat in range")
        return a, b, c, d

    @api.get("/incidents", tags=["queries"], response_model=Page)
    def incidents(who: AsIncidents, store: StoreDep, bbox: Bbox = None,
                  start: QueryTime | None = None, end: QueryTime | None = None,
                  sector: Annotated[str | None, Query(max_length=100)] = None,
                  category: Category | None = None, status: Status | None = None,
                  limit: Limit = 100, offset: Offset = 0) -> Page:
        """Incidents by bounding box, time, sector, category, status; paginated.
        ``start`` (inclusive) and ``end`` (exclusive) bound the incident's start, as
        times: any UTC offset. Roles without the right see reviewed incidents only."""
        statuses = [status.value] if status else None
        if who.role not in SEES_UNREVIEWED:
            statuses = [s for s in (statuses or DECIDED) if s in DECIDED]
        items, total = store.query_incidents(
            bbox=_bbox(bbox), start=_stored(start), end=_stored(end), sector=sector,
            category=category.value if category else None, statuses=statuses,
            limit=limit, offset=offset, raw=True)
        return _page(items, total, limit, offset)

    @api.get("/incidents/{incident_id}", tags=["queries"])
    def incident(incident_id: str, who: AsIncidents, store: StoreDep) -> dict[str, Any]:
        inc = store.incident(incident_id)
        if who.role not in SEES_UNREVIEWED and inc.status.value not in DECIDED:
            raise NotFoundError(f"no incident {incident_id}", fix="check the id")
        out = to_dict(inc)
        if who.role in SEES_UNREVIEWED:
            out["history"] = [{k: h[k] for k in ("version", "status", "action", "who", "at",
                                                  "why")}
                              for h in store.incident_history(incident_id)]
        return out

    @api.get("/violations", tags=["queries"], response_model=Page)
    def violations(who: AsViolations, store: StoreDep, limit: Limit = 100,
                   offset: Offset = 0) -> Page:
        status = {i.id: i.status.value for i in store.incidents()}
        items = [to_dict(v) | {"status": status.get(v.incident_id, "")}
                 for v in store.violations()]
        if who.role not in SEES_UNREVIEWED:
            items = [v for v in items if v["status"] in DECIDED]
        return _page(items[offset:offset + limit], len(items), limit, offset)

    @api.get("/observations", tags=["queries"], response_model=Page)
    def observations(who: AsObservations, store: StoreDep,
                     source_kind: Annotated[str, Query(pattern="^[a-z_]{1,40}$")] = "drone",
                     limit: Limit = 100, offset: Offset = 0) -> Page:
        rows = store.observations(source_kind)
        items = []
        for r in rows.slice(offset, limit).iter_rows(named=True):
            attrs = json.loads(r.pop("attributes"))
            if who.role not in SEES_MEDIA:
                attrs.pop("media", None)
                attrs.pop("platform", None)
            items.append(r | {"attributes": attrs})
        return _page(items, rows.height, limit, offset)

    @api.get("/aggregates", tags=["queries"])
    def aggregates(who: AsAggregates, store: StoreDep) -> dict[str, Any]:
        """Counts of incidents by sector, category and status: no locations."""
        incs = store.incidents()
        return {"incidents": len(incs),
                "by_status": dict(Counter(i.status.value for i in incs)),
                "by_category": dict(Counter(i.category.value for i in incs)),
                "by_sector": dict(Counter(i.sector_id or "-" for i in incs)),
                "verified_by_sector": dict(Counter(i.sector_id or "-" for i in incs
                                                   if i.status == Status.VERIFIED))}

    # ------------------------------------------------------------- review
    def _svc(store: SqliteStore) -> ReviewService:
        return ReviewService(store)

    @api.get("/review/queue", tags=["review"], response_model=Page)
    def queue(who: AsReview, store: StoreDep, limit: Limit = 100,
              offset: Offset = 0) -> Page:
        q = _svc(store).queue()
        return _page([to_dict(i) for i in q[offset:offset + limit]], len(q), limit, offset)

    @api.post("/review/{incident_id}/claim", tags=["review"])
    def claim(incident_id: str, who: AsReview, store: StoreDep) -> dict[str, Any]:
        return to_dict(_svc(store).claim(incident_id, who))

    @api.post("/review/{incident_id}/release", tags=["review"])
    def release(incident_id: str, who: AsReview, store: StoreDep) -> dict[str, str]:
        _svc(store).release(incident_id, who)
        return {"released": incident_id}

    @api.post("/review/{incident_id}/decide", tags=["review"])
    def decide(incident_id: str, body: Decision, who: AsReview, store: StoreDep
               ) -> dict[str, Any]:
        if body.status == Status.VERIFIED and who.role not in CONFIRMS:
            raise HTTPException(403, "only a reviewer confirms 'verified'")
        return to_dict(_svc(store).decide(incident_id, who, body.status, body.why,
                                          body.duplicate_of))

    @api.post("/review/{incident_id}/modify", tags=["review"])
    def modify(incident_id: str, body: Modification, who: AsReview, store: StoreDep
               ) -> dict[str, Any]:
        return to_dict(_svc(store).modify(incident_id, who, body.why, lat=body.lat,
                                          lon=body.lon, uncertainty_m=body.uncertainty_m,
                                          time_start=body.time_start))

    @api.post("/review/incidents", tags=["review"], status_code=201)
    def add(body: NewIncident, who: AsReview, store: StoreDep) -> dict[str, Any]:
        _aware(body.time_start, body.time_end)
        return to_dict(_svc(store).add(who, body.why, category=body.category,
                                       lat=body.lat, lon=body.lon,
                                       uncertainty_m=body.uncertainty_m,
                                       time_start=body.time_start, time_end=body.time_end,
                                       rule=body.rule,
                                       agreement_id=agreement.id if agreement else ""))

    # ------------------------------------------------------------- allegations
    @api.post("/allegations", tags=["allegations"], status_code=201, response_model=Outcome,
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": FORM_SCHEMA}}}})
    async def file_allegation(request: Request, who: AsFiler, store: StoreDep) -> Outcome:
        """One allegation, as filed through the form (``AllegationForm``); the claimant is
        the token's owner. A malformed or invalid one is answered in the error shape and
        kept, as sent, among the refused submissions."""
        aid = f"W-{uuid.uuid4().hex[:12]}"
        name = f"api-allegation-{aid}"
        raw = await _read(request, store, name, "allegations", who)
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
        o = await run_in_threadpool(receive, store, doc, name, sources["allegations"],
                                    actor=who.name)
        if o.refused:
            raise SubmissionRefusedError(409 if "replayed" in o.refused else 422, o.refused)
        if o.quarantined or o.report is None:
            raise SubmissionRefusedError(422, o.quarantined[0].reason if o.quarantined
                                         else "not stored")
        return Outcome(name=aid, accepted=True, batch_id=o.report.batch_id,
                       rows=1, new=1, quarantined=[], signed_by="")

    @api.get("/allegations", tags=["allegations"], response_model=Page)
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
        return _page(items[offset:offset + limit], len(items), limit, offset)

    # ------------------------------------------------------------- bulletins, agreement
    def _products(who: Principal, store: SqliteStore) -> list[dict[str, Any]]:
        return [p for p in store.products()
                if p["audience"] == "public" or who.may("bulletins_restricted")]

    @api.get("/bulletins", tags=["bulletins"])
    def bulletins(who: AsBulletins, store: StoreDep) -> dict[str, Any]:
        """The published products (bulletins and their GeoJSON) from the store's list, as
        the cycle recorded them with their SHA-256; public ones only for roles without
        the right to restricted ones."""
        shown = _products(who, store)
        return {"files": [p["name"] for p in shown],
                "products": [{k: p[k] for k in ("name", "kind", "report_date", "audience",
                                                "sha256", "size", "published_at")}
                             for p in shown]}

    @api.get("/bulletins/{name}", tags=["bulletins"], response_class=Response,
             responses={200: {"content": {t: {} for t in sorted(set(MEDIA_TYPES.values()))}}})
    def bulletin(name: str, who: AsBulletins, store: StoreDep) -> Response:
        """One published product, served only if it is on the store's list and its file
        still has the SHA-256 recorded when it was published (a symbolic link is never
        followed)."""
        p = store.product(name)
        if p is None:
            raise NotFoundError(f"no published bulletin file {name!r}",
                                fix="list the published ones at /api/v1/bulletins")
        if p["audience"] != "public" and not who.may("bulletins_restricted"):
            raise HTTPException(403, f"role {who.role.value} may not read restricted "
                                "bulletins")
        content = _published_bytes(bulletins_dir / p["name"] if bulletins_dir
                                   else Path(p["path"]), p)
        return Response(content, media_type=MEDIA_TYPES.get(p["kind"],
                                                            "application/octet-stream"),
                        headers={"Content-Security-Policy": guard.PRODUCT_CSP,
                                 "Content-Disposition": f'inline; filename="{p["name"]}"',
                                 "ETag": f'"{p["sha256"]}"'})

    @api.get("/agreement", tags=["agreement"])
    def agreement_geojson(who: AsAgreement) -> dict[str, Any]:
        """The line of contact, zones, sectors and protected sites as GeoJSON; the
        multinational force's hubs only for roles with the right."""
        if agreement is None:
            raise NotFoundError("no agreement loaded", fix="start with --agreement FILE")
        from shapely.geometry import mapping

        hubs = {f"site:{s.id}" for s in agreement.protected_sites if s.kind == "mnf_hub"}
        hide = who.role not in SEES_HUBS
        feats: list[dict[str, Any]] = [{"type": "Feature", "geometry": mapping(
            agreement.line_of_contact), "properties": {"layer": "line_of_contact"}}]
        feats += [{"type": "Feature", "geometry": mapping(z.geometry), "properties": {
            "layer": "zone", "id": z.id, "kind": z.kind.value, "side": z.side,
            "weapon_class": z.weapon_class}} for z in agreement.zones
            if not (hide and z.id in hubs)]
        feats += [{"type": "Feature", "geometry": mapping(s.geometry),
                   "properties": {"layer": "sector", "id": s.id, "name": s.name}}
                  for s in agreement.sectors]
        feats += [{"type": "Feature", "geometry": {"type": "Point",
                                                   "coordinates": [s.lon, s.lat]},
                   "properties": {"layer": "protected_site", "id": s.id, "name": s.name,
                                  "kind": s.kind, "radius_m": s.radius_m}}
                  for s in agreement.protected_sites if not (hide and s.kind == "mnf_hub")]
        return {"type": "FeatureCollection", "features": feats,
                "properties": {"id": agreement.id, "name": agreement.name,
                               "entry_into_force": format_time(agreement.entry_into_force)}}

    @api.get("/coverage", tags=["agreement"])
    def coverage(who: AsCoverage, store: StoreDep) -> dict[str, Any]:
        """What the last cycle could see: the sensor network's area and the drone patrols
        (GeoJSON, with their periods) and the satellite days (cloud, data)."""
        doc = store.latest_coverage()
        if doc is None:
            raise NotFoundError("no coverage recorded yet", fix="run a verification cycle")
        return doc

    app.include_router(api)
    from trucewatch.api.routes.alerts import router as alerts_router
    app.include_router(alerts_router)
    from trucewatch.web import mount

    mount(app)
    return app


async def _read(request: Request, store: SqliteStore, name: str, source: str,
                who: Principal) -> bytes:
    """A submission's body under its route's limit; past it, the refusal is recorded
    (nothing past the limit is read, so nothing of it is kept) and answered 413."""
    try:
        return await guard.read_body(request)
    except guard.BodyTooLargeError as err:
        await run_in_threadpool(store.refuse, b"", name, source,
                                f"{err.detail}: not read past the limit", who.name)
        raise


class SubmissionRefusedError(TrucewatchError):
    code = "submission_refused"

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"submission refused: {reason}",
                         fix="correct the submission and send it again; the refused one is "
                             "kept with its reason")
        self.status = status


FORM_SCHEMA = AllegationForm.model_json_schema()


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
                "time_start", "time_end")
        return {k: ruling[k] for k in keep if k in ruling} | {
            "ruling": "pending", "basis": "awaiting_review", "evidence": {},
            "reason": "under review: what was observed there has not been reviewed yet"}
    return ruling | {"evidence": evidence}


class ProductChangedError(TrucewatchError):
    status = 409
    code = "product_changed"


def _published_bytes(path: Path, product: dict[str, Any]) -> bytes:
    """A published file's bytes, if they are still those published (never through a
    symbolic link)."""
    fix = ("restore the published file, or run the cycle again to publish a revision; "
           "the list at /api/v1/bulletins says what was published")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise NotFoundError(f"published file {product['name']} is missing from the "
                            "bulletins folder", fix=fix) from None
    except OSError as err:  # ELOOP: a symbolic link
        raise ProductChangedError(f"{product['name']} is not the file published: "
                                  f"{err.strerror or 'unreadable'} (symbolic links are "
                                  "not followed)", fix=fix) from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ProductChangedError(f"{product['name']} is not a regular file", fix=fix)
        content = f.read()
    sha = hashlib.sha256(content).hexdigest()
    if sha != product["sha256"]:
        raise ProductChangedError(
            f"{product['name']} changed since it was published: its SHA-256 is "
            f"{sha[:12]}..., published {product['sha256'][:12]}...", fix=fix)
    return content


def _stored(t: datetime | None) -> str | None:
    """A time as ``incidents.time_start`` stores it (``isoformat()`` in UTC), so that the
    store's comparison of the two is the comparison of the times."""
    return None if t is None else to_utc(t).isoformat()


def _aware(*times: datetime | None) -> None:
    for t in times:
        if t is not None and t.tzinfo is None:
            raise HTTPException(422, "times need a UTC offset, e.g. 2026-05-30T04:00:00Z")
