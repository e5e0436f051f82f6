"""Bad input on the ground network: a drifting clock, a noisy station, a duplicated
stream, half the network lost mid-barrage. Each is laid over an independent family
scenario (scenario.families.perturb) and must give a named flag, a quarantine entry
with its reason where detections are set aside, and a defined result."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from lab.families import (
    FamilyData,
    Perturbation,
    Perturbed,
    family,
    generate,
    perturb,
)
from lab.scoring import Score, score
from trucewatch.errors import ConfigError
from trucewatch.ingest.base import Batch
from trucewatch.ingest.sensors import parse_detections
from trucewatch.sensors.association import ExplosionAssociator
from trucewatch.sensors.events import NO_HEALTH_CHECK, SensorResult, locate_files
from trucewatch.sensors.health import HealthCheck, StationProblem

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _batch(data: FamilyData) -> Batch:
    raw = data.detections.with_columns(
        pl.col("time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")).write_csv().encode()
    return parse_detections(raw, "detections.csv", data.stations, now=NOW)


def _locate(data: FamilyData, health: HealthCheck | None = None) -> SensorResult:
    a = ExplosionAssociator(propagation=data.scenario.propagation())
    return locate_files(data.stations, _batch(data), a, health=health)


def _score(data: FamilyData, r: SensorResult) -> Score:
    return score(data.truth, data.detections.select("detection_id", "station"),
                 r.assignments_all())


@pytest.fixture(scope="module")
def base() -> FamilyData:
    return generate(family("grid-uniform", "busy", seed=1, hours=1.5))


@pytest.fixture(scope="module")
def clean(base: FamilyData) -> SensorResult:
    return _locate(base)


def test_a_healthy_network_raises_no_quarantining_flag(clean: SensorResult) -> None:
    assert clean.health is not None
    assert not [f for f in clean.health.flags if f.quarantines], clean.health.lines()
    assert not clean.health.of(StationProblem.NOISY), clean.health.lines()
    assert not [q for q in clean.batch.quarantine if "health check" in q.reason]


def test_a_drifting_clock_is_found_and_its_detections_quarantined(base: FamilyData,
                                                                  clean: SensorResult) -> None:
    p = perturb(base, Perturbation(drift_stations=1, drift_offset_s=2.0, drift_s_per_h=1.0))
    (sid,) = p.drifted
    r = _locate(p.data)
    assert r.health is not None
    clock = r.health.of(StationProblem.CLOCK)
    assert [f.station for f in clock] == [sid], r.health.lines()
    assert 1.5 < clock[0].value < 4.0  # the offset is estimated (2 s growing to 3.5 s)
    moved = [q for q in r.batch.quarantine if "clock off" in q.reason]
    assert moved and all(f"station {sid}" in q.reason for q in moved)
    assert all(f",{sid}," in q.raw for q in moved)  # the raw line is kept
    assert r.batch.records.height + len(r.batch.quarantine) == r.batch.n_rows
    assert any(f"Station {sid}: clock off" in line for line in r.health.lines())
    # the result is defined and no worse than associating the bad clock's detections
    plain = locate_files(p.data.stations, _batch(p.data),
                         ExplosionAssociator(propagation=p.data.scenario.propagation()),
                         health=NO_HEALTH_CHECK)
    assert plain.health is None
    assert _score(p.data, r).precision >= _score(p.data, plain).precision


@pytest.mark.parametrize("factor", [100.0, 400.0])
def test_a_noisy_station_is_flagged_and_kept_out(base: FamilyData, factor: float) -> None:
    p = perturb(base, Perturbation(noisy_stations=1, noisy_factor=factor))
    (sid,) = p.noisy
    r = _locate(p.data)
    assert r.health is not None
    noisy = r.health.of(StationProblem.NOISY)
    assert [f.station for f in noisy] == [sid], r.health.lines()
    assert noisy[0].value >= 25
    # a natural spread of noise (the generator's stations differ by a log-normal factor)
    # stays below the flag: the clean network raised none (test above)
    moved = [q for q in r.batch.quarantine if "noisy" in q.reason]
    if not noisy[0].quarantines:  # flagged, below the ratio that keeps it out
        assert not moved and noisy[0].value < HealthCheck().noisy_quarantine_ratio
        assert factor < 400
        return
    n_sent = p.data.detections.filter(pl.col("station") == sid).height
    of_it = [q for q in r.batch.quarantine if f",{sid}," in q.raw]
    assert len(of_it) == n_sent and len(moved) > 0.9 * n_sent  # the rest: near-duplicates
    assert sid not in r.batch.records["station"].to_list()
    # its silence afterwards is the quarantine's doing, not reported as an outage
    assert not [f for f in r.health.flags if f.station == sid and not f.quarantines]


def test_a_duplicated_stream_is_deduplicated_naming_the_original(base: FamilyData,
                                                                 clean: SensorResult) -> None:
    p = perturb(base, Perturbation(duplicate_stations=2, duplicate_jitter_s=0.01))
    det = p.data.detections
    copies = det.filter(pl.col("detection_id").str.starts_with("D"))
    b = _batch(p.data)
    reasons = {q.raw.split(",")[0]: q.reason for q in b.quarantine}
    kept = set(b.records["detection_id"].to_list())
    # each copy and its original: one is kept (the earlier line), the other names it
    orig = base.detections.filter(pl.col("station").is_in(p.duplicated)).sort("time")
    assert copies.height == orig.height > 20
    pairs = 0
    for o, c in zip(orig["detection_id"].to_list(),
                    copies.sort("detection_id")["detection_id"].to_list(), strict=True):
        assert (o in kept) != (c in kept), (o, c)
        gone, stays = (c, o) if o in kept else (o, c)
        if gone in reasons and f"detection {stays}" in reasons[gone]:
            pairs += 1
        assert reasons[gone].startswith(("near-duplicate of detection",
                                         "same station, phase and time"))
    assert pairs == copies.height
    # the defined result: what the network gives without the copies (the kept one of a
    # pair may be the copy, its time off by the jitter: locations agree to metres)
    r = locate_files(p.data.stations, b,
                     ExplosionAssociator(propagation=p.data.scenario.propagation()))
    e, c0 = r.association.events, clean.association.events
    assert e.height == c0.height and e["status"].equals(c0["status"])
    # the coverage sentences say whose stream came twice (before, only the entries did)
    assert r.health is not None
    said = [f.station for f in r.health.of(StationProblem.DUPLICATED)]
    assert said == sorted(p.duplicated), r.health.lines()
    assert all(any(f"Station {sid}: " in ln and "repeat earlier ones" in ln
                   for ln in r.health.lines()) for sid in p.duplicated)
    assert not clean.health or not clean.health.of(StationProblem.DUPLICATED)
    assert (e["time"] - c0["time"]).dt.total_milliseconds().abs().max() <= 50  # type: ignore[operator]


def _lost(base: FamilyData) -> tuple[Perturbed, SensorResult]:
    p = perturb(base, Perturbation(dropout_fraction=0.5, dropout_at_h=0.75))
    return p, _locate(p.data)


def test_half_the_network_lost_mid_barrage_is_said(base: FamilyData) -> None:
    p, r = _lost(base)
    assert r.health is not None and p.dropout_time is not None
    quiet = r.health.of(StationProblem.SILENT) + r.health.of(StationProblem.DEAF)
    at_loss = [f for f in quiet if f.start is not None and f.end is None
               and abs((f.start - p.dropout_time).total_seconds()) < 900]
    # every station flagged at the loss is one that was lost ...
    assert {f.station for f in at_loss} <= set(p.dropped), r.health.lines()
    # ... and many of the lost ones that would have sent something are found (a station
    # that would have sent nothing cannot be told from one that is quiet)
    after = (base.detections.filter(pl.col("time") >= p.dropout_time)
             .group_by("station").len().filter(pl.col("len") >= 5))
    would = set(after["station"].to_list()) & set(p.dropped)
    assert len(would) >= 5
    assert len({f.station for f in at_loss} & would) >= 0.4 * len(would), r.health.lines()
    lines = r.health.lines()
    assert any(line.startswith("Network loss:") for line in lines), lines
    cap = [c for c in r.health.capability if c[1] is None]
    assert cap and cap[-1][2] < len(p.data.stations["id"])
    assert cap[-1][3] < r.health.full_capability
    # nothing is quarantined for a silence: the events found stand as they are
    assert not [q for q in r.batch.quarantine if "health check" in q.reason]


def test_health_check_configuration_is_checked() -> None:
    with pytest.raises(ConfigError):
        HealthCheck(noisy_ratio=0)
    with pytest.raises(ConfigError):
        HealthCheck(clock_group_events=2)
