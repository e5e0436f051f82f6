"""Observation: one thing one source saw, with its uncertainty and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from trucewatch.model.enums import SourceKind
from trucewatch.model.serialization import register


@dataclass(frozen=True)
class Location:
    """WGS84 point with a 1-sigma horizontal uncertainty in metres."""

    lat: float
    lon: float
    uncertainty_m: float


@register("trucewatch/observation", 1)
@dataclass
class Observation:
    """A single observation.

    ``time_start``/``time_end`` form a window; an instant has them equal. A FIRMS
    row with a date but no time is the whole UTC day. ``raw_sha256`` is the hash of
    the raw record exactly as received (the stored raw input can be re-read to
    prove it); ``batch_id`` is the ingest batch that brought it.
    """

    id: str
    source_kind: SourceKind
    source_id: str
    time_start: datetime
    time_end: datetime
    location: Location
    attributes: dict[str, Any] = field(default_factory=dict)
    raw_sha256: str = ""
    batch_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
