"""The filer tracks an allegation's status (received, under review, ruled: with the
ruling) through ``/allegations/mine``; nobody else sees it there (issue 15, item 4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import BuiltStore
from test_api import _h, _is_error, make_api
from trucewatch.cli.app import app
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


def _doc(*items: dict[str, Any]) -> bytes:
    return json.dumps({"format": "trucewatch-allegations/1", "allegations": [
        {"claimant": "Side B liaison office", "claimant_kind": "party",
         "received_at": "2026-05-31T09:00:00Z", "lat": 48.0, "lon": 37.8,
         "time_start": "2026-05-30T04:00:00Z", "category": "explosion"} | i
        for i in items]}).encode()


def test_ingested_allegations_are_the_submitters(api: API) -> None:
    """Documents posted to /ingest/allegations are filed by the posting principal:
    each of two principals sees only their own in "my allegations", and a document
    cannot name another principal as its filer."""
    c, tok, db = api
    store = open_store(db)
    admin = store.principal_named("admin-user")
    analyst = store.principal_named("analyst-user")
    assert admin is not None and analyst is not None
    store.close()
    r = c.post("/api/v1/ingest/allegations", headers=_h(tok["admin"]),
               content=_doc({"allegation_id": "DOC-A1"}, {"allegation_id": "DOC-A2"}))
    assert r.status_code == 200 and r.json()["rows"] == 2, r.text
    assert r.json()["quarantined"] == []
    # the analyst's document claims to be the admin's: the service says who filed it
    r = c.post("/api/v1/ingest/allegations", headers=_h(tok["analyst"]),
               content=_doc({"allegation_id": "DOC-B1", "filed_by": admin.id}))
    assert r.status_code == 200 and r.json()["rows"] == 1, r.text
    assert [m["allegation_id"] for m in _mine(c, tok["admin"])] == ["DOC-A2", "DOC-A1"]
    assert [m["allegation_id"] for m in _mine(c, tok["analyst"])] == ["DOC-B1"]
    assert all(m["status"] == "received" for m in _mine(c, tok["admin"]))
    stored = {a["allegation_id"]: a for a in open_store(db).allegations()}
    assert stored["DOC-B1"]["filed_by"] == analyst.id
    assert stored["DOC-A1"]["filed_by"] == admin.id
    # the form's allegations and the documents' are one list per filer
    form = c.post("/api/v1/allegations", headers=_h(tok["analyst"]), json=FORM).json()
    assert [m["allegation_id"] for m in _mine(c, tok["analyst"])] == [form["name"], "DOC-B1"]
    # nobody else follows them: other roles, and no token at all
    for other in ("reviewer", "public", "liaison"):
        assert _mine(c, tok[other]) == [], other
    _is_error(c.get("/api/v1/allegations/mine"), 401)
    # who may post documents is unchanged: the public files through the form only
    _is_error(c.post("/api/v1/ingest/allegations", headers=_h(tok["public"]),
                     content=_doc({"allegation_id": "DOC-P1"})), 403)


def test_cli_ingest_records_the_tokens_principal(api: API, tmp_path: Path) -> None:
    """`trucewatch allegations ingest --token` files as the token's principal; without
    a token the entries have no filer, and a filer named in the file is dropped."""
    c, tok, db = api
    own, anon = tmp_path / "own.json", tmp_path / "anon.json"
    own.write_bytes(_doc({"allegation_id": "CLI-1"}))
    anon.write_bytes(_doc({"allegation_id": "CLI-2", "filed_by": "p-0000000000000000"}))
    run = CliRunner().invoke
    res = run(app, ["allegations", "ingest", str(own), "--store", db,
                    "--token", tok["reviewer"]], env={"TRUCEWATCH_TOKEN": ""})
    assert res.exit_code == 0, res.output
    res = run(app, ["allegations", "ingest", str(anon), "--store", db],
              env={"TRUCEWATCH_TOKEN": ""})
    assert res.exit_code == 0, res.output
    assert [m["allegation_id"] for m in _mine(c, tok["reviewer"])] == ["CLI-1"]
    assert _mine(c, tok["analyst"]) == []
    stored = {a["allegation_id"]: a for a in open_store(db).allegations()}
    assert "filed_by" not in stored["CLI-2"]
    # a sensor network's token may not file; an unknown token is refused: nothing stored
    bad = tmp_path / "bad.json"
    bad.write_bytes(_doc({"allegation_id": "CLI-3"}))
    for token, why in ((tok["sensor"], "may not file allegations"),
                       ("not-a-token", "unknown or revoked token")):
        res = run(app, ["allegations", "ingest", str(bad), "--store", db, "--token", token])
        assert res.exit_code != 0 and why in str(res.exception), res.output
    assert "CLI-3" not in {a["allegation_id"] for a in open_store(db).allegations()}
