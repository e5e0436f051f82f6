"""What the last cycle could see."""

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from trucewatch.api.deps import AsCoverage, StoreDep
from trucewatch.api.geo import rewind
from trucewatch.errors import InputFileError, NotFoundError

router = APIRouter()


@router.get("/coverage", tags=["agreement"])
def coverage(who: AsCoverage, store: StoreDep) -> dict[str, Any]:
    """What the last cycle could see: the sensor network's area and the drone patrols
    (GeoJSON, with their periods; polygons wound as RFC 7946 says) and the satellite
    days (cloud, data)."""
    doc = store.latest_coverage()
    if doc is None:
        raise NotFoundError("no coverage recorded yet", fix="run a verification cycle")
    return dict(rewind(doc))


@router.get("/stations/uptime", tags=["agreement"])
def station_uptime(who: AsCoverage, store: StoreDep,
                   silence_s: Annotated[float, Query(gt=0, le=86400 * 7)] = 600.0,
                   until: datetime | None = None) -> dict[str, Any]:
    """Each station's up and down intervals from the heartbeats its network posted
    (``POST /api/v1/ingest/heartbeats``): a station is down after ``silence_s`` without a
    heartbeat. With the network's steps (how many stations were up, when: what it could
    hear) and the health sentences."""
    from trucewatch.intake.sources import network_uptime

    if until is not None and until.tzinfo is None:
        raise InputFileError("until has no UTC offset", fix="end it with Z or +00:00")
    u = network_uptime(store, until, timedelta(seconds=silence_s))
    if u is None:
        raise NotFoundError("no station heartbeat received yet",
                            fix="a sensor network posts its signed heartbeats to "
                                "/api/v1/ingest/heartbeats")
    return u.to_dict()
