"""The CAP 1.2 feed of candidate violations: every alert validates against the OASIS
CAP 1.2 schema (tests/data/cap-1.2.xsd, see tests/data/README-cap.md), and the feed is
restricted until review, public after."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from conftest import DATA, BuiltStore
from test_api import make_api
from trucewatch.alerts import cap
from trucewatch.demo import ScenarioFiles
from trucewatch.model.enums import Status
from trucewatch.storage import SqliteStore

SCHEMA = etree.XMLSchema(etree.parse(str(DATA / "cap-1.2.xsd")))
NS = {"cap": cap.CAP_NS, "atom": cap.ATOM_NS}


def _alerts_in(feed: bytes) -> list[etree._Element]:
    root = etree.fromstring(feed)
    assert root.tag == f"{{{cap.ATOM_NS}}}feed"
    entries = root.findall("atom:entry", NS)
    found = [e.find("atom:content/cap:alert", NS) for e in entries]
    assert all(a is not None for a in found)
    return [a for a in found if a is not None]


def _valid(alert: etree._Element) -> None:
    doc = etree.fromstring(etree.tostring(alert))
    if not SCHEMA.validate(doc):
        raise AssertionError(str(SCHEMA.error_log))


def _text(alert: etree._Element, path: str) -> str:
    return str(alert.findtext(path, namespaces=NS))


def test_schema_rejects_a_broken_alert(built_cycle: Path) -> None:
    """The schema check can fail: an alert without its info/certainty is invalid."""
    store = SqliteStore(built_cycle / "trucewatch.db")
    items = cap.alerts(store, cap.Audience.RESTRICTED)
    store.close()
    doc = etree.fromstring(cap.to_xml(items[0], cap.Audience.RESTRICTED))
    assert SCHEMA.validate(doc)
    info = doc.find("cap:info", NS)
    assert info is not None
    info.remove(info.find("cap:certainty", NS))
    assert not SCHEMA.validate(doc)


def test_every_alert_is_valid_cap(built_cycle: Path) -> None:
    store = SqliteStore(built_cycle / "trucewatch.db")
    violating = {v.incident_id for v in store.violations()}
    for audience in cap.Audience:
        items = cap.alerts(store, audience)
        feed = _alerts_in(cap.feed(items, audience, "urn:test"))
        assert len(feed) == len(items)
        for a, item in zip(feed, items, strict=True):
            _valid(a)
            _valid(etree.fromstring(cap.to_xml(item, audience)))
            assert _text(a, "cap:info/cap:category") == "Security"
            lat_lon, radius = _text(a, "cap:info/cap:area/cap:circle").split(" ")
            lat, lon = (float(x) for x in lat_lon.split(","))
            assert abs(lat - item.incident.location.lat) < 0.06
            assert abs(lon - item.incident.location.lon) < 0.06
            want = item.incident.location.uncertainty_m * cap.SIGMA_95 / 1000
            assert float(radius) >= want - 1e-3
        assert {i.incident.id for i in items} <= violating
    # the restricted feed holds a first alert for every candidate violation
    restricted = cap.alerts(store, cap.Audience.RESTRICTED)
    assert {a.incident.id for a in restricted if a.msg_type == "Alert"} == violating
    store.close()


def test_restricted_until_reviewed_public_after(built_cycle: Path) -> None:
    store = SqliteStore(built_cycle / "trucewatch.db")
    public = cap.alerts(store, cap.Audience.PUBLIC)
    restricted = cap.alerts(store, cap.Audience.RESTRICTED)
    status = {i.id: i.status for i in store.incidents()}
    store.close()
    assert public, "the scripted review verifies some violations"
    assert all(a.scope == "Public" and a.incident.status in cap.PUBLIC_STATUSES
               for a in public)
    assert {a.incident.id for a in public} == {
        a.incident.id for a in restricted if a.incident.status in cap.PUBLIC_STATUSES}
    # unreviewed candidates: only restricted, with the restriction stated
    unreviewed = [a for a in restricted if status[a.incident.id] in cap.UNREVIEWED]
    assert unreviewed and all(a.scope == "Restricted" for a in unreviewed)
    assert not {a.incident.id for a in unreviewed} & {a.incident.id for a in public}
    # a reviewed one's restricted trail: the automatic Alert, then an Update referring to it
    verified = next(a.incident.id for a in public if a.incident.status == Status.VERIFIED)
    trail = [a for a in restricted if a.incident.id == verified]
    assert trail[0].msg_type == "Alert" and trail[0].scope == "Restricted"
    assert trail[-1].msg_type == "Update" and trail[0].identifier in str(trail[-1].references)
    # the public sees its first alert as an Alert, rounded to the 0.1 degree cell
    first_public = next(a for a in public if a.incident.id == verified)
    assert first_public.msg_type == "Alert" and first_public.references is None
    xml = etree.fromstring(cap.to_xml(first_public, cap.Audience.PUBLIC))
    centre = _text(xml, "cap:info/cap:area/cap:circle").split(" ")[0]
    assert all(len(x.split(".")[1]) == 1 for x in centre.split(","))
    assert "Observations:" not in _text(xml, "cap:info/cap:description")


def test_review_moves_an_alert_into_the_public_feed(built_cycle: Path, tmp_path: Path
                                                    ) -> None:
    db = tmp_path / "s.db"
    shutil.copy(built_cycle / "trucewatch.db", db)
    store = SqliteStore(db)
    before = {a.identifier for a in cap.alerts(store, cap.Audience.PUBLIC)}
    now = {i.id: i.status for i in store.incidents()}
    pending = {a.incident.id for a in cap.alerts(store, cap.Audience.RESTRICTED)
               if now[a.incident.id] == Status.AUTOMATIC}
    target = sorted(pending)[0]
    store.set_status(target, Status.PENDING_VERIFICATION, "anna", "looks real")
    assert {a.identifier for a in cap.alerts(store, cap.Audience.PUBLIC)} == before
    store.set_status(target, Status.VERIFIED, "ben", "confirmed by a patrol")
    after = cap.alerts(store, cap.Audience.PUBLIC)
    new = [a for a in after if a.identifier not in before]
    assert [a.incident.id for a in new] == [target]
    trail = [a for a in cap.alerts(store, cap.Audience.RESTRICTED) if a.incident.id == target]
    assert [a.msg_type for a in trail] == ["Alert", "Update", "Update"]
    store.close()


@pytest.fixture()
def api(built_store: BuiltStore, scenario: ScenarioFiles
        ) -> tuple[TestClient, dict[str, str], str]:
    return make_api(built_store, scenario)


def test_alerts_route_by_role(api: tuple[TestClient, dict[str, str], Path]) -> None:
    client, tokens, _ = api
    seen: dict[str, list[etree._Element]] = {}
    for role in ("admin", "analyst", "coalition", "liaison", "public"):
        r = client.get("/api/v1/alerts.cap", headers={"Authorization": f"Bearer {tokens[role]}"})
        assert r.status_code == 200, (role, r.text)
        assert r.headers["content-type"].startswith(cap.ATOM_MEDIA_TYPE)
        seen[role] = _alerts_in(r.content)
        for a in seen[role]:
            _valid(a)
    scopes = {role: {_text(a, "cap:scope") for a in alerts} for role, alerts in seen.items()}
    assert scopes["analyst"] == {"Restricted", "Public"} == scopes["coalition"]
    assert scopes["public"] == {"Public"} == scopes["liaison"]
    assert len(seen["public"]) < len(seen["analyst"])
    # one alert by its identifier; a restricted one is not found for the public
    restricted_id = next(_text(a, "cap:identifier") for a in seen["analyst"]
                         if _text(a, "cap:scope") == "Restricted")
    r = client.get(f"/api/v1/alerts/{restricted_id}.cap",
                   headers={"Authorization": f"Bearer {tokens['analyst']}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith(cap.CAP_MEDIA_TYPE)
    _valid(etree.fromstring(r.content))
    r = client.get(f"/api/v1/alerts/{restricted_id}.cap",
                   headers={"Authorization": f"Bearer {tokens['public']}"})
    assert r.status_code == 404 and r.json()["fix"]
    assert client.get("/api/v1/alerts.cap").status_code == 401
    r = client.get("/api/v1/alerts.cap", headers={"Authorization": f"Bearer {tokens['sensor']}"})
    assert r.status_code == 403


def test_alerts_cap_command(built_cycle: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trucewatch.cli.app import app

    for flag, scopes in (([], {"Restricted", "Public"}), (["--public"], {"Public"})):
        out = tmp_path / f"feed{len(flag)}.xml"
        r = CliRunner().invoke(app, ["alerts", "cap", "--store",
                                     str(built_cycle / "trucewatch.db"), "--out", str(out),
                                     *flag])
        assert r.exit_code == 0, r.output
        found = _alerts_in(out.read_bytes())
        for a in found:
            _valid(a)
        assert {_text(a, "cap:scope") for a in found} == scopes
