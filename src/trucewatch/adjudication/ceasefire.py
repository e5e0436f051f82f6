"""The ceasefire view: war-related fires per sector and zone against the baseline,
before and after entry into force, and automatic candidate violations.

Rules applied to fires after entry into force (plus the grace period):

* ``fire_in_buffer_zone``: a war-related or improbable (excess) fire inside a buffer zone;
* ``fire_in_withdrawal_zone``: the same inside a weapon-withdrawal zone only;
* ``strike_on_protected_site``: the same within a protected site's radius.

Fires of the same day in touching 0.1 degree cells form one incident. Inside a
restricted zone an excess counts even before it is confirmed by persistence (a
single shelling after a long quiet is exactly what a monitor must look at) when
it has at least ``min_unconfirmed_detections`` detections.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from trucewatch.agreement.zones import ZoneIndex
from trucewatch.fusion.baseline import Baseline
from trucewatch.geo.grid import cell_centre, cell_indices
from trucewatch.model.agreement import Agreement
from trucewatch.model.enums import Category
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.observation import Location

RULES = {
    "protected_site": ("strike_on_protected_site", Category.STRIKE_ON_PROTECTED_SITE),
    "buffer": ("fire_in_buffer_zone", Category.FIRE),
    "withdrawal": ("fire_in_withdrawal_zone", Category.FIRE),
}


@dataclass
class CeasefireView:
    agreement: Agreement
    detections: pl.DataFrame  # one row per detection, classified, with sector and zone
    daily: pl.DataFrame  # date, sector, zone_group, detections, war_related, expected
    incidents: list[Incident]
    violations: list[Violation]


def zone_group(zone_ids: list[str]) -> str:
    for kind in ("protected_site", "buffer", "withdrawal"):
        prefix = "site:" if kind == "protected_site" else f"{kind}:"
        if any(z.startswith(prefix) for z in zone_ids):
            return kind
    return "outside"


def tag_zones(points: pl.DataFrame, index: ZoneIndex) -> pl.DataFrame:
    """Add ``sector``, ``zone_ids`` and ``zone_group`` to rows with latitude, longitude."""
    lon, lat = points["longitude"].to_numpy(), points["latitude"].to_numpy()
    zones = index.zones_of(lon, lat)
    return points.with_columns(
        pl.Series("sector", index.sector_of(lon, lat)),
        pl.Series("zone_ids", zones, dtype=pl.List(pl.Utf8)),
        pl.Series("zone_group", [zone_group(z) for z in zones]),
    )


def incident_identity(g: pl.DataFrame) -> tuple[list[str], str, list[str]]:
    """Observation ids, the incident id derived from them, and the union of their zones."""
    ids = sorted(g["id"].to_list())
    iid = "inc-" + hashlib.sha256("|".join(ids).encode()).hexdigest()[:16]
    zone_ids = sorted({z for zs in g["zone_ids"].to_list() for z in zs})
    return ids, iid, zone_ids


def build_view(classified: pl.DataFrame, agreement: Agreement, baseline: Baseline,
               index: ZoneIndex | None = None,
               min_unconfirmed_detections: int = 12) -> CeasefireView:
    """``classified``: detections (id, latitude, longitude, acq_date, sensor, time_start)
    with the classifier's columns (expected, p_normal, war_related, excess, reason, ...)."""
    index = index or ZoneIndex(agreement)
    det = tag_zones(classified, index)
    daily = _daily(det, agreement, baseline, index)
    incidents, violations = _incidents(det, agreement, min_unconfirmed_detections)
    return CeasefireView(agreement, det, daily, incidents, violations)


def _daily(det: pl.DataFrame, agreement: Agreement, baseline: Baseline,
           index: ZoneIndex) -> pl.DataFrame:
    observed = det.group_by("acq_date", "sector", "zone_group").agg(
        pl.len().alias("detections"), pl.col("war_related").sum().alias("war_related"))
    if det.height == 0:
        return observed.with_columns(pl.lit(0.0).alias("expected"))
    # expected (normal-year) detections per sector and day: sum of the baseline over its cells
    sensor = det["baseline_sensor"].mode()[0]
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


