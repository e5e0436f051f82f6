"""The sensor stream (intake/stream.py): detections stored as received are located across
files by a sliding window, the same way by the worker and by the batch cycle, and a
worker killed mid-step loses nothing and doubles nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from trucewatch.agreement import load_agreement
from trucewatch.demo import ScenarioFiles
from trucewatch.demo.sensors import SensorScenario, generate
from trucewatch.integrity.envelope import SourcePolicy
from trucewatch.integrity.keys import KeyRegistry
from trucewatch.pipeline import CycleConfig, CycleContext, SensorInputs
from trucewatch.pipeline.stages import locate
from trucewatch.pipeline.worker import Worker, WorkerConfig
from trucewatch.storage import SqliteStore

ROOT = Path(__file__).resolve().parents[1]
COLS = ["id", "time_start", "lat", "lon", "attributes", "detection_ids", "window_us",
        "raw_sha256"]


def _iso(df: pl.DataFrame) -> bytes:
    return df.with_columns(pl.col("time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")) \
        .write_csv().encode()


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A small network's three hours, cut into two files in the middle of one explosion's
    arrivals (no weather file: every path uses the default propagation)."""
    data = generate(SensorScenario(n_stations=14, length_km=30, depth_km=20, duration_h=3,
                                   explosions_per_day=120, dropout_fraction=0.0,
                                   false_ratio=0.1, temperature_c=15, wind_east_m_s=0,
                                   wind_north_m_s=0, seed=5))
    root = tmp_path_factory.mktemp("split")
    det = data.detections.sort("time", "detection_id")
    owned = data.truth.join(det, on="detection_id").drop_nulls("event_id")
    spans = (owned.group_by("event_id").agg(pl.col("time").min().alias("a"),
                                            pl.col("time").max().alias("b"), pl.len())
             .filter(pl.col("len") >= 6).sort("a"))
    # late enough that the second file starts after the health check's first span
    # (HealthCheck.basis_s, 1 h): the step then resumes there
    later = spans.filter(pl.col("a") > det["time"].min() + pl.duration(minutes=70))  # type: ignore[operator]
    cut_event = later.row(later.height // 2, named=True)
    cut = cut_event["a"] + (cut_event["b"] - cut_event["a"]) / 2
    files = [root / "det-1.csv", root / "det-2.csv"]
    files[0].write_bytes(_iso(det.filter(pl.col("time") < cut)))
    files[1].write_bytes(_iso(det.filter(pl.col("time") >= cut)))
    stations = root / "stations.csv"
    data.stations.write_csv(stations)
    mine = set(owned.filter(pl.col("event_id") == cut_event["event_id"])["detection_id"]
               .to_list())
    return {"stations": stations, "files": files, "truth": mine,
            "ids": [set(pl.read_csv(f)["detection_id"].to_list()) for f in files]}


def _receive(store: SqliteStore, path: Path) -> None:
    from trucewatch.intake import receive
    from trucewatch.intake.sources import adapters

    source = "stations" if path.name == "stations.csv" else "detections"
    o = receive(store, path.read_bytes(), path.name, adapters(store)[source],
                policy=SourcePolicy.OPTIONAL)
    assert o.accepted, o.refused


def _events(store: SqliteStore) -> pl.DataFrame:
    return store.derived_events().select(COLS).sort("id")


def _batch_cycle(split: dict[str, object], scenario: ScenarioFiles, db: Path) -> SqliteStore:
    """The batch cycle's locate stage over both files at once."""
    files: list[Path] = split["files"]  # type: ignore[assignment]
    inputs = SensorInputs(split["stations"], files,  # type: ignore[arg-type]
                          policy=SourcePolicy.OPTIONAL)
    config = CycleConfig(agreement_path=scenario.agreement, firms_files=(),
                         out_dir=db.parent, sensors=inputs)
    ctx = CycleContext(config, SqliteStore(db), KeyRegistry.load(scenario.keys),
                       load_agreement(scenario.agreement))
    located = locate(ctx, inputs, None)
    assert located.figures is not None and located.figures.located > 0
    return ctx.store  # type: ignore[return-value]


def test_an_explosion_split_across_two_posts_is_located_once_as_the_batch_cycle_does(
        split: dict[str, object], scenario: ScenarioFiles, tmp_path: Path) -> None:
    files: list[Path] = split["files"]  # type: ignore[assignment]
    worker = Worker(WorkerConfig(tmp_path / "w.db", scenario.agreement))
    live = SqliteStore(tmp_path / "w.db")
    modes = []
    try:
        _receive(live, split["stations"])  # type: ignore[arg-type]
        for f in files:  # as two POSTs: stored as received, then a worker pass
            n = live.derived_events().height
            _receive(live, f)
            assert live.derived_events().height == n  # the intake located nothing
            r = worker.run_pass()
            modes.append(r.stats["sensor_stream"])
        assert modes == ["full", "resume"]  # the second pass slid the window, no more
        got = _events(live)
        assert not live.verify()
    finally:
        live.close()
    batch = _batch_cycle(split, scenario, tmp_path / "b.db")
    try:
        want = _events(batch)
        assert not batch.verify()
    finally:
        batch.close()
    assert got.height > 5 and got.equals(want)
    # the explosion cut in two is one event, defined by detections of both files: every
    # event holding one of its detections is that one
    truth: set[str] = split["truth"]  # type: ignore[assignment]
    holders = [set(json.loads(j)) for j in got["detection_ids"].to_list()
               if set(json.loads(j)) & truth]
    assert len(holders) == 1, holders
    first, second = split["ids"]  # type: ignore[misc]
    assert holders[0] & truth & first and holders[0] & truth & second
    assert len(holders[0] & truth) >= 0.8 * len(truth)

def test_derived_events_are_bound_in_the_log(split: dict[str, object],
                                             tmp_path: Path) -> None:
    from trucewatch.intake.sources import stored_stations
    from trucewatch.intake.stream import advance

    store = SqliteStore(tmp_path / "t.db")
    try:
        _receive(store, split["stations"])  # type: ignore[arg-type]
        for f in split["files"]:  # type: ignore[attr-defined]
            _receive(store, f)
        step = advance(store, stored_stations(store))
        assert step.mode == "full" and step.added
        assert not store.verify()
        again = advance(store, stored_stations(store))  # nothing new: nothing written
        assert again.mode == "none"
        one = sorted(step.added)[0]
        store.db.execute("UPDATE derived_events SET lat = lat + 0.01 WHERE id = ?", (one,))
        store.db.execute("DELETE FROM stream_inputs WHERE rowid = (SELECT min(rowid) FROM "
                         "stream_inputs)")
        store.db.commit()
        problems = store.verify()
    finally:
        store.close()
    assert any(f"derived_events row {one} differs" in p for p in problems), problems
    assert any("stream_inputs row" in p and "missing" in p for p in problems), problems


@pytest.mark.parametrize("backend", ["sqlite", "postgis"])
def test_box_near_and_time_queries_find_the_streams_events(
        split: dict[str, object], tmp_path: Path, backend: str,
        request: pytest.FixtureRequest) -> None:
    """A located explosion the stream derived (derived_events, not observations) is an
    observation to a box, a distance and a time query (GET /observations) and to the
    plain box query (observations_in_bbox): found where it is, not elsewhere, on both
    backends."""
    from datetime import datetime, timedelta

    from trucewatch.intake.sources import stored_stations
    from trucewatch.intake.stream import advance
    from trucewatch.model.enums import SourceKind
    from trucewatch.storage import open_store

    where = (str(tmp_path / "q.db") if backend == "sqlite"
             else request.getfixturevalue("pg_url"))
    store = open_store(where)
    try:
        _receive(store, split["stations"])  # type: ignore[arg-type]
        for f in split["files"]:  # type: ignore[attr-defined]
            _receive(store, f)
        advance(store, stored_stations(store))
        ev = store.derived_events().sort("id").row(0, named=True)
        lon, lat, at = float(ev["lon"]), float(ev["lat"]), datetime.fromisoformat(
            str(ev["time_start"]))

        def ids(**kw: object) -> set[str]:
            return set(store.observations_in(**kw)["id"].to_list())  # type: ignore[arg-type]

        assert ev["id"] in ids(box=(lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01))
        assert ev["id"] not in ids(box=(lon + 0.5, lat + 0.5, lon + 0.6, lat + 0.6))
        assert ev["id"] in ids(near=(lon, lat, 500.0))
        assert ev["id"] not in ids(near=(lon + 0.1, lat, 500.0))  # ~7 km east
        assert ev["id"] in ids(start=at - timedelta(minutes=1), end=at + timedelta(minutes=1),
                               kind=SourceKind(ev["source_kind"]))
        assert ev["id"] not in ids(end=at - timedelta(minutes=1))
        assert ev["id"] not in ids(kind=SourceKind.DRONE)
        # the plain box query (observations_in_bbox) sees them too
        assert ev["id"] in store.observations_in_bbox(lon - 0.01, lat - 0.01, lon + 0.01,
                                                      lat + 0.01)
        assert ev["id"] not in store.observations_in_bbox(lon + 0.5, lat + 0.5, lon + 0.6,
                                                          lat + 0.6)
    finally:
        store.close()


_KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import trucewatch.storage.database as database
    from trucewatch.pipeline.worker import Worker, WorkerConfig

    real = database.Database.log
    def log(self, actor, action, subject, details):
        if action == "stream_step":  # every row of the step written, not committed
            real(self, actor, action, subject, details)
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, actor, action, subject, details)
    database.Database.log = log
    Worker(WorkerConfig(sys.argv[1], Path(sys.argv[2]))).run_pass()
