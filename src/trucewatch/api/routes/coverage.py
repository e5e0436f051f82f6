"""What the last cycle could see."""

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from trucewatch.api import exports
from trucewatch.api.deps import AsCoverage, StoreDep
from trucewatch.api.geo import rewind
from trucewatch.errors import InputFileError, NotFoundError
from trucewatch.storage.protocols import IncidentStore

router = APIRouter()


def _doc(store: IncidentStore) -> dict[str, Any]:
    doc = store.latest_coverage()
    if doc is None:
        raise NotFoundError("no coverage recorded yet", fix="run a verification cycle")
    return dict(rewind(doc))


@router.get("/coverage", tags=["agreement"])
def coverage(who: AsCoverage, store: StoreDep) -> dict[str, Any]:
    """What the last cycle could see: the sensor network's area and the drone patrols
    (GeoJSON, with their periods; polygons wound as RFC 7946 says), the satellite
    days (cloud, data), and per day (``date``) the coverage maps' layers: ``satellite``
    (one state a day for the mission area), ``capability`` (the smallest charge heard,
    kg TNT-equivalent, by class), ``not_heard``, ``patrol_swath`` and ``not_observed``;
    ``maps.days[].sectors[]`` holds each sector's figures."""
    return _doc(store)


@router.get("/coverage/capability", tags=["agreement"])
def capability(who: AsCoverage, store: StoreDep, day: date | None = None) -> dict[str, Any]:
    """The sensor network's detection capability on ``day`` (default: the last day
    mapped): the capability classes and the area not heard, as GeoJSON, with each
    sector's median and best smallest charge (kg TNT-equivalent) and the model used."""
    doc = _doc(store)
    maps = doc.get("maps") or {}
    days = {d["date"]: d for d in maps.get("days", [])}
    if not days:
        raise NotFoundError("no capability map recorded", fix="run a verification cycle")
    key = day.isoformat() if day else max(days)
    if key not in days:
        raise NotFoundError(f"no capability map for {key}",
                            fix=f"ask for one of {', '.join(sorted(days))}")
    feats = [f for f in doc.get("features", [])
             if (f.get("properties") or {}).get("date") == key
             and f["properties"].get("layer") in ("capability", "not_heard")]
    d = days[key]
    return {"type": "FeatureCollection", "features": feats, "date": key,
            "model": maps.get("capability_model"), "capability": maps.get("capability"),
            "sensors": d.get("sensors"),
            "sectors": [{k: s.get(k) for k in ("id", "name", "sensor_observed_share",
                                               "median_charge_kg", "best_charge_kg")}
                        for s in d.get("sectors", [])]}


@router.get("/coverage.{kind}", tags=["exports"], response_class=Response,
            responses={200: {"content": {exports.MEDIA[k]: {} for k in ("csv", "geojson",
                                                                        "kml", "gpkg")}}})
def coverage_file(kind: Literal["csv", "geojson", "kml", "gpkg"], who: AsCoverage,
                  store: StoreDep) -> Response:
    """The coverage as a file: CSV (one row a day and sector), or its layers as GeoJSON,
    KML (one placemark a feature, ``layer`` and ``date`` among its data) or GeoPackage
    (one layer a ``layer`` value, EPSG:4326). Same role rules as ``/coverage``."""
    return Response(exports.coverage_file(_doc(store), kind), media_type=exports.MEDIA[kind],
                    headers={"Content-Disposition":
                             f'attachment; filename="coverage.{kind}"'})


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
