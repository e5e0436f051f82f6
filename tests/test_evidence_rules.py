"""What each kind of evidence proves in each kind of zone (evidence_rules), disengagement
areas as a zone kind of their own, and entry into force judged on the observation window
(issue 10, items 2 and 4)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml

from trucewatch.adjudication.rules import FLAGS, RULE_CATEGORY, RuleBook
from trucewatch.agreement import check_agreement, load_agreement
from trucewatch.agreement.zones import ZoneIndex
from trucewatch.demo import ScenarioFiles
from trucewatch.fusion.incidents import EVIDENCE_SCHEMA, IncidentFuser
from trucewatch.model.agreement import DEFAULT_EVIDENCE_RULES, Agreement, ZoneKind
from trucewatch.model.serialization import from_json, to_json

AFTER = datetime(2026, 5, 30, 4, 0, tzinfo=UTC).timestamp()
H = 3600.0


def obs(i: str, kind: str, lat: float, lon: float, t: float, *, klass: str = "explosion",
        sigma: float = 30.0, source_id: str = "", t_start: float | None = None,
        weapon: str | None = None, unconfirmed: bool = False) -> dict[str, Any]:
    return {"id": i, "source_kind": kind, "source_id": source_id or kind,
            "t_start": t if t_start is None else t_start, "t_end": t, "latitude": lat,
            "longitude": lon, "sigma_m": sigma, "klass": klass, "reliability": 1.0,
            "weapon_class": weapon, "count": 1, "unconfirmed": unconfirmed}


def fire(lat: float, lon: float, t: float = AFTER, **kw: Any) -> dict[str, Any]:
    return obs("f1", "satellite_fire", lat, lon, t, klass="fire", sigma=190, **kw)


def boom(lat: float, lon: float, t: float = AFTER) -> dict[str, Any]:
    return obs("e1", "sensor_network", lat, lon, t)


def gun(lat: float, lon: float, weapon: str, t: float = AFTER) -> dict[str, Any]:
    return obs("w1", "drone", lat, lon, t, klass="heavy_weapon", weapon=weapon,
               source_id="drone:A", sigma=50)


def _write(scenario: ScenarioFiles, name: str, **changes: Any) -> Path:
    doc = yaml.safe_load(scenario.agreement.read_text())
    doc.update(changes)
    path = scenario.root / f"agreement-evidence-{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _point(agreement: Agreement, want: str, avoid: tuple[str, ...] = ()) -> tuple[float, float]:
    """A point whose zones include ``want`` and none of ``avoid`` (grid search)."""
    lats, lons = np.meshgrid(np.arange(46.8, 49.8, 0.02), np.arange(34.5, 39.5, 0.02))
    lat, lon = lats.ravel(), lons.ravel()
    for k, zs in enumerate(ZoneIndex(agreement).zones_of(lon, lat)):
        if any(z.startswith(want) for z in zs) and not any(
                z.startswith(a) for z in zs for a in avoid):
            return float(lat[k]), float(lon[k])
    raise AssertionError(f"no point in {want}")


@pytest.fixture(scope="module")
def plain(scenario: ScenarioFiles) -> Agreement:
    return load_agreement(scenario.agreement)


@pytest.fixture(scope="module")
def places(plain: Agreement) -> dict[str, tuple[float, float]]:
    return {"buffer": _point(plain, "buffer:left"),
            "artillery": _point(plain, "withdrawal:artillery:left", ("buffer:", "site:")),
            "mlrs_only": _point(plain, "withdrawal:mlrs:right",
                                ("buffer:", "withdrawal:artillery", "site:")),
            "far_art": _point(plain, "withdrawal:artillery:right", ("buffer:", "site:"))}


@pytest.fixture(scope="module")
def with_areas(scenario: ScenarioFiles, places: dict[str, tuple[float, float]]) -> Agreement:
    """The scenario's agreement plus two disengagement areas beyond the buffer: one as the
    replay writes it (a protected_sites entry of kind disengagement_area), one from the
    top-level list as a GeoJSON polygon."""
    doc = yaml.safe_load(scenario.agreement.read_text())
    lat, lon = places["artillery"]
    lat2, lon2 = places["far_art"]
    d = 0.01
    poly = {"type": "Polygon", "coordinates": [[[lon2 - d, lat2 - d], [lon2 + d, lat2 - d],
                                                [lon2 + d, lat2 + d], [lon2 - d, lat2 + d],
                                                [lon2 - d, lat2 - d]]]}
    (scenario.root / "dis-poly.geojson").write_text(json.dumps(poly))
    path = _write(scenario, "areas", protected_sites=[
        *doc["protected_sites"],
        {"id": "dis-a", "name": "Area A disengagement area", "kind": "disengagement_area",
         "lat": lat, "lon": lon, "radius_m": 2000}],
        disengagement_areas=[{"id": "dis-b", "name": "Area B", "geojson": "dis-poly.geojson"}])
    return load_agreement(path)


def _judge(agreement: Agreement, rows: list[dict[str, Any]], extra: dict[str, Any] | None = None,
           drop_seen: bool = False, **book: Any) -> dict[str, Any]:
    inc, _ = IncidentFuser().fuse(pl.DataFrame(rows, schema=EVIDENCE_SCHEMA))
    if drop_seen:  # an incident table from before fusion gave the observation window
        inc = inc.drop("seen_start", "seen_end", strict=False)
    if extra:
        inc = inc.with_columns(**{k: pl.lit(v, pl.Float64) for k, v in extra.items()})
    book.setdefault("min_satellite_cluster", 1)  # these tests are about zones, not clusters
    rb = RuleBook(agreement, **book)
    ev = rb.describe(rb.evaluate(inc))
    assert ev.height == 1
    row = ev.row(0, named=True)
    return row | {"explanation": rb.explain(row)}


def test_defaults_per_zone_and_class(plain: Agreement,
                                     places: dict[str, tuple[float, float]]) -> None:
    buf, art, mlrs = places["buffer"], places["artillery"], places["mlrs_only"]
    hub = next(s for s in plain.protected_sites if s.kind == "mnf_hub")
    cases = [
        (fire(*buf), "fire_in_buffer_zone", None, "evidence_rules.buffer.fire = violation"),
        (boom(*buf), "explosion_in_buffer_zone", None,
         "evidence_rules.buffer.explosion = violation"),
        (gun(*buf, "tank"), "heavy_weapon_in_buffer_zone", None,
         "evidence_rules.buffer.heavy_weapon = violation"),
        (fire(*art), None, "not_proof_in_zone",
         "a fire alone proves nothing in a withdrawal zone "
         "(evidence_rules.withdrawal.fire = none)"),
        (boom(*art), "explosion_in_withdrawal_zone", None,
         "evidence_rules.withdrawal.explosion = violation"),
        (gun(*art, "artillery"), "heavy_weapon_in_withdrawal_zone", None,
         "evidence_rules.withdrawal.heavy_weapon = violation"),
        # a heavy weapon only in another class's zone: allowed there, no flag
        (gun(*mlrs, "artillery"), None, None, "no violation: "),
        (fire(hub.lat, hub.lon), "strike_on_protected_site", None,
         "evidence_rules.protected_site.fire = violation"),
    ]
    for row, rule, flag, words in cases:
        r = _judge(plain, [row])
        assert (r["rule"], r["flag"]) == (rule, flag), r["explanation"]
        assert words in r["explanation"], r["explanation"]
        if rule:
            assert "alternatives considered: before entry into force" in r["explanation"]
            assert rule in RULE_CATEGORY
    assert {"not_proof_in_zone", "same_day_ambiguous"} <= set(FLAGS)


def test_disengagement_area_is_its_own_zone_kind(with_areas: Agreement,
                                                 places: dict[str, tuple[float, float]]
                                                 ) -> None:
    zones = {z.id: z for z in with_areas.zones}
    assert zones["disengagement:dis-a"].kind == ZoneKind.DISENGAGEMENT
    assert ZoneKind("disengagement") is ZoneKind.DISENGAGEMENT
    assert zones["disengagement:dis-b"].kind == ZoneKind.DISENGAGEMENT
    assert zones["disengagement:dis-a"].area_km2 == pytest.approx(np.pi * 4, rel=0.02)
    assert "site:dis-a" not in zones
    assert [s.id for s in with_areas.protected_sites] == ["znpp", "hub-dnipro"]
    assert {d.id for d in with_areas.disengagement_areas} == {"dis-a", "dis-b"}
    # the same places, without the areas, only prove explosions (withdrawal zone)
    for name, area in (("artillery", "Area A disengagement area"), ("far_art", "Area B")):
        p = places[name]
        for row, rule in ((fire(*p), "fire_in_disengagement_area"),
                          (boom(*p), "explosion_in_disengagement_area"),
                          (gun(*p, "mlrs"), "heavy_weapon_in_disengagement_area")):
            r = _judge(with_areas, [row])
            assert r["zone_group"] == "disengagement"
            assert any(z.startswith("disengagement:") for z in r["zone_ids"])
            assert r["rule"] == rule, r["explanation"]
            assert area in r["explanation"]
            cls = rule.split("_in_")[0]
            assert f"evidence_rules.disengagement.{cls} = violation" in r["explanation"]
    # a serialization round trip keeps areas and zones
    back = from_json(to_json(with_areas), Agreement)
    assert [d.id for d in back.disengagement_areas] == ["dis-a", "dis-b"]
    assert back.disengagement_areas[1].geometry is not None
    assert back.zone("disengagement:dis-a").kind == ZoneKind.DISENGAGEMENT


def test_override_changes_the_verdict(scenario: ScenarioFiles,
                                      places: dict[str, tuple[float, float]]) -> None:
    over = load_agreement(_write(scenario, "override", evidence_rules={
        "withdrawal": {"fire": "violation", "explosion": "none"},
        "buffer": {"explosion": "none"}}))
    assert over.evidence_rules == {"withdrawal": {"fire": "violation", "explosion": "none"},
                                   "buffer": {"explosion": "none"}}
    assert over.evidence_rule("buffer", "fire") == DEFAULT_EVIDENCE_RULES["buffer"]["fire"]
    buf, art = places["buffer"], places["artillery"]
    r = _judge(over, [fire(*art)])
    assert r["rule"] == "fire_in_withdrawal_zone", r["explanation"]
    assert "evidence_rules.withdrawal.fire = violation" in r["explanation"]
    r = _judge(over, [boom(*art)])
    assert (r["rule"], r["flag"]) == (None, "not_proof_in_zone")
    assert "evidence_rules.withdrawal.explosion = none" in r["explanation"]
    # the buffer lies inside the withdrawal zones: both say none, so nothing
    r = _judge(over, [boom(*buf)])
    assert (r["rule"], r["flag"]) == (None, "not_proof_in_zone")
    assert "an explosion alone proves nothing in a buffer zone" in r["explanation"]
    assert "evidence_rules.buffer.explosion = none" in r["explanation"]
    # a fire in the buffer is still a violation
    assert _judge(over, [fire(*buf)])["rule"] == "fire_in_buffer_zone"
    # ... unless the buffer says none too, when the withdrawal rule decides
    both = load_agreement(_write(scenario, "override2", evidence_rules={
        "buffer": {"fire": "none"}, "withdrawal": {"fire": "violation"}}))
    assert _judge(both, [fire(*buf)])["rule"] == "fire_in_withdrawal_zone"


def test_bad_evidence_rules_refused(scenario: ScenarioFiles) -> None:
    import subprocess
    import sys

    path = _write(scenario, "bad", evidence_rules={
        "corridor": {"fire": "none"}, "buffer": {"drone": "violation", "fire": "maybe"},
        "withdrawal": {"explosion": None}, "disengagement": "violation"})
    report = check_agreement(path)
    text = " | ".join(report.errors)
    assert not report.ok
    assert "evidence_rules: unknown zone kind 'corridor'" in text
    assert "evidence_rules.buffer: unknown evidence class 'drone'" in text
    assert "evidence_rules.buffer.fire: unknown verdict 'maybe'; use one of violation, none" in text
    assert "evidence_rules.withdrawal.explosion: unknown verdict None" in text
    assert "evidence_rules.disengagement: expected a mapping" in text
    assert len(report.errors) == 5
    proc = subprocess.run([sys.executable, "-m", "trucewatch", "agreement", "check", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "unknown zone kind 'corridor'" in proc.stderr
    bad_area = _write(scenario, "bad-area", disengagement_areas=[
        {"id": "x", "lat": 48.0, "lon": 37.0, "radius_m": -1}, {"id": "y", "lat": 48.0}])
    text = " | ".join(check_agreement(bad_area).errors)
    assert "disengagement_areas[0] (x): radius_m must be > 0" in text
    assert "disengagement_areas[1] (y): needs lat, lon, radius_m or geojson" in text


def test_entry_into_force_three_ways(scenario: ScenarioFiles,
                                     places: dict[str, tuple[float, float]]) -> None:
    a = load_agreement(_write(scenario, "eif", entry_into_force="2026-04-20T21:01:00Z"))
    t0 = a.entry_into_force.timestamp()
    day = datetime(2026, 4, 20, tzinfo=UTC).timestamp()
    buf, art = places["buffer"], places["artillery"]
    # the observation window straddles entry into force
    r = _judge(a, [fire(*buf, t=t0 + H)], {"seen_start": day, "seen_end": day + 24 * H})
    assert (r["rule"], r["flag"]) == (None, "same_day_ambiguous")
    assert ("seen between 2026-04-20 00:00Z and 24:00Z, entry into force 21:01Z: it cannot "
            "be told whether the fire was before or after") in r["explanation"]
    # wholly before; wholly after (the same incident times, only the window moves)
    r = _judge(a, [fire(*buf, t=t0 + H)], {"seen_start": day, "seen_end": t0 - 60})
    assert r["flag"] == "before_entry_into_force"
    r = _judge(a, [fire(*buf, t=t0 + H)], {"seen_start": t0, "seen_end": t0 + H})
    assert (r["rule"], r["flag"]) == ("fire_in_buffer_zone", None)
    # without seen_* columns: the incident's own window (a fire's look-back opens it)
    r = _judge(a, [fire(*buf, t=t0 + 6 * H, t_start=t0 - 6 * H)], drop_seen=True)
    assert r["flag"] == "same_day_ambiguous"
    r = _judge(a, [fire(*buf, t=t0 + 18 * H, t_start=t0 + 6 * H)], drop_seen=True)
    assert r["rule"] == "fire_in_buffer_zone"
    r = _judge(a, [boom(*buf, t=t0 - 60)])
    assert r["flag"] == "before_entry_into_force"
    # a straddling fire that would prove nothing anyway is not ambiguous
    r = _judge(a, [fire(*art, t=t0 + H)], {"seen_start": day, "seen_end": day + 24 * H})
    assert r["flag"] == "not_proof_in_zone"
    # ambiguous incidents in a zone are stored, without a violation
    inc, _ = IncidentFuser().fuse(pl.DataFrame(
        [fire(*buf, t=t0 + H), boom(*places["mlrs_only"], t=t0 + 2 * H)],
        schema=EVIDENCE_SCHEMA))
    inc = inc.with_columns(seen_start=pl.lit(day), seen_end=pl.lit(day + 24 * H))
    book = RuleBook(a, min_satellite_cluster=1)
    incidents, violations = book.to_domain(book.evaluate(inc))
    assert len(incidents) == 2 and not violations
    assert all(i.attributes["flag"] == "same_day_ambiguous" for i in incidents)
    # the grace period is judged on seen_start too
    g = load_agreement(_write(scenario, "grace", entry_into_force="2026-04-20T21:01:00Z",
                              grace_period_hours=12))
    r = _judge(g, [boom(*buf, t=t0 + 13 * H)], {"seen_start": t0 + 11 * H,
                                                  "seen_end": t0 + 13 * H})
    assert r["flag"] == "grace_period"
    r = _judge(g, [boom(*buf, t=t0 + 13 * H)], {"seen_start": t0 + 12.5 * H,
                                                  "seen_end": t0 + 13 * H})
    assert r["rule"] == "explosion_in_buffer_zone"


def test_classifier_reason_in_explanation(plain: Agreement,
                                          places: dict[str, tuple[float, float]]) -> None:
    buf = places["buffer"]
    why = "war-related: 9 in the cell against 0.2 expected; not agricultural because no harvest"
    r = _judge(plain, [fire(*buf)], fire_reasons={"f1": why})
    assert r["explanation"].endswith(f"; satellite classifier: {why}")
    frame = pl.DataFrame({"id": ["f0", "f1"], "reason": ["other", why]})
    assert _judge(plain, [fire(*buf)], fire_reasons=frame)["explanation"].endswith(why)
    plain_fire = _judge(plain, [fire(*buf)])["explanation"]
    assert "; satellite classifier:" not in plain_fire
    assert "agricultural, wildfire or industrial burning: ruled out by the satellite" in plain_fire
    assert "satellite classifier" not in _judge(plain, [boom(*buf)],
                                                fire_reasons={"f1": why})["explanation"]


def test_a_satellite_only_candidate_needs_a_cluster(plain: Agreement,
                                                    places: dict[str, tuple[float, float]]
                                                    ) -> None:
    """One confirmed pixel (a carry-over) accuses no one; a cluster of five does."""
    lat, lon = places["buffer"]
    one = _judge(plain, [fire(lat, lon)], min_satellite_cluster=5)
    assert (one["rule"], one["flag"]) == (None, "insufficient_evidence")
    assert "needs a cluster of 5" in one["explanation"]
    five = [dict(fire(lat + 0.001 * k, lon), id=f"f{k}") for k in range(5)]
    assert _judge(plain, five, min_satellite_cluster=5)["rule"] == "fire_in_buffer_zone"
