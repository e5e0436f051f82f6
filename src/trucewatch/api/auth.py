"""API tokens bound to roles, and what each role may do and see.

Roles (a token has one):

* ``admin``: everything, including tokens;
* ``analyst``: ingest, read everything, review (propose, discard, modify, add);
* ``reviewer``: read everything, review, and confirm ``verified`` (second person);
* ``coalition``: read everything except evidence media; exact locations;
* ``liaison`` (a party's liaison officer, token bound to the party): reviewed incidents
  only, their own party's allegations, file allegations; no sensor or hub locations;
* ``public``: published (public) bulletins and aggregate counts; may file allegations;
* ``sensor``: a platform or sensor network pushing observations (ingest only).

:data:`MATRIX` is the single source of truth; the role-by-endpoint test walks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
    "tokens": frozenset({Role.ADMIN}),
}
# who sees unreviewed (automatic, pending) incidents; others see decided ones only
SEES_UNREVIEWED = STAFF | {Role.COALITION}
SEES_MEDIA = STAFF
SEES_HUBS = STAFF | {Role.COALITION}
CONFIRMS = frozenset({Role.ADMIN, Role.REVIEWER})


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    party: str | None = None

    def may(self, action: str) -> bool:
        return self.role in MATRIX[action]
