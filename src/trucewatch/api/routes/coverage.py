"""What the last cycle could see."""

from typing import Any

from fastapi import APIRouter

from trucewatch.api.deps import AsCoverage, StoreDep
from trucewatch.api.geo import rewind
from trucewatch.errors import NotFoundError

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
