"""What kind of errors an associator still makes on a scenario family, beside the oracle.

For each row (family, intensity, seed) the associator runs in-process (the same
configuration as ``association_families.py``), is scored with the 60 %-shared rule,
and every error is put in one class:

**missed** (a detectable true explosion that no prediction matches):

* ``oracle-misses``: the oracle does not match it either (ambiguity the physics leaves);
* ``free``: most of its detections are left on no event (never proposed, or dropped);
* ``absorbed``: one prediction holds >= 60 % of its detections but is too large (it also
  took another explosion's or false detections): a merge;
* ``scattered``: its detections went to several predictions, none holding 60 %.

For ``free``/``absorbed``/``scattered`` it also says whether the explosion's detections
that went to events went to events matched to *another* explosion (``stolen``).

**ghosts** (a prediction that matches no true explosion):

* ``false``: most of its detections are false detections;
* ``duplicate``: its main explosion is matched by another prediction (a split-off);
* ``partial``: its main explosion is matched by no prediction (it holds a share of it:
  the counterpart of ``scattered``/``absorbed`` misses);
* ``mixed``: no explosion holds half of its detections and false ones are not most.

    .venv/bin/python benchmarks/association_errors.py \
        [--families arrays-uniform,roads-correlated] [--intensities dense:0.3,busy:2] \
        [--seeds 1] [--method joint]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from association_families import JOINT_VARIANTS, associator
from lab.families import family, generate, oracle_assignments
from lab.scoring import score
from trucewatch.sensors.association import Network, Picks


def breakdown(truth: pl.DataFrame, stations_of: pl.DataFrame, pred: pl.DataFrame,
              oracle: pl.DataFrame) -> dict[str, Counter[str]]:
    """Classes of the misses and ghosts of ``pred`` (detection_id, event_id)."""
    s = score(truth, stations_of, pred)
    o = score(truth, stations_of, oracle)
    t = truth.rename({"event_id": "true_id"})
    p = pred.select("detection_id", pl.col("event_id").alias("pred_id"))
    j = t.join(p, on="detection_id", how="left")
    detectable = (t.drop_nulls("true_id").join(stations_of, on="detection_id")
                  .group_by("true_id").agg(pl.col("station").n_unique().alias("n_sta"))
                  .filter(pl.col("n_sta") >= 4)["true_id"])
    matched_true = set(s.pairs["true_id"].to_list())
    matched_pred = dict(zip(s.pairs["pred_id"].to_list(), s.pairs["true_id"].to_list(),
                            strict=True))
    oracle_true = set(o.pairs["true_id"].to_list())
    missed: Counter[str] = Counter()
    by_true = {k[0]: g for k, g in j.drop_nulls("true_id").group_by(["true_id"])}
    pred_size = dict(p.drop_nulls("pred_id").group_by("pred_id").len().iter_rows())
    for tid in detectable.to_list():
        if tid in matched_true:
            continue
        if tid not in oracle_true:
            missed["oracle-misses"] += 1
            continue
        g = by_true[tid]
        n = g.height
        got = g.drop_nulls("pred_id")
        counts = got.group_by("pred_id").len().sort("len", descending=True)
        stolen = any(matched_pred.get(pid) not in (None, tid) for pid in counts["pred_id"])
        tag = " (stolen)" if stolen else ""
        if got.height * 2 < n:
            missed["free" + tag] += 1
        elif counts.height and counts["len"][0] >= 0.6 * n and (
                counts["len"][0] < 0.6 * pred_size[counts["pred_id"][0]]):
            missed["absorbed" + tag] += 1
        else:
            missed["scattered" + tag] += 1
    ghosts: Counter[str] = Counter()
    for (pid,), g in j.drop_nulls("pred_id").group_by(["pred_id"]):
        if pid in matched_pred:
            continue
        n = g.height
        n_false = g["true_id"].null_count()
        top = g.drop_nulls("true_id").group_by("true_id").len().sort("len", descending=True)
        if n_false * 2 > n:
            ghosts["false"] += 1
        elif top.height and top["len"][0] * 2 >= n:
            ghosts["duplicate" if top["true_id"][0] in matched_true else "partial"] += 1
        else:
            ghosts["mixed"] += 1
    return {"missed": missed, "ghosts": ghosts,
            "totals": Counter({"true": s.n_true, "pred": s.n_pred, "matched": s.matched})}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default="arrays-uniform,roads-correlated")
    ap.add_argument("--intensities", default="dense:0.3,busy:2")
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--method", default="joint", choices=["cascade", *JOINT_VARIANTS])
    args = ap.parse_args()
    for fam in args.families.split(","):
        for spec in args.intensities.split(","):
            inten, _, hours = spec.partition(":")
            for seed in args.seeds.split(","):
                sc = family(fam, inten, int(seed), float(hours) if hours else None)
                data = generate(sc)
                net = Network.from_table(data.stations)
                picks = Picks.from_table(data.detections, net)
                cfg = {"temperature_c": sc.temperature_c,
                       "wind": [sc.wind_east_m_s, sc.wind_north_m_s]}
                a = associator(args.method, cfg)
                t = time.perf_counter()
                res = a.associate(net, picks)
                wall = time.perf_counter() - t
                pred = res.assignments.select("detection_id", "event_id")
                st = data.detections.select("detection_id", "station")
                b = breakdown(data.truth, st, pred, oracle_assignments(data))
                s = score(data.truth, st, pred)
                o = score(data.truth, st, oracle_assignments(data))
                print(f"{fam} {inten} s{seed}: F1 {s.f1:.3f} (oracle {o.f1:.3f}), "
                      f"true {s.n_true}, pred {s.n_pred}, matched {s.matched}, "
                      f"{wall:.1f} s")
                print("  missed:", dict(b["missed"].most_common()))
                print("  ghosts:", dict(b["ghosts"].most_common()), flush=True)


if __name__ == "__main__":
    main()
