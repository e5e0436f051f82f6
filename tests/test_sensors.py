"""Ground-sensor channel: propagation, location, association, streaming, bad input, CLI."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from lab.scoring import score
from trucewatch.cli.app import app
from trucewatch.demo.sensors import PRESETS, generate
from trucewatch.errors import ConfigError, InputFileError
from trucewatch.ingest.sensors import NEAR_DUPLICATE_S, parse_detections, read_stations
from trucewatch.sensors.association import ExplosionAssociator, Network, Picks
from trucewatch.sensors.location import crlb_xy, locate
from trucewatch.sensors.propagation import (
    AcousticModel,
    Layer,
    P,
    Propagation,
    SeismicModel,
    sound_speed_km_s,
)

T0 = datetime(2026, 5, 1, tzinfo=UTC)


# ---------------------------------------------------------------------------- propagation
def test_sound_speed_and_wind() -> None:
    assert sound_speed_km_s(15.0) == pytest.approx(0.3403, abs=2e-4)
    assert sound_speed_km_s(-10.0) < sound_speed_km_s(15.0) < sound_speed_km_s(35.0)
    m = AcousticModel(15.0, wind_east_m_s=10.0)
    d = np.array([10.0])
    z = np.zeros(1)
    downwind = m.travel_time(d, z, z)  # station east of the source
    upwind = m.travel_time(-d, z, z)
    crosswind = m.travel_time(z, d, z)
    c = m.speed
    assert downwind[0] == pytest.approx(10 / (c + 0.01))
    assert upwind[0] == pytest.approx(10 / (c - 0.01))
    assert crosswind[0] == pytest.approx(10 / c)
    # elevation lengthens the path
    assert m.travel_time(d, z, np.array([1.0]))[0] > downwind[0]


def test_seismic_layered_head_wave() -> None:
    model = SeismicModel((Layer(2.0, 4.0, 2.3), Layer(math.inf, 6.0, 3.46)))
    near, far = np.array([1.0]), np.array([60.0])
    assert model.time_at(near, P)[0] == pytest.approx(1.0 / 4.0)
    delay = 2 * 2.0 * math.sqrt(1 / 4.0**2 - 1 / 6.0**2)
    assert model.time_at(far, P)[0] == pytest.approx(60 / 6.0 + delay)
    d = np.linspace(0, 100, 500)
    assert np.all(np.diff(model.time_at(d, P)) >= 0)  # monotone: the box bounds rely on it
    homog = SeismicModel.homogeneous(6.0, 3.5)
    assert homog.time_at(far, P)[0] == pytest.approx(10.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"layers": (Layer(math.inf, 3.0, 4.0),)}, "vs"),
    ({"layers": (Layer(-1.0, 4.0, 2.0), Layer(math.inf, 6.0, 3.4))}, "thickness"),
    ({"layers": (Layer(math.inf, 60.0, 3.4),)}, "km/s"),
])
def test_seismic_model_rejects_nonsense(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SeismicModel(**kwargs)  # type: ignore[arg-type]


def test_acoustic_model_rejects_nonsense() -> None:
    with pytest.raises(ConfigError, match="temperature"):
        AcousticModel(temperature_c=300.0)
    with pytest.raises(ConfigError, match="wind"):
        AcousticModel(wind_east_m_s=200.0)


# -------------------------------------------------------------------------- constructed
def _network(n: int = 8, seed: int = 0, line: bool = False) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    lat = 48.5 + (np.linspace(-0.1, 0.1, n) if line else rng.uniform(-0.12, 0.12, n))
    lon = 38.0 + (np.full(n, 0.0) if line else rng.uniform(-0.18, 0.18, n))
    return pl.DataFrame({"id": [f"S{i:02d}" for i in range(n)], "latitude": lat,
                         "longitude": lon, "elevation_m": rng.uniform(100, 200, n),
                         "kind": ["acoustic"] * n})


def _picks(net: Network, prop: Propagation, sources: list[tuple[float, float, float]],
           noise: float = 0.0, seed: int = 1) -> tuple[pl.DataFrame, dict[str, int]]:
    rng = np.random.default_rng(seed)
    rows, owner = [], {}
    for k, (x, y, t0) in enumerate(sources):
        tt = prop.travel_time(np.zeros(len(net.ids), dtype=np.int8), net.x_km - x,
                              net.y_km - y, net.z_km)
        for i, sid in enumerate(net.ids):
            did = f"e{k}-{sid}"
            t = t0 + tt[i] + rng.normal(0, noise)
            rows.append((did, sid, T0 + timedelta(seconds=float(t)), "acoustic"))
            owner[did] = k
    return pl.DataFrame(rows, schema=["detection_id", "station", "time", "phase"],
                        orient="row"), owner


def _run(det: pl.DataFrame, net: Network, **kw: object) -> tuple[pl.DataFrame, pl.DataFrame]:
    a = ExplosionAssociator(**kw)  # type: ignore[arg-type]
    res = a.associate(net, Picks.from_table(det, net))
    return res.events, res.assignments


def test_locates_a_noise_free_explosion_exactly() -> None:
    net = Network.from_table(_network())
    prop = Propagation(AcousticModel(5.0, 6.0, -2.0))
    det, _ = _picks(net, prop, [(1.5, -2.0, 100.0)])
    ev, asg = _run(det, net, propagation=prop)
    assert ev.height == 1 and ev["status"][0] == "located"
    assert ev["x_km"][0] == pytest.approx(1.5, abs=1e-3)
    assert ev["y_km"][0] == pytest.approx(-2.0, abs=1e-3)
    assert ev["time"][0] == T0 + timedelta(seconds=100)
    assert ev["n_defining"][0] == 8 and asg["event_id"].null_count() == 0
    assert 0 < ev["minor_m"][0] <= ev["major_m"][0] < 200


def test_separates_two_explosions_one_second_apart() -> None:
    net = Network.from_table(_network(10))
    prop = Propagation()
    det, owner = _picks(net, prop, [(0.0, 0.0, 50.0), (3.0, 2.0, 51.0)], noise=0.02)
    ev, asg = _run(det, net, propagation=prop)
    assert ev.filter(pl.col("status") == "located").height == 2
    groups = asg.with_columns(pl.col("detection_id").replace_strict(owner).alias("true"))
    # each event holds the detections of exactly one true explosion
    assert groups.group_by("event_id").agg(pl.col("true").n_unique())["true"].max() == 1


def test_false_detections_stay_unassociated() -> None:
    net = Network.from_table(_network(10))
    prop = Propagation()
    det, _ = _picks(net, prop, [(0.0, 0.0, 200.0)], noise=0.02)
    rng = np.random.default_rng(3)
    noise = pl.DataFrame({"detection_id": [f"f{i}" for i in range(20)],
                          "station": rng.choice(list(net.ids), 20).tolist(),
                          "time": [T0 + timedelta(seconds=float(s))
                                   for s in rng.uniform(0, 400, 20)],
                          "phase": ["acoustic"] * 20})
    ev, asg = _run(pl.concat([det, noise]), net, propagation=prop)
    assert asg.height == det.height + noise.height  # every detection accounted for
    real = asg.filter(pl.col("detection_id").str.starts_with("e"))
    assert real["event_id"].n_unique() == 1 and real["event_id"].null_count() == 0
    mixed = asg.filter(pl.col("event_id") == real["event_id"][0])
    assert mixed.height == det.height  # no false detection joined the real explosion
    # 20 random detections in 400 s at 10 stations can line up at 4 stations (one check
    # only); such a coincidence is small and never borrows a real detection
    others = asg.filter(pl.col("event_id").is_not_null() & (pl.col("event_id") != mixed[
        "event_id"][0]))
    assert others["detection_id"].str.starts_with("f").all()
    assert ev.height <= 2 and others.height <= 5


def test_too_few_stations_is_not_an_event() -> None:
    net = Network.from_table(_network(8))
    det, _ = _picks(net, Propagation(), [(0.0, 0.0, 100.0)])
    three = det.filter(pl.col("station").is_in(["S00", "S01", "S02"]))
    ev, asg = _run(three, net)
    assert ev.height == 0 and asg.height == 3 and asg["event_id"].null_count() == 3


def test_collinear_network_is_not_locatable_but_kept() -> None:
    net = Network.from_table(_network(6, line=True))
    det, _ = _picks(net, Propagation(), [(5.0, 0.0, 100.0)])
    ev, asg = _run(det, net, max_silent_stations=None)
    assert ev.height == 1 and ev["status"][0] == "not_locatable"
    assert asg["event_id"].null_count() < asg.height  # its detections stay with it


def test_location_error_matches_cramer_rao() -> None:
    """Over many noisy trials the scatter of the solutions equals the CRLB."""
    net = Network.from_table(_network(12, seed=4))
    prop = Propagation()
    sigma = 0.05
    rng = np.random.default_rng(9)
    n = 400
    seg = np.repeat(np.arange(n), 12)
    st = np.tile(np.arange(12), n)
    tt = prop.travel_time(np.zeros(12, dtype=np.int8), net.x_km - 2.0, net.y_km - 1.0, net.z_km)
    t = 10.0 + tt[st] + rng.normal(0, sigma, len(st))
    sol = locate(seg, n, net.x_km[st], net.y_km[st], net.z_km[st],
                 np.zeros(len(st), dtype=np.int8), t, np.full(len(st), sigma),
                 np.zeros(n), np.zeros(n), prop, huber_s=1.0)
    err2 = (sol.x - 2.0) ** 2 + (sol.y - 1.0) ** 2
    bound = np.trace(crlb_xy(net.x_km, net.y_km, net.z_km, np.zeros(12, dtype=np.int8),
                             np.full(12, sigma), 2.0, 1.0, prop))
    assert float(np.mean(err2)) == pytest.approx(bound, rel=0.2)
    # the reported covariance says the same
    assert float(np.median(sol.cov[:, 0, 0] + sol.cov[:, 1, 1])) == pytest.approx(bound, rel=0.2)


def test_streaming_gives_the_batch_result() -> None:
    sc = replace(PRESETS["moderate"], duration_h=1.0, seed=5)
    data = generate(sc)
    net = Network.from_table(data.stations)
    picks = Picks.from_table(data.detections.sort("time"), net)
    a = ExplosionAssociator(propagation=sc.propagation())
    batch = a.associate(net, picks)
    for step in (1, 37, 500):
        chunks = (picks.take(np.arange(k, min(len(picks), k + step)))
                  for k in range(0, len(picks), step))
        parts = list(a.stream(net, chunks))
        ev = pl.concat([p.events for p in parts])
        asg = pl.concat([p.assignments for p in parts])
        assert ev.drop("event_id").equals(batch.events.drop("event_id")), step
        assert asg.sort("detection_id")["event_id"].is_null().equals(
            batch.assignments.sort("detection_id")["event_id"].is_null())
    assert batch.events.height > 5


def test_out_of_order_input_gives_the_same_events() -> None:
    sc = replace(PRESETS["moderate"], duration_h=0.5, seed=6)
    data = generate(sc)
    net = Network.from_table(data.stations)
    a = ExplosionAssociator(propagation=sc.propagation())
    ordered = a.associate(net, Picks.from_table(data.detections, net))
    shuffled = data.detections.sample(fraction=1.0, shuffle=True, seed=2)
    again = a.associate(net, Picks.from_table(shuffled, net))
    assert again.events.drop("event_id").equals(ordered.events.drop("event_id"))


def test_scenario_accuracy_against_truth() -> None:
    """Separate explosions (no barrages) are found; barrages are the benchmark's job."""
    sc = replace(PRESETS["moderate"], duration_h=2.0, seed=8, rounds_per_barrage=1.0)
    data = generate(sc)
    net = Network.from_table(data.stations)
    res = ExplosionAssociator(propagation=sc.propagation()).associate(
        net, Picks.from_table(data.detections, net))
    s = score(data.truth, data.detections.select("detection_id", "station"), res.assignments)
    assert s.n_true > 10
    assert s.precision >= 0.9 and s.recall >= 0.9, s.row()


