"""The coalition registry: its loader (signed by the mission key of the key registry,
refused with a reason otherwise; content errors named), the credits and gaps of the
coverage maps, the bulletin's section (PDF text), and the liaison officer's view."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from test_coverage_maps import DAY, _agreement, _coverage
from trucewatch.adjudication.coverage_maps import CoverageMaps
from trucewatch.api.auth import Principal, Role
from trucewatch.api.routes.coalition import party_view
from trucewatch.errors import ConfigError, SignatureError
from trucewatch.intake.coalition import load_coalition, read_coalition
from trucewatch.integrity.envelope import sign_submission
from trucewatch.integrity.keys import KeyRecord, KeyRegistry, new_keypair
from trucewatch.reports.bulletin import render_html

SIGNED_AT = datetime(2026, 5, 29, 12, tzinfo=UTC)
REGISTRY = {
    "format": "trucewatch-coalition/1", "mission": "test",
    "contributors": [
        {"id": "FR", "name": "France", "kind": "nation", "roles": ["troops", "hub", "drones"],
         "assets": [{"id": "fr-uav", "kind": "drone_platform", "source": "drone:FR-01",
                     "platforms": ["FR-01"], "sectors": ["east"]}]},
        {"id": "US", "name": "United States", "kind": "nation", "roles": ["lead"],
         "assets": [{"id": "us-net", "kind": "sensor_network", "source": "sensors:net-w",
                     "stations": ["S*"], "sectors": ["west"]},
                    {"id": "us-sat", "kind": "satellite_tasking", "sectors": ["west", "east"]}]},
        {"id": "OSCE", "name": "OSCE", "kind": "organisation", "roles": ["monitors"]}]}


@pytest.fixture()
def keys() -> tuple[KeyRegistry, dict[str, object]]:
    reg, private = KeyRegistry(), {}
    for key_id, source in (("mission/1", "mission:test"), ("fr-uav/1", "drone:FR-01"),
                           ("net-w/1", "sensors:net-w")):
        priv, pub = new_keypair()
        reg.add(KeyRecord(key_id, source, pub, datetime(2026, 5, 1, tzinfo=UTC)))
        private[key_id] = priv
    return reg, private


def _signed(doc: dict | str, private: dict[str, object], key_id: str = "mission/1") -> bytes:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True)
    return sign_submission(text.encode(), private[key_id], key_id, SIGNED_AT,  # type: ignore[arg-type]
                           "nonce-1")


def test_a_signed_registry_loads(keys, tmp_path: Path) -> None:
    reg, private = keys
    path = tmp_path / "coalition.signed.json"
    path.write_bytes(_signed(REGISTRY, private))
    c = load_coalition(path, _agreement(), reg)
    assert c.signed_by == "mission/1"
    assert [x.id for x in c.contributors] == ["FR", "US", "OSCE"]
    assert c.undeclared(["west", "east"]) == {"drone": ["west"], "sensors": ["east"],
                                              "satellite": []}


def test_a_registry_whose_signature_fails_is_refused_with_its_reason(keys) -> None:
    reg, private = keys
    ag = _agreement()
    with pytest.raises(SignatureError, match="not signed"):
        read_coalition(yaml.safe_dump(REGISTRY).encode(), "c.yaml", ag, reg)
    env = json.loads(_signed(REGISTRY, private))
    env["payload"] = env["payload"][:-8] + "AAAAAAA="  # altered after signing
    with pytest.raises(SignatureError, match="altered"):
        read_coalition(json.dumps(env).encode(), "c.json", ag, reg)
    with pytest.raises(SignatureError, match="not a mission key"):
        read_coalition(_signed(REGISTRY, private, "fr-uav/1"), "c.json", ag, reg)
    reg.revoke("mission/1", datetime(2026, 5, 20, tzinfo=UTC), "key lost")
    with pytest.raises(SignatureError, match="revoked"):
        read_coalition(_signed(REGISTRY, private), "c.json", ag, reg)


@pytest.mark.parametrize(("change", "match"), [
    (lambda d: d["contributors"][0]["assets"][0].update(sectors=["nowhere"]),
     "nowhere are not the agreement's"),
    (lambda d: d["contributors"][0]["assets"][0].update(source="drone:XX-9"),
     "no key in the key registry signs for drone:XX-9"),
    (lambda d: d["contributors"][0]["assets"][0].update(kind="balloon"), "kind 'balloon'"),
    (lambda d: d["contributors"][1].update(id="FR"), "contributor FR is listed twice"),
    (lambda d: d["contributors"][1]["assets"][0].pop("stations"), "names its stations"),
    (lambda d: d.update(format="other/1"), "not a coalition registry"),
])
def test_content_errors_are_named(keys, change, match: str) -> None:
    reg, private = keys
    doc = json.loads(json.dumps(REGISTRY))
    change(doc)
    with pytest.raises(ConfigError, match=match) as err:
        read_coalition(_signed(doc, private), "c.json", _agreement(), reg)
    assert err.value.fix


def _coalition(keys):
    reg, private = keys
    return read_coalition(_signed(REGISTRY, private), "c.json", _agreement(), reg)


def test_coverage_is_credited_and_gaps_shown(keys) -> None:
    cov = _coverage(cloud=0.1)
    doc = CoverageMaps(spacing_km=1.5, days=1).build(cov, _agreement(), DAY, _coalition(keys))
    co = doc["coalition"]
    got = {(c["sector"], c["contributor"], c["asset"], c["channel"]) for c in co["credits"]}
    assert ("east", "FR", "fr-uav", "drone") in got
    assert ("west", "US", "us-net", "sensors") in got
    assert ("west", "US", "us-sat", "satellite") in got and ("east", "US", "us-sat",
                                                             "satellite") in got
    assert all(0 < c["share"] <= 1 for c in co["credits"])
    gaps = {g["sector"]: g for g in co["gaps"]}
    assert "drone" in gaps["west"]["uncovered"] and "sensors" not in gaps["west"]["uncovered"]
    # a platform no asset flies is credited to no one, not hidden
    cov.patrol_platforms = ["XX-9"]
    doc = CoverageMaps(spacing_km=1.5, days=1).build(cov, _agreement(), DAY, _coalition(keys))
    drone = [c for c in doc["coalition"]["credits"] if c["channel"] == "drone"]
    assert drone and all(c["contributor"] == "" and c["asset"] == "XX-9" for c in drone)
    assert "drone" in {g["sector"]: g for g in doc["coalition"]["gaps"]}["east"]["uncovered"]


def test_bulletin_credits_contributions_in_the_pdf(keys, built_cycle: Path) -> None:
    from pypdf import PdfReader
    from weasyprint import HTML

    base = json.loads((built_cycle / "bulletin-2026-05-31-restricted.json").read_text())

    def minimal_context(day: object, coalition: dict) -> dict:
        # the built-in bulletin's context, as of the hand-made day, with this coalition
        return {**base, "report_date": DAY.isoformat(), "coalition": coalition}

    doc = CoverageMaps(spacing_km=1.5, days=1).build(_coverage(cloud=0.1), _agreement(), DAY,
                                                     _coalition(keys))
    ctx = minimal_context(DAY, doc["coalition"])
    for lang, head in (("en", "Contributions and gaps"), ("fr", "Contributions et lacunes"),
                       ("uk", "Внески та прогалини"), ("ru", "Вклады и пробелы")):
        html = render_html(ctx, lang)
        text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(
            HTML(string=html).write_pdf())).pages).split())
        assert head in text, lang
        for name in ("France", "United States", "fr-uav", "us-net", "us-sat"):
            assert name in text, (lang, name)
    ctx = minimal_context(DAY, {"refused": "c.json: bad signature with key mission/1"})
    html = render_html(ctx, "en")
    assert "coalition-refused" in html and "bad signature with key mission/1" in html


def test_liaison_sees_their_party_only(keys) -> None:
    doc = CoverageMaps(spacing_km=1.5, days=1).build(_coverage(cloud=0.1), _agreement(), DAY,
                                                     _coalition(keys))["coalition"]
    fr = party_view(doc, Principal("fr-liaison", Role.LIAISON, "FR"))
    assert [c["id"] for c in fr["registry"]["contributors"]] == ["FR"]
    assert fr["credits"] and {c["contributor"] for c in fr["credits"]} == {"FR"}
    assert "gaps" not in fr and "undeclared" not in fr
    nobody = party_view(doc, Principal("x", Role.LIAISON, "Side B liaison office"))
    assert nobody["registry"]["contributors"] == [] and nobody["credits"] == []
    assert party_view(doc, Principal("c", Role.COALITION)) == doc


def test_the_builtin_scenario_signs_the_documented_registry(scenario) -> None:
    """The built-in scenario's registry is docs/examples/coalition.yaml, signed by the
    mission key its key registry holds; it loads as the cycle loads it."""
    from trucewatch.agreement.loader import load_agreement
    from trucewatch.demo.builtin import COALITION, MISSION_KEY_ID

    path = Path(__file__).resolve().parents[1] / "docs" / "examples" / "coalition.yaml"
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == COALITION
    assert scenario.coalition is not None and scenario.coalition.exists()
    keys = KeyRegistry.load(scenario.keys)
    c = load_coalition(scenario.coalition, load_agreement(scenario.agreement), keys)
    assert c.signed_by == MISSION_KEY_ID
    assert [x.id for x in c.contributors] == ["US", "FR", "GB", "EU", "OSCE"]


def test_the_documented_example_fits_the_builtin_scenario(scenario) -> None:
    from trucewatch.agreement.coalition import parse_coalition
    from trucewatch.agreement.loader import load_agreement

    path = Path(__file__).resolve().parents[1] / "docs" / "examples" / "coalition.yaml"
    ag = load_agreement(scenario.agreement)
    keys = KeyRegistry.load(scenario.keys)
    c = parse_coalition(path.read_text(), path.name, [s.id for s in ag.sectors],
                        {r.source for r in keys.records()})
    assert {x.id for x in c.contributors} >= {"US", "FR", "GB", "EU", "OSCE"}
