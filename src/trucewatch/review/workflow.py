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
* every change is a new version with who, when and why, and an audit-chain entry.

``figures()`` gives the CTBTO-style automatic-vs-reviewed figures for the bulletin.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from trucewatch.errors import ReviewError, TwoPersonRuleError
from trucewatch.model.enums import Category, SourceKind, Status
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.observation import Location
from trucewatch.storage.sqlite import SqliteStore


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
    def __init__(self, store: SqliteStore, lock_minutes: float = 30.0) -> None:
        self.store = store
        self.lock = timedelta(minutes=lock_minutes)

    # ------------------------------------------------------------- queue and locks
    def queue(self) -> list[Incident]:
        todo = [i for i in self.store.incidents()
                if i.status in (Status.AUTOMATIC, Status.PENDING_VERIFICATION)]
        return sorted(todo, key=lambda i: (i.status != Status.PENDING_VERIFICATION,
                                           not i.attributes.get("rule"),
                                           -float(i.attributes.get("confidence", 0)),
                                           i.time_start, i.id))

    def claim(self, incident_id: str, analyst: str) -> Incident:
        inc = self.store.incident(incident_id)
        holder = self.store.claim(incident_id, analyst, datetime.now(UTC) + self.lock)
        if holder:
            raise ReviewError(f"incident {incident_id} is claimed by {holder}",
                              fix="pick another incident from the queue, or wait")
        return inc

    def release(self, incident_id: str, analyst: str) -> None:
        self.store.release(incident_id, analyst)

    def _held(self, incident_id: str, analyst: str) -> Incident:
        holder = self.store.lock_holder(incident_id)
        if holder != analyst:
            raise ReviewError(
                f"{analyst} does not hold the claim on {incident_id}"
                + (f" ({holder} does)" if holder else ""),
                fix=f"claim it first: trucewatch review claim {incident_id} --as {analyst}")
        return self.store.incident(incident_id)

    # ------------------------------------------------------------- decisions
    def decide(self, incident_id: str, analyst: str, status: Status, why: str,
               duplicate_of: str | None = None) -> Incident:
        if not why.strip():
            raise ReviewError("a decision needs a reason", fix="give --why")
        inc = self._held(incident_id, analyst)
        history = self.store.incident_history(incident_id)
        if status == Status.VERIFIED:
            try:
                self._check_two_person(inc, analyst, history)
            except TwoPersonRuleError as err:
                # a refused attempt is itself part of the record
                self.store.log(analyst, "refused_review", incident_id,
                               {"attempted": status.value, "reason": err.message})
                self.store.release(incident_id, analyst)  # someone else must confirm
                raise
        if status == Status.DUPLICATE:
            if not duplicate_of:
                raise ReviewError("a duplicate must name the incident it duplicates",
                                  fix="give --duplicate-of INCIDENT_ID")
            self.store.incident(duplicate_of)  # must exist
            inc.attributes["duplicate_of"] = duplicate_of
        inc.set_status(status)
        self.store.save_incident_version(inc, f"decide:{status.value}", analyst, why)
        self.store.release(incident_id, analyst)
        return inc

    def _check_two_person(self, inc: Incident, analyst: str,
                          history: list[dict[str, Any]]) -> None:
        if inc.status != Status.PENDING_VERIFICATION:
            raise TwoPersonRuleError(
                f"{inc.id} cannot be verified by one person: it is {inc.status.value}",
                fix="one analyst proposes (status pending_verification), another confirms")
        proposer = next((h["who"] for h in reversed(history)
                         if h["status"] == Status.PENDING_VERIFICATION.value), None)
        authors = {h["who"] for h in history if h["action"] in ("added", "modify")}
        if analyst == proposer:
            raise TwoPersonRuleError(
                f"{analyst} proposed the verification of {inc.id} and cannot confirm it",
                fix="a second, different reviewer must confirm")
        if analyst in authors:
            raise TwoPersonRuleError(
                f"{analyst} created or modified {inc.id} and cannot verify their own work",
                fix="a reviewer who did not touch the incident must confirm")

    def modify(self, incident_id: str, analyst: str, why: str, *, lat: float | None = None,
               lon: float | None = None, uncertainty_m: float | None = None,
               time_start: datetime | None = None, category: Category | None = None
               ) -> Incident:
        inc = self._held(incident_id, analyst)
        if inc.status not in (Status.AUTOMATIC, Status.PENDING_VERIFICATION):
            raise ReviewError(f"{incident_id} is {inc.status.value}: decided incidents are "
                              "not modified", fix="add a new incident instead")
        before = (inc.location, inc.time_start, inc.category)
        if lat is not None or lon is not None or uncertainty_m is not None:
            inc.location = Location(lat if lat is not None else inc.location.lat,
                                    lon if lon is not None else inc.location.lon,
                                    uncertainty_m or inc.location.uncertainty_m)
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
        self.store.save_incident_version(inc, "modify", analyst, why)
        return inc

    def add(self, analyst: str, why: str, *, category: Category, lat: float, lon: float,
            uncertainty_m: float, time_start: datetime, time_end: datetime | None = None,
            rule: str = "", agreement_id: str = "", evidence: list[str] | None = None
            ) -> Incident:
        if not why.strip():
            raise ReviewError("an added incident needs a reason", fix="give --why")
        key = f"{analyst}|{time_start.isoformat()}|{lat:.5f}|{lon:.5f}|{category.value}"
        iid = "inc-a" + hashlib.sha256(key.encode()).hexdigest()[:15]
        inc = Incident(id=iid, category=category, time_start=time_start,
                       time_end=time_end or time_start,
                       location=Location(lat, lon, uncertainty_m),
                       observation_ids=evidence or [], status=Status.AUTOMATIC, reason=why,
                       attributes={"rule": rule, "source": SourceKind.ANALYST.value,
                                   "added_by": analyst, "confidence": 0.0,
                                   "detections": len(evidence or [])})
        vio = None
        if rule:
            vio = Violation(id="vio-" + iid[4:], incident_id=iid, agreement_id=agreement_id,
                            rule=rule, explanation=f"{rule}: added by {analyst}: {why}",
                            category=category, time=time_start)
        self.store.save_incident_version(inc, "added", analyst, why, violation=vio)
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