# ---------------------------------------------------------------------------- scenario
def test_scenario_generator_is_seeded_and_honest() -> None:
    sc = replace(PRESETS["barrage"], duration_h=0.5)
    a, b = generate(sc), generate(sc)
    assert a.detections.equals(b.detections)
    false = a.truth["event_id"].null_count()
    real = a.truth.height - false
    # the picker's dead time takes out the second of two rounds arriving together, which
    # in a barrage is mostly real picks: false ones rise a little above the ratio, no more
    assert false == pytest.approx(sc.false_ratio * real, rel=0.04)
    assert false >= sc.false_ratio * real * 0.99
    gaps = (a.detections.sort("station", "phase", "time")
            .with_columns(pl.col("time").diff().over("station", "phase").alias("gap"))["gap"]
            .drop_nulls().dt.total_microseconds())
    assert gaps.min() >= NEAR_DUPLICATE_S * 1e6  # one pick per station and phase within it
    assert a.stations.height == sc.n_stations
    assert set(a.stations["kind"]) <= {"acoustic", "infrasound", "seismic"}
    # bursts: several explosions within a second happen at the peak
    t = a.events["time"].dt.epoch("ms").to_numpy() / 1000
    per_s = np.bincount(np.floor(t - t.min()).astype(int))
    assert per_s.max() >= 3


