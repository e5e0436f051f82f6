"""Multi-source fusion and the agreement's rules (issue 4)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml

from trucewatch.adjudication.rules import RuleBook
from trucewatch.agreement import load_agreement
from trucewatch.agreement.zones import ZoneIndex
from trucewatch.demo import ScenarioFiles
from trucewatch.fusion.incidents import EVIDENCE_SCHEMA, IncidentFuser
from trucewatch.model.agreement import Agreement

T0 = datetime(2026, 5, 30, 4, 0, tzinfo=UTC).timestamp()


def obs(i: str, kind: str, lat: float, lon: float, t: float, *, sigma: float = 50.0,
        klass: str = "explosion", source_id: str = "", t_start: float | None = None,
        rel: float = 1.0, weapon: str | None = None, unconfirmed: bool = False
        ) -> dict[str, Any]:
    return {"id": i, "source_kind": kind, "source_id": source_id or kind,
            "t_start": t if t_start is None else t_start, "t_end": t, "latitude": lat,
            "longitude": lon, "sigma_m": sigma, "klass": klass, "reliability": rel,
            "weapon_class": weapon, "count": 1, "unconfirmed": unconfirmed}


def table(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=EVIDENCE_SCHEMA)


def groups(ev: pl.DataFrame, fuser: IncidentFuser | None = None) -> list[set[str]]:
    _, member = (fuser or IncidentFuser()).fuse(ev)
    return sorted((set(g["id"].to_list()) for _, g in member.group_by("incident")),
                  key=lambda s: sorted(s))


def test_sources_of_one_event_fuse_and_confidence_rises() -> None:
    lat, lon = 48.2, 37.9
    ev = table([
        obs("s1", "sensor_network", lat, lon, T0, sigma=30),
        obs("d1", "drone", lat + 0.0004, lon, T0 + 180, sigma=60, source_id="drone:UA-07",
            rel=0.85),
        obs("d2", "drone", lat + 0.0003, lon + 0.0002, T0 + 240, sigma=60,
            source_id="drone:UA-07", rel=0.85),  # same platform: a duplicate, not a source
        obs("f1", "satellite_fire", lat + 0.002, lon, T0 + 6 * 3600, sigma=190, klass="fire",
            t_start=T0 + 6 * 3600 - 12 * 3600),
        obs("far", "sensor_network", lat + 0.2, lon, T0, sigma=30),
    ])
    inc, _ = IncidentFuser().fuse(ev)
    big = inc.filter(pl.col("n_obs") == 4).row(0, named=True)
    assert big["n_sources"] == 3 and big["duplicates_merged"] == 1
    assert big["klass"] == "explosion"
    assert set(big["source_kinds"]) == {"sensor_network", "drone", "satellite_fire"}
    single = inc.filter(pl.col("n_obs") == 1).row(0, named=True)
    # confidence rises with independent sources: 1 - (1-.8)(1-.9*.85)(1-.6)
    assert big["confidence"] == pytest.approx(1 - 0.2 * (1 - 0.9 * 0.85) * 0.4)
    assert single["confidence"] == pytest.approx(0.8)
    # the fused location is pulled towards the most precise observation
    assert abs(big["latitude"] - lat) < 0.0003
    # instants a few minutes apart have no common window: the span of the sightings
    assert (big["t_start"], big["t_end"]) == (T0, T0 + 6 * 3600)
    # a fire seen later whose window covers the explosion: their common window
    pair, _ = IncidentFuser().fuse(ev.filter(pl.col("id").is_in(["s1", "f1"])))
    assert (pair["t_start"][0], pair["t_end"][0]) == (T0, T0)


def test_gates_space_time_and_family() -> None:
    lat, lon = 48.2, 37.9
    km = 1 / 111.32
    ev = table([
        obs("a", "sensor_network", lat, lon, T0, sigma=30),
        obs("b", "sensor_network", lat + 0.8 * km, lon, T0 + 60, sigma=30),  # 0.8 km: joins
        obs("c", "sensor_network", lat + 3.0 * km, lon, T0 + 300, sigma=30),  # 3 km: apart
        obs("d", "sensor_network", lat, lon, T0 + 3 * 3600, sigma=30),  # 3 h later: apart
        obs("e", "drone", lat, lon, T0 + 60, klass="heavy_weapon", source_id="drone:X"),
    ])
    assert groups(ev) == [{"a", "b"}, {"c"}, {"d"}, {"e"}]
    # a wider incident scale joins c; a longer slack joins d
    assert {"a", "b", "c"} in groups(ev, IncidentFuser(incident_scale_m=3000))
    # the network's barrage artifact: another network event 3 km away seconds later
    art = table([obs("a", "sensor_network", lat, lon, T0, sigma=30),
                 obs("g", "sensor_network", lat + 3 * km, lon, T0 + 20, sigma=30),
                 obs("h", "drone", lat - 3 * km, lon, T0 + 20, sigma=30, source_id="drone:Z")])
    assert groups(art) == [{"a", "g"}, {"h"}]
    assert groups(art, IncidentFuser(barrage_merge_m=0)) == [{"a"}, {"g"}, {"h"}]
    assert {"a", "b", "d"} in groups(ev, IncidentFuser(time_slack_s=4 * 3600))
    # uncertainty widens the gate: a 1.5 km sigma report 3 km away joins
    wide = table([obs("a", "sensor_network", lat, lon, T0, sigma=30),
                  obs("w", "drone", lat + 3 * km, lon, T0, sigma=1500, source_id="drone:Y")])
    assert groups(wide) == [{"a", "w"}]


def test_fusion_is_order_independent_and_complete() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    rows = [obs(f"o{k}", str(rng.choice(["sensor_network", "drone", "satellite_fire"])),
                48 + rng.uniform(0, 1), 37 + rng.uniform(0, 1), T0 + rng.uniform(0, 86400),
                sigma=float(rng.uniform(20, 400)), source_id=f"p{k % 3}")
            for k in range(n)]
    a = groups(table(rows))
    b = groups(table(rows[::-1]))
    assert a == b
    assert sum(len(g) for g in a) == n


# ------------------------------------------------------------------ rules
@pytest.fixture(scope="module")
def agreement(scenario: ScenarioFiles) -> Agreement:
    doc = yaml.safe_load(scenario.agreement.read_text())
    doc["grace_period_hours"] = 24
    doc["live_fire_training"] = [{
        "id": "range-1", "name": "Notified range", "lat": 48.45, "lon": 35.3,
        "radius_m": 4000, "windows": [{"start": "2026-05-30T06:00:00Z",
                                       "end": "2026-05-30T12:00:00Z"}]}]
    path = scenario.root / "agreement-rules-test.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_agreement(path)


def _point(agreement: Agreement, want: str, avoid: tuple[str, ...] = ()) -> tuple[float, float]:
    """A point whose zones include ``want`` and none of ``avoid`` (grid search)."""
    lats, lons = np.meshgrid(np.arange(46.8, 49.8, 0.02), np.arange(34.5, 39.5, 0.02))
    lat, lon = lats.ravel(), lons.ravel()
    zones = ZoneIndex(agreement).zones_of(lon, lat)
    for k, zs in enumerate(zones):
        if (any(z.startswith(want) for z in zs) if want else not zs) and not any(
                z.startswith(a) for z in zs for a in avoid):
            return float(lat[k]), float(lon[k])
    raise AssertionError(f"no point in {want}")


def _rule_of(agreement: Agreement, rows: list[dict[str, Any]]) -> dict[str, Any]:
    inc, _ = IncidentFuser().fuse(table(rows))
    book = RuleBook(agreement, min_satellite_cluster=1)  # zone rules here, not cluster size
    ev = book.describe(book.evaluate(inc))
    assert ev.height == 1
    row = ev.row(0, named=True)
    return row | {"explanation": book.explain(row)}


AFTER = datetime(2026, 5, 30, 4, 0, tzinfo=UTC).timestamp()


def test_every_rule(agreement: Agreement) -> None:
    buf = _point(agreement, "buffer:left")
    art = _point(agreement, "withdrawal:artillery:left", ("buffer:",))
    mlrs = _point(agreement, "withdrawal:mlrs:right", ("buffer:", "withdrawal:artillery"))
    out = _point(agreement, "", ())
    hub = next(s for s in agreement.protected_sites if s.kind == "mnf_hub")
    net = {"sigma": 30.0}
    cases: list[tuple[list[dict[str, Any]], str | None, str | None]] = [
        ([obs("x", "sensor_network", *buf, AFTER, **net)], "explosion_in_buffer_zone", None),
        ([obs("x", "sensor_network", *art, AFTER, **net)], "explosion_in_withdrawal_zone",
         None),
        ([obs("x", "satellite_fire", *buf, AFTER, klass="fire", sigma=190)],
         "fire_in_buffer_zone", None),
        # a withdrawal zone restricts weapons, not fires (evidence_rules.withdrawal.fire)
        ([obs("x", "satellite_fire", *art, AFTER, klass="fire", sigma=190)],
         None, "not_proof_in_zone"),
        ([obs("x", "sensor_network", hub.lat, hub.lon, AFTER, **net)],
         "strike_on_protected_site", None),
        ([obs("x", "drone", *buf, AFTER, klass="heavy_weapon", weapon="tank",
              source_id="drone:A")], "heavy_weapon_in_buffer_zone", None),
        ([obs("x", "drone", *art, AFTER, klass="heavy_weapon", weapon="artillery",
              source_id="drone:A")], "heavy_weapon_in_withdrawal_zone", None),
        # artillery is allowed between 30 and 50 km; MLRS is not
        ([obs("x", "drone", *mlrs, AFTER, klass="heavy_weapon", weapon="artillery",
              source_id="drone:A")], None, None),
        ([obs("x", "drone", *mlrs, AFTER, klass="heavy_weapon", weapon="mlrs",
              source_id="drone:A")], "heavy_weapon_in_withdrawal_zone", None),
        ([obs("x", "drone", *art, AFTER, klass="heavy_weapon", weapon="drone-launcher",
              source_id="drone:A")], None, "weapon_class_not_covered"),
        ([obs("x", "drone", *buf, AFTER, klass="vehicle_movement", source_id="drone:A")],
         None, None),
        ([obs("x", "sensor_network", *out, AFTER, **net)], None, None),
        # time: before entry into force, inside the 24 h grace period
        ([obs("x", "sensor_network", *buf,
              agreement.entry_into_force.timestamp() - 3600, **net)],
         None, "before_entry_into_force"),
        ([obs("x", "sensor_network", *buf,
              agreement.entry_into_force.timestamp() + 3600, **net)], None, "grace_period"),
        # notified training, in and out of its window
        ([obs("x", "sensor_network", 48.45, 35.3, AFTER + 3 * 3600, **net)], None,
         "live_fire_training"),
        # evidence: a few unconfirmed excess fires; a weak single source
        ([obs(f"f{k}", "satellite_fire", buf[0] + k * 1e-4, buf[1], AFTER, klass="fire",
              sigma=190, unconfirmed=True) for k in range(3)], None, "insufficient_evidence"),
        ([obs("x", "sensor_network", *buf, AFTER, rel=0.5, **net)], None,
         "insufficient_evidence"),
        # ... which a second, independent source lifts
        ([obs("x", "sensor_network", *buf, AFTER, rel=0.5, **net),
          obs("y", "drone", buf[0], buf[1], AFTER + 120, source_id="drone:A", rel=0.8)],
         "explosion_in_buffer_zone", None),
    ]
    for rows, rule, flag in cases:
        r = _rule_of(agreement, rows)
        assert (r["rule"], r["flag"]) == (rule, flag), (rows[0], r["explanation"])
        assert r["explanation"].startswith(rule or "no violation")
    # outside the training window the same explosion is judged by the zones it is in
    r = _rule_of(agreement, [obs("x", "sensor_network", 48.45, 35.3, AFTER + 12 * 3600, **net)])
    assert r["flag"] != "live_fire_training"
    hub_r = _rule_of(agreement, [obs("x", "sensor_network", hub.lat, hub.lon, AFTER, **net)])
    assert hub.name in hub_r["explanation"] and "mnf_hub" in hub_r["explanation"]


def test_rulebook_domain_objects_carry_provenance(agreement: Agreement) -> None:
    buf = _point(agreement, "buffer:right")
    rows = [obs("s1", "sensor_network", *buf, AFTER, sigma=30),
            obs("d1", "drone", *buf, AFTER + 60, source_id="drone:UA-07", rel=0.9)]
    inc, _ = IncidentFuser().fuse(table(rows))
    book = RuleBook(agreement, min_satellite_cluster=1)  # zone rules here, not cluster size
    incidents, violations = book.to_domain(book.evaluate(inc))
    assert len(incidents) == len(violations) == 1
    i, v = incidents[0], violations[0]
    assert i.observation_ids == ["d1", "s1"] and i.n_sources == 2
    assert v.incident_id == i.id and v.rule == "explosion_in_buffer_zone"
    assert "2 independent source(s)" in v.explanation and "drone UA-07" in v.explanation


def test_training_range_in_buffer_is_refused(scenario: ScenarioFiles) -> None:
    from trucewatch.errors import AgreementError

    doc = yaml.safe_load(scenario.agreement.read_text())
    lat, lon = _point(load_agreement(scenario.agreement), "buffer:left")
    for name, windows, message in (
            ("reversed", [{"start": "2026-05-30T06:00:00Z", "end": "2026-05-30T05:00:00Z"}],
             "ends before it starts"),
            ("in-buffer", [{"start": "2026-05-30T06:00:00Z", "end": "2026-05-30T07:00:00Z"}],
             "overlaps buffer zone buffer:left")):
        doc["live_fire_training"] = [{"id": name, "lat": lat, "lon": lon, "radius_m": 1000,
                                      "windows": windows}]
        path = scenario.root / f"agreement-training-{name}.yaml"
        path.write_text(yaml.safe_dump(doc))
        with pytest.raises(AgreementError) as e:
            load_agreement(path)
        assert message in " ".join(e.value.problems)
