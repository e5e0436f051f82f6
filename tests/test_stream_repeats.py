"""A detection id received again in a later file (intake/stream.py, "Repeats"): the first
copy stands. Sent again with a changed time (or station or phase) it is a conflict: it is
never associated a second time, the step's log entry names it with both copies, and the
file that carried it is kept verbatim. The worker's steps, file by file, and the batch
cycle's one step over every file give the same events."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from trucewatch.demo.sensors import SensorScenario, generate
from trucewatch.intake.sources import stored_stations
from trucewatch.intake.stream import advance
from trucewatch.integrity.envelope import SourcePolicy
from trucewatch.model.enums import SourceName
from trucewatch.storage import SqliteStore

COLS = ["id", "time_start", "lat", "lon", "attributes", "detection_ids", "window_us"]


def _iso(df: pl.DataFrame) -> bytes:
    return df.with_columns(pl.col("time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")) \
        .select("detection_id", "station", "time", "phase").write_csv().encode()


@pytest.fixture(scope="module")
def resent(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two hours of a small network in two files, cut an hour in; the second file also
    carries every detection of the largest explosion of the first file (half an hour
    before the cut, beyond the sliding window's reach) again, under the same ids, with
    times moved to a quiet stretch after the cut (where the copies alone make an
    explosion)."""
    data = generate(SensorScenario(n_stations=14, length_km=30, depth_km=20, duration_h=2,
                                   explosions_per_day=120, dropout_fraction=0.0,
                                   false_ratio=0.1, temperature_c=15, wind_east_m_s=0,
                                   wind_north_m_s=0, seed=3))
    det = data.detections.sort("time", "detection_id")
    owned = data.truth.join(det, on="detection_id").drop_nulls("event_id")
    cut = det["time"].min() + timedelta(minutes=60)  # type: ignore[operator]
    events = (owned.group_by("event_id").agg(pl.col("time").min().alias("a"),
                                             pl.col("time").max().alias("b"), pl.len())
              .filter(pl.col("b") < cut - timedelta(minutes=30))
              .sort("len", "event_id", descending=[True, False]))
    ev = events.row(0, named=True)
    assert ev["len"] >= 8
    shift = max(cut, owned["time"].max()) + timedelta(minutes=15) - ev["a"]  # type: ignore[operator,type-var]
    ids = owned.filter(pl.col("event_id") == ev["event_id"])["detection_id"].to_list()
    again = det.filter(pl.col("detection_id").is_in(ids)).with_columns(
        pl.col("time") + shift)
    assert again["time"].max() < det["time"].max()  # type: ignore[operator]
    root = tmp_path_factory.mktemp("resent")
    files = [root / "det-1.csv", root / "det-2.csv"]
    files[0].write_bytes(_iso(det.filter(pl.col("time") < cut)))
    files[1].write_bytes(_iso(pl.concat([det.filter(pl.col("time") >= cut), again])
                              .sort("time", "detection_id")))
    stations = root / "stations.csv"
    data.stations.write_csv(stations)
    return {"stations": stations, "files": files, "resent": set(ids)}


def _receive(store: SqliteStore, path: Path) -> None:
    from trucewatch.intake import receive
    from trucewatch.intake.sources import adapters

    source = "stations" if path.name == "stations.csv" else "detections"
    o = receive(store, path.read_bytes(), path.name, adapters(store)[source],
                policy=SourcePolicy.OPTIONAL)
    assert o.accepted, o.refused


def _owners(store: SqliteStore) -> dict[str, int]:
    out: dict[str, int] = {}
    for js in store.derived_events()["detection_ids"].to_list():
        for d in json.loads(js):
            out[d] = out.get(d, 0) + 1
    return out


def test_a_detection_resent_with_a_changed_time_is_a_conflict_never_counted_twice(
        resent: dict[str, object], tmp_path: Path) -> None:
    files: list[Path] = resent["files"]  # type: ignore[assignment]
    ids: set[str] = resent["resent"]  # type: ignore[assignment]
    live = SqliteStore(tmp_path / "live.db")  # the worker: a step per file
    try:
        _receive(live, resent["stations"])  # type: ignore[arg-type]
        steps = []
        for f in files:
            _receive(live, f)
            steps.append(advance(live, stored_stations(live)))
        assert [s.mode for s in steps] == ["full", "resume"]
        owners = _owners(live)
        # the first copies made their explosion; the resent ones made none
        assert ids <= set(owners) and all(owners[d] == 1 for d in ids)
        assert max(owners.values()) == 1
        conflicts = dict(steps[1].conflicts)
        assert set(conflicts) == ids and steps[0].conflicts == []
        one = sorted(ids)[0]
        why = conflicts[one]
        assert "first received in det-1.csv" in why and "det-2.csv" in why, why
        assert "a conflict: the first copy stands" in why, why
        # the step's log entry names them (bound in the chain)
        entry = live.last_record("stream", "stream_step")
        assert entry is not None and entry["conflicts_total"] == len(ids)
        assert {c[0] for c in entry["conflicts"]} == ids
        # the file that carried them is kept as received
        b2 = [b for b in live.inputs(SourceName.DETECTIONS) if b["name"] == "det-2.csv"]
        assert b2 and b2[0]["raw_sha256"] == hashlib.sha256(files[1].read_bytes()).hexdigest()
        got = live.derived_events().select(COLS).sort("id")
        assert not live.verify()
    finally:
        live.close()
    batch = SqliteStore(tmp_path / "batch.db")  # the batch cycle: one step over both files
    try:
        _receive(batch, resent["stations"])  # type: ignore[arg-type]
        for f in files:
            _receive(batch, f)
        step = advance(batch, stored_stations(batch))
        assert step.mode == "full" and {d for d, _ in step.conflicts} == ids
        want = batch.derived_events().select(COLS).sort("id")
    finally:
        batch.close()
    assert got.height > 3 and got.equals(want)


