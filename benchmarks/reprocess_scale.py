"""Reprocessing the real FIRMS archive on Dask against one process (issue 13 item 7).

Run:  .venv/bin/python benchmarks/reprocess_scale.py [--workers 2] [--years 2019,2020,2021]
      (project root; needs ../shared/data and the [scale] extra)

The whole Ukraine archive (VIIRS S-NPP) is read once; a baseline is fitted on the reference
years (2012, 2013, 2016, 2018, as the satellite benchmarks); then the classified years are
classified (a) in one process and (b) by ``Reprocessor`` on a LocalCluster of N worker
processes, for several tile and block sizes. Printed per configuration: parts, halo rows
recomputed (as a share of the input), wall time (cluster start-up excluded: the cluster is
started once, as a real one would be), and whether the result equals (a) row for row.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import polars as pl

from trucewatch.ingest.firms import read_firms
from trucewatch.satellite.baseline import fit_baseline
from trucewatch.satellite.war_fires import WarFireRules, classify, reach_latitude
from trucewatch.scale.reprocess import Halo, Partitioning, Reprocessor, plan

ROOT = Path(__file__).resolve().parents[1]
FIRMS = ROOT.parent / "shared" / "data" / "firms-ukraine-2000-2022" / \
    "firms_ukraine_2000_2022.csv.gz"
REFERENCE = [2012, 2013, 2016, 2018]


def main() -> None:
    from dask.distributed import LocalCluster

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--years", default="2019,2020,2021")
    args = ap.parse_args()
    years = [int(y) for y in args.years.split(",")]
    recs = read_firms(FIRMS, keep_raw=False).records.filter(
        pl.col("sensor") == "VIIRS_SNPP_SP")
    base, _ = fit_baseline(recs, REFERENCE, None, None)
    current = recs.filter(pl.col("acq_date").dt.year().is_in(years))
    t = time.perf_counter()
    one = classify(current, base)
    t_one = time.perf_counter() - t
    print(f"{current.height:,} detections of {', '.join(map(str, years))}; one process "
          f"{t_one:.1f} s, {int(one['war_related'].sum()):,} war-related")
    print("| tile cells | block days | parts | halo rows | Dask s | / one process | equal |")
    print("|---|---|---|---|---|---|---|")
    lat = reach_latitude(current, base)
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as lc:
        for tile, block in [(40, 366), (20, 366), (20, 92), (10, 92)]:
            part = Partitioning(tile, block)
            parts = plan(current, part, Halo.of(WarFireRules(), lat))
            halo = sum(p.rows.size for p in parts) - current.height
            t = time.perf_counter()
            many = Reprocessor(partitioning=part, scheduler=lc.scheduler_address).classify(
                current, base)
            t_many = time.perf_counter() - t
            print(f"| {tile} | {block} | {len(parts)} | {halo / current.height:.0%} | "
                  f"{t_many:.1f} | {t_many / t_one:.2f} | {many.equals(one)} |")


if __name__ == "__main__":
    main()
