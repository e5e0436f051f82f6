"""Who am I (``/me``); the health check is the app's own route (no token, no errors)."""

from typing import Any

from fastapi import APIRouter

from trucewatch.api.deps import AsMe
from trucewatch.api.models import Me

router = APIRouter()


@router.get("/me", tags=["service"], response_model=Me)
def me(who: AsMe) -> dict[str, Any]:
    return {"name": who.name, "role": who.role.value, "party": who.party}
