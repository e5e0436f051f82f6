"""What the API's routes share: the app's configuration, the request's store and
principal, the role checks, the common request and response models and small helpers.

Each concern's routes live in :mod:`trucewatch.api.routes` (one ``APIRouter`` a module);
:func:`trucewatch.api.app.create_app` wires them and fills :class:`Config`.
"""

# no ``from __future__ import annotations``: FastAPI reads these annotations at runtime
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Self

from fastapi import Depends, HTTPException, Query, Request, Security
from fastapi.security import APIKeyCookie, HTTPBearer
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from trucewatch.api import guard
from trucewatch.api.auth import Principal, Role
from trucewatch.api.geo import PUBLIC_PRECISION_KM
from trucewatch.ingest.base import SourceAdapter
from trucewatch.integrity.keys import KeyRegistry
from trucewatch.model.agreement import Agreement
from trucewatch.model.enums import Status
from trucewatch.model.times import time_problem
from trucewatch.storage import open_store
from trucewatch.storage.protocols import FullStore, PrincipalStore
from trucewatch.storage.sqlite import COUNT_CAP

MAX_BODY = guard.INGEST_LIMIT
DECIDED = [s.value for s in Status if s not in (Status.AUTOMATIC,
                                                 Status.PENDING_VERIFICATION)]
# what the public's view counts and shows: reviewed incidents that stand (not a duplicate,
# not rejected)
PUBLIC_STATUSES = [Status.VERIFIED.value, Status.UNVERIFIABLE.value]


@dataclass
class Config:
    """What :func:`create_app` was given, for the routes (``app.state.config``)."""

    agreement: Agreement | None = None
    bulletins_dir: Path | None = None
    registry: KeyRegistry = field(default_factory=KeyRegistry)
    # the built-in sources and any a plugin registered, by name
    sources: dict[str, SourceAdapter] = field(default_factory=dict)
    # the public's view (/api/v1/public/...) readable without a token
    public: bool = False
    # the grid the public's locations are rounded to (api/geo.py)
    public_precision_km: float = PUBLIC_PRECISION_KM


def config(request: Request) -> Config:
    cfg: Config = request.app.state.config
    return cfg


ConfigDep = Annotated[Config, Depends(config)]


class Error(BaseModel):
    error: str
    status: int
    message: str
    fix: str
    details: list[dict[str, Any]]


ERRORS: dict[int | str, dict[str, Any]] = {
    k: {"model": Error, "description": d} for k, d in (
        (400, "the body is not valid JSON"), (401, "missing or unknown token"),
        (403, "the token's role may not do this"),
        (404, "not found"), (409, "conflict (claim held, replay, illegal transition)"),
        (413, "the body is over the route's limit (or decompresses past it)"),
        (422, "invalid input"),
        (429, "too many requests from this principal (the server's rate limit); "
              "Retry-After says in how many seconds to send it again"),
        (500, "internal error, in the same shape (the traceback is logged, never sent)"))}
ERRORS[429]["headers"] = {"Retry-After": {
    "description": "whole seconds until the principal may send a request again",
    "schema": {"type": "integer", "minimum": 1}}}


class Page(BaseModel):
    """``total`` is exact up to 10,000; above, it reads 10,001 and ``total_capped`` is
    true (page on with ``next_offset``)."""

    items: list[dict[str, Any]]
    total: int
    total_capped: bool = False
    limit: int
    offset: int
    next_offset: int | None


def page(items: list[dict[str, Any]], total: int, limit: int, offset: int) -> Page:
    capped = total > COUNT_CAP
    nxt = offset + limit if (offset + limit < total or capped) and len(items) == limit \
        else None
    return Page(items=items, total=total, total_capped=capped, limit=limit,
                offset=offset, next_offset=nxt)


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_only(value: object) -> object:
    """Times travel as ISO 8601 strings; a number (or a numeric string) is not a time."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO.match(value)):
        return value
    raise ValueError("give the time as ISO 8601 with its UTC offset, e.g. "
                     "2026-05-30T04:00:00Z")


def to_utc(value: datetime) -> datetime:
    """A time in UTC; a ValueError (answered 422), not an OverflowError, when that leaves
    the years 1 to 9999 (``0001-01-01T00:00:00+05:00``)."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"time {value.isoformat()} is out of range in UTC") from None


