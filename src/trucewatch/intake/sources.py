"""Intake adapters for the inputs that are not one source's rows: the station inventory,
detections (which become located explosions), and configuration (agreements, key
registries). They implement the same :class:`~trucewatch.ingest.base.SourceAdapter`
interface as FIRMS, drones and allegations, so every input takes one path.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import polars as pl

from trucewatch.errors import InputFileError
from trucewatch.ingest.base import Batch, SourceAdapter, header_of, sha256
from trucewatch.ingest.heartbeats import MAX_AGE, parse_heartbeats
from trucewatch.ingest.registry import adapter_for, sources
from trucewatch.ingest.sensors import parse_detections, parse_stations
from trucewatch.model.enums import SourceKind, SourceName
from trucewatch.sensors.uptime import BEATS, SILENCE, Uptime, uptime
from trucewatch.storage.protocols import EvidenceStore


class StationSource:
    """A station inventory (CSV, JSON or StationXML): where every located explosion's
    geometry comes from, so it is a signed input like any other. Any problem refuses the
    whole inventory (it is configuration, not data)."""

    name: str = SourceName.STATIONS
    kind = SourceKind.STATION_INVENTORY

    def __init__(self, known: Iterable[str] = ()) -> None:
        self.known = tuple(known)  # the ids of the stations the store already holds

    def sniff(self, header: list[str]) -> bool:
        return {"id", "latitude", "longitude", "kind"} <= set(header)

    def parse(self, raw: bytes, name: str) -> Batch:
        table = parse_stations(raw, name)
        _no_lookalikes(table["id"].to_list(), self.known, name)
        return Batch(source=self.name, kind=self.kind, layout="stations", name=name, raw=raw,
                     sha256=sha256(raw), n_rows=table.height, records=table)

    def speakers(self, batch: Batch, payload: bytes) -> set[str]:
        return {str(s) for s in batch.records["id"].to_list()}


@dataclass
class DetectionSource:
    """A detections file, checked against an accepted station inventory and stored as
    received: its valid rows and its quarantine, nothing located. The worker and the
    batch cycle locate explosions from the stored detections across files
    (:mod:`trucewatch.intake.stream`), so an explosion heard in two files is one."""

    stations: pl.DataFrame
    name: str = SourceName.DETECTIONS
    kind: SourceKind = SourceKind.SENSOR_NETWORK

    def sniff(self, header: list[str]) -> bool:
        return {"detection_id", "station", "time", "phase"} <= set(header)

    def parse(self, raw: bytes, name: str) -> Batch:
        if self.stations.is_empty():
            raise InputFileError(f"{name}: no accepted station inventory to locate against",
                                 path=name, fix="send the network's signed station inventory")
        parsed = parse_detections(raw, name, self.stations)
        return replace(parsed, source=self.name, kind=self.kind)

    def speakers(self, batch: Batch, payload: bytes) -> set[str]:
        return {str(s) for s in batch.records["station"].unique().to_list()}


@dataclass
class HeartbeatSource:
    """Station heartbeats (:mod:`trucewatch.ingest.heartbeats`), checked against an
    accepted station inventory; signed by the network's key, which must speak for every
    station in the file. Nothing in them is an observation: the file is kept verbatim
    and :func:`network_uptime` reads it back."""

    stations: set[str]
    max_age: timedelta = MAX_AGE
    name: str = SourceName.HEARTBEATS
    kind: SourceKind = SourceKind.STATION_INVENTORY

    def sniff(self, header: list[str]) -> bool:
        return set(header) >= {"station", "time"} and "phase" not in header

    def parse(self, raw: bytes, name: str, now: datetime | None = None) -> Batch:
        if not self.stations:
            raise InputFileError(f"{name}: no accepted station inventory to check "
                                 "heartbeats against", path=name,
                                 fix="send the network's signed station inventory first")
        return parse_heartbeats(raw, name, self.stations, now, self.max_age)

    def speakers(self, batch: Batch, payload: bytes) -> set[str]:
        return {str(s) for s in batch.records["station"].unique().to_list()}


# heartbeats read back, per stored batch (batches are never changed or removed, and a
# batch's quarantine is fixed at receipt): each file is parsed once per process, not on
# every uptime request. Bounded: past READ_BACK_ROWS rows the oldest reads are dropped.
READ_BACK_ROWS = 5_000_000
_read_back: OrderedDict[tuple[str, str], pl.DataFrame] = OrderedDict()
_read_back_lock = threading.Lock()


def _read_back_batch(store: EvidenceStore, b: dict[str, object]) -> pl.DataFrame:
    from trucewatch.ingest.base import unpack
    from trucewatch.integrity.envelope import is_envelope, open_envelope

    key = (str(b["id"]), str(b["raw_sha256"]))
    with _read_back_lock:
        got = _read_back.get(key)
        if got is not None:
            _read_back.move_to_end(key)
            return got
    raw = unpack(store.raw_input(str(b["raw_sha256"])), str(b["name"]))
    payload = unpack(open_envelope(raw).payload, str(b["name"])) if is_envelope(raw) \
        else raw
    bad = sorted({q.row for q in store.quarantine(str(b["id"]))})
    # read back unchecked: what was decided at receipt is in ``bad``
    records = parse_heartbeats(payload, str(b["name"]), None, None, None).records
    got = records.filter(pl.col("row").is_in(bad).not_()).select("station", "time")
    with _read_back_lock:
        _read_back[key] = got
        while sum(f.height for f in _read_back.values()) > READ_BACK_ROWS \
                and len(_read_back) > 1:
            _read_back.popitem(last=False)
    return got


def stored_heartbeat_frame(store: EvidenceStore) -> pl.DataFrame:
    """The heartbeats the store accepted, as ``station`` and ``time``: each heartbeats
    input read back from its evidentiary copy (once per process: see ``_read_back``),
    less the rows quarantined when it was received (an input quarantined whole by the
    signature policy gives none)."""
    frames = [_read_back_batch(store, b) for b in store.inputs(SourceName.HEARTBEATS)
              if int(b["quarantined"]) < int(b["rows"])]
    if not frames:
        return pl.DataFrame(schema=BEATS)
    return pl.concat(frames, how="vertical")


def stored_heartbeats(store: EvidenceStore) -> list[tuple[str, datetime]]:
    """:func:`stored_heartbeat_frame` as ``(station, time)`` pairs."""
    return list(stored_heartbeat_frame(store).iter_rows())


def network_uptime(store: EvidenceStore, until: datetime | None = None,
                   silence: timedelta = SILENCE) -> Uptime | None:
    """The accepted inventory's stations up and down from the accepted heartbeats, up to
    ``until`` (default now); None when the store holds no heartbeat."""
    beats = stored_heartbeat_frame(store)
    if beats.is_empty():
        return None
    ids = stored_stations(store)["id"].to_list()
    return uptime(ids or sorted(beats["station"].unique().to_list()), beats,
                  until or datetime.now(UTC), silence)


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


def stored_stations(store: EvidenceStore) -> pl.DataFrame:
    """The station inventory the store has accepted (empty when none): detections sent
    later are located against it.

    Each network's newest accepted inventory replaces that network's stations only, and
    other networks' stations stay. A network is the key its inventory is signed with
    (unsigned inventories, accepted under a permissive source policy, count as one
    network); a station listed again by another network is that network's from then on.
    A network that rotates its key sends its whole inventory under the new key: the
    stations the old key listed and the new one does not stay until listed again."""
    from trucewatch.ingest.base import unpack
    from trucewatch.integrity.envelope import is_envelope, open_envelope

    usable = [b for b in store.inputs(SourceName.STATIONS)
              if int(b["quarantined"]) < int(b["rows"])]
    held: list[tuple[str, pl.DataFrame]] = []  # (network, its stations), oldest first
    for b in usable:
        raw = unpack(store.raw_input(str(b["raw_sha256"])), str(b["name"]))
        network = ""
        if is_envelope(raw):
            env = open_envelope(raw)
            raw, network = env.payload, f"key:{env.key_id}"
        table = parse_stations(unpack(raw, str(b["name"])), str(b["name"]))
        listed = table["id"].implode()
        held = [(n, t.filter(~pl.col("id").is_in(listed))) for n, t in held if n != network]
        held.append((network, table))
    if not held:
        return pl.DataFrame(schema={"id": pl.String, "latitude": pl.Float64,
                                    "longitude": pl.Float64, "kind": pl.String})
    return pl.concat([t for _, t in held], how="vertical_relaxed")


def _no_lookalikes(ids: list[str], known: Iterable[str], name: str) -> None:
    """Refuse an inventory with an id that holds a hidden character or mixes scripts, two
    ids that look alike, or an id that looks like a station the store already holds
    (``А001`` with a Cyrillic А beside ``A001``): detections would be read against the
    wrong station, and reviewers could not tell them apart (model.lookalike)."""
    from trucewatch.model.lookalike import identifier_problem, lookalike, lookalike_pairs

    problems = [f"station id {why}" for i in ids if (why := identifier_problem(i))]
    problems += [f"station ids {a!r} and {b!r} look alike" for a, b in lookalike_pairs(ids)]
    held = set(known) - set(ids)
    problems += [f"station id {i!r} looks like station {twin!r} already held"
                 for i in ids if (twin := lookalike(i, held)) is not None]
    if problems:
        raise InputFileError(f"{name}: {len(problems)} problem(s) in the station inventory: "
                             + " | ".join(problems[:20]), path=name,
                             fix="give each station an id in one script that does not look "
                             "like another station's")


def adapters(store: EvidenceStore) -> dict[str, SourceAdapter]:
    """Every source the intake knows by name, for commands and routes that receive inputs
    for a store: the built-in and registered sources, the station inventory, and
    detections (located against the store's accepted inventory)."""
    found: dict[str, SourceAdapter] = {s.name: s for s in sources()}
    inventory = stored_stations(store)
    found[SourceName.STATIONS] = StationSource(inventory["id"].to_list())
    found[SourceName.DETECTIONS] = DetectionSource(inventory)
    found[SourceName.HEARTBEATS] = HeartbeatSource(set(inventory["id"].to_list()))
    return found


def adapter_for_input(store: EvidenceStore, payload: bytes, name: str) -> SourceAdapter:
    """The adapter that understands an (unwrapped) input, sensor inputs included."""
    header = header_of(payload)
    for adapter in adapters(store).values():
        if adapter.sniff(header):
            return adapter
    return adapter_for(payload, name)  # raises the helpful UnknownLayoutError
