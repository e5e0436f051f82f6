"""Satellite fire channel against The Economist's published war-fire counts (2022).

Run:  .venv/bin/python benchmarks/satellite_accuracy.py   (needs ../shared/data)

Prints: Pearson r and ratio of totals of daily war-related counts vs The Economist's
war_fires_per_day (2022-02-24 .. 2022-08-31), overall and by Ukraine-/Russia-held
area (ISW control polygon of the day), side by side with the naive count of
detections within 15 km of the ISW front; leave-one-year-out false alarms; share
of 2022 flags > 50 km from the front; wall time and peak memory of parse, fit and
classify over the whole 1.17 M-row file.
"""

from __future__ import annotations

import gzip
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import shapely
from shapely.geometry import shape

from trucewatch.fusion.baseline import Baseline
from trucewatch.fusion.war_fires import classify
from trucewatch.geo.crs import local_laea, project_points, to_metric
from trucewatch.ingest.firms import read_firms

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
YEARS = [2012, 2013, 2016, 2018, 2019, 2020, 2021]
SENSOR = "VIIRS_SNPP_SP"
START, END = "2022-02-24", "2022-08-31"
CRS = local_laea(31.5, 48.5)


def main() -> None:
    firms = DATA / "firms-ukraine-2000-2022" / "firms_ukraine_2000_2022.csv.gz"
    if not firms.exists():
        sys.exit(f"needs {firms}")
    t = time.perf_counter()
    pl.read_csv(firms)
    t_parse_only = time.perf_counter() - t

    t = time.perf_counter()
    records = read_firms(firms, keep_raw=False).records
    t_read = time.perf_counter() - t
    t = time.perf_counter()
    base = Baseline.fit(records, YEARS)
    t_fit = time.perf_counter() - t
    t = time.perf_counter()
    out_all = classify(records, base)
    t_classify = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    snpp = records.filter(pl.col("sensor") == SENSOR)
    y2022 = snpp.filter(pl.col("acq_date").dt.year() == 2022)
    base_snpp = Baseline.fit(snpp, YEARS)
    out = classify(y2022, base_snpp).filter(
        pl.col("acq_date").is_between(pl.lit(START).str.to_date(), pl.lit(END).str.to_date()))

    # ISW front of the day: Russian-control polygon; front = its boundary inside Ukraine
    isw = json.loads(gzip.decompress((DATA / "frontline-isw-2022-2023" /
                                      "isw_russian_control_daily.geojson.gz").read_bytes()))
    outline = shape(json.loads((DATA / "reference-boundaries" / "ukraine_outline.geojson")
                               .read_text())["features"][0]["geometry"])
    border_m = to_metric(outline, CRS).boundary.buffer(3000)
    polys = {f["properties"]["date"]: shape(f["geometry"]) for f in isw["features"]
             if f["properties"]["layer"] == "russian_control"}
    x, y = project_points(out["longitude"].to_numpy(), out["latitude"].to_numpy(), CRS)
    pts = shapely.points(x, y)
    dates = out["acq_date"].cast(pl.Utf8).to_numpy()
    dist = np.full(out.height, np.nan)
    russia = np.zeros(out.height, dtype=bool)
    for d in np.unique(dates):
        if d not in polys:
            continue
        m = dates == d
        parts = [g for g in shapely.get_parts(to_metric(polys[d], CRS))
                 if g.geom_type in ("Polygon", "MultiPolygon")]
        poly_m = shapely.union_all(parts)
        front = shapely.union_all([g.boundary for g in parts]).difference(border_m)
        dist[m] = shapely.distance(pts[m], front) / 1000
        russia[m] = shapely.contains(poly_m, pts[m])
    out = out.with_columns(pl.Series("front_km", dist), pl.Series("russia", russia))

    eco = pl.read_csv(DATA / "economist-war-fires-daily" /
                      "economist_strikes_by_location_and_day.csv", try_parse_dates=True)
    eco = eco.filter(pl.col("date").is_between(pl.lit(START).str.to_date(),
                                               pl.lit(END).str.to_date()))
    daily = out.group_by("acq_date").agg(
        pl.col("war_related").sum().alias("ours"),
        (pl.col("war_related") * ~pl.col("russia")).sum().alias("ours_ua"),
        (pl.col("war_related") * pl.col("russia")).sum().alias("ours_ru"),
        (pl.col("front_km") <= 15).sum().alias("naive"),
        ((pl.col("front_km") <= 15) & ~pl.col("russia")).sum().alias("naive_ua"),
        ((pl.col("front_km") <= 15) & pl.col("russia")).sum().alias("naive_ru"),
    )
    j = eco.join(daily, left_on="date", right_on="acq_date", how="left").fill_null(0)

    def score(col: str, ref: str) -> str:
        r = np.corrcoef(j[col], j[ref])[0, 1]
        return f"r={r:.3f} ratio={j[col].sum() / j[ref].sum():.2f}"

    print(f"# accuracy vs The Economist, {START}..{END}, {j.height} days, sensor {SENSOR}")
    print("| area | trucewatch | naive (<= 15 km of ISW front) |")
    print("|---|---|---|")
    for label, a, b, ref in (("all", "ours", "naive", "war_fires_per_day"),
                             ("Ukraine-held", "ours_ua", "naive_ua",
                              "war_fires_per_day_in_ukraine_held_area"),
                             ("Russia-held", "ours_ru", "naive_ru",
                              "war_fires_per_day_in_russia_held_area")):
        print(f"| {label} | {score(a, ref)} | {score(b, ref)} |")
    flagged = out.filter(pl.col("war_related") == 1)
    far = (flagged["front_km"] > 50).mean()
    print(f"\n2022 flags farther than 50 km from the ISW front of the day: {far:.1%} "
          f"of {flagged.height}")

    print("\n# leave-one-year-out false alarms (share of detections flagged war-related)")
    shares = []
    for yr in YEARS:
        b = Baseline.fit(snpp, [x for x in YEARS if x != yr])
        o = classify(snpp.filter(pl.col("acq_date").dt.year() == yr), b)
        shares.append(float(o["war_related"].mean()))
        print(f"{yr}: {shares[-1]:.2%} of {o.height}")
    print(f"mean: {np.mean(shares):.2%}")

    total = t_read + t_fit + t_classify
    print(f"\n# speed and memory, whole file ({records.height:,} rows, all sensors)")
    print(f"polars.read_csv alone {t_parse_only:.2f} s; trucewatch read+validate {t_read:.2f} s; "
          f"fit {t_fit:.2f} s; classify {t_classify:.2f} s; total {total:.2f} s "
          f"= {total / t_parse_only:.1f}x plain parse, {total / t_read:.1f}x trucewatch read; "
          f"peak RSS {peak_mb:.0f} MB; flagged {int(out_all['war_related'].sum()):,}")


if __name__ == "__main__":
    main()
