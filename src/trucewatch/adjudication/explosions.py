"""Candidate violations from explosions located by the ground-sensor network.

Rules, applied to located explosions after entry into force plus the grace period:

* ``explosion_in_buffer_zone``: an explosion inside a buffer zone;
* ``explosion_in_withdrawal_zone``: inside a weapon-withdrawal zone only;
* ``strike_on_protected_site``: within a protected site's radius.

Explosions of the same hour in the same 0.1 degree cell and zone group form one
incident (a barrage is one incident, with its count). Events the network could
not locate are not placed in zones; the bulletin counts them as unlocated.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import polars as pl

from trucewatch.adjudication.ceasefire import incident_identity, tag_zones, zone_group
from trucewatch.agreement.zones import ZoneIndex
from trucewatch.geo.grid import cell_indices, cell_labels
from trucewatch.model.agreement import Agreement
from trucewatch.model.enums import Category
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.observation import Location

RULES = {
    "protected_site": ("strike_on_protected_site", Category.STRIKE_ON_PROTECTED_SITE),
    "buffer": ("explosion_in_buffer_zone", Category.EXPLOSION_IMPACT),
    "withdrawal": ("explosion_in_withdrawal_zone", Category.EXPLOSION_IMPACT),
}


def explosion_incidents(explosions: pl.DataFrame, agreement: Agreement,
                        index: ZoneIndex | None = None) -> tuple[list[Incident], list[Violation]]:
    """``explosions``: the store's located explosions (id, time_start, latitude, longitude,
    uncertainty_m, attributes JSON with status)."""
    if explosions.height == 0:
        return [], []
    index = index or ZoneIndex(agreement)
    ex = explosions.with_columns(
        pl.col("time_start").str.to_datetime(time_zone="UTC").alias("t"),
        pl.col("attributes").str.json_path_match("$.status").alias("status"))
    ex = ex.filter(pl.col("status") == "located")
    start = agreement.entry_into_force + timedelta(hours=agreement.grace_period_hours)
    ex = ex.filter(pl.col("t") >= start)
    if ex.height == 0:
        return [], []
    lat, lon = ex["latitude"].to_numpy(), ex["longitude"].to_numpy()
    ex = tag_zones(ex, index).with_columns(
        pl.Series("cell", cell_labels(*cell_indices(lat, lon))),
        pl.col("t").dt.truncate("1h").alias("hour"))
    ex = ex.filter(pl.col("zone_group") != "outside")
    incidents, violations = [], []
    for _, g in ex.group_by("hour", "cell", "zone_group", maintain_order=True):
        inc, vio = _one(g, agreement)
        incidents.append(inc)
        violations.append(vio)
    incidents.sort(key=lambda x: (x.time_start, x.id))
    violations.sort(key=lambda v: (v.time, v.id))
    return incidents, violations


def _one(g: pl.DataFrame, agreement: Agreement) -> tuple[Incident, Violation]:
    ids, iid, zone_ids = incident_identity(g)
    rule, category = RULES[zone_group(zone_ids)]
    t0: datetime = g["t"].min()  # type: ignore[assignment]
    t1: datetime = g["t"].max()  # type: ignore[assignment]
    lat, lon = float(g["latitude"].mean()), float(g["longitude"].mean())  # type: ignore[arg-type]
    unc = float(g["uncertainty_m"].max())  # type: ignore[arg-type]
    n_def = [json.loads(a).get("n_defining") for a in g["attributes"].to_list()]
    reason = (f"{g.height} explosion(s) located by the ground-sensor network "
              f"({min(n_def)}-{max(n_def)} defining detections each) between "
              f"{t0:%H:%M:%S} and {t1:%H:%M:%S}Z in {', '.join(zone_ids)}")
    sector = g["sector"].mode()[0] or None
    inc = Incident(id=iid, category=category, time_start=t0, time_end=t1,
                   location=Location(lat, lon, max(unc, 50.0)), observation_ids=ids,
                   sector_id=sector, zone_ids=zone_ids, n_sources=1, reason=reason,
                   attributes={"detections": g.height, "explosions": g.height, "rule": rule,
                               "source": "ground sensors"})
    vio = Violation(id="vio-" + iid[4:], incident_id=iid, agreement_id=agreement.id, rule=rule,
                    explanation=f"{rule}: {g.height} explosion(s) after entry into force "
                    f"({agreement.entry_into_force:%Y-%m-%d %H:%M}Z) inside {', '.join(zone_ids)}",
                    category=category, time=t0, zone_ids=zone_ids,
                    sector_id=sector)
    return inc, vio
