"""False alarms of the satellite channel in normal (pre-2022) years, leave-one-year-out (issue 10).

Run:  .venv/bin/python benchmarks/normal_years.py   (project root; needs ../shared/data)

For each of 2012, 2013, 2016, 2018, 2019, 2020, 2021: fit the baseline on the other six years,
classify the held-out year, and print the share of its detections flagged war-related, where the
flags are (top oblasts, by the 0.1 degree oblast grid of the covariates data set, and top months)
and, when the classifier gives a ``fire_class``, the share of each class. Two variants: the FIRMS
S-NPP archive alone (VIIRS_SNPP_SP) and S-NPP + MODIS.

Goal (issue 10): <= 1% flagged war-related in every year.

Uses only the classifier's stable API: read_firms, Baseline.fit, classify(records, baseline,
WarFireRules()) -> a frame with ``war_related`` per input row in input order.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from trucewatch.geo.crs import local_laea, project_points, to_metric
from trucewatch.ingest.firms import read_firms
from trucewatch.satellite.baseline import Baseline, BaselineParams
from trucewatch.satellite.covariates import find_covariates
from trucewatch.satellite.war_fires import WarFireRules, classify

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FIRMS = DATA / "firms-ukraine-2000-2022" / "firms_ukraine_2000_2022.csv.gz"
COV = DATA / "covariates-ukraine-0p1deg-gianman89"
OBLAST_GRID, OBLAST_NAMES = COV / "oblast_id_0p1deg.csv", COV / "oblast_ids.csv"
YEARS = [2012, 2013, 2016, 2018, 2019, 2020, 2021]
SNPP, MODIS = "VIIRS_SNPP_SP", "MODIS"
GOAL = 0.01
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
TOP = 3


def oblast_lookup() -> pl.DataFrame:
    """0.1 degree cell (centres at x.x degrees, keyed as integer tenths) -> oblast name."""
    names = pl.read_csv(OBLAST_NAMES).select("OBLAST_ID", pl.col("SUBDIVISION_NAME_EN")
                                             .alias("oblast"))
    grid = pl.read_csv(OBLAST_GRID).with_columns(
        (pl.col("LATITUDE") * 10).round().cast(pl.Int32).alias("ci"),
        (pl.col("LONGITUDE") * 10).round().cast(pl.Int32).alias("cj"))
    # data quirk: in the grid UA30 covers Kyiv oblast (hundreds of cells, Chornobyl zone
    # included) and UA32 the city (10 cells), the reverse of oblast_ids.csv (ISO 3166-2:
    # UA-30 Kyiv City, UA-32 Kyiv oblast); name them by what the grid covers
    n = dict(grid.group_by("OBLAST_ID").len().iter_rows())
    if n.get("UA30", 0) > 10 * max(n.get("UA32", 0), 1):
        names = names.with_columns(pl.col("OBLAST_ID").replace({"UA30": "UA32", "UA32": "UA30"}))
    return grid.join(names, on="OBLAST_ID", how="left").select(
        "ci", "cj", pl.col("oblast").fill_null(pl.col("OBLAST_ID"))).unique(["ci", "cj"])


def top(df: pl.DataFrame, col: str, n_all: int, label=str) -> str:
    if df.height == 0:
        return "-"
    t = df.group_by(col).len().sort(["len", col], descending=[True, False]).head(TOP)
    return ", ".join(f"{label(k)} {n:,} ({n / n_all:.0%})" for k, n in t.iter_rows())


_LINE: list[object] = []


def line_km(df: pl.DataFrame) -> np.ndarray:
    """Distance (km) to the 2015-2022 line of contact: the ORDLO edge off the border."""
    import json

    import shapely
    from shapely.geometry import shape

    crs = local_laea(38.5, 48.2)
    if not _LINE:
        ref = DATA / "reference-boundaries"
        feats = json.loads((ref / "pre2022_occupied_ordlo_crimea.geojson").read_text())[
            "features"]
        ordlo = next(shape(f["geometry"]) for f in feats if "ORDLO" in json.dumps(
            f["properties"]))
        outline = shape(json.loads((ref / "ukraine_outline.geojson").read_text())[
            "features"][0]["geometry"])
        _LINE.append(to_metric(ordlo, crs).boundary.difference(
            to_metric(outline, crs).boundary.buffer(5000)))
    x, y = project_points(df["longitude"].to_numpy(), df["latitude"].to_numpy(), crs)
    return np.asarray(shapely.distance(shapely.points(x, y), _LINE[0])) / 1000


def loyo(records: pl.DataFrame, oblasts: pl.DataFrame, label: str) -> list[float]:
    print(f"\n## {label}\n")
    print("| held-out year | detections | flagged war-related | share | <= 1% "
          "| flags <= 30 km of the 2015-22 line (the Donbas war) | share beyond 30 km "
          "| top oblasts of flags | top months of flags | fit + classify |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    shares: list[float] = []
    classes: dict[int, dict[str, float]] = {}
    for yr in YEARS:
        t = time.perf_counter()
        base = Baseline.fit(records, [y for y in YEARS if y != yr], PARAMS,
                            covariates=find_covariates())
        cur = records.filter(pl.col("acq_date").dt.year() == yr)
        res = classify(cur, base, WarFireRules())
        dt = time.perf_counter() - t
        if res.height != cur.height:
            sys.exit(f"classify returned {res.height} rows for {cur.height} input rows")
        war = res["war_related"].cast(pl.Int64)
        df = cur.select("latitude", "longitude", "acq_date").with_columns(war)
        if "fire_class" in res.columns:
            shares_c = res["fire_class"].cast(pl.Utf8).value_counts()
            classes[yr] = {c: n / res.height for c, n in shares_c.iter_rows()}
        flags = df.filter(pl.col("war_related") == 1).with_columns(
            (pl.col("latitude") * 10).round().cast(pl.Int32).alias("ci"),
            (pl.col("longitude") * 10).round().cast(pl.Int32).alias("cj"),
            pl.col("acq_date").dt.month().alias("month"))
        flags = flags.join(oblasts, on=["ci", "cj"], how="left").with_columns(
            pl.col("oblast").fill_null("(outside grid)"))
        share = flags.height / max(df.height, 1)
        shares.append(share)
        near = int((line_km(flags) <= 30).sum())
        print(f"| {yr} | {df.height:,} | {flags.height:,} | {share:.2%} "
              f"| {'yes' if share <= GOAL else 'NO'} | {near:,} "
              f"| {(flags.height - near) / max(df.height, 1):.2%} "
              f"| {top(flags, 'oblast', flags.height)} "
              f"| {top(flags, 'month', flags.height, lambda m: MONTHS[m - 1])} | {dt:.1f} s |")
    worst = max(shares)
    print(f"\nmean {np.mean(shares):.2%}, worst {worst:.2%} "
          f"({YEARS[int(np.argmax(shares))]}); goal <= {GOAL:.0%} in every year: "
          f"{'MET' if worst <= GOAL else 'NOT MET'}")
    if classes:
        names = sorted({c for d in classes.values() for c in d})
        print("\n| held-out year | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for yr, d in classes.items():
            print(f"| {yr} | " + " | ".join(f"{d.get(c, 0):.2%}" for c in names) + " |")
    return shares


PARAMS = BaselineParams()


def main() -> None:
    global PARAMS
    import argparse

    ap = argparse.ArgumentParser(description="normal-year false alarms, leave-one-year-out")
    ap.add_argument("--crop-season-ratio", type=float, default=None,
                    help="baseline crop_season_ratio (default: the baseline's own)")
    a = ap.parse_args()
    if a.crop_season_ratio is not None:
        PARAMS = BaselineParams(crop_season_ratio=a.crop_season_ratio)
    missing = [p for p in (FIRMS, OBLAST_GRID, OBLAST_NAMES) if not p.exists()]
    if missing:
        sys.exit(f"data absent, needs {', '.join(map(str, missing))}")
    t0 = time.perf_counter()
    records = read_firms(FIRMS, keep_raw=False).records.filter(
        pl.col("sensor").is_in([SNPP, MODIS]) & pl.col("acq_date").dt.year().is_in(YEARS))
    oblasts = oblast_lookup()
    print("# Normal years: leave-one-year-out false alarms of the satellite channel")
    print(f"years {','.join(map(str, YEARS))}; each fitted on the other six; rules "
          f"WarFireRules() defaults; crop_season_ratio {PARAMS.crop_season_ratio:g}")
    loyo(records.filter(pl.col("sensor") == SNPP), oblasts, f"S-NPP archive only ({SNPP})")
    loyo(records, oblasts, f"S-NPP archive ({SNPP}) + MODIS")
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