def _incidents(det: pl.DataFrame, agreement: Agreement,
               min_unconfirmed: int) -> tuple[list[Incident], list[Violation]]:
    start = agreement.entry_into_force + timedelta(hours=agreement.grace_period_hours)
    after = det.filter(
        (pl.col("time_start").str.to_datetime(time_zone="UTC") >= start)
        & (pl.col("zone_group") != "outside")
        & ((pl.col("war_related") == 1) | pl.col("excess")))
    if after.height == 0:
        return [], []
    i, j = cell_indices(after["latitude"].to_numpy(), after["longitude"].to_numpy())
    t = after["acq_date"].cast(pl.Int32).to_numpy().astype(np.int64)
    key = (t * 4000 + (i.astype(np.int64) + 2000)) * 8000 + (j.astype(np.int64) + 2000)
    nodes, inverse = np.unique(key, return_inverse=True)
    # touching cells of the same day are one incident (connected components)
    src, dst = [np.arange(nodes.size)], [np.arange(nodes.size)]
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            nb = nodes + di * 8000 + dj
            pos = np.clip(np.searchsorted(nodes, nb), 0, nodes.size - 1)
            hit = nodes[pos] == nb
            src.append(np.flatnonzero(hit))
            dst.append(pos[hit])
    s, d = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(s.size), (s, d)), shape=(nodes.size, nodes.size))
    _, label = connected_components(graph, directed=False)
    after = after.with_columns(pl.Series("_incident", label[inverse]))
    incidents, violations = [], []
    for _, g in after.group_by("_incident", maintain_order=True):
        # an unconfirmed excess must be large to stand alone (field burns give 1-10)
        if int(g["war_related"].sum()) == 0 and g.height < min_unconfirmed:
            continue
        incident, violation = _one_incident(g, agreement)
        incidents.append(incident)
        violations.append(violation)
    incidents.sort(key=lambda x: (x.time_start, x.id))
    violations.sort(key=lambda v: (v.time, v.id))
    return incidents, violations


def _one_incident(g: pl.DataFrame, agreement: Agreement) -> tuple[Incident, Violation]:
    ids, iid, zone_ids = incident_identity(g)
    group = zone_group(zone_ids)
    rule, category = RULES[group]
    lat, lon = float(g["latitude"].mean()), float(g["longitude"].mean())  # type: ignore[arg-type]
    spread = float(np.hypot(float((g["latitude"] - lat).std() or 0),  # type: ignore[arg-type]
                            float((g["longitude"] - lon).std() or 0)))  # type: ignore[arg-type]
    day: date = g["acq_date"].min()  # type: ignore[assignment]
    times = g["time_start"].str.to_datetime(time_zone="UTC")
    t0 = times.min() or datetime.combine(day, time(), UTC)
    t1 = times.max() or t0
    sector = g["sector"].mode()[0] or None
    confirmed = int(g["war_related"].sum())
    reason = (f"{g.height} fire detections on {day} in {', '.join(zone_ids)}; "
              f"{confirmed} war-related (confirmed or carried over), "
              f"{g.height - confirmed} improbable excess not yet confirmed; "
              f"example: {g['reason'][0]}")
    inc = Incident(
        id=iid, category=category, time_start=t0, time_end=t1,  # type: ignore[arg-type]
        location=Location(lat, lon, max(190.0, spread * 111_000)), observation_ids=ids,
        sector_id=sector, zone_ids=zone_ids, n_sources=1, reason=reason,
        attributes={"detections": g.height, "war_related": confirmed, "rule": rule},
    )
    zones_text = ", ".join(zone_ids)
    vio = Violation(
        id="vio-" + iid[4:], incident_id=iid, agreement_id=agreement.id, rule=rule,
        explanation=f"{rule}: {g.height} fire detections after entry into force "
                    f"({agreement.entry_into_force:%Y-%m-%d %H:%M}Z) inside {zones_text}",
        category=category, time=t0, zone_ids=zone_ids, sector_id=sector)  # type: ignore[arg-type]
    return inc, vio
