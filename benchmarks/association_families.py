"""Benchmark: explosion association on independent scenario families, against the oracle.

The scenarios come from :mod:`lab.families`, a generator that differs
from the project's own (``demo/sensors.py``) in station layout, detection model,
timing noise and false-detection process (see its docstring). For every family,
intensity and seed the benchmark reports, in one run on the same files:

* trucewatch's F1 (every configured variant: ``cascade`` is the greedy cascade
  alone, ``joint`` adds the joint re-assignment of ``JointRefiner``);
* the **oracle** F1 (knows every true explosion's place and time; each detection to
  the explosion whose predicted arrival fits best within 3 sigma of the
  range-dependent timing noise; events with >= 4 detections) and F1 / oracle;
* PyOcto's F1 (``.venv-assoc``, see benchmarks/sensor_association.py), same inputs;
* wall time of the association call and the child process's peak memory;
* median location error of matched events, and the median Cramer-Rao bound.

Scoring is the same 60 %-shared-detections rule as benchmarks/sensor_association.py.

    .venv/bin/python benchmarks/association_families.py \
        [--families grid-uniform,random-bursty,roads-correlated,arrays-uniform] \
        [--intensities quiet:24,busy:4,dense:1] [--seeds 1,2] \
        [--methods cascade,joint,pyocto,gamma] [--pyocto-tolerance 0.3]

    .venv/bin/python benchmarks/association_families.py --bad-input \
        [--families grid-uniform] [--intensities busy:1.5] [--seeds 1]

With ``--bad-input`` each scenario is run again with every bad-input case laid over it
(``scenario.families.perturb``: a drifting clock, a noisy station at 100x and 400x,
two duplicated streams, half the stations lost half-way), through the intake path
(``ingest.sensors.parse_detections`` then ``sensors.events.locate_files``) with
and without the station-health check: F1, precision, recall, the flags raised (right
and wrong station), detections quarantined and wall time.
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
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lab.families import (
    FAMILIES,
    FamilyData,
    Perturbation,
    family,
    generate,
    oracle_assignments,
    perturb,
)
from lab.proc import run_group
from lab.scoring import location_errors_km, score
from sensor_association import PEER_PY, write_inputs
from trucewatch.geo.crs import project_points
from trucewatch.sensors.association import ExplosionAssociator, JointRefiner, Network, Picks
from trucewatch.sensors.location import crlb_xy
from trucewatch.sensors.propagation import PHASES, P

ROOT = Path(__file__).resolve().parent
PEERS = ("pyocto", "gamma")  # run by benchmarks/peers/NAME_runner.py in .venv-assoc
# variants of the joint stage (JointRefiner's arguments), by method name
JOINT_VARIANTS: dict[str, dict[str, object]] = {"joint": {},
                                                "joint-far": {"em_distance_cap": False}}


def associator(variant: str, cfg: dict[str, object]) -> ExplosionAssociator:
    from trucewatch.sensors.propagation import AcousticModel, Propagation
    wind = cfg["wind"]
    assert isinstance(wind, list)
    prop = Propagation(AcousticModel(float(cfg["temperature_c"]),  # type: ignore[arg-type]
                                     float(wind[0]), float(wind[1])))
    if variant == "cascade":
        return ExplosionAssociator(propagation=prop, joint=None)
    return ExplosionAssociator(propagation=prop,
                               joint=JointRefiner(**JOINT_VARIANTS[variant]))  # type: ignore[arg-type]


def run_child(variant: str, src: Path, out: Path) -> None:
    """Child-process entry: one trucewatch variant, the same outputs as the peers."""
    cfg = json.loads((src / "config.json").read_text())
    stations = pl.read_parquet(src / "stations.parquet")
    detections = pl.read_parquet(src / "detections.parquet")
    net = Network.from_table(stations)
    picks = Picks.from_table(detections, net)
    a = associator(variant, cfg)
    t, cpu = time.perf_counter(), time.process_time()
    res = a.associate(net, picks)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    res.assignments.drop_nulls("event_id").select("detection_id", "event_id").write_csv(
        out / "assignments.csv")
    res.events.filter(pl.col("status") == "located").select(
        "event_id", "x_km", "y_km").write_csv(out / "events.csv")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (out / "stats.json").write_text(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_mb": peak,
                                                "events": res.events.height}))


def run(method: str, src: Path, out: Path, timeout: float) -> dict[str, object]:
    out.mkdir(parents=True, exist_ok=True)
    if method in PEERS:
        cmd = [str(PEER_PY), str(ROOT / "peers" / f"{method}_runner.py"), str(src), str(out)]
    else:
        cmd = [sys.executable, __file__, "--child", method, str(src), str(out)]
    try:
        proc = run_group(cmd, timeout)  # the peer's pool too, on a timeout
    except subprocess.TimeoutExpired:
        return {"status": f"did not finish in {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()
        return {"status": "failed: " + (tail[-1][:200] if tail else str(proc.returncode))}
    stats: dict[str, object] = json.loads((out / "stats.json").read_text())
    stats["status"] = "ok"
    return stats


def true_xy(data: FamilyData, net: Network) -> pl.DataFrame:
    x, y = project_points(data.events["longitude"].to_numpy(),
                          data.events["latitude"].to_numpy(), net.crs)
    return data.events.select("event_id").with_columns(x_km=x / 1000, y_km=y / 1000)


def crlb_m(data: FamilyData, net: Network, true_ids: pl.Series) -> float:
    """Median over the matched true events of sqrt(trace) of the (x, y) Cramer-Rao bound
    for their detecting stations and the generator's timing noise (the Student-t(4)
    noise of scale s has standard deviation s * sqrt(2))."""
    prop = data.scenario.propagation()
    txy = true_xy(data, net)
    det = (data.truth.join(data.detections.select("detection_id", "station", "phase"),
                           on="detection_id")
           .filter(pl.col("event_id").is_in(true_ids.implode())).join(txy, on="event_id"))
    index = {s: k for k, s in enumerate(net.ids)}
    out = []
    for (_,), g in det.group_by(["event_id"]):
        st = np.array([index[s] for s in g["station"]])
        if len(set(st.tolist())) < 3:
            continue
        ph = np.array([PHASES[p.lower()] for p in g["phase"]], dtype=np.int8)
        x, y = float(g["x_km"][0]), float(g["y_km"][0])
        dist = np.hypot(net.x_km[st] - x, net.y_km[st] - y)
        sig = data.sigma(st, dist) * np.where(ph == P, 0.5, 1.0) * np.sqrt(2.0)
        c = crlb_xy(net.x_km[st], net.y_km[st], net.z_km[st], ph, sig, x, y, prop)
        out.append(float(np.sqrt(np.trace(c))))
    return float(np.median(out) * 1000) if out else float("nan")


def evaluate(data: FamilyData, out: Path, net: Network) -> dict[str, object]:
    pred = pl.read_csv(out / "assignments.csv", schema_overrides={"event_id": pl.String,
                                                                 "detection_id": pl.String})
    s = score(data.truth, data.detections.select("detection_id", "station"), pred)
    ev = pl.read_csv(out / "events.csv", schema_overrides={"event_id": pl.String})
    err = location_errors_km(s.pairs, true_xy(data, net), ev)
    return {**s.row(), "err_med_m": float(np.median(err) * 1000) if len(err) else np.nan,
            "crlb_med_m": crlb_m(data, net, s.pairs["true_id"])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--intensities", default="quiet:24,busy:4,dense:1")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--methods", default="cascade,joint,pyocto")
    ap.add_argument("--pyocto-tolerance", type=float, default=0.3)
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--work", default=str(ROOT / "results" / "families"))
    ap.add_argument("--json", default="", help="also write every row to this file")
    ap.add_argument("--bad-input", action="store_true",
                    help="the bad-input cases with and without the health check")
    args = ap.parse_args()
    if args.bad_input:
        bad_input(args)
        return
    methods = args.methods.split(",")
    for peer in PEERS:
        if peer in methods and not PEER_PY.exists():
            print(f"{peer} skipped: {PEER_PY} not found (see benchmarks/sensor_association.py)")
            methods.remove(peer)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    rows: list[dict[str, object]] = []
    for fam in args.families.split(","):
        for spec in args.intensities.split(","):
            inten, _, hours = spec.partition(":")
            for seed in args.seeds.split(","):
                sc = family(fam, inten, int(seed), float(hours) if hours else None)
                data = generate(sc)
                name = f"{sc.name} s{seed}"
                src = Path(args.work) / name.replace(" ", "_") / "input"
                cfg = write_inputs(data, src)  # type: ignore[arg-type]
                cfg["tolerance_s"] = args.pyocto_tolerance
                cfg["pick_match_tolerance_s"] = 1.5 * args.pyocto_tolerance
                (src / "config.json").write_text(json.dumps(cfg, indent=1))
                net = Network.from_table(data.stations)
                orc = score(data.truth, data.detections.select("detection_id", "station"),
                            oracle_assignments(data))
                n_false = data.truth["event_id"].null_count()
                print(f"\n## {name}: {sc.duration_h:g} h, {data.stations.height} stations, "
                      f"{data.events.height} explosions ({orc.n_true} heard by >= 4), "
                      f"{data.detections.height} detections ({n_false} false); "
                      f"oracle F1 {orc.f1:.3f}", flush=True)
                for m in methods:
                    stats = run(m, src, Path(args.work) / name.replace(" ", "_") / m,
                                args.timeout)
                    row: dict[str, object] = {
                        "family": fam, "intensity": inten, "seed": int(seed),
                        "hours": sc.duration_h, "method": m, "oracle_f1": orc.f1,
                        "detections": data.detections.height, **stats}
                    if stats["status"] == "ok":
                        row.update(evaluate(data, Path(args.work) / name.replace(" ", "_") / m,
                                            net))
                        row["ratio"] = float(row["f1"]) / orc.f1 if orc.f1 else np.nan  # type: ignore[arg-type]
                    rows.append(row)
                    print(json.dumps(row, default=float), flush=True)
    table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, default=float, indent=1))


BAD_CASES = {
    "none": Perturbation(),
    "clock drift (+2 s, +1 s/h)": Perturbation(drift_stations=1, drift_offset_s=2.0,
                                                drift_s_per_h=1.0),
    "noisy x100": Perturbation(noisy_stations=1, noisy_factor=100.0),
    "noisy x400": Perturbation(noisy_stations=1, noisy_factor=400.0),
    "2 duplicated streams": Perturbation(duplicate_stations=2),
    "half the stations lost half-way": Perturbation(dropout_fraction=0.5),
}


def bad_input(args: argparse.Namespace) -> None:
    """The bad-input cases through the intake path, with and without the health check."""
    from datetime import UTC, datetime

    from trucewatch.ingest.sensors import parse_detections
    from trucewatch.sensors.events import NO_HEALTH_CHECK, locate_files
    from trucewatch.sensors.health import StationProblem

    print("| scenario | case | health | F1 | P | R | flags (problems) | on the bad stations "
          "| on others (incl. the generator's own outages) "
          "| quarantined (health) | quarantined (intake: duplicates) "
          "| coverage lines name the bad stations | wall s |")
    print("|" + "---|" * 13)
    said: list[dict[str, object]] = []
    for fam in args.families.split(","):
        for spec in args.intensities.split(","):
            inten, _, hours = spec.partition(":")
            for seed in args.seeds.split(","):
                base = generate(family(fam, inten, int(seed), float(hours) if hours else None))
                for case, pert in BAD_CASES.items():
                    p = perturb(base, pert)
                    data = p.data
                    raw = data.detections.with_columns(pl.col("time").dt.strftime(
                        "%Y-%m-%dT%H:%M:%S%.6fZ")).write_csv().encode()
                    batch = parse_detections(raw, "d.csv", data.stations,
                                             now=datetime(2100, 1, 1, tzinfo=UTC))
                    a = ExplosionAssociator(propagation=data.scenario.propagation())
                    bad = {StationProblem.CLOCK: set(p.drifted), StationProblem.NOISY: set(p.noisy),
                           StationProblem.SILENT: set(p.dropped),
                           StationProblem.DEAF: set(p.dropped),
                           StationProblem.DUPLICATED: set(p.duplicated)}
                    for label, check in (("off", NO_HEALTH_CHECK), ("on", None)):
                        t = time.perf_counter()
                        res = locate_files(data.stations, batch, a, health=check)
                        wall = time.perf_counter() - t
                        sc = score(data.truth, data.detections.select("detection_id", "station"),
                                   res.assignments_all())
                        flags = res.health.flags if res.health else []
                        shown = [f for f in flags if f.problem is not StationProblem.CLOCK_BIAS]
                        right = sum(f.station in bad.get(f.problem, set()) for f in shown)
                        n_q = sum("health check" in q.reason for q in res.batch.quarantine)
                        n_dup = sum("duplicate" in q.reason for q in res.batch.quarantine)
                        kinds = ", ".join(sorted({f"{f.problem.value}" for f in shown})) or "-"
                        lines = res.health.lines() if res.health else []
                        # the coverage output must say which stations were bad: each bad
                        # station named in one of its sentences (k of n)
                        wanted = sorted({*p.drifted, *p.noisy, *p.duplicated, *p.dropped})
                        named = sum(any(f"Station {s}:" in ln or f" {s}," in ln
                                        or f" {s})" in ln or f" {s}:" in ln for ln in lines)
                                    for s in wanted)
                        said.append({"scenario": f"{fam}-{inten} s{seed}", "case": case,
                                     "health": label, "lines": lines,
                                     "quarantine_reasons": sorted({q.reason.split(";")[0][:90]
                                                                   for q in res.batch.quarantine
                                                                   })[:20]})
                        print(f"| {fam}-{inten} s{seed} {float(hours or 0):g} h | {case} | {label} "
                              f"| {sc.f1:.3f} | {sc.precision:.3f} | {sc.recall:.3f} | "
                              f"{len(shown)} ({kinds}) | {right} | {len(shown) - right} | "
                              f"{n_q} | {n_dup} | {named} of {len(wanted)} | {wall:.1f} |",
                              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(said, indent=1, default=str))


def table(rows: list[dict[str, object]]) -> None:
    """One line per scenario and seed: every method side by side (wall and CPU seconds
    of the association call: the machine may be shared)."""
    methods = list(dict.fromkeys(str(r["method"]) for r in rows))
    tw = [m for m in methods if m not in PEERS]
    peers = [m for m in PEERS if m in methods]
    head = ["family", "intensity", "seed", "detections", "oracle F1"]
    for m in tw:
        head += [f"{m} F1", f"{m} F1/oracle", f"{m} s", f"{m} CPU s", f"{m} MB",
                 f"{m} err m"]
    for m in peers:
        head += [f"{m} F1", f"{m} s", f"{m} CPU s", f"{m} MB"]
    head += ["CRLB m"]
    print("\n| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    keyed: dict[tuple[object, object, object], dict[str, dict[str, object]]] = {}
    for r in rows:
        keyed.setdefault((r["family"], r["intensity"], r["seed"]), {})[str(r["method"])] = r
    for (fam, inten, seed), by in keyed.items():
        first = next(iter(by.values()))
        cells = [str(fam), str(inten), str(seed), str(first["detections"]),
                 f"{float(first['oracle_f1']):.3f}"]  # type: ignore[arg-type]
        crlb = ""
        for m in tw:
            got = by.get(m)
            if got is None or got["status"] != "ok":
                cells += [str(got["status"]) if got else "", "", "", "", "", ""]
                continue
            cells += [f"{got['f1']:.3f}", f"{got['ratio']:.3f}", f"{got['wall_s']:.2f}",
                      f"{got['cpu_s']:.2f}", f"{got['peak_mb']:.0f}", f"{got['err_med_m']:.0f}"]
            crlb = f"{got['crlb_med_m']:.0f}"
        for m in peers:
            po = by.get(m)
            cells += ([f"{po['f1']:.3f}", f"{po['wall_s']:.2f}", f"{po['cpu_s']:.2f}",
                       f"{po['peak_mb']:.0f}"] if po and po["status"] == "ok"
                      else [str(po["status"]) if po else "", "", "", ""])
        cells.append(crlb)
        print("| " + " | ".join(cells) + " |")

if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        run_child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
