"""Time as the satellites saw it, and causal (as-of) cycles: a bulletin for day D uses
only what was observed up to D's end, and a published bulletin never changes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from conftest import shared
from trucewatch.demo import ScenarioFiles
from trucewatch.errors import ConfigError
from trucewatch.fusion.evidence import VIIRS_LOOKBACK_S, fire_evidence
from trucewatch.fusion.incidents import IncidentFuser
from trucewatch.ingest.firms import overpass_windows, parse_firms, read_firms
from trucewatch.pipeline import FieldInputs, FirmsFilter, SensorInputs, run_cycle
from trucewatch.pipeline.stages import stored_fires
from trucewatch.storage import SqliteStore

D = date(2021, 7, 1)
MINIMAL = b"latitude,longitude,acq_date,sensor_guess\n"


def _utc(h: int, m: int = 0, day: date = D) -> datetime:
    return datetime(day.year, day.month, day.day, h, m, tzinfo=UTC)


def _inside(windows: pl.DataFrame, t: datetime) -> bool:
    return bool(((windows["win_start"] <= t) & (windows["win_end"] >= t)).any())


# ---------------------------------------------------------------- overpass windows
def test_date_only_viirs_row_gets_its_overpass_windows() -> None:
    b = parse_firms(MINIMAL + b"48.123456,38.000000,2021-07-01,VIIRS_6dec\n", "m.csv")
    r = b.records
    w = overpass_windows(r)
    # 13:30 LST at 38 E is 10:58Z; 01:30 LST of the next local day is 22:58Z
    assert _inside(w, _utc(10, 40)) and _inside(w, _utc(23, 0))
    assert _inside(w, _utc(0, 10))  # the tail of the previous night's pass
    assert not _inside(w, _utc(6, 0)) and not _inside(w, _utc(16, 0))
    assert w["win_start"].min() == _utc(0)
    assert w["win_end"].max() == datetime(2021, 7, 1, 23, 59, 59, 999000, tzinfo=UTC)
    assert r["seen_start"][0] == w["win_start"].min()
    assert r["seen_end"][0] == w["win_end"].max()
    assert r["time_basis"][0].startswith("overpass windows (VIIRS")
    assert "13:30/01:30 LST" in r["time_basis"][0]


def test_modis_windows_differ_and_say_the_satellite_is_unknown() -> None:
    b = parse_firms(MINIMAL + b"48.1234,38.0000,2021-07-01,MODIS\n"
                    b"48.123456,38.000000,2021-07-01,VIIRS_6dec\n", "m.csv")
    w = overpass_windows(b.records)
    modis, viirs = (w.filter(pl.col("row") == r) for r in b.records["row"])
    # Terra's 10:30 LST morning pass (07:58Z at 38 E) is no VIIRS time
    assert _inside(modis, _utc(7, 30)) and not _inside(viirs, _utc(7, 30))
    assert _inside(modis, _utc(10, 40))  # Aqua: also possible
    assert "satellite unknown" in b.records["time_basis"][0]
    assert "Terra" in b.records["time_basis"][0] and "Aqua" in b.records["time_basis"][0]


def test_windows_follow_longitude() -> None:
    b = parse_firms(MINIMAL + b"48.12345,22.00000,2021-07-01,VIIRS_5dec\n", "m.csv")
    w = overpass_windows(b.records)
    # 13:30 LST at 22 E is 12:02Z: 10:40Z lies outside the window's -1.5 h edge? no: 10:32Z
    assert _inside(w, _utc(12, 0)) and _inside(w, _utc(10, 35)) and not _inside(w, _utc(10, 20))
    assert "VIIRS" in b.records["time_basis"][0]


def test_acq_time_row_is_exact() -> None:
    head = (b"latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,"
            b"confidence,version,bright_ti5,frp,daynight\n")
    b = parse_firms(head + b"48.1,38.0,330.1,0.4,0.4,2021-07-01,1042,N20,n,2.0NRT,290,5.1,D\n",
                    "v.csv")
    r = b.records
    assert r["seen_start"][0] == _utc(10, 42)
    assert r["seen_end"][0] == datetime(2021, 7, 1, 10, 42, 59, tzinfo=UTC)
    assert r["time_basis"][0].startswith("acq_time")


def test_store_keeps_the_window_and_evidence_uses_it(tmp_path: Path) -> None:
    raw = MINIMAL + b"48.123456,38.000000,2021-07-01,VIIRS_6dec\n"
    store = SqliteStore(tmp_path / "s.db")
    store.ingest(parse_firms(raw, "m.csv"))
    det = stored_fires(store)  # the contract, with the satellite channel's columns
    store.close()
    assert det["time_start"][0] == _utc(0)
    assert det["time_end"][0] == datetime(2021, 7, 1, 23, 59, 59, tzinfo=UTC)
    assert det["time_basis"][0].startswith("overpass windows (VIIRS")
    ev = fire_evidence(det.with_columns(pl.lit(1).alias("war_related"),
                                        pl.lit(True).alias("excess")))
    start, end = _utc(0).timestamp(), datetime(2021, 7, 1, 23, 59, 59, tzinfo=UTC).timestamp()
    assert ev["seen_start"][0] == start and ev["seen_end"][0] == end
    assert ev["t_start"][0] == start - VIIRS_LOOKBACK_S and ev["t_end"][0] == end
    # a fire seen on the first day after an entry into force at 00:00Z may be after it:
    # it is not filtered out as "before"
    assert fire_evidence(det.with_columns(pl.lit(1).alias("war_related"),
                                          pl.lit(True).alias("excess")),
                         since=_utc(12)).height == 1


def test_incidents_carry_the_sightings_span() -> None:
    from trucewatch.fusion.incidents import EVIDENCE_SCHEMA

    def table(rows: list[dict[str, object]]) -> pl.DataFrame:
        return pl.DataFrame(rows, schema=EVIDENCE_SCHEMA)

    def obs(i: str, lat: float, t: float) -> dict[str, object]:
        return {"id": i, "source_kind": "sensor_network", "source_id": "sensors:network",
                "t_start": t, "t_end": t, "latitude": lat, "longitude": 38.0,
                "sigma_m": 50.0, "klass": "explosion", "reliability": 1.0,
                "weapon_class": None, "count": 1, "unconfirmed": False}

    t = _utc(10).timestamp()
    rows = [obs("a", 48.0, t), obs("b", 48.0001, t + 20)]
    inc, _ = IncidentFuser().fuse(table(rows))  # no seen_* given: filled from the times
    assert inc.height == 1
    assert inc["seen_start"][0] == t and inc["seen_end"][0] == t + 20
    ev = table(rows).with_columns(pl.Series("seen_start", [t - 5, t + 20.0]),
                                  pl.Series("seen_end", [t + 1, t + 30.0]))
    inc, _ = IncidentFuser().fuse(ev)
    assert inc["seen_start"][0] == t - 5 and inc["seen_end"][0] == t + 30
    empty, _ = IncidentFuser().fuse(table([]))
    assert {"seen_start", "seen_end"} <= set(empty.columns)


def test_real_file_windows_lie_in_their_utc_day(monkeypatch: pytest.MonkeyPatch) -> None:
    import trucewatch.ingest.firms as firms

    path = shared("firms-ukraine-2000-2022/firms_ukraine_2000_2022.csv.gz")

    def held(*_: object) -> bytes:
        raise AssertionError("keep_raw=False read the whole file into Python")

    # the file is read natively from its path (polars), never held and split in Python
    # (what made this slow; the speed is measured in benchmarks/)
    monkeypatch.setattr(firms, "read_raw", held)
    batch = read_firms(path, keep_raw=False)
    assert batch.raw == b""
    r = batch.records
    day0 = pl.col("acq_date").cast(pl.Datetime("ms", "UTC"))
    bad = r.filter((pl.col("seen_start") < day0) | (pl.col("seen_end") >= day0
                                                    + pl.duration(days=1))
                   | (pl.col("seen_start") > pl.col("seen_end")))
    assert bad.is_empty()
    basis = dict(r.group_by("sensor").agg(pl.col("time_basis").first()).iter_rows())
    assert basis["VIIRS_SNPP_SP"].startswith("overpass windows (VIIRS")
    assert "satellite unknown" in basis["MODIS"]
    sample = r.sample(2000, seed=3)
    w = overpass_windows(sample).group_by("row").agg(pl.col("win_start").min(),
                                                     pl.col("win_end").max())
    j = sample.join(w, on="row")
    assert j.height == sample.height
    assert (j["seen_start"] == j["win_start"]).all() and (j["seen_end"] == j["win_end"]).all()


# ---------------------------------------------------------------- as-of cycles
CUT = date(2026, 5, 13)


def _firms_until(files: list[Path], folder: Path, last: date,
                 drop: date | None = None) -> list[Path]:
    """Copies of FIRMS files keeping the lines (verbatim, malformed ones too) with acq_date
    <= last (and none of ``drop``)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        head, *lines = f.read_text().splitlines()
        col = head.split(",").index("acq_date")

        def keep(line: str, col: int = col) -> bool:
            day = (line.split(",") + [""] * 20)[col]
            return day <= last.isoformat() and (drop is None or day != drop.isoformat())

        p = folder / f.name
        p.write_text("\n".join([head, *(ln for ln in lines if keep(ln))]) + "\n")
        out.append(p)
    return out


