"""Observations by source kind (evidence media and platforms for staff only)."""

import json
from typing import Annotated

import polars as pl
from fastapi import APIRouter, Query

from trucewatch.api.auth import SEES_MEDIA
from trucewatch.api.deps import (
    AsObservations,
    Bbox,
    Limit,
    Offset,
    Page,
    StoreDep,
    page,
    parse_bbox,
)

router = APIRouter()


@router.get("/observations", tags=["queries"], response_model=Page)
def observations(who: AsObservations, store: StoreDep,
                 source_kind: Annotated[str, Query(pattern="^[a-z_]{1,40}$")] = "drone",
                 bbox: Bbox = None, limit: Limit = 100, offset: Offset = 0) -> Page:
    """Observations of one source kind, oldest first; ``bbox`` keeps those inside
    (an invalid one is answered 422)."""
    box = parse_bbox(bbox)
    rows = store.observations(source_kind)
    if box is not None:
        rows = rows.filter(pl.col("longitude").is_between(box[0], box[2])
                           & pl.col("latitude").is_between(box[1], box[3]))
    items = []
    for r in rows.slice(offset, limit).iter_rows(named=True):
        attrs = json.loads(r.pop("attributes"))
        if who.role not in SEES_MEDIA:
            attrs.pop("media", None)
            attrs.pop("platform", None)
        items.append(r | {"attributes": attrs})
    return page(items, rows.height, limit, offset)
