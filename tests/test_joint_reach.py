"""The joint stage's silence and reach come from the learned detection curve; the
cascade skips passes that cannot find anything."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from numpy.typing import NDArray

from lab.families import family, generate, oracle_assignments
from lab.scoring import score
from trucewatch.errors import ConfigError
from trucewatch.sensors.association import (
    ExplosionAssociator,
    Network,
    Picks,
    _Context,
    _may_gather,
    _silent_stations,
)
from trucewatch.sensors.joint import JointRefiner, NetworkModel


def _line_network(n: int = 8) -> Network:
    """Stations every 5 km along the x axis."""
    x = np.arange(n, dtype=np.float64) * 5.0
    return Network(tuple(f"S{i}" for i in range(n)), x, np.zeros(n), np.zeros(n),
                   np.full(n, 0.001), "EPSG:3857")


def test_silence_counts_detection_probability_with_a_model() -> None:
    net = _line_network()
    up = np.ones(len(net.ids), dtype=bool)
    # heard by the three farthest stations: the five nearer ones are silent
    heard = np.zeros((2, len(net.ids)), dtype=bool)
    heard[:, 5:] = True
    x = np.array([0.0, -60.0])  # at station 0, and 60 km beyond it
    y = np.zeros(2)
    counts = _silent_stations(net, x, y, heard, up)
    assert counts.tolist() == [5.0, 5.0]  # without a model: a plain count
    model = NetworkModel.start(JointRefiner(), len(net.ids), 1000.0)
    weighted = _silent_stations(net, x, y, heard, up, model=model)
    p_near = model.p_detect(np.arange(5), np.hypot(net.x_km[:5] - x[0], 0.0), np.zeros(5))
    assert weighted[0] == pytest.approx(float(p_near.sum()))
    # far away, where detection is unlikely, silence says little
    assert weighted[1] < 0.2 < weighted[0]


def test_reach_is_learned_between_floor_and_ceiling() -> None:
    cfg = JointRefiner()
    model = NetworkModel.start(cfg, 4, 1000.0)
    assert model.reach_km(40.0, 90.0) == 40.0  # nothing learned: the configured distance
    # learned: sizes and a curve that still detects large events far away
    model.size_mom = np.array([100.0, 0.0, 100.0])  # sd 1
    model.rows = [np.zeros((1, 4))]
    model.coef = np.array([3.0 * math.log(30.0), 1.0, 3.0])  # 50 % at 30 km, size 0
    model.time_s = 600.0
    r = model.reach_km(40.0, 500.0)
    # where p = reach_p for size 1.645 sd
    z = math.log(cfg.reach_p / (1 - cfg.reach_p))
    assert r == pytest.approx(math.exp((3.0 * math.log(30.0) + 1.645 - z) / 3.0))
    assert model.reach_km(40.0, 60.0) == 60.0  # never beyond the search area
    off = NetworkModel.start(JointRefiner(reach_p=0.0), 4, 1000.0)
    off.size_mom, off.rows, off.coef = model.size_mom, model.rows, model.coef
    assert off.reach_km(40.0, 500.0) == 40.0
    with pytest.raises(ConfigError, match="reach_p"):
        JointRefiner(reach_p=1.0)


def test_a_pass_is_skipped_only_when_it_cannot_find_anything() -> None:
    data = generate(family("grid-uniform", "quiet", seed=1, hours=2))
    net = Network.from_table(data.stations)
    picks = Picks.from_table(data.detections, net)
    a = ExplosionAssociator(propagation=data.scenario.propagation())
    ctx = _Context.build(a, net)
    every = np.ones(len(picks), dtype=bool)
    # one event's arrivals come from many stations within one span
    ev = data.truth.group_by("event_id").len().drop_nulls().sort("len").row(-1)
    mine = data.truth["event_id"].eq(ev[0]).fill_null(False).to_numpy()
    n_sta = picks.take(np.flatnonzero(mine)).station
    assert _may_gather(a, ctx, picks, mine, len(set(n_sta.tolist())))
    assert not _may_gather(a, ctx, picks, mine, len(set(n_sta.tolist())) + 1)
    # detections hours apart never gather
    apart = Picks(np.array(["a", "b", "c", "d"], dtype=object), np.arange(4, dtype=np.int64),
                  np.zeros(4, dtype=np.int8), np.array([0.0, 2e3, 4e3, 6e3]), 0)
    assert not _may_gather(a, ctx, apart, np.ones(4, dtype=bool), 2)
    # the same station many times counts once
    same = Picks(np.array(list("abcdef"), dtype=object), np.zeros(6, dtype=np.int64),
                 np.zeros(6, dtype=np.int8), np.array([0.0, 1, 2, 3, 4, 5]), 0)
    assert not _may_gather(a, ctx, same, np.ones(6, dtype=bool), 2)
    assert _may_gather(a, ctx, picks, every, 4)


def test_far_barrage_outside_the_network_is_found() -> None:
    """roads-correlated busy: a barrage beyond the network's corner, heard at 20-48 km
    where detection is a coin toss; the hard silence count and the 40 km cut lost it
    (the cascade alone still does)."""
    data = generate(family("roads-correlated", "busy", seed=1, hours=2))
    net = Network.from_table(data.stations)
    picks = Picks.from_table(data.detections, net)
    st = data.detections.select("detection_id", "station")
    oracle = score(data.truth, st, oracle_assignments(data))
    res = ExplosionAssociator(propagation=data.scenario.propagation(),
                              joint=JointRefiner()).associate(net, picks)
    got = score(data.truth, st, res.assignments.select("detection_id", "event_id"))
    old = ExplosionAssociator(propagation=data.scenario.propagation()).associate(net, picks)
    before = score(data.truth, st, old.assignments.select("detection_id", "event_id"))
    assert got.f1 >= 0.85 * oracle.f1, got.row()
    assert got.recall > before.recall, (got.row(), before.row())
    assert isinstance(res.assignments, pl.DataFrame)


def _far_event() -> tuple[ExplosionAssociator, Network, Picks, NDArray[np.float64]]:
    """A 7 x 3 grid of stations 8 km apart and one explosion 10 km beyond its west
    edge: 12 stations within 40 km, the other 9 at 42-59 km, exact arrival times."""
    gx, gy = np.meshgrid(np.arange(7) * 8.0, np.arange(3) * 8.0)
    x, y = gx.ravel(), gy.ravel()
    n = len(x)
    net = Network(tuple(f"S{i:02d}" for i in range(n)), x, y, np.zeros(n),
                  np.full(n, 0.001), "EPSG:3857")
    a = ExplosionAssociator(joint=JointRefiner())
    ex, ey, t0 = -10.0, 8.0, 1000.0
    d = np.hypot(x - ex, y - ey)
    tt = a.propagation.travel_time(np.zeros(n, dtype=np.int8), x - ex, y - ey, np.zeros(n))
    picks = Picks(np.array([f"D{i:02d}" for i in range(n)], dtype=object),
                  np.arange(n, dtype=np.int64), np.zeros(n, dtype=np.int8), t0 + tt, 0)
    return a, net, picks, d


def test_far_detections_are_weighed_by_the_curve_not_cut_at_max_distance() -> None:
    """In the first window nothing is learned, so the reach is the configured 40 km:
    with the EM's distance cap, the far half of a far explosion's detections stays
    free; without it, the detection curve weighs them (a far arrival that fits is
    still far likelier an arrival than a false detection) and the event takes all."""
    a, net, picks, d = _far_event()
    assert (d <= 40.0).sum() >= 6 and (d > 40.0).sum() >= 6
    capped = a.associate(net, picks)
    free = replace(a, joint=JointRefiner(em_distance_cap=False)).associate(net, picks)
    assert capped.events.height == free.events.height == 1
    assert capped.events["n_stations"][0] == int((d <= 40.0).sum())
    assert free.events["n_stations"][0] == len(d)
    assert free.assignments["event_id"].null_count() == 0
    # the location is as good or better with every station
    assert math.hypot(free.events["x_km"][0] + 10.0, free.events["y_km"][0] - 8.0) < 0.05


def test_far_detections_without_the_cap_stream_like_batch() -> None:
    """Three far explosions in three windows (the model learns between them): chunks of
    five detections give the batch result."""
    a, net, one, _ = _far_event()
    a = replace(a, joint=JointRefiner(em_distance_cap=False))
    n = len(one)
    shifts = np.repeat([0.0, 700.0, 1400.0], n)
    picks = Picks(np.array([f"D{i:03d}" for i in range(3 * n)], dtype=object),
                  np.tile(one.station, 3), np.tile(one.phase, 3),
                  np.tile(one.t, 3) + shifts, 0)
    order = np.argsort(picks.t, kind="stable")
    picks = picks.take(order)
    batch = a.associate(net, picks)
    assert batch.events.height == 3
    chunks = (picks.take(np.arange(k, min(len(picks), k + 5))) for k in range(0, len(picks), 5))
    parts = list(a.stream(net, chunks))
    ev = pl.concat([p.events for p in parts])
    asg = pl.concat([p.assignments for p in parts])
    assert ev.drop("event_id").equals(batch.events.drop("event_id"))
    assert asg.sort("detection_id")["event_id"].is_null().equals(
        batch.assignments.sort("detection_id")["event_id"].is_null())
