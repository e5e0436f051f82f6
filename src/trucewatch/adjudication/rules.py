"""The agreement's rules, evaluated on fused incidents (vectorized over the incident table).

In order; the first that applies decides, and the explanation says which and why:

1. ``before_entry_into_force`` (flag): the incident began before entry into force;
2. ``grace_period`` (flag): within the agreement's grace period after it;
3. ``live_fire_training`` (flag): a kinetic incident inside a notified training range
   during a notified window (the loader refuses ranges that touch a buffer zone);
4. ``insufficient_evidence`` (flag): satellite fires only, all of them an improbable
   excess not yet confirmed as war-related, fewer than ``min_unconfirmed_fires``
   (field burning gives 1-10); or a fused confidence below ``min_confidence`` (one weak
   source: a 4-station network event, a doubtful drone report); a second source lifts
   this;
5. kinetic incidents (explosions, fires):
   ``strike_on_protected_site`` (within a protected site's radius, including the
   multinational force's hubs), ``explosion_in_buffer_zone`` / ``fire_in_buffer_zone``,
   ``explosion_in_withdrawal_zone`` / ``fire_in_withdrawal_zone``;
6. presence incidents (heavy weapons): ``heavy_weapon_in_buffer_zone``;
   ``heavy_weapon_in_withdrawal_zone`` when the weapon's class has a withdrawal zone
   that contains it; a class the agreement does not list is flagged
   ``weapon_class_not_covered``. Vehicle movement alone breaks no rule.

Zones are tested at the incident's fused location; an incident within two sigma of a
zone's edge says so in its explanation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import shapely

from trucewatch.adjudication.ceasefire import tag_zones
from trucewatch.agreement.zones import ZoneIndex
from trucewatch.geo.crs import project_points, to_metric
from trucewatch.geo.distance import haversine_m
from trucewatch.model.agreement import Agreement
from trucewatch.model.enums import Category
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.observation import Location

RULE_CATEGORY = {
    "strike_on_protected_site": Category.STRIKE_ON_PROTECTED_SITE,
    "explosion_in_buffer_zone": Category.EXPLOSION_IMPACT,
    "explosion_in_withdrawal_zone": Category.EXPLOSION_IMPACT,
    "fire_in_buffer_zone": Category.FIRE,
    "fire_in_withdrawal_zone": Category.FIRE,
    "heavy_weapon_in_buffer_zone": Category.HEAVY_WEAPON_IN_RESTRICTED_ZONE,
    "heavy_weapon_in_withdrawal_zone": Category.HEAVY_WEAPON_IN_RESTRICTED_ZONE,
}
KLASS_CATEGORY = {"explosion": Category.EXPLOSION_IMPACT, "fire": Category.FIRE,
                  "heavy_weapon": Category.HEAVY_WEAPON,
                  "vehicle_movement": Category.VEHICLE_MOVEMENT}
FLAGS = ("before_entry_into_force", "grace_period", "live_fire_training",
         "insufficient_evidence", "weapon_class_not_covered")
SOURCE_WORDS = {"satellite_fire": "satellite", "sensor_network": "ground sensors",
                "drone": "drone"}


@dataclass
class RuleBook:
    agreement: Agreement
    min_unconfirmed_fires: int = 12
    min_confidence: float = 0.5
    index: ZoneIndex | None = None

    def __post_init__(self) -> None:
        self.index = self.index or ZoneIndex(self.agreement)
        self._sites = {f"site:{s.id}": s for s in self.agreement.protected_sites}

    def evaluate(self, incidents: pl.DataFrame) -> pl.DataFrame:
        """Add sector, zone_ids, zone_group, rule and flag to the fuser's incident table
        (vectorized). :meth:`describe` adds the distances the words need, for the few
        incidents that are kept; :meth:`explain` gives the words."""
        assert self.index is not None
        a = self.agreement
        inc = tag_zones(incidents, self.index)
        lon, lat = inc["longitude"].to_numpy(), inc["latitude"].to_numpy()
        t = inc["t_start"].to_numpy()
        t0 = a.entry_into_force.timestamp()
        grace_end = t0 + a.grace_period_hours * 3600
        kinetic = inc["kinetic"].to_numpy()
        group = inc["zone_group"].to_numpy()
        klass = inc["klass"].to_numpy()
        in_zone = group != "outside"
        weak = (((inc["fires"] == inc["n_obs"]) & (inc["unconfirmed_fires"] == inc["fires"])
                 & (inc["fires"] < self.min_unconfirmed_fires))
                | (inc["confidence"] < self.min_confidence)).to_numpy()
        in_buffer = inc["zone_ids"].list.eval(pl.element().str.starts_with("buffer:")
                                              ).list.any().fill_null(False).to_numpy()
        # the weapon's own withdrawal zone: zone ids "withdrawal:<class>:<side>"
        rows = inc.select(pl.int_range(pl.len()).alias("k"), "zone_ids", "weapon_class")
        own = (rows.explode("zone_ids").drop_nulls("weapon_class")
               .filter(pl.col("zone_ids").str.starts_with(
                   pl.lit("withdrawal:") + pl.col("weapon_class") + pl.lit(":")))["k"])
        in_own = np.zeros(inc.height, dtype=bool)
        in_own[own.to_numpy()] = True
        covered = inc["weapon_class"].is_in(list(a.withdrawal_km)).fill_null(True).to_numpy()
        has_class = inc["weapon_class"].is_not_null().to_numpy()
        before, grace = t < t0, (t >= t0) & (t < grace_end)
        training = ~before & ~grace & self._in_training(lon, lat, t) & kinetic
        live = ~before & ~grace & ~training
        k_weak = live & kinetic & weak & in_zone
        k_rule = live & kinetic & ~k_weak & in_zone
        weapon = live & (klass == "heavy_weapon")
        w_buf = weapon & in_buffer
        w_own = weapon & ~in_buffer & in_own
        w_unc = weapon & ~in_buffer & ~in_own & has_class & ~covered & in_zone
        what = np.where(klass == "explosion", "explosion", "fire")
        kin_rule = np.where(group == "protected_site", "strike_on_protected_site",
                            np.char.add(np.char.add(what.astype(str), "_in_"),
                                        np.char.add(group.astype(str), "_zone")))
        rule = np.select([k_rule, w_buf, w_own],
                         [kin_rule, "heavy_weapon_in_buffer_zone",
                          "heavy_weapon_in_withdrawal_zone"], default="")
        flag = np.select([before, grace, training, k_weak, w_unc],
                         ["before_entry_into_force", "grace_period", "live_fire_training",
                          "insufficient_evidence", "weapon_class_not_covered"], default="")
        return inc.with_columns(
            pl.Series("rule", rule.astype(str)).replace("", None),
            pl.Series("flag", flag.astype(str)).replace("", None))

    def describe(self, evaluated: pl.DataFrame) -> pl.DataFrame:
        """Add distance_km (to the line of contact) and edge_m (to the nearest zone edge)."""
        assert self.index is not None
        lon, lat = evaluated["longitude"].to_numpy(), evaluated["latitude"].to_numpy()
        return evaluated.with_columns(
            pl.Series("distance_km", self.index.distance_to_line_km(lon, lat)),
            pl.Series("edge_m", self._edge_m(lon, lat)))

    def _edge_m(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        crs = self.agreement.crs
        x, y = project_points(lon, lat, crs)
        pts = shapely.points(x, y)
        if not self.agreement.zones:
            return np.full(len(x), np.inf)
        edges = shapely.union_all([to_metric(z.geometry, crs).boundary
                                   for z in self.agreement.zones])
        return np.asarray(shapely.distance(pts, edges), dtype=np.float64)

    def _in_training(self, lon: np.ndarray, lat: np.ndarray, t: np.ndarray) -> np.ndarray:
        out = np.zeros(len(lon), dtype=bool)
        for area in self.agreement.training_areas:
            d = haversine_m(lat, lon, area.lat, area.lon)
            when = np.zeros(len(lon), dtype=bool)
            for a, b in area.windows:
                when |= (t >= a.timestamp()) & (t <= b.timestamp())
            out |= (d <= area.radius_m) & when
        return out

    def explain(self, r: dict[str, object]) -> str:
        """Which rule fired (or why none did), in words, for one evaluated incident."""
        sources = ", ".join(SOURCE_WORDS.get(str(s), str(s)) if ":" not in str(s)
                            else f"drone {str(s).split(':', 1)[1]}"
                            for s in r["sources"])  # type: ignore[attr-defined]
        when = datetime.fromtimestamp(float(r["t_start"]), UTC)  # type: ignore[arg-type]
        klass = str(r["klass"]).replace("_", " ")
        what = (f"{klass} seen by {r['n_sources']} independent source(s) ({sources}; "
                f"{r['n_obs']} observation(s), confidence {float(r['confidence']):.2f}) "  # type: ignore[arg-type]
                f"at {when:%Y-%m-%d %H:%M}Z, {float(r['distance_km']):.1f} km from the line "  # type: ignore[arg-type]
                "of contact")
        zones = ", ".join(r["zone_ids"]) or "no restricted zone"  # type: ignore[arg-type]
        near = (f"; within 2 sigma ({2 * float(r['sigma_m']):.0f} m) of a zone edge"  # type: ignore[arg-type]
                if float(r["edge_m"]) < 2 * float(r["sigma_m"]) else "")  # type: ignore[arg-type]
        rule, flag = r["rule"], r["flag"]
        if rule == "strike_on_protected_site":
            site = next((self._sites[z] for z in r["zone_ids"]  # type: ignore[attr-defined]
                         if z in self._sites), None)
            where = (f"within {site.radius_m / 1000:g} km of {site.name} ({site.kind})"
                     if site else zones)
            return f"{rule}: {what}, {where}{near}"
        if rule == "heavy_weapon_in_withdrawal_zone":
            return (f"{rule}: {r['weapon_class']} {what}, inside {zones}: this class must be "
                    f"withdrawn {self.agreement.withdrawal_km[str(r['weapon_class'])]:g} km"
                    f"{near}")
        if rule:
            return f"{rule}: {what}, inside {zones}{near}"
        eif = f"{self.agreement.entry_into_force:%Y-%m-%d %H:%M}Z"
        reasons = {
            "before_entry_into_force": f"before entry into force ({eif})",
            "grace_period": f"within the {self.agreement.grace_period_hours:g} h grace period "
                            f"after entry into force ({eif})",
            "live_fire_training": "inside a notified live-fire training range during its "
                                  "notified window",
            "insufficient_evidence": (
                f"only {r['fires']} unconfirmed excess fire detection(s) (fewer than "
                f"{self.min_unconfirmed_fires}) and no other source"
                if r["fires"] == r["n_obs"] else
                f"fused confidence {float(r['confidence']):.2f} below "  # type: ignore[arg-type]
                f"{self.min_confidence:g}: one weak source"),
            "weapon_class_not_covered": f"weapon class {r['weapon_class']!r} has no withdrawal "
                                        "zone in the agreement",
        }
        if flag:
            return f"no violation ({flag}): {what}, in {zones}: {reasons[str(flag)]}"
        return f"no violation: {what}, in {zones}"

    def to_domain(self, evaluated: pl.DataFrame, keep: pl.Series | None = None
                  ) -> tuple[list[Incident], list[Violation]]:
        """Incidents (and their candidate violations) to store: those with a rule; those in a
        zone flagged grace period, training or uncovered weapon class (a monitor must see
        them); and those ``keep`` marks (e.g. matched to an allegation). Weak evidence and
        incidents outside zones stay in the fusion's counts only."""
        shown = ("grace_period", "live_fire_training", "weapon_class_not_covered")
        mask = evaluated["rule"].is_not_null() | (evaluated["flag"].is_in(shown)
                                                  & (evaluated["zone_group"] != "outside"))
        if keep is not None:
            mask = mask | keep
        incidents, violations = [], []
        for r in self.describe(evaluated.filter(mask)).iter_rows(named=True):
            inc, vio = self.incident(r)
            incidents.append(inc)
            if vio is not None:
                violations.append(vio)
        return incidents, violations

    def incident(self, r: dict[str, object]) -> tuple[Incident, Violation | None]:
        ids = list(r["observation_ids"])  # type: ignore[call-overload]
        explanation = self.explain(r)
        iid = "inc-" + hashlib.sha256("|".join(sorted(ids)).encode()).hexdigest()[:16]
        rule = r["rule"]
        category = RULE_CATEGORY[str(rule)] if rule else KLASS_CATEGORY[str(r["klass"])]
        t0 = datetime.fromtimestamp(float(r["t_start"]), UTC)  # type: ignore[arg-type]
        t1 = datetime.fromtimestamp(float(r["t_end"]), UTC)  # type: ignore[arg-type]
        kinds = list(r["source_kinds"])  # type: ignore[call-overload]
        attrs = {
            "rule": rule or "", "flag": r["flag"] or "", "detections": r["n_obs"],
            "fires": r["fires"], "explosions": r["explosions"],
            "drone_reports": r["drone_reports"], "confidence": round(float(r["confidence"]), 4),  # type: ignore[arg-type]
            "independent_sources": r["n_sources"], "sources": list(r["sources"]),  # type: ignore[call-overload]
            "source": " + ".join(SOURCE_WORDS.get(k, k) for k in kinds),
            "duplicates_merged": r["duplicates_merged"], "weapon_class": r["weapon_class"],
            "distance_to_line_km": round(float(r["distance_km"]), 2),  # type: ignore[arg-type]
            "fusion_rule": "space-time gate: n_sigma*sqrt(si^2+sj^2)+scale, window slack",
        }
        inc = Incident(id=iid, category=category, time_start=t0, time_end=t1,
                       location=Location(float(r["latitude"]), float(r["longitude"]),  # type: ignore[arg-type]
                                         float(r["sigma_m"])),  # type: ignore[arg-type]
                       observation_ids=sorted(ids), sector_id=str(r["sector"]) or None,
                       zone_ids=list(r["zone_ids"]), n_sources=int(r["n_sources"]),  # type: ignore[call-overload]
                       reason=explanation, attributes=attrs)
        if not rule:
            return inc, None
        vio = Violation(id="vio-" + iid[4:], incident_id=iid, agreement_id=self.agreement.id,
                        rule=str(rule), explanation=explanation, category=category,
                        time=t0, zone_ids=inc.zone_ids, sector_id=inc.sector_id)
        return inc, vio


def since_entry_into_force(agreement: Agreement, margin_h: float = 24.0) -> datetime:
    return agreement.entry_into_force - timedelta(hours=margin_h)
