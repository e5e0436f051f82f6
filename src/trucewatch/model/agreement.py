"""The agreement: line of contact, zones, protected sites, sectors, entry into force.

Geometries are WGS84 (lon, lat) shapely objects; metric work happens in the
agreement's projected CRS (``crs``), see :mod:`trucewatch.geo.crs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shapely.geometry.base import BaseGeometry

from trucewatch.model.enums import EvidenceClass
from trucewatch.model.enums import ZoneKind as ZoneKind  # re-exported (its old home)
from trucewatch.model.serialization import register

# what each class of evidence proves in each kind of zone (``evidence_rules:`` in the
# agreement overrides single entries): "violation" (a candidate violation, given enough
# evidence) or "none" (that evidence alone proves nothing there). A heavy weapon in a
# withdrawal zone is a violation only in its own class's zone.
EVIDENCE_CLASSES = (EvidenceClass.FIRE, EvidenceClass.EXPLOSION, EvidenceClass.HEAVY_WEAPON)
VERDICTS = ("violation", "none")
EVIDENCE_ZONE_KINDS = (ZoneKind.PROTECTED_SITE, ZoneKind.DISENGAGEMENT, ZoneKind.BUFFER,
                       ZoneKind.WITHDRAWAL)
_V, _NONE = "violation", "none"
_FIRE, _EXPL, _HW = EVIDENCE_CLASSES
DEFAULT_EVIDENCE_RULES: dict[str, dict[str, str]] = {
    ZoneKind.PROTECTED_SITE: {_FIRE: _V, _EXPL: _V, _HW: _NONE},
    ZoneKind.DISENGAGEMENT: {_FIRE: _V, _EXPL: _V, _HW: _V},
    ZoneKind.BUFFER: {_FIRE: _V, _EXPL: _V, _HW: _V},
    # a withdrawal zone restricts weapons, not fires
    ZoneKind.WITHDRAWAL: {_FIRE: _NONE, _EXPL: _V, _HW: _V},
}


# zone ids, made here only: an id names a zone, nothing reads a meaning back out of it
# (a zone's kind, side and weapon class are its typed fields)
def buffer_zone_id(side: str) -> str:
    return f"buffer:{side}"


def withdrawal_zone_id(weapon_class: str, side: str) -> str:
    return f"withdrawal:{weapon_class}:{side}"


def site_zone_id(site: str) -> str:
    return f"site:{site}"


def disengagement_zone_id(area: str) -> str:
    return f"disengagement:{area}"


@register("trucewatch/side", 1)
@dataclass
class Side:
    id: str
    name: str
    buffer_km: float
    extra: dict[str, Any] = field(default_factory=dict)


@register("trucewatch/zone", 1)
@dataclass
class Zone:
    """A restricted area derived from the agreement. ``weapon_class`` for withdrawal zones."""

    id: str
    kind: ZoneKind
    geometry: BaseGeometry
    side: str | None = None
    weapon_class: str | None = None
    distance_km: float | None = None
    area_km2: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@register("trucewatch/sector", 1)
@dataclass
class Sector:
    id: str
    name: str
    geometry: BaseGeometry
    extra: dict[str, Any] = field(default_factory=dict)


@register("trucewatch/protected_site", 1)
@dataclass
class ProtectedSite:
    id: str
    name: str
    kind: str
    lat: float
    lon: float
    radius_m: float
    extra: dict[str, Any] = field(default_factory=dict)


@register("trucewatch/disengagement_area", 1)
@dataclass
class DisengagementArea:
    """An area both sides withdrew from (forces and weapons): a disc of ``radius_m`` around
    lat/lon, or ``geometry`` (WGS84 polygon; lat/lon then its representative point)."""

    id: str
    name: str
    lat: float
    lon: float
    radius_m: float = 0.0
    geometry: BaseGeometry | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@register("trucewatch/training_area", 1)
@dataclass
class TrainingArea:
    """A range where a party notified live-fire training, and when (UTC windows)."""

    id: str
    name: str
    lat: float
    lon: float
    radius_m: float
    windows: list[tuple[datetime, datetime]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@register("trucewatch/agreement", 1)
@dataclass
class Agreement:
    id: str
    name: str
    entry_into_force: datetime
    line_of_contact: BaseGeometry
    sides: list[Side]
    withdrawal_km: dict[str, float]
    protected_sites: list[ProtectedSite]
    sectors: list[Sector]
    zones: list[Zone]
    crs: str
    grace_period_hours: float = 0.0
    training_areas: list[TrainingArea] = field(default_factory=list)
    disengagement_areas: list[DisengagementArea] = field(default_factory=list)
    # the agreement's own ``evidence_rules`` (zone kind -> evidence class -> verdict), as
    # declared; :meth:`evidence_rule` falls back to DEFAULT_EVIDENCE_RULES
    evidence_rules: dict[str, dict[str, str]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def evidence_rule(self, kind: str, evidence: str) -> str:
        """"violation" or "none": what ``evidence`` (fire, explosion, heavy_weapon) in a zone
        of ``kind`` proves under this agreement."""
        own = (self.evidence_rules or {}).get(str(kind), {})
        return str(own.get(evidence, DEFAULT_EVIDENCE_RULES.get(str(kind), {}).get(
            evidence, "none")))

    def zone(self, zone_id: str) -> Zone:
        for z in self.zones:
            if z.id == zone_id:
                return z
        raise KeyError(zone_id)
