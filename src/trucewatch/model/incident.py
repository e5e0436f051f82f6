"""Incidents (what happened, fused from observations) and violations (which rule it breaks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from trucewatch.model.enums import Category, Status
from trucewatch.model.observation import Location
from trucewatch.model.serialization import register


@register("trucewatch/incident", 1)
@dataclass
class Incident:
    id: str
    category: Category
    time_start: datetime
    time_end: datetime
    location: Location
    observation_ids: list[str]
    status: Status = Status.AUTOMATIC
    sector_id: str | None = None
    zone_ids: list[str] = field(default_factory=list)
    n_sources: int = 1
    reason: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def set_status(self, new: Status) -> None:
        self.status.check_transition(new)
        self.status = new


@register("trucewatch/violation", 1)
@dataclass
class Violation:
    """A candidate (or, once reviewed, confirmed) breach of one agreement rule."""

    id: str
    incident_id: str
    agreement_id: str
    rule: str
    explanation: str
    category: Category
    time: datetime
    zone_ids: list[str] = field(default_factory=list)
    sector_id: str | None = None
    status: Status = Status.AUTOMATIC
    extra: dict[str, Any] = field(default_factory=dict)
