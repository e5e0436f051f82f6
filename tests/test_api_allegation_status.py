"""The filer tracks an allegation's status (received, under review, ruled: with the
ruling) through ``/allegations/mine``; nobody else sees it there (issue 15, item 4)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import BuiltStore
from test_api import _h, _is_error, make_api
from trucewatch.demo import ScenarioFiles
from trucewatch.storage import open_store

API = tuple[TestClient, dict[str, str], str]
FORM = {"text": "Shelling near the school", "lat": 48.32, "lon": 37.85,
        "time_start": "2026-05-30T04:10:00Z", "category": "explosion"}


@pytest.fixture()
def api(built_store: BuiltStore, scenario: ScenarioFiles) -> API:
    return make_api(built_store, scenario)


def _mine(c: TestClient, token: str) -> list[dict[str, Any]]:
    r = c.get("/api/v1/allegations/mine", headers=_h(token))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def _ruling(aid: str, ruling: str, observations: list[list[str]]) -> dict[str, Any]:
    return {"allegation_id": aid, "ruling": ruling, "basis": "automatic",
            "reason": f"{ruling}: as the test rules it", "claimant": "x",
            "claimant_kind": "public", "category": "explosion", "place": "coordinates",
            "time_start": FORM["time_start"], "time_end": "2026-05-30T05:10:00Z",
            "evidence": {"incident_observations": observations, "rules": [],
                         "coverage": {}}}


def test_the_filer_tracks_their_allegation(api: API) -> None:
    c, tok, db = api
    store = open_store(db)
    # two filers of one party, and a second member of the public
    tok["liaison-2"] = store.add_token("liaison-two", "liaison", "Side B liaison office")
    tok["public-2"] = store.add_token("public-two", "public")
    r = c.post("/api/v1/allegations", headers=_h(tok["public"]), json=FORM)
    assert r.status_code == 201, r.text
    aid = r.json()["name"]
    mine = _mine(c, tok["public"])
    assert [(m["allegation_id"], m["status"], m["ruling"]) for m in mine] == [
        (aid, "received", None)]
    assert mine[0]["text"] == FORM["text"] and mine[0]["category"] == "explosion"
    # nobody else sees it there: not another member of the public, not staff
    for other in ("public-2", "admin", "liaison"):
        assert aid not in [m["allegation_id"] for m in _mine(c, tok[other])], other
    lia = c.post("/api/v1/allegations", headers=_h(tok["liaison"]), json=FORM).json()["name"]
    assert [m["allegation_id"] for m in _mine(c, tok["liaison"])] == [lia]
    assert _mine(c, tok["liaison-2"]) == []  # same party, another filer
    # the judge rules on what was observed there: an incident not yet reviewed means
    # "under review" to the public, with nothing of the incident
    unreviewed = next(i for i in store.incidents() if i.status.value == "automatic")
    store.save_rulings([_ruling(aid, "violation", [unreviewed.observation_ids])])
    seen = _mine(c, tok["public"])[0]
    assert seen["status"] == "under_review"
    assert seen["ruling"]["ruling"] == "pending"
    assert "under review" in seen["ruling"]["reason"]
    assert unreviewed.id not in str(seen)
    # a ruling that rests on nothing unreviewed is the ruling, with its reason
    store.save_rulings([_ruling(aid, "no_violation", [])])
    seen = _mine(c, tok["public"])[0]
    assert seen["status"] == "ruled"
    assert seen["ruling"] == {"ruling": "no_violation", "basis": "automatic",
                              "reason": "no_violation: as the test rules it"}
    assert _mine(c, tok["public-2"]) == []


def test_the_filer_cannot_be_claimed_in_the_form(api: API) -> None:
    c, tok, _ = api
    e = _is_error(c.post("/api/v1/allegations", headers=_h(tok["public"]),
                         json=FORM | {"filed_by": "someone-else"}), 422)
    assert e["details"][0]["loc"][-1] == "filed_by"
    _is_error(c.get("/api/v1/allegations/mine", headers=_h(tok["sensor"])), 403)
    _is_error(c.get("/api/v1/allegations/mine"), 401)
