"""Observations by source kind (evidence media and platforms for staff only)."""

import json
from typing import Annotated

from fastapi import APIRouter, Query

from trucewatch.api.auth import SEES_MEDIA
from trucewatch.api.deps import AsObservations, Limit, Offset, Page, StoreDep, page

router = APIRouter()


@router.get("/observations", tags=["queries"], response_model=Page)
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
    return page(items, rows.height, limit, offset)
