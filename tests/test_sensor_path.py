"""The cycle's sensor and drone paths pass typed objects, with no round-trip: each input
file is read once, the station inventory is parsed once, the sensor period stays a pair
of datetimes, and this cycle's drone patrols are not read back from the store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import trucewatch.intake.sources as intake_sources
import trucewatch.pipeline.stages as stages
from trucewatch.agreement import load_agreement
from trucewatch.demo import ScenarioFiles
from trucewatch.ingest.base import read_received as real_read
from trucewatch.ingest.sensors import parse_stations as real_parse
from trucewatch.integrity.keys import KeyRegistry
from trucewatch.pipeline import CycleConfig, CycleContext, FieldInputs, SensorInputs, coverage_of
from trucewatch.storage import SqliteStore


def _ctx(scenario: ScenarioFiles, tmp_path: Path, **kw: Any) -> CycleContext:
    config = CycleConfig(agreement_path=scenario.agreement, firms_files=(), out_dir=tmp_path,
                         **kw)
    return CycleContext(config, SqliteStore(tmp_path / "s.db"),
                        KeyRegistry.load(scenario.keys), load_agreement(scenario.agreement))


def test_sensor_inputs_are_read_and_parsed_once(scenario: ScenarioFiles, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert scenario.stations and scenario.detections
    reads: list[str] = []
    parsed: list[str] = []

    def read(path: Path) -> bytes:
        reads.append(Path(path).name)
        return real_read(path)

    def parse(raw: bytes, name: Path | str) -> Any:
        parsed.append(str(name))
        return real_parse(raw, name)

    monkeypatch.setattr(stages, "read_received", read)
    monkeypatch.setattr(intake_sources, "parse_stations", parse)
    inputs = SensorInputs(scenario.stations, [scenario.detections])
    ctx = _ctx(scenario, tmp_path, sensors=inputs)
    try:
        located = stages.locate(ctx, inputs, None)
    finally:
        ctx.store.close()
    assert sorted(reads) == sorted([scenario.stations.name, scenario.detections.name])
    assert parsed == [scenario.stations.name]
    fig = located.figures
    assert fig is not None and fig.located > 0 and located.stations is not None
    # the period is datetimes (to the microsecond the detections give), printed only by
    # the bulletin's summary
    assert fig.period is not None
    start, end = fig.period
    assert isinstance(start, datetime) and start.tzinfo is not None and start <= end
    assert fig.summary()["start"] == f"{start:%Y-%m-%d %H:%M}Z"
    # the coverage uses that exact period
    cov = coverage_of(SqliteStore(tmp_path / "empty.db"), located.stations, fig.period, {},
                      set())
    assert cov.sensor_periods == [fig.period]


def test_this_cycles_drone_patrols_are_not_read_back(scenario: ScenarioFiles,
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = _ctx(scenario, tmp_path, field_inputs=FieldInputs(scenario.drones, [],
                                                            scenario.keys))
    try:
        outcomes, patrols = stages._receive_drones(ctx, ctx.config.field_inputs)
        assert any(o.accepted for o in outcomes) and patrols
        # read back from the store's evidentiary copy (what an earlier cycle's input gets)
        from_store = coverage_of(ctx.store, None, None, {}, set())

        def no_read_back(sha: str) -> bytes:
            raise AssertionError(f"input {sha} was read back from the store")

        monkeypatch.setattr(ctx.store, "raw_input", no_read_back)
        from_intake = coverage_of(ctx.store, None, None, {}, set(), patrols=patrols)
        cut = coverage_of(ctx.store, None, None, {}, set(), patrols=patrols,
                          cutoff=datetime(2000, 1, 1, tzinfo=UTC))
    finally:
        ctx.store.close()
    assert from_intake.patrols and from_intake.patrols == from_store.patrols
    assert cut.patrols == []


def test_a_silent_station_reaches_the_bulletin(scenario: ScenarioFiles, built_cycle: Path,
                                              tmp_path: Path) -> None:
    """A detections file in which the two busiest stations say nothing: the locate stage
    collects the health check's sentences into the sensor figures, the bulletin's
    ``sensors`` section carries them, and the HTML prints them under their heading in
    every language. The built-in file has no health problem: an empty list."""
    import html as htmllib
    import json

    import polars as pl

    from trucewatch.integrity.envelope import SourcePolicy
    from trucewatch.reports.bulletin import render_html

    sensors_dir = Path(scenario.detections).parent
    det = pl.read_csv(sensors_dir / "detections.csv")
    busiest = det["station"].value_counts(sort=True)["station"].head(2).to_list()
    silent = tmp_path / "detections-silent.csv"
    det.filter(~pl.col("station").is_in(busiest)).write_csv(silent)
    inputs = SensorInputs(scenario.stations, [silent], policy=SourcePolicy.OPTIONAL)
    ctx = _ctx(scenario, tmp_path, sensors=inputs)
    try:
        fig = stages.locate(ctx, inputs, None).figures
    finally:
        ctx.store.close()
    assert fig is not None and fig.located > 0
    lines = fig.summary()["health"]
    assert isinstance(lines, list) and lines
    assert all(isinstance(s, str) and s for s in lines)
    said = " ".join(lines)
    assert any(s in said for s in busiest), lines  # names at least one silent station
    assert "silent or not hearing" in said

    # the sound built-in file: the key is there, empty
    ok = SensorInputs(scenario.stations, [scenario.detections])
    ctx = _ctx(scenario, tmp_path / "ok", sensors=ok)
    try:
        sound = stages.locate(ctx, ok, None).figures
    finally:
        ctx.store.close()
    assert sound is not None and sound.summary()["health"] == []

    # the bulletin: the built-in cycle's JSON carries the (empty) key; its context with
    # these sentences prints them under their heading, in English and translated
    (js,) = built_cycle.glob("bulletin-*-restricted.json")
    bulletin = json.loads(js.read_text(encoding="utf-8"))
    assert bulletin["sensors"]["health"] == []
    assert 'id="sensor-health"' not in js.with_suffix(".html").read_text(encoding="utf-8")
    bulletin["sensors"]["health"] = lines
    for language, heading in (("en", "What the network could not hear:"),
                              ("fr", "Ce que le réseau n'a pas pu entendre :"),
                              ("uk", "Що мережа не могла почути:")):
        html = render_html(bulletin, language)
        part = html.split('id="sensor-health"')[1].split("</div>")[0]
        assert htmllib.escape(heading, quote=True) in part or heading in part, language
        assert part.count("<li>") == len(lines)
        for s in lines:
            assert htmllib.escape(s, quote=False) in part, (language, s)