def _plausible(value: datetime) -> datetime:
    """An observation's time: in the plausible range (model/times.py), in UTC."""
    problem = time_problem(value, datetime.now(UTC))
    if problem:
        raise ValueError(problem)
    return to_utc(value)


# a time in a submission (an allegation, an incident): plausible, converted to UTC; a
# time in a query: anything that has a UTC equivalent (year 1 to 9999)
IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_only), AfterValidator(_plausible),
                    Field(strict=False)]
QueryTime = Annotated[AwareDatetime, BeforeValidator(_iso_only), AfterValidator(to_utc),
                      Field(strict=False)]


class Strict(BaseModel):
    """Strict: a bool is not a number, a number is not a string; unknown fields refused.
    Enumerations and times are read from their JSON strings."""

    model_config = ConfigDict(strict=True, extra="forbid")


class Period(Strict):
    """A model with ``time_start`` and ``time_end``: the end is not before the start."""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        start, end = getattr(self, "time_start", None), getattr(self, "time_end", None)
        if start is not None and end is not None and end < start:
            raise ValueError("time_end is before time_start")
        return self


Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Bbox = Annotated[str | None, Query(pattern=r"^-?\d+(\.\d+)?(,-?\d+(\.\d+)?){3}$",
                                   description="min_lon,min_lat,max_lon,max_lat")]


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    a, b, c, d = (float(x) for x in text.split(","))
    if not (-180 <= a <= c <= 180 and -90 <= b <= d <= 90):
        raise HTTPException(422, "bbox must be min_lon,min_lat,max_lon,max_lat in range")
    return a, b, c, d


def get_store(request: Request) -> Iterator[FullStore]:
    """One connection per request (SQLite connections stay in their thread)."""
    store = open_store(request.app.state.store_path, pooled=True)
    try:
        yield store
    finally:
        store.close()


StoreDep = Annotated[FullStore, Depends(get_store)]


def authenticate(store: PrincipalStore, token: str) -> Principal | None:
    """The principal a token stands for (None: unknown or revoked)."""
    owner = store.token_owner(token)
    if owner is None:
        return None
    return Principal(owner.name, Role(owner.role), owner.party, owner.id)


# documented in the OpenAPI document; the guard has already checked them
_BEARER = HTTPBearer(auto_error=False, description="an API token")
_COOKIE = APIKeyCookie(name=guard.COOKIE, auto_error=False,
                       description="the dashboard's session (POST /api/v1/session)")


def principal(request: Request, _b: Annotated[Any, Security(_BEARER)] = None,
              _c: Annotated[Any, Security(_COOKIE)] = None) -> Principal:
    """The request's principal: authenticated by the guard before any body was read."""
    who = request.scope.get("state", {}).get("principal")
    if not isinstance(who, Principal):
        raise HTTPException(401, "no token", headers={"WWW-Authenticate": "Bearer"})
    return who


def allowed(action: str) -> Callable[..., Principal]:
    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.may(action):
            raise HTTPException(403, f"role {who.role.value} may not use {action}")
        return who
    return check


AsMe = Annotated[Principal, Depends(allowed("me"))]
AsIngest = Annotated[Principal, Depends(allowed("ingest"))]
AsObservations = Annotated[Principal, Depends(allowed("observations"))]
AsIncidents = Annotated[Principal, Depends(allowed("incidents"))]
AsViolations = Annotated[Principal, Depends(allowed("violations"))]
AsAggregates = Annotated[Principal, Depends(allowed("aggregates"))]
AsReview = Annotated[Principal, Depends(allowed("review"))]
AsFiler = Annotated[Principal, Depends(allowed("allegations_file"))]
AsAllegations = Annotated[Principal, Depends(allowed("allegations_read"))]
AsBulletins = Annotated[Principal, Depends(allowed("bulletins_public"))]
AsAgreement = Annotated[Principal, Depends(allowed("agreement"))]
AsCoverage = Annotated[Principal, Depends(allowed("coverage"))]
AsCoalition = Annotated[Principal, Depends(allowed("coalition"))]


def aware(*times: datetime | None) -> None:
    for t in times:
        if t is not None and t.tzinfo is None:
            raise HTTPException(422, "times need a UTC offset, e.g. 2026-05-30T04:00:00Z")
