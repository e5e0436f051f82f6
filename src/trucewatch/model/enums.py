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
    # inputs that are not observations but are kept and logged like them
    STATION_INVENTORY = "station_inventory"  # where the ground sensors are
    CONFIGURATION = "configuration"  # an agreement, a key registry


class Category(StrEnum):
    """Incident categories, following OSCE SMM / ceasefire-monitoring practice."""

    EXPLOSION_IMPACT = "explosion.impact"
    EXPLOSION_AIRBURST = "explosion.airburst"
    EXPLOSION_UNDETERMINED = "explosion.undetermined"
    FIRE = "fire"
    HEAVY_WEAPON_IN_RESTRICTED_ZONE = "heavy_weapon_in_restricted_zone"
    HEAVY_WEAPON = "heavy_weapon"
    VEHICLE_MOVEMENT = "vehicle_movement"
    STRIKE_ON_PROTECTED_SITE = "strike_on_protected_site"
    RESTRICTION_OF_MONITORS = "restriction_of_monitors"


class Status(StrEnum):
    """Review lifecycle of an incident.

    ``automatic`` (made by the pipeline) -> an analyst decides: ``unverifiable``,
    ``inaccurate``, ``duplicate``, ``rejected``, or proposes verification
    (``pending_verification``); a *second, different* person confirms ``verified``
    (the two-person rule is enforced by :mod:`trucewatch.review`).
    """

    AUTOMATIC = "automatic"
    PENDING_VERIFICATION = "pending_verification"
    VERIFIED = "verified"
    UNVERIFIABLE = "unverifiable"
    INACCURATE = "inaccurate"
    DUPLICATE = "duplicate"
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

    @property
    def discarded(self) -> bool:
        return self in (Status.INACCURATE, Status.DUPLICATE, Status.REJECTED)


_DECISIONS = frozenset({Status.PENDING_VERIFICATION, Status.UNVERIFIABLE, Status.INACCURATE,
                        Status.DUPLICATE, Status.REJECTED})
_TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.AUTOMATIC: _DECISIONS,
    Status.PENDING_VERIFICATION: (_DECISIONS - {Status.PENDING_VERIFICATION})
    | {Status.VERIFIED, Status.AUTOMATIC},
    # new evidence may reopen an unverifiable incident
    Status.UNVERIFIABLE: frozenset({Status.PENDING_VERIFICATION, Status.AUTOMATIC}),
    Status.VERIFIED: frozenset(),
    Status.INACCURATE: frozenset(),
    Status.DUPLICATE: frozenset(),
    Status.REJECTED: frozenset(),
}


class Ruling(StrEnum):
    """Outcome of an allegation (after the Sri Lanka Monitoring Mission's practice)."""

    VIOLATION = "violation"
    NO_VIOLATION = "no_violation"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"
    NOT_OBSERVABLE = "not_observable"
    PENDING = "pending"


class ClaimantKind(StrEnum):
    PARTY = "party"
    MONITOR = "monitor"
    PUBLIC = "public"
