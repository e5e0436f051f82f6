"""Browser sessions: the dashboard signs in by sending its token once; the server keeps
the token and answers an opaque session id, which lives in an HttpOnly, SameSite=Strict,
Secure cookie that no script can read. The cookie never carries the token: signing out
ends the session on the server (the old cookie no longer works), and a revoked token ends
every session opened with it. Every request that changes something carries the session's
CSRF token (see :mod:`trucewatch.api.guard`). API clients (scripts, sensors) keep sending
``Bearer`` tokens and need none of this.

The cookie is ``Secure`` unless the request came over plain http to a loopback host
(``localhost``, ``127.0.0.1``, ``::1``: a developer's own machine) or the app was created
with ``insecure_cookies=True`` (plain-http development on a network; never in the field).
Sessions live in the server process's memory: a restart signs everyone out.
"""

# no ``from __future__ import annotations``: the routes' dependencies are local names
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import HTTPException
from pydantic import BaseModel, ConfigDict, Field

from trucewatch.api.auth import Principal
from trucewatch.api.guard import COOKIE, csrf_for, session_token

LIFETIME_S = 12 * 3600  # a session ends 12 hours after sign-in, whatever its use
MAX_SESSIONS = 10_000  # the oldest are dropped past this (memory is bounded)
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class Sessions:
    """Open sessions by the SHA-256 of their id: (token, expiry). Thread-safe."""

    def __init__(self, lifetime_s: float = LIFETIME_S) -> None:
        self.lifetime_s = lifetime_s
        self._open: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(sid: str) -> str:
        return hashlib.sha256(sid.encode()).hexdigest()

    def open(self, token: str) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            if len(self._open) >= MAX_SESSIONS:
                for key in list(self._open)[: len(self._open) - MAX_SESSIONS + 1]:
                    del self._open[key]
            self._open[self._key(sid)] = (token, time.monotonic() + self.lifetime_s)
        return sid

    def token_for(self, sid: str) -> str | None:
        """The token a live session was opened with (None: unknown, ended or expired)."""
        key = self._key(sid)
        with self._lock:
            found = self._open.get(key)
            if found is None:
                return None
            if time.monotonic() >= found[1]:
                del self._open[key]
                return None
            return found[0]

    def close(self, sid: str) -> bool:
        with self._lock:
            return self._open.pop(self._key(sid), None) is not None

    def __len__(self) -> int:
        return len(self._open)


def secure_cookie(request: Request, insecure: bool) -> bool:
    """Whether the session cookie is marked ``Secure`` (see the module's docstring)."""
    if insecure:
        return False
    if request.url.scheme == "https" or \
            request.headers.get("x-forwarded-proto", "").lower() == "https":
        return True
    host = (request.url.hostname or "").strip("[]").lower()
    return not (host in LOOPBACK or host.endswith(".localhost"))


class SignIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    token: str = Field(min_length=1, max_length=200)


class Session(BaseModel):
    me: dict[str, Any]
    csrf: str


def _me(who: Principal) -> dict[str, Any]:
    return {"name": who.name, "role": who.role.value, "party": who.party}


def router(lookup: Callable[[str], Principal | None], secret: bytes,
           me: Callable[..., Principal], sessions: Sessions | None = None,
           insecure_cookies: bool = False) -> APIRouter:
    """The session routes; ``me`` is the dependency that gives a request's principal."""
    r = APIRouter(prefix="/session", tags=["service"])
    Me = Annotated[Principal, Depends(me)]  # noqa: N806
    table = sessions if sessions is not None else Sessions()

    @r.post("", response_model=Session)
    async def sign_in(body: SignIn, request: Request, response: Response) -> Session:
        """Exchange a token for a session cookie (an opaque session id; HttpOnly,
        SameSite=Strict, Secure). Answers who signed in and the session's CSRF token, to
        send in ``X-CSRF-Token`` with every request that changes something."""
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin",
                                                                        "none"):
            raise HTTPException(403, "sign in from this site's own page")
        who = await run_in_threadpool(lookup, body.token)
        if who is None:
            raise HTTPException(401, "unknown or revoked token",
                                headers={"WWW-Authenticate": "Bearer"})
        sid = table.open(body.token)
        response.set_cookie(COOKIE, sid, httponly=True, samesite="strict",
                            secure=secure_cookie(request, insecure_cookies), path="/",
                            max_age=int(table.lifetime_s))
        response.headers["Cache-Control"] = "no-store"
        return Session(me=_me(who), csrf=csrf_for(secret, sid))

    @r.get("", response_model=Session)
    def current(request: Request, response: Response, who: Me) -> Session:
        """Who this session is, and its CSRF token (a page reloaded asks for it)."""
        sid = session_token(request.scope) or ""
        response.headers["Cache-Control"] = "no-store"
        cookie_session = request.scope.get("state", {}).get("auth") == "cookie"
        return Session(me=_me(who), csrf=csrf_for(secret, sid) if sid and cookie_session
                       else "")

    @r.delete("")
    def sign_out(request: Request, response: Response, who: Me) -> dict[str, str]:
        """End the session: it is closed on the server (the cookie no longer works,
        wherever a copy of it is) and the cookie is cleared."""
        sid = session_token(request.scope)
        if sid:
            table.close(sid)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                               secure=secure_cookie(request, insecure_cookies))
        return {"signed_out": who.name}

    return r
