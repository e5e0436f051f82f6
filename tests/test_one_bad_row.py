"""Issue 11, item 6: one bad row is one quarantined row with its reason; nothing stalls a
cycle or makes later cycles fail; every parser answers any bytes with a clear error (a
TrucewatchError) or a per-row quarantine, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from trucewatch.agreement import check_agreement
from trucewatch.demo import ScenarioFiles
from trucewatch.ingest.allegations import AllegationSource
from trucewatch.ingest.drones import DroneSource, read_patrols
from trucewatch.ingest.extraction import Extractor
from trucewatch.ingest.firms import parse_firms
from trucewatch.ingest.sensors import parse_detections

NOW = datetime(2026, 5, 31, 12, 0, tzinfo=UTC)
STATIONS = pl.DataFrame({"id": ["A1", "S1", "I1"], "latitude": [48.5, 48.6, 48.7],
                         "longitude": [38.0, 38.1, 38.2], "elevation_m": [100.0, 120, 90],
                         "kind": ["acoustic", "seismic", "infrasound"]})
DET_HEAD = "detection_id,station,time,phase"
# times that overflow when converted to UTC, or lie outside the plausible range
EXTREME = ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00",
           "9999-12-31T23:59:59Z", "1989-12-31T23:59:59Z"]


# ------------------------------------------------------------------ the time range
def test_one_time_range_for_every_source() -> None:
    from trucewatch.model.times import EARLIEST, time_problem

    assert datetime(1990, 1, 1, tzinfo=UTC) == EARLIEST
    assert time_problem(datetime(2026, 5, 30, tzinfo=UTC), NOW) is None
    for text in EXTREME:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
        why = time_problem(t, NOW)
        assert why and ("before 1990-01-01" in why or "in the future" in why), (text, why)
    assert "in the future" in (time_problem(NOW + timedelta(minutes=6), NOW) or "")


# ------------------------------------------------------------------ detections
def _detections(*rows: str) -> Any:
    raw = ("\n".join([DET_HEAD, *rows]) + "\n").encode()
    return parse_detections(raw, "d.csv", STATIONS, now=NOW)


def test_tz_less_first_row_quarantines_that_row_only() -> None:
    """One row without a time zone sent all 232 rows of its file to quarantine (the time
    format was inferred from the first row)."""
    good = [f"d{k},A1,2026-05-30T04:{k // 60:02d}:{k % 60:02d}.{k % 10}Z,acoustic"
            for k in range(1, 232)]
    b = _detections("d0,A1,2026-05-30T03:59:00,acoustic", *good)
    assert b.n_rows == 232 and b.records.height == 231
    assert [(q.row, q.reason) for q in b.quarantine] == [
        (2, "time has no UTC offset (write ...Z or +00:00)")]
    # offsets in several spellings, in any order, are all read
    mixed = _detections("e1,A1,2026-05-30T04:00:00+02:00,acoustic",
                        "e2,A1,2026-05-30T04:00:00.25Z,acoustic",
                        "e3,A1,2026-05-30 04:00:01+0000,acoustic",
                        "e4,A1,2026-05-30T04:00:02,acoustic",
                        "e5,A1,2026-05-30T04:00:03.123456-01:30,acoustic")
    assert mixed.records["detection_id"].to_list() == ["e1", "e2", "e3", "e5"]
    assert mixed.records["time"].dt.strftime("%H:%M:%S%.6f").to_list() == [
        "02:00:00.000000", "04:00:00.250000", "04:00:01.000000", "05:30:03.123456"]


def test_extreme_detection_times_are_quarantined_not_crashing() -> None:
    rows = [f"x{k},A1,{t},acoustic" for k, t in enumerate(EXTREME)]
    b = _detections("ok,A1,2026-05-30T04:00:00Z,acoustic", *rows)
    assert b.records["detection_id"].to_list() == ["ok"]
    reasons = [q.reason for q in b.quarantine]
    assert len(reasons) == len(EXTREME)
    assert all("before 1990-01-01" in r or "in the future" in r for r in reasons), reasons
    b.records.to_dicts()  # every stored time converts (no year 0 or 10000 left)


def test_non_finite_detection_numbers_are_quarantined() -> None:
    raw = (DET_HEAD + ",amplitude,snr\n"
           "n1,A1,2026-05-30T04:00:01Z,acoustic,nan,3\n"
           "n2,A1,2026-05-30T04:00:02Z,acoustic,1.0,inf\n"
           "n3,A1,2026-05-30T04:00:03Z,acoustic,1.0,3\n").encode()
    b = parse_detections(raw, "d.csv", STATIONS, now=NOW)
    assert b.records["detection_id"].to_list() == ["n3"]
    assert [q.row for q in b.quarantine] == [2, 3]


def test_associator_skips_the_empty_years_between_detections(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A detection decades before the others made the associator walk every 10-minute
    window in between (over 60 s and 2.2 GB for year 0001)."""
    from dataclasses import replace

    from trucewatch.demo.sensors import PRESETS, generate
    from trucewatch.sensors.association import ExplosionAssociator, Network, Picks

    closed: list[float] = []  # the start of every window the associator closes
    close = ExplosionAssociator._close_window

    def counted(self: ExplosionAssociator, ctx: Any, buf: Any, ws: float,
                counter: Any) -> Any:
        closed.append(ws)
        return close(self, ctx, buf, ws, counter)

    monkeypatch.setattr(ExplosionAssociator, "_close_window", counted)
    sc = replace(PRESETS["moderate"], duration_h=0.5, seed=4)
    data = generate(sc)
    net = Network.from_table(data.stations)
    assoc = ExplosionAssociator(propagation=sc.propagation())
    plain = assoc.associate(net, Picks.from_table(data.detections, net))
    plain_windows, closed[:] = len(closed), []
    # 36 years earlier, a whole number of windows before the first detection: the windows
    # (laid from the earliest detection) are the same with and without it
    first = data.detections["time"].min()
    gap = timedelta(seconds=assoc.window_s * 6 * 24 * 365 * 36)
    lone = data.detections.head(1).with_columns(
        pl.lit("lone").alias("detection_id"),
        pl.lit(first - gap).dt.cast_time_unit("us").alias("time"))  # type: ignore[operator]
    both = assoc.associate(net, Picks.from_table(pl.concat([lone, data.detections]), net))
    # structural, not timed: the lone detection costs a few windows, not the ~1.9 million
    # of the 36 years between (the walk that took over 60 s; speed is in benchmarks/)
    assert plain_windows > 0 and len(closed) <= plain_windows + 4, (len(closed),
                                                                    plain_windows)
    closed[:] = []
    a, b = plain.events, both.events
    assert a.height == b.height > 0
    assert a["n_defining"].equals(b["n_defining"]) and a["status"].equals(b["status"])
    assert np.allclose(a["latitude"].to_numpy(), b["latitude"].to_numpy(), atol=1e-6)
    assert np.allclose(a["longitude"].to_numpy(), b["longitude"].to_numpy(), atol=1e-6)
    assert both.assignments.filter(pl.col("detection_id") == "lone")["event_id"].is_null().all()
    # streaming sees the same gap
    picks = Picks.from_table(pl.concat([lone, data.detections]).sort("time"), net)
    chunks = (picks.take(np.arange(k, min(len(picks), k + 50))) for k in range(0, len(picks), 50))
    parts = list(assoc.stream(net, chunks))
    assert pl.concat([p.events for p in parts]).height == plain.events.height


