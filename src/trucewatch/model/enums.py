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


class SourceName(StrEnum):
    """The name of an input's source adapter: the intake's policies and key bindings, and
    the store's ``source`` column, are keyed by it (a third-party source adds its own
    name, a plain string)."""

    FIRMS = "firms"
    DRONE = "drone"
    ALLEGATIONS = "allegations"
    STATIONS = "stations"  # a station inventory, as received
    DETECTIONS = "detections"  # a detections file, as received
    HEARTBEATS = "heartbeats"  # station heartbeats (a station saying it is up)
    SENSOR_EVENTS = "sensor_events"  # the explosions located from a detections file
    SENSOR_DETECTIONS = "sensor_detections"  # a detections file, parsed
    AGREEMENT = "agreement"
    KEYS = "keys"


class SignerKind(StrEnum):
    """The kind of key that may sign a source's inputs (a key's ``source`` is
    ``<kind>:<subject>``, e.g. ``drone:UA-07``)."""

    DRONE = "drone"
    SENSORS = "sensors"
    ALLEGATIONS = "allegations"
    FIRMS = "firms"
    MISSION = "mission"


class ZoneKind(StrEnum):
    """The kinds of restricted area an agreement defines."""

    BUFFER = "buffer"
    WITHDRAWAL = "withdrawal"
    PROTECTED_SITE = "protected_site"
    DISENGAGEMENT = "disengagement"


class ZoneGroup(StrEnum):
    """The most specific zone kind a point lies in (most specific first), or outside."""

    PROTECTED_SITE = "protected_site"
    DISENGAGEMENT = "disengagement"
    BUFFER = "buffer"
    WITHDRAWAL = "withdrawal"
    OUTSIDE = "outside"


class EvidenceClass(StrEnum):
    """What an agreement's ``evidence_rules`` weigh: the class of what was seen."""

    FIRE = "fire"
    EXPLOSION = "explosion"
    HEAVY_WEAPON = "heavy_weapon"


class ObservedClass(StrEnum):
    """What an observation or a fused incident shows (an evidence's ``klass``)."""

    EXPLOSION = "explosion"
    FIRE = "fire"
    CRATER = "crater"
    HEAVY_WEAPON = "heavy_weapon"
    VEHICLE_MOVEMENT = "vehicle_movement"


class AllegationCategory(StrEnum):
    """What an allegation says happened."""

    EXPLOSION = "explosion"
    FIRE = "fire"
    HEAVY_WEAPON = "heavy_weapon"
    STRIKE_ON_PROTECTED_SITE = "strike_on_protected_site"
    OTHER = "other"


class RuleName(StrEnum):
    """The agreement rules an incident can break (a violation's ``rule``)."""

    STRIKE_ON_PROTECTED_SITE = "strike_on_protected_site"
    HEAVY_WEAPON_IN_PROTECTED_SITE = "heavy_weapon_in_protected_site"
    EXPLOSION_IN_DISENGAGEMENT_AREA = "explosion_in_disengagement_area"
    FIRE_IN_DISENGAGEMENT_AREA = "fire_in_disengagement_area"
    HEAVY_WEAPON_IN_DISENGAGEMENT_AREA = "heavy_weapon_in_disengagement_area"
    EXPLOSION_IN_BUFFER_ZONE = "explosion_in_buffer_zone"
    FIRE_IN_BUFFER_ZONE = "fire_in_buffer_zone"
    HEAVY_WEAPON_IN_BUFFER_ZONE = "heavy_weapon_in_buffer_zone"
    EXPLOSION_IN_WITHDRAWAL_ZONE = "explosion_in_withdrawal_zone"
    FIRE_IN_WITHDRAWAL_ZONE = "fire_in_withdrawal_zone"
    HEAVY_WEAPON_IN_WITHDRAWAL_ZONE = "heavy_weapon_in_withdrawal_zone"


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
