"""The processing worker (issue 13 items 1-3): on a stream of the built-in scenario's
inputs, received through the intake as the ingest route receives them
(:mod:`lab.stream`), it makes the batch cycle's incidents; re-fused incidents keep their
identity and review state; killed with SIGKILL mid-stream and restarted, it ends in the
same state with nothing duplicated."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from lab.stream import feed
from trucewatch.demo import ScenarioFiles
from trucewatch.model.enums import Status
from trucewatch.pipeline.worker import Worker, WorkerConfig
from trucewatch.replay import Item, plan
from trucewatch.storage import SqliteStore

ROOT = Path(__file__).resolve().parents[1]


def _split(items: list[Item]) -> int:
    """Where the drone reports and allegations begin (after the sensor inputs)."""
    return next(k for k, i in enumerate(items) if i.source == "detections") + 1


@pytest.fixture(scope="module")
def fed(scenario: ScenarioFiles, tmp_path_factory: pytest.TempPathFactory
        ) -> tuple[Path, list[Item]]:
    """A store holding the stream up to the sensor inputs (FIRMS, stations, detections):
    the later drone reports and allegations change the fusion of some incidents."""
    items = plan(scenario.root)
    db = tmp_path_factory.mktemp("fed") / "early.db"
    feed(db, scenario.root, scenario.keys, items[:_split(items)])
    return db, items


def _copy(db: Path, to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(db, to)
    return to


def _content(store: SqliteStore) -> list[tuple[str, str, tuple[str, ...], str]]:
    return sorted((i.category.value, i.time_start.isoformat(), tuple(i.observation_ids),
                   i.status.value) for i in store.incidents())


def _no_duplicates(store: SqliteStore) -> None:
    owners = Counter(o for i in store.incidents() for o in i.observation_ids)
    assert [o for o, n in owners.items() if n > 1] == []
    vids = [v.id for v in store.violations()]
    assert len(vids) == len(set(vids))
    assert store.verify() == []


def test_worker_equals_the_batch_cycle(fed: tuple[Path, list[Item]], scenario: ScenarioFiles,
                                       tmp_path: Path) -> None:
    """The worker on the stream makes the incidents the batch cycle makes of the same
    inputs (no scripted review; the default acoustic model, as the route locates
    detections without the scenario's weather file; the worker given the cloud record
    the batch run reads)."""
    from trucewatch.pipeline import FieldInputs, SensorInputs, run_cycle
    from trucewatch.sensors.association import ExplosionAssociator

    early, items = fed
    db = _copy(early, tmp_path / "live.db")
    feed(db, scenario.root, scenario.keys, items[_split(items):])
    cfg = WorkerConfig(db, scenario.agreement, cloud=scenario.coverage)
    first = Worker(cfg).run_pass()
    assert first.ran and first.incidents > 0 and first.baseline_version == 1
    again = Worker(cfg).run_pass()
    assert not again.ran and again.watermark == first.watermark  # nothing new: no pass
    assert scenario.stations and scenario.detections
    run_cycle(agreement_path=scenario.agreement,
              firms_files=[*scenario.reference, *scenario.current],
              reference_years=[2023, 2024, 2025], out_dir=tmp_path / "batch",
              cloud_path=scenario.coverage, pdf=False,
              sensors=SensorInputs(scenario.stations, [scenario.detections],
                                   associator=ExplosionAssociator()),
              field_inputs=FieldInputs(scenario.drones, scenario.allegations, scenario.keys))
    live, batch = SqliteStore(db), SqliteStore(tmp_path / "batch" / "trucewatch.db")
    try:
        assert _content(live) == _content(batch)
        assert sorted(v.rule for v in live.violations()) == sorted(
            v.rule for v in batch.violations())
        assert sorted((r["allegation_id"], r["ruling"]) for r in live.rulings()) == sorted(
            (r["allegation_id"], r["ruling"]) for r in batch.rulings())
        _no_duplicates(live)
    finally:
        live.close()
        batch.close()
    # the artifact is kept and versioned beside the store, refitted only on request
    meta = (tmp_path / "live.db.baseline.json").read_text(encoding="utf-8")
    assert '"version": 1' in meta
    refit = Worker(cfg).run_pass(refit=True)
    assert refit.ran and refit.baseline_version == 2


def test_reviewed_incident_keeps_identity_when_refused(fed: tuple[Path, list[Item]],
                                                       scenario: ScenarioFiles,
                                                       tmp_path: Path) -> None:
    """Review the incidents of the early stream, feed the drone reports and allegations
    that re-fuse some of them: each reviewed incident is still one incident, under its
    id, with its review state and history, and the new fusion is recorded in it; an
    automatic incident that grew keeps its id."""
    from trucewatch.review.workflow import ReviewService

    early, items = fed
    db = _copy(early, tmp_path / "s.db")
    w = Worker(WorkerConfig(db, scenario.agreement))
    assert w.run_pass().ran
    store = SqliteStore(db)
    before = {i.id: i for i in store.incidents()}
    assert before
    svc = ReviewService(store)
    anna = store.add_principal("anna", "analyst", actor="test")
    reviewed = sorted(before)[: max(1, len(before) // 2)]
    for iid in reviewed:
        svc.claim(iid, anna)
        svc.decide(iid, anna, Status.PENDING_VERIFICATION, "checking the frames")
    store.close()
    feed(db, scenario.root, scenario.keys, items[_split(items):])
    assert w.run_pass().ran
    store = SqliteStore(db)
    try:
        after = {i.id: i for i in store.incidents()}
        for iid in reviewed:
            assert after[iid].status == Status.PENDING_VERIFICATION
            actions = [h["action"] for h in store.incident_history(iid)]
            assert actions[:2] == ["created", "decide:pending_verification"]
        revised = [iid for iid in reviewed if "latest_fusion" in after[iid].attributes]
        grown = [i for i in after.values() if i.status == Status.AUTOMATIC
                 and any(set(b.observation_ids) < set(i.observation_ids)
                         for b in before.values())]
        assert revised or grown  # the later data changed some fusion
        for i in grown:  # grew from an earlier incident: kept one of their ids
            assert i.id in before
        for iid in revised:  # the new fusion is recorded, no incident beside it
            for f in after[iid].attributes["latest_fusion"]:
                assert set(f["observation_ids"]) & set(after[iid].observation_ids)
        _no_duplicates(store)
        # a pass with nothing new changes nothing
        assert not w.run_pass().ran
    finally:
        store.close()


def test_sigkill_mid_stream_ends_in_the_same_state(fed: tuple[Path, list[Item]],
                                                   scenario: ScenarioFiles,
                                                   tmp_path: Path) -> None:
    """`trucewatch worker` killed with SIGKILL during the stream, three times (during
    passes), restarted each time: the final state is the uninterrupted one's, with
    nothing lost or duplicated."""
    early, items = fed
    ref = _copy(early, tmp_path / "ref" / "s.db")
    feed(ref, scenario.root, scenario.keys, items[_split(items):])
    assert Worker(WorkerConfig(ref, scenario.agreement)).run_pass().ran
    db = _copy(early, tmp_path / "killed" / "s.db")
    env = os.environ | {"PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'benchmarks'}"}
    cmd = [sys.executable, "-m", "trucewatch", "worker", "--store", str(db), "--agreement",
           str(scenario.agreement), "--interval", "0.2"]
    rest = items[_split(items):]
    kills = 0
    for k, chunk in enumerate((rest[:2], rest[2:4], rest[4:])):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            feed(db, scenario.root, scenario.keys, chunk)
            time.sleep(4.0 + 2 * k)  # started (imports) and a pass under way (seconds)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            kills += 1
    assert kills == 3
    done = subprocess.run([*cmd, "--once"], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    live, want = SqliteStore(db), SqliteStore(ref)
    try:
        assert _content(live) == _content(want)
        assert sorted((r["allegation_id"], r["ruling"]) for r in live.rulings()) == sorted(
            (r["allegation_id"], r["ruling"]) for r in want.rulings())
        assert Worker.watermark(live) == live.batch_count() == want.batch_count()
        _no_duplicates(live)
    finally:
        live.close()
        want.close()
