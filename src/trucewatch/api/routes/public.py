"""The public's view: published bulletins, counts per sector and day, and reviewed
incidents rounded to the public precision. Readable without a token when the mission
publishes it (``create_app(public=True)``, ``serve --public``); otherwise with any token
that may read public bulletins (without one: 401)."""

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from trucewatch.api.auth import Principal
from trucewatch.api.deps import PUBLIC_STATUSES, Config, ConfigDep, StoreDep, config
from trucewatch.api.geo import located, where_prec
from trucewatch.api.models import Bulletins, FeatureCollection, PublicCounts
from trucewatch.api.routes.bulletins import MEDIA_TYPES, find_product, listing, serve_product
from trucewatch.model.serialization import format_time
from trucewatch.storage.protocols import IncidentStore

router = APIRouter(prefix="/public", tags=["public"])


def public_reader(request: Request, cfg: Annotated[Config, Depends(config)]) -> None:
    """Open when the mission publishes the public's view; else a token that may read
    public bulletins (the guard has answered 401 to a request without one)."""
    if cfg.public:
        return
    who = request.scope.get("state", {}).get("principal")
    if not isinstance(who, Principal):
        raise HTTPException(401, "no token", headers={"WWW-Authenticate": "Bearer"})
    if not who.may("bulletins_public"):
        raise HTTPException(403, f"role {who.role.value} may not read the public's view")


Reader = Annotated[None, Depends(public_reader)]


def _hidden_zones(cfg: Config) -> set[str]:
    """Zones the public is not told of (the multinational force's hubs)."""
    a = cfg.agreement
    return set() if a is None else {f"site:{s.id}" for s in a.protected_sites
                                    if s.kind == "mnf_hub"}


def _reviewed(store: IncidentStore) -> list[Any]:
    return [i for i in store.incidents() if i.status.value in PUBLIC_STATUSES]


@router.get("/bulletins", response_model=Bulletins)
def public_bulletins(_: Reader, store: StoreDep) -> dict[str, Any]:
    """The published public bulletins (and their GeoJSON), each with its SHA-256."""
    return listing([p for p in store.products() if p["audience"] == "public"])


@router.get("/bulletins/{name}", response_class=Response,
            responses={200: {"content": {t: {} for t in sorted(set(MEDIA_TYPES.values()))}}})
def public_bulletin(name: str, _: Reader, store: StoreDep, cfg: ConfigDep) -> Response:
    """One published public bulletin file (a restricted one is not found here)."""
    p = find_product(store, name)
    if p["audience"] != "public":
        raise HTTPException(404, f"no published public bulletin file {name!r}")
    return serve_product(p, cfg.bulletins_dir)


@router.get("/counts", response_model=PublicCounts)
def public_counts(_: Reader, store: StoreDep, cfg: ConfigDep) -> dict[str, Any]:
    """Reviewed incidents (verified or unverifiable) counted per day of their start
    (UTC), sector and category; no location."""
    n = Counter((i.time_start.date().isoformat(), i.sector_id or "-", i.category.value)
                for i in _reviewed(store))
    return {"days": [{"date": d, "sector": s, "category": c, "count": k}
                     for (d, s, c), k in sorted(n.items())],
            "precision_km": cfg.public_precision_km, "statuses": PUBLIC_STATUSES}


@router.get("/incidents", response_model=FeatureCollection)
def public_incidents(_: Reader, store: StoreDep, cfg: ConfigDep) -> dict[str, Any]:
    """Reviewed incidents (verified or unverifiable) as GeoJSON points rounded to the
    public precision, each with ``place``, ``precision_km`` and ``where_prec``; no
    reason, observation, attribute or hub zone."""
    hidden = _hidden_zones(cfg)
    km = cfg.public_precision_km
    feats = []
    for inc in sorted(_reviewed(store), key=lambda i: (i.time_start, i.id)):
        doc = located({"location": {"lat": inc.location.lat, "lon": inc.location.lon,
                                    "uncertainty_m": inc.location.uncertainty_m}}, km)
        loc = doc["location"]
        feats.append({"type": "Feature",
                      "geometry": {"type": "Point", "coordinates": [loc["lon"], loc["lat"]]},
                      "properties": {
                          "id": inc.id, "category": inc.category.value,
                          "status": inc.status.value,
                          "time_start": _time(inc.time_start),
                          "time_end": _time(inc.time_end),
                          "sector": inc.sector_id or "-",
                          "zone_ids": [z for z in inc.zone_ids if z not in hidden],
                          "place": loc["place"], "precision_km": loc["precision_km"],
                          "where_prec": loc["where_prec"]}})
    return {"type": "FeatureCollection", "features": feats,
            "properties": {"precision_km": km, "where_prec": int(where_prec(km)),
                           "statuses": PUBLIC_STATUSES}}


def _time(t: Any) -> str | None:
    return None if t is None else format_time(t)
