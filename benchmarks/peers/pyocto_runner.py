"""Run PyOcto on a scenario written by benchmarks/sensor_association.py.

Runs in its own virtual environment (pyocto needs numpy < 2 on Python 3.11), so it
imports nothing from trucewatch. Usage: python pyocto_runner.py IN_DIR OUT_DIR
IN_DIR holds stations.csv (id, x, y, z in km), picks.csv (detection_id, station,
phase P/S, time in s) and config.json; OUT_DIR gets assignments.csv, events.csv and
stats.json (wall time of associate() and peak memory).
"""

import json
import resource
import sys
import time
from pathlib import Path

import pandas as pd
import pyocto


def cpu_s() -> float:
    """CPU seconds of this process and of its finished worker processes (GaMMA's pool)."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    cfg = json.loads((src / "config.json").read_text())
    stations = pd.read_csv(src / "stations.csv")
    picks = pd.read_csv(src / "picks.csv")
    vm = pyocto.VelocityModel0D(p_velocity=cfg["vp"], s_velocity=cfg["vs"],
                                tolerance=cfg["tolerance_s"],
                                association_cutoff_distance=cfg["max_distance_km"])
    assoc = pyocto.OctoAssociator(
        xlim=tuple(cfg["xlim"]), ylim=tuple(cfg["ylim"]), zlim=(-0.05, 0.05),
        velocity_model=vm, time_before=cfg["time_before_s"],
        min_node_size=cfg["min_node_size_km"], min_node_size_location=cfg["location_node_km"],
        pick_match_tolerance=cfg["pick_match_tolerance_s"],
        min_interevent_time=cfg["min_interevent_time_s"], n_picks=cfg["min_picks"],
        n_p_picks=0, n_s_picks=0, n_p_and_s_picks=0, n_threads=cfg.get("threads", 2))
    p = picks.rename(columns={"time": "time"})[["station", "phase", "time"]].copy()
    t, cpu = time.perf_counter(), cpu_s()
    # PyOcto's z is depth (km, down); our z is height above the sources' ground level
    st = stations[["id", "x", "y"]].assign(z=-stations["z"])
    events, assignments = assoc.associate(p, st)
    wall, cpu = time.perf_counter() - t, cpu_s() - cpu
    # assignments: event_idx, pick_idx (row of picks), residual
    det = picks["detection_id"].to_numpy()
    a = pd.DataFrame({"detection_id": det[assignments["pick_idx"].to_numpy()],
                      "event_id": assignments["event_idx"].astype(str).to_numpy()})
    a.to_csv(out / "assignments.csv", index=False)
    ev = pd.DataFrame({"event_id": events["idx"].astype(str), "x_km": events["x"],
                       "y_km": events["y"], "t": events["time"]})
    ev.to_csv(out / "events.csv", index=False)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (out / "stats.json").write_text(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_mb": peak_mb,
                                                "events": len(events)}))


if __name__ == "__main__":
    main()
