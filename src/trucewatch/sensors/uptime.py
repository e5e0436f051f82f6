"""Station up and down intervals from heartbeats: a station is up from a heartbeat for
``silence`` (default 10 min) after it, so that a station whose heartbeats stop is down
``silence`` after the last one, until its next heartbeat. The network's steps (how many
stations were up, when) are what the network could hear over time; :meth:`Uptime.lines`
are the health sentences.

The intervals are derived vectorised (polars): a station's heartbeats in time order
start a new interval where one comes more than ``silence`` after the one before.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from trucewatch.errors import ConfigError

SILENCE = timedelta(minutes=10)
Interval = tuple[datetime, datetime]
TIME = pl.Datetime("us", "UTC")
BEATS: dict[str, pl.DataType] = {"station": pl.String(), "time": TIME}


def _intervals(beats: pl.DataFrame, silence: timedelta, until: datetime
               ) -> dict[str, list[Interval]]:
    """Each station's up intervals: from a heartbeat to ``silence`` after it (cut at
    ``until``), merged where they touch or overlap; heartbeats after ``until`` ignored."""
    df = (beats.filter(pl.col("time") <= until).sort("station", "time")
          .with_columns(pl.min_horizontal(pl.col("time") + silence, pl.lit(until))
                        .alias("end")))
    prev = pl.col("end").shift(1).over("station")
    df = df.with_columns((prev.is_null() | (pl.col("time") > prev)).cum_sum().over("station")
                         .alias("k"))
    spans = (df.group_by("station", "k").agg(pl.col("time").min().alias("a"),
                                              pl.col("end").max().alias("b"))
             .sort("station", "k"))
    out: dict[str, list[Interval]] = {}
    for station, _, a, b in spans.iter_rows():
        out.setdefault(station, []).append((a, b))
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
        """(start, end, stations up) over time, from the first heartbeat to ``until`` (a
        sweep over the intervals' edges; a station's intervals do not overlap)."""
        if self.start is None:
            return []
        edges = {self.start, self.until}
        delta: dict[datetime, int] = {}
        names = set(self.stations)
        for s, iv in self.up.items():
            for a, b in iv:
                edges |= {a, b}
                if s in names and a < b:
                    delta[a] = delta.get(a, 0) + 1
                    delta[b] = delta.get(b, 0) - 1
        n = sum(d for t, d in delta.items() if t < self.start)
        cuts = sorted(e for e in edges if self.start <= e <= self.until)
        out: list[tuple[datetime, datetime, int]] = []
        for a, b in itertools.pairwise(cuts):
            n += delta.get(a, 0)
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


def _frame(pairs: Iterable[tuple[str, datetime]]) -> pl.DataFrame:
    """``(station, time)`` pairs as a frame (polars converts aware datetimes one by one,
    slowly: they go in as microseconds since the epoch)."""
    names: list[str] = []
    us: list[int] = []
    for s, t in pairs:
        names.append(s)
        us.append(round(t.timestamp() * 1e6))  # exact to the microsecond until 2255
    return pl.DataFrame({"station": pl.Series(names, dtype=pl.String),
                         "time": pl.Series(us, dtype=pl.Int64).cast(TIME)})


def uptime(stations: Iterable[str],
           heartbeats: Iterable[tuple[str, datetime]] | pl.DataFrame,
           until: datetime, silence: timedelta = SILENCE) -> Uptime:
    """Up intervals per station from ``(station, time)`` heartbeats (pairs, or a frame of
    ``station`` and ``time``), up to ``until``."""
    if silence <= timedelta(0):
        raise ConfigError("heartbeat silence must be positive",
                          fix="give the time after which a silent station is down")
    names = sorted(set(stations))
    beats = (heartbeats.select("station", pl.col("time").cast(TIME))
             if isinstance(heartbeats, pl.DataFrame) else _frame(heartbeats))
    first = beats.filter(pl.col("time") <= until)["time"].min()
    u = Uptime(names, first if isinstance(first, datetime) else None, until, silence)
    spans = _intervals(beats, silence, until)
    u.up = {s: spans.get(s, []) for s in names}
    return u
