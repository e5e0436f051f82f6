"""Typed domain objects with lossless, versioned JSON serialization."""

from trucewatch.model.agreement import (
    Agreement,
    ProtectedSite,
    Sector,
    Side,
    TrainingArea,
    Zone,
)
from trucewatch.model.enums import Category, SourceKind, Status, ZoneKind
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.observation import Location, Observation
from trucewatch.model.serialization import from_dict, from_json, to_dict, to_json

__all__ = [
    "Agreement",
    "Category",
    "Incident",
    "Location",
    "Observation",
    "ProtectedSite",
    "Sector",
    "Side",
    "SourceKind",
    "Status",
    "TrainingArea",
    "Violation",
    "Zone",
    "ZoneKind",
    "from_dict",
    "from_json",
    "to_dict",
    "to_json",
]
