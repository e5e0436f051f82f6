"""The ceasefire view: war-related fires per sector and zone against the baseline,
before and after entry into force; zone tagging shared by the rule book.

Incidents and candidate violations come from the multi-source fusion
(:mod:`trucewatch.fusion.incidents`) and the rule book
(:mod:`trucewatch.adjudication.rules`); the pipeline puts them in the view.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from trucewatch.agreement.zones import ZoneIndex
from trucewatch.geo.grid import cell_centre
from trucewatch.model.agreement import Agreement
from trucewatch.model.enums import Category, RuleName, ZoneGroup
from trucewatch.model.incident import Incident, Violation
from trucewatch.satellite.baseline import Baseline

# zone_group values, most specific first: a point in several zones takes the first
# (plain values: a list of enum members would make polars build an Enum column)
ZONE_GROUPS = tuple(g.value for g in ZoneGroup)
# the rule a war-related fire breaks in each zone group under the default evidence rules
# (a fire alone proves nothing in a withdrawal zone: evidence_rules.withdrawal.fire = none)
RULES = {
    ZoneGroup.PROTECTED_SITE: (RuleName.STRIKE_ON_PROTECTED_SITE,
                               Category.STRIKE_ON_PROTECTED_SITE),
    ZoneGroup.DISENGAGEMENT: (RuleName.FIRE_IN_DISENGAGEMENT_AREA, Category.FIRE),
    ZoneGroup.BUFFER: (RuleName.FIRE_IN_BUFFER_ZONE, Category.FIRE),
}


@dataclass
class CeasefireView:
    agreement: Agreement
    detections: pl.DataFrame  # one row per detection, classified, with sector and zone
    daily: pl.DataFrame  # date, sector, zone_group, detections, war_related, expected
    incidents: list[Incident]
    violations: list[Violation]


def tag_zones(points: pl.DataFrame, index: ZoneIndex) -> pl.DataFrame:
    """Add ``sector``, ``zone_ids`` and ``zone_group`` to rows with latitude, longitude
    (columnar: one tree query, then a group-by of the point-zone pairs)."""
    lon, lat = points["longitude"].to_numpy(), points["latitude"].to_numpy()
    p_idx, z_idx = index.zone_pairs(lon, lat)
    ids = pl.Series(index.zone_ids, dtype=pl.String)
    # the most specific zone kind names the group (ZONE_GROUPS order); each zone's kind is
    # the zone's typed field (the index's zone_kinds), never read from its id
    kinds = index.zone_kinds or {"": ZoneGroup.OUTSIDE}
    rank = (pl.col("zone").replace_strict(kinds, default=None, return_dtype=pl.String)
            .replace_strict(ZONE_GROUPS, list(range(len(ZONE_GROUPS))), default=None,
                            return_dtype=pl.Int64)
            .fill_null(len(ZONE_GROUPS) - 1))
    per_point = (pl.DataFrame({"_k": p_idx, "zone": ids.gather(z_idx)})
                 .with_columns(rank.alias("_rank")).sort("_k", "zone")
                 .group_by("_k").agg(pl.col("zone").alias("zone_ids"),
                                     pl.col("_rank").min()))
    outside = len(ZONE_GROUPS) - 1
    tagged = (points.with_row_index("_k").with_columns(pl.col("_k").cast(pl.Int64))
              .join(per_point, on="_k", how="left")
              .with_columns(pl.col("zone_ids").fill_null(pl.lit([], pl.List(pl.String))),
                            pl.col("_rank").fill_null(outside).replace_strict(
                                list(range(len(ZONE_GROUPS))), list(ZONE_GROUPS),
                                return_dtype=pl.String)
                            .alias("zone_group"))
              .sort("_k").drop("_k", "_rank"))
    return tagged.with_columns(pl.Series("sector", index.sector_of(lon, lat)))

def build_view(classified: pl.DataFrame, agreement: Agreement, baseline: Baseline,
               index: ZoneIndex | None = None) -> CeasefireView:
    """``classified``: detections (id, latitude, longitude, acq_date, sensor, time_start)
    with the classifier's columns (expected, p_normal, war_related, excess, reason, ...)."""
    index = index or ZoneIndex(agreement)
    det = tag_zones(classified, index)
    daily = _daily(det, agreement, baseline, index)
    return CeasefireView(agreement, det, daily, [], [])


def _daily(det: pl.DataFrame, agreement: Agreement, baseline: Baseline,
           index: ZoneIndex) -> pl.DataFrame:
    observed = det.group_by("acq_date", "sector", "zone_group").agg(
        pl.len().alias("detections"), pl.col("war_related").sum().alias("war_related"))
    if det.height == 0:
        return observed.with_columns(pl.lit(0.0).alias("expected"))
    # expected (normal-year) detections per sector and day: sum of the baseline over its cells
    # (rows the baseline has no reference for, fire class unclassified, have none)
    used = det["baseline_sensor"].filter(det["baseline_sensor"].is_in(list(baseline.sensors)))
    sensor = used.mode()[0] if used.len() else max(baseline.sensors,
                                                    key=lambda s: baseline.sensors[s].rows)
    exp = baseline.sensors[sensor].expected
    ni, nj = baseline.shape
    ii, jj = np.meshgrid(np.arange(ni) + baseline.i0, np.arange(nj) + baseline.j0, indexing="ij")
    clat, clon = cell_centre(ii.ravel(), jj.ravel())
    sectors = index.sector_of(clon, clat)
    first: date = det["acq_date"].min()  # type: ignore[assignment]
    last: date = det["acq_date"].max()  # type: ignore[assignment]
    days = pl.date_range(first, last, eager=True)
    doy = (days.dt.ordinal_day().to_numpy() - 1).clip(0, 365)
    flat = exp.reshape(ni * nj, -1)
    rows = []
    for sid in sorted(set(sectors.tolist()) - {""}):
        per_day = flat[sectors == sid].sum(axis=0)[doy]
        rows.append(pl.DataFrame({"acq_date": days, "sector": sid,
                                  "expected": per_day.astype(np.float64)}))
    expected = pl.concat(rows) if rows else pl.DataFrame(
        schema={"acq_date": pl.Date, "sector": pl.Utf8, "expected": pl.Float64})
    return observed.join(expected, on=["acq_date", "sector"], how="left").sort(
        "acq_date", "sector", "zone_group")
