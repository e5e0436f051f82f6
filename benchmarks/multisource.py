"""Multi-source fusion, agreement rules and allegation rulings: accuracy and throughput.

Every method gets the same generated evidence (benchmarks/lab/field.py: violations among
lawful activity and false reports, with ground truth), the same rule book, the same
allegation judge and the same scoring (benchmarks/lab/scoring.py):

* ``trucewatch``: fusion.incidents.IncidentFuser (per-pair gates on each source's
  uncertainty, independent-source confidence);
* ``dbscan``: scikit-learn DBSCAN on (x, y, scaled time) per family, eps set to the
  fuser's gate at the median uncertainty, min_samples 1; incidents aggregated and
  judged exactly as ours;
* ``none``: no fusion, every observation is its own incident.

Throughput: the seed-1 evidence tiled in time (more days of the same activity) to N
observations; fusion alone, then fusion + rules; the exponent of time against N.

    .venv/bin/python benchmarks/multisource.py [--seeds 1,2,3] [--scales 1e4,1e5,1e6]

scikit-learn is a benchmark-only dependency (pip install scikit-learn==1.9.1); without
it the dbscan rows are skipped with a note.
"""

from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl

from lab.field import FieldData, FieldScenario, established_events, generate
from lab.scoring import score_violations
from trucewatch.adjudication.allegations import AllegationJudge
from trucewatch.adjudication.rules import RuleBook
from trucewatch.fusion.incidents import EVIDENCE_SCHEMA, KINETIC, IncidentFuser
from trucewatch.geo.crs import local_laea, project_points


def dbscan_labels(ev: pl.DataFrame, fuser: IncidentFuser) -> np.ndarray:
    from sklearn.cluster import DBSCAN

    lat, lon = ev["latitude"].to_numpy(), ev["longitude"].to_numpy()
    x, y = project_points(lon, lat, local_laea(float(lon.mean()), float(lat.mean())))
    eps = fuser.n_sigma * np.sqrt(2) * float(ev["sigma_m"].median()) + fuser.incident_scale_m  # type: ignore[arg-type]
    t = ev["t_end"].to_numpy() * (eps / fuser.time_slack_s)
    kinetic = ev["klass"].is_in(KINETIC).to_numpy()
    labels = np.zeros(ev.height, dtype=np.int64)
    offset = 0
    for fam in (True, False):
        m = kinetic == fam
        if m.any():
            lab = DBSCAN(eps=eps, min_samples=1).fit_predict(np.column_stack([x[m], y[m],
                                                                              t[m]]))
            labels[m] = lab + offset
            offset += int(lab.max()) + 1
    return labels


def incidents(method: str, ev: pl.DataFrame, fuser: IncidentFuser) -> pl.DataFrame:
    base = ev.select(list(EVIDENCE_SCHEMA))
    if method == "trucewatch":
        return fuser.fuse(base)[0]
    labels = (np.arange(ev.height) if method == "none" else dbscan_labels(base, fuser))
    return fuser.aggregate(base.with_columns(pl.Series("incident", labels)))


def accuracy(data: FieldData, methods: list[str]) -> list[dict[str, object]]:
    fuser, book, judge = IncidentFuser(), RuleBook(data.agreement), AllegationJudge()
    rows = []
    for m in methods:
        t0 = time.perf_counter()
        inc = incidents(m, data.evidence, fuser)
        evaluated = book.evaluate(inc)
        wall = time.perf_counter() - t0
        s = score_violations(evaluated, data.evidence, data.events,
                             set(established_events(data.evidence)))
        rulings, _ = judge.rule(data.allegations, evaluated, data.coverage, data.horizon)
        got = {r["allegation_id"]: r["ruling"] for r in rulings}
        right = sum(got[a] == e for a, e in data.expected.items())
        wrong = Counter((e, got[a]) for a, e in data.expected.items() if got[a] != e)
        rows.append({"method": m, **s, "incidents": inc.height, "wall_s": wall,
                     "rulings_correct": right / len(data.expected),
                     "ruling_errors": dict(wrong.most_common(4))})
    return rows


def tile(ev: pl.DataFrame, n: int) -> pl.DataFrame:
    span = float(ev["t_end"].max() - ev["t_start"].min()) + 86400  # type: ignore[operator]
    k = int(np.ceil(n / ev.height))
    parts = [ev.with_columns(pl.col("t_start") + i * span, pl.col("t_end") + i * span,
                             (pl.col("id") + f"-{i}").alias("id")) for i in range(k)]
    return pl.concat(parts).head(n)


