"""The built-in scenario's drones, allegations, keys and scripted review (issue 4).

Written beside the satellite and sensor files, with the expected outcome of each in
the ground truth:

* ``keys.json``: the key registry: platform UA-07; EU-12 with a rotation on 15 May;
  UA-09 revoked on 29 May (key compromise);
* ``drones/``: signed report documents of UA-07 (explosions the ground network also
  located, one geolocated from MISB KLV, plus one report in the future and one
  malformed, both quarantined) and EU-12 (heavy weapons in a withdrawal zone and in
  the buffer zone, vehicle movement), with patrol tracks; and bad submissions that
  must be refused: unsigned, tampered, replayed, signed with the revoked key;
* ``allegations/``: ten allegations in Ukrainian, French, English and Russian, from
  parties, monitors and the public, each with its expected ruling, and three bad
  ones (unknown place, time in the future, unknown claimant kind);
* :func:`apply_review`: two analysts review the day's incidents (verify under the
  two-person rule, one refused self-verification, reject, modify, add).

The keys are derived from the seed so that runs are reproducible; they protect
nothing and are never to be used outside this scenario.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from trucewatch.adjudication.allegations import Coverage
from trucewatch.adjudication.ceasefire import tag_zones
from trucewatch.agreement import load_agreement
from trucewatch.agreement.zones import ZoneIndex
from trucewatch.ingest.drones import klv_packet
from trucewatch.integrity.envelope import sign_submission
from trucewatch.integrity.keys import KeyRecord, KeyRegistry
from trucewatch.model.serialization import format_time

SENSOR_START = datetime(2026, 5, 30, 4, 0, tzinfo=UTC)
HORIZON = datetime(2026, 6, 1, tzinfo=UTC)


def platform_key(platform: str, seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(f"trucewatch-builtin|{seed}|{platform}".encode()).digest())


def _public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _t(x: datetime) -> str:
    return format_time(x)


def _offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    return (lat + north_m / 111_320.0,
            lon + east_m / (111_320.0 * float(np.cos(np.radians(lat)))))


def write_multisource(root: Path, agreement_path: Path, events: pl.DataFrame,
                      stations: pl.DataFrame, cloud: dict[str, float], gaps: set[date],
                      world_point: Any, seed: int, fire_violation: tuple[float, float]
                      ) -> dict[str, Any]:
    """Write keys, drone documents and allegations; return the truth to record."""
    agreement = load_agreement(agreement_path)
    index = ZoneIndex(agreement)
    ev = tag_zones(events, index)
    in_zone = ev.filter(pl.col("zone_group") != "outside").sort("time")
    if in_zone.height < 4:
        raise AssertionError("built-in scenario: too few explosions in restricted zones")
    keys = _write_keys(root, seed)
    # three explosions the network located, seen again from UA-07 a few minutes later
    seen = in_zone[[0, in_zone.height // 2, in_zone.height - 1]]
    reports, truth_reports = [], []
    for k, r in enumerate(seen.iter_rows(named=True)):
        t = r["time"] + timedelta(minutes=3 + k)
        plat_lat, plat_lon = _offset(r["latitude"], r["longitude"], -2400.0, -1800.0)
        rep: dict[str, Any] = {
            "report_id": f"UA07-0530-{k + 1:03d}", "platform_id": "UA-07", "time": _t(t),
            "platform": {"lat": round(plat_lat, 6), "lon": round(plat_lon, 6), "alt_m": 900},
            "class": "crater" if k == 1 else "explosion", "confidence": 0.85,
            "media": [{"sha256": hashlib.sha256(f"frame-{k}".encode()).hexdigest(),
                       "uri": f"evidence://UA-07/2026-05-30/frame-{k}.jpg"}]}
        if k == 0:  # geolocated by the platform's MISB ST 0601 metadata
            rep["klv"] = klv_packet(t, r["latitude"] + 0.0004, r["longitude"] - 0.0003, 3100)
        else:  # bearing and range from the platform (geodesic: ~N37E, 3 km)
            rep["target"] = {"bearing_deg": 53.13, "range_m": 3000.0}
        reports.append(rep)
        truth_reports.append({"report_id": rep["report_id"], "event_id": r["event_id"]})
    reports.append({"report_id": "UA07-0530-900", "platform_id": "UA-07",
                    "time": "2031-01-01T00:00:00Z", "platform": {"lat": 48.0, "lon": 37.5},
                    "target": {"lat": 48.01, "lon": 37.52}, "class": "explosion",
                    "confidence": 0.5})
    reports.append({"report_id": "UA07-0530-901", "platform_id": "UA-07", "time":
                    "2026-05-30T05:00:00Z", "platform": {"lat": 48.0, "lon": 37.5},
                    "target": {"lat": 48.01, "lon": 37.52}, "confidence": 0.5})
    lats, lons = seen["latitude"].to_list(), seen["longitude"].to_list()
    ua07 = {"format": "trucewatch-drone/1", "reports": reports, "patrols": [{
        "platform_id": "UA-07", "time_start": _t(SENSOR_START), "time_end":
        _t(SENSOR_START + timedelta(hours=6)), "swath_m": 6000.0,
        "track": [[lo, la] for la, lo in zip(lats, lons, strict=True)]}]}
    # EU-12: artillery 22 km behind the line (artillery withdrawal zone), a tank 8 km
    # from it (buffer zone), MLRS 65 km back (outside every zone), vehicles
    art_lat, art_lon = world_point("left", 22.0)
    tank_lat, tank_lon = world_point("right", 8.0)
    mlrs_lat, mlrs_lon = world_point("left", 65.0)
    veh_lat, veh_lon = world_point("right", 30.0)
    t_art = SENSOR_START + timedelta(hours=2, minutes=30)
    eu = [("EU12-0530-001", t_art, art_lat, art_lon, "heavy_weapon", "artillery", 2),
          ("EU12-0530-002", t_art + timedelta(minutes=40), tank_lat, tank_lon,
           "heavy_weapon", "tank", 1),
          ("EU12-0530-003", t_art + timedelta(minutes=75), mlrs_lat, mlrs_lon,
           "heavy_weapon", "mlrs", 1),
          ("EU12-0530-004", t_art + timedelta(minutes=90), veh_lat, veh_lon,
           "vehicle_movement", None, 6)]
    eu12 = {"format": "trucewatch-drone/1", "reports": [
        {"report_id": rid, "platform_id": "EU-12", "time": _t(t),
         "platform": {"lat": round(la - 0.02, 6), "lon": round(lo, 6), "alt_m": 1500},
         "target": {"lat": round(la, 6), "lon": round(lo, 6), "error_m": 40.0},
         "class": cls, "weapon_class": wc, "count": n, "confidence": 0.9,
         "media": [{"sha256": hashlib.sha256(rid.encode()).hexdigest(),
                    "uri": f"evidence://EU-12/2026-05-30/{rid}.mp4"}]}
        for rid, t, la, lo, cls, wc, n in eu], "patrols": [{
            "platform_id": "EU-12", "time_start": _t(t_art - timedelta(minutes=30)),
            "time_end": _t(t_art + timedelta(hours=2)), "swath_m": 8000.0,
            "track": [[art_lon, art_lat], [tank_lon, tank_lat], [veh_lon, veh_lat]]}]}
    folder = root / "drones"
    folder.mkdir(parents=True, exist_ok=True)
    signed_at = SENSOR_START + timedelta(hours=7)
    ua_raw = json.dumps(ua07, indent=1).encode()
    ua_env = sign_submission(ua_raw, keys["UA-07"], "UA-07/2026-05", signed_at,
                             "UA-07-20260530-1")
    eu_env = sign_submission(json.dumps(eu12, indent=1).encode(), keys["EU-12/new"],
                             "EU-12/2026-05b", signed_at, "EU-12-20260530-1")
    files = {"ua07": folder / "ua07-2026-05-30.signed.json",
             "eu12": folder / "eu12-2026-05-30.signed.json"}
    files["ua07"].write_bytes(ua_env)
    files["eu12"].write_bytes(eu_env)
    bad = {}
    bad["unsigned"] = folder / "zz-unsigned.json"
    bad["unsigned"].write_bytes(ua_raw)
    tampered = json.loads(ua_env)
    payload = json.loads(ua_raw)
    payload["reports"][0]["confidence"] = 0.99  # altered after signing
    tampered["payload"] = base64.b64encode(json.dumps(payload, indent=1).encode()).decode()
    bad["tampered"] = folder / "zz-tampered.signed.json"
    bad["tampered"].write_text(json.dumps(tampered), encoding="utf-8")
    bad["replayed"] = folder / "zz-replayed.signed.json"  # same nonce, re-encoded
    bad["replayed"].write_text(json.dumps(json.loads(ua_env)), encoding="utf-8")
    bad["revoked"] = folder / "zz-ua09-revoked-key.signed.json"
    bad["revoked"].write_bytes(sign_submission(ua_raw, keys["UA-09"], "UA-09/2026-05",
                                               signed_at, "UA-09-20260530-1"))
    allegations, expected = _allegations(seen, events, stations, cloud, gaps,
                                         (art_lat, art_lon, t_art), world_point,
                                         fire_violation)
    (root / "allegations").mkdir(exist_ok=True)
    alleg_path = root / "allegations" / "allegations-2026-05.json"
    alleg_path.write_text(json.dumps({"format": "trucewatch-allegations/1",
                                      "allegations": allegations}, ensure_ascii=False,
                                     indent=1), encoding="utf-8")
    return {
        "keys": str((root / "keys.json").relative_to(root)),
        "drone_files": [str(p.relative_to(root)) for p in files.values()],
        "bad_drone_files": {k: str(p.relative_to(root)) for k, p in bad.items()},
        "drone_reports": truth_reports, "drone_quarantined": 2,
        "heavy_weapons": {"EU12-0530-001": "heavy_weapon_in_withdrawal_zone",
                          "EU12-0530-002": "heavy_weapon_in_buffer_zone",
                          "EU12-0530-003": None, "EU12-0530-004": None},
        "allegations_file": str(alleg_path.relative_to(root)),
        "expected_rulings": expected, "bad_allegations": 3,
    }


def _write_keys(root: Path, seed: int) -> dict[str, Ed25519PrivateKey]:
    keys = {p: platform_key(p, seed) for p in ("UA-07", "EU-12/old", "EU-12/new", "UA-09")}
    reg = KeyRegistry([
        KeyRecord("UA-07/2026-05", "drone:UA-07", _public(keys["UA-07"]),
                  datetime(2026, 5, 1, tzinfo=UTC)),
        KeyRecord("EU-12/2026-05a", "drone:EU-12", _public(keys["EU-12/old"]),
                  datetime(2026, 4, 1, tzinfo=UTC)),
        KeyRecord("UA-09/2026-05", "drone:UA-09", _public(keys["UA-09"]),
                  datetime(2026, 5, 1, tzinfo=UTC)),
    ])
    reg.rotate("EU-12/2026-05a", KeyRecord("EU-12/2026-05b", "drone:EU-12",
                                           _public(keys["EU-12/new"]),
                                           datetime(2026, 5, 15, tzinfo=UTC)))
    reg.revoke("UA-09/2026-05", datetime(2026, 5, 29, tzinfo=UTC),
               "platform lost over the line; key presumed compromised")
    reg.save(root / "keys.json")
    return keys


def _allegations(seen: pl.DataFrame, events: pl.DataFrame, stations: pl.DataFrame,
                 cloud: dict[str, float], gaps: set[date],
                 artillery: tuple[float, float, datetime], world_point: Any,
                 fire_violation: tuple[float, float]
                 ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Allegations about explosions a drone also saw (so that the evidence does not hang
    on one sensor's recall), a fire violation, quiet and unobserved places and times."""
    from trucewatch.geo.gazetteer import Gazetteer

    received = datetime(2026, 5, 31, 9, 0, tzinfo=UTC)
    e1, e2 = seen.row(0, named=True), seen.row(1, named=True)
    t1, t2 = e1["time"], e2["time"]
    gaz = Gazetteer.load()
    towns = [gaz.nearest(r["latitude"], r["longitude"]) for r in seen.iter_rows(named=True)]
    dists = [abs(p.lat - r["latitude"]) * 111 + abs(p.lon - r["longitude"]) * 74
             for p, r in zip(towns, seen.iter_rows(named=True), strict=True)]
    k_town = int(np.argmin(dists))
    town, t_town = towns[k_town], seen["time"][k_town]
    # a quiet hour and place inside the network: no explosion within 10 km for 2 h
    cov = Coverage(stations=list(zip(stations["latitude"].to_list(),
                                     stations["longitude"].to_list(), strict=True)),
                   sensor_periods=[(SENSOR_START, SENSOR_START + timedelta(hours=6))])
    quiet = None
    lat_c, lon_c = float(stations["latitude"].mean()), float(stations["longitude"].mean())  # type: ignore[arg-type]
    all_ev = events
    for dy in np.linspace(-0.15, 0.15, 7):
        for dx in np.linspace(-0.2, 0.2, 9):
            la, lo = lat_c + dy, lon_c + dx
            t0q = SENSOR_START + timedelta(hours=3)
            near = all_ev.filter(((pl.col("latitude") - la).abs() < 0.1)
                                 & ((pl.col("longitude") - lo).abs() < 0.14))
            if near.height == 0 and cov.sensors(la, lo, t0q, t0q + timedelta(hours=1)):
                quiet = (la, lo, t0q)
                break
        if quiet:
            break
    clear = [d for d, c in sorted(cloud.items()) if c <= 0.3 and d > "2026-05-21"
             and date.fromisoformat(d) not in gaps]
    cloudy = [d for d, c in sorted(cloud.items()) if c > 0.7 and d > "2026-04-21"
              and date.fromisoformat(d) not in gaps]
    far_lat, far_lon = world_point("left", 40.0)
    art_lat, art_lon, t_art = artillery
    out: list[dict[str, Any]] = [
        {"allegation_id": "A-001", "claimant": "Side A liaison office",
         "claimant_kind": "party", "received_at": _t(received),
         "text": f"{t1:%d.%m.%Y} близько {t1 + timedelta(hours=3):%H:%M} за київським часом "
                 "противник обстріляв позиції поблизу лінії зіткнення, зафіксовано вибухи.",
         "lat": round(e1["latitude"], 3), "lon": round(e1["longitude"], 3)},
        {"allegation_id": "A-002", "claimant": "Side B liaison office",
         "claimant_kind": "party", "received_at": _t(received), "language": "ru",
         "text": f"Артиллерийский обстрел, взрывы {t2:%d.%m.%Y} около "
                 f"{t2 + timedelta(hours=3):%H:%M}.",
         "lat": round(e2["latitude"], 3), "lon": round(e2["longitude"], 3)},
        {"allegation_id": "A-003", "claimant": "Mission patrol 4", "claimant_kind": "monitor",
         "received_at": _t(received), "language": "fr", "category": "fire",
         "text": "Incendie important observé le 20 mai 2026 près de la ligne de contact.",
         "time_start": "2026-05-20T00:00:00Z", "time_end": "2026-05-21T00:00:00Z",
         "lat": round(fire_violation[0], 3), "lon": round(fire_violation[1], 3)},
        {"allegation_id": "A-004", "claimant": "resident (web form)",
         "claimant_kind": "public", "received_at": _t(received), "language": "en",
         "text": "Loud explosions near our village, around "
                 f"{quiet[2] + timedelta(hours=3, minutes=30):%H:%M} local time on 30 May 2026."
         if quiet else "", "lat": round(quiet[0], 3) if quiet else None,
         "lon": round(quiet[1], 3) if quiet else None},
        {"allegation_id": "A-005", "claimant": "Side B liaison office",
         "claimant_kind": "party", "received_at": _t(received), "language": "ru",
         "text": "Замечены танки противника 28 мая 2026 года.",
         "lat": round(far_lat, 3), "lon": round(far_lon, 3), "category": "heavy_weapon"},
        {"allegation_id": "A-006", "claimant": "Mission patrol 2", "claimant_kind": "monitor",
         "received_at": _t(received), "language": "en", "category": "explosion",
         "text": f"Reports of shelling on {date.fromisoformat(clear[0]):%d %B %Y}.",
         "lat": round(far_lat, 3), "lon": round(far_lon, 3)},
        {"allegation_id": "A-007", "claimant": "Side A liaison office",
         "claimant_kind": "party", "received_at": _t(received), "language": "fr",
         "category": "explosion", "text": "Bombardement prévu selon nos sources.",
         "time_start": "2026-06-05T00:00:00Z", "time_end": "2026-06-05T06:00:00Z",
         "lat": round(e1["latitude"], 3), "lon": round(e1["longitude"], 3)},
        {"allegation_id": "A-008", "claimant": "Side B liaison office",
         "claimant_kind": "party", "received_at": _t(received), "language": "uk",
         "category": "heavy_weapon",
         "text": f"Артилерійські гармати в зоні відведення {t_art:%d.%m.%Y} о "
                 f"{t_art + timedelta(hours=3):%H:%M}.",
         "lat": round(art_lat, 3), "lon": round(art_lon, 3)},
        {"allegation_id": "A-009", "claimant": "NGO field team", "claimant_kind": "public",
         "received_at": _t(received), "language": "ru", "category": "fire",
         "text": f"Пожар {date.fromisoformat(cloudy[-1]):%d.%m.%Y}, днём.",
         "time_start": f"{cloudy[-1]}T06:00:00Z", "time_end": f"{cloudy[-1]}T18:00:00Z",
         "lat": round(far_lat, 3), "lon": round(far_lon, 3)},
        {"allegation_id": "A-010", "claimant": "Mission patrol 1", "claimant_kind": "monitor",
         "received_at": _t(received), "language": "en",
         "text": f"Explosions heard in {town.name} on {t_town:%d %B %Y} at "
                 f"{t_town + timedelta(hours=3):%H:%M}, artillery fire."},
        # bad: refused into quarantine with a reason
        {"allegation_id": "A-900", "claimant": "anonymous", "claimant_kind": "public",
         "received_at": _t(received), "place": "Nowhereville", "text": "",
         "time_start": "2026-05-30T04:00:00Z"},
        {"allegation_id": "A-901", "claimant": "anonymous", "claimant_kind": "public",
         "received_at": _t(received), "lat": 48.0, "lon": 37.8,
         "time_start": "2027-01-01T00:00:00Z", "text": "shelling"},
        {"allegation_id": "A-902", "claimant": "blog", "claimant_kind": "journalist",
         "received_at": _t(received), "lat": 48.0, "lon": 37.8, "text": "shelling"},
    ]
    expected = {"A-001": "violation", "A-002": "violation", "A-003": "violation",
                "A-004": "no_violation", "A-005": "not_observable",
                "A-006": "insufficient_evidence", "A-007": "pending",
                "A-008": "violation", "A-009": "not_observable", "A-010": "violation"}
    return out, expected


