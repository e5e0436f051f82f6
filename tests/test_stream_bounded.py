"""What a pass keeps and reads stays bounded by the algorithms' reach, not by the
stream's length (issue 13, sustained stream): the sensor stream's step reads back only
the detections from its resume window on, and the worker fuses again only the incidents
a changed observation can join or split. Counted, not timed."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trucewatch.demo.sensors import SensorScenario, generate
from trucewatch.fusion.incidents import EVIDENCE_SCHEMA, IncidentFuser
from trucewatch.intake import receive
from trucewatch.intake.sources import adapters, stored_stations
from trucewatch.intake.stream import advance
from trucewatch.integrity.envelope import SourcePolicy
from trucewatch.model.enums import ObservedClass, SourceKind
from trucewatch.sensors.association import ExplosionAssociator, Network
from trucewatch.sensors.health import HealthCheck
from trucewatch.storage import SqliteStore


def _put(store: SqliteStore, body: bytes, name: str, source: str) -> None:
    o = receive(store, body, name, adapters(store)[source], policy=SourcePolicy.OPTIONAL)
    assert o.accepted, o.refused


@pytest.mark.parametrize("checked", [False, True], ids=["no-check", "health-check"])
def test_each_step_reads_back_only_the_detections_from_its_resume_window_on(
        tmp_path: Path, checked: bool) -> None:
    """Five hours of a sparse network in 30 files of 10 min, a step after each: three
    hours of noise only (no explosion), then a few explosions. Every step after the
    first windows resumes, and the detections it reads back never exceed those from
    ``window + reach`` before the new ones, however many files came before. (Resuming
    once needed a stored event before the new detections: a network that heard only
    noise re-associated its whole stream at every step, the count read growing with
    the stream.)

    With the station-health check on, a step re-opens the whole span of the check
    (``HealthCheck.basis_s``) holding its resume window, so that the check decides each
    span on the same data in the worker and in the batch cycle: the bound then grows by
    one span, and still not with the stream."""
    check = HealthCheck(enabled=checked)
    data = generate(SensorScenario(n_stations=14, length_km=30, depth_km=20, duration_h=5,
                                   explosions_per_day=60, rounds_per_barrage=1,
                                   dropout_fraction=0.0, false_ratio=1.0, seed=5))
    # the first three hours hear only noise (false detections): no event to resume after
    noise = set(data.truth.filter(pl.col("event_id").is_null())["detection_id"].to_list())
    t_quiet = data.detections["time"].min() + timedelta(hours=3)  # type: ignore[operator]
    det = data.detections.filter((pl.col("time") >= t_quiet)
                                 | pl.col("detection_id").is_in(list(noise))
                                 ).sort("time", "detection_id")
    store = SqliteStore(tmp_path / "s.db")
    cfg = ExplosionAssociator()
    try:
        _put(store, data.stations.write_csv().encode(), "stations.csv", "stations")
        stations = stored_stations(store)
        reach_us = math.ceil(cfg.reach_s(Network.from_table(stations)) * 1e6)
        window_us = round(cfg.window_s * 1e6)
        us = det["time"].dt.epoch("us")
        epoch = int(us.min())  # type: ignore[arg-type]
        edges = pl.datetime_range(det["time"].min(), det["time"].max(),  # type: ignore[arg-type]
                                  "10m", eager=True, time_zone="UTC").to_list()
        steps = []
        for k, t in enumerate(edges):
            part = det.filter((pl.col("time") >= t) & (pl.col("time") < t + (edges[1] - edges[0])))
            if part.is_empty():
                continue
            body = part.with_columns(pl.col("time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))
            _put(store, body.write_csv().encode(), f"det-{k:03d}.csv", "detections")
            step = advance(store, stations, cfg, health=check)
            log = store.last_record("stream", "stream_step")
            assert log is not None
            t_new = int(part["time"].dt.epoch("us").min())  # type: ignore[arg-type]
            span_us = round(check.basis_s * 1e6) if checked else 0
            bound = int((us >= t_new - window_us - reach_us - span_us).sum())
            # (what it re-associated, what it read back, the bound)
            steps.append((step.mode, t_new - epoch, step.records.height, log.get("read"),
                          bound))
        stored = store.derived_events().height
    finally:
        store.close()
    assert len(steps) >= 25 and stored >= 3, (len(steps), stored)
    later = [s for s in steps if s[1] > 2 * window_us + reach_us]
    assert len(later) >= 20
    assert all(mode == "resume" for mode, *_ in later), [s[0] for s in later]
    for _, _, redone, read, bound in later:
        assert redone <= bound, (redone, bound)
        assert read is not None and redone <= read <= bound, (redone, read, bound)
    # the count read does not grow with the stream: the last steps read a small part
    # of what was stored before them (with the check, a part of the 5 h that holds one
    # span of 1 h and the reach)
    part = 2 if checked else 5
    assert max(s[3] or 0 for s in later[-5:]) < det.height / part, (later[-5:], det.height)


def _evidence(n: int, rng: np.random.Generator, start: float = 1.78e9) -> pl.DataFrame:
    """``n`` explosions one every 5 min (no 30 min pause: one time window for the old
    split), scattered over 30 x 30 km, so that only nearby ones fuse."""
    t = start + 300.0 * np.arange(n)
    return pl.DataFrame({
        "id": [f"x{k:04d}" for k in range(n)], "source_kind": SourceKind.SENSOR_NETWORK.value,
        "source_id": "net", "t_start": t, "t_end": t, "seen_start": t, "seen_end": t,
        "latitude": 48.4 + rng.uniform(0, 0.27, n), "longitude": 37.8 + rng.uniform(0, 0.4, n),
        "sigma_m": 300.0, "klass": ObservedClass.EXPLOSION.value, "reliability": 1.0,
        "weapon_class": None, "count": 1, "unconfirmed": False}).cast(
        EVIDENCE_SCHEMA)  # type: ignore[arg-type]


def _sets(fused: pl.DataFrame) -> set[frozenset[str]]:
    return {frozenset(x) for x in fused["observation_ids"].to_list()}


def test_only_the_incidents_a_change_can_join_or_split_are_fused_again() -> None:
    """A day of a continuous barrage: some explosions move, some go, some arrive. The
    incidents of the last pass that no changed one can join, with the fusion of what
    ``_affected`` selects, are exactly the fusion of everything; and what it selects
    is a small part of the day."""
    from trucewatch.pipeline.worker import _affected

    fuser = IncidentFuser()
    rng = np.random.default_rng(7)
    before = _evidence(300, rng)
    fused_before, _ = fuser.fuse(before)
    moved = ["x0040", "x0150", "x0290"]
    gone = ["x0100", "x0200"]
    arrived = _evidence(3, rng, start=1.78e9 + 300.0 * 120 + 7).with_columns(
        pl.Series("id", ["y1", "y2", "y3"]))
    after = pl.concat([
        before.filter(~pl.col("id").is_in(moved + gone)),
        before.filter(pl.col("id").is_in(moved)).with_columns(
            pl.col("latitude") + 0.01),
        arrived])
    changed = set(moved) | {"y1", "y2", "y3"}
    mask = _affected(after, changed, set(gone), fused_before, fuser)
    sub = after.filter(mask)
    again = set(sub["id"].to_list())
    assert changed <= again
    kept = {s for s in _sets(fused_before) if not s & (again | set(gone))}
    want = _sets(fuser.fuse(after)[0])
    assert kept | _sets(fuser.fuse(sub)[0]) == want
    assert 0 < sub.height < after.height / 5, sub.height
    # nothing changed: nothing is fused again
    assert not _affected(after, set(), set(), fused_before, fuser).any()
