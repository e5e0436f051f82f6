"""Station up and down intervals from heartbeats: a station is up from a heartbeat for
``silence`` (default 10 min) after it, so that a station whose heartbeats stop is down
``silence`` after the last one, until its next heartbeat. The network's steps (how many
stations were up, when) are what the network could hear over time; :meth:`Uptime.lines`
are the health sentences."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from trucewatch.errors import ConfigError

SILENCE = timedelta(minutes=10)
Interval = tuple[datetime, datetime]


def _merge(times: list[datetime], silence: timedelta, until: datetime) -> list[Interval]:
    out: list[Interval] = []
    for t in sorted(times):
        end = min(t + silence, until) if t <= until else t
        if t > until:
            continue
        if out and t <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((t, end))
    return out


@dataclass
class Uptime:
    stations: list[str]
    start: datetime | None
    until: datetime
    silence: timedelta
    up: dict[str, list[Interval]] = field(default_factory=dict)

    def down(self, station: str) -> list[Interval]:
        """The station's down intervals between the first heartbeat of the network and
        ``until`` (a station never heard from is down throughout)."""
        if self.start is None:
            return []
        out, t = [], self.start
        for a, b in self.up.get(station, []):
            if a > t:
                out.append((t, a))
            t = max(t, b)
        if t < self.until:
            out.append((t, self.until))
        return out

    def is_up(self, station: str, t0: datetime, t1: datetime) -> bool:
        return any(a <= t0 and t1 <= b for a, b in self.up.get(station, []))

    def steps(self) -> list[tuple[datetime, datetime, int]]:
        """(start, end, stations up) over time, from the first heartbeat to ``until``."""
        if self.start is None:
            return []
        edges = {self.start, self.until}
        for iv in self.up.values():
            for a, b in iv:
                edges |= {a, b}
        cuts = sorted(e for e in edges if self.start <= e <= self.until)
        out: list[tuple[datetime, datetime, int]] = []
        for a, b in itertools.pairwise(cuts):
            n = sum(any(x <= a and b <= y for x, y in self.up.get(s, []))
                    for s in self.stations)
            if out and out[-1][2] == n:
                out[-1] = (out[-1][0], b, n)
            else:
                out.append((a, b, n))
        return out

    def lines(self) -> list[str]:
        """One sentence per station outage, and the network at its lowest."""
        out = []
        for s in self.stations:
            for a, b in self.down(s):
                if not self.up.get(s):
                    out.append(f"Station {s} sent no heartbeat (down throughout, from "
                               f"{a:%Y-%m-%d %H:%M} to {b:%Y-%m-%d %H:%M}Z).")
                    break
                end = "the end" if b == self.until else f"{b:%Y-%m-%d %H:%M}Z"
                out.append(f"Station {s} down (no heartbeat for "
                           f"{self.silence.total_seconds() / 60:g} min) from "
                           f"{a:%Y-%m-%d %H:%M}Z to {end}.")
        steps = self.steps()
        if steps:
            low = min(steps, key=lambda x: x[2])
            out.append(f"Network: {low[2]} of {len(self.stations)} stations up at its "
                       f"lowest, from {low[0]:%Y-%m-%d %H:%M} to {low[1]:%Y-%m-%d %H:%M}Z.")
        return out

    def to_dict(self) -> dict[str, object]:
        def iso(t: datetime) -> str:
            return t.strftime("%Y-%m-%dT%H:%M:%SZ")

        return {"silence_s": self.silence.total_seconds(),
                "from": iso(self.start) if self.start else None, "until": iso(self.until),
                "stations": {s: {"up": [[iso(a), iso(b)] for a, b in self.up.get(s, [])],
                                 "down": [[iso(a), iso(b)] for a, b in self.down(s)]}
                             for s in self.stations},
                "network": [{"from": iso(a), "to": iso(b), "up": n}
                            for a, b, n in self.steps()],
                "lines": self.lines()}


def uptime(stations: Iterable[str], heartbeats: Iterable[tuple[str, datetime]],
           until: datetime, silence: timedelta = SILENCE) -> Uptime:
    """Up intervals per station from ``(station, time)`` heartbeats, up to ``until``."""
    if silence <= timedelta(0):
        raise ConfigError("heartbeat silence must be positive",
                          fix="give the time after which a silent station is down")
    names = sorted(set(stations))
    by: dict[str, list[datetime]] = {}
    for s, t in heartbeats:
        by.setdefault(s, []).append(t)
    times = [t for ts in by.values() for t in ts if t <= until]
    u = Uptime(names, min(times) if times else None, until, silence)
    u.up = {s: _merge(by.get(s, []), silence, until) for s in names}
    return u
