"""The trucewatch service: one FastAPI app over a store, an agreement and bulletins.

Every request carries ``Authorization: Bearer <token>``; the token's role decides
(:mod:`trucewatch.api.auth`). Every write is attributed to the token's name in the
audit chain. Errors have one shape (:mod:`trucewatch.api.errors`). Interactive docs
(``/docs``, ``/redoc``) are served from the package itself: no CDN.
"""


import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse
from fastapi_offline import FastAPIOffline
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

from trucewatch import __version__
from trucewatch.api import errors
from trucewatch.api.auth import (
    CONFIRMS,
    SEES_HUBS,
    SEES_MEDIA,
    SEES_UNREVIEWED,
    Principal,
    Role,
)
from trucewatch.errors import InputFileError, NotFoundError, TrucewatchError
from trucewatch.ingest.allegations import CATEGORIES
from trucewatch.ingest.base import SourceAdapter
from trucewatch.ingest.base import sources as all_sources
from trucewatch.intake import receive
from trucewatch.integrity.keys import KeyRegistry
from trucewatch.model.enums import Category, ClaimantKind, Status
from trucewatch.model.serialization import format_time, to_dict
from trucewatch.review.workflow import ReviewService
from trucewatch.storage import SqliteStore, open_store
from trucewatch.storage.sqlite import COUNT_CAP

MAX_BODY = 50 * 1024 * 1024
DECIDED = [s.value for s in Status if s not in (Status.AUTOMATIC,
                                                 Status.PENDING_VERIFICATION)]
_BULLETIN = re.compile(r"^(bulletin|incidents)-\d{4}-\d{2}-\d{2}-(public|restricted)"
                       r"\.(json|html|pdf|geojson)$")


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


IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_only), Field(strict=False)]


class Strict(BaseModel):
    """Strict: a bool is not a number, a number is not a string; unknown fields refused.
    Enumerations and times are read from their JSON strings."""

    model_config = ConfigDict(strict=True, extra="forbid")



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


class NewIncident(Strict):
    why: str = Field(min_length=1, max_length=2000)
    category: Category = Field(strict=False)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    uncertainty_m: float = Field(gt=0, le=100000)
    time_start: IsoTime
    time_end: IsoTime | None = None
    rule: str = Field(default="", max_length=100)


class AllegationForm(Strict):
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


