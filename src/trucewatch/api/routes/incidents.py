"""Incidents, violations and their counts: what roles without the right to unreviewed
incidents may read is decided ones only."""

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from trucewatch.api.auth import SEES_UNREVIEWED
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
    stored,
)
from trucewatch.errors import NotFoundError
from trucewatch.model.enums import Category, Status
from trucewatch.model.serialization import to_dict

router = APIRouter()
# the counts come after /observations in the OpenAPI document (as before the split)
counts = APIRouter()


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    a, b, c, d = (float(x) for x in text.split(","))
    if not (-180 <= a <= c <= 180 and -90 <= b <= d <= 90):
        raise HTTPException(422, "bbox must be min_lon,min_lat,max_lon,max_lat in range")
    return a, b, c, d


@router.get("/incidents", tags=["queries"], response_model=Page)
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
        bbox=parse_bbox(bbox), start=stored(start), end=stored(end), sector=sector,
        category=category.value if category else None, statuses=statuses,
        limit=limit, offset=offset, raw=True)
    return page(items, total, limit, offset)


@router.get("/incidents/{incident_id}", tags=["queries"])
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


@router.get("/violations", tags=["queries"], response_model=Page)
def violations(who: AsViolations, store: StoreDep, limit: Limit = 100,
               offset: Offset = 0) -> Page:
    status = {i.id: i.status.value for i in store.incidents()}
    items = [to_dict(v) | {"status": status.get(v.incident_id, "")}
             for v in store.violations()]
    if who.role not in SEES_UNREVIEWED:
        items = [v for v in items if v["status"] in DECIDED]
    return page(items[offset:offset + limit], len(items), limit, offset)


@counts.get("/aggregates", tags=["queries"])
def aggregates(who: AsAggregates, store: StoreDep) -> dict[str, Any]:
    """Counts of incidents by sector, category and status: no locations."""
    incs = store.incidents()
    return {"incidents": len(incs),
            "by_status": dict(Counter(i.status.value for i in incs)),
            "by_category": dict(Counter(i.category.value for i in incs)),
            "by_sector": dict(Counter(i.sector_id or "-" for i in incs)),
            "verified_by_sector": dict(Counter(i.sector_id or "-" for i in incs
                                               if i.status == Status.VERIFIED))}