# ---------------------------------------------------------------------------- bad input
def test_network_needs_three_stations() -> None:
    for n in (0, 1, 2):
        with pytest.raises(ConfigError, match="at least 3"):
            Network.from_table(_network(8).head(n))


def test_empty_detections_give_no_events() -> None:
    net = Network.from_table(_network())
    empty = pl.DataFrame(schema={"detection_id": pl.String, "station": pl.String,
                                 "time": pl.Datetime("us", "UTC"), "phase": pl.String})
    ev, asg = _run(empty, net)
    assert ev.height == 0 and asg.height == 0


def test_unknown_station_in_arrays_is_an_error() -> None:
    net = Network.from_table(_network())
    det = pl.DataFrame({"detection_id": ["a"], "station": ["NOPE"], "time": [T0],
                        "phase": ["acoustic"]})
    with pytest.raises(ConfigError, match="unknown stations: NOPE"):
        Picks.from_table(det, net)


STATIONS = pl.DataFrame({"id": ["A1", "S1", "I1"], "latitude": [48.5, 48.6, 48.7],
                         "longitude": [38.0, 38.1, 38.2], "elevation_m": [100.0, 120, 90],
                         "kind": ["acoustic", "seismic", "infrasound"]})

BAD_ROWS = {
    "d2,A1,2026-05-01T00:00:02Z,P,,,3": "P or S phase at an acoustic",
    "d3,X9,2026-05-01T00:00:03Z,acoustic,,,3": "unknown station",
    "d4,S1,2026-05-01T00:00:04,P,,,3": "no UTC offset",
    "d5,S1,2030-05-01T00:00:04Z,P,,,3": "in the future",
    "d1,S1,2026-05-01T00:00:05Z,P,,,3": "duplicate detection_id (first at line 2)",
    "d7,A1,2026-05-01T00:00:01.5Z,acoustic,,,3": "same station, phase and time as line 2",
    "d8,I1,2026-05-01T00:00:09Z,acoustic,400,,3": "back_azimuth_deg",
    "d9,I1,2026-05-01T00:00:10Z,acoustic,40,,-1": "snr",
    "d10,I1,not a time Z,acoustic,40,,1": "not ISO 8601",
    "d11,I1,2026-05-01T00:00:12Z,acoustic,,3.0,1": "impossible apparent velocity",
    "d12,S1,2026-05-01T00:00:13Z,X,,,1": "phase not one of",
    # a stream sent twice, re-numbered and re-timed by rounding: named by what it repeats
    "d13,A1,2026-05-01T00:00:01.52Z,acoustic,,,3":
        "near-duplicate of detection d1 (line 2): same station and phase, 20.0 ms apart",
}


