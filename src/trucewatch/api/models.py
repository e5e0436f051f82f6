"""Typed response models for the API's main routes (what the OpenAPI document shows,
with examples). Models of stored documents allow extra fields: a newer document's
fields pass through rather than being dropped."""

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_OPEN = ConfigDict(extra="allow")


class Location(BaseModel):
    model_config = _OPEN

    lat: float
    lon: float
    uncertainty_m: float | None = None
    precision_km: float = Field(description="how far the true point may lie from the one "
                                            "given, in km")
    where_prec: int = Field(ge=1, le=4, description="1 within 1 km, 2 within 5 km, 3 "
                                                    "within 25 km, 4 coarser (docs/api.md)")
    place: str = Field(description="'X km DIR of PLACE' from the gazetteer")


INCIDENT_EXAMPLE: dict[str, Any] = {
    "id": "inc-64b83dcecc6781f4", "type": "trucewatch/incident", "category": "fire",
    "status": "verified", "time_start": "2026-04-26T10:26:00Z",
    "time_end": "2026-04-26T23:57:59Z", "sector_id": "north",
    "zone_ids": ["buffer:left"], "n_sources": 1,
    "location": {"lat": 48.507086, "lon": 37.992935, "uncertainty_m": 459.0,
                 "precision_km": 0.459, "where_prec": 1,
                 "place": "5 km NE of Kurdyumivka"},
    "reason": "fire_in_buffer_zone: fire seen by 1 independent source(s) ...",
    "observation_ids": ["o-1444a707978934d0a29836f1"], "attributes": {"confidence": 0.6}}


class Incident(BaseModel):
    model_config = ConfigDict(extra="allow",
                              json_schema_extra={"examples": [INCIDENT_EXAMPLE]})

    id: str
    category: str
    status: str
    time_start: str
    time_end: str | None = None
    sector_id: str | None = None
    zone_ids: list[str] = []
    location: Location
    # extra, for a principal with the review right only (the queue, /incidents/{id}):
    # ``actions``, what it may do now (status values and "modify"), and
    # ``actions_refused``, why each other action would be refused; not declared here so
    # that a listing without them does not carry them as nulls


class IncidentPage(BaseModel):
    """``total`` is exact up to 10,000; above, it reads 10,001 and ``total_capped`` is
    true (page on with ``next_offset``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "items": [INCIDENT_EXAMPLE], "total": 1, "total_capped": False, "limit": 100,
        "offset": 0, "next_offset": None}]})

    items: list[Incident]
    total: int
    total_capped: bool = False
    limit: int
    offset: int
    next_offset: int | None


class Me(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "analyst-user", "role": "analyst", "party": None}]})

    name: str
    role: str
    party: str | None


class Aggregates(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "incidents": 3, "by_status": {"verified": 2, "automatic": 1},
        "by_category": {"fire": 3}, "by_sector": {"north": 3},
        "verified_by_sector": {"north": 2}}]})

    incidents: int
    by_status: dict[str, int]
    by_category: dict[str, int]
    by_sector: dict[str, int]
    verified_by_sector: dict[str, int]


class Product(BaseModel):
    model_config = _OPEN

    name: str
    kind: str
    report_date: str | None = None
    audience: str
    sha256: str
    size: int
    published_at: str | None = None


class Bulletins(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "files": ["bulletin-2026-05-31-public.pdf"],
        "products": [{"name": "bulletin-2026-05-31-public.pdf", "kind": "pdf",
                      "report_date": "2026-05-31", "audience": "public",
                      "sha256": "9f2c...", "size": 48213,
                      "published_at": "2026-06-01T06:00:00Z"}]}]})

    files: list[str]
    products: list[Product]


class Variant(StrEnum):
    PUBLIC = "public"
    RESTRICTED = "restricted"


class PublishedProduct(BaseModel):
    """One published product: a file the cycle wrote and recorded with its SHA-256,
    immutable once published (a later revision is a product of its own)."""

    name: str
    date: str = Field(description="the day the product reports (YYYY-MM-DD)")
    kind: str = Field(description="the file's format: json, html, pdf or geojson")
    variant: Variant
    revision: int = Field(ge=1, description="1 for the first publication, N for .revN")
    tier: str | None = Field(None, description="automatic, 6h, 24h... (the clock's "
                             "incident lists), daily (its daily bulletin), bulletin (a "
                             "cycle's)")
    sha256: str
    size: int
    published_at: str | None = None
    url: str = Field(description="where to fetch it (GET, with the same token)")


class Products(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"products": [{
        "name": "bulletin-2026-05-31-public.pdf", "date": "2026-05-31", "kind": "pdf",
        "variant": "public", "revision": 1, "sha256": "9f2c...", "size": 48213,
        "published_at": "2026-06-01T06:00:00Z",
        "url": "/api/v1/bulletins/bulletin-2026-05-31-public.pdf"}]}]})

    products: list[PublishedProduct]


class Feature(BaseModel):
    model_config = _OPEN

    type: Literal["Feature"]
    geometry: dict[str, Any] | None
    properties: dict[str, Any]


class FeatureCollection(BaseModel):
    """GeoJSON (RFC 7946): WGS 84 longitude, latitude; exterior rings counter-clockwise,
    holes clockwise."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "FeatureCollection", "features": [{
            "type": "Feature", "properties": {"layer": "sector", "id": "north",
                                              "name": "North"},
            "geometry": {"type": "Polygon", "coordinates": [[
                [37.5, 48.0], [38.5, 48.0], [38.5, 49.0], [37.5, 49.0], [37.5, 48.0]]]}}],
        "properties": {"id": "demo-2026", "name": "Demo agreement",
                       "entry_into_force": "2026-04-20T00:00:00Z"}}]})

    type: Literal["FeatureCollection"]
    features: list[Feature]
    properties: dict[str, Any] = {}


class DayCount(BaseModel):
    date: str
    sector: str
    category: str
    count: int


class PublicCounts(BaseModel):
    """Reviewed incidents counted per day (UTC, of the incident's start), sector and
    category; no locations."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "days": [{"date": "2026-05-31", "sector": "S1", "category": "explosion",
                  "count": 4}],
        "precision_km": 11.132, "statuses": ["verified", "unverifiable"]}]})

    days: list[DayCount]
    precision_km: float
    statuses: list[str]
