"""Browser sessions: the dashboard signs in by sending its token once; the token then lives
in an HttpOnly, SameSite=Strict cookie (Secure over https) that no script can read, and
every request that changes something carries the session's CSRF token (see
:mod:`trucewatch.api.guard`). API clients (scripts, sensors) keep sending ``Bearer``
tokens and need none of this."""

# no ``from __future__ import annotations``: the routes' dependencies are local names
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import HTTPException
from pydantic import BaseModel, ConfigDict, Field

from trucewatch.api.auth import Principal
from trucewatch.api.guard import COOKIE, csrf_for, session_token


class SignIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    token: str = Field(min_length=1, max_length=200)


class Session(BaseModel):
    me: dict[str, Any]
    csrf: str


def _me(who: Principal) -> dict[str, Any]:
    return {"name": who.name, "role": who.role.value, "party": who.party}


def router(lookup: Callable[[str], Principal | None], secret: bytes,
           me: Callable[..., Principal]) -> APIRouter:
    """The session routes; ``me`` is the dependency that gives a request's principal."""
    r = APIRouter(prefix="/session", tags=["service"])
    Me = Annotated[Principal, Depends(me)]  # noqa: N806

    @r.post("", response_model=Session)
    async def sign_in(body: SignIn, request: Request, response: Response) -> Session:
        """Exchange a token for a session cookie (HttpOnly, SameSite=Strict, Secure over
        https). Answers who signed in and the session's CSRF token, to send in
        ``X-CSRF-Token`` with every request that changes something."""
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin",
                                                                        "none"):
            raise HTTPException(403, "sign in from this site's own page")
        who = await run_in_threadpool(lookup, body.token)
        if who is None:
            raise HTTPException(401, "unknown or revoked token",
                                headers={"WWW-Authenticate": "Bearer"})
        response.set_cookie(COOKIE, body.token, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        response.headers["Cache-Control"] = "no-store"
        return Session(me=_me(who), csrf=csrf_for(secret, body.token))

    @r.get("", response_model=Session)
    def current(request: Request, response: Response, who: Me) -> Session:
        """Who this session is, and its CSRF token (a page reloaded asks for it)."""
        token = session_token(request.scope) or ""
        response.headers["Cache-Control"] = "no-store"
        return Session(me=_me(who), csrf=csrf_for(secret, token) if token else "")

    @r.delete("")
    def sign_out(request: Request, response: Response, who: Me) -> dict[str, str]:
        """End the session: the cookie is cleared."""
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return {"signed_out": who.name}

    return r