def test_bad_detections_are_quarantined_with_reasons() -> None:
    head = "detection_id,station,time,phase,back_azimuth_deg,apparent_velocity_km_s,snr"
    good = ["d1,A1,2026-05-01T00:00:01.5Z,acoustic,,,3",
            "d20,S1,2026-05-01T00:00:11+00:00,S,,3.3,"]
    lines = [head, good[0], *BAD_ROWS, good[1]]
    raw = ("\n".join(lines) + "\n").encode()
    b = parse_detections(raw, "d.csv", STATIONS, now=datetime(2026, 5, 2, tzinfo=UTC))
    assert b.records["detection_id"].to_list() == ["d1", "d20"]
    assert b.records.height + len(b.quarantine) == b.n_rows == len(lines) - 1
    for q, (row, why) in zip(b.quarantine, BAD_ROWS.items(), strict=True):
        assert q.raw == row and why in q.reason, (q, why)
        assert lines[q.row - 1] == row


def test_detections_missing_columns() -> None:
    with pytest.raises(InputFileError, match="lack columns time"):
        parse_detections(b"detection_id,station,phase\n", "d.csv", STATIONS)


def test_station_inventory_formats_and_errors(tmp_path: Path) -> None:
    csv = tmp_path / "st.csv"
    STATIONS.write_csv(csv)
    assert read_stations(csv)["kind"].to_list() == ["acoustic", "seismic", "infrasound"]
    js = tmp_path / "st.json"
    js.write_text(json.dumps({"stations": STATIONS.to_dicts()}))
    assert read_stations(js).equals(read_stations(csv))
    bad = tmp_path / "bad.csv"
    bad.write_text("id,latitude,longitude,elevation_m,kind\nA,95,38,100,acoustic\n"
                   "A,48,38,100,radar\n")
    with pytest.raises(InputFileError) as e:
        read_stations(bad)
    msg = str(e.value)
    assert "latitude '95'" in msg and "kind 'radar'" in msg and "duplicate station ids: A" in msg


