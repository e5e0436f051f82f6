"""Drone reports, allegations and their extraction, allegation rulings (issue 4)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from pyproj import Geod

from conftest import shared
from trucewatch.adjudication.allegations import AllegationJudge, Coverage
from trucewatch.geo.gazetteer import Gazetteer
from trucewatch.ingest.allegations import AllegationSource
from trucewatch.ingest.drones import DroneSource, klv_frame_centre, klv_packet
from trucewatch.ingest.extraction import Extractor, detect_language

NOW = datetime(2026, 5, 31, 12, 0, tzinfo=UTC)
# MISB ST 0601 example packet (the standard's sample, as published with klvdata/misb.js)
MISB_SAMPLE = bytes.fromhex(
    "060E2B34020B01010E0103010100000081D2020800046050584E0180030A4D697373696F6E20"
    "3132050271C20602FD3D070208B80A085072656461746F720B07454F204E6F73650C0E47656F"
    "64657469632057475338340D045595B66D0E045B5360C40F02C2211002CD9C1102D917120472"
    "4A0A20130487F84B86140400000000150403830926160212811704F101A229180414BC082B19"
    "0234F3301C01010102010703052F2F5553410C01070D060055005300411602000A4101065E22"
    "0170F592F02373364AF8AA9162C00F2EB2DA16B74341000841A0BE365B5AB96A36450102AA43")


def _report(**kw: Any) -> dict[str, Any]:
    r = {"report_id": "r1", "platform_id": "UA-07", "time": "2026-05-30T04:12:00Z",
         "platform": {"lat": 48.0, "lon": 37.5, "alt_m": 800}, "class": "explosion",
         "confidence": 0.8, "target": {"lat": 48.01, "lon": 37.52, "error_m": 25}}
    r.update(kw)
    return r


def _parse(*reports: dict[str, Any]) -> Any:
    raw = json.dumps({"format": "trucewatch-drone/1", "reports": list(reports)}).encode()
    return DroneSource().parse(raw, "d.json", now=NOW)


def test_drone_geolocation_by_bearing_range_and_klv() -> None:
    b = _parse(_report(target={"bearing_deg": 45.0, "range_m": 4000.0}))
    lon, lat, _ = Geod(ellps="WGS84").fwd(37.5, 48.0, 45.0, 4000.0)
    r = b.records.row(0, named=True)
    assert r["latitude"] == pytest.approx(lat, abs=1e-9)
    assert r["longitude"] == pytest.approx(lon, abs=1e-9)
    # 2 deg bearing and 5 % range errors at 4 km, plus the platform's GNSS
    assert r["uncertainty_m"] == pytest.approx(math.sqrt(
        (4000 * math.radians(2)) ** 2 + 200 ** 2 + 10 ** 2))
    assert json.loads(r["attributes"])["geolocation"] == "bearing_range"
    import base64
    lat_k, lon_k, err, t = klv_frame_centre(base64.b64encode(MISB_SAMPLE).decode())
    assert (round(lat_k, 4), round(lon_k, 4)) == (-10.5424, 29.1579)
    assert err == pytest.approx(math.hypot(10, 68590.98 * math.radians(1)), rel=1e-3)
    assert t == datetime(2009, 1, 12, 22, 8, 22, tzinfo=UTC)
    pkt = klv_packet(datetime(2026, 5, 30, 4, 12, tzinfo=UTC), 48.2, 37.9, 3000)
    k = _parse(_report(target=None, klv=pkt)).records.row(0, named=True)
    assert k["latitude"] == pytest.approx(48.2, abs=1e-6)
    assert json.loads(k["attributes"])["geolocation"] == "klv_frame_centre"


def test_bad_drone_reports_are_quarantined_with_reasons() -> None:
    pkt = klv_packet(datetime(2026, 5, 30, 4, 12, tzinfo=UTC), 48.3, 37.9, 3000)
    b = _parse(_report(),
               _report(report_id="r1"),
               _report(report_id="r2", time="2027-01-01T00:00:00Z"),
               _report(report_id="r3", time="2026-05-30T04:12:00"),
               _report(report_id="r4", confidence=1.5, **{"class": "tank"}),
               _report(report_id="r5", target=None),
               _report(report_id="r6", klv=pkt),  # explicit target 30 km from the KLV's
               _report(report_id="r7", target={"lat": 48.0}),
               _report(report_id="r8", klv="not base64!", target=None))
    reasons = {q.row: q.reason for q in b.quarantine}
    assert b.records.height == 1 and b.n_rows == 9 and len(reasons) == 8
    assert "duplicate report_id r1" in reasons[2]
    assert "in the future" in reasons[3]
    assert "no UTC offset" in reasons[4]
    assert "confidence" in reasons[5] and "class" in reasons[5]
    assert "needs a target or KLV" in reasons[6]
    assert "KLV frame centre" in reasons[7]
    assert "both lat and lon" in reasons[8]
    assert "klv" in reasons[9]
    assert all(q.raw for q in b.quarantine)  # nothing lost: the entry's text is kept
    b.check_accounting()


@pytest.mark.parametrize("text,lang,place,when", [
    ("Le 28 mai 2026 vers 04h15, des tirs d'artillerie ont frappé Bakhmout.", "fr",
     "Bakhmut", "2026-05-28T00:15:00Z"),
    ("Shelling hit Toretsk yesterday at 4:30 am, 12 rounds.", "en", "Toretsk",
     "2026-05-30T00:30:00Z"),
    ("29 травня о 05:10 обстріл Бахмута, вибухи", "uk", "Bakhmut", "2026-05-29T01:10:00Z"),
    ("Вчера около 22:00 артиллерийский обстрел Торецка", "ru", "Toretsk",
     "2026-05-30T18:00:00Z"),
])
def test_extraction_in_four_languages(text: str, lang: str, place: str, when: str) -> None:
    ex = Extractor().extract(text, NOW)
    assert ex.language == lang == detect_language(text)
    best = ex.best_place()
    assert best is not None and best.name == place and best.confidence >= 0.8
    assert text[best.start:best.end] == best.text
    t = ex.best_time()
    assert t is not None and t.start == when
    assert ex.category == "explosion"


def test_gazetteer_variants_and_ambiguity() -> None:
    g = Gazetteer.load()
    for name in ("Kyiv", "Kiev", "Київ", "Киев", "Києві", "Kiew"):
        r = g.resolve(name)
        assert r is not None and r.place.name == "Kyiv", name
    amb = g.resolve("Novoselivka", near=(48.3, 37.5))
    assert amb is not None and amb.candidates > 5 and amb.confidence < 0.8
    paris = g.resolve("Paris")
    assert paris is not None and paris.outside  # not a Ukrainian village's old alias
    assert g.resolve("Nowhereville") is None


def _allegations(*items: dict[str, Any]) -> Any:
    raw = json.dumps({"format": "trucewatch-allegations/1", "allegations": list(items)},
                     ensure_ascii=False).encode()
    return AllegationSource().parse(raw, "a.json", now=NOW)


def _a(**kw: Any) -> dict[str, Any]:
    base = {"allegation_id": "A1", "claimant": "Side A", "claimant_kind": "party",
            "received_at": "2026-05-31T09:00:00Z"}
    return base | kw


def test_allegations_structured_free_text_and_bad_ones() -> None:
    text = "Вчора близько 22:00 обстріл Бахмута"
    b = _allegations(
        _a(text=text),
        _a(allegation_id="A2", place="Toretsk", time_start="2026-05-30T04:00:00Z",
           category="explosion", text=""),
        _a(allegation_id="A3", place="Nowhereville", time_start="2026-05-30T04:00:00Z"),
        _a(allegation_id="A4", text="Something happened somewhere."),
        _a(allegation_id="A5", lat=48.0, lon=37.8, text="shelling",
           time_start="2027-01-01T00:00:00Z"),
        _a(allegation_id="A6", claimant_kind="journalist", lat=48.0, lon=37.8),
        _a(allegation_id="A7", lat=48.0, lon=37.8, text="Explosions near the school."),
        _a(text="Вчора обстріл Бахмута"),
    )
    docs = {r["id"]: json.loads(r["doc"]) for r in b.records.iter_rows(named=True)}
    assert set(docs) == {"A1", "A2"}
    a1 = docs["A1"]
    assert a1["text"] == text  # the original is kept verbatim
    assert a1["resolved"]["where"] == "text:Bakhmut"
    assert a1["resolved"]["time_start"] == "2026-05-30T18:00:00Z"
    assert a1["extraction"]["language"] == "uk"
    assert docs["A2"]["resolved"]["where"] == "place:Toretsk"
    reasons = {q.row: q.reason for q in b.quarantine}
    assert "unknown place 'Nowhereville'" in reasons[3]
    assert "no known place in the text" in reasons[4]
    assert "in the future" in reasons[5]
    assert "claimant_kind" in reasons[6]
    assert "no time" in reasons[7]
    assert "duplicate allegation_id A1" in reasons[8]
    b.check_accounting()


@pytest.mark.shared_data
def test_french_press_reports_keep_text_and_find_places() -> None:
    folder = shared("press-reports-fr")
    texts = sorted(folder.glob("report-*.txt"))
    assert texts
    ex = Extractor()
    found: set[str] = set()
    for p in texts:
        text = p.read_text(encoding="utf-8")
        e = ex.extract(text, NOW)
        assert e.language == "fr", p.name
        for m in e.places:
            assert text[m.start:m.end] == m.text
        found |= {m.name for m in e.places if m.how in ("exact", "morph", "stem")}
        outside = {m.name for m in e.places if m.how == "outside"}
        assert "Paris" not in found and (("Paris" in text) <= ("Paris" in outside)), p.name
    assert {"Kyiv", "Luhansk"} <= found


# ------------------------------------------------------------------ rulings
def _incidents(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={
        "latitude": pl.Float64, "longitude": pl.Float64, "sigma_m": pl.Float64,
        "t_start": pl.Float64, "t_end": pl.Float64, "klass": pl.String, "rule": pl.String,
        "flag": pl.String,
        "observation_ids": pl.List(pl.String)})


def _alleg(aid: str, lat: float, lon: float, t0: datetime, hours: float = 2,
           category: str = "explosion") -> dict[str, Any]:
    return {"allegation_id": aid, "claimant": "x", "claimant_kind": "party",
            "resolved": {"lat": lat, "lon": lon, "uncertainty_m": 1000.0, "where": "c",
                         "time_start": t0.isoformat().replace("+00:00", "Z"),
                         "time_end": (t0 + timedelta(hours=hours)).isoformat()
                         .replace("+00:00", "Z"), "category": category}}


def test_each_ruling() -> None:
    t = datetime(2026, 5, 30, 4, 0, tzinfo=UTC)
    ts = t.timestamp() + 1800
    inc = _incidents([
        {"latitude": 48.0, "longitude": 37.5, "sigma_m": 50, "t_start": ts, "t_end": ts,
         "klass": "explosion", "rule": "explosion_in_buffer_zone", "flag": None,
         "observation_ids": ["o1"]},
        {"latitude": 48.5, "longitude": 37.5, "sigma_m": 50, "t_start": ts, "t_end": ts,
         "klass": "explosion", "rule": None, "flag": None,
         "observation_ids": ["o2"]},
        {"latitude": 47.5, "longitude": 37.5, "sigma_m": 190, "t_start": ts, "t_end": ts,
         "klass": "fire", "rule": None, "flag": "insufficient_evidence",
         "observation_ids": ["o3"]},
    ])
    stations = [(48.2 + 0.02 * i, 37.8 + 0.03 * j) for i in range(3) for j in range(3)]
    cov = Coverage(stations=stations, sensor_periods=[(t, t + timedelta(hours=6))],
                   satellite_days={t.date(): 0.2, (t + timedelta(days=1)).date(): 0.9},
                   patrols=[(t, t + timedelta(hours=3), [(36.9, 48.1)], 4000.0)])
    cases = {
        "violation": _alleg("v", 48.005, 37.505, t),
        "no_violation": _alleg("n1", 48.5, 37.51, t),  # seen, breaks no rule
        "insufficient_evidence": _alleg("i1", 47.5, 37.5, t, category="fire"),
        "no_violation ": _alleg("n2", 48.22, 37.83, t),  # network heard nothing
        "no_violation  ": _alleg("n3", 48.1, 36.9, t, category="heavy_weapon"),  # patrol
        "insufficient_evidence ": _alleg("i2", 46.5, 35.0, t + timedelta(hours=6)),
        "not_observable": _alleg("x1", 46.5, 35.0, t + timedelta(days=1),
                                 category="fire"),
        "not_observable ": _alleg("x2", 46.5, 35.0, t, category="heavy_weapon"),
        "pending": _alleg("p", 48.0, 37.5, t + timedelta(days=5)),
    }
    rulings, matched = AllegationJudge().rule(list(cases.values()), inc, cov,
                                              horizon=t + timedelta(days=2))
    got = [r["ruling"] for r in rulings]
    assert got == [k.strip() for k in cases], list(zip(cases, got, strict=True))
    assert rulings[0]["evidence"]["rules"] == ["explosion_in_buffer_zone"]
    assert "o1" in matched and "o2" in matched
    # far in time or of another kind: no match
    later = _alleg("late", 48.005, 37.505, t + timedelta(hours=5))
    weapon = _alleg("w", 48.005, 37.505, t, category="heavy_weapon")
    r2, _ = AllegationJudge().rule([later, weapon], inc, cov, horizon=t + timedelta(days=2))
    assert [r["ruling"] for r in r2] != ["violation", "violation"]
