"""Compiled kernels for the associator's hot loops (numba, from the ``sensors`` extra).

The space-time bisection of :mod:`trucewatch.sensors.association` spends most of its
time testing every (volume, detection) pair of a level for consistency, counting the
distinct stations per volume and splitting the survivors into children. Here the
three are loops over the pairs, compiled with numba, computing the same floating-point
expressions in the same order as the numpy reference (``_consistent``,
``_station_counts`` and the stable sort on the child id), so the results are the same
bit for bit (tests/test_association_kernels.py compares both on every family).

Without numba, :data:`AVAILABLE` is False and the associator uses the numpy
reference (``ExplosionAssociator(kernel="auto")``); ``kernel="compiled"`` then
refuses with a clear error.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trucewatch.sensors.propagation import ACOUSTIC, P, Propagation, S

F = NDArray[np.float64]
I64 = NDArray[np.int64]

try:  # pragma: no cover - which branch runs depends on the install
    import numba

    AVAILABLE = True
except ImportError:  # pragma: no cover
    numba = None  # type: ignore[assignment]
    AVAILABLE = False

# travel-time table per phase: column 0 = the model's kind (0 acoustic, 1 layered),
# acoustic: speed, wind east (m/s), wind north (m/s), wind speed (km/s);
# seismic: v0 then up to MAX_HEAD (velocity, delay) pairs of head waves
MAX_HEAD = 8
N_COL = 2 + 2 * MAX_HEAD + 2


def propagation_table(prop: Propagation) -> tuple[F, I64, F]:
    """Everything the kernels need from ``prop``, computed as ``Propagation`` does:
    (table per phase, number of head waves per phase, max slowness per phase)."""
    tab = np.zeros((3, N_COL))
    n_head = np.zeros(3, dtype=np.int64)
    ac = prop.acoustic
    tab[ACOUSTIC, :4] = [ac.speed, ac.wind_east_m_s, ac.wind_north_m_s, ac.wind_speed]
    sm = prop.seismic
    for ph in (P, S):
        v = sm._velocities(ph)
        tab[ph, 0] = v[0]
        k = 0
        for n in range(1, len(v)):
            if v[n] <= max(v[:n]):
                continue
            delay = sum(2 * sm.layers[j].thickness_km
                        * math.sqrt(1 / v[j] ** 2 - 1 / v[n] ** 2) for j in range(n))
            if k >= MAX_HEAD:
                raise ValueError("too many layers for the compiled kernel")
            tab[ph, 1 + 2 * k] = v[n]
            tab[ph, 2 + 2 * k] = delay
            k += 1
        n_head[ph] = k
    slow = prop.max_slowness(np.array([ACOUSTIC, P, S], dtype=np.int8))
    return tab, n_head, np.asarray(slow, dtype=np.float64)


def fits_table(prop: Propagation) -> bool:
    """Whether the layered model fits the kernel's table (at most MAX_HEAD head waves)."""
    try:
        propagation_table(prop)
    except ValueError:
        return False
    return True


def warm() -> bool:
    """Whether the bisection kernel is already loaded in this process: from then on it
    costs nothing more to use, so every level runs compiled (the results are the same)."""
    return numba is not None and bool(level_filter.signatures)


def _jit(fn: Any) -> Any:
    if numba is None:  # pragma: no cover
        return fn
    return numba.njit(cache=True, nogil=True)(fn)


@_jit
def _seismic_time(tab: F, n_head: I64, ph: int, dist: float) -> float:
    best = dist / tab[ph, 0]
    for k in range(n_head[ph]):
        alt = dist / tab[ph, 1 + 2 * k] + tab[ph, 2 + 2 * k]
        if alt < best:  # np.minimum: NaN propagates from the first argument too
            best = alt
        elif best != best or alt != alt:
            best = np.nan
    return float(best)


@_jit
def _acoustic_time(tab: F, dx: float, dy: float, horiz: float, dz: float) -> float:
    """``AcousticModel.travel_time``; ``horiz`` = hypot(dx, dy), computed once by the caller."""
    dist = math.sqrt(horiz * horiz + dz * dz)
    along = (tab[0, 1] * dx + tab[0, 2] * dy) / (1000.0 * horiz) if horiz > 0 else 0.0
    return float(dist / (tab[0, 0] + along))