def test_stationxml_through_obspy(tmp_path: Path) -> None:
    from obspy import UTCDateTime
    from obspy.core.inventory import Channel, Inventory, Network, Station

    chans = [Channel("BDF", "", 48.5, 38.0, 150.0, 0.0)]
    seis = [Channel("HHZ", "", 48.6, 38.1, 120.0, 0.0)]
    inv = Inventory([Network("UX", stations=[
        Station("IS01", 48.5, 38.0, 150.0, channels=chans, creation_date=UTCDateTime(2026, 1, 1)),
        Station("SE01", 48.6, 38.1, 120.0, channels=seis, creation_date=UTCDateTime(2026, 1, 1)),
    ])], source="test")
    path = tmp_path / "st.xml"
    inv.write(str(path), format="STATIONXML")
    t = read_stations(path)
    assert t["id"].to_list() == ["UX.IS01", "UX.SE01"]
    assert t["kind"].to_list() == ["infrasound", "seismic"]
    assert t["elevation_m"].to_list() == [150.0, 120.0]


# ---------------------------------------------------------------------------- CLI
def test_cli_locate_end_to_end(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["sensors", "simulate", str(tmp_path / "sc"), "--preset",
                            "quiet", "--hours", "24", "--seed", "3"])
    assert r.exit_code == 0, r.output
    sc = json.loads((tmp_path / "sc" / "scenario.json").read_text())
    args = ["sensors", "locate", str(tmp_path / "sc" / "stations.csv"),
            str(tmp_path / "sc" / "detections.csv"), "--out", str(tmp_path / "ev.csv"),
            "--assignments", str(tmp_path / "as.csv"), "--temperature",
            str(sc["temperature_c"]), "--wind-east", str(sc["wind_east_m_s"]),
            "--wind-north", str(sc["wind_north_m_s"]), "--quakeml", str(tmp_path / "ev.xml")]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    ev = pl.read_csv(tmp_path / "ev.csv")
    assert ev.columns == ["event_id", "time", "latitude", "longitude", "major_m", "minor_m",
                          "azimuth_deg", "n_defining", "status"]
    asg = pl.read_csv(tmp_path / "as.csv", schema_overrides={"event_id": pl.String})
    det = pl.read_csv(tmp_path / "sc" / "detections.csv")
    assert asg.columns == ["detection_id", "event_id"]
    assert sorted(asg["detection_id"]) == sorted(det["detection_id"])
    truth = pl.read_csv(tmp_path / "sc" / "truth.csv")
    s = score(truth, det.select("detection_id", "station"), asg)
    assert s.f1 >= 0.85, s.row()
    from obspy import read_events

    cat = read_events(str(tmp_path / "ev.xml"))
    assert len(cat) == ev.height and cat[0].event_type == "explosion"


