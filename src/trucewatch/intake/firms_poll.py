"""Near-real-time FIRMS polling: the area API on a schedule, into the normal intake.

Each poll asks the FIRMS area API (:class:`~trucewatch.ingest.firms_api.FirmsClient`,
with its MAP_KEY) for every configured source over the mission's bounding box, from the
source's **watermark** day to today, and hands each response, as received, to
:func:`trucewatch.intake.receive` (the FIRMS source policy, evidentiary copy, quarantine,
refusal with the reason, audit log: the same path as ``trucewatch ingest``).

* **Watermark**: after a response is stored, the poll records ``firms_poll`` in the
  store's hash-chained audit log, with the days it covered. The watermark of a source is
  the last day so recorded: it lives in the store, so a restarted poller (or another
  host polling into the same store) continues from it.
* **Backfill**: the next poll starts at the watermark day itself (passes of that day may
  have been published after it was fetched) and runs to today, in requests of at most
  10 days (the API's limit). After an outage of any length up to ``max_backfill_days``
  the first successful poll fetches everything missed; a longer gap is fetched from
  ``today - max_backfill_days`` and the audit log says which days were not
  (``firms_poll_gap``: download the standard-processing archive for them).
* **Nothing twice**: FIRMS rows become observations whose id is a hash of their content
  (storage), so a day fetched again stores only the rows that are new, and an identical
  response is recognised by its SHA-256 and changes nothing.
* **Failures**: FIRMS unreachable, HTTP 500 or an invalid key: nothing is stored, the
  watermark stays, ``firms_poll_failed`` is logged with the reason. A response that is
  not a FIRMS CSV (garbage): kept and refused by the intake with its reason, the
  watermark stays. A clock that jumps back before the watermark fetches the watermark
  day again, never a day the clock has not reached.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from trucewatch.errors import ConfigError, FirmsApiError
from trucewatch.ingest.firms import FirmsSource
from trucewatch.ingest.firms_api import SOURCES, FirmsClient
from trucewatch.intake import receive
from trucewatch.integrity.keys import KeyRegistry
from trucewatch.storage.protocols import EvidenceStore

log = logging.getLogger(__name__)
ACTION = "firms_poll"
FAILED = "firms_poll_failed"
GAP = "firms_poll_gap"
MAX_DAYS_PER_REQUEST = 10
Bbox = tuple[float, float, float, float]


def parse_bbox(text: str) -> Bbox:
    """``west,south,east,north`` in degrees."""
    try:
        w, s, e, n = (float(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"bbox {text!r} is not west,south,east,north",
                          fix="give four numbers, e.g. 22.0,44.0,40.5,52.5") from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise ConfigError(f"bbox {text!r} is out of range or empty",
                          fix="west < east in -180..180, south < north in -90..90")
    return w, s, e, n


def _subject(source: str, bbox: Bbox) -> str:
    return f"{source}@{','.join(f'{v:g}' for v in bbox)}"


@dataclass
class PollResult:
    """One request of a poll."""

    source: str
    start: date
    days: int
    name: str = ""
    rows: int = 0
    new: int = 0
    duplicates: int = 0
    quarantined: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class FirmsPoller:
    store: EvidenceStore  # its inputs, the log of its polls (watermark, gaps, failures)
    client: FirmsClient
    bbox: Bbox
    sources: tuple[str, ...] = ("VIIRS_NOAA20_NRT",)
    registry: KeyRegistry = field(default_factory=KeyRegistry)
    first_days: int = 1  # a store with no watermark starts this many days back
    max_backfill_days: int = 60
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    actor: str = "firms-poll"

    def __post_init__(self) -> None:
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown or not self.sources:
            raise ConfigError(f"unknown FIRMS source(s) {unknown or '(none)'}",
                              fix=f"use one or more of {', '.join(SOURCES)}")
        if not 1 <= self.first_days <= self.max_backfill_days:
            raise ConfigError(f"first_days {self.first_days} out of 1..max_backfill_days",
                              fix="start at most max_backfill_days back")

    def watermark(self, source: str) -> date | None:
        """The last day a stored poll of ``source`` over this bbox covered (None: never)."""
        subject = _subject(source, self.bbox)
        for entry in reversed(self.store.audit_log()):
            if entry.action == ACTION and entry.subject == subject:
                return date.fromisoformat(json.loads(entry.details)["through"])
        return None

    def plan(self, source: str) -> list[tuple[date, int]]:
        """The requests of the next poll: (first day, days), oldest first."""
        today = self.clock().astimezone(UTC).date()
        mark = self.watermark(source)
        start = mark if mark is not None else today - timedelta(days=self.first_days - 1)
        start = min(start, today)  # a clock that jumped back: never past "today"
        earliest = today - timedelta(days=self.max_backfill_days - 1)
        if start < earliest:
            self.store.log(self.actor, GAP, _subject(source, self.bbox), {
                "missing_from": start.isoformat(),
                "missing_through": (earliest - timedelta(days=1)).isoformat(),
                "why": f"outage longer than {self.max_backfill_days} days; ingest the "
                       "standard-processing archive for these days"})
            start = earliest
        out = []
        while start <= today:
            days = min(MAX_DAYS_PER_REQUEST, (today - start).days + 1)
            out.append((start, days))
            start += timedelta(days=days)
        return out

    def poll_once(self) -> list[PollResult]:
        """One poll of every source; a failed request ends that source's poll (the
        watermark stays where the last stored response left it)."""
        results: list[PollResult] = []
        for source in self.sources:
            for start, days in self.plan(source):
                r = self._request(source, start, days)
                results.append(r)
                if not r.ok:
                    break
        return results

    def _request(self, source: str, start: date, days: int) -> PollResult:
        r = PollResult(source, start, days)
        subject = _subject(source, self.bbox)
        at = self.clock().astimezone(UTC)
        try:
            body = self.client.fetch(source, self.bbox, days, start)
        except FirmsApiError as err:
            r.error = err.message
            self.store.log(self.actor, FAILED, subject, {
                "from": start.isoformat(), "days": days, "error": err.message[:300]})
            log.warning("FIRMS poll of %s failed: %s", subject, err.message)
            return r
        r.name = f"firms-poll_{source}_{start.isoformat()}_{days}d_{at:%Y%m%dT%H%M%SZ}.csv"
        o = receive(self.store, body, r.name, FirmsSource(), registry=self.registry,
                    actor=self.actor)
        if o.refused or o.report is None:
            r.error = f"response refused by the intake: {o.refused}"
            self.store.log(self.actor, FAILED, subject, {
                "from": start.isoformat(), "days": days, "error": r.error[:300],
                "kept_as": r.name})
            return r
        rep = o.report
        r.rows, r.new, r.duplicates, r.quarantined = (rep.rows, rep.new, rep.duplicates,
                                                      len(o.quarantined))
        through = start + timedelta(days=days - 1)
        self.store.log(self.actor, ACTION, subject, {
            "from": start.isoformat(), "through": through.isoformat(), "batch": r.name,
            "rows": rep.rows, "new": rep.new, "duplicates": rep.duplicates,
            "polled_at": at.isoformat()})
        return r

    def run(self, every_s: float, stop: threading.Event | None = None,
            polls: int | None = None, on_poll: Callable[[list[PollResult]], None] | None = None
            ) -> int:
        """Poll every ``every_s`` seconds until ``stop`` is set (or ``polls`` done)."""
        if every_s <= 0:
            raise ConfigError("the polling interval must be positive",
                              fix="give --every in seconds, e.g. 900")
        stop = stop or threading.Event()
        done = 0
        while not stop.is_set() and (polls is None or done < polls):
            results = self.poll_once()
            done += 1
            if on_poll:
                on_poll(results)
            if polls is not None and done >= polls:
                break
            stop.wait(every_s)
        return done