def throughput(data: FieldData, scales: list[int], dbscan_max: int) -> list[dict[str, object]]:
    fuser, book = IncidentFuser(), RuleBook(data.agreement)
    ev = data.evidence.select(list(EVIDENCE_SCHEMA))
    rows = []
    for n in scales:
        big = tile(ev, n)
        t0 = time.perf_counter()
        inc, _ = fuser.fuse(big)
        t_fuse = time.perf_counter() - t0
        book.evaluate(inc)
        t_all = time.perf_counter() - t0
        row: dict[str, object] = {"n": n, "incidents": inc.height, "fuse_s": t_fuse,
                                  "obs_per_s": n / t_fuse, "fuse_rules_s": t_all,
                                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF)
                                  .ru_maxrss / 1024}
        if n <= dbscan_max:
            try:
                t0 = time.perf_counter()
                dbscan_labels(big, fuser)
                row["dbscan_s"] = time.perf_counter() - t0
            except ImportError:
                row["dbscan_s"] = None
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--scales", default="1e4,1e5,1e6")
    ap.add_argument("--methods", default="trucewatch,dbscan,none")
    ap.add_argument("--allegations", type=int, default=300)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--dbscan-max", type=float, default=1e5)
    args = ap.parse_args()
    methods = args.methods.split(",")
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("note: scikit-learn not installed: dbscan rows skipped")
        methods = [m for m in methods if m != "dbscan"]
    print(f"machine: {platform.machine()} {platform.processor() or ''}, "
          f"python {platform.python_version()}, polars {pl.__version__}")
    print("\n## Accuracy (violations: candidates vs truth; allegations: rulings vs the ideal)")
    print("| seed | method | obs | incidents | candidates | P | R (established) | "
          "R (observed) | R (all) | F1 | rule right | rulings right | wall s | "
          "P vs trucewatch | rulings vs trucewatch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    totals: dict[str, list[dict[str, object]]] = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            data = generate(FieldScenario(seed=seed, days=args.days,
                                          allegations=args.allegations), Path(tmp))
        rows = accuracy(data, methods)
        ref = rows[0]
        for r in rows:
            totals.setdefault(str(r["method"]), []).append(r)
            print(f"| {seed} | {r['method']} | {data.evidence.height} | {r['incidents']} | "
                  f"{r['candidates']} | {r['precision']:.3f} | {r['recall_established']:.3f} | "
                  f"{r['recall_observed']:.3f} | "
                  f"{r['recall_all']:.3f} | {r['f1']:.3f} | {r['rule_correct']:.3f} | "
                  f"{r['rulings_correct']:.3f} | {r['wall_s']:.3f} | "
                  f"{float(r['precision']) / max(float(ref['precision']), 1e-9):.2f} | "  # type: ignore[arg-type]
                  f"{float(r['rulings_correct']) / float(ref['rulings_correct']):.2f} |")  # type: ignore[arg-type]
        print(f"<!-- seed {seed}: {rows[0]['violations']} violations, "
              f"{rows[0]['observed_violations']} observed, {rows[0]['established_violations']}"
              " established; trucewatch ruling errors "
              f"(expected, got): {rows[0]['ruling_errors']} -->")
    print("\n| method | seeds | P mean | P min | R (established) mean | R min | "
          "rulings right mean | rulings min |")
    print("|---|---|---|---|---|---|---|---|")
    for m, rs in totals.items():
        print(f"| {m} | {len(rs)} | {np.mean([r['precision'] for r in rs]):.3f} | "
              f"{np.min([r['precision'] for r in rs]):.3f} | "
              f"{np.mean([r['recall_established'] for r in rs]):.3f} | "
              f"{np.min([r['recall_established'] for r in rs]):.3f} | "
              f"{np.mean([r['rulings_correct'] for r in rs]):.3f} | "
              f"{np.min([r['rulings_correct'] for r in rs]):.3f} |")
    print("\n## Throughput (seed-1 evidence tiled in time)")
    with tempfile.TemporaryDirectory() as tmp:
        data = generate(FieldScenario(seed=1, days=args.days), Path(tmp))
    scales = [int(float(s)) for s in args.scales.split(",")]
    rows = throughput(data, scales, int(args.dbscan_max))
    print("| observations | incidents | fuse s | obs/s | fuse + rules s | DBSCAN s | "
          "DBSCAN / fuse | max RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        db = r.get("dbscan_s")
        fuse_s = float(r["fuse_s"])  # type: ignore[arg-type]
        db_text = "-" if db is None else f"{db:.2f}"
        ratio = "-" if db is None else f"{float(db) / fuse_s:.1f}"  # type: ignore[arg-type]
        print(f"| {r['n']:,} | {r['incidents']:,} | {fuse_s:.2f} | "
              f"{r['obs_per_s']:,.0f} | {r['fuse_rules_s']:.2f} | {db_text} | {ratio} | "
              f"{r['rss_mb']:.0f} |")
    if len(rows) >= 2:
        n = np.log([float(r["n"]) for r in rows])  # type: ignore[arg-type]
        t = np.log([float(r["fuse_s"]) for r in rows])  # type: ignore[arg-type]
        slope = float(np.polyfit(n, t, 1)[0])
        print(f"\ngrowth: time ~ N^{slope:.2f} (1.00 is linear; pairwise would be 2.00)")


if __name__ == "__main__":
    main()