def _substance(path: Path) -> dict[str, object]:
    b = json.loads(path.read_text())
    skip = {"generated_at", "ingest", "integrity", "review", "review_scripted",
            "refused_submissions", "refused_count", "quarantined_rows", "revision", "as_of",
            "sensors"}
    return {k: v for k, v in b.items() if k not in skip}


def test_bulletin_for_d_ignores_later_data(scenario: ScenarioFiles, tmp_path: Path) -> None:
    """The same day judged with only data up to D and with everything up to D + 18 days
    (FIRMS, ground sensors, drones, allegations all after D): the same verdicts."""
    assert scenario.stations and scenario.detections
    early = _firms_until(scenario.current, tmp_path / "early", CUT)
    a = run_cycle(agreement_path=scenario.agreement, firms_files=[*scenario.reference, *early],
                  out_dir=tmp_path / "a", report_date=CUT, cloud_path=scenario.coverage,
                  pdf=False)
    b = run_cycle(agreement_path=scenario.agreement,
                  firms_files=[*scenario.reference, *scenario.current],
                  out_dir=tmp_path / "b", report_date=CUT, cloud_path=scenario.coverage,
                  pdf=False, sensors=SensorInputs(scenario.stations, [scenario.detections]),
                  field_inputs=FieldInputs(scenario.drones, scenario.allegations,
                                           scenario.keys))
    assert a.view.incidents, "the scenario has violations before D"
    assert [(i.id, i.category, i.status) for i in a.view.incidents] == \
        [(i.id, i.category, i.status) for i in b.view.incidents]
    assert sorted(v.id for v in a.view.violations) == sorted(v.id for v in b.view.violations)
    name = f"bulletin-{CUT}-restricted.json"
    assert _substance(tmp_path / "a" / name) == _substance(tmp_path / "b" / name)
    geo = json.loads((tmp_path / "b" / f"incidents-{CUT}-restricted.geojson").read_text())
    for f in geo["features"]:
        props = f["properties"]
        attrs = props.get("attributes", {})
        assert "time_start" in props
        for key in ("rule", "sources", "distance_to_line_km"):
            assert key in props or key in attrs, key
    as_of = json.loads((tmp_path / "b" / name).read_text())["as_of"]
    assert as_of["cutoff"] == "2026-05-14T00:00Z"
    assert as_of["stored_after_cutoff"]["fire_detections"] > 0
    assert as_of["stored_after_cutoff"]["allegations"] > 0
    assert as_of["used"]["allegations"] == 0
    # and everything was stored: nothing is lost
    store = SqliteStore(tmp_path / "b" / "trucewatch.db")
    assert stored_fires(store)["acq_date"].max() == date(2026, 5, 28)  # after CUT
    store.close()


