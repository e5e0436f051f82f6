"""The sensor stream: stored detections become located explosions across files.

The ingest route and the cycle's intake store each detections file as received (its
valid rows and its quarantine, nothing located). :func:`advance` then takes the
detections batches not yet in the network's stream (``stream_inputs``) and runs the
associator's windows (:meth:`ExplosionAssociator.resume`) over every stored detection
that the new ones can change, so an explosion whose detections straddle two files is
located once, from all of them:

* **The window grid** is anchored at the network's earliest detection (``epoch_us``),
  as batch mode anchors it at its input's, so the batch cycle over the same files
  closes the same windows.
* **The sliding window.** A window starting at ``W`` reads detections up to
  ``W + window_s + reach_s``. New detections from time ``t`` on cannot change a window
  with ``W + window_s + reach_s < t``: the step resumes after ``R``, the latest such
  window that holds a stored event, with the detections from ``R + window_s`` on that
  no event of a window up to ``R`` took, and recomputes every window after it (their
  events are replaced in place, in ``derived_events``). A detection older than the
  epoch, a new station inventory, the joint stage (which learns from every window
  before) or no such ``R`` recompute the network's whole stream.
* **Station health** (a clock off, a noisy station): their detections are kept out
  and the windows associated again, up to ``MAX_HEALTH_ROUNDS`` times, as the per-file
  path does. The check decides span by span (``HealthCheck.basis_s``, 1 h, on the
  window grid), each span on its own detections and events, before the next span is
  associated; with the check on, a step resumes at the start of the span holding its
  first recomputed window. So a later file changes no decision on a span before it,
  and the worker's steps and the batch cycle keep out the same detections and find
  the same events. What was kept out is named in the step's log entry.
* **Repeats.** A detection id is one detection: its first copy taken into the stream
  stands (kept in ``stream_detections``, with its batch, line, station, phase and time).
  A later copy of the id, in another file, is never associated again: sent unchanged it
  is a repeat (counted); with another time, station or phase it is a **conflict**, named
  with both copies in the step's log entry (``conflicts``). Which copy is right cannot be
  told from the data, and the first one may already be in a published product: a
  correction comes under a new id. Both files stay as received. The first copy is the
  first in the order the batches were stored, so a step per file and one step over all
  of them agree.
* **Restart safety.** A step writes its events, the batches it took and the network's
  resume point in one transaction: killed before, nothing of it is kept and the next
  step takes the same batches; killed after, they are taken. The same step on the
  same store gives the same events (ids from time and place).

The network is the accepted inventory as a whole (``NETWORK``), as detections are
located against it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
import polars as pl

from trucewatch.errors import TrucewatchError
from trucewatch.ingest.base import unpack
from trucewatch.ingest.sensors import parse_detections
from trucewatch.integrity.envelope import is_envelope, open_envelope
from trucewatch.model.enums import SourceName
from trucewatch.sensors.association import (
    ASSIGN_SCHEMA,
    EVENT_SCHEMA,
    Association,
    ExplosionAssociator,
    Network,
    Picks,
)
from trucewatch.sensors.events import (
    MAX_HEALTH_ROUNDS,
    flagged,
    observation_records,
    observations,
)
from trucewatch.sensors.health import (
    HealthCheck,
    NetworkHealth,
    StationFlag,
    merge_flags,
)
from trucewatch.storage.protocols import EvidenceStore, StreamStore
from trucewatch.storage.repositories.stream import FIRST_COLUMNS, FIRST_SCHEMA

NETWORK = "inventory"  # the accepted station inventory, as one network


class StreamInputs(EvidenceStore, StreamStore, Protocol):
    """What a step reads and writes (the store's facade offers both)."""


@dataclass
class StreamStep:
    """What one step did. ``mode``: "none" (nothing new), "full" (the whole stream) or
    "resume" (the windows after ``after_window_us``)."""

    mode: str
    why: str
    inputs: list[str] = field(default_factory=list)  # the batches taken
    after_window_us: int | None = None
    added: set[str] = field(default_factory=set)  # derived event ids new
    removed: set[str] = field(default_factory=set)  # derived event ids gone
    records: pl.DataFrame = field(default_factory=pl.DataFrame)  # recomputed detections
    association: Association = field(default_factory=lambda: Association(
        pl.DataFrame(schema=EVENT_SCHEMA), pl.DataFrame(schema=ASSIGN_SCHEMA)))
    health: NetworkHealth | None = None
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (detection, reason)
    # a detection id this step's files sent again with another time, station or phase:
    # (detection, reason); and how many were sent again unchanged ("Repeats")
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    resent: int = 0

    @property
    def ran(self) -> bool:
        return self.mode != "none"

    @property
    def changed(self) -> set[str]:
        return self.added | self.removed


def inventory_key(stations: pl.DataFrame) -> str:
    return hashlib.sha256(stations.sort("id").write_csv().encode()).hexdigest()


def advance(store: StreamInputs, stations: pl.DataFrame,
            associator: ExplosionAssociator | None = None,
            health: HealthCheck | None = None, actor: str = "stream") -> StreamStep:
    """One step of the network's stream (module docstring). ``stations``: the accepted
    inventory (``intake.sources.stored_stations``)."""
    assoc_cfg = associator or ExplosionAssociator()
    check = HealthCheck() if health is None else health
    taken = {str(r["batch_id"]) for r in store.stream_inputs(NETWORK)}
    inputs = store.inputs(SourceName.DETECTIONS)
    pending = [b for b in inputs if str(b["id"]) not in taken]
    names = {str(b["id"]): str(b["name"]) for b in inputs}
    state = store.stream_state(NETWORK)
    if stations.is_empty():
        return StreamStep("none", "no accepted station inventory: detections wait")
    inventory = inventory_key(stations)
    if not pending and state is not None and state["inventory"] == inventory:
        return StreamStep("none", "no new detections")
    network = Network.from_table(stations)
    new = _read(store, pending, stations)
    took = [{"batch_id": str(b["id"]), **_span(new.filter(pl.col("batch_id") == str(b["id"])))}
            for b in pending]
    # the first copies of the ids taken before (an index that an older stream lacks)
    indexed = not taken or not store.stream_detections(NETWORK, limit=1).is_empty()
    known = (store.stream_detections(NETWORK, _distinct(new)) if taken and indexed
             else pl.DataFrame(schema=FIRST_SCHEMA))
    received, (new, firsts, repeats) = new, _first_copies(new, known)
    why_full = _why_full(state, inventory, assoc_cfg, new) or (
        "" if indexed else "the stream's first copies of its detection ids are not "
        "kept yet (revision 0010)")
    window_us = round(assoc_cfg.window_s * 1e6)
    after: int | None = None
    if not why_full:
        assert state is not None
        epoch = int(state["epoch_us"])
        t_new = int(new["time"].dt.epoch("us").min())  # type: ignore[arg-type]
        reach_us = math.ceil(assoc_cfg.reach_s(network) * 1e6)
        after = _resume_window(epoch, t_new, window_us, reach_us)
        if after is not None and check.enabled:
            # the health check's span holding the next window re-opens whole: its start
            # is on the span grid from the epoch, so it is never before the first window
            block_us = round(_block_s(check, assoc_cfg) * 1e6)
            after = epoch + (after + window_us - epoch) // block_us * block_us - window_us
        if after is None:
            why_full = "no window of the grid lies wholly before the new detections"
        else:
            # only the windows that can have taken a detection from the resume point on
            # (or that are replaced) are read: what a step reads is bounded by the
            # window and the reach, not by the stream's length
            kept = store.derived_events(NETWORK, after_window_us=after - reach_us
                                        - window_us - 1)
    if why_full:
        old_ids = set(store.derived_events(NETWORK)["id"].to_list())
        recs = pl.concat([_read(store, inputs, stations, only=taken), received],
                         how="vertical_relaxed") if taken else received
        # every copy is read: the first copies are found again, and replace the kept ones
        recs, firsts, repeats = _first_copies(recs, pl.DataFrame(schema=FIRST_SCHEMA))
        recs = _unique(recs)
        epoch = int(recs["time"].dt.epoch("us").min()) if recs.height else 0  # type: ignore[arg-type]
        start_s: float | None = None
        read, events_read = recs.height, len(old_ids)
    else:
        assert after is not None
        start_us = after + window_us
        tail = [b for b in store.stream_inputs(NETWORK)
                if b["t_max_us"] is not None and int(b["t_max_us"]) >= start_us]
        old = _read(store, inputs, stations, only={str(b["batch_id"]) for b in tail})
        old = old.filter(pl.col("time").dt.epoch("us") >= start_us)
        # a repeat that a file taken before carried stays out, as when it was taken
        old, _, _ = _first_copies(old, store.stream_detections(NETWORK, _distinct(old)))
        read, events_read = old.height + new.height, kept.height
        # detections from the resume point on that an event of a window up to it took
        near = kept.filter((pl.col("window_us") <= after)
                           & (pl.col("window_us") >= after - reach_us - window_us))
        used = {d for js in near["detection_ids"].to_list() for d in _ids(js)}
        recs = _unique(pl.concat([old, new], how="diagonal_relaxed"))  # old may be empty
        recs = recs.filter(~pl.col("detection_id").is_in(list(used)))
        old_ids = set(kept.filter(pl.col("window_us") > after)["id"].to_list())
        start_s = (start_us - epoch) / 1e6
    recs = recs.sort("time", "detection_id")
    result, recs, found, excluded = _associate(assoc_cfg, network, recs, epoch, start_s,
                                               check)
    events = _derived(result, recs, epoch)
    # the events kept before the resume point: the stored count less those replaced
    # (read from the bounded tail above, not from every stored event)
    before_n = 0 if why_full or state is None else max(
        0, int(state["events"] or 0) - len(old_ids))
    step_state = {"inventory": inventory, "epoch_us": epoch, "resumed_us": after,
                  "inputs": len(taken) + len(pending), "events": before_n + events.height}
    # what this step's files repeated (a full step reads earlier files' repeats again)
    repeats = repeats.filter(pl.col("batch_id").is_in([str(b["id"]) for b in pending]))
    conflicts = _conflicts(repeats, names)
    store.save_stream_step(NETWORK, step_state, took, events, after, actor=actor, details={
        "mode": "full" if why_full else "resume", "why_full": why_full,
        "detections": recs.height, "read": read, "events_read": events_read,
        "excluded": [list(x) for x in excluded[:50]], "excluded_total": len(excluded),
        "resent": repeats.height - len(conflicts),
        "conflicts": [list(x) for x in conflicts[:50]], "conflicts_total": len(conflicts)},
        firsts=firsts, replace_firsts=bool(why_full))
    new_ids = set(events["id"].to_list()) if events.height else set()
    return StreamStep("full" if why_full else "resume", why_full or "new detections",
                      [t["batch_id"] for t in took], after, new_ids - old_ids,
                      old_ids - new_ids, recs, result, found, excluded, conflicts,
                      repeats.height - len(conflicts))


def _resume_window(epoch_us: int, t_new_us: int, window_us: int, reach_us: int
                   ) -> int | None:
    """The latest window start ``R`` on the stream's grid (``epoch_us`` + k windows,
    k >= -1: the associator's first window opens one before the earliest detection's)
    that new detections from ``t_new_us`` on cannot change (``R + window + reach <
    t_new``); None when there is none (the new detections reach the first window).

    Any such window will do, whether it holds an event or not: windows without an
    event took no detection, so resuming after the latest one gives what the windows
    from the first would give. (The stored event of such a window was once required,
    so a network that heard only noise for hours re-associated all of it each step.)"""
    # the largest k with k * window < t_new - epoch - window - reach: ceil(x / window) - 1
    k = -((window_us + reach_us - t_new_us + epoch_us) // window_us) - 1
    return None if k < -1 else epoch_us + k * window_us


def _why_full(state: dict[str, Any] | None, inventory: str, cfg: ExplosionAssociator,
              new: pl.DataFrame) -> str:
    if state is None:
        return "first step of the network's stream"
    if state["inventory"] != inventory:
        return "the station inventory changed"
    if cfg.joint is not None:
        return "the joint stage learns from every window before"
    if new.is_empty():
        return "no new detection (recomputed against the inventory)"
    if int(new["time"].dt.epoch("us").min()) < int(state["epoch_us"]):  # type: ignore[arg-type]
        return "a detection earlier than the stream's first"
    return ""


def _block_s(check: HealthCheck, cfg: ExplosionAssociator) -> float:
    """The health check's span (whole association windows, at least one)."""
    return max(1, round(check.basis_s / cfg.window_s)) * cfg.window_s


def _associate(cfg: ExplosionAssociator, network: Network, recs: pl.DataFrame, epoch: int,
               start_s: float | None, check: HealthCheck
               ) -> tuple[Association, pl.DataFrame, NetworkHealth | None,
                          list[tuple[str, str]]]:
    """The windows from ``start_s`` on, with the health check's rounds (as
    sensors.events.locate_files): detections of a station whose clock is off, or of a
    noisy one, are kept out and the windows associated again.

    The check decides span by span (``HealthCheck.basis_s``, on the window grid): a
    span's windows are associated from the detections the spans before left, the check
    looks at that span's own detections and events only, and what it keeps out is that
    span's, before the next span is associated. So what is kept out at a time depends
    on the data up to a reach after that span, never on later files: the stream, which
    resumes at the start of a span, and the batch cycle, which runs every span, decide
    alike. (Checked on the whole stream, a flag raised by a later file would have had
    to re-open windows settled long before, and the worker's answer would hang on the
    order in which files came.) A mission's list is then revised only where data
    arrive; the coverage sentences still come from one check over all the windows
    recomputed."""
    if not check.enabled or cfg.joint is not None:
        return _associate_whole(cfg, network, recs, epoch, start_s, check)
    excluded: list[tuple[str, str]] = []
    block, tmax, w = _block_s(check, cfg), cfg.reach_s(network), cfg.window_s
    kept_flags: list[StationFlag] = []
    parts: list[Association] = []
    t_s = (pl.col("time").dt.epoch("us") - epoch) / 1e6
    left, b, drop = recs, start_s, np.zeros(recs.height, dtype=bool)
    pos = {d: k for k, d in enumerate(recs["detection_id"].to_list())}
    while left.height:
        t_min = float(left.select(t_s.min()).item())
        # the chain's next window (ExplosionAssociator.resume) and the span holding it
        first = (math.floor((t_min - tmax) / w) * w if b is None
                 else max(b, (math.floor((t_min - tmax) / w) - 1) * w))
        lo = math.floor(first / block) * block
        hi = lo + block
        span = left.filter(t_s < hi)
        # the span's windows read detections up to a reach after it, no further
        ahead = left.filter((t_s >= hi) & (t_s <= hi + tmax + w))
        lo_t, hi_t = _dt(epoch, lo), _dt(epoch, hi)
        for r in range(MAX_HEALTH_ROUNDS + 1):
            picks = Picks.from_table(pl.concat([span, ahead]), network, epoch_us=epoch)
            windows = [_windowed(a, epoch, ws) for ws, a in
                       cfg.resume(network, picks, b, stop_s=hi)]
            assoc = Association.concat(windows)
            if r == MAX_HEALTH_ROUNDS or span.is_empty():
                break
            found = check.check(cfg, network, Picks.from_table(span, network, epoch_us=epoch),
                                assoc)
            bad, reason, quarantining = flagged(
                span, [_within(f, lo_t, hi_t) for f in found.flags if f.quarantines])
            kept_flags += quarantining
            if not bad.any():
                break
            ids = span["detection_id"].to_numpy()[bad].tolist()
            excluded += list(zip(ids, reason[bad].tolist(), strict=True))
            drop[[pos[d] for d in ids]] = True
            span = span.filter(pl.Series(~bad))
        parts += windows
        took = assoc.assignments.drop_nulls("event_id")["detection_id"]
        left = left.filter((t_s >= hi) & ~pl.col("detection_id").is_in(took.implode()))
        b = hi
    result = Association.concat(parts)
    recs = recs.filter(pl.Series(~drop))
    found_all = check.check(cfg, network, Picks.from_table(recs, network, epoch_us=epoch),
                            result)
    return (result, recs, replace(found_all, flags=merge_flags(kept_flags, found_all.flags)),
            excluded)


def _associate_whole(cfg: ExplosionAssociator, network: Network, recs: pl.DataFrame,
                     epoch: int, start_s: float | None, check: HealthCheck
                     ) -> tuple[Association, pl.DataFrame, NetworkHealth | None,
                                list[tuple[str, str]]]:
    """With no check, or with the joint stage (whose network model learns from every
    window before, so its stream is always recomputed whole): the check, if any, on all
    the windows at once."""
    excluded: list[tuple[str, str]] = []
    kept_flags: list[StationFlag] = []
    found: NetworkHealth | None = None
    assoc = Association(pl.DataFrame(schema=EVENT_SCHEMA), pl.DataFrame(schema=ASSIGN_SCHEMA))
    for _ in range(MAX_HEALTH_ROUNDS):
        picks = Picks.from_table(recs, network, epoch_us=epoch)
        parts = [(ws, a) for ws, a in cfg.resume(network, picks, start_s)]
        assoc = Association.concat([_windowed(a, epoch, ws) for ws, a in parts])
        if not check.enabled:
            return assoc, recs, None, excluded
        found = check.check(cfg, network, picks, assoc)
        bad, reason, quarantining = flagged(recs, found.flags)
        kept_flags += quarantining
        if not bad.any():
            break
        excluded += list(zip(recs["detection_id"].to_numpy()[bad].tolist(),
                             reason[bad].tolist(), strict=True))
        recs = recs.filter(pl.Series(~bad))
    if found is not None:
        found = replace(found, flags=merge_flags(kept_flags, found.flags))
    return assoc, recs, found, excluded


def _within(f: StationFlag, lo: datetime, hi: datetime) -> StationFlag:
    """A quarantining flag of one span's check, bounded to that span (what it rests on)."""
    start = lo if f.start is None or f.start < lo else f.start
    end = hi if f.end is None or f.end > hi else f.end
    return replace(f, start=start, end=end, detail=(
        f"{f.detail} (Checked on the data from {start:%Y-%m-%d %H:%M:%S}Z to "
        f"{end:%Y-%m-%d %H:%M:%S}Z.)"))


def _dt(epoch: int, s: float) -> datetime:
    return datetime.fromtimestamp((epoch + round(s * 1e6)) / 1e6, UTC)


def _windowed(a: Association, epoch: int, ws: float) -> Association:
    """The window's start (UTC microseconds) on each of its events, and in their ids:
    a solution's ids count from one in each call of the associator, and a step calls it
    once per span of the health check."""
    w_us = epoch + round(ws * 1e6)
    tag = pl.lit(f"{w_us}-") + pl.col("event_id")
    return Association(a.events.with_columns(pl.lit(w_us, dtype=pl.Int64).alias("window_us"),
                                             tag.alias("event_id")),
                       a.assignments.with_columns(tag.alias("event_id")))


def _derived(result: Association, recs: pl.DataFrame, epoch: int) -> pl.DataFrame:
    """The located explosions as derived-event rows: the observation contract (ids from
    time and place, as sensors.events), each event's window and detections; its raw
    record is the detections file of its earliest detection."""
    ev = result.events
    if ev.is_empty():
        return pl.DataFrame()
    rec = observation_records(ev)
    # the solution's own id is its place in one run; the stored id is stable
    rec = rec.with_columns(pl.col("obs_id").alias("event_id"))
    remap = dict(zip(ev["event_id"].to_list(), rec["obs_id"].to_list(), strict=True))
    asg = result.assignments.drop_nulls("event_id").with_columns(
        pl.col("event_id").replace_strict(remap, return_dtype=pl.String))
    first = (asg.join(recs.select("detection_id", "time", "raw_sha256"), on="detection_id",
                      how="left")
             .sort("time", "detection_id")
             .group_by("event_id", maintain_order=True)
             .agg(pl.col("detection_id").sort(), pl.col("raw_sha256").first()))
    obs = observations(rec, "").drop("raw_sha256")
    out = obs.join(first.rename({"event_id": "id", "detection_id": "detection_ids"}),
                   on="id", how="left", maintain_order="left")
    return out.with_columns(rec["window_us"], pl.col("raw_sha256").fill_null(""))


def _read(store: StreamInputs, batches: list[dict[str, Any]], stations: pl.DataFrame,
          only: set[str] | None = None) -> pl.DataFrame:
    """The valid detections of stored detections batches, read back from their
    evidentiary copies less the rows quarantined at receipt (a batch quarantined whole
    gives none), each with its batch and raw SHA-256."""
    frames = []
    for b in batches:
        bid = str(b["id"])
        if only is not None and bid not in only:
            continue
        if int(b["quarantined"]) >= int(b["rows"]):
            continue
        name = str(b["name"])
        raw = unpack(store.raw_input(str(b["raw_sha256"])), name)
        payload = unpack(open_envelope(raw).payload, name) if is_envelope(raw) else raw
        bad = sorted({q.row for q in store.quarantine(bid)})
        try:
            recs = parse_detections(payload, name, stations).records
        except TrucewatchError:
            continue  # against a later inventory it no longer reads: none usable
        frames.append(recs.filter(~pl.col("row").is_in(bad)).with_columns(
            pl.lit(bid).alias("batch_id"), pl.lit(str(b["raw_sha256"])).alias("raw_sha256")))
    if not frames:
        return pl.DataFrame(schema={"row": pl.Int64, "detection_id": pl.String,
                                    "station": pl.String,
                                    "time": pl.Datetime("us", "UTC"), "phase": pl.String,
                                    "batch_id": pl.String, "raw_sha256": pl.String})
    return pl.concat(frames, how="diagonal_relaxed")


def _distinct(recs: pl.DataFrame) -> list[str]:
    return recs["detection_id"].unique().to_list()


def _first_copies(recs: pl.DataFrame, known: pl.DataFrame
                  ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """``recs`` (in the order received) split by "Repeats": the rows that are the first
    copy of their id (``known``'s, FIRST_SCHEMA, where it has the id, else the first
    row of ``recs``); the first copies that ``known`` lacks (FIRST_SCHEMA: to keep); and
    the other rows, each with its first copy's columns (``*_first``)."""
    if recs.is_empty():
        empty = pl.DataFrame(schema=FIRST_SCHEMA)
        # the repeats' columns as below (time_us too), so that _conflicts reads them
        return recs, empty, recs.with_columns(
            pl.col("time").dt.epoch("us").alias("time_us"),
            *(pl.lit(None, dtype=t).alias(f"{c}_first") for c, t in FIRST_SCHEMA.items()
              if c != "detection_id"))
    recs = recs.with_columns(pl.col("time").dt.epoch("us").alias("time_us"))
    own = (recs.unique("detection_id", keep="first", maintain_order=True)
           .select(FIRST_COLUMNS).cast(FIRST_SCHEMA))  # type: ignore[arg-type]
    fresh = own.join(known, on="detection_id", how="anti")
    first = pl.concat([known.cast(FIRST_SCHEMA), fresh])  # type: ignore[arg-type]
    joined = recs.join(first.rename({c: f"{c}_first" for c in FIRST_COLUMNS
                                     if c != "detection_id"}),
                       on="detection_id", how="left", maintain_order="left")
    is_first = ((pl.col("batch_id") == pl.col("batch_id_first"))
                & (pl.col("row") == pl.col("row_first"))).fill_null(False)
    extra = [f"{c}_first" for c in FIRST_COLUMNS if c != "detection_id"]
    return (joined.filter(is_first).drop(*extra, "time_us"), fresh,
            joined.filter(~is_first))


def _conflicts(repeats: pl.DataFrame, names: dict[str, str]) -> list[tuple[str, str]]:
    """The repeats whose station, phase or time differ from the first copy's, each with
    its reason (both copies named)."""
    differ = repeats.filter((pl.col("station") != pl.col("station_first"))
                            | (pl.col("phase") != pl.col("phase_first"))
                            | (pl.col("time_us") != pl.col("time_us_first")))
    out = []
    for r in differ.iter_rows(named=True):
        t1 = _iso_us(int(r["time_us_first"]))
        t2 = _iso_us(int(r["time_us"]))
        out.append((str(r["detection_id"]), (
            f"detection_id {r['detection_id']} was first received in "
            f"{names.get(r['batch_id_first'], r['batch_id_first'])} (line {r['row_first']}: "
            f"station {r['station_first']}, {r['phase_first']}, {t1}); this copy in "
            f"{names.get(r['batch_id'], r['batch_id'])} (line {r['row']}) says station "
            f"{r['station']}, {r['phase']}, {t2}: a conflict: the first copy stands and "
            "this one is not associated (both files are kept as received; a correction "
            "is sent under a new detection_id)")))
    return out


def _iso_us(us: int) -> str:
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)  # exact, no float
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _unique(recs: pl.DataFrame) -> pl.DataFrame:
    """A detection sent again in a later file counts once (its first copy)."""
    return recs.unique(subset="detection_id", keep="first", maintain_order=True)


def _span(recs: pl.DataFrame) -> dict[str, Any]:
    if recs.is_empty():
        return {"t_min_us": None, "t_max_us": None, "detections": 0}
    us = recs["time"].dt.epoch("us")
    return {"t_min_us": int(us.min()), "t_max_us": int(us.max()),  # type: ignore[arg-type]
            "detections": recs.height}


def _ids(text: object) -> list[str]:
    got = json.loads(str(text)) if text else []
    return [str(x) for x in got]
