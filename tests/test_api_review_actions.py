"""The actions the server allows a principal on an incident, per role and state (the
two-person rule, roles, claims), in the review queue and ``/incidents/{id}``, and the
modify and duplicate decisions through the API (issue 15, item 4)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import BuiltStore
from test_api import _h, _is_error, make_api
from trucewatch.demo import ScenarioFiles

API = tuple[TestClient, dict[str, str], str]
DISCARDS = ["unverifiable", "inaccurate", "duplicate", "rejected"]


@pytest.fixture()
def api(built_store: BuiltStore, scenario: ScenarioFiles) -> API:
    return make_api(built_store, scenario)


def _item(c: TestClient, token: str, inc: str) -> dict[str, Any]:
    """The incident as ``token``'s principal reads it in the queue; checks that
    ``/incidents/{id}`` gives the same actions."""
    q = c.get("/api/v1/review/queue", headers=_h(token)).json()["items"]
    item = next(i for i in q if i["id"] == inc)
    one = c.get(f"/api/v1/incidents/{inc}", headers=_h(token)).json()
    assert one["actions"] == item["actions"]
    assert one["actions_refused"] == item["actions_refused"]
    return dict(item)


def _decide(c: TestClient, token: str, inc: str, status: str, **extra: Any) -> Any:
    assert c.post(f"/api/v1/review/{inc}/claim", headers=_h(token)).status_code == 200
    r = c.post(f"/api/v1/review/{inc}/decide", headers=_h(token),
               json={"status": status, "why": "test"} | extra)
    c.post(f"/api/v1/review/{inc}/release", headers=_h(token))
    return r


def test_actions_by_role_and_state(api: API) -> None:
    c, tok, _ = api
    q = c.get("/api/v1/review/queue", headers=_h(tok["analyst"])).json()["items"]
    inc = next(i["id"] for i in q if i["status"] == "automatic")
    # an automatic incident: every role with the review right may propose, discard,
    # modify; nobody may verify it in one step
    for role in ("analyst", "reviewer", "admin"):
        item = _item(c, tok[role], inc)
        assert item["actions"] == ["pending_verification", *DISCARDS, "modify"], role
        assert ("only a reviewer" if role == "analyst" else "one person") \
            in item["actions_refused"]["verified"]
    # the analyst proposes
    assert _decide(c, tok["analyst"], inc, "pending_verification").status_code == 200
    analyst = _item(c, tok["analyst"], inc)
    assert "verified" not in analyst["actions"]
    assert "only a reviewer" in analyst["actions_refused"]["verified"]
    assert "pending_verification" in analyst["actions_refused"]  # already proposed
    assert analyst["actions"] == [*DISCARDS, "modify"]
    for role in ("reviewer", "admin"):
        assert _item(c, tok[role], inc)["actions"] == ["verified", *DISCARDS, "modify"]
    # while someone holds the claim, the others may do nothing
    assert c.post(f"/api/v1/review/{inc}/claim", headers=_h(tok["reviewer"])).status_code \
        == 200
    other = _item(c, tok["admin"], inc)
    assert other["actions"] == []
    assert all("claimed by reviewer-user" in why for why in other["actions_refused"].values())
    assert _item(c, tok["reviewer"], inc)["actions"][0] == "verified"
    c.post(f"/api/v1/review/{inc}/release", headers=_h(tok["reviewer"]))
    # what the server offers it accepts: the reviewer verifies; then nothing is left
    assert _decide(c, tok["reviewer"], inc, "verified").json()["status"] == "verified"
    one = c.get(f"/api/v1/incidents/{inc}", headers=_h(tok["admin"])).json()
    assert one["actions"] == []


def test_the_proposer_and_the_modifier_are_not_offered_verify(api: API) -> None:
    c, tok, _ = api
    q = c.get("/api/v1/review/queue", headers=_h(tok["reviewer"])).json()["items"]
    autos = [i for i in q if i["status"] == "automatic"]
    a, b = autos[0], autos[1]
    # a reviewer who proposed may not confirm; the server refuses what it does not offer
    _decide(c, tok["reviewer"], a["id"], "pending_verification")
    mine = _item(c, tok["reviewer"], a["id"])
    assert "verified" not in mine["actions"]
    assert "proposed the verification" in mine["actions_refused"]["verified"]
    e = _is_error(_decide(c, tok["reviewer"], a["id"], "verified"), 403)
    assert "cannot confirm" in e["message"]
    assert "verified" in _item(c, tok["reviewer-2"], a["id"])["actions"]
    # one who modified an incident may not verify it, even if someone else proposed it
    c.post(f"/api/v1/review/{b['id']}/claim", headers=_h(tok["reviewer"]))
    r = c.post(f"/api/v1/review/{b['id']}/modify", headers=_h(tok["reviewer"]),
               json={"why": "the crater is 300 m east", "lon": b["location"]["lon"] + 0.004})
    assert r.status_code == 200, r.text
    assert r.json()["attributes"]["modified"] is True
    c.post(f"/api/v1/review/{b['id']}/release", headers=_h(tok["reviewer"]))
    _decide(c, tok["reviewer-2"], b["id"], "pending_verification")
    touched = _item(c, tok["reviewer"], b["id"])
    assert "verified" not in touched["actions"]
    assert "modified" in touched["actions_refused"]["verified"]
    assert "verified" in _item(c, tok["admin"], b["id"])["actions"]


def test_roles_without_review_get_no_actions(api: API) -> None:
    c, tok, _ = api
    q = c.get("/api/v1/review/queue", headers=_h(tok["admin"])).json()["items"]
    inc = q[0]["id"]
    one = c.get(f"/api/v1/incidents/{inc}", headers=_h(tok["coalition"])).json()
    assert one["id"] == inc and one.get("actions") is None
    _is_error(c.get("/api/v1/review/queue", headers=_h(tok["coalition"])), 403)
    decided = c.get("/api/v1/incidents?status=verified", headers=_h(tok["liaison"])).json()
    for i in decided["items"][:3]:
        assert c.get(f"/api/v1/incidents/{i['id']}",
                     headers=_h(tok["liaison"])).json().get("actions") is None


def test_duplicate_and_modify_through_the_api(api: API) -> None:
    c, tok, _ = api
    q = c.get("/api/v1/review/queue", headers=_h(tok["analyst"])).json()["items"]
    a, b = [i for i in q if i["status"] == "automatic"][:2]
    # a duplicate names its original, which must exist
    e = _is_error(_decide(c, tok["analyst"], a["id"], "duplicate"), 409)
    assert "must name the incident" in e["message"]
    _is_error(_decide(c, tok["analyst"], a["id"], "duplicate", duplicate_of="inc-none"), 404)
    r = _decide(c, tok["analyst"], a["id"], "duplicate", duplicate_of=b["id"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "duplicate"
    assert r.json()["attributes"]["duplicate_of"] == b["id"]
    assert _item(c, tok["analyst"], b["id"])["actions"][0] == "pending_verification"
    assert c.get(f"/api/v1/incidents/{a['id']}", headers=_h(tok["analyst"])).json()[
        "actions"] == []
    # modify: category and time, with a reason; nothing to change is refused
    c.post(f"/api/v1/review/{b['id']}/claim", headers=_h(tok["analyst"]))
    e = _is_error(c.post(f"/api/v1/review/{b['id']}/modify", headers=_h(tok["analyst"]),
                         json={"why": "same"}), 409)
    assert "nothing to modify" in e["message"]
    r = c.post(f"/api/v1/review/{b['id']}/modify", headers=_h(tok["analyst"]),
               json={"why": "shelling, not a fire", "category": "explosion.airburst",
                     "time_start": "2026-05-30T03:10:00Z"})
    assert r.status_code == 200, r.text
    assert r.json()["category"] == "explosion.airburst"
    assert r.json()["time_start"].startswith("2026-05-30T03:10")
    _is_error(c.post(f"/api/v1/review/{b['id']}/modify", headers=_h(tok["analyst"]),
                     json={"why": "x", "category": "nonsense"}), 422)