ANALYST, REVIEWER = "analyst.kovalenko", "reviewer.martin"


def apply_review(store: Any) -> list[str]:
    """The scenario's scripted review by two people; returns what happened, line by line.
    It exercises every path a real review takes, including a refused self-verification."""
    from trucewatch.errors import TwoPersonRuleError
    from trucewatch.model.enums import Category, Status
    from trucewatch.review.workflow import ReviewService

    svc = ReviewService(store)
    # the two analysts are principals of the store (made here once, kept on a re-run):
    # the two-person rule compares their ids, never their names
    analyst = store.principal_named(ANALYST) or store.add_principal(ANALYST, "analyst",
                                                                    actor="scenario")
    reviewer = store.principal_named(REVIEWER) or store.add_principal(REVIEWER, "reviewer",
                                                                      actor="scenario")
    log: list[str] = []
    queue = svc.queue()
    cands = [i for i in queue if i.attributes.get("rule")]

    def verify(inc_id: str, why1: str, why2: str) -> None:
        svc.claim(inc_id, analyst)
        svc.decide(inc_id, analyst, Status.PENDING_VERIFICATION, why1)
        log.append(f"{ANALYST} proposed {inc_id} for verification")
        svc.claim(inc_id, reviewer)
        svc.decide(inc_id, reviewer, Status.VERIFIED, why2)
        log.append(f"{REVIEWER} verified {inc_id}")

    weapons = [i for i in cands if i.attributes["rule"] == "heavy_weapon_in_withdrawal_zone"]
    if weapons:
        w = weapons[0]
        svc.claim(w.id, analyst)
        svc.decide(w.id, analyst, Status.PENDING_VERIFICATION,
                   "EU-12 video: two towed howitzers; media SHA-256 matches the report")
        try:
            svc.claim(w.id, analyst)
            svc.decide(w.id, analyst, Status.VERIFIED, "confirming my own proposal")
        except TwoPersonRuleError as err:
            log.append(f"refused: {err.message}")
        svc.claim(w.id, reviewer)
        svc.decide(w.id, reviewer, Status.VERIFIED,
                   "second review: position, time and class consistent with the video")
        log.append(f"{REVIEWER} verified {w.id} (heavy weapon in withdrawal zone)")
    corroborated = sorted((i for i in cands if i.n_sources >= 2),
                          key=lambda i: -float(i.attributes.get("confidence", 0)))
    for inc in corroborated[:2]:
        verify(inc.id, "network location and drone report agree",
               "second review: crater on the drone frame, within the network's ellipse")
    singles = sorted((i for i in cands if i.n_sources == 1 and
                      i.attributes.get("explosions", 0) == 1),
                     key=lambda i: float(i.attributes.get("confidence", 0)))
    if singles:
        s = singles[0]
        svc.claim(s.id, reviewer)
        svc.decide(s.id, reviewer, Status.INACCURATE,
                   "single network event with no drone or satellite trace; likely a false "
                   "association of unrelated detections")
        log.append(f"{REVIEWER} discarded {s.id} as inaccurate")
    fires = [i for i in cands if i.category == Category.FIRE]
    if fires:
        f = fires[0]
        svc.claim(f.id, analyst)
        svc.modify(f.id, analyst, "burn scar on imagery lies 150 m north of the fused centre",
                   lat=f.location.lat + 150 / 111_320)
        svc.decide(f.id, analyst, Status.UNVERIFIABLE,
                   "no cloud-free high-resolution image of the day to confirm the cause")
        log.append(f"{ANALYST} modified {f.id} and marked it unverifiable")
    added = svc.add(reviewer, "Mission patrol 4 denied passage at a checkpoint for 2 hours",
                    category=Category.RESTRICTION_OF_MONITORS, lat=48.2153, lon=37.2561,
                    uncertainty_m=200.0, time_start=datetime(2026, 5, 30, 8, 0, tzinfo=UTC),
                    time_end=datetime(2026, 5, 30, 10, 0, tzinfo=UTC))
    log.append(f"{REVIEWER} added {added.id} (restriction of monitors)")
    return log