def test_a_detection_sent_again_unchanged_is_counted_once_and_is_no_conflict(
        resent: dict[str, object], tmp_path: Path) -> None:
    """The same file posted twice under another name (every row the same): nothing new,
    no conflict, the events unchanged."""
    files: list[Path] = resent["files"]  # type: ignore[assignment]
    store = SqliteStore(tmp_path / "s.db")
    try:
        _receive(store, resent["stations"])  # type: ignore[arg-type]
        _receive(store, files[0])
        advance(store, stored_stations(store))
        before = store.derived_events().select(COLS).sort("id")
        copy = tmp_path / "det-1-again.csv"
        copy.write_bytes(files[0].read_bytes() + b"\n")  # another file, the same rows
        _receive(store, copy)
        step = advance(store, stored_stations(store))
        assert step.conflicts == [] and step.resent > 0
        assert store.derived_events().select(COLS).sort("id").equals(before)
        assert max(_owners(store).values()) == 1
    finally:
        store.close()


BEFORE_0010 = "8656730"  # the last commit whose stream kept no first copies (revision 0009)
_OLD_STEP = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from trucewatch.intake import receive
from trucewatch.intake.sources import adapters, stored_stations
from trucewatch.intake.stream import advance
from trucewatch.integrity.envelope import SourcePolicy
from trucewatch.storage import open_store
store = open_store(sys.argv[2])
for f in sys.argv[3:]:
    kind = "stations" if f.endswith("stations.csv") else "detections"
    assert receive(store, Path(f).read_bytes(), Path(f).name, adapters(store)[kind],
                   policy=SourcePolicy.OPTIONAL).accepted
step = advance(store, stored_stations(store))
print(json.dumps({"mode": step.mode, "revision": store.schema_revision()}))
store.close()
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgis"])
def test_a_stream_of_revision_0009_is_recomputed_once_and_keeps_its_first_copies(
        resent: dict[str, object], tmp_path: Path, backend: str,
        request: pytest.FixtureRequest) -> None:
    """The old code (git history) takes the first file into its stream, without first
    copies; the new code migrates the store (0010), and its next step, which has none
    to compare the second file with, recomputes the whole stream once: the resent
    copies are conflicts, the events equal a new store's, and verify holds."""
    import subprocess
    import sys
    import tarfile
    from io import BytesIO

    from trucewatch.storage import migrations, open_store

    root = Path(__file__).resolve().parents[1]
    try:
        tar = subprocess.run(["git", "-C", str(root), "archive", BEFORE_0010, "src"],
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"git history with commit {BEFORE_0010} is not available ({err})")
    old = tmp_path / "old"
    with tarfile.open(fileobj=BytesIO(tar)) as t:
        t.extractall(old, filter="data")
    where = (str(tmp_path / "old.db") if backend == "sqlite"
             else str(request.getfixturevalue("pg_url")))
    files: list[Path] = resent["files"]  # type: ignore[assignment]
    done = subprocess.run([sys.executable, "-c", _OLD_STEP, str(old / "src"), where,
                           str(resent["stations"]), str(files[0])],
                          capture_output=True, text=True, timeout=600,
                          env=os.environ | {"PYTHONPATH": str(old / "src")})
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"mode": "full",
                                                                "revision": "0009"}
    store = open_store(where)
    try:
        assert store.schema_revision() == migrations.head() == "0010"
        assert store.verify() == [] and store.stream_detections("inventory").is_empty()
        _receive(store, files[1])  # type: ignore[arg-type]
        step = advance(store, stored_stations(store))
        assert step.mode == "full" and "revision 0010" in step.why
        assert {d for d, _ in step.conflicts} == resent["resent"]
        assert store.stream_detections("inventory").height > 0
        assert store.verify() == []
        assert max(_owners(store).values()) == 1  # type: ignore[arg-type]
        got = store.derived_events().select(COLS).sort("id")
    finally:
        store.close()
    fresh = SqliteStore(tmp_path / "fresh.db")
    try:
        _receive(fresh, resent["stations"])  # type: ignore[arg-type]
        for f in files:
            _receive(fresh, f)
        advance(fresh, stored_stations(fresh))
        want = fresh.derived_events().select(COLS).sort("id")
    finally:
        fresh.close()
    assert got.equals(want)


def test_no_detection_left_gives_no_conflict() -> None:
    """A step whose files leave no detection (all quarantined at intake, as fabricated
    sensor data are) has no repeats and no conflicts; the empty case once lacked the
    repeats' time column and failed the whole cycle (found by tests/test_intake.py)."""
    from trucewatch.intake.stream import _conflicts, _first_copies
    from trucewatch.storage.repositories.stream import FIRST_SCHEMA
    empty = pl.DataFrame(schema={"row": pl.Int64, "detection_id": pl.String,
                                 "station": pl.String,
                                 "time": pl.Datetime("us", "UTC"), "phase": pl.String,
                                 "batch_id": pl.String})
    kept, fresh, repeats = _first_copies(empty, pl.DataFrame(schema=FIRST_SCHEMA))
    assert kept.is_empty() and fresh.is_empty() and repeats.is_empty()
    assert _conflicts(repeats, {}) == []
