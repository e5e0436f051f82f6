"""The review workflow: locks, the two-person rule, versions, figures (issue 4)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trucewatch.errors import ReviewError, TransitionError, TwoPersonRuleError
from trucewatch.model.enums import Category, Status
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.observation import Location
from trucewatch.model.principal import PrincipalRecord
from trucewatch.review import ReviewService
from trucewatch.storage import SqliteStore

T = datetime(2026, 5, 30, 4, 0, tzinfo=UTC)


def _service() -> ReviewService:
    """Five automatic incidents (three candidates) and the principals who review them."""
    store = SqliteStore()
    for name, role in (("anna", "analyst"), ("ben", "reviewer"), ("carla", "analyst"),
                       ("dan", "reviewer")):
        store.add_principal(name, role)
    incs = [Incident(id=f"inc-{k}", category=Category.EXPLOSION_IMPACT, time_start=T,
                     time_end=T, location=Location(48.0, 37.5 + k / 100, 50.0),
                     observation_ids=[f"o{k}"],
                     attributes={"rule": "explosion_in_buffer_zone" if k < 3 else "",
                                 "confidence": k / 10})
            for k in range(5)]
    vios = [Violation(id=f"vio-{k}", incident_id=f"inc-{k}", agreement_id="a",
                      rule="explosion_in_buffer_zone", explanation="x",
                      category=Category.EXPLOSION_IMPACT, time=T) for k in range(3)]
    store.save_incidents(incs, vios)
    return ReviewService(store)


def _people(svc: ReviewService) -> list[PrincipalRecord]:
    found = [svc.store.principal_named(n) for n in ("anna", "ben", "carla", "dan")]
    assert all(found)
    return found  # type: ignore[return-value]


def test_two_person_rule() -> None:
    svc = _service()
    anna, ben, carla, _dan = _people(svc)
    svc.claim("inc-1", anna)
    with pytest.raises(TwoPersonRuleError, match="cannot be verified by one person"):
        svc.decide("inc-1", anna, Status.VERIFIED, "looks right")
    # a refused verification releases the claim: someone else must confirm
    assert svc.store.lock_holder("inc-1") is None
    svc.claim("inc-1", anna)
    svc.decide("inc-1", anna, Status.PENDING_VERIFICATION, "imagery agrees")
    svc.claim("inc-1", anna)
    with pytest.raises(TwoPersonRuleError, match=r"anna proposed .* cannot confirm"):
        svc.decide("inc-1", anna, Status.VERIFIED, "still right")
    # the refused attempt is part of the record
    assert any(e.action == "refused_review" and e.actor == "anna"
               for e in svc.store.audit_log())
    svc.claim("inc-1", ben)
    assert svc.decide("inc-1", ben, Status.VERIFIED, "confirmed").status == Status.VERIFIED
    with pytest.raises(TransitionError, match="from verified to rejected"):
        svc.claim("inc-1", carla)
        svc.decide("inc-1", carla, Status.REJECTED, "changed my mind")
    hist = svc.store.incident_history("inc-1")
    assert [(h["who"], h["status"]) for h in hist] == [
        ("pipeline", "automatic"), ("anna", "pending_verification"), ("ben", "verified")]


def test_author_of_a_change_cannot_verify_it() -> None:
    svc = _service()
    anna, ben, carla, dan = _people(svc)
    svc.claim("inc-2", anna)
    svc.decide("inc-2", anna, Status.PENDING_VERIFICATION, "ok")
    svc.claim("inc-2", ben)
    svc.modify("inc-2", ben, "crater 100 m east", lon=37.5211)
    assert svc.store.incident("inc-2").status == Status.AUTOMATIC  # needs a new proposal
    svc.decide("inc-2", ben, Status.PENDING_VERIFICATION, "re-proposed after the fix")
    svc.claim("inc-2", anna)
    # anna did not propose this time and did not modify: she may confirm
    svc.decide("inc-2", anna, Status.VERIFIED, "second review")
    added = svc.add(carla, "patrol stopped at checkpoint",
                    category=Category.RESTRICTION_OF_MONITORS, lat=48.1, lon=37.6,
                    uncertainty_m=100, time_start=T)
    svc.claim(added.id, dan)
    svc.decide(added.id, dan, Status.PENDING_VERIFICATION, "patrol log agrees")
    svc.claim(added.id, carla)
    with pytest.raises(TwoPersonRuleError, match="cannot verify their own work"):
        svc.decide(added.id, carla, Status.VERIFIED, "I saw it")


def test_locks_and_reasons() -> None:
    svc = _service()
    anna, ben, _carla, _dan = _people(svc)
    svc.claim("inc-0", anna)
    with pytest.raises(ReviewError, match="claimed by anna"):
        svc.claim("inc-0", ben)
    with pytest.raises(ReviewError, match="ben does not hold the claim on inc-0 \\(anna does\\)"):
        svc.decide("inc-0", ben, Status.REJECTED, "no")
    with pytest.raises(ReviewError, match="needs a reason"):
        svc.decide("inc-0", anna, Status.REJECTED, "  ")
    with pytest.raises(ReviewError, match="must name the incident it duplicates"):
        svc.decide("inc-0", anna, Status.DUPLICATE, "same as another")
    svc.decide("inc-0", anna, Status.DUPLICATE, "same shelling", duplicate_of="inc-1")
    assert svc.store.incident("inc-0").attributes["duplicate_of"] == "inc-1"
    # a decision releases the lock
    svc.claim("inc-0", ben)


def test_queue_order_and_figures_survive_a_rerun() -> None:
    svc = _service()
    anna, ben, _carla, _dan = _people(svc)
    q = svc.queue()
    assert [i.id for i in q][:3] == ["inc-2", "inc-1", "inc-0"]  # rules first, by confidence
    svc.claim("inc-2", anna)
    svc.decide("inc-2", anna, Status.INACCURATE, "no trace on imagery")
    svc.claim("inc-1", anna)
    svc.modify("inc-1", anna, "moved", lat=48.001)
    svc.add(ben, "missed", category=Category.FIRE, lat=48.2, lon=37.7, uncertainty_m=300,
            time_start=T)
    f = svc.figures()
    assert (f.automatic, f.reviewed, f.discarded, f.modified, f.added) == (5, 2, 1, 1, 1)
    # a new automatic run replaces untouched automatic incidents only
    svc.store.save_incidents([], [])
    ids = {i.id for i in svc.store.incidents()}
    assert {"inc-2", "inc-1"} <= ids and "inc-3" not in ids
    assert len([i for i in ids if i.startswith("inc-a")]) == 1
    assert svc.figures().added == 1
