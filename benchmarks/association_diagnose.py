"""Diagnose an associator's errors against the oracle on one family scenario.

Every true event the oracle finds (its >= 4-detection assignment matches the truth by
the 60 % rule) and the associator misses is put in one class:

* ``unassigned``: most of its oracle detections are on no predicted event;
* ``merged``: one predicted event holds >= 60 % of them but also holds too many others
  (of other true events, or false detections) for the 60 % rule;
* ``split``: its detections are spread over several predicted events, none enough;
* ``stolen``: its detections sit mostly on events matched to other true events.

Predicted events matched to no true event (ghosts) are classed by what they hold: mostly
false detections, or fragments of true events. Each class is printed with the events'
stations, detections and charge, and the gap to the nearest other explosion.

    .venv/bin/python benchmarks/association_diagnose.py roads-correlated busy 2 --seed 1 \
        [--method joint|cascade] [--move-rounds N] [--no-em-distance-cap]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import replace

import numpy as np
import polars as pl

from lab.families import family, generate, oracle_assignments
from lab.scoring import score
from trucewatch.sensors.association import ExplosionAssociator, JointRefiner, Network, Picks


def classify(truth: pl.DataFrame, dets: pl.DataFrame, orc: pl.DataFrame,
             pred: pl.DataFrame, events: pl.DataFrame, detail: bool = False
             ) -> dict[str, object]:
    st = dets.select("detection_id", "station")
    s_orc = score(truth, st, orc)
    s_pred = score(truth, st, pred)
    found = set(s_orc.pairs["true_id"].to_list())
    got = set(s_pred.pairs["true_id"].to_list())
    matched_pred = dict(zip(s_pred.pairs["pred_id"].to_list(), s_pred.pairs["true_id"].to_list(),
                            strict=True))
    t_of = dict(zip(truth["detection_id"].to_list(), truth["event_id"].to_list(), strict=True))
    p_of = dict(zip(pred["detection_id"].to_list(), pred["event_id"].to_list(), strict=True))
    sta_of = dict(zip(st["detection_id"].to_list(), st["station"].to_list(), strict=True))
    o_dets: dict[str, list[str]] = {}
    for d, e in zip(orc["detection_id"].to_list(), orc["event_id"].to_list(), strict=True):
        if e is not None:
            o_dets.setdefault(e, []).append(d)
    p_dets: dict[str, list[str]] = {}
    for d, e in p_of.items():
        if e is not None:
            p_dets.setdefault(e, []).append(d)
    et = events.sort("time")
    tt = et["time"].dt.epoch("ms").to_numpy() / 1e3
    gaps = np.full(len(tt), np.inf)
    if len(tt) > 1:
        dt = np.diff(tt)
        gaps[1:] = dt
        gaps[:-1] = np.minimum(gaps[:-1], dt)
    gap_of = dict(zip(et["event_id"].to_list(), gaps, strict=True))
    charge = dict(zip(events["event_id"].to_list(), events["charge_kg"].to_list(), strict=True))
    missed: dict[str, list[tuple[float, ...]]] = {}
    for e in sorted(found - got):
        ds = o_dets.get(e, [])
        holders = Counter(p_of.get(d) for d in ds)
        n = len(ds)
        n_sta = len({sta_of[d] for d in ds})
        top, top_n = holders.most_common(1)[0]
        none_n = holders.get(None, 0)
        if none_n >= 0.5 * n:
            cls = "unassigned"
        elif top is not None and top_n >= 0.6 * n:
            cls = "merged" if top not in matched_pred else "stolen"
        elif sum(c for p, c in holders.items() if p in matched_pred) >= 0.5 * n:
            cls = "stolen"
        else:
            cls = "split"
        missed.setdefault(cls, []).append((n, n_sta, charge[e], gap_of[e]))
        if cls == "split" and detail:
            parts = []
            for p, c in holders.most_common():
                if p is None:
                    parts.append(f"free {c}")
                    continue
                own = Counter(t_of.get(d) for d in p_dets[p])
                parts.append(f"{c} of {len(p_dets[p])} on {p} (true events there "
                             f"{dict(own.most_common(3))})")
            print(f"  split {e} ({n} dets): " + "; ".join(parts))
    ghosts: dict[str, list[tuple[float, ...]]] = {}
    for p, ds in p_dets.items():
        if p in matched_pred:
            continue
        owners = Counter(t_of.get(d) for d in ds)
        false_n = owners.get(None, 0)
        true_owner, _ = max(((k, v) for k, v in owners.items() if k is not None),
                            key=lambda kv: kv[1], default=(None, 0))
        if false_n >= 0.5 * len(ds):
            cls = "mostly false"
        elif true_owner in got:
            cls = "fragment of a found event"
        else:
            cls = "fragment of a missed event"
        ghosts.setdefault(cls, []).append((len(ds), len({sta_of[d] for d in ds}), false_n))
    return {"oracle": s_orc, "pred": s_pred, "missed": missed, "ghosts": ghosts,
            "n_found": len(found), "missed_oracle_has": len(got - found)}


def summary(rows: list[tuple[float, ...]]) -> str:
    a = np.array(rows, dtype=float)
    return " ".join(f"{np.median(a[:, k]):.3g}" for k in range(a.shape[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("family")
    ap.add_argument("intensity")
    ap.add_argument("hours", type=float)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--method", default="joint")
    ap.add_argument("--move-rounds", type=int, default=None)
    ap.add_argument("--no-em-distance-cap", action="store_true",
                    help="JointRefiner(em_distance_cap=False)")
    ap.add_argument("--detail", action="store_true", help="print each split event's parts")
    args = ap.parse_args()
    sc = family(args.family, args.intensity, args.seed, args.hours)
    data = generate(sc)
    net = Network.from_table(data.stations)
    picks = Picks.from_table(data.detections, net)
    joint = None
    if args.method == "joint":
        joint = JointRefiner()
        if args.move_rounds is not None:
            joint = replace(joint, move_rounds=args.move_rounds)
        joint = replace(joint, em_distance_cap=not args.no_em_distance_cap)
    a = ExplosionAssociator(propagation=sc.propagation(), joint=joint)
    t = time.perf_counter()
    res = a.associate(net, picks)
    wall = time.perf_counter() - t
    pred = res.assignments.select("detection_id", "event_id")
    out = classify(data.truth, data.detections, oracle_assignments(data), pred, data.events,
                   args.detail)
    so, sp = out["oracle"], out["pred"]
    print(f"{sc.name} s{args.seed} {args.hours:g} h, {args.method}: wall {wall:.1f} s; "
          f"F1 {sp.f1:.3f} (P {sp.precision:.3f} R {sp.recall:.3f}, {sp.n_pred} events) "
          f"oracle {so.f1:.3f} (P {so.precision:.3f} R {so.recall:.3f}); "
          f"true detectable {sp.n_true}, oracle finds {out['n_found']}, "
          f"found by us not by the oracle {out['missed_oracle_has']}")
    print("missed (oracle finds): class: count; median detections, stations, charge kg, "
          "gap to nearest explosion s")
    for cls, rows in sorted(out["missed"].items()):  # type: ignore[union-attr]
        print(f"  {cls}: {len(rows)}; {summary(rows)}")
    print("ghosts: class: count; median detections, stations, false detections")
    for cls, rows in sorted(out["ghosts"].items()):  # type: ignore[union-attr]
        print(f"  {cls}: {len(rows)}; {summary(rows)}")


if __name__ == "__main__":
    main()
