"""Closed vocabularies, as string enums so that storage, API and reports read the same."""

from __future__ import annotations

from enum import StrEnum

from trucewatch.errors import TransitionError


class SourceKind(StrEnum):
    SATELLITE_FIRE = "satellite_fire"
    ACOUSTIC = "acoustic"
    INFRASOUND = "infrasound"
    SEISMIC = "seismic"
    SENSOR_NETWORK = "sensor_network"  # explosions located from several ground sensors
    DRONE = "drone"
    ALLEGATION = "allegation"
    ANALYST = "analyst"


class Category(StrEnum):
    """Incident categories, following OSCE SMM / ceasefire-monitoring practice."""

    EXPLOSION_IMPACT = "explosion.impact"
    EXPLOSION_AIRBURST = "explosion.airburst"
    EXPLOSION_UNDETERMINED = "explosion.undetermined"
    FIRE = "fire"
    HEAVY_WEAPON_IN_RESTRICTED_ZONE = "heavy_weapon_in_restricted_zone"
    STRIKE_ON_PROTECTED_SITE = "strike_on_protected_site"
    RESTRICTION_OF_MONITORS = "restriction_of_monitors"


class Status(StrEnum):
    """Lifecycle: automatic -> reviewed -> final, or rejected (from automatic or reviewed)."""

    AUTOMATIC = "automatic"
    REVIEWED = "reviewed"
    FINAL = "final"
    REJECTED = "rejected"

    def can_become(self, new: Status) -> bool:
        return new in _TRANSITIONS[self]

    def check_transition(self, new: Status) -> None:
        if not self.can_become(new):
            allowed = ", ".join(sorted(s.value for s in _TRANSITIONS[self])) or "none"
            raise TransitionError(
                f"status cannot change from {self.value} to {new.value}",
                fix=f"allowed next statuses from {self.value}: {allowed}",
            )


_TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.AUTOMATIC: frozenset({Status.REVIEWED, Status.REJECTED}),
    Status.REVIEWED: frozenset({Status.FINAL, Status.REJECTED, Status.AUTOMATIC}),
    Status.FINAL: frozenset(),
    Status.REJECTED: frozenset(),
}
