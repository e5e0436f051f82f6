"""The agreement's geometry (line of contact, zones, sectors, protected sites)."""

from typing import Any

from fastapi import APIRouter

from trucewatch.api.auth import SEES_HUBS
from trucewatch.api.deps import AsAgreement, ConfigDep
from trucewatch.errors import NotFoundError
from trucewatch.model.serialization import format_time

router = APIRouter()


@router.get("/agreement", tags=["agreement"])
def agreement_geojson(who: AsAgreement, cfg: ConfigDep) -> dict[str, Any]:
    """The line of contact, zones, sectors and protected sites as GeoJSON; the
    multinational force's hubs only for roles with the right."""
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
    return {"type": "FeatureCollection", "features": feats,
            "properties": {"id": agreement.id, "name": agreement.name,
                           "entry_into_force": format_time(agreement.entry_into_force)}}