@_jit
def level_filter(cx: F, cy: F, ct: F, wx: float, wy: float, wt: float, pv: I64, pp: I64,
                 sx: F, sy: F, sz: F, phase: NDArray[np.int8], t: F, station: I64,
                 tab: F, n_head: I64, slow: F, max_d: float, has_max_d: bool,
                 rel: float, tol: float, n_vol: int) -> tuple[I64, I64, I64]:
    """One bisection level: the (volume, detection) pairs ``pv``, ``pp`` (volume
    corners ``cx``, ``cy``, ``ct``; one box size) that are consistent (see
    ``association._consistent``), and the distinct stations per volume.

    The travel-time bounds depend only on the volume, the station and the phase, and
    the pairs come sorted by volume, then station and phase: the bounds are computed
    once per run of equal (volume, station, phase) and reused (the same numbers)."""
    n = len(pv)
    out_v = np.empty(n, dtype=np.int64)
    out_p = np.empty(n, dtype=np.int64)
    counts = np.zeros(n_vol, dtype=np.int64)
    half = 0.5 * math.hypot(wx, wy)
    small = half <= 2.0
    m = 0
    last_v = -1
    last_s = -1
    key_v = -1
    key_s = -1
    key_ph = -1
    lo = 0.0
    hi = 0.0
    ok = True
    for i in range(n):
        v = pv[i]
        j = pp[i]
        ph = phase[j]
        s = station[j]
        if v != key_v or s != key_s or ph != key_ph:
            key_v = v
            key_s = s
            key_ph = ph
            x0 = cx[v]
            y0 = cy[v]
            px = sx[j]
            py = sy[j]
            pz = sz[j]
            if small:
                dx = px - (x0 + 0.5 * wx)
                dy = py - (y0 + 0.5 * wy)
                horiz = math.hypot(dx, dy)
                if ph == 0:
                    tc = _acoustic_time(tab, dx, dy, horiz, pz)
                else:
                    tc = _seismic_time(tab, n_head, ph, math.sqrt(dx * dx + dy * dy + pz * pz))
                spread = half * slow[ph]
                lo = tc - spread
                if lo < 0.0:  # np.maximum(., 0.0); NaN stays NaN
                    lo = 0.0
                hi = tc + spread
                ok = (horiz - half <= max_d) if has_max_d else True
            else:
                hx = max(max(x0 - px, px - x0 - wx), 0.0)
                hy = max(max(y0 - py, py - y0 - wy), 0.0)
                dmin_h = math.hypot(hx, hy)
                dmax_h = math.hypot(max(abs(px - x0), abs(px - x0 - wx)),
                                    max(abs(py - y0), abs(py - y0 - wy)))
                ok = True
                if has_max_d:
                    ok = dmin_h <= max_d
                    dmax_h = min(dmax_h, max_d)
                z2 = pz * pz
                dmin = math.sqrt(dmin_h * dmin_h + z2)
                dmax = math.sqrt(dmax_h * dmax_h + z2)
                if ph == 0:
                    w = tab[0, 3]
                    lo = dmin / (tab[0, 0] + w)
                    hi = dmax / (tab[0, 0] - w)
                else:
                    lo = _seismic_time(tab, n_head, ph, dmin)
                    hi = _seismic_time(tab, n_head, ph, dmax)
        if not ok:
            continue
        tj = t[j]
        t0 = ct[v]
        if (tj - hi * (1 + rel) - tol <= t0 + wt) and (tj - lo * (1 - rel) + tol >= t0):
            out_v[m] = v
            out_p[m] = j
            if v != last_v or s != last_s:
                counts[v] += 1
            last_v = v
            last_s = s
            m += 1
    return out_v[:m], out_p[:m], counts


@_jit
def split_children(pv: I64, pp: I64, alive: NDArray[np.bool_]) -> tuple[I64, I64]:
    """The pairs of the alive volumes, renumbered among them, each given to both
    children (2k, 2k+1): the order of a stable sort on the child id."""
    n_vol = len(alive)
    new_id = np.empty(n_vol, dtype=np.int64)
    c = 0
    for v in range(n_vol):
        new_id[v] = c
        if alive[v]:
            c += 1
    n_keep = 0
    for i in range(len(pv)):
        if alive[pv[i]]:
            n_keep += 1
    out_v = np.empty(2 * n_keep, dtype=np.int64)
    out_p = np.empty(2 * n_keep, dtype=np.int64)
    m = 0
    i = 0
    n = len(pv)
    while i < n:
        v = pv[i]
        k = i
        while k < n and pv[k] == v:
            k += 1
        if alive[v]:
            parent = new_id[v]
            for child in (2 * parent, 2 * parent + 1):
                for q in range(i, k):
                    out_v[m] = child
                    out_p[m] = pp[q]
                    m += 1
        i = k
    return out_v, out_p
