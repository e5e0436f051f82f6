"""Propagation models: how long a wave takes from an explosion to a station.

Two explicit models, combined in :class:`Propagation`:

* :class:`AcousticModel`: sound in air with an effective speed
  ``c_eff = c(T) + w . u`` where ``c(T) = 20.05 * sqrt(T + 273.15)`` m/s, ``w`` is
  the wind vector and ``u`` the unit vector from source to station (the usual
  effective-sound-speed approximation for near-ground propagation).
* :class:`SeismicModel`: P and S in a homogeneous half-space or a 1-D stack of
  flat layers. For a surface source and receiver the first arrival is the
  smallest of the direct wave and the head waves along every interface.

Explosions are at the surface (ground level, elevation 0 in the local frame);
station elevation enters through the straight-line (3-D) distance.

All functions work on numpy arrays. Distances are in km, times in seconds.
Every travel time is monotone in distance for a given direction, which the
associator relies on to bound travel times over a box.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from trucewatch.errors import ConfigError

# physically possible apparent speeds (km/s), re-exported: the parsers refuse what lies outside
from trucewatch.model.physics import MAX_SEISMIC_SPEED as MAX_SEISMIC_SPEED
from trucewatch.model.physics import MAX_SOUND_SPEED as MAX_SOUND_SPEED
from trucewatch.model.physics import MIN_SEISMIC_SPEED as MIN_SEISMIC_SPEED
from trucewatch.model.physics import MIN_SOUND_SPEED as MIN_SOUND_SPEED

F = NDArray[np.float64]

# phase codes used in arrays
ACOUSTIC, P, S = 0, 1, 2
PHASES = {"acoustic": ACOUSTIC, "p": P, "s": S}
PHASE_NAMES = ("acoustic", "P", "S")



def sound_speed_km_s(temperature_c: float) -> float:
    """Adiabatic sound speed in dry air, km/s (340.3 m/s at 15 degC)."""
    if not -80.0 <= temperature_c <= 60.0:
        raise ConfigError(f"air temperature {temperature_c} degC is outside -80..60",
                          fix="give the temperature in degrees Celsius")
    return 20.05 * math.sqrt(temperature_c + 273.15) / 1000.0


@dataclass(frozen=True)
class AcousticModel:
    """Sound in air. ``wind_east_m_s``/``wind_north_m_s`` is the wind vector (where it blows to)."""

    temperature_c: float = 15.0
    wind_east_m_s: float = 0.0
    wind_north_m_s: float = 0.0

    def __post_init__(self) -> None:
        c = self.speed
        if self.wind_speed >= 0.5 * c:
            raise ConfigError(f"wind {self.wind_speed * 1000:.0f} m/s is not a near-ground wind",
                              fix="give the wind in m/s (east and north components)")

    @property
    def speed(self) -> float:
        return sound_speed_km_s(self.temperature_c)

    @property
    def wind_speed(self) -> float:
        return math.hypot(self.wind_east_m_s, self.wind_north_m_s) / 1000.0

    def travel_time(self, dx: F, dy: F, dz: F) -> F:
        """dx, dy, dz: station minus source (km)."""
        horiz = np.hypot(dx, dy)
        dist = np.sqrt(horiz * horiz + dz * dz)
        with np.errstate(invalid="ignore", divide="ignore"):
            along = np.where(horiz > 0, (self.wind_east_m_s * dx + self.wind_north_m_s * dy)
                             / (1000.0 * horiz), 0.0)
        return dist / (self.speed + along)

    def bounds(self, dmin: F, dmax: F) -> tuple[F, F]:
        w = self.wind_speed
        return dmin / (self.speed + w), dmax / (self.speed - w)

    @property
    def slowest(self) -> float:
        return self.speed - self.wind_speed


@dataclass(frozen=True)
class Layer:
    thickness_km: float  # math.inf for the half-space at the bottom
    vp: float
    vs: float


@dataclass(frozen=True)
class SeismicModel:
    """Flat layers from the surface down; the last one is a half-space."""

    layers: tuple[Layer, ...] = field(default_factory=lambda: (Layer(math.inf, 6.0, 3.46),))

    @classmethod
    def homogeneous(cls, vp: float = 6.0, vs: float = 3.46) -> SeismicModel:
        return cls((Layer(math.inf, vp, vs),))

    def __post_init__(self) -> None:
        if not self.layers:
            raise ConfigError("a seismic model needs at least one layer",
                              fix="give vp and vs, or a list of layers")
        for k, lay in enumerate(self.layers):
            for name, v in (("vp", lay.vp), ("vs", lay.vs)):
                if not MIN_SEISMIC_SPEED <= v <= MAX_SEISMIC_SPEED:
                    raise ConfigError(f"layer {k}: {name} = {v} km/s is not a possible "
                                      "seismic velocity",
                                      fix=f"velocities are in km/s, between {MIN_SEISMIC_SPEED} "
                                      f"and {MAX_SEISMIC_SPEED}")
            if lay.vs >= lay.vp:
                raise ConfigError(f"layer {k}: vs {lay.vs} >= vp {lay.vp}",
                                  fix="S is slower than P; check the order of the columns")
            if k < len(self.layers) - 1 and not 0 < lay.thickness_km < math.inf:
                raise ConfigError(f"layer {k}: thickness {lay.thickness_km} km",
                                  fix="every layer but the last has a finite positive thickness")

    def _velocities(self, phase: int) -> list[float]:
        return [lay.vp if phase == P else lay.vs for lay in self.layers]

    def time_at(self, dist: F, phase: int) -> F:
        """First-arrival time at 3-D distance ``dist`` for a surface source."""
        v = self._velocities(phase)
        best = dist / v[0]
        for n in range(1, len(v)):
            if v[n] <= max(v[:n]):
                continue  # no head wave along a low-velocity layer
            delay = sum(2 * self.layers[k].thickness_km
                        * math.sqrt(1 / v[k] ** 2 - 1 / v[n] ** 2) for k in range(n))
            best = np.minimum(best, dist / v[n] + delay)
        return best

    def slowest(self, phase: int) -> float:
        return min(self._velocities(phase))


@dataclass(frozen=True)
class Propagation:
    """Travel times for every phase; the one object the associator and locator use."""

    acoustic: AcousticModel = field(default_factory=AcousticModel)
    seismic: SeismicModel = field(default_factory=SeismicModel)

    def travel_time(self, phase: NDArray[np.int8], dx: F, dy: F, dz: F) -> F:
        out = np.empty(np.broadcast(phase, dx).shape)
        dist = np.sqrt(dx * dx + dy * dy + dz * dz)
        ac = phase == ACOUSTIC
        if ac.any():
            out[ac] = self.acoustic.travel_time(dx[ac], dy[ac], dz[ac])
        for ph in (P, S):
            m = phase == ph
            if m.any():
                out[m] = self.seismic.time_at(dist[m], ph)
        return out

    def bounds(self, phase: NDArray[np.int8], dmin: F, dmax: F) -> tuple[F, F]:
        """Smallest and largest travel time for distances in [dmin, dmax], any direction."""
        lo = np.empty_like(dmin)
        hi = np.empty_like(dmax)
        ac = phase == ACOUSTIC
        if ac.any():
            lo[ac], hi[ac] = self.acoustic.bounds(dmin[ac], dmax[ac])
        for ph in (P, S):
            m = phase == ph
            if m.any():
                lo[m] = self.seismic.time_at(dmin[m], ph)
                hi[m] = self.seismic.time_at(dmax[m], ph)
        return lo, hi

    def max_slowness(self, phase: NDArray[np.int8]) -> F:
        """Upper bound of |grad T| (s/km) per detection: how fast a travel time can change
        when the source moves. With wind the direction term adds w/(c-w)."""
        c, w = self.acoustic.speed, self.acoustic.wind_speed
        table = np.array([(1 + 2 * w / (c - w)) / (c - w), 1 / self.seismic.slowest(P),
                          1 / self.seismic.slowest(S)])
        return np.asarray(table[phase], dtype=np.float64)

    def slowest_speed(self, phases: NDArray[np.int8]) -> float:
        speeds = {ACOUSTIC: self.acoustic.slowest, P: self.seismic.slowest(P),
                  S: self.seismic.slowest(S)}
        present = [speeds[int(p)] for p in np.unique(phases)] or [self.acoustic.slowest]
        return min(present)


def weather_for(detections: Path) -> Propagation:
    """The air the sound crossed: ``weather.json`` beside the detections file
    (temperature_c, wind_east_m_s, wind_north_m_s), else 15 degC and calm."""
    path = detections.parent / "weather.json"
    if not path.exists():
        return Propagation()
    try:
        w = json.loads(path.read_text(encoding="utf-8"))
        return Propagation(AcousticModel(float(w.get("temperature_c", 15.0)),
                                         float(w.get("wind_east_m_s", 0.0)),
                                         float(w.get("wind_north_m_s", 0.0))))
    except (json.JSONDecodeError, TypeError, ValueError, AttributeError) as err:
        raise ConfigError(f"{path}: not a weather file ({err})",
                          fix='write {"temperature_c": 12, "wind_east_m_s": 4, '
                          '"wind_north_m_s": 1}') from err
