"""The review workflow: queue, claim, release, decide, modify, add (staff only; a
second person confirms ``verified``)."""

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import Field

from trucewatch.api.auth import CONFIRMS, Principal
from trucewatch.api.deps import (
    AsReview,
    ConfigDep,
    IsoTime,
    Limit,
    Offset,
    Page,
    Period,
    StoreDep,
    Strict,
    aware,
    page,
)
from trucewatch.api.geo import located
from trucewatch.api.models import IncidentPage
from trucewatch.model.enums import Category, Status
from trucewatch.model.incident import Incident
from trucewatch.model.serialization import to_dict
from trucewatch.review.workflow import ACTIONS, ReviewService
from trucewatch.storage.protocols import ReviewDeskStore

router = APIRouter()


class Decision(Strict):
    status: Status = Field(strict=False)
    why: str = Field(min_length=1, max_length=2000)
    duplicate_of: str | None = Field(default=None, max_length=100)


class Modification(Strict):
    why: str = Field(min_length=1, max_length=2000)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    uncertainty_m: float | None = Field(default=None, gt=0, le=100000)
    time_start: IsoTime | None = None
    category: Category | None = Field(default=None, strict=False)


class NewIncident(Period):
    why: str = Field(min_length=1, max_length=2000)
    category: Category = Field(strict=False)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    uncertainty_m: float = Field(gt=0, le=100000)
    time_start: IsoTime
    time_end: IsoTime | None = None
    rule: str = Field(default="", max_length=100)


def _svc(store: ReviewDeskStore) -> ReviewService:
    return ReviewService(store)


def with_actions(out: dict[str, Any], inc: Incident, who: Principal, store: ReviewDeskStore
                 ) -> dict[str, Any]:
    """An incident as the API gives it, with what ``who`` may do to it now:
    ``actions`` (status values to decide, and ``modify``) and ``actions_refused`` (each
    other action, with the sentence the server would refuse it with). A principal
    without the review right may do nothing."""
    if not who.may("review"):
        return out
    refused = _svc(store).refusals(inc, who, may_confirm=who.role in CONFIRMS)
    return out | {"actions": [a for a in ACTIONS if a not in refused],
                  "actions_refused": refused}


@router.get("/review/queue", tags=["review"], response_model=IncidentPage)
def queue(who: AsReview, store: StoreDep, limit: Limit = 100,
          offset: Offset = 0) -> Page:
    """What needs action, each with the ``actions`` this principal may take now."""
    q = _svc(store).queue()
    return page([with_actions(located(to_dict(i)), i, who, store)
                 for i in q[offset:offset + limit]], len(q), limit, offset)


@router.post("/review/{incident_id}/claim", tags=["review"])
def claim(incident_id: str, who: AsReview, store: StoreDep) -> dict[str, Any]:
    return located(to_dict(_svc(store).claim(incident_id, who)))


@router.post("/review/{incident_id}/release", tags=["review"])
def release(incident_id: str, who: AsReview, store: StoreDep) -> dict[str, str]:
    _svc(store).release(incident_id, who)
    return {"released": incident_id}


@router.post("/review/{incident_id}/decide", tags=["review"])
def decide(incident_id: str, body: Decision, who: AsReview, store: StoreDep
           ) -> dict[str, Any]:
    if body.status == Status.VERIFIED and who.role not in CONFIRMS:
        raise HTTPException(403, "only a reviewer confirms 'verified'")
    return located(to_dict(_svc(store).decide(incident_id, who, body.status, body.why,
                                              body.duplicate_of)))


@router.post("/review/{incident_id}/modify", tags=["review"])
def modify(incident_id: str, body: Modification, who: AsReview, store: StoreDep
           ) -> dict[str, Any]:
    return located(to_dict(_svc(store).modify(
        incident_id, who, body.why, lat=body.lat, lon=body.lon,
        uncertainty_m=body.uncertainty_m, time_start=body.time_start,
        category=body.category)))


@router.post("/review/incidents", tags=["review"], status_code=201)
def add(body: NewIncident, who: AsReview, store: StoreDep, cfg: ConfigDep
        ) -> dict[str, Any]:
    aware(body.time_start, body.time_end)
    agreement = cfg.agreement
    return located(to_dict(_svc(store).add(who, body.why, category=body.category,
                                   lat=body.lat, lon=body.lon,
                                   uncertainty_m=body.uncertainty_m,
                                   time_start=body.time_start, time_end=body.time_end,
                                   rule=body.rule,
                                   agreement_id=agreement.id if agreement else "")))
