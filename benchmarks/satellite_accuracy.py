"""Satellite fire channel against The Economist's war-fire counts, 2022 (issue 10 peer comparison).

Run:  .venv/bin/python benchmarks/satellite_accuracy.py   (project root; needs ../shared/data)

Inputs as The Economist's: the FIRMS S-NPP archive rows (sensor VIIRS_SNPP_SP) plus MODIS.
Baseline fitted on 2012, 2013, 2016, 2018-2021; the whole of 2022 up to 2022-08-31 is classified
(so the classifier sees the run-up) and 2022-02-24 .. 2022-08-31 is scored: Pearson r of daily
war-related counts against ``war_fires_per_day`` and the ratio of totals, overall and split into
Ukraine-held / Russia-held by the ISW Russian-control polygon of the day. Side by side: the raw
count of all detections (the floor any classifier must beat) and the naive count of detections
within 15 km of the ISW front. Also the S-NPP-only variant, the share of flags > 50 km from the
ISW front of the day, and the ``fire_class`` breakdown when the classifier gives one.

Goal (issue 10): r >= 0.95 and total within 0.67-1.5x of The Economist's.

Uses only the classifier's stable API: read_firms, Baseline.fit, classify(records, baseline,
WarFireRules()) -> a frame with ``war_related`` per input row in input order.
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import shapely
from shapely.geometry import shape

from trucewatch.geo.crs import local_laea, project_points, to_metric
from trucewatch.ingest.firms import read_firms
from trucewatch.satellite.baseline import Baseline
from trucewatch.satellite.covariates import find_covariates
from trucewatch.satellite.war_fires import WarFireRules, classify

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FIRMS = DATA / "firms-ukraine-2000-2022" / "firms_ukraine_2000_2022.csv.gz"
ECONOMIST = DATA / "economist-war-fires-daily" / "economist_strikes_by_location_and_day.csv"
ISW = DATA / "frontline-isw-2022-2023" / "isw_russian_control_daily.geojson.gz"
OUTLINE = DATA / "reference-boundaries" / "ukraine_outline.geojson"
YEARS = [2012, 2013, 2016, 2018, 2019, 2020, 2021]
SNPP, MODIS = "VIIRS_SNPP_SP", "MODIS"
START, END = date(2022, 2, 24), date(2022, 8, 31)
CRS = local_laea(31.5, 48.5)
GOAL_R, GOAL_LO, GOAL_HI = 0.95, 0.67, 1.5
AREAS = (("all", "", "war_fires_per_day"),
         ("Ukraine-held", "_ua", "war_fires_per_day_in_ukraine_held_area"),
         ("Russia-held", "_ru", "war_fires_per_day_in_russia_held_area"))


COVARIATES = find_covariates()
# the default (causal: as a bulletin sees it) and the revision tier with The Economist's
# counting convention (their persistence rule looks ahead; they count a cell-day's surplus)
VARIANTS = (("causal default", WarFireRules()),
            ("revision tier: look-ahead 120 days, surplus counted",
             WarFireRules(lookahead_days=120, surplus_only=True)))
_BASELINES: dict[tuple[str, ...], tuple[Baseline, float]] = {}


def run_classifier(records: pl.DataFrame, rules: WarFireRules | None = None
                   ) -> tuple[pl.DataFrame, float, float]:
    """Fit on the reference years (with the land-use covariates when present), classify
    2022 up to END: input rows + war_related (+ fire_class)."""
    key = tuple(sorted(records["sensor"].unique().to_list()))
    if key not in _BASELINES:
        t = time.perf_counter()
        base = Baseline.fit(records, YEARS, covariates=COVARIATES)
        _BASELINES[key] = (base, time.perf_counter() - t)
    base, t_fit = _BASELINES[key]
    cur = records.filter(pl.col("acq_date").is_between(date(2022, 1, 1), END))
    t = time.perf_counter()
    res = classify(cur, base, rules or WarFireRules())
    t_cls = time.perf_counter() - t
    if res.height != cur.height:
        sys.exit(f"classify returned {res.height} rows for {cur.height} input rows")
    extra = [res["war_related"].cast(pl.Int64)]
    if "fire_class" in res.columns:
        extra.append(res["fire_class"].cast(pl.Utf8))
    out = cur.select("latitude", "longitude", "acq_date", "sensor").with_columns(extra)
    return out.filter(pl.col("acq_date") >= START), t_fit, t_cls


def isw_geometry(df: pl.DataFrame) -> pl.DataFrame:
    """Distance to the ISW front of the day (km) and whether inside the Russian-control polygon."""
    isw = json.loads(gzip.decompress(ISW.read_bytes()))
    outline = shape(json.loads(OUTLINE.read_text())["features"][0]["geometry"])
    border_m = to_metric(outline, CRS).boundary.buffer(3000)
    polys = {f["properties"]["date"]: shape(f["geometry"]) for f in isw["features"]
             if f["properties"]["layer"] == "russian_control"}
    x, y = project_points(df["longitude"].to_numpy(), df["latitude"].to_numpy(), CRS)
    pts = shapely.points(x, y)
    dates = df["acq_date"].cast(pl.Utf8).to_numpy()
    dist = np.full(df.height, np.nan)
    russia = np.zeros(df.height, dtype=bool)
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
    return df.with_columns(pl.Series("front_km", dist), pl.Series("russia", russia))


def daily(df: pl.DataFrame) -> pl.DataFrame:
    ua, ru = ~pl.col("russia"), pl.col("russia")
    near = pl.col("front_km") <= 15
    war = pl.col("war_related") == 1
    return df.group_by("acq_date").agg(
        war.sum().alias("ours"), (war & ua).sum().alias("ours_ua"),
        (war & ru).sum().alias("ours_ru"),
        pl.len().alias("raw"), ua.sum().alias("raw_ua"), ru.sum().alias("raw_ru"),
        near.sum().alias("naive"), (near & ua).sum().alias("naive_ua"),
        (near & ru).sum().alias("naive_ru"),
    )


def score(j: pl.DataFrame, col: str, ref: str) -> tuple[float, float]:
    a, b = j[col].to_numpy().astype(float), j[ref].to_numpy().astype(float)
    r = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
    return r, float(a.sum() / b.sum()) if b.sum() else float("nan")


def fmt(rr: tuple[float, float]) -> str:
    return f"r={rr[0]:.3f}, ratio={rr[1]:.2f}"


def report(label: str, df: pl.DataFrame, eco: pl.DataFrame, t_fit: float, t_cls: float) -> None:
    j = eco.join(daily(df), left_on="date", right_on="acq_date", how="left").fill_null(0)
    sensors = ", ".join(f"{s} {n:,}" for s, n in
                        df.group_by("sensor").len().sort("sensor").iter_rows())
    print(f"\n## {label}: {START}..{END}, {j.height} days ({sensors} detections scored; "
          f"fit {t_fit:.1f} s, classify {t_cls:.1f} s)\n")
    print("| area | Economist total | trucewatch war-related | raw all detections (floor) "
          "| naive (<= 15 km of ISW front) |")
    print("|---|---|---|---|---|")
    for area, sfx, ref in AREAS:
        print(f"| {area} | {int(j[ref].sum()):,} | {fmt(score(j, 'ours' + sfx, ref))} "
              f"(total {int(j['ours' + sfx].sum()):,}) | {fmt(score(j, 'raw' + sfx, ref))} "
              f"| {fmt(score(j, 'naive' + sfx, ref))} |")
    r, ratio = score(j, "ours", "war_fires_per_day")
    ok = r >= GOAL_R and GOAL_LO <= ratio <= GOAL_HI
    print(f"\nGoal r >= {GOAL_R} and total within {GOAL_LO}-{GOAL_HI}x: "
          f"{'MET' if ok else 'NOT MET'} (r={r:.3f}, ratio={ratio:.2f})")
    flagged = df.filter(pl.col("war_related") == 1)
    known = flagged.filter(pl.col("front_km").is_not_nan())
    far = float((known["front_km"] > 50).mean()) if known.height else float("nan")
    print(f"Flags farther than 50 km from the ISW front of the day: {far:.1%} of "
          f"{flagged.height:,} flags")
    if "fire_class" in df.columns:
        print("\n| fire_class | detections | share | farther than 50 km from front |")
        print("|---|---|---|---|")
        tab = df.group_by("fire_class").agg(
            pl.len().alias("n"), (pl.col("front_km") > 50).mean().alias("far")).sort(
            "n", descending=True)
        for cls, n, f in tab.iter_rows():
            print(f"| {cls} | {n:,} | {n / df.height:.1%} | {f:.1%} |")


def main() -> None:
    missing = [p for p in (FIRMS, ECONOMIST, ISW, OUTLINE) if not p.exists()]
    if missing:
        sys.exit(f"data absent, needs {', '.join(map(str, missing))}")
    t0 = time.perf_counter()
    records = read_firms(FIRMS, keep_raw=False).records
    records = records.filter(pl.col("sensor").is_in([SNPP, MODIS]))
    eco = pl.read_csv(ECONOMIST, try_parse_dates=True).filter(
        pl.col("date").is_between(START, END))

    print(f"# Satellite accuracy vs The Economist's war_fires_per_day, {START}..{END}")
    print(f"baseline years {','.join(map(str, YEARS))}; classified 2022-01-01..{END}; "
          f"covariates: {COVARIATES or 'none found'}")
    geo = None
    for label, rules in VARIANTS:
        both, tf, tc = run_classifier(records, rules)
        if geo is None:
            geo = isw_geometry(both).select("front_km", "russia")
        both = both.hstack(geo)
        report(f"S-NPP archive ({SNPP}) + MODIS, {label}", both, eco, tf, tc)
    snpp, tf, tc = run_classifier(records.filter(pl.col("sensor") == SNPP))
    snpp = snpp.join(both.filter(pl.col("sensor") == SNPP).select(
        "latitude", "longitude", "acq_date", "front_km", "russia").unique(
        ["latitude", "longitude", "acq_date"]), on=["latitude", "longitude", "acq_date"],
        how="left").with_columns(pl.col("russia").fill_null(False),
                                 pl.col("front_km").fill_null(float("nan")))
    report(f"S-NPP archive only ({SNPP})", snpp, eco, tf, tc)
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
