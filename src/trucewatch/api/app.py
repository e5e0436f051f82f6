"""The trucewatch service: one FastAPI app over a store, an agreement and bulletins.

Every request carries ``Authorization: Bearer <token>`` (or the dashboard's session
cookie); the token's role decides (:mod:`trucewatch.api.auth`). Authentication, size
limits and security headers come first (:mod:`trucewatch.api.guard`), before any body is
read. Every write is attributed to the token's name in the audit chain. Errors have one
shape (:mod:`trucewatch.api.errors`); a malformed submission is answered in it and kept
as refused. Blocking work (parsing, storing) runs off the event loop. Interactive docs
(``/docs``, ``/redoc``) are served from the package itself: no CDN.

The routes live in :mod:`trucewatch.api.routes`, one module a concern; what they share
(the store, the principal, the role checks, common models) in :mod:`trucewatch.api.deps`.
"""

import secrets
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi_offline import FastAPIOffline

from trucewatch import __version__
from trucewatch.api import errors, guard, session
from trucewatch.api.auth import Principal
from trucewatch.api.deps import ERRORS, Config, Error, Page, allowed, authenticate
from trucewatch.api.geo import PUBLIC_PRECISION_KM, gazetteer
from trucewatch.api.ratelimit import RateLimit, RateLimiter
from trucewatch.api.routes import (
    agreement as agreement_routes,
)
from trucewatch.api.routes import (
    alerts as alerts_routes,
)
from trucewatch.api.routes import (
    allegations,
    bulletins,
    coalition,
    coverage,
    incidents,
    ingest,
    observations,
    review,
    service,
)
from trucewatch.api.routes import (
    public as public_routes,
)
from trucewatch.api.routes.allegations import AllegationForm
from trucewatch.api.routes.ingest import Outcome
from trucewatch.api.routes.review import Decision, Modification, NewIncident
from trucewatch.ingest.registry import sources as all_sources
from trucewatch.integrity.keys import KeyRegistry
from trucewatch.storage import open_store

# the models tests and clients import from here
__all__ = ["AllegationForm", "Decision", "Error", "Modification", "NewIncident", "Outcome",
           "Page", "create_app"]


def create_app(store_path: Path | str, agreement_path: Path | None = None,
               bulletins_dir: Path | None = None, keys_path: Path | None = None, *,
               public: bool = False, public_precision_km: float = PUBLIC_PRECISION_KM,
               insecure_cookies: bool = False,
               rate_limit: RateLimit | RateLimiter | None = None) -> Any:
    """The app. ``public``: the public's view (``/api/v1/public/...``) is readable
    without a token (the mission publishes it); else it needs a token. Public locations
    are rounded to ``public_precision_km``. ``insecure_cookies``: the session cookie is
    never marked ``Secure`` (plain-http development on a network; see
    :mod:`trucewatch.api.session`). ``rate_limit``: requests per principal
    (:mod:`trucewatch.api.ratelimit`; None: no limit)."""
    if not public_precision_km > 0:
        raise ValueError("public_precision_km must be positive")
    app = FastAPIOffline(
        title="trucewatch", version=__version__,
        description="Ceasefire monitoring and verification. Send `Authorization: Bearer "
                    "<token>`; errors share one JSON shape (`Error`).")
    errors.install(app)
    app.state.store_path = str(store_path)
    open_store(app.state.store_path).close()  # create or migrate before the first request

    def lookup(token: str) -> Principal | None:
        store = open_store(app.state.store_path, pooled=True)
        try:
            return authenticate(store, token)
        finally:
            store.close()

    secret = secrets.token_bytes(32)  # binds a session's CSRF token to this process
    sessions = session.Sessions()
    limiter = RateLimiter(rate_limit) if isinstance(rate_limit, RateLimit) else rate_limit
    guard.install(app, lookup, secret, sessions=sessions.token_for, public=public,
                  limiter=limiter)
    agreement = None
    if agreement_path is not None:
        from trucewatch.agreement import load_agreement

        agreement = load_agreement(agreement_path)
    app.state.config = Config(
        agreement=agreement, bulletins_dir=bulletins_dir,
        registry=KeyRegistry.load(keys_path) if keys_path else KeyRegistry(),
        sources={src.name: src for src in all_sources()}, public=public,
        public_precision_km=public_precision_km)
    # incident locations are described from the gazetteer: load it before the first
    # request needs it (seconds)
    threading.Thread(target=gazetteer, daemon=True, name="gazetteer").start()

    @app.get("/api/v1/health", tags=["service"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    api = APIRouter(prefix="/api/v1", responses=ERRORS)
    api.include_router(service.router)
    api.include_router(session.router(lookup, secret, allowed("me"), sessions,
                                      insecure_cookies))
    for router in (ingest.router, incidents.router, observations.router, incidents.counts,
                   review.router, allegations.router, bulletins.router,
                   agreement_routes.router, coverage.router, coalition.router,
                   public_routes.router,
                   alerts_routes.router):
        api.include_router(router)
    app.include_router(api)
    from trucewatch.web import mount

    mount(app)
    return app
