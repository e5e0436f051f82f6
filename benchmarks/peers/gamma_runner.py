"""Run GaMMA on a scenario written by benchmarks/sensor_association.py.

Runs in the peer virtual environment (GaMMA pins scikit-learn 1.7). Usage:
python gamma_runner.py IN_DIR OUT_DIR. Same inputs and outputs as pyocto_runner.py.
Configuration follows GaMMA's README for a local network, with the acoustic phase as
"s" at the sound speed, DBSCAN pre-segmentation and the same minimum of picks.
"""

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from gamma.utils import association


def cpu_s() -> float:
    """CPU seconds of this process and of its finished worker processes (GaMMA's pool)."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    cfg = json.loads((src / "config.json").read_text())
    stations = pd.read_csv(src / "stations.csv")
    picks = pd.read_csv(src / "picks.csv")
    st = pd.DataFrame({"id": stations["id"], "x(km)": stations["x"], "y(km)": stations["y"],
                       "z(km)": -stations["z"]})
    t0 = pd.Timestamp("2026-01-01T00:00:00")
    pk = pd.DataFrame({"id": picks["station"], "type": picks["phase"].str.lower(),
                       "timestamp": t0 + pd.to_timedelta(picks["time"], unit="s"),
                       "prob": 1.0})
    config = {
        "dims": ["x(km)", "y(km)", "z(km)"], "vel": {"p": cfg["vp"], "s": cfg["vs"]},
        "use_dbscan": True, "dbscan_eps": cfg["gamma_dbscan_eps_s"], "dbscan_min_samples": 3,
        "use_amplitude": False, "method": "BGMM", "oversample_factor": 4,
        "x(km)": tuple(cfg["xlim"]), "y(km)": tuple(cfg["ylim"]), "z(km)": (0.0, 0.05),
        "bfgs_bounds": ((cfg["xlim"][0] - 1, cfg["xlim"][1] + 1),
                        (cfg["ylim"][0] - 1, cfg["ylim"][1] + 1), (0.0, 0.05), (None, None)),
        "min_picks_per_eq": cfg["min_picks"], "min_p_picks_per_eq": 0, "min_s_picks_per_eq": 0,
        "max_sigma11": 2.0, "max_sigma22": 1.0, "max_sigma12": 1.0, "ncpu": cfg.get("threads", 2),
    }
    t, cpu = time.perf_counter(), cpu_s()
    events, assignments = association(pk, st, config, method=config["method"])
    wall, cpu = time.perf_counter() - t, cpu_s() - cpu
    a = pd.DataFrame(assignments, columns=["pick_idx", "event_index", "gamma_score"])
    det = picks["detection_id"].to_numpy()
    pd.DataFrame({"detection_id": det[a["pick_idx"].to_numpy(dtype=int)],
                  "event_id": a["event_index"].astype(str).to_numpy()}).to_csv(
        out / "assignments.csv", index=False)
    ev = pd.DataFrame(events)
    pd.DataFrame({"event_id": ev["event_index"].astype(str) if len(ev) else [],
                  "x_km": ev["x(km)"] if len(ev) else [],
                  "y_km": ev["y(km)"] if len(ev) else []}).to_csv(out / "events.csv", index=False)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (out / "stats.json").write_text(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_mb": peak_mb,
                                                "events": len(ev), "n": int(np.size(det))}))


if __name__ == "__main__":
    main()
