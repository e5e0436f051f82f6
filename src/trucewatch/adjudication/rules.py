"""The agreement's rules, evaluated on fused incidents (vectorized over the incident table).

In order; the first that applies decides, and the explanation says which and why:

Entry into force is judged on the window the observations can have been made in
(``seen_start``, ``seen_end``; ``t_start``, ``t_end`` when the table has none):

1. ``before_entry_into_force`` (flag): seen_end < entry into force;
2. ``same_day_ambiguous`` (flag): the window straddles it (seen_start < t0 <= seen_end)
   and the evidence would otherwise be a candidate violation: it cannot be told whether
   it happened before or after; shown to monitors, never a violation;
3. ``grace_period`` (flag): seen_start within the agreement's grace period after it;
4. ``live_fire_training`` (flag): a kinetic incident inside a notified training range
   during a notified window (the loader refuses ranges that touch a buffer zone);
5. ``insufficient_evidence`` (flag): kinetic evidence that would break a rule but is
   satellite fires only, all of them an improbable excess not yet confirmed as
   war-related, fewer than ``min_unconfirmed_fires`` (field burning gives 1-10); or a
   fused confidence below ``min_confidence`` (one weak source: a 4-station network
   event, a doubtful drone report); a second source lifts this;
6. the agreement's ``evidence_rules`` (zone kind -> evidence class -> ``violation`` or
   ``none``, defaults in :data:`trucewatch.model.agreement.DEFAULT_EVIDENCE_RULES`):
   the first zone kind the incident is in (protected site, disengagement area, buffer,
   withdrawal) whose rule for its evidence (fire, explosion, heavy_weapon) says
   ``violation`` names the rule: ``strike_on_protected_site``,
   ``{fire,explosion,heavy_weapon}_in_disengagement_area``,
   ``{fire,explosion,heavy_weapon}_in_buffer_zone``, ``explosion_in_withdrawal_zone``
   (``fire_in_withdrawal_zone`` only where an agreement says so), and
   ``heavy_weapon_in_withdrawal_zone`` when the weapon's class has a withdrawal zone that
   contains it; a class the agreement does not list is flagged
   ``weapon_class_not_covered``;
7. ``not_proof_in_zone`` (flag): in a zone whose rule for that evidence is ``none`` (by
   default a fire alone in a withdrawal zone, which restricts weapons, not fires), and no
   other zone's rule applies. Vehicle movement alone breaks no rule.

Zones are tested at the incident's fused location; an incident within two sigma of a
zone's edge says so in its explanation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import numpy as np
import polars as pl
import shapely

from trucewatch.adjudication.ceasefire import tag_zones
from trucewatch.agreement.zones import ZoneIndex
from trucewatch.geo.crs import project_points, to_metric
from trucewatch.geo.distance import haversine_m
from trucewatch.model.agreement import (
    EVIDENCE_CLASSES,
    Agreement,
    disengagement_zone_id,
    site_zone_id,
)
from trucewatch.model.enums import (
    Category,
    EvidenceClass,
    ObservedClass,
    RuleName,
    SourceKind,
    ZoneGroup,
    ZoneKind,
)
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.observation import Location

R, Z, E, O = RuleName, ZoneKind, EvidenceClass, ObservedClass  # noqa: E741
RULE_CATEGORY: dict[str, Category] = {
    R.STRIKE_ON_PROTECTED_SITE: Category.STRIKE_ON_PROTECTED_SITE,
    R.EXPLOSION_IN_DISENGAGEMENT_AREA: Category.EXPLOSION_IMPACT,
    R.EXPLOSION_IN_BUFFER_ZONE: Category.EXPLOSION_IMPACT,
    R.EXPLOSION_IN_WITHDRAWAL_ZONE: Category.EXPLOSION_IMPACT,
    R.FIRE_IN_DISENGAGEMENT_AREA: Category.FIRE,
    R.FIRE_IN_BUFFER_ZONE: Category.FIRE,
    R.FIRE_IN_WITHDRAWAL_ZONE: Category.FIRE,
    R.HEAVY_WEAPON_IN_PROTECTED_SITE: Category.HEAVY_WEAPON_IN_RESTRICTED_ZONE,
    R.HEAVY_WEAPON_IN_DISENGAGEMENT_AREA: Category.HEAVY_WEAPON_IN_RESTRICTED_ZONE,
    R.HEAVY_WEAPON_IN_BUFFER_ZONE: Category.HEAVY_WEAPON_IN_RESTRICTED_ZONE,
    R.HEAVY_WEAPON_IN_WITHDRAWAL_ZONE: Category.HEAVY_WEAPON_IN_RESTRICTED_ZONE,
}
KLASS_CATEGORY: dict[str, Category] = {
    O.EXPLOSION: Category.EXPLOSION_IMPACT, O.FIRE: Category.FIRE,
    O.HEAVY_WEAPON: Category.HEAVY_WEAPON, O.VEHICLE_MOVEMENT: Category.VEHICLE_MOVEMENT}
FLAGS = ("before_entry_into_force", "same_day_ambiguous", "grace_period",
         "live_fire_training", "insufficient_evidence", "weapon_class_not_covered",
         "not_proof_in_zone")
# the incident's klass -> evidence class of the agreement's evidence_rules
EVIDENCE_OF: dict[str, str] = {O.EXPLOSION: E.EXPLOSION, O.CRATER: E.EXPLOSION,
                               O.FIRE: E.FIRE, O.HEAVY_WEAPON: E.HEAVY_WEAPON}
# zone kinds, most specific first: the first whose evidence rule says "violation" decides
KIND_ORDER = (Z.PROTECTED_SITE, Z.DISENGAGEMENT, Z.BUFFER, Z.WITHDRAWAL)
# zone kind -> evidence class -> the rule broken
KIND_RULES: dict[ZoneKind, dict[EvidenceClass, RuleName]] = {
    Z.PROTECTED_SITE: {E.FIRE: R.STRIKE_ON_PROTECTED_SITE,
                       E.EXPLOSION: R.STRIKE_ON_PROTECTED_SITE,
                       E.HEAVY_WEAPON: R.HEAVY_WEAPON_IN_PROTECTED_SITE},
    Z.DISENGAGEMENT: {E.FIRE: R.FIRE_IN_DISENGAGEMENT_AREA,
                      E.EXPLOSION: R.EXPLOSION_IN_DISENGAGEMENT_AREA,
                      E.HEAVY_WEAPON: R.HEAVY_WEAPON_IN_DISENGAGEMENT_AREA},
    Z.BUFFER: {E.FIRE: R.FIRE_IN_BUFFER_ZONE, E.EXPLOSION: R.EXPLOSION_IN_BUFFER_ZONE,
               E.HEAVY_WEAPON: R.HEAVY_WEAPON_IN_BUFFER_ZONE},
    Z.WITHDRAWAL: {E.FIRE: R.FIRE_IN_WITHDRAWAL_ZONE,
                   E.EXPLOSION: R.EXPLOSION_IN_WITHDRAWAL_ZONE,
                   E.HEAVY_WEAPON: R.HEAVY_WEAPON_IN_WITHDRAWAL_ZONE},
}
RULE_KIND: dict[str, str] = {rule: kind for kind, per in KIND_RULES.items()
                             for rule in per.values()}
KIND_WORDS: dict[str, str] = {
    Z.PROTECTED_SITE: "protected site", Z.DISENGAGEMENT: "disengagement area",
    Z.BUFFER: "buffer zone", Z.WITHDRAWAL: "withdrawal zone"}
SOURCE_WORDS: dict[str, str] = {SourceKind.SATELLITE_FIRE: "satellite",
                SourceKind.SENSOR_NETWORK: "ground sensors", SourceKind.DRONE: "drone"}


@dataclass
class RuleBook:
    agreement: Agreement
    min_unconfirmed_fires: int = 12
    # a fire seen from space alone is a cluster of pixels: fewer confirmed detections than
    # this (one or two pixels carried over from an earlier excess) accuse no one. 3, not 5:
    # on the 2020 replay both give 1 candidate, on a ceasefire that broke down (August
    # 2022, benchmarks/ceasefire_replay.py) 16 against 8
    min_satellite_cluster: int = 3
    min_confidence: float = 0.5
    index: ZoneIndex | None = None
    # the satellite classifier's reason per fire observation id (a dict, or a frame with
    # columns id, reason); optional: the explanation of a fire then quotes it
    fire_reasons: dict[str, str] | pl.DataFrame | None = None

    def __post_init__(self) -> None:
        self.index = self.index or ZoneIndex(self.agreement)
        self._sites = {site_zone_id(s.id): s for s in self.agreement.protected_sites}
        self._areas = {disengagement_zone_id(d.id): d
                       for d in getattr(self.agreement, "disengagement_areas", [])}
        self._kinds = {z.id: str(z.kind) for z in self.agreement.zones}
        # each withdrawal zone's weapon class, from the zone (its id is not parsed)
        self._zone_class = {z.id: z.weapon_class for z in self.agreement.zones
                            if z.weapon_class is not None}
        fr = self.fire_reasons
        if isinstance(fr, pl.DataFrame):
            fr = (dict(zip(fr["id"].cast(pl.String).to_list(),
                           fr["reason"].cast(pl.String).to_list(), strict=True))
                  if {"id", "reason"} <= set(fr.columns) else {})
        self._reasons: dict[str, str] = {str(k): str(v) for k, v in (fr or {}).items()
                                         if v is not None and str(v)}

    def evaluate(self, incidents: pl.DataFrame) -> pl.DataFrame:
        """Add sector, zone_ids, zone_group, rule and flag to the fuser's incident table
        (vectorized). :meth:`describe` adds the distances the words need, for the few
        incidents that are kept; :meth:`explain` gives the words."""
        assert self.index is not None
        a = self.agreement
        inc = tag_zones(incidents, self.index)
        n = inc.height
        lon, lat = inc["longitude"].to_numpy(), inc["latitude"].to_numpy()
        t = inc["t_start"].to_numpy()
        # the window the observations can have been made in (fusion's seen_start/seen_end;
        # the incident's own window where the table has none)
        cols = set(inc.columns)
        seen_start = (inc["seen_start"].cast(pl.Float64).fill_null(inc["t_start"])
                      if "seen_start" in cols else inc["t_start"]).to_numpy()
        seen_end = (inc["seen_end"].cast(pl.Float64).fill_null(inc["t_end"])
                    if "seen_end" in cols else inc["t_end"]).to_numpy()
        t0 = a.entry_into_force.timestamp()
        grace_end = t0 + a.grace_period_hours * 3600
        kinetic = inc["kinetic"].to_numpy()
        group = inc["zone_group"].to_numpy()
        evidence = inc["klass"].replace_strict(EVIDENCE_OF, default="",
                                               return_dtype=pl.String).to_numpy()
        in_zone = group != ZoneGroup.OUTSIDE
        fire_only = inc["fires"] == inc["n_obs"]
        confirmed = inc["fires"] - inc["unconfirmed_fires"]
        weak = ((fire_only & (inc["unconfirmed_fires"] == inc["fires"])
                 & (inc["fires"] < self.min_unconfirmed_fires))
                | (fire_only & (confirmed > 0) & (confirmed < self.min_satellite_cluster))
                | (inc["confidence"] < self.min_confidence)).to_numpy()
        # incident-zone pairs, each zone with its kind
        rows = (inc.select(pl.int_range(pl.len()).alias("k"), "zone_ids", "weapon_class")
                .explode("zone_ids").drop_nulls("zone_ids")
                .with_columns(pl.col("zone_ids").replace_strict(
                    self._kinds or {"": ""}, default="", return_dtype=pl.String).alias("kind")))
        member = {}
        for kind in KIND_ORDER:  # four kinds, not rows
            m = np.zeros(n, dtype=bool)
            m[rows.filter(pl.col("kind") == kind)["k"].to_numpy()] = True
            member[kind] = m
        # the weapon's own withdrawal zone: a withdrawal zone of the weapon's class
        own = (rows.drop_nulls("weapon_class")
               .filter((pl.col("kind") == ZoneKind.WITHDRAWAL) & (
                   pl.col("zone_ids").replace_strict(self._zone_class or {"": ""},
                                                     default=None, return_dtype=pl.String)
                   == pl.col("weapon_class")))["k"])
        in_own = np.zeros(n, dtype=bool)
        in_own[own.to_numpy()] = True
        covered = inc["weapon_class"].is_in(list(a.withdrawal_km)).fill_null(True).to_numpy()
        has_class = inc["weapon_class"].is_not_null().to_numpy()
        # what the evidence would prove, zone kind by zone kind (evidence_rules)
        applies, nothing, names = [], np.zeros(n, dtype=bool), []
        for kind in KIND_ORDER:
            proves = [c for c in EVIDENCE_CLASSES if a.evidence_rule(kind, c) == "violation"]
            mute = [c for c in EVIDENCE_CLASSES if c not in proves]
            hit = member[kind] & np.isin(evidence, proves)
            if kind == ZoneKind.WITHDRAWAL:  # a heavy weapon only in its own class's zone
                hit &= (evidence != EvidenceClass.HEAVY_WEAPON) | in_own
            applies.append(hit)
            nothing |= member[kind] & np.isin(evidence, mute)
            names.append(np.select([evidence == c for c in EVIDENCE_CLASSES],
                                   [KIND_RULES[kind][c] for c in EVIDENCE_CLASSES],
                                   default=""))
        cand = np.select(applies, names, default="").astype(str)
        would = cand != ""
        weak_k = kinetic & weak & would  # kinetic evidence too weak for the rule it would break
        # entry into force, three ways: all before it, straddling it, all after it
        before = seen_end < t0
        straddle = (seen_start < t0) & (seen_end >= t0)
        grace = ~before & ~straddle & (seen_start < grace_end)
        timely = ~before & ~straddle & ~grace
        training = timely & self._in_training(lon, lat, t) & kinetic
        live = timely & ~training
        ambiguous = straddle & would & ~weak_k
        judged = live | straddle
        k_weak = judged & weak_k
        w_unc = (judged & (evidence == EvidenceClass.HEAVY_WEAPON) & ~would & has_class & ~covered
                 & in_zone)
        not_proof = judged & in_zone & ~would & nothing
        rule = np.where(live & would & ~weak_k, cand, "")
        flag = np.select([before, ambiguous, grace, training, k_weak, w_unc, not_proof],
                         ["before_entry_into_force", "same_day_ambiguous", "grace_period",
                          "live_fire_training", "insufficient_evidence",
                          "weapon_class_not_covered", "not_proof_in_zone"], default="")
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
        when = datetime.fromtimestamp(self._seen(r)[0], UTC)
        klass = str(r["klass"]).replace("_", " ")
        what = (f"{klass} seen by {r['n_sources']} independent source(s) ({sources}; "
                f"{r['n_obs']} observation(s), confidence {float(r['confidence']):.2f}) "  # type: ignore[arg-type]
                f"at {when:%Y-%m-%d %H:%M}Z, {float(r['distance_km']):.1f} km from the line "  # type: ignore[arg-type]
                "of contact")
        zones = ", ".join(r["zone_ids"]) or "no restricted zone"  # type: ignore[arg-type]
        near = (f"; within 2 sigma ({2 * float(r['sigma_m']):.0f} m) of a zone edge"  # type: ignore[arg-type]
                if float(r["edge_m"]) < 2 * float(r["sigma_m"]) else "")  # type: ignore[arg-type]
        rule, flag = r["rule"], r["flag"]
        cls = EVIDENCE_OF.get(str(r["klass"]), "")
        classifier = self._classifier(r)
        tail = ""
        if rule:
            kind = RULE_KIND.get(str(rule), "")
            law = f"evidence_rules.{kind}.{cls} = {self.agreement.evidence_rule(kind, cls)}"
            tail = f"; {law}; alternatives considered: {self._alternatives(r)}{classifier}"
        if rule == RuleName.STRIKE_ON_PROTECTED_SITE:
            site = next((self._sites[z] for z in r["zone_ids"]  # type: ignore[attr-defined]
                         if z in self._sites), None)
            where = (f"within {site.radius_m / 1000:g} km of {site.name} ({site.kind})"
                     if site else zones)
            return f"{rule}: {what}, {where}{near}{tail}"
        if rule in (RuleName.FIRE_IN_DISENGAGEMENT_AREA,
                    RuleName.EXPLOSION_IN_DISENGAGEMENT_AREA,
                    RuleName.HEAVY_WEAPON_IN_DISENGAGEMENT_AREA):
            area = next((self._areas[z] for z in r["zone_ids"]  # type: ignore[attr-defined]
                         if z in self._areas), None)
            where = (f"inside {area.name} (disengagement area"
                     + (f", {area.radius_m / 1000:g} km radius)" if area.geometry is None
                        else ")") if area else f"inside {zones}")
            return f"{rule}: {what}, {where}{near}{tail}"
        if rule == RuleName.HEAVY_WEAPON_IN_WITHDRAWAL_ZONE:
            return (f"{rule}: {r['weapon_class']} {what}, inside {zones}: this class must be "
                    f"withdrawn {self.agreement.withdrawal_km[str(r['weapon_class'])]:g} km"
                    f"{near}{tail}")
        if rule:
            return f"{rule}: {what}, inside {zones}{near}{tail}"
        eif = f"{self.agreement.entry_into_force:%Y-%m-%d %H:%M}Z"
        in_kinds = [k for k in KIND_ORDER
                    if any(self._kinds.get(str(z)) == k for z in r["zone_ids"])]  # type: ignore[attr-defined]
        mute = [k for k in in_kinds if self.agreement.evidence_rule(k, cls) != "violation"]
        proves = [k for k in in_kinds if k not in mute]
        reasons = {
            "before_entry_into_force": (
                f"before entry into force ({eif}): seen by "
                f"{_utc(self._seen(r)[1]):%Y-%m-%d %H:%M}Z at the latest"),
            "same_day_ambiguous": (
                f"seen between {_window(*self._seen(r), self.agreement.entry_into_force)}: "
                f"it cannot be told whether the {klass} was before or after"
                + (f" (after it, evidence_rules.{proves[0]}.{cls} = violation)"
                   if proves else "")),
            "not_proof_in_zone": (
                f"{'an' if klass[:1] in 'aeiou' else 'a'} {klass} alone proves nothing in a "
                f"{KIND_WORDS.get(mute[0], mute[0]) if mute else 'restricted zone'} ("
                + ", ".join(f"evidence_rules.{k}.{cls} = none" for k in mute) + ")"),
            "grace_period": f"within the {self.agreement.grace_period_hours:g} h grace period "
                            f"after entry into force ({eif})",
            "live_fire_training": "inside a notified live-fire training range during its "
                                  "notified window",
            "insufficient_evidence": (
                f"only {r['fires']} unconfirmed excess fire detection(s) (fewer than "
                f"{self.min_unconfirmed_fires}) and no other source"
                if r["fires"] == r["n_obs"] and r["unconfirmed_fires"] == r["fires"] else
                f"only {int(r['fires']) - int(r['unconfirmed_fires'])} confirmed fire "  # type: ignore[call-overload]
                f"detection(s) (a satellite-only candidate needs a cluster of "
                f"{self.min_satellite_cluster}) and no other source"
                if r["fires"] == r["n_obs"] else
                f"fused confidence {float(r['confidence']):.2f} below "  # type: ignore[arg-type]
                f"{self.min_confidence:g}: one weak source"),
            "weapon_class_not_covered": f"weapon class {r['weapon_class']!r} has no withdrawal "
                                        "zone in the agreement",
        }
        if flag:
            return (f"no violation ({flag}): {what}, in {zones}: {reasons[str(flag)]}"
                    f"{classifier}")
        return f"no violation: {what}, in {zones}{classifier}"

    def _seen(self, r: dict[str, object]) -> tuple[float, float]:
        """(seen_start, seen_end) of an evaluated row; its t_start/t_end without them."""
        a, b = r.get("seen_start"), r.get("seen_end")
        return (float(r["t_start"] if a is None else a),  # type: ignore[arg-type]
                float(r["t_end"] if b is None else b))  # type: ignore[arg-type]

    def _classifier(self, r: dict[str, object]) -> str:
        """The satellite classifier's reason for the incident's first fire observation."""
        if not self._reasons or not r.get("fires"):
            return ""
        reason = next((self._reasons[i] for i in r["observation_ids"]  # type: ignore[attr-defined]
                       if i in self._reasons), None)
        return f"; satellite classifier: {reason}" if reason else ""

    def _alternatives(self, r: dict[str, object]) -> str:
        """The readings of a candidate violation that were considered and set aside."""
        a = self.agreement
        start, _ = self._seen(r)
        out = [f"before entry into force ({a.entry_into_force:%Y-%m-%d %H:%M}Z): no, seen "
               f"from {_utc(start):%Y-%m-%d %H:%M}Z"]
        out.append(f"grace period ({a.grace_period_hours:g} h): no, it had ended"
                   if a.grace_period_hours else "grace period: none in the agreement")
        if r.get("kinetic"):
            out.append("notified live-fire training: no" if a.training_areas
                       else "notified live-fire training: none notified")
            fires, unconf = int(r["fires"]), int(r["unconfirmed_fires"])  # type: ignore[call-overload]
            if fires == r["n_obs"] and unconf == fires:
                out.append(f"insufficient evidence: no, {fires} excess fire detection(s) "
                           f"(at least {self.min_unconfirmed_fires})")
            elif fires == r["n_obs"]:
                out.append(f"insufficient evidence: no, {fires - unconf} of {fires} fire "
                           "detection(s) confirmed war-related")
            else:
                out.append(f"insufficient evidence: no, confidence "
                           f"{float(r['confidence']):.2f} >= {self.min_confidence:g}")  # type: ignore[arg-type]
            if r.get("fires"):
                out.append("agricultural, wildfire or industrial burning: ruled out by the "
                           "satellite classifier (its reason below; explained fires are "
                           "never evidence)")
        return "; ".join(out)

    def to_domain(self, evaluated: pl.DataFrame, keep: pl.Series | None = None
                  ) -> tuple[list[Incident], list[Violation]]:
        """Incidents (and their candidate violations) to store: those with a rule; those in a
        zone flagged grace period, training, uncovered weapon class or same-day ambiguous (a
        monitor must see them); and those ``keep`` marks (e.g. matched to an allegation).
        Weak evidence, evidence that proves nothing in its zone and incidents outside zones
        stay in the fusion's counts only."""
        mask = self.stored(evaluated, keep)
        incidents, violations = [], []
        for r in self.describe(evaluated.filter(mask)).iter_rows(named=True):
            inc, vio = self.incident(r)
            incidents.append(inc)
            if vio is not None:
                violations.append(vio)
        return incidents, violations

    @staticmethod
    def stored(evaluated: pl.DataFrame, keep: pl.Series | None = None) -> pl.Series:
        """Which evaluated incidents :meth:`to_domain` stores (see there)."""
        shown = ("grace_period", "live_fire_training", "weapon_class_not_covered",
                 "same_day_ambiguous")
        mask = evaluated["rule"].is_not_null() | (evaluated["flag"].is_in(shown)
                                                  & (evaluated["zone_group"] != ZoneGroup.OUTSIDE))
        return mask | keep if keep is not None else mask

    def incident(self, r: dict[str, object]) -> tuple[Incident, Violation | None]:
        ids = list(r["observation_ids"])  # type: ignore[call-overload]
        explanation = self.explain(r)
        iid = "inc-" + hashlib.sha256("|".join(sorted(ids)).encode()).hexdigest()[:16]
        rule = r["rule"]
        category = RULE_CATEGORY[str(rule)] if rule else KLASS_CATEGORY[str(r["klass"])]
        # the incident's time is when its observations were made (a fire's fusion window
        # opens 12 h earlier only so that it can join the shelling that lit it)
        seen0, seen1 = self._seen(r)
        t0 = datetime.fromtimestamp(seen0, UTC)
        t1 = datetime.fromtimestamp(seen1, UTC)
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


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _window(start: float, end: float, eif: datetime) -> str:
    """'2020-07-26 00:00Z and 24:00Z, entry into force 21:01Z' (the date once when shared)."""
    s, e = _utc(start), _utc(end)
    midnight = datetime.combine(s.date(), time(), UTC)
    if e.date() == s.date():
        to = f"{e:%H:%M}Z"
    elif e - midnight == timedelta(days=1):
        to = "24:00Z"
    else:
        to = f"{e:%Y-%m-%d %H:%M}Z"
    at = f"{eif:%H:%M}Z" if eif.date() == s.date() else f"{eif:%Y-%m-%d %H:%M}Z"
    return f"{s:%Y-%m-%d %H:%M}Z and {to}, entry into force {at}"


def since_entry_into_force(agreement: Agreement, margin_h: float = 24.0) -> datetime:
    return agreement.entry_into_force - timedelta(hours=margin_h)