def test_cli_locate_bad_inventory_is_one_line(tmp_path: Path) -> None:
    st = tmp_path / "st.csv"
    st.write_text("id,latitude,longitude\nA,1,2\n")
    det = tmp_path / "d.csv"
    det.write_text("detection_id,station,time,phase\n")
    import sys

    from trucewatch.cli.app import main

    argv = sys.argv
    sys.argv = ["trucewatch", "sensors", "locate", str(st), str(det), "--out",
                str(tmp_path / "e.csv"), "--assignments", str(tmp_path / "a.csv")]
    try:
        with pytest.raises(SystemExit) as e:
            main()
    finally:
        sys.argv = argv
    assert e.value.code == 2


def test_quakeml_carries_arrivals_residuals_and_the_ellipse(tmp_path: Path) -> None:
    """Read back with ObsPy: every associated detection is a pick with an arrival whose
    residual is the associator's; the ellipse is an originUncertainty ellipse."""
    from obspy import read_events

    from lab.families import family
    from lab.families import generate as generate_family
    from trucewatch.sensors.events import NO_HEALTH_CHECK, locate_files

    data = generate_family(family("arrays-uniform", "quiet", seed=1, hours=8))
    raw = data.detections.with_columns(
        pl.col("time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")).write_csv().encode()
    batch = parse_detections(raw, "d.csv", data.stations, now=datetime(2030, 1, 1, tzinfo=UTC))
    res = locate_files(data.stations, batch,
                       ExplosionAssociator(propagation=data.scenario.propagation()),
                       health=NO_HEALTH_CHECK)
    path = tmp_path / "ev.xml"
    res.write_quakeml(path)
    ev = res.association.events
    asg = res.association.assignments.drop_nulls("event_id")
    assert ev.height >= 3
    text = path.read_text()
    assert "<preferredDescription>uncertainty ellipse</preferredDescription>" in text
    assert "confidence ellipsoid" not in text
    cat = read_events(str(path))
    assert len(cat) == ev.height
    by_id = {r["event_id"]: r for r in ev.iter_rows(named=True)}
    n_arr = 0
    for e in cat:
        eid = str(e.resource_id).rsplit("/", 1)[1]
        row = by_id[eid]
        o = e.preferred_origin()
        u = o.origin_uncertainty
        assert u.preferred_description == "uncertainty ellipse"
        assert u.max_horizontal_uncertainty == pytest.approx(row["major_m"])
        assert u.min_horizontal_uncertainty == pytest.approx(row["minor_m"])
        assert u.azimuth_max_horizontal_uncertainty == pytest.approx(row["azimuth_deg"])
        mine = asg.filter(pl.col("event_id") == eid)
        assert len(o.arrivals) == len(e.picks) == mine.height
        resid = dict(zip(mine["detection_id"].to_list(), mine["residual_s"].to_list(),
                         strict=True))
        picks = {p.resource_id: p for p in e.picks}
        for a in o.arrivals:
            p = picks[a.pick_id]
            did = str(p.resource_id).rsplit("/", 1)[1]
            assert a.time_residual == pytest.approx(resid[did], abs=1e-9)
            assert 0 < a.distance < 1.0 and 0 <= a.azimuth < 360
            assert p.waveform_id.station_code in set(data.stations["id"].to_list())
            n_arr += 1
    assert n_arr == asg.height
    assert any(p.backazimuth is not None for e in cat for p in e.picks)  # arrays give one
