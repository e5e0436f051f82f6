"""The coalition: who contributes what, and what each contribution covered."""

from typing import Any

from fastapi import APIRouter

from trucewatch.api.auth import Principal, Role
from trucewatch.api.deps import AsCoalition, StoreDep

router = APIRouter()


def party_view(doc: dict[str, Any], who: Principal) -> dict[str, Any]:
    """What ``who`` may see of the coalition document: everything for staff and the
    coalition; for a liaison officer, their own party's contributor (id or name equal
    to the token's party), its assets and credits only, and none of the gaps (where no
    one watches is not for one party)."""
    if who.role != Role.LIAISON:
        return doc
    party = (who.party or "").strip().casefold()
    reg = doc.get("registry") or {}
    mine = [c for c in reg.get("contributors", [])
            if party and party in (str(c.get("id", "")).casefold(),
                                   str(c.get("name", "")).casefold())]
    ids = {c["id"] for c in mine}
    return {"registry": {**reg, "contributors": mine} if reg else None,
            "credits": [c for c in doc.get("credits", []) if c.get("contributor") in ids],
            "party": who.party}


@router.get("/coalition", tags=["agreement"])
def coalition(who: AsCoalition, store: StoreDep) -> dict[str, Any]:
    """The coalition registry the last cycle used (signed by the mission key), with the
    credits (who covered which sector, on which day, by which asset, and the share) and
    the gaps no contributor covers. A liaison officer sees their own party's
    contributions only. ``registry`` is null when the cycle was given none (or it was
    refused: ``refused`` says why)."""
    doc = store.latest_coverage() or {}
    found = (doc.get("maps") or {}).get("coalition")
    if not found:
        found = {"registry": None, "credits": [], "gaps": [], "undeclared": {}}
    elif "refused" in found:
        found = {"registry": None, "credits": [], "gaps": [], "undeclared": {},
                 "refused": found["refused"]}
    return party_view(found, who)
