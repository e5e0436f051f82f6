"""``GET /api/v1/alerts.cap``: the CAP 1.2 feed of candidate violations (an Atom feed of
CAP alerts), and ``GET /api/v1/alerts/{identifier}.cap``: one alert.

Roles that see unreviewed incidents (``SEES_UNREVIEWED``: staff and coalition) read the
restricted feed: every candidate from the moment it is created, with exact locations.
Every other role that may read public bulletins reads the public feed: reviewed alerts
only (verified, unverifiable), located to the 0.1 degree cell (:mod:`trucewatch.alerts.cap`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from trucewatch.alerts import cap
from trucewatch.api.auth import SEES_UNREVIEWED, Principal
from trucewatch.api.deps import StoreDep, allowed
from trucewatch.errors import NotFoundError

router = APIRouter(tags=["alerts"])
AsReader = Annotated[Principal, Depends(allowed("bulletins_public"))]


def audience_of(who: Principal) -> cap.Audience:
    return cap.Audience.RESTRICTED if who.role in SEES_UNREVIEWED else cap.Audience.PUBLIC


@router.get("/alerts.cap", response_class=Response,
            responses={200: {"content": {cap.ATOM_MEDIA_TYPE: {}}}})
async def alerts_feed(who: AsReader, store: StoreDep) -> Response:
    """The candidate violations as CAP 1.2 alerts in an Atom feed: restricted until
    reviewed, public after."""
    audience = audience_of(who)
    items = await run_in_threadpool(cap.alerts, store, audience)
    body = cap.feed(items, audience, f"urn:trucewatch:alerts:{audience.value}")
    return Response(body, media_type=cap.ATOM_MEDIA_TYPE)


@router.get("/alerts/{identifier}.cap", response_class=Response,
            responses={200: {"content": {cap.CAP_MEDIA_TYPE: {}}}})
async def alert_one(identifier: str, who: AsReader, store: StoreDep) -> Response:
    """One CAP alert by its identifier (as listed in the feed)."""
    audience = audience_of(who)
    items = await run_in_threadpool(cap.alerts, store, audience)
    found = next((a for a in items if a.identifier == identifier), None)
    if found is None:
        raise NotFoundError(f"no alert {identifier!r}",
                            fix="list the alerts you may read at /api/v1/alerts.cap")
    return Response(cap.to_xml(found, audience), media_type=cap.CAP_MEDIA_TYPE)
