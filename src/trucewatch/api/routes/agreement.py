"""The agreement's geometry (line of contact, zones, sectors, protected sites)."""

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response

from trucewatch.api import exports
from trucewatch.api.auth import SEES_HUBS, Principal
from trucewatch.api.deps import AsAgreement, Config, ConfigDep
from trucewatch.api.geo import rewind
from trucewatch.api.models import FeatureCollection
from trucewatch.errors import NotFoundError
from trucewatch.model.serialization import format_time

router = APIRouter()


@router.get("/agreement", tags=["agreement"], response_model=FeatureCollection)
def agreement_geojson(who: AsAgreement, cfg: ConfigDep) -> dict[str, Any]:
    """The line of contact, zones, sectors and protected sites as GeoJSON (RFC 7946:
    exterior rings counter-clockwise, holes clockwise); the multinational force's hubs
    only for roles with the right."""
    return _collection(who, cfg)


@router.get("/agreement.{kind}", tags=["exports"], response_class=Response,
            responses={200: {"content": {exports.MEDIA[k]: {} for k in ("geojson", "kml",
                                                                        "gpkg")}}})
def agreement_file(kind: Literal["geojson", "kml", "gpkg"], who: AsAgreement,
                   cfg: ConfigDep) -> Response:
    """The zone file: what ``/agreement`` answers (the same role rules), as a GeoJSON
    file, a KML file (one placemark a feature, its ``layer`` among its data) or a
    GeoPackage (layers ``line_of_contact``, ``zone``, ``sector``, ``protected_site``,
    EPSG:4326)."""
    name = f"agreement-{cfg.agreement.id}" if cfg.agreement else "agreement"
    return Response(exports.geojson_file(_collection(who, cfg), kind),
                    media_type=exports.MEDIA[kind],
                    headers={"Content-Disposition":
                             f'attachment; filename="{name}.{kind}"'})


def _collection(who: Principal, cfg: Config) -> dict[str, Any]:
    agreement = cfg.agreement
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
    return {"type": "FeatureCollection", "features": rewind(feats),
            "properties": {"id": agreement.id, "name": agreement.name,
                           "entry_into_force": format_time(agreement.entry_into_force)}}
