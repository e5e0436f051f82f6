"""Intake adapters for the inputs that are not one source's rows: the station inventory,
detections (which become located explosions), and configuration (agreements, key
registries). They implement the same :class:`~trucewatch.ingest.base.SourceAdapter`
interface as FIRMS, drones and allegations, so every input takes one path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from trucewatch.errors import InputFileError
from trucewatch.ingest.base import Batch, SourceAdapter, header_of, sha256
from trucewatch.ingest.registry import adapter_for, sources
from trucewatch.ingest.sensors import parse_detections, parse_stations
from trucewatch.model.enums import SourceKind, SourceName
from trucewatch.sensors.association import ExplosionAssociator
from trucewatch.sensors.events import SensorResult, events_batch, locate_files
from trucewatch.storage.protocols import FullStore


class StationSource:
    """A station inventory (CSV, JSON or StationXML): where every located explosion's
    geometry comes from, so it is a signed input like any other. Any problem refuses the
    whole inventory (it is configuration, not data)."""

    name: str = SourceName.STATIONS
    kind = SourceKind.STATION_INVENTORY

    def sniff(self, header: list[str]) -> bool:
        return {"id", "latitude", "longitude", "kind"} <= set(header)

    def parse(self, raw: bytes, name: str) -> Batch:
        table = parse_stations(raw, name)
        return Batch(source=self.name, kind=self.kind, layout="stations", name=name, raw=raw,
                     sha256=sha256(raw), n_rows=table.height, records=table)

    def speakers(self, batch: Batch, payload: bytes) -> set[str]:
        return {str(s) for s in batch.records["id"].to_list()}


@dataclass
class DetectionSource:
    """A detections file, located into explosions against an accepted station inventory.

    The stored batch holds the located explosions (observations) and the detections'
    quarantine; the evidentiary copy is the detections file as received. ``results``
    keeps each file's association for the cycle's figures."""

    stations: pl.DataFrame
    associator: Callable[[str], ExplosionAssociator] = lambda _: ExplosionAssociator()
    results: dict[str, SensorResult] = field(default_factory=dict)
    name: str = SourceName.DETECTIONS
    kind: SourceKind = SourceKind.SENSOR_NETWORK

    def sniff(self, header: list[str]) -> bool:
        return {"detection_id", "station", "time", "phase"} <= set(header)

    def parse(self, raw: bytes, name: str) -> Batch:
        if self.stations.is_empty():
            raise InputFileError(f"{name}: no accepted station inventory to locate against",
                                 path=name, fix="send the network's signed station inventory")
        detections = parse_detections(raw, name, self.stations)
        result = locate_files(self.stations, detections, self.associator(name))
        self.results[name] = result
        return events_batch(result)

    def speakers(self, batch: Batch, payload: bytes) -> set[str]:
        result = self.results.get(batch.name)
        if result is None:
            return set()
        return {str(s) for s in result.batch.records["station"].unique().to_list()}


class ConfigSource:
    """A configuration file kept as evidence (the agreement a verdict applied, the key
    registry that admitted a signature); its content is checked by its own loader."""

    kind = SourceKind.CONFIGURATION

    def __init__(self, name: str) -> None:
        self.name = name

    def sniff(self, header: list[str]) -> bool:
        return False  # named by the caller, never recognised from content

    def parse(self, raw: bytes, name: str) -> Batch:
        return Batch(source=self.name, kind=self.kind, layout=self.name, name=name, raw=raw,
                     sha256=sha256(raw), n_rows=0, records=pl.DataFrame())


def stored_stations(store: FullStore) -> pl.DataFrame:
    """The station inventory most recently accepted into the store (empty when none):
    detections sent later are located against it."""
    from trucewatch.ingest.base import unpack
    from trucewatch.integrity.envelope import is_envelope, open_envelope

    usable = [b for b in store.inputs(SourceName.STATIONS)
              if int(b["quarantined"]) < int(b["rows"])]
    if not usable:
        return pl.DataFrame(schema={"id": pl.String, "latitude": pl.Float64,
                                    "longitude": pl.Float64, "kind": pl.String})
    last = usable[-1]
    raw = unpack(store.raw_input(str(last["raw_sha256"])), str(last["name"]))
    payload = open_envelope(raw).payload if is_envelope(raw) else raw
    return parse_stations(unpack(payload, str(last["name"])), str(last["name"]))


def adapters(store: FullStore) -> dict[str, SourceAdapter]:
    """Every source the intake knows by name, for commands and routes that receive inputs
    for a store: the built-in and registered sources, the station inventory, and
    detections (located against the store's accepted inventory)."""
    found: dict[str, SourceAdapter] = {s.name: s for s in sources()}
    found[SourceName.STATIONS] = StationSource()
    found[SourceName.DETECTIONS] = DetectionSource(stored_stations(store))
    return found


def adapter_for_input(store: FullStore, payload: bytes, name: str) -> SourceAdapter:
    """The adapter that understands an (unwrapped) input, sensor inputs included."""
    header = header_of(payload)
    for adapter in adapters(store).values():
        if adapter.sniff(header):
            return adapter
    return adapter_for(payload, name)  # raises the helpful UnknownLayoutError
