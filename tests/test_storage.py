from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from trucewatch.errors import SchemaVersionError, StorageError
from trucewatch.ingest.firms import parse_firms, read_firms
from trucewatch.model.enums import Status
from trucewatch.scenario import ScenarioFiles
from trucewatch.storage import SqliteStore

HEADER = b"latitude,longitude,acq_date,sensor_guess\n"


def test_same_file_twice_changes_nothing(tmp_path: Path, scenario: ScenarioFiles) -> None:
    store = SqliteStore(tmp_path / "s.db")
    first = store.ingest(read_firms(scenario.current[1]))
    before = store.counts()
    again = store.ingest(read_firms(scenario.current[1]))
    assert again.already_ingested and again.new == 0
    assert store.counts() == before
    assert first.quarantined == 3 and before["quarantine"] == 3


def test_overlapping_downloads_deduplicated(tmp_path: Path, scenario: ScenarioFiles) -> None:
    store = SqliteStore(tmp_path / "s.db")
    a = store.ingest(read_firms(scenario.current[0]))
    b = store.ingest(read_firms(scenario.current[1]))
    import json

    truth = json.loads(scenario.truth.read_text())
    assert b.duplicates == truth["overlap_duplicates"] > 0
    assert store.counts()["observations"] == a.new + b.new
    assert a.new + b.new + b.duplicates + b.quarantined == a.rows + b.rows


def test_raw_input_kept_verbatim(tmp_path: Path, scenario: ScenarioFiles) -> None:
    store = SqliteStore(tmp_path / "s.db")
    r = store.ingest(read_firms(scenario.current[1]))
    raw = scenario.current[1].read_bytes()
    assert store.raw_input(r.raw_sha256) == raw
    assert hashlib.sha256(raw).hexdigest() == r.raw_sha256


def test_crash_mid_batch_leaves_no_half_batch(tmp_path: Path, scenario: ScenarioFiles) -> None:
    path = tmp_path / "s.db"
    ok = SqliteStore(path)
    ok.ingest(read_firms(scenario.reference[0]))
    before = ok.counts()
    ok.close()
    crashing = SqliteStore(path, fail_after_rows=1)
    with pytest.raises(StorageError, match="simulated crash"):
        crashing.ingest(read_firms(scenario.reference[1]))
    crashing.close()
    assert SqliteStore(path).counts() == before  # nothing of the failed batch, nothing lost


def test_spatial_index(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.ingest(parse_firms(HEADER + b"48.1,37.1,2021-07-01,MODIS\n50.5,30.5,2021-07-01,MODIS\n",
                             "x.csv"))
    assert len(store.observations_in_bbox(37.0, 48.0, 37.2, 48.2)) == 1


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(SchemaVersionError, match="newer"):
        SqliteStore(path)


def test_status_change_is_checked_and_recorded(tmp_path: Path, scenario: ScenarioFiles) -> None:
    from trucewatch.errors import TransitionError
    from trucewatch.pipeline import run_cycle

    res = run_cycle(agreement_path=scenario.agreement,
                    firms_files=[*scenario.reference, *scenario.current],
                    reference_years=[2023, 2024, 2025], out_dir=tmp_path / "o", pdf=False)
    store = SqliteStore(res.store_path)
    inc = store.incidents()[0]
    store.set_status(inc.id, Status.PENDING_VERIFICATION, "analyst1", "checked imagery")
    store.set_status(inc.id, Status.VERIFIED, "reviewer2", "agreed")
    with pytest.raises(TransitionError, match="from verified to automatic"):
        store.set_status(inc.id, Status.AUTOMATIC, "a", "x")
    assert store.incidents(Status.VERIFIED)[0].id == inc.id
    # a re-run keeps the reviewed (here verified) incident and its status
    store.save_incidents(res.view.incidents, res.view.violations)
    assert store.incidents(Status.VERIFIED)[0].id == inc.id