""")


def _worker(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          timeout=600, check=False)


def test_kill_9_of_a_worker_mid_step_loses_nothing_and_doubles_nothing(
        split: dict[str, object], scenario: ScenarioFiles, tmp_path: Path) -> None:
    files: list[Path] = split["files"]  # type: ignore[assignment]
    db = tmp_path / "k.db"
    store = SqliteStore(db)
    try:
        _receive(store, split["stations"])  # type: ignore[arg-type]
        _receive(store, files[0])
    finally:
        store.close()
    assert Worker(WorkerConfig(db, scenario.agreement)).run_pass().stats[
        "sensor_stream"] == "full"
    store = SqliteStore(db)
    try:
        _receive(store, files[1])  # pending when the worker dies
        before = _events(store)
    finally:
        store.close()
    died = _worker("-c", _KILLER, str(db), str(scenario.agreement))
    assert died.returncode == -signal.SIGKILL, died.stderr[-2000:]
    store = SqliteStore(db)
    try:  # nothing of the killed step is kept
        assert _events(store).equals(before)
        assert len(store.stream_inputs()) == 1
    finally:
        store.close()
    restarted = _worker("-m", "trucewatch", "worker", "--store", str(db), "--agreement",
                        str(scenario.agreement), "--once")
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    shutil.copy(db, tmp_path / "after.db")
    store = SqliteStore(tmp_path / "after.db")
    try:
        got = _events(store)
        taken = [r["batch_id"] for r in store.stream_inputs()]
        assert not store.verify()
    finally:
        store.close()
    assert len(taken) == len(set(taken)) == 2  # each file taken once
    batch = _batch_cycle(split, scenario, tmp_path / "b.db")
    try:
        assert got.equals(_events(batch))  # nothing lost, nothing doubled
    finally:
        batch.close()


@pytest.fixture(scope="module")
def flagged_split(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """An independent family's busy 1.5 h with a drifting clock (+2 s, +1 s/h) and a
    noisy station (400x its neighbours' false rate), cut into three files: the last two
    within the health check's second span (HealthCheck.basis_s, 1 h)."""
    from lab.families import Perturbation, family, generate, perturb

    base = generate(family("grid-uniform", "busy", seed=1, hours=1.5))
    p = perturb(base, Perturbation(drift_stations=1, drift_offset_s=2.0, drift_s_per_h=1.0,
                                   noisy_stations=1, noisy_factor=400.0))
    root = tmp_path_factory.mktemp("flagged")
    det = p.data.detections.sort("time", "detection_id")
    t0 = det["time"].min()
    files = []
    for k, (a, b) in enumerate([(0.0, 1.15), (1.15, 1.3), (1.3, 9.0)]):
        part = det.filter((pl.col("time") >= t0 + pl.duration(seconds=a * 3600))  # type: ignore[operator]
                          & (pl.col("time") < t0 + pl.duration(seconds=b * 3600)))  # type: ignore[operator]
        files.append(root / f"det-{k + 1}.csv")
        files[-1].write_bytes(_iso(part))
    stations = root / "stations.csv"
    p.data.stations.write_csv(stations)
    return {"stations": stations, "files": files, "drifted": p.drifted, "noisy": p.noisy,
            "propagation": p.data.scenario.propagation()}


def test_the_stream_equals_the_batch_cycle_when_stations_are_flagged(
        flagged_split: dict[str, object], tmp_path: Path) -> None:
    """A clock that drifts and a station at 400x the noise: the health check keeps their
    detections out. Step by step as the files come (the worker's steps) or all at once
    (the batch cycle's), the same detections are kept out and the same events found:
    the check decides each span on that span's own data (HealthCheck.basis_s)."""
    from trucewatch.intake.sources import stored_stations
    from trucewatch.intake.stream import advance
    from trucewatch.sensors.association import ExplosionAssociator
    from trucewatch.sensors.health import StationProblem

    assoc = ExplosionAssociator(propagation=flagged_split["propagation"])  # type: ignore[arg-type]
    files: list[Path] = flagged_split["files"]  # type: ignore[assignment]
    live = SqliteStore(tmp_path / "live.db")
    batch = SqliteStore(tmp_path / "batch.db")
    try:
        _receive(live, flagged_split["stations"])  # type: ignore[arg-type]
        steps = []
        for f in files:
            _receive(live, f)
            steps.append(advance(live, stored_stations(live), assoc))
        assert [s.mode for s in steps] == ["full", "resume", "resume"]
        _receive(batch, flagged_split["stations"])  # type: ignore[arg-type]
        for f in files:
            _receive(batch, f)
        whole = advance(batch, stored_stations(batch), assoc)
        assert whole.mode == "full" and whole.health is not None
        # the check did flag both bad stations, and kept their detections out
        (drifted,), (noisy,) = flagged_split["drifted"], flagged_split["noisy"]  # type: ignore[misc]
        found = {(f.station, f.problem) for f in whole.health.flags if f.quarantines}
        assert (drifted, StationProblem.CLOCK) in found, whole.health.lines()
        assert (noisy, StationProblem.NOISY) in found, whole.health.lines()
        got, want = _events(live), _events(batch)
        assert want.height > 10 and got.equals(want)
        # the same detections kept out, with the same reasons: a step decides anew
        # from where it resumes, and its decision stands until a later step resumes
        # before it
        at = {d: t for f in files for d, t in pl.read_csv(f, try_parse_dates=True).select(
            "detection_id", pl.col("time").dt.epoch("us")).iter_rows()}
        out: dict[str, str] = {}
        for s in steps:
            since = -1 if s.after_window_us is None else s.after_window_us + round(
                assoc.window_s * 1e6)
            out = {d: why for d, why in out.items() if at[d] < since}
            out.update(s.excluded)
        assert out == dict(whole.excluded)
        assert not live.verify() and not batch.verify()
    finally:
        live.close()
        batch.close()
