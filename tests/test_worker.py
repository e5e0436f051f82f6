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


@pytest.fixture(scope="module")
def batch_db(scenario: ScenarioFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The batch cycle on the scenario's inputs (no scripted review; the default acoustic
    model, as the route locates detections without the scenario's weather file)."""
    from trucewatch.pipeline import FieldInputs, SensorInputs, run_cycle
    from trucewatch.sensors.association import ExplosionAssociator

    assert scenario.stations and scenario.detections
    out = tmp_path_factory.mktemp("batch")
    run_cycle(agreement_path=scenario.agreement,
              firms_files=[*scenario.reference, *scenario.current],
              reference_years=[2023, 2024, 2025], out_dir=out,
              cloud_path=scenario.coverage, pdf=False,
              sensors=SensorInputs(scenario.stations, [scenario.detections],
                                   associator=ExplosionAssociator()),
              field_inputs=FieldInputs(scenario.drones, scenario.allegations, scenario.keys))
    return out / "trucewatch.db"


def _equals_batch(db: Path, batch_db: Path) -> None:
    live, batch = SqliteStore(db), SqliteStore(batch_db)
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


def test_worker_equals_the_batch_cycle(fed: tuple[Path, list[Item]], scenario: ScenarioFiles,
                                       batch_db: Path, tmp_path: Path) -> None:
    """The worker on the stream makes the incidents the batch cycle makes of the same
    inputs (the worker given the cloud record the batch run reads)."""
    early, items = fed
    db = _copy(early, tmp_path / "live.db")
    feed(db, scenario.root, scenario.keys, items[_split(items):])
    cfg = WorkerConfig(db, scenario.agreement, cloud=scenario.coverage)
    first = Worker(cfg).run_pass()
    assert first.ran and first.incidents > 0 and first.baseline_version == 1
    assert first.stats["mode"] == "full"  # a new process has no state: a full pass
    again = Worker(cfg).run_pass()
    assert not again.ran and again.watermark == first.watermark  # nothing new: no pass
    _equals_batch(db, batch_db)
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


# ----------------------------------------------------------------- incremental passes
LATE_DAY = "@2026-05-03"  # a day of a satellite incident, with later incidents beyond it


def _late_split(items: list[Item]) -> tuple[list[Item], Item]:
    late = [i for i in items if i.source == "firms" and LATE_DAY in i.name]
    assert len(late) == 1, f"the built-in scenario has no FIRMS file of {LATE_DAY}"
    return [i for i in items if i is not late[0]], late[0]


@pytest.fixture(scope="module")
def all_but_late(scenario: ScenarioFiles, tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[Path, Item]:
    """A store holding the whole stream but one FIRMS day, which arrives late."""
    rest, late = _late_split(plan(scenario.root))
    db = tmp_path_factory.mktemp("late") / "s.db"
    feed(db, scenario.root, scenario.keys, rest)
    return db, late


def _versions(store: SqliteStore) -> dict[str, tuple[str, list[tuple[int, str]]]]:
    """Each stored incident's document and its versions (number, action)."""
    from trucewatch.model.serialization import to_json

    return {i.id: (to_json(i), [(int(h["version"]), str(h["action"]))
                                for h in store.incident_history(i.id)])
            for i in store.incidents()}


def _day_in(day: str, windows: list[list[str]]) -> bool:
    return any(a <= day <= b for a, b in windows)


def test_incremental_pass_after_a_late_batch_touches_only_its_window(
        all_but_late: tuple[Path, Item], scenario: ScenarioFiles, tmp_path: Path) -> None:
    """One FIRMS day arrives after everything else: the next pass is incremental. It
    classifies only the rows the new ones can reach, fuses only the time windows holding
    a changed observation, and every stored incident outside those windows keeps its
    stored document and versions; the result is a full pass's, ids included."""
    base, late = all_but_late
    db = _copy(base, tmp_path / "s.db")
    w = Worker(WorkerConfig(db, scenario.agreement, cloud=scenario.coverage))
    first = w.run_pass()
    assert first.ran and first.stats["mode"] == "full"
    store = SqliteStore(db)
    before = _versions(store)
    store.close()
    feed(db, scenario.root, scenario.keys, [late])
    second = w.run_pass()
    st = second.stats
    assert second.ran and st["mode"] == "incremental", st
    assert st["new_fire_rows"] > 0
    assert 0 < st["rows_classified"] < first.stats["rows_classified"]  # not every row
    assert 0 < st["evidence_fused"] < first.stats["evidence_fused"]  # not every window
    assert 0 < st["incidents_recomputed"] < first.stats["incidents_recomputed"]
    windows = st["windows"]
    assert windows and all(a <= b for a, b in windows)
    store = SqliteStore(db)
    try:
        after = _versions(store)
        days = {i.id: i.time_start.date().isoformat() for i in store.incidents()}
        changed = {k for k in after if before.get(k) != after[k]}
        assert changed, "the late day changed no incident: the test shows nothing"
        for k in changed:  # what changed lies in a recomputed window
            assert _day_in(days[k], windows), (days[k], windows)
        outside = [k for k in after if not _day_in(days[k], windows)]
        assert outside, "every incident is inside the windows: the test shows nothing"
        for k in outside:  # untouched: the same document and versions as stored before
            assert after[k] == before[k]
        _no_duplicates(store)
    finally:
        store.close()
    # the same as a full pass over the same store (which equals the batch cycle)
    ref = _copy(db, tmp_path / "ref" / "s.db")
    for ext in (".baseline.npz", ".baseline.json"):
        shutil.copy(str(db) + ext, str(ref) + ext)
    whole = Worker(WorkerConfig(ref, scenario.agreement, cloud=scenario.coverage)
                   ).run_pass(force=True)
    assert whole.stats["mode"] == "full" and whole.incidents == second.incidents
    assert _nothing_to_change(whole.stats["saved"]), whole.stats["saved"]
    inc, full = SqliteStore(db), SqliteStore(ref)
    try:
        assert _with_ids(inc) == _with_ids(full)
    finally:
        inc.close()
        full.close()


def _nothing_to_change(saved: dict[str, int]) -> bool:
    """A full pass over an incremental pass's result stores nothing new, revises no
    incident's document and removes none."""
    return (saved.get("new_incidents", 0), saved.get("revised", 0),
            saved.get("removed", 0)) == (0, 0, 0)


def _full_pass_changes_nothing(db: Path, agreement: Path, cloud: Path | None,
                               tmp_path: Path) -> None:
    ref = _copy(db, tmp_path / "ref" / db.name)
    for ext in (".baseline.npz", ".baseline.json"):
        shutil.copy(str(db) + ext, str(ref) + ext)
    whole = Worker(WorkerConfig(ref, agreement, cloud=cloud)).run_pass(force=True)
    assert whole.stats["mode"] == "full"
    assert _nothing_to_change(whole.stats["saved"]), whole.stats["saved"]


def _with_ids(store: SqliteStore) -> list[tuple[str, str, str, tuple[str, ...], str]]:
    return sorted((i.id, i.category.value, i.time_start.isoformat(),
                   tuple(i.observation_ids), i.status.value) for i in store.incidents())


def _crossing_order(items: list[Item]) -> list[Item]:
    """The stream in an order that crosses day boundaries and holds late data: the
    reference years first; the monitored FIRMS days two by two in reverse (a day before
    the one it follows); every seventh day held back until after the sensor inputs,
    drone reports and allegations; the station inventory and detections halfway."""
    firms = [i for i in items if i.source == "firms"]
    ref, days = firms[:3], firms[3:]
    others = [i for i in items if i.source != "firms"]
    sensors = [i for i in others if i.source in ("stations", "detections")]
    field_ = [i for i in others if i not in sensors]
    held = days[3::7]
    now = [d for d in days if d not in held]
    swapped = [x for k in range(0, len(now), 2) for x in reversed(now[k:k + 2])]
    half = len(swapped) // 2
    return [*ref, *swapped[:half], *sensors, *swapped[half:], *field_, *reversed(held)]


def test_incremental_passes_on_a_stream_that_crosses_days_equal_the_batch_cycle(
        scenario: ScenarioFiles, batch_db: Path, tmp_path: Path) -> None:
    """One worker process, a pass after every few submissions, the stream out of order
    (days swapped, late days at the end): its passes after the first are incremental,
    and the final state is the batch cycle's on the same inputs."""
    items = plan(scenario.root)
    order = _crossing_order(items)
    assert sorted(i.name for i in order) == sorted(i.name for i in items)
    db = tmp_path / "s.db"
    w = Worker(WorkerConfig(db, scenario.agreement, cloud=scenario.coverage))
    modes: list[str] = []
    for k in range(0, len(order), 6):
        feed(db, scenario.root, scenario.keys, order[k:k + 6])
        r = w.run_pass()
        if r.ran:
            modes.append(str(r.stats["mode"]))
    assert modes[0] == "full" and modes.count("incremental") >= len(modes) - 2, modes
    _equals_batch(db, batch_db)
    # and every stored document is the one a full pass writes (words, figures, ids)
    _full_pass_changes_nothing(db, scenario.agreement, scenario.coverage, tmp_path)


def test_a_refit_forces_a_full_pass(all_but_late: tuple[Path, Item], scenario: ScenarioFiles,
                                    tmp_path: Path) -> None:
    """With the state of an incremental pass at hand, a refit still recomputes the whole
    period (the classes of old rows depend on the baseline), with a new baseline version;
    so does a restarted worker (it has no state); the result does not change."""
    base, late = all_but_late
    db = _copy(base, tmp_path / "s.db")
    cfg = WorkerConfig(db, scenario.agreement, cloud=scenario.coverage)
    w = Worker(cfg)
    assert w.run_pass().stats["mode"] == "full"
    feed(db, scenario.root, scenario.keys, [late])
    inc = w.run_pass()
    assert inc.stats["mode"] == "incremental"
    store = SqliteStore(db)
    want = _content(store)
    store.close()
    refit = w.run_pass(refit=True)
    assert refit.ran and refit.stats["mode"] == "full"
    assert refit.baseline_version == inc.baseline_version + 1
    assert "refit" in refit.stats["why_full"]
    assert refit.stats["rows_classified"] > inc.stats["rows_classified"]
    restarted = Worker(cfg).run_pass(force=True)
    assert restarted.stats["mode"] == "full" and "first pass" in restarted.stats["why_full"]
    store = SqliteStore(db)
    try:
        assert _content(store) == want  # the same inputs and reference: the same result
        _no_duplicates(store)
    finally:
        store.close()
