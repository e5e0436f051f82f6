"""Detection capability: the smallest charge the working stations would have heard.

The station detection curve is the one the associator's joint stage learns from the
stream (:meth:`trucewatch.sensors.joint.NetworkModel.p_detect`)::

    logit p = alpha + delta_s + beta * size - gamma * ln d

with ``size`` the event's source size in natural-log amplitude units, centred on the
typical located event. The associator's amplitude law is ``amplitude ~ size /
distance^decay`` with the amplitude proportional to the charge, so ``size = ln(W /
W_ref)``: ``W_ref`` (:attr:`CapabilityModel.reference_charge_kg`) is the TNT-equivalent
of the typical located event. The stream sets the curve's shape, never its absolute
scale: the kilograms rest on that one calibration (a calibration shot, or the mission's
knowledge of the munitions in use), which every output states.

At a place, the network *hears* a charge when at least ``min_stations`` working
stations detect it; each station independently with its ``p`` (the ``nearest``
working stations are counted: farther ones left out can only make the figure
larger). The probability of that is the tail of a Poisson binomial;
:meth:`CapabilityModel.min_charge` finds, by bisection on ``ln W``, the smallest
charge for which it reaches ``probability``.
Where even ``max_charge_kg`` is not heard so, the place is not observed (``inf``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from trucewatch.errors import ConfigError
from trucewatch.sensors.joint import JointRefiner, NetworkModel

F = NDArray[np.float64]


@dataclass(frozen=True)
class CapabilityModel:
    refiner: JointRefiner = field(default_factory=JointRefiner)  # the detection curve
    reference_charge_kg: float = 6.0  # W_ref: about the fill of a 152/155 mm HE shell
    probability: float = 0.9
    min_stations: int = 4  # the associator's defining stations for a located event
    min_charge_kg: float = 0.01
    max_charge_kg: float = 1000.0  # heavier than this not heard: not observed
    iterations: int = 16  # bisection steps on ln W (11.5 / 2^16: 0.02 % of the charge)
    # the working stations counted at a place: its nearest ones (leaving farther ones
    # out can only make the charge larger: the figure errs on the side of "not heard")
    nearest: int = 16

    def __post_init__(self) -> None:
        if not 0 < self.probability < 1:
            raise ConfigError(f"probability {self.probability} is not in (0, 1)",
                              fix="use e.g. 0.9")
        if self.min_stations < 1:
            raise ConfigError(f"min_stations = {self.min_stations}", fix="use 1 or more")
        if not 0 < self.min_charge_kg < self.reference_charge_kg < self.max_charge_kg:
            raise ConfigError("charges must satisfy 0 < min < reference < max",
                              fix="give the charges in kg TNT-equivalent")

    def describe(self) -> str:
        return (f"smallest charge (kg TNT-equivalent) heard with probability >= "
                f"{self.probability:g} by at least {self.min_stations} working stations, "
                f"from the joint stage's detection curve (r50 {self.refiner.prior_r50_km:g} km "
                f"for a typical event, slope {self.refiner.prior_slope:g} in ln distance); "
                f"a typical located event taken as {self.reference_charge_kg:g} kg")

    def _network(self, n_sta: int) -> NetworkModel:
        return NetworkModel.start(self.refiner, n_sta, 1.0)

    def p_heard(self, d_km: F, charge_kg: F) -> F:
        """P(at least ``min_stations`` detect) per row of ``d_km`` (cells x stations,
        ``inf`` for a station that was down) for each row's charge."""
        cells, n = d_km.shape
        if n < self.min_stations:
            return np.zeros(cells)
        net = self._network(n)
        st = np.broadcast_to(np.arange(n), (cells, n)).ravel()
        size = np.repeat(np.log(charge_kg / self.reference_charge_kg), n)
        d = d_km.ravel()
        p = net.p_detect(st, np.where(np.isfinite(d), d, 1.0), size).reshape(cells, n)
        p = np.where(np.isfinite(d_km), p, 0.0)
        k = self.min_stations
        # dp[:, j]: P(j detections so far) for j < k; the rest has reached k
        dp = np.zeros((cells, k))
        dp[:, 0] = 1.0
        for s in range(n):
            ps = p[:, s:s + 1]
            dp = dp * (1 - ps) + np.c_[np.zeros(cells), dp[:, :-1]] * ps
        return np.asarray(1.0 - dp.sum(axis=1))

    def min_charge(self, d_km: F) -> F:
        """Per row (a place; columns the stations' distances in km, ``inf`` when down),
        the smallest charge heard as the module says; ``inf`` where none up to
        ``max_charge_kg`` is."""
        cells = d_km.shape[0]
        if cells == 0:
            return np.zeros(0)
        if d_km.shape[1] > self.nearest:
            d_km = np.partition(d_km, self.nearest - 1, axis=1)[:, :self.nearest]
        hi = np.full(cells, math.log(self.max_charge_kg))
        lo = np.full(cells, math.log(self.min_charge_kg))
        heard_max = self.p_heard(d_km, np.exp(hi)) >= self.probability
        heard_min = self.p_heard(d_km, np.exp(lo)) >= self.probability
        for _ in range(self.iterations):
            mid = 0.5 * (lo + hi)
            ok = self.p_heard(d_km, np.exp(mid)) >= self.probability
            hi = np.where(ok, mid, hi)
            lo = np.where(ok, lo, mid)
        out = np.exp(hi)
        out[heard_min] = self.min_charge_kg
        out[~heard_max] = np.inf
        return np.asarray(out)
