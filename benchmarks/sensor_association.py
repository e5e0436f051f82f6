"""Benchmark: explosion association, trucewatch vs PyOcto vs GaMMA on the same scenarios.

Built like PyOcto's own benchmark: generated scenarios with ground truth
(trucewatch.demo.sensors), a predicted event matches a true one when they
share >= 60 % of the larger detection set, precision / recall / F1 over the
detectable true events (>= 4 stations), location error of matched events against
the Cramer-Rao bound of each true event's detecting stations, and wall time of the
association call plus the peak memory of the process. Each method runs in its own
process on exactly the same files; PyOcto and GaMMA in the virtual environment
``.venv-assoc`` (``python -m venv .venv-assoc && .venv-assoc/bin/pip install pyocto
GMMA``), with a homogeneous model: P at 6.0 km/s and the acoustic phase as "S" at
the scenario's sound speed. GaMMA gets a time limit (``--gamma-timeout``).

    .venv/bin/python benchmarks/sensor_association.py [--scenarios quiet,moderate,barrage]
        [--hours 24] [--gamma-timeout 300] [--no-peers] [--pyocto-tolerances 0.3,0.6]

    A scenario may carry its own duration: --scenarios clean:6,quiet:24,moderate:12,barrage:3
    (default: clean:6,quiet:24,moderate_calm:6,moderate:12,barrage:3)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from lab.proc import run_group
from lab.scoring import location_errors_km, score
from trucewatch.demo.sensors import PRESETS, SensorScenario, SensorScenarioData, generate
from trucewatch.sensors.association import ExplosionAssociator, Network, Picks
from trucewatch.sensors.location import crlb_xy
from trucewatch.sensors.propagation import ACOUSTIC, PHASES

ROOT = Path(__file__).resolve().parent
PEER_PY = ROOT.parent / ".venv-assoc" / "bin" / "python"


def write_inputs(data: SensorScenarioData, folder: Path) -> dict[str, object]:
    """Local-km stations and second-based picks for every method (phase P / S naming)."""
    folder.mkdir(parents=True, exist_ok=True)
    net = Network.from_table(data.stations)
    picks = Picks.from_table(data.detections, net)
    pl.DataFrame({"id": list(net.ids), "x": net.x_km, "y": net.y_km, "z": net.z_km,
                  "kind": data.stations["kind"]}).write_csv(folder / "stations.csv")
    pl.DataFrame({"detection_id": picks.ids.tolist(),
                  "station": [net.ids[s] for s in picks.station],
                  "phase": np.where(picks.phase == ACOUSTIC, "S", "P").tolist(),
                  "time": picks.t}).write_csv(folder / "picks.csv")
    data.detections.write_parquet(folder / "detections.parquet")
    data.stations.write_parquet(folder / "stations.parquet")
    sc = data.scenario
    prop = sc.propagation()
    a = ExplosionAssociator(propagation=prop)
    cfg = {"vp": 6.0, "vs": prop.acoustic.speed, "tolerance_s": a.tolerance_s,
           "max_distance_km": a.max_distance_km,
           "xlim": [float(net.x_km.min()) - a.margin_km, float(net.x_km.max()) + a.margin_km],
           "ylim": [float(net.y_km.min()) - a.margin_km, float(net.y_km.max()) + a.margin_km],
           "time_before_s": (a.max_distance_km or 100.0) / prop.acoustic.slowest,
           "min_node_size_km": 0.5, "location_node_km": 0.05, "pick_match_tolerance_s": 0.3,
           "min_interevent_time_s": 0.1, "min_picks": a.min_stations,
           # DBSCAN must keep one explosion's picks together: about half the longest
           # acoustic travel time (10 s, GaMMA's seismic default, splits every event)
           "gamma_dbscan_eps_s": 60.0,
           "threads": 2, "min_stations": a.min_stations,
           "temperature_c": sc.temperature_c, "wind": [sc.wind_east_m_s, sc.wind_north_m_s]}
    (folder / "config.json").write_text(json.dumps(cfg, indent=1))
    return cfg


def run_trucewatch(src: Path, out: Path) -> None:
    """Child-process entry: associate with trucewatch, write the same outputs as the peers."""
    cfg = json.loads((src / "config.json").read_text())
    from trucewatch.sensors.propagation import AcousticModel, Propagation
    stations = pl.read_parquet(src / "stations.parquet")
    detections = pl.read_parquet(src / "detections.parquet")
    net = Network.from_table(stations)
    picks = Picks.from_table(detections, net)
    prop = Propagation(AcousticModel(cfg["temperature_c"], *cfg["wind"]))
    t = time.perf_counter()
    res = ExplosionAssociator(propagation=prop).associate(net, picks)
    wall = time.perf_counter() - t
    res.assignments.drop_nulls("event_id").select("detection_id", "event_id").write_csv(
        out / "assignments.csv")
    res.events.filter(pl.col("status") == "located").select(
        "event_id", "x_km", "y_km").write_csv(out / "events.csv")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (out / "stats.json").write_text(json.dumps({"wall_s": wall, "peak_mb": peak,
                                                "events": res.events.height}))


def run_method(name: str, src: Path, out: Path, timeout: float) -> dict[str, object]:
    out.mkdir(parents=True, exist_ok=True)
    if name == "trucewatch":
        cmd = [sys.executable, __file__, "--run-trucewatch", str(src), str(out)]
    else:
        cmd = [str(PEER_PY), str(ROOT / "peers" / f"{name}_runner.py"), str(src), str(out)]
    t = time.perf_counter()
    try:
        proc = run_group(cmd, timeout)  # the peer's pool too, on a timeout
    except subprocess.TimeoutExpired:
        return {"status": f"did not finish in {timeout:.0f} s", "wall_s": None}
    if proc.returncode != 0:
        return {"status": "failed: " + proc.stderr.strip().splitlines()[-1][:200]
                if proc.stderr.strip() else f"failed (exit {proc.returncode})", "wall_s": None}
    stats = json.loads((out / "stats.json").read_text())
    stats["process_s"] = time.perf_counter() - t
    stats["status"] = "ok"
    return stats


def evaluate(data: SensorScenarioData, src: Path, out: Path, net: Network,
             min_stations: int) -> dict[str, float | int]:
    pred = pl.read_csv(out / "assignments.csv", schema_overrides={"event_id": pl.String})
    s = score(data.truth, data.detections.select("detection_id", "station"), pred,
              min_stations=min_stations)
    ev = pl.read_csv(out / "events.csv", schema_overrides={"event_id": pl.String})
    true_xy = _true_xy(data, net)
    err = location_errors_km(s.pairs, true_xy, ev)
    crlb = _crlb(data, net, s.pairs["true_id"])
    return {**s.row(), "err_med_m": float(np.median(err) * 1000) if len(err) else np.nan,
            "err_p90_m": float(np.percentile(err, 90) * 1000) if len(err) else np.nan,
            "crlb_med_m": float(np.median(crlb) * 1000) if len(crlb) else np.nan}


def _true_xy(data: SensorScenarioData, net: Network) -> pl.DataFrame:
    from trucewatch.geo.crs import project_points
    x, y = project_points(data.events["longitude"].to_numpy(),
                          data.events["latitude"].to_numpy(), net.crs)
    return data.events.select("event_id").with_columns(x_km=x / 1000, y_km=y / 1000)


def _crlb(data: SensorScenarioData, net: Network, true_ids: pl.Series) -> np.ndarray:
    """sqrt(trace) of the (x, y) Cramer-Rao bound per matched true event: its detecting
    stations, and the scenario's timing noise plus model error."""
    sc = data.scenario
    prop = sc.propagation()
    txy = _true_xy(data, net)
    det = (data.truth.join(data.detections.select("detection_id", "station", "phase"),
                           on="detection_id")
           .filter(pl.col("event_id").is_in(true_ids.implode()))
           .join(txy, on="event_id"))
    index = {s: k for k, s in enumerate(net.ids)}
    out = []
    for (_,), g in det.group_by(["event_id"]):
        st = np.array([index[s] for s in g["station"]])
        ph = np.array([PHASES[p.lower()] for p in g["phase"]], dtype=np.int8)
        x, y = float(g["x_km"][0]), float(g["y_km"][0])
        tt = prop.travel_time(ph, net.x_km[st] - x, net.y_km[st] - y, net.z_km[st])
        pick = np.where(ph == ACOUSTIC, sc.timing_sigma_s, 0.4 * sc.timing_sigma_s)
        sigma = np.sqrt(pick**2 + net.timing_s[st] ** 2 + (sc.model_error * tt) ** 2)
        if len(set(st.tolist())) < 3:
            continue
        c = crlb_xy(net.x_km[st], net.y_km[st], net.z_km[st], ph, sigma, x, y, prop)
        out.append(float(np.sqrt(np.trace(c))))
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios",
                    default="clean:6,quiet:24,moderate_calm:6,moderate:12,barrage:3")
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--gamma-timeout", type=float, default=300.0)
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--pyocto-tolerances", default="0.3,0.6")
    ap.add_argument("--seeds", default="", help="run each scenario with these seeds")
    ap.add_argument("--methods", default="trucewatch,pyocto,gamma")
    ap.add_argument("--work", default=str(ROOT / "results" / "sensors"))
    args = ap.parse_args()
    methods = args.methods.split(",")
    if args.no_peers or not PEER_PY.exists():
        if not args.no_peers:
            print(f"peers skipped: {PEER_PY} not found (see the module docstring)")
        methods = ["trucewatch"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    rows = []
    specs = [(spec, seed) for spec in args.scenarios.split(",")
             for seed in (args.seeds.split(",") if args.seeds else [None])]
    for spec, seed in specs:
        base, _, hours = spec.partition(":")  # "barrage:2" runs 2 hours of that preset
        sc: SensorScenario = replace(PRESETS[base], duration_h=float(hours or args.hours))
        name = base
        if seed is not None:
            sc = replace(sc, seed=int(seed))
            name = f"{base} seed {seed}"
        data = generate(sc)
        src = Path(args.work) / name.replace(" ", "_") / "input"
        write_inputs(data, src)
        net = Network.from_table(data.stations)
        n_real = data.truth["event_id"].is_not_null().sum()
        t = data.events["time"].dt.epoch("ms").to_numpy() / 1000
        peak = int(np.bincount(np.floor(t - t.min()).astype(int)).max()) if len(t) else 0
        print(f"\n## {name}: {data.stations.height} stations, {data.events.height} explosions "
              f"in {sc.duration_h:g} h, {data.detections.height} detections "
              f"({data.detections.height - n_real} false), peak {peak} explosions in one "
              f"second, wind {sc.wind_east_m_s:g}/{sc.wind_north_m_s:g} m/s")
        for m in methods:
            variants = ([(f"pyocto tol {t}", t) for t in args.pyocto_tolerances.split(",")]
                        if m == "pyocto" else [(m, None)])
            for label, tol in variants:
                if tol is not None:  # a swept peer setting, the rest of the config unchanged
                    c = json.loads((src / "config.json").read_text())
                    c["tolerance_s"], c["pick_match_tolerance_s"] = float(tol), 1.5 * float(tol)
                    (src / "config.json").write_text(json.dumps(c, indent=1))
                timeout = args.gamma_timeout if m == "gamma" else args.timeout
                out_dir = Path(args.work) / name.replace(" ", "_") / label.replace(" ", "_")
                stats = run_method(m, src, out_dir, timeout)
                row: dict[str, object] = {"scenario": name, "method": label, **stats}
                if stats["status"] == "ok":
                    row.update(evaluate(data, src, out_dir, net, 4))
                rows.append(row)
                print(json.dumps(row, default=float), flush=True)
            write_inputs(data, src)  # restore the shared config
    table(rows)
    if args.seeds:
        summary(rows)


def summary(rows: list[dict[str, object]]) -> None:
    """Mean and range of F1 over seeds, per scenario and method."""
    print("\n| scenario | method | seeds | F1 mean | F1 min | F1 max | wall s mean |")
    print("|---|---|---|---|---|---|---|")
    groups: dict[tuple[str, str], list[dict[str, object]]] = {}
    for r in rows:
        if r["status"] == "ok":
            key = (str(r["scenario"]).split(" seed ")[0], str(r["method"]))
            groups.setdefault(key, []).append(r)
    for (sc, m), rs in groups.items():
        f1 = np.array([float(r["f1"]) for r in rs])  # type: ignore[arg-type]
        wall = np.mean([float(r["wall_s"]) for r in rs])  # type: ignore[arg-type]
        print(f"| {sc} | {m} | {len(rs)} | {f1.mean():.3f} | {f1.min():.3f} | {f1.max():.3f} "
              f"| {wall:.2f} |")


def table(rows: list[dict[str, object]]) -> None:
    print("\n| scenario | method | P | R | F1 | wall s | peak MB | median err m | p90 err m "
          "| CRLB median m | err/CRLB | F1 vs PyOcto | time vs PyOcto |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    # the reference is PyOcto's best setting on each scenario (highest F1)
    ref: dict[object, dict[str, object]] = {}
    for r in rows:
        if str(r["method"]).startswith("pyocto") and r["status"] == "ok" and (
                r["scenario"] not in ref or r["f1"] > ref[r["scenario"]]["f1"]):  # type: ignore[operator]
            ref[r["scenario"]] = r
    for r in rows:
        if r["status"] != "ok":
            print(f"| {r['scenario']} | {r['method']} | {r['status']} | | | | | | | | | | |")
            continue
        p = ref.get(r["scenario"])
        f1_ratio = f"{r['f1'] / p['f1']:.3f}" if p and p["f1"] else ""
        t_ratio = f"{r['wall_s'] / p['wall_s']:.2f}" if p else ""
        print(f"| {r['scenario']} | {r['method']} | {r['precision']:.3f} | {r['recall']:.3f} "
              f"| {r['f1']:.3f} | {r['wall_s']:.2f} | {r['peak_mb']:.0f} "
              f"| {r['err_med_m']:.0f} | {r['err_p90_m']:.0f} | {r['crlb_med_m']:.0f} "
              f"| {r['err_med_m'] / r['crlb_med_m']:.2f} | {f1_ratio} | {t_ratio} |")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--run-trucewatch":
        run_trucewatch(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
