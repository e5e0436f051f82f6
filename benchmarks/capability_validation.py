"""Benchmark: the detection-capability map (sensors/capability.py) against the truth of
the built-in scenario's ground-sensor network.

For every true explosion of the scenario (``sensors/events.csv``: place and charge in
kg TNT-equivalent), the capability model gives the smallest charge the network would
have heard there with probability >= 0.9 by at least 4 stations (all stations up, the
joint stage's prior curve, W_ref 6 kg, as the cycle's map). The explosions are then
associated by trucewatch's associator, and each true event counts as *located* when a
located event shares >= 60 % of its detections (``lab.scoring.score``, as in
``sensor_association.py``). Printed: how often an explosion whose charge is above the
mapped smallest-heard charge was in fact located (the map promises >= 90 %), the same
below it, and by the ratio charge / mapped charge.

    PYTHONPATH=src:benchmarks python benchmarks/capability_validation.py
        [--hours 48] [--per-day 200] [--seeds 7,8,9] [--no-outages] [--json OUT]

The scenario is the built-in one's network (40 stations on the middle of the line,
``demo/builtin.py:_write_sensors``, seed 7 there), longer and busier so that the figure
rests on hundreds of events; ``--no-outages`` sets the scenario's station outages to
none (the map here assumes every station up: an explosion during an outage is the
map's error only when the outage is unknown to it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from lab.scoring import score
from trucewatch.demo.builtin import SENSOR_DAY, front_towns
from trucewatch.demo.sensors import SensorScenario, generate
from trucewatch.geo.crs import project_points
from trucewatch.sensors.association import ExplosionAssociator, Network, Picks
from trucewatch.sensors.capability import CapabilityModel
from trucewatch.sensors.propagation import AcousticModel, Propagation

BINS = ((0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, np.inf))


def builtin_like(seed: int, hours: float, per_day: float, outages: bool) -> SensorScenario:
    towns = front_towns()
    lat0 = round(float(np.mean([t[1] for t in towns])), 3)
    lon0 = round(float(np.mean([t[2] for t in towns])), 3)
    sc = SensorScenario("builtin", seed=seed, lat0=lat0, lon0=lon0, n_stations=40,
                        start=SENSOR_DAY, duration_h=hours, explosions_per_day=per_day,
                        false_ratio=0.2)
    return sc if outages else replace(sc, dropout_fraction=0.0)


def run(sc: SensorScenario, model: CapabilityModel) -> dict[str, Any]:
    data = generate(sc)
    net = Network.from_table(data.stations)
    picks = Picks.from_table(data.detections, net)
    prop = Propagation(AcousticModel(sc.temperature_c, sc.wind_east_m_s, sc.wind_north_m_s))
    t = time.perf_counter()
    res = ExplosionAssociator(propagation=prop).associate(net, picks)
    assoc_s = time.perf_counter() - t
    pred = res.assignments.select("detection_id", "event_id")
    s = score(data.truth, data.detections.select("detection_id", "station"), pred)
    located = set(s.pairs["true_id"].to_list())
    ev = data.events
    sx, sy = project_points(data.stations["longitude"].to_numpy(),
                            data.stations["latitude"].to_numpy(), data.crs)
    ex, ey = ev["x_km"].to_numpy() * 1000, ev["y_km"].to_numpy() * 1000
    d_km = np.hypot(ex[:, None] - sx[None, :], ey[:, None] - sy[None, :]) / 1000
    t = time.perf_counter()
    mapped = model.min_charge(d_km)
    map_s = time.perf_counter() - t
    charge = ev["charge_kg"].to_numpy()
    hit = np.array([e in located for e in ev["event_id"].to_list()])
    return {"events": ev.height, "charge": charge, "mapped": mapped, "hit": hit,
            "assoc_s": assoc_s, "map_s": map_s, "recall": s.recall,
            "precision": s.precision}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    charge = np.concatenate([r["charge"] for r in runs])
    mapped = np.concatenate([r["mapped"] for r in runs])
    hit = np.concatenate([r["hit"] for r in runs])
    ratio = np.where(np.isfinite(mapped), charge / mapped, 0.0)
    above, below = ratio > 1.0, ratio <= 1.0

    def share(mask: np.ndarray) -> dict[str, Any]:
        n = int(mask.sum())
        return {"events": n, "located": int(hit[mask].sum()),
                "share": round(float(hit[mask].mean()), 3) if n else None}

    return {"events": int(charge.size), "above_mapped": share(above),
            "at_or_below_mapped": share(below),
            "not_observed_by_map": share(~np.isfinite(mapped)),
            "by_ratio": [{"ratio": f"{lo:g}-{hi:g}", **share((ratio > lo) & (ratio <= hi))}
                         for lo, hi in BINS],
            "assoc_s": round(sum(r["assoc_s"] for r in runs), 2),
            "map_s": round(sum(r["map_s"] for r in runs), 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=48.0)
    ap.add_argument("--per-day", type=float, default=200.0)
    ap.add_argument("--seeds", default="7,8,9")
    ap.add_argument("--no-outages", action="store_true")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    model = CapabilityModel()
    runs = [run(builtin_like(int(s), a.hours, a.per_day, not a.no_outages), model)
            for s in a.seeds.split(",")]
    got = summarise(runs)
    got["model"] = model.describe()
    got["association_recall"] = [round(r["recall"], 3) for r in runs]
    print(f"capability map vs truth: {got['events']} true explosions, seeds {a.seeds}, "
          f"{a.hours:g} h at {a.per_day:g}/day, outages {'off' if a.no_outages else 'on'}")
    for key, what in (("above_mapped", "charge above the mapped smallest-heard charge"),
                      ("at_or_below_mapped", "charge at or below it"),
                      ("not_observed_by_map", "where the map hears nothing up to 1 t")):
        s = got[key]
        print(f"  {what}: {s['located']}/{s['events']} located ({s['share']})")
    for b in got["by_ratio"]:
        print(f"    charge / mapped {b['ratio']:>7}: {b['located']}/{b['events']} "
              f"({b['share']})")
    print(f"  association recall per seed {got['association_recall']}; association "
          f"{got['assoc_s']} s, map {got['map_s']} s")
    if a.json:
        a.json.write_text(json.dumps(got, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
