"""Incidents, violations and their counts: what roles without the right to unreviewed
incidents may read is decided ones only."""

from collections import Counter
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from trucewatch.api import exports
from trucewatch.api.auth import SEES_UNREVIEWED, Principal
from trucewatch.api.deps import (
    DECIDED,
    AsAggregates,
    AsIncidents,
    AsViolations,
    Bbox,
    Limit,
    Offset,
    Page,
    QueryTime,
    StoreDep,
    page,
    parse_bbox,
)
from trucewatch.api.geo import located
from trucewatch.api.models import Aggregates, Incident, IncidentPage
from trucewatch.api.routes.review import with_actions
from trucewatch.errors import NotFoundError
from trucewatch.model.enums import Category, Status
from trucewatch.model.serialization import to_dict
from trucewatch.storage.protocols import IncidentStore

router = APIRouter()
# the counts come after /observations in the OpenAPI document (as before the split)
counts = APIRouter()
EXPORT_LIMIT = 100_000


Sector = Annotated[str | None, Query(max_length=100)]
ExportKind = Literal["csv", "kml", "gpkg"]


def _query(who: Principal, store: IncidentStore, bbox: str | None,
           start: datetime | None, end: datetime | None,
           sector: str | None, category: Category | None, status: Status | None,
           limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    statuses = [status.value] if status else None
    if who.role not in SEES_UNREVIEWED:
        statuses = [s for s in (statuses or DECIDED) if s in DECIDED]
    items, total = store.query_incidents(
        bbox=parse_bbox(bbox), start=start, end=end, sector=sector,  # compared as times
        category=category.value if category else None, statuses=statuses,
        limit=limit, offset=offset, raw=True)
    return [located(i) for i in items], total


@router.get("/incidents", tags=["queries"], response_model=IncidentPage)
def incidents(who: AsIncidents, store: StoreDep, bbox: Bbox = None,
              start: QueryTime | None = None, end: QueryTime | None = None,
              sector: Sector = None,
              category: Category | None = None, status: Status | None = None,
              limit: Limit = 100, offset: Offset = 0) -> Page:
    """Incidents by bounding box, time, sector, category, status; paginated.
    ``start`` (inclusive) and ``end`` (exclusive) bound the incident's start, as
    times: any UTC offset. Roles without the right see reviewed incidents only. Each
    location carries ``place`` ("5 km NE of Kurdyumivka"), ``precision_km`` and
    ``where_prec``."""
    items, total = _query(who, store, bbox, start, end, sector, category, status, limit,
                          offset)
    return page(items, total, limit, offset)


@router.get("/incidents.{kind}", tags=["exports"], response_class=Response,
            responses={200: {"content": {exports.MEDIA[k]: {} for k in ("csv", "kml",
                                                                        "gpkg")}}})
def incidents_export(kind: ExportKind, who: AsIncidents, store: StoreDep,
                     bbox: Bbox = None, start: QueryTime | None = None,
                     end: QueryTime | None = None, sector: Sector = None,
                     category: Category | None = None, status: Status | None = None,
                     limit: Annotated[int, Query(ge=1, le=EXPORT_LIMIT)] = EXPORT_LIMIT,
                     offset: Offset = 0) -> Response:
    """The incidents ``/incidents`` would list (same filters, same role rules, same
    fields) as a CSV table, a KML file or a GeoPackage (layer ``incidents``, EPSG:4326),
    up to 100,000 at a time (page on with ``offset``)."""
    items, _ = _query(who, store, bbox, start, end, sector, category, status, limit,
                      offset)
    return Response(exports.incidents_file(items, kind), media_type=exports.MEDIA[kind],
                    headers={"Content-Disposition":
                             f'attachment; filename="incidents.{kind}"'})


@router.get("/incidents/{incident_id}", tags=["queries"], response_model=Incident)
def incident(incident_id: str, who: AsIncidents, store: StoreDep) -> dict[str, Any]:
    inc = store.incident(incident_id)
    if who.role not in SEES_UNREVIEWED and inc.status.value not in DECIDED:
        raise NotFoundError(f"no incident {incident_id}", fix="check the id")
    out = located(to_dict(inc))
    if who.role in SEES_UNREVIEWED:
        out["history"] = [{k: h[k] for k in ("version", "status", "action", "who", "at",
                                              "why")}
                          for h in store.incident_history(incident_id)]
    return with_actions(out, inc, who, store)


@router.get("/violations", tags=["queries"], response_model=Page)
def violations(who: AsViolations, store: StoreDep, limit: Limit = 100,
               offset: Offset = 0) -> Page:
    status = {i.id: i.status.value for i in store.incidents()}
    items = [to_dict(v) | {"status": status.get(v.incident_id, "")}
             for v in store.violations()]
    if who.role not in SEES_UNREVIEWED:
        items = [v for v in items if v["status"] in DECIDED]
    return page(items[offset:offset + limit], len(items), limit, offset)


@counts.get("/aggregates", tags=["queries"], response_model=Aggregates)
def aggregates(who: AsAggregates, store: StoreDep) -> dict[str, Any]:
    """Counts of incidents by sector, category and status: no locations."""
    incs = store.incidents()
    return {"incidents": len(incs),
            "by_status": dict(Counter(i.status.value for i in incs)),
            "by_category": dict(Counter(i.category.value for i in incs)),
            "by_sector": dict(Counter(i.sector_id or "-" for i in incs)),
            "verified_by_sector": dict(Counter(i.sector_id or "-" for i in incs
                                               if i.status == Status.VERIFIED))}
