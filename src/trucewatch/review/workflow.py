"""The review workflow over a store.

* ``queue()``: what needs action: automatic incidents (candidate violations first, by
  confidence), then those pending a second verification;
* ``claim()``: an analyst locks an incident for ``lock_minutes``; others cannot act on
  it until the lock is released or expires;
* ``decide()``: unverifiable / inaccurate / duplicate (naming the original) / rejected
  by one analyst; ``verified`` takes two: the first proposes (status
  ``pending_verification``), a *different* person confirms. Whoever created or last
  modified the incident cannot be the one who confirms it;
* ``modify()``: correct location, time or category (with a reason): counted as modified;
* ``add()``: an incident the automation missed, by an analyst: counted as added;
* ``actions()``: what a principal may do to an incident now (the decisions its status
  allows, ``verified`` only for one who may confirm and is not barred by the two-person
  rule, ``modify`` while undecided; nothing while someone else holds the claim), with
  the reason an offered-looking action is refused (``refusals()``);
* every change is a new version with who, when and why, and an audit-chain entry;
* ``add()`` and ``modify()`` refuse what cannot be: a latitude outside [-90, 90], a
  longitude outside [-180, 180], NaN or infinity, an uncertainty not above 0 (or above
  100 km), a time without a zone or outside the plausible range (``model.times``: from
  1990 to now), an end before the start (InvalidInputError: 422, exit 2).

Who acts is always a *principal* of the store (``trucewatch.model.principal``): the CLI
resolves its token, the API its bearer token. The two-person rule compares principal
ids, so a second token, a capitalised or zero-width-spaced name is still the same
person; a history row from before principals (no id) is matched by its name's canonical
key.

``figures()`` gives the CTBTO-style automatic-vs-reviewed figures for the bulletin.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from trucewatch.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    ReviewError,
    TwoPersonRuleError,
)
from trucewatch.model.enums import Category, SourceKind, Status
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.observation import Location
from trucewatch.model.principal import Actor, PrincipalRecord, legacy_key
from trucewatch.model.times import time_problem
from trucewatch.storage.protocols import ReviewDeskStore


@dataclass(frozen=True)
class ReviewFigures:
    automatic: int  # incidents the pipeline produced
    reviewed: int  # of those, decided by an analyst
    discarded: int  # inaccurate, duplicate or rejected
    modified: int  # location, time or category corrected
    added: int  # created by analysts
    verified: int
    pending_verification: int
    unverifiable: int
    awaiting_review: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class ReviewService:
    """Every action is made by a principal of the store (``who``: anything with the
    ``id`` of one, e.g. the API's authenticated Principal or a PrincipalRecord); a name,
    an unknown id or a disabled principal is refused (AuthenticationError). The
    two-person rule compares principal ids; history and the log show names."""

    def __init__(self, store: ReviewDeskStore, lock_minutes: float = 30.0) -> None:
        self.store = store
        self.lock = timedelta(minutes=lock_minutes)

    def _who(self, who: Actor) -> PrincipalRecord:
        pid = getattr(who, "id", None)
        shown = getattr(who, "name", who)
        if not isinstance(pid, str) or not pid:
            raise AuthenticationError(
                f"{shown!r} is not a principal of this store: review acts as an "
                "authenticated principal, never as a name",
                fix="act with a token the store issued (trucewatch tokens new NAME --role R)")
        try:
            p = self.store.principal(pid)
        except NotFoundError:
            raise AuthenticationError(
                f"{shown!r} ({pid}) is not a principal of this store",
                fix="act with a token the store issued (trucewatch tokens new NAME "
                    "--role R)") from None
        if p.disabled_at:
            raise AuthenticationError(f"{p.display_name} ({p.id}) was disabled at "
                                      f"{p.disabled_at}", fix="ask an admin")
        return p

    # ------------------------------------------------------------- queue and locks
    def queue(self) -> list[Incident]:
        todo = [i for i in self.store.incidents()
                if i.status in (Status.AUTOMATIC, Status.PENDING_VERIFICATION)]
        return sorted(todo, key=lambda i: (i.status != Status.PENDING_VERIFICATION,
                                           not i.attributes.get("rule"),
                                           -float(i.attributes.get("confidence", 0)),
                                           i.time_start, i.id))

    def claim(self, incident_id: str, who: Actor) -> Incident:
        p = self._who(who)
        inc = self.store.incident(incident_id)
        holder = self.store.claim(incident_id, p.id, datetime.now(UTC) + self.lock,
                                  name=p.display_name)
        if holder:
            raise ReviewError(f"incident {incident_id} is claimed by {holder}",
                              fix="pick another incident from the queue, or wait")
        return inc

    def release(self, incident_id: str, who: Actor) -> None:
        """Give up one's own claim. Someone else's claim is refused (ReviewError, 409);
        an incident nobody holds is no change."""
        p = self._who(who)
        holder = self.store.release(incident_id, p.id)
        if holder:
            raise ReviewError(f"{p.display_name} cannot release {incident_id}: it is claimed "
                              f"by {holder}; only the holder releases a claim",
                              fix="ask the holder to release it, or wait until it expires")

    def _held(self, incident_id: str, p: PrincipalRecord) -> Incident:
        holder = self.store.lock_holder(incident_id)
        if holder != p.id:
            raise ReviewError(
                f"{p.display_name} does not hold the claim on {incident_id}"
                + (f" ({self._name(holder)} does)" if holder else ""),
                fix=f"claim it first: trucewatch review claim {incident_id} (with your "
                    "token)")
        return self.store.incident(incident_id)

    def _name(self, principal_id: str) -> str:
        try:
            return self.store.principal(principal_id).display_name
        except NotFoundError:
            return principal_id

    # ------------------------------------------------------------- what may be done
    def refusals(self, inc: Incident, who: Actor, *, may_confirm: bool
                 ) -> dict[str, str]:
        """Each action this principal may not take on ``inc`` now, with the sentence
        saying why (the one the workflow would refuse it with); :meth:`actions` are the
        others. ``may_confirm``: whether the principal's role may confirm ``verified``
        (the API's roles decide it)."""
        p = self._who(who)
        holder = self.store.lock_holder(inc.id)
        refused: dict[str, str] = {}
        if holder and holder != p.id:
            why = f"{inc.id} is claimed by {self._name(holder)}"
            return dict.fromkeys(ACTIONS, why)
        history: list[dict[str, Any]] | None = None
        for s in DECISIONS:
            if s == Status.VERIFIED:  # refused as the API and decide() refuse it
                if not may_confirm:
                    refused[s.value] = "only a reviewer confirms 'verified'"
                    continue
                history = history or self.store.incident_history(inc.id)
                try:
                    self._check_two_person(inc, p, history)
                except TwoPersonRuleError as err:
                    refused[s.value] = err.message
            elif not inc.status.can_become(s):
                refused[s.value] = (f"status cannot change from {inc.status.value} to "
                                    f"{s.value}")
        if inc.status not in (Status.AUTOMATIC, Status.PENDING_VERIFICATION):
            refused["modify"] = f"{inc.id} is {inc.status.value}: decided incidents are " \
                                "not modified"
        return refused

    def actions(self, inc: Incident, who: Actor, *, may_confirm: bool) -> list[str]:
        """What this principal may do to ``inc`` now, in :data:`ACTIONS` order: status
        values (decisions) and ``modify``."""
        refused = self.refusals(inc, who, may_confirm=may_confirm)
        return [a for a in ACTIONS if a not in refused]

    # ------------------------------------------------------------- decisions
    def decide(self, incident_id: str, who: Actor, status: Status, why: str,
               duplicate_of: str | None = None) -> Incident:
        p = self._who(who)
        if not why.strip():
            raise ReviewError("a decision needs a reason", fix="give --why")
        inc = self._held(incident_id, p)
        history = self.store.incident_history(incident_id)
        if status == Status.VERIFIED:
            try:
                self._check_two_person(inc, p, history)
            except TwoPersonRuleError as err:
                # a refused attempt is itself part of the record
                self.store.log(p.display_name, "refused_review", incident_id,
                               {"attempted": status.value, "reason": err.message,
                                "principal": p.id})
                self.store.release(incident_id, p.id)  # someone else must confirm
                raise
        if status == Status.DUPLICATE:
            if not duplicate_of:
                raise ReviewError("a duplicate must name the incident it duplicates",
                                  fix="give --duplicate-of INCIDENT_ID")
            self.store.incident(duplicate_of)  # must exist
            inc.attributes["duplicate_of"] = duplicate_of
        inc.set_status(status)
        self.store.save_incident_version(inc, f"decide:{status.value}", p.display_name, why,
                                         who_id=p.id)
        self.store.release(incident_id, p.id)
        return inc

    @staticmethod
    def _by(h: dict[str, Any], p: PrincipalRecord) -> bool:
        """Was history row ``h`` written by principal ``p``? By id; a row from before
        principals (no id) by its name's canonical key."""
        if h.get("who_id"):
            return bool(h["who_id"] == p.id)
        return legacy_key(str(h["who"])) == p.name

    def _check_two_person(self, inc: Incident, p: PrincipalRecord,
                          history: list[dict[str, Any]]) -> None:
        if inc.status != Status.PENDING_VERIFICATION:
            raise TwoPersonRuleError(
                f"{inc.id} cannot be verified by one person: it is {inc.status.value}",
                fix="one analyst proposes (status pending_verification), another confirms")
        proposal = next((h for h in reversed(history)
                         if h["status"] == Status.PENDING_VERIFICATION.value), None)
        if proposal is not None and self._by(proposal, p):
            raise TwoPersonRuleError(
                f"{p.display_name} proposed the verification of {inc.id} and cannot "
                "confirm it", fix="a second, different reviewer must confirm")
        if any(self._by(h, p) for h in history if h["action"] in ("added", "modify")):
            raise TwoPersonRuleError(
                f"{p.display_name} created or modified {inc.id} and cannot verify their own "
                "work", fix="a reviewer who did not touch the incident must confirm")

    def modify(self, incident_id: str, who: Actor, why: str, *, lat: float | None = None,
               lon: float | None = None, uncertainty_m: float | None = None,
               time_start: datetime | None = None, category: Category | None = None
               ) -> Incident:
        p = self._who(who)
        if not why.strip():
            raise ReviewError("a modification needs a reason", fix="give --why")
        if lat is not None:
            _latitude(lat)
        if lon is not None:
            _longitude(lon)
        if uncertainty_m is not None:
            _uncertainty(uncertainty_m)
        if time_start is not None:
            _time(time_start, "time_start")
        inc = self._held(incident_id, p)
        if inc.status not in (Status.AUTOMATIC, Status.PENDING_VERIFICATION):
            raise ReviewError(f"{incident_id} is {inc.status.value}: decided incidents are "
                              "not modified", fix="add a new incident instead")
        before = (inc.location, inc.time_start, inc.category)
        if lat is not None or lon is not None or uncertainty_m is not None:
            inc.location = Location(lat if lat is not None else inc.location.lat,
                                    lon if lon is not None else inc.location.lon,
                                    uncertainty_m if uncertainty_m is not None
                                    else inc.location.uncertainty_m)
        if time_start is not None:
            inc.time_start = time_start
            inc.time_end = max(inc.time_end, time_start)
        if category is not None:
            inc.category = category
        if (inc.location, inc.time_start, inc.category) == before:
            raise ReviewError("nothing to modify", fix="give a new location, time or category")
        inc.attributes["modified"] = True
        if inc.status == Status.PENDING_VERIFICATION:
            inc.status = Status.AUTOMATIC  # a changed incident needs a fresh proposal
        self.store.save_incident_version(inc, "modify", p.display_name, why, who_id=p.id)
        return inc

    def add(self, who: Actor, why: str, *, category: Category, lat: float, lon: float,
            uncertainty_m: float, time_start: datetime, time_end: datetime | None = None,
            rule: str = "", agreement_id: str = "", evidence: list[str] | None = None
            ) -> Incident:
        p = self._who(who)
        if not why.strip():
            raise ReviewError("an added incident needs a reason", fix="give --why")
        _latitude(lat)
        _longitude(lon)
        _uncertainty(uncertainty_m)
        _time(time_start, "time_start")
        if time_end is not None:
            _time(time_end, "time_end")
            if time_end < time_start:
                raise InvalidInputError(
                    f"time_end {time_end.isoformat()} is before time_start "
                    f"{time_start.isoformat()}", fix="give an end at or after the start")
        key = f"{p.name}|{time_start.isoformat()}|{lat:.5f}|{lon:.5f}|{category.value}"
        iid = "inc-a" + hashlib.sha256(key.encode()).hexdigest()[:15]
        inc = Incident(id=iid, category=category, time_start=time_start,
                       time_end=time_end or time_start,
                       location=Location(lat, lon, uncertainty_m),
                       observation_ids=evidence or [], status=Status.AUTOMATIC, reason=why,
                       attributes={"rule": rule, "source": SourceKind.ANALYST.value,
                                   "added_by": p.display_name, "confidence": 0.0,
                                   "detections": len(evidence or [])})
        vio = None
        if rule:
            vio = Violation(id="vio-" + iid[4:], incident_id=iid, agreement_id=agreement_id,
                            rule=rule, explanation=f"{rule}: added by {p.display_name}: {why}",
                            category=category, time=time_start)
        self.store.save_incident_version(inc, "added", p.display_name, why, violation=vio,
                                         who_id=p.id)
        return inc

    # ------------------------------------------------------------- figures
    def figures(self) -> ReviewFigures:
        latest: dict[str, dict[str, Any]] = {}
        first: dict[str, dict[str, Any]] = {}
        modified: set[str] = set()
        for h in self.store.all_history():
            latest[h["incident_id"]] = h
            first.setdefault(h["incident_id"], h)
            if h["action"] == "modify":
                modified.add(h["incident_id"])
        added = {i for i, h in first.items() if h["action"] == "added"}
        auto = set(first) - added
        status = {i: Status(h["status"]) for i, h in latest.items()}
        reviewed = {i for i in auto if status[i] != Status.AUTOMATIC or i in modified}
        return ReviewFigures(
            automatic=len(auto), reviewed=len(reviewed),
            discarded=sum(status[i].discarded for i in auto),
            modified=len(modified & auto), added=len(added),
            verified=sum(s == Status.VERIFIED for s in status.values()),
            pending_verification=sum(s == Status.PENDING_VERIFICATION
                                     for s in status.values()),
            unverifiable=sum(s == Status.UNVERIFIABLE for s in status.values()),
            awaiting_review=sum(s == Status.AUTOMATIC for s in status.values()))


# the decisions offered to a reviewer (``automatic`` again is the workflow's own, after
# a modification), then ``modify``
DECISIONS = (Status.PENDING_VERIFICATION, Status.VERIFIED, Status.UNVERIFIABLE,
             Status.INACCURATE, Status.DUPLICATE, Status.REJECTED)
ACTIONS = (*(s.value for s in DECISIONS), "modify")


# ------------------------------------------------------------- validation
MAX_UNCERTAINTY_M = 100_000.0


def _number(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise InvalidInputError(f"{what} must be a finite number, not {value!r}",
                                fix=f"give {what} as a number")
    return float(value)


def _latitude(lat: float) -> None:
    if not -90 <= _number(lat, "lat") <= 90:
        raise InvalidInputError(f"lat {lat} is outside [-90, 90]",
                                fix="give the latitude in decimal degrees, WGS84")


def _longitude(lon: float) -> None:
    if not -180 <= _number(lon, "lon") <= 180:
        raise InvalidInputError(f"lon {lon} is outside [-180, 180]",
                                fix="give the longitude in decimal degrees, WGS84")


def _uncertainty(metres: float) -> None:
    if not 0 < _number(metres, "uncertainty") <= MAX_UNCERTAINTY_M:
        raise InvalidInputError(
            f"uncertainty {metres} m must be above 0 and at most {MAX_UNCERTAINTY_M:,.0f} m",
            fix="give the 1-sigma horizontal uncertainty in metres")


def _time(t: datetime, what: str) -> None:
    """A time with its zone, in the plausible range every source shares (model.times)."""
    if not isinstance(t, datetime):
        raise InvalidInputError(f"{what} {t!r} is not a time",
                                fix="give an ISO 8601 time with its zone")
    problem = time_problem(t, datetime.now(UTC), what)
    if problem:
        raise InvalidInputError(problem, fix="check the year and the UTC offset; write "
                                             "times in UTC with a trailing Z")