@pytest.mark.slow
def test_sensors_locate_with_a_year_0001_row_is_quick(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trucewatch.cli.app import app

    r = CliRunner().invoke(app, ["sensors", "simulate", str(tmp_path / "sc"), "--preset",
                                 "quiet", "--hours", "2", "--seed", "3"])
    assert r.exit_code == 0, r.output
    det = tmp_path / "sc" / "detections.csv"
    lines = det.read_text().splitlines()
    first = lines[1].split(",")
    first[0], first[2] = "ancient", "0001-01-01T00:00:00Z"
    det.write_text("\n".join([lines[0], ",".join(first), *lines[1:]]) + "\n")
    # no time limit here (the windows the associator walks are counted in the test
    # above; speed is in benchmarks/): the command must finish and answer every row
    proc = subprocess.run(
        [sys.executable, "-m", "trucewatch", "sensors", "locate",
         str(tmp_path / "sc" / "stations.csv"), str(det), "--out", str(tmp_path / "ev.csv"),
         "--assignments", str(tmp_path / "as.csv")],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    asg = pl.read_csv(tmp_path / "as.csv", schema_overrides={"event_id": pl.String})
    assert asg.filter(pl.col("detection_id") == "ancient")["event_id"].is_null().all()
    assert asg.height == len(lines)  # every detection once, the quarantined one included


# ------------------------------------------------------------------ drones, allegations
def _drone_doc(reports: list[dict[str, Any]], patrols: list[dict[str, Any]] | None = None
               ) -> bytes:
    return json.dumps({"format": "trucewatch-drone/1", "reports": reports,
                       "patrols": patrols or []}).encode()


def _report(rid: str, t: str) -> dict[str, Any]:
    return {"report_id": rid, "platform_id": "UA-07", "time": t,
            "platform": {"lat": 48.0, "lon": 37.5}, "class": "explosion", "confidence": 0.8,
            "target": {"lat": 48.01, "lon": 37.52, "error_m": 25}}


def test_extreme_drone_times_are_quarantined_not_crashing() -> None:
    reports = [_report("ok", "2026-05-30T04:12:00Z"),
               *(_report(f"x{k}", t) for k, t in enumerate(EXTREME))]
    b = DroneSource().parse(_drone_doc(reports), "d.json", now=NOW)
    assert b.records.height == 1
    assert len(b.quarantine) == len(EXTREME)
    assert all("before 1990-01-01" in q.reason or "in the future" in q.reason
               for q in b.quarantine), [q.reason for q in b.quarantine]


def _patrol(t0: str, t1: str) -> dict[str, Any]:
    return {"platform_id": "UA-07", "time_start": t0, "time_end": t1,
            "track": [[37.5, 48.0], [37.6, 48.1]], "swath_m": 500}


def test_patrol_times_checked() -> None:
    patrols = [_patrol("2026-05-30T04:00:00Z", "2026-05-30T05:00:00Z"),
               _patrol("2026-05-30T05:00:00Z", "2026-05-30T04:00:00Z"),
               _patrol("0001-01-01T00:00:00+01:00", "2026-05-30T05:00:00Z"),
               _patrol("2026-05-30T04:00:00Z", "9999-12-31T23:00:00-05:00")]
    ok, bad = read_patrols(_drone_doc([], patrols), "d.json", now=NOW)
    assert len(ok) == 1
    reasons = [q.reason for q in bad]
    assert "ends before it starts" in reasons[0]
    assert "before 1990-01-01" in reasons[1] and "in the future" in reasons[2]


@pytest.fixture(scope="module")
def allegations() -> AllegationSource:
    return AllegationSource(Extractor(use_spacy=False))


def _alleg(aid: str, **kw: Any) -> dict[str, Any]:
    return {"allegation_id": aid, "claimant": "Side A", "claimant_kind": "party",
            "received_at": "2026-05-31T09:00:00Z", "lat": 48.0, "lon": 37.8,
            "time_start": "2026-05-30T04:00:00Z"} | kw


def test_extreme_allegation_times_are_quarantined_not_crashing(
        allegations: AllegationSource) -> None:
    items = [_alleg("ok"), _alleg("ends-first", time_end="2026-05-30T03:00:00Z")]
    for k, t in enumerate(EXTREME):
        items += [_alleg(f"r{k}", received_at=t), _alleg(f"s{k}", time_start=t),
                  _alleg(f"e{k}", time_end=t)]
    raw = json.dumps({"format": "trucewatch-allegations/1", "allegations": items}).encode()
    b = allegations.parse(raw, "a.json", now=NOW)
    assert b.records["id"].to_list() == ["ok"]
    reasons = {q.row: q.reason for q in b.quarantine}
    assert "time_end is before time_start" in reasons[2]
    assert len(reasons) == len(items) - 1
    for row, why in reasons.items():
        if row > 2:
            assert ("before 1990-01-01" in why or "in the future" in why
                    or "time_end is before time_start" in why), (row, why)


# ------------------------------------------------------------------ FIRMS
VIIRS_HEAD = (b"latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,"
              b"confidence,version,bright_ti5,frp,daynight\n")


def test_firms_non_finite_numbers_are_quarantined() -> None:
    """frp=NaN was stored as invalid JSON (NaN in json.dumps)."""
    rows = [b"48.1,37.1,330.0,0.4,0.4,2026-05-30,1030,N20,n,2.0NRT,290.0,%s,D" % frp
            for frp in (b"5.2", b"NaN", b"inf", b"-inf", b"")]
    b = parse_firms(VIIRS_HEAD + b"\n".join(rows) + b"\n", "f.csv", today=NOW)
    assert b.records.height == 2  # 5.2 and an empty frp (no value is not a bad value)
    assert [(q.row, q.reason) for q in b.quarantine] == [
        (3, "frp is not a finite number"), (4, "frp is not a finite number"),
        (5, "frp is not a finite number")]
    json.dumps(b.records.drop("seen_start", "seen_end", "acq_date").to_dicts(),
               allow_nan=False)


def test_a_json_document_given_to_the_firms_reader_is_refused_clearly() -> None:
    """It raised AssertionError("unreachable") (a traceback, a 500 at /ingest/firms)."""
    from trucewatch.errors import UnknownLayoutError

    with pytest.raises(UnknownLayoutError, match="not a FIRMS CSV"):
        parse_firms(b'{"format": "trucewatch-drone/1", "reports": []}', "f.csv")


def test_firms_extreme_dates_are_quarantined() -> None:
    raw = (b"latitude,longitude,acq_date,sensor_guess\n48.1,37.1,2021-07-01,MODIS\n"
           b"48.1,37.1,0001-01-01,MODIS\n48.1,37.1,1989-12-31,MODIS\n"
           b"48.1,37.1,9999-12-31,MODIS\n")
    b = parse_firms(raw, "m.csv", today=NOW)
    assert b.records.height == 1
    assert [(q.row, q.reason) for q in b.quarantine] == [
        (3, "acq_date is before 1990-01-01"), (4, "acq_date is before 1990-01-01"),
        (5, "acq_date is in the future")]


# ------------------------------------------------------------------ the baseline
def test_a_sensor_the_baseline_lacks_is_unclassified_not_fatal() -> None:
    """One MODIS row in a store whose baseline was fit on VIIRS made every later run fail
    ("baseline has no MODIS sensor")."""
    from trucewatch.satellite.baseline import Baseline, BaselineParams
    from trucewatch.satellite.war_fires import classify

    rng = np.random.default_rng(1)
    days = [date(y, 1, 1) + timedelta(days=int(d)) for y in (2019, 2020)
            for d in rng.integers(0, 365, 400)]
    ref = pl.DataFrame({"latitude": rng.uniform(47, 49, len(days)),
                        "longitude": rng.uniform(36, 38, len(days)), "acq_date": days,
                        "sensor": "VIIRS_NOAA20_NRT"})
    base = Baseline.fit(ref, [2019, 2020], BaselineParams(min_rows_per_year=10,
                                                          learner_iterations=5))
    viirs = pl.DataFrame({"latitude": [47.5, 47.6, 48.2], "longitude": [36.5, 36.6, 37.1],
                          "acq_date": [date(2022, 5, 1)] * 3,
                          "sensor": ["VIIRS_NOAA20_NRT"] * 3})
    modis = viirs.head(1).with_columns(pl.lit("MODIS").alias("sensor"))
    alone = classify(viirs, base)
    mixed = classify(pl.concat([viirs.head(2), modis, viirs.tail(1)]), base)
    assert mixed.height == 4
    m = mixed.row(2, named=True)
    assert m["fire_class"] == "unclassified" and m["war_related"] == 0 and not m["excess"]
    assert "the baseline has no MODIS reference" in m["reason"]
    assert mixed.filter(pl.col("fire_class") != "unclassified").drop("reason").equals(
        alone.drop("reason"))
    only = classify(modis, base)  # nothing but an unknown sensor: still no error
    assert only["fire_class"].to_list() == ["unclassified"]


@pytest.mark.slow
def test_one_modis_row_in_the_store_does_not_fail_the_run(scenario: ScenarioFiles,
                                                          tmp_path: Path) -> None:
    from trucewatch.pipeline import run_cycle

    modis = tmp_path / "modis.csv"
    modis.write_text("latitude,longitude,brightness,scan,track,acq_date,acq_time,satellite,"
                     "instrument,confidence,version,bright_t31,frp,daynight,type\n"
                     "48.0,37.6,320.5,1.1,1.0,2026-05-20,1042,Terra,MODIS,81,6.1NRT,295.1,"
                     "20.4,D,0\n")
    args: dict[str, Any] = {"agreement_path": scenario.agreement, "reference_years":
                            [2023, 2024, 2025], "out_dir": tmp_path / "out", "pdf": False}
    files = [*scenario.reference, *scenario.current]
    first = run_cycle(firms_files=[*files, modis], **args)
    again = run_cycle(firms_files=[], store_path=first.store_path, **args)  # a later run
    for res in (first, again):
        classes = dict(res.view.detections.group_by("fire_class").len().iter_rows())
        assert classes["unclassified"] == 1, classes
        doc = json.loads(res.bulletins["restricted"].json.read_text())
        assert doc["as_of"]["fire_classes"]["unclassified"] == 1


# ------------------------------------------------------------------ the agreement
AGREEMENT = """format: trucewatch-agreement
id: t
entry_into_force: {eif}
line_of_contact: {{geojson: {{type: LineString, coordinates: {coords}}}}}
sides: [{{id: left, buffer_km: 10}}, {{id: right, buffer_km: 10}}]
withdrawal_km: {{artillery: 30}}
"""


def _agreement(tmp: Path, coords: str = "[[37.0, 47.5], [37.5, 48.5]]",
               eif: str = "2026-04-20T00:00:00Z", text: str | None = None) -> str:
    path = tmp / "a.yaml"
    path.write_text(text if text is not None else AGREEMENT.format(coords=coords, eif=eif))
    report = check_agreement(path)
    return " | ".join(report.errors)


def test_self_crossing_line_of_contact_refused(tmp_path: Path) -> None:
    assert _agreement(tmp_path) == ""
    errors = _agreement(tmp_path, "[[37.0, 47.5], [37.5, 48.5], [37.5, 47.5], [37.0, 48.5]]")
    assert "line_of_contact" in errors and "crosses itself" in errors, errors
    assert "37.25" in errors and "48" in errors  # the place: lon 37.25, lat 48.0


def test_antimeridian_line_refused(tmp_path: Path) -> None:
    errors = _agreement(tmp_path, "[[179.5, 65.0], [-179.5, 65.2]]")
    assert "line_of_contact" in errors and "antimeridian" in errors, errors


def test_yaml_alias_bomb_refused_quickly(tmp_path: Path) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for k in range(1, 10):
        prev, cur = chr(ord("a") + k - 1), chr(ord("a") + k)
        levels.append(f"{cur}: &{cur} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, "
                      f"*{prev}, *{prev}, *{prev}, *{prev}]")
    bomb = "\n".join(levels) + "\nformat: trucewatch-agreement\nname: *j\nid: *j\n"
    assert len(bomb.encode()) < 1000
    tracemalloc.start()
    t0 = time.perf_counter()
    errors = _agreement(tmp_path, text=bomb)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "aliases" in errors or "anchors" in errors, errors
    assert elapsed < 1.0 and peak < 100e6, (elapsed, peak)


def test_agreement_size_depth_and_recursion_refused(tmp_path: Path) -> None:
    big = "format: trucewatch-agreement\n#" + "x" * (5 * 2**20) + "\n"
    assert "larger than" in _agreement(tmp_path, text=big)
    deep = "format: trucewatch-agreement\nname: " + "[" * 50_000 + "]" * 50_000 + "\n"
    assert "nested" in _agreement(tmp_path, text=deep)
    loop = "format: trucewatch-agreement\nname: &a [*a]\n"
    assert "recursive" in _agreement(tmp_path, text=loop)
    # a few ordinary anchors are fine
    ok = AGREEMENT.format(coords="[[37.0, 47.5], [37.5, 48.5]]",
                          eif="2026-04-20T00:00:00Z").replace(
        "withdrawal_km: {artillery: 30}", "withdrawal_km: {artillery: &w 30, mortar: *w}")
    assert _agreement(tmp_path, text=ok) == ""


@pytest.mark.parametrize("eif", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00",
                                 "'0001-01-01T00:00:00+01:00'", "1989-12-31T00:00:00Z"])
def test_extreme_entry_into_force_is_an_error_not_a_traceback(tmp_path: Path,
                                                               eif: str) -> None:
    errors = _agreement(tmp_path, eif=eif)
    assert "entry_into_force" in errors, errors


def test_geojson_numbers_are_checked(tmp_path: Path) -> None:
    errors = _agreement(tmp_path, "[[37.0, .nan], [37.5, 48.5]]")
    assert "line_of_contact" in errors, errors
