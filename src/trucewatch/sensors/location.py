"""Batched location of many explosions at once by weighted Gauss-Newton.

Each event is a segment of picks (``seg`` gives the event index of every pick).
The unknowns per event are the surface position (x, y in km, local frame) and the
origin time t0 (s). All events are solved together: the 3x3 normal equations are
accumulated with ``np.bincount`` and solved as one stacked array, so the cost is
linear in the number of picks and there is no Python loop over events.

Weights are 1/sigma^2 with a Huber taper beyond ``huber_s`` so that one wrong
pick cannot drag an event far away. The covariance is the inverse normal matrix
at the solution, scaled up (never down) by the reduced chi-square, and gives the
95 % error ellipse (chi-square with 2 degrees of freedom: 5.991).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from trucewatch.sensors.propagation import Propagation

F = NDArray[np.float64]
I64 = NDArray[np.int64]
CHI2_2D_95 = 5.991
_H = 1e-3  # km, finite-difference step for the travel-time gradient


@dataclass
class Solution:
    x: F
    y: F
    t0: F
    residual: F  # per pick, observed minus predicted (s)
    cov: NDArray[np.float64]  # (n, 3, 3): x, y (km), t0 (s)
    ok: NDArray[np.bool_]  # normal matrix well conditioned


def _seg_sum(seg: I64, n: int, values: F) -> F:
    return np.bincount(seg, weights=values, minlength=n).astype(np.float64, copy=False)


def locate(seg: I64, n: int, sx: F, sy: F, sz: F, phase: NDArray[np.int8], t: F, sigma: F,
           x: F, y: F, prop: Propagation, *, huber_s: float, iterations: int = 8,
           max_step_km: float = 10.0) -> Solution:
    x = x.astype(np.float64, copy=True)
    y = y.astype(np.float64, copy=True)
    w0 = 1.0 / (sigma * sigma)
    tt = prop.travel_time(phase, sx - x[seg], sy - y[seg], sz)
    t0 = _seg_sum(seg, n, (t - tt) * w0) / np.maximum(_seg_sum(seg, n, w0), 1e-300)
    for _ in range(iterations):
        gx, gy, tt = _gradient(seg, sx, sy, sz, phase, x, y, prop)
        r = t - t0[seg] - tt
        w = w0 * np.minimum(1.0, huber_s / np.maximum(np.abs(r), 1e-12))
        a = _normal_matrix(seg, n, gx, gy, w)
        b = np.stack([_seg_sum(seg, n, w * gx * r), _seg_sum(seg, n, w * gy * r),
                      _seg_sum(seg, n, w * r)], axis=1)
        # Levenberg damping keeps degenerate geometries (collinear stations) finite
        damp = 1e-6 * np.trace(a, axis1=1, axis2=2)[:, None, None] * np.eye(3)
        step = np.linalg.solve(a + damp + 1e-12 * np.eye(3), b[:, :, None])[:, :, 0]
        step[:, :2] = np.clip(step[:, :2], -max_step_km, max_step_km)
        x += step[:, 0]
        y += step[:, 1]
        t0 += step[:, 2]
        if np.abs(step[:, :2]).max(initial=0.0) < 1e-5:
            break
    gx, gy, tt = _gradient(seg, sx, sy, sz, phase, x, y, prop)
    r = t - t0[seg] - tt
    a = _normal_matrix(seg, n, gx, gy, w0)
    det = np.linalg.det(a)
    ok = np.isfinite(det) & (det > 1e-12 * np.trace(a, axis1=1, axis2=2) ** 3)
    cov = np.full((n, 3, 3), np.nan)
    if ok.any():
        cov[ok] = np.linalg.inv(a[ok])
    # a posteriori scaling when the residuals are larger than the stated sigmas
    counts = np.bincount(seg, minlength=n)
    chi2 = _seg_sum(seg, n, np.minimum(r * r, huber_s * huber_s) * w0)
    dof = np.maximum(counts - 3, 1)
    cov *= np.maximum(1.0, chi2 / dof)[:, None, None]
    return Solution(x, y, t0, r, cov, ok)


def _gradient(seg: I64, sx: F, sy: F, sz: F, phase: NDArray[np.int8], x: F, y: F,
              prop: Propagation) -> tuple[F, F, F]:
    dx = sx - x[seg]
    dy = sy - y[seg]
    tt = prop.travel_time(phase, dx, dy, sz)
    # moving the source by +h moves the station by -h relative to it
    gx = (prop.travel_time(phase, dx - _H, dy, sz) - tt) / _H
    gy = (prop.travel_time(phase, dx, dy - _H, sz) - tt) / _H
    return gx, gy, tt


def _normal_matrix(seg: I64, n: int, gx: F, gy: F, w: F) -> NDArray[np.float64]:
    a = np.empty((n, 3, 3))
    cols = (gx, gy, np.ones_like(gx))
    for i in range(3):
        for j in range(i, 3):
            a[:, i, j] = a[:, j, i] = _seg_sum(seg, n, w * cols[i] * cols[j])
    return a


def ellipse_95(cov_xy: NDArray[np.float64]) -> tuple[F, F, F]:
    """Semi-major and semi-minor axes (m) and azimuth of the major axis (deg from north)."""
    vals, vecs = np.linalg.eigh(np.nan_to_num(cov_xy, nan=0.0))
    major = np.sqrt(np.maximum(vals[:, 1], 0) * CHI2_2D_95) * 1000.0
    minor = np.sqrt(np.maximum(vals[:, 0], 0) * CHI2_2D_95) * 1000.0
    east, north = vecs[:, 0, 1], vecs[:, 1, 1]
    az = np.degrees(np.arctan2(east, north)) % 180.0
    bad = ~np.isfinite(cov_xy).all(axis=(1, 2))
    major[bad] = minor[bad] = az[bad] = np.nan
    return major, minor, az


def crlb_xy(sx: F, sy: F, sz: F, phase: NDArray[np.int8], sigma: F, x: float, y: float,
            prop: Propagation) -> NDArray[np.float64]:
    """Cramer-Rao bound on (x, y) for one source seen at the given stations (2x2, km^2)."""
    seg = np.zeros(len(sx), dtype=np.int64)
    gx, gy, _ = _gradient(seg, sx, sy, sz, phase, np.array([x]), np.array([y]), prop)
    fisher = _normal_matrix(seg, 1, gx, gy, 1.0 / sigma**2)[0]
    return np.asarray(np.linalg.inv(fisher)[:2, :2])