def test_report_date_outside_the_data_is_refused(scenario: ScenarioFiles,
                                                 tmp_path: Path) -> None:
    files = [*scenario.reference, *scenario.current]
    for day, words in ((date(2025, 12, 31), "before the first monitored data"),
                       (date(2026, 6, 2), "after the last data")):
        with pytest.raises(ConfigError, match=words) as e:
            run_cycle(agreement_path=scenario.agreement, firms_files=files,
                      out_dir=tmp_path / str(day), report_date=day, pdf=False,
                      cloud_path=scenario.coverage)
        assert "--report-date between 2026-01-01 and 2026-05-31" in e.value.fix
        # a store the refused run created is not left behind
        assert not list((tmp_path / str(day)).glob("trucewatch.db*"))
    with pytest.raises(ConfigError, match="2019"):
        run_cycle(agreement_path=scenario.agreement, firms_files=files, out_dir=tmp_path / "y",
                  reference_years=[2019, 2023], pdf=False)
    with pytest.raises(ConfigError, match="unknown FIRMS sensor"):
        run_cycle(agreement_path=scenario.agreement, firms_files=files, out_dir=tmp_path / "s",
                  firms_filter=FirmsFilter(("VIIRS_X",)), pdf=False)
    with pytest.raises(ConfigError, match="no FIRMS detections to use"):
        run_cycle(agreement_path=scenario.agreement, firms_files=files, out_dir=tmp_path / "m",
                  firms_filter=FirmsFilter(("MODIS",)), pdf=False)


