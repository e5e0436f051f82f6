"""API tokens bound to roles, and what each role may do and see.

Roles (a token has one):

* ``admin``: everything, including tokens;
* ``analyst``: ingest, read everything, review (propose, discard, modify, add);
* ``reviewer``: read everything, review, and confirm ``verified`` (second person);
* ``coalition``: read everything except evidence media; exact locations;
* ``liaison`` (a party's liaison officer, token bound to the party): reviewed incidents
  only, their own party's allegations and coalition contributions, file allegations;
  no sensor or hub locations;
* ``public``: published (public) bulletins and aggregate counts; may file allegations;
* ``sensor``: a sensor network pushing its own inputs (ingest of station inventories and
  detections only: :data:`INGESTS`).

:data:`MATRIX` is the single source of truth; the role-by-endpoint test walks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from trucewatch.model.enums import SourceKind


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    REVIEWER = "reviewer"
    COALITION = "coalition"
    LIAISON = "liaison"
    PUBLIC = "public"
    SENSOR = "sensor"


ALL = frozenset(Role)
STAFF = frozenset({Role.ADMIN, Role.ANALYST, Role.REVIEWER})
MATRIX: dict[str, frozenset[Role]] = {
    "me": ALL,
    "ingest": frozenset({Role.ADMIN, Role.ANALYST, Role.SENSOR}),
    "observations": STAFF | {Role.COALITION},
    "incidents": STAFF | {Role.COALITION, Role.LIAISON},
    "violations": STAFF | {Role.COALITION, Role.LIAISON},
    "aggregates": ALL - {Role.SENSOR},
    "review": STAFF,
    "allegations_file": ALL - {Role.SENSOR},
    "allegations_read": STAFF | {Role.COALITION, Role.LIAISON},
    "bulletins_public": ALL - {Role.SENSOR},
    "bulletins_restricted": STAFF | {Role.COALITION},
    "agreement": ALL - {Role.SENSOR},
    # where the mechanism could see: the network's area hints at where its sensors are
    "coverage": STAFF | {Role.COALITION},
    # the coalition registry and its credits; a liaison officer: their party's only
    "coalition": STAFF | {Role.COALITION, Role.LIAISON},
    "tokens": frozenset({Role.ADMIN}),
}
# who sees unreviewed (automatic, pending) incidents; others see decided ones only
SEES_UNREVIEWED = STAFF | {Role.COALITION}
SEES_MEDIA = STAFF
SEES_HUBS = STAFF | {Role.COALITION}
CONFIRMS = frozenset({Role.ADMIN, Role.REVIEWER})
# what each role with the ``ingest`` right may post, by the source's kind (its adapter's
# ``kind``): a sensor network's token posts its own inputs (station inventories,
# detections and what they locate), never a satellite file, a drone report or an
# allegation; staff post any source
SENSOR_KINDS = frozenset({SourceKind.STATION_INVENTORY, SourceKind.SENSOR_NETWORK,
                          SourceKind.ACOUSTIC, SourceKind.INFRASOUND, SourceKind.SEISMIC})
INGESTS: dict[Role, frozenset[SourceKind]] = {
    Role.ADMIN: frozenset(SourceKind), Role.ANALYST: frozenset(SourceKind),
    Role.SENSOR: SENSOR_KINDS}


def may_ingest(role: Role, kind: SourceKind) -> bool:
    """Whether a token of ``role`` may post an input of a source of ``kind``."""
    return role in MATRIX["ingest"] and kind in INGESTS.get(role, frozenset())


@dataclass(frozen=True)
class Principal:
    """The authenticated principal of a request: ``id`` is the store's stable principal
    id (what the two-person rule compares), ``name`` its display name."""

    name: str
    role: Role
    party: str | None = None
    id: str = ""

    def may(self, action: str) -> bool:
        return self.role in MATRIX[action]