def principal(store: StoreDep, authorization: Annotated[str | None, Header()] = None
              ) -> Principal:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "no token", headers={"WWW-Authenticate": "Bearer"})
    owner = store.token_owner(authorization[7:].strip())
    if owner is None:
        raise HTTPException(401, "unknown or revoked token",
                            headers={"WWW-Authenticate": "Bearer"})
    return Principal(owner[0], Role(owner[1]), owner[2])


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
    agreement = None
    if agreement_path is not None:
        from trucewatch.agreement import load_agreement

        agreement = load_agreement(agreement_path)
    registry = KeyRegistry.load(keys_path) if keys_path else KeyRegistry()
    api = APIRouter(prefix="/api/v1", responses=ERRORS)

    @app.get("/api/v1/health", tags=["service"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @api.get("/me", tags=["service"])
    def me(who: AsMe) -> dict[str, Any]:
        return {"name": who.name, "role": who.role.value, "party": who.party}

    # ------------------------------------------------------------- ingest
    # the built-in sources and any a plugin registered, by name
    sources: dict[str, SourceAdapter] = {src.name: src for src in all_sources()}

    @api.post("/ingest/{source}", tags=["ingest"], response_model=Outcome,
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"type": "object"}},
                  "text/csv": {"schema": {"type": "string"}}}}})
    async def ingest(source: str, request: Request, who: AsIngest, store: StoreDep
                     ) -> Outcome:
        """One submission (a batch): a FIRMS CSV, a drone report document or an
        allegations document, plain or in a signed envelope. Refused submissions are
        kept with their reason and answered 422 (replays 409)."""
        if source not in sources:
            raise NotFoundError(f"unknown source {source!r}",
                                fix=f"use one of {', '.join(sorted(sources))}")
        body = await request.body()
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"submission over {MAX_BODY // 2**20} MiB")
        if not body:
            raise InputFileError("empty submission", fix="send the file's bytes as the body")
        name = f"api-{source}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        o = receive(store, body, name, sources[source], registry=registry, actor=who.name)
        if o.refused:
            status = 409 if "replayed" in o.refused else 422
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
                  start: IsoTime | None = None, end: IsoTime | None = None,
                  sector: Annotated[str | None, Query(max_length=100)] = None,
                  category: Category | None = None, status: Status | None = None,
                  limit: Limit = 100, offset: Offset = 0) -> Page:
        """Incidents by bounding box, time, sector, category, status; paginated.
        Roles without the right see reviewed incidents only."""
        statuses = [status.value] if status else None
        if who.role not in SEES_UNREVIEWED:
            statuses = [s for s in (statuses or DECIDED) if s in DECIDED]
        items, total = store.query_incidents(
            bbox=_bbox(bbox), start=start.isoformat() if start else None,
            end=end.isoformat() if end else None, sector=sector,
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
        return to_dict(_svc(store).claim(incident_id, who.name))

    @api.post("/review/{incident_id}/release", tags=["review"])
    def release(incident_id: str, who: AsReview, store: StoreDep) -> dict[str, str]:
        _svc(store).release(incident_id, who.name)
        return {"released": incident_id}

    @api.post("/review/{incident_id}/decide", tags=["review"])
    def decide(incident_id: str, body: Decision, who: AsReview, store: StoreDep
               ) -> dict[str, Any]:
        if body.status == Status.VERIFIED and who.role not in CONFIRMS:
            raise HTTPException(403, "only a reviewer confirms 'verified'")
        return to_dict(_svc(store).decide(incident_id, who.name, body.status, body.why,
                                          body.duplicate_of))

    @api.post("/review/{incident_id}/modify", tags=["review"])
    def modify(incident_id: str, body: Modification, who: AsReview, store: StoreDep
               ) -> dict[str, Any]:
        return to_dict(_svc(store).modify(incident_id, who.name, body.why, lat=body.lat,
                                          lon=body.lon, uncertainty_m=body.uncertainty_m,
                                          time_start=body.time_start))

    @api.post("/review/incidents", tags=["review"], status_code=201)
    def add(body: NewIncident, who: AsReview, store: StoreDep) -> dict[str, Any]:
        _aware(body.time_start, body.time_end)
        return to_dict(_svc(store).add(who.name, body.why, category=body.category,
                                       lat=body.lat, lon=body.lon,
                                       uncertainty_m=body.uncertainty_m,
                                       time_start=body.time_start, time_end=body.time_end,
                                       rule=body.rule,
                                       agreement_id=agreement.id if agreement else ""))

    # ------------------------------------------------------------- allegations
    @api.post("/allegations", tags=["allegations"], status_code=201, response_model=Outcome)
    def file_allegation(body: AllegationForm, who: AsFiler, store: StoreDep
                        ) -> Outcome:
        _aware(body.time_start, body.time_end)
        kind = {Role.LIAISON: ClaimantKind.PARTY, Role.PUBLIC: ClaimantKind.PUBLIC}.get(
            who.role, ClaimantKind.MONITOR)
        item = {k: v for k, v in body.model_dump(mode="json").items() if v is not None}
        item |= {"allegation_id": f"W-{uuid.uuid4().hex[:12]}",
                 "claimant": who.party or who.name, "claimant_kind": kind.value,
                 "received_at": format_time(datetime.now(UTC))}
        doc = json.dumps({"format": "trucewatch-allegations/1", "allegations": [item]},
                         ensure_ascii=False).encode()
        o = receive(store, doc, f"api-allegation-{item['allegation_id']}",
                    sources["allegations"], actor=who.name)
        if o.quarantined:
            raise SubmissionRefusedError(422, o.quarantined[0].reason)
        assert o.report is not None
        return Outcome(name=item["allegation_id"], accepted=True, batch_id=o.report.batch_id,
                       rows=1, new=1, quarantined=[], signed_by="")

    @api.get("/allegations", tags=["allegations"], response_model=Page)
    def allegations(who: AsAllegations, store: StoreDep, limit: Limit = 100,
                    offset: Offset = 0) -> Page:
        rulings = {r["allegation_id"]: r for r in store.rulings()}
        items = []
        for a in store.allegations():
            if who.role == Role.LIAISON and a.get("claimant") not in (who.party, who.name):
                continue
            items.append({"allegation": a, "ruling": rulings.get(a["allegation_id"])})
        return _page(items[offset:offset + limit], len(items), limit, offset)

    # ------------------------------------------------------------- bulletins, agreement
    @api.get("/bulletins", tags=["bulletins"])
    def bulletins(who: AsBulletins) -> dict[str, list[str]]:
        names = sorted(p.name for p in (bulletins_dir.iterdir() if bulletins_dir and
                                        bulletins_dir.is_dir() else []) if _BULLETIN.match(p.name))
        if not who.may("bulletins_restricted"):
            names = [n for n in names if "-public." in n]
        return {"files": names}

    @api.get("/bulletins/{name}", tags=["bulletins"], response_class=FileResponse)
    def bulletin(name: str, who: AsBulletins) -> FileResponse:
        m = _BULLETIN.match(name)
        if not m or bulletins_dir is None or not (bulletins_dir / name).is_file():
            raise NotFoundError(f"no bulletin file {name!r}", fix="list them at /bulletins")
        if m.group(2) == "restricted" and not who.may("bulletins_restricted"):
            raise HTTPException(403, f"role {who.role.value} may not read restricted "
                                "bulletins")
        return FileResponse(bulletins_dir / name)

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
    from trucewatch.web import mount

    mount(app)
    return app


class SubmissionRefusedError(TrucewatchError):
    code = "submission_refused"

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"submission refused: {reason}",
                         fix="correct the submission and send it again; the refused one is "
                             "kept with its reason")
        self.status = status


def _aware(*times: datetime | None) -> None:
    for t in times:
        if t is not None and t.tzinfo is None:
            raise HTTPException(422, "times need a UTC offset, e.g. 2026-05-30T04:00:00Z")
