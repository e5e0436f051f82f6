"""Independent scenario families, the oracle bound, and the joint re-assignment."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from lab.families import (
    FAMILIES,
    FamilyData,
    family,
    generate,
    oracle_assignments,
)
from lab.scoring import Score, score
from trucewatch.errors import ConfigError
from trucewatch.sensors.association import (
    Association,
    ExplosionAssociator,
    Network,
    Picks,
    _Context,
)
from trucewatch.sensors.joint import JointRefiner


def _score(data: FamilyData, assignments: pl.DataFrame) -> Score:
    return score(data.truth, data.detections.select("detection_id", "station"), assignments)


def test_families_are_seeded_and_differ() -> None:
    a = generate(family("random-bursty", "busy", seed=3, hours=0.5))
    b = generate(family("random-bursty", "busy", seed=3, hours=0.5))
    assert a.detections.equals(b.detections) and a.truth.equals(b.truth)
    c = generate(family("random-bursty", "busy", seed=4, hours=0.5))
    assert not a.detections.equals(c.detections)
    layouts = {FAMILIES[f].layout for f in FAMILIES}
    processes = {FAMILIES[f].false_process for f in FAMILIES}
    assert layouts == {"grid", "random", "roads", "arrays"}
    assert processes == {"uniform", "bursty", "correlated"}
    arrays = generate(family("arrays-uniform", "quiet", seed=1, hours=6))
    assert arrays.stations["array"].mean() > 0.5  # type: ignore[operator]
    assert arrays.detections["back_azimuth_deg"].drop_nulls().len() > 0


@pytest.mark.parametrize("name", list(FAMILIES))
def test_oracle_is_near_perfect_when_quiet(name: str) -> None:
    data = generate(family(name, "quiet", seed=1, hours=12))
    s = _score(data, oracle_assignments(data))
    assert s.n_true >= 8
    assert s.f1 >= 0.9, s.row()


def test_oracle_keeps_only_events_with_four_detections() -> None:
    data = generate(family("grid-uniform", "dense", seed=1, hours=0.2))
    o = oracle_assignments(data).drop_nulls("event_id")
    assert o.group_by("event_id").len()["len"].min() >= 4  # type: ignore[operator]
    # false detections far from every predicted arrival stay unassigned
    false = data.truth.filter(pl.col("event_id").is_null())["detection_id"]
    assert o.filter(pl.col("detection_id").is_in(false.implode())).height < false.len()


def _run(data: FamilyData, joint: JointRefiner | None
         ) -> tuple[ExplosionAssociator, Network, Picks, Association]:
    net = Network.from_table(data.stations)
    picks = Picks.from_table(data.detections, net)
    a = ExplosionAssociator(propagation=data.scenario.propagation(), joint=joint)
    return a, net, picks, a.associate(net, picks)


def test_joint_is_not_worse_than_the_cascade_on_a_barrage() -> None:
    data = generate(family("arrays-uniform", "dense", seed=2, hours=0.3))
    _, _, _, cascade = _run(data, None)
    _, _, _, joint = _run(data, JointRefiner())
    s_c, s_j = _score(data, cascade.assignments), _score(data, joint.assignments)
    assert s_j.f1 >= s_c.f1, (s_c.row(), s_j.row())
    assert s_j.precision > s_c.precision


def test_joint_streaming_equals_batch() -> None:
    data = generate(family("grid-uniform", "busy", seed=2, hours=0.6))
    a, net, picks, batch = _run(data, JointRefiner())
    picks = Picks.from_table(data.detections.sort("time"), net)
    for step in (50, 700):
        chunks = (picks.take(np.arange(k, min(len(picks), k + step)))
                  for k in range(0, len(picks), step))
        parts = list(a.stream(net, chunks))
        ev = pl.concat([p.events for p in parts])
        asg = pl.concat([p.assignments for p in parts])
        assert ev.drop("event_id").equals(batch.events.drop("event_id")), step
        assert asg.sort("detection_id")["event_id"].is_null().equals(
            batch.assignments.sort("detection_id")["event_id"].is_null())
    assert batch.events.height > 5


def test_joint_learns_noise_and_false_rates_from_the_stream() -> None:
    data = generate(family("random-bursty", "busy", seed=1, hours=2))
    net = Network.from_table(data.stations)
    picks = Picks.from_table(data.detections, net)
    a = ExplosionAssociator(propagation=data.scenario.propagation(), joint=JointRefiner())
    ctx = _Context.build(a, net)
    parts = list(a._windows_with(ctx, net, [picks], 0.0))
    assert parts
    model = ctx.model
    assert model is not None
    # the timing noise at 20 km is learned near the generator's (not given to it)
    learned = float(model.sigma(np.array([0], dtype=np.int8), np.array([20.0]))[0])
    true = float(np.median(data.sigma(np.arange(len(data.sx)), np.full(len(data.sx), 20.0))))
    assert 0.4 * true < learned < 3.0 * true
    # the noisiest station (most unexplained detections) gets the highest false rate
    rates = model.false_rate(np.arange(len(net.ids)))
    assert rates.max() > 3 * np.median(rates)


def test_joint_configuration_is_checked() -> None:
    from trucewatch.errors import ConfigError
    with pytest.raises(ConfigError):
        JointRefiner(iterations=0)
    with pytest.raises(ConfigError):
        JointRefiner(max_p_detect=1.0)


def test_back_azimuths_are_read_and_kept() -> None:
    data = generate(family("arrays-uniform", "quiet", seed=1, hours=3))
    net = Network.from_table(data.stations)
    picks = Picks.from_table(data.detections, net)
    assert np.isfinite(picks.back_azimuths()).sum() == data.detections[
        "back_azimuth_deg"].drop_nulls().len()
    sub = picks.take(np.arange(5))
    assert np.array_equal(sub.back_azimuths(), picks.back_azimuths()[:5], equal_nan=True)


def test_split_merge_moves_keep_or_raise_the_score_and_are_checked() -> None:
    data = generate(family("grid-uniform", "dense", seed=1, hours=0.3))
    _, _, _, plain = _run(data, JointRefiner())
    _, _, _, moved = _run(data, JointRefiner(move_rounds=2, merge_s=10.0, merge_km=5.0))
    s_p, s_m = _score(data, plain.assignments), _score(data, moved.assignments)
    assert s_m.f1 >= s_p.f1, (s_p.row(), s_m.row())
    assert moved.assignments.height == plain.assignments.height  # nothing lost
    with pytest.raises(ConfigError, match="move_rounds"):
        JointRefiner(move_rounds=-1)
    with pytest.raises(ConfigError, match="merge_s"):
        JointRefiner(merge_s=0.0)


def test_repartition_keeps_or_raises_the_score_streams_like_batch_and_is_checked() -> None:
    # a busy grid: rounds seconds apart near each other, so there are suspects to dissolve
    data = generate(family("grid-uniform", "busy", seed=2, hours=0.6))
    _, _, _, plain = _run(data, JointRefiner())
    cfg = JointRefiner(repartition_rounds=2, repartition_odds=1e9)  # every close pair
    a, net, picks, moved = _run(data, cfg)
    s_p, s_m = _score(data, plain.assignments), _score(data, moved.assignments)
    assert s_m.f1 >= s_p.f1 - 0.01, (s_p.row(), s_m.row())
    assert moved.assignments.height == plain.assignments.height  # nothing lost
    picks = Picks.from_table(data.detections.sort("time"), net)
    chunks = (picks.take(np.arange(k, min(len(picks), k + 300)))
              for k in range(0, len(picks), 300))
    ev = pl.concat([p.events for p in a.stream(net, chunks)])
    assert ev.drop("event_id").equals(moved.events.drop("event_id"))
    with pytest.raises(ConfigError, match="repartition_rounds"):
        JointRefiner(repartition_rounds=-1)
    with pytest.raises(ConfigError, match="repartition_km"):
        JointRefiner(repartition_km=0.0)