def test_cli_refuses_a_report_date_after_the_data_quickly(scenario: ScenarioFiles,
                                                          tmp_path: Path) -> None:
    args = [sys.executable, "-m", "trucewatch", "run", "--agreement", str(scenario.agreement),
            "--no-pdf", "--out", str(tmp_path / "o"), "--report-date", "2030-01-01",
            "--cloud", str(scenario.coverage)]
    for f in [*scenario.reference, *scenario.current]:
        args += ["--firms", str(f)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    # refused before the work (no timed assertion: a loaded machine would fail it): no
    # baseline was fitted and no bulletin was written
    assert not (tmp_path / "o" / "baseline.npz").exists()
    assert not list((tmp_path / "o").glob("bulletin-*"))
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: report date 2030-01-01 is after the last data "
                               "(2026-05-31)") and "(fix:" in lines[0]


def test_late_data_make_a_revision_and_the_published_bulletin_stays(
        scenario: ScenarioFiles, tmp_path: Path) -> None:
    out = tmp_path / "out"
    late = date(2026, 5, 12)  # a violation day, delivered late
    first = _firms_until(scenario.current, tmp_path / "first", CUT, drop=late)
    kw = {"agreement_path": scenario.agreement, "out_dir": out, "report_date": CUT,
          "cloud_path": scenario.coverage, "pdf": False}
    run_cycle(firms_files=[*scenario.reference, *first], **kw)  # type: ignore[arg-type]
    published = {p.name: p.read_bytes() for p in out.glob(f"*{CUT}*")}
    assert f"bulletin-{CUT}-public.json" in published
    assert f"incidents-{CUT}-restricted.geojson" in published

    res = run_cycle(firms_files=[*scenario.reference, *scenario.current], **kw)  # type: ignore[arg-type]
    assert {p.name: p.read_bytes() for p in out.glob(f"*{CUT}*") if ".rev" not in p.name} \
        == published
    rev = out / f"bulletin-{CUT}-public.rev2.json"
    assert res.bulletins["public"].json == rev
    for name in (f"bulletin-{CUT}-restricted.rev2.json", f"bulletin-{CUT}-public.rev2.html",
                 f"incidents-{CUT}-restricted.rev2.geojson"):
        assert (out / name).exists(), name
    record = json.loads(rev.read_text())["revision"]
    assert record["number"] == 2 and record["revises"] == f"bulletin-{CUT}-public.json"
    assert record["reason"].startswith("new data received after the first publication")
    assert "fire detections" in record["reason"]
    assert "REVISION 2" in (out / f"bulletin-{CUT}-public.rev2.html").read_text()

    # the same inputs again: nothing new to say, nothing written
    again = run_cycle(firms_files=[*scenario.reference, *scenario.current], **kw)  # type: ignore[arg-type]
    assert not (out / f"bulletin-{CUT}-public.rev3.json").exists()
    assert again.bulletins["public"].json == rev
