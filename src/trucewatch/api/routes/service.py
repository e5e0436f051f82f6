"""Who am I (``/me``); the health check is the app's own route (no token, no errors)."""

from typing import Any

from fastapi import APIRouter

from trucewatch.api.deps import AsMe

router = APIRouter()


@router.get("/me", tags=["service"])
def me(who: AsMe) -> dict[str, Any]:
    return {"name": who.name, "role": who.role.value, "party": who.party}
