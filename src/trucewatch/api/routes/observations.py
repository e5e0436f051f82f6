"""Observations by source kind (evidence media and platforms for staff only)."""

import json
from typing import Annotated

from fastapi import APIRouter, Query

from trucewatch.api.auth import SEES_MEDIA
from trucewatch.api.deps import (
    AsObservations,
    Bbox,
    Limit,
    Offset,
    Page,
    QueryTime,
    StoreDep,
    page,
    parse_bbox,
)

router = APIRouter()


@router.get("/observations", tags=["queries"], response_model=Page)
def observations(who: AsObservations, store: StoreDep,
                 source_kind: Annotated[str, Query(pattern="^[a-z_]{1,40}$")] = "drone",
                 bbox: Bbox = None, start: QueryTime | None = None,
                 end: QueryTime | None = None, limit: Limit = 100,
                 offset: Offset = 0) -> Page:
    """Observations of one source kind (the sensor stream's located explosions
    included), oldest first; ``bbox`` keeps those inside (an invalid one is answered
    422); ``start`` (inclusive) and ``end`` (exclusive) keep those whose window overlaps
    them, compared as times: any UTC offset or fraction of a second. Filtered, ordered
    and paged in the database."""
    rows, total = store.observations_page(source_kind, parse_bbox(bbox), start, end,
                                          limit, offset)
    items = []
    for r in rows.iter_rows(named=True):
        attrs = json.loads(r.pop("attributes"))
        if who.role not in SEES_MEDIA:
            attrs.pop("media", None)
            attrs.pop("platform", None)
        items.append(r | {"attributes": attrs})
    return page(items, total, limit, offset)
