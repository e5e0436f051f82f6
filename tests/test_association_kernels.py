"""The compiled bisection kernels give the numpy reference's results bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lab.families import FAMILIES, family, generate
from trucewatch.errors import ConfigError
from trucewatch.sensors import kernels
from trucewatch.sensors.association import (
    ExplosionAssociator,
    JointRefiner,
    Network,
    Picks,
    _consistent,
    _station_counts,
)
from trucewatch.sensors.propagation import AcousticModel, Layer, Propagation, SeismicModel

needs_numba = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba is not installed "
                                 "(pip install 'trucewatch[sensors]')")

LAYERED = Propagation(AcousticModel(-5.0, 9.0, -4.0),
                      SeismicModel((Layer(2.0, 4.5, 2.6), Layer(8.0, 6.0, 3.46),
                                    Layer(math.inf, 7.8, 4.5))))


@needs_numba
@pytest.mark.parametrize("prop", [Propagation(), LAYERED], ids=["calm", "wind-layers"])
@pytest.mark.parametrize("box", [(0.4, 0.3, 0.5), (30.0, 20.0, 60.0)], ids=["small", "big"])
@pytest.mark.parametrize("max_d", [40.0, None])
def test_level_filter_is_the_reference(prop: Propagation, box: tuple[float, float, float],
                                       max_d: float | None) -> None:
    rng = np.random.default_rng(7)
    cfg = ExplosionAssociator(propagation=prop, max_distance_km=max_d)
    n_vol, n_pk = 60, 400
    corner = np.column_stack([rng.uniform(-50, 50, n_vol), rng.uniform(-50, 50, n_vol),
                              rng.uniform(0, 300, n_vol)])
    station = np.sort(rng.integers(0, 25, n_pk))
    sta_x, sta_y, sta_z = (rng.uniform(-40, 40, 25), rng.uniform(-40, 40, 25),
                           rng.uniform(0, 0.5, 25))
    sx, sy, sz = sta_x[station], sta_y[station], sta_z[station]
    phase = rng.integers(0, 3, n_pk).astype(np.int8)
    t = rng.uniform(0, 400, n_pk)
    pv = np.repeat(np.arange(n_vol), n_pk)
    pp = np.tile(np.arange(n_pk), n_vol)
    ok = _consistent(cfg, corner[pv, 0], corner[pv, 1], corner[pv, 2], box, sx[pp], sy[pp],
                     sz[pp], phase[pp], t[pp])
    ref_v, ref_p = pv[ok], pp[ok]
    ref_counts = _station_counts(ref_v, station[ref_p], n_vol)
    tab, n_head, slow = kernels.propagation_table(prop)
    got_v, got_p, counts = kernels.level_filter(
        corner[:, 0].copy(), corner[:, 1].copy(), corner[:, 2].copy(), *box, pv, pp, sx, sy,
        sz, phase, t, station, tab, n_head, slow, float(max_d or 0.0), max_d is not None,
        cfg.relative_tolerance, cfg.tolerance_s, n_vol)
    assert 0 < ok.sum() < len(ok)  # the case tests something
    np.testing.assert_array_equal(got_v, ref_v)
    np.testing.assert_array_equal(got_p, ref_p)
    np.testing.assert_array_equal(counts, ref_counts)


@needs_numba
def test_split_children_is_the_stable_sort() -> None:
    rng = np.random.default_rng(3)
    pv = np.sort(rng.integers(0, 30, 500))
    pp = rng.integers(0, 1000, 500)
    alive = rng.random(30) < 0.6
    parent = np.cumsum(alive) - 1
    sel = alive[pv]
    v, p = parent[pv[sel]], pp[sel]
    child = np.concatenate([2 * v, 2 * v + 1])
    order = np.argsort(child, kind="stable")
    got_v, got_p = kernels.split_children(pv, pp, alive)
    np.testing.assert_array_equal(got_v, child[order])
    np.testing.assert_array_equal(got_p, np.concatenate([p, p])[order])


# a few hundred detections of a barrage per family (seed, hours)
SMALL_DENSE = {"grid-uniform": (1, 0.3), "random-bursty": (2, 0.4),
               "roads-correlated": (2, 0.2), "arrays-uniform": (1, 0.15)}


def test_every_family_is_compared() -> None:
    assert set(SMALL_DENSE) == set(FAMILIES)


@needs_numba
@pytest.mark.parametrize("name", list(SMALL_DENSE))
@pytest.mark.parametrize("joint", [False, True], ids=["cascade", "joint"])
def test_families_give_the_same_events_with_either_kernel(name: str, joint: bool) -> None:
    seed, hours = SMALL_DENSE[name]
    data = generate(family(name, "dense", seed=seed, hours=hours))
    net = Network.from_table(data.stations)
    picks = Picks.from_table(data.detections, net)
    out = []
    for kernel in ("numpy", "compiled", "auto"):
        a = ExplosionAssociator(propagation=data.scenario.propagation(), kernel=kernel,
                                joint=JointRefiner() if joint else None)
        out.append(a.associate(net, picks))
    assert out[0].events.height > 0
    assert out[0].events.equals(out[1].events)
    assert out[0].assignments.equals(out[1].assignments)
    assert out[0].events.equals(out[2].events) and out[0].assignments.equals(out[2].assignments)


def test_kernel_setting_is_checked() -> None:
    with pytest.raises(ConfigError, match="kernel"):
        ExplosionAssociator(kernel="fortran")
    if not kernels.AVAILABLE:
        with pytest.raises(ConfigError, match="numba"):
            ExplosionAssociator(kernel="compiled")


@needs_numba
def test_too_many_layers_for_the_kernel() -> None:
    layers = (*(Layer(1.0, 3.0 + 0.3 * k, 1.7 + 0.17 * k) for k in range(11)),
              Layer(math.inf, 7.0, 4.0))
    prop = Propagation(seismic=SeismicModel(layers))
    assert not kernels.fits_table(prop)
    data = generate(family("grid-uniform", "dense", seed=1, hours=0.3))
    net = Network.from_table(data.stations)
    with pytest.raises(ConfigError, match="head waves"):
        ExplosionAssociator(propagation=prop, kernel="compiled").associate(
            net, Picks.from_table(data.detections, net))


def test_one_per_station_is_the_four_key_lexsort() -> None:
    """The one-key sort keeps, per (segment, station, phase), the same detection as the
    four-key lexsort it replaced (ties in the miss included: the first one stays)."""
    from trucewatch.sensors.association import _one_per_station
    rng = np.random.default_rng(5)
    n_pk = 300
    station = np.sort(rng.integers(0, 40, n_pk))
    pk = Picks(np.arange(n_pk).astype(str).astype(object), station,
               rng.integers(0, 3, n_pk).astype(np.int8), np.sort(rng.uniform(0, 600, n_pk)),
               0, np.full(n_pk, np.nan), np.full(n_pk, np.nan))
    seg = np.sort(rng.integers(0, 50, 2000))
    pick = rng.integers(0, n_pk, 2000)
    miss = np.round(rng.uniform(0, 1, 2000), 1)  # many ties
    st, ph = pk.station[pick], pk.phase[pick]
    order = np.lexsort((miss, ph, st, seg))
    s_, p_ = seg[order], pick[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = ((s_[1:] != s_[:-1]) | (st[order][1:] != st[order][:-1])
                 | (ph[order][1:] != ph[order][:-1]))
    got_s, got_p = _one_per_station(pk, seg, pick, miss)
    np.testing.assert_array_equal(got_s, s_[first])
    np.testing.assert_array_equal(got_p, p_[first])
    e_s, e_p = _one_per_station(pk, seg[:0], pick[:0], miss[:0])
    assert len(e_s) == len(e_p) == 0
