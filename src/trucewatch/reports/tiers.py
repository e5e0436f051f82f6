"""Tiered products on a clock: the automatic incident lists and the daily bulletin, each
versioned and immutable once published, computed from the store's state alone.

The CTBTO's International Data Centre issues automatic event lists some hours after the
event, then revised ones as late data arrive, then a reviewed bulletin; the OSCE SMM
published every day with data to 19:30 local. :func:`tick` is that clock, run at a
given ``now`` (``trucewatch products tick --store S --now T`` from cron or a test, and
every ``--products-interval`` seconds inside ``trucewatch serve``):

* **Incident lists**, one per UTC day D (``list-D-TIER.json``, restricted: they hold
  unreviewed incidents). A :class:`Schedule` has tiers, by default ``automatic`` (due
  from the day's start, updated whenever the day's incidents change, so within one
  clock interval of data arrival), ``6h`` (due 6 h after the day's end) and ``24h`` (24
  h after). At each tick only the latest tier due for a day is live: it is published
  when it first falls due, and revised (``list-D-TIER.revN.json``) when the store's
  incidents of D no longer match its latest revision (late data, a review). A tier
  that fell due while a later one was also due (the clock was down) is not published
  on its own: the later one says the same and more.
* **The daily bulletin** of local day L (``daily-L-public.json`` and
  ``daily-L-restricted.json``), cut at ``bulletin_at`` in ``timezone`` (default 19:30
  Europe/Kyiv): the incidents of the period since the previous day's cut, from the
  reviewed state (verified incidents with the rule each breaks; the others counted by
  review state). The public variant holds verified incidents only, to 0.1 degree.
  Late data or later decisions about the period revise it (``.revN``).

A published product is never edited: a change becomes a new revision that names the
one it revises and why. Each product is recorded by
:meth:`~trucewatch.storage.sqlite.SqliteStore.publish_product` (SHA-256) and its bytes
kept in the store (:func:`trucewatch.reports.archive.archive_product`), so that it is
listed at ``GET /api/v1/products`` and written back by ``trucewatch report --store S
--date D`` from the store alone. Whether a product changed is decided on its
``content`` (what it says), never on its bookkeeping (when it was cut).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from trucewatch.errors import ConfigError, TrucewatchError
from trucewatch.ingest.base import unpack
from trucewatch.model.enums import Status
from trucewatch.model.incident import Incident, Violation
from trucewatch.reports.archive import archive_product, revision_of
from trucewatch.storage.protocols import BulletinStore, ClockStore, EvidenceStore

log = logging.getLogger("trucewatch.products")

SCHEMA = "trucewatch/product"
# how many days back a tick publishes a day that has no product yet (a store with a long
# history, at the clock's first start): older days are left unpublished, and said so
DEFAULT_CATCH_UP_DAYS = 7
LIST, DAILY = "list", "daily"
_NAME = re.compile(r"^(list|daily)-(\d{4}-\d\d-\d\d)-([A-Za-z0-9_]+?)(?:\.rev(\d+))?\.json$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|min|h|d)$")
_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
REVIEWED = frozenset(Status) - {Status.AUTOMATIC, Status.PENDING_VERIFICATION}


def parse_duration(text: str) -> timedelta:
    """``5m``, ``6h``, ``1d``, ``90s`` as a timedelta."""
    m = _DURATION.match(text.strip().lower())
    if not m:
        raise ConfigError(f"duration {text!r} not understood",
                          fix="write a number and a unit: 90s, 5m, 6h, 1d")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


@dataclass(frozen=True)
class Tier:
    """One tier of the incident lists: ``delay`` after its anchor (the day's start for
    the first, rolling tier; the day's end for the others)."""

    name: str
    delay: timedelta

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_]+", self.name):
            raise ConfigError(f"tier name {self.name!r} is not a plain word",
                              fix="name tiers with letters, digits and _ (e.g. 6h)")
        if self.delay < timedelta(0):
            raise ConfigError(f"tier {self.name}: negative delay", fix="give 0 or more")


DEFAULT_TIERS = (Tier("automatic", timedelta(0)), Tier("6h", timedelta(hours=6)),
                 Tier("24h", timedelta(hours=24)))


@dataclass(frozen=True)
class Schedule:
    """When products are due. The first tier is the automatic list (rolling); the
    others are revisions at their delay after the day's end, in increasing order."""

    tiers: tuple[Tier, ...] = DEFAULT_TIERS
    bulletin_at: time = time(19, 30)
    timezone: str = "Europe/Kyiv"

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ConfigError("no tier given", fix="give at least the automatic tier")
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ConfigError(f"tier named twice in {', '.join(names)}",
                              fix="give each tier its own name")
        later = [t.delay for t in self.tiers[1:]]
        if later != sorted(later) or len(set(later)) != len(later):
            raise ConfigError("tiers after the first must have increasing delays",
                              fix="e.g. automatic=0m,6h=6h,24h=24h")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {self.timezone!r}",
                              fix="give an IANA zone such as Europe/Kyiv or UTC") from None

    @classmethod
    def parse(cls, tiers: str | None = None, bulletin_at: str | None = None,
              timezone: str | None = None) -> Schedule:
        """From ``automatic=0m,6h=6h,24h=24h``, ``19:30`` and ``Europe/Kyiv``."""
        got: list[Tier] = []
        for part in (tiers or "").split(","):
            if not part.strip():
                continue
            name, sep, delay = part.partition("=")
            if not sep:
                raise ConfigError(f"tier {part!r} has no delay",
                                  fix="write NAME=DELAY, e.g. 6h=6h")
            got.append(Tier(name.strip(), parse_duration(delay)))
        at = cls.bulletin_at
        if bulletin_at:
            try:
                at = time.fromisoformat(bulletin_at)
            except ValueError:
                raise ConfigError(f"bulletin time {bulletin_at!r} is not HH:MM",
                                  fix="e.g. 19:30 (local time)") from None
        return cls(tuple(got) or DEFAULT_TIERS, at, timezone or cls.timezone)

    def tier_due(self, tier: Tier, day: date) -> datetime:
        start = datetime.combine(day, time(0), UTC)
        anchor = start if tier == self.tiers[0] else start + timedelta(days=1)
        return anchor + tier.delay

    def live_tier(self, day: date, now: datetime) -> Tier | None:
        """The latest tier due for ``day`` at ``now`` (None: none due yet)."""
        due = [t for t in self.tiers if self.tier_due(t, day) <= now]
        return max(due, key=lambda t: self.tier_due(t, day)) if due else None

    def cut(self, day: date) -> datetime:
        """The daily bulletin's cut of local day ``day``, in UTC."""
        return datetime.combine(day, self.bulletin_at, ZoneInfo(self.timezone)
                                ).astimezone(UTC)

    def bulletin_day(self, t: datetime) -> date:
        """The local day whose bulletin period (after the previous cut, up to its own)
        holds ``t``."""
        local = t.astimezone(ZoneInfo(self.timezone)).date()
        return local if t <= self.cut(local) else local + timedelta(days=1)

    def latest_cut_day(self, now: datetime) -> date:
        day = self.bulletin_day(now)
        return day if self.cut(day) <= now else day - timedelta(days=1)

    def describe(self) -> dict[str, Any]:
        return {"tiers": {t.name: f"{t.delay.total_seconds():g}s" for t in self.tiers},
                "bulletin_at": self.bulletin_at.strftime("%H:%M"), "timezone": self.timezone}


@dataclass(frozen=True)
class Published:
    name: str
    family: str
    day: date
    revision: int
    reason: str


@dataclass
class TickResult:
    now: datetime
    published: list[Published] = field(default_factory=list)
    unchanged: int = 0  # live products whose content still holds
    # days with nothing published yet, older than the catch-up window: not published
    skipped_days: list[date] = field(default_factory=list)
    # products another clock on the same store published first (this one's: a no-op)
    lost: list[str] = field(default_factory=list)
    # local days whose bulletin could not be rendered (HTML/PDF), and why
    not_rendered: dict[date, str] = field(default_factory=dict)


class BulletinMaker(Protocol):
    """Renders local day ``day``'s bulletin as of ``cutoff`` into ``staging`` (which
    holds the day's published bulletin JSONs, for the revision rule), returning the
    files to publish (path, kind, audience), or why it cannot be rendered."""

    def __call__(self, store: BulletinStore, day: date, cutoff: datetime, staging: Path
                 ) -> list[tuple[Path, str, str]] | str: ...


def family_of(name: str) -> tuple[str, date, str, int] | None:
    """(kind, day, tier or variant, revision) of a clock product's name, else None."""
    m = _NAME.match(name)
    if not m:
        return None
    return m.group(1), date.fromisoformat(m.group(2)), m.group(3), int(m.group(4) or 1)


def _canon(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _incident(inc: Incident, v: Violation | None, public: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": inc.id, "time_start": _iso(inc.time_start), "time_end": _iso(inc.time_end),
        "category": inc.category.value, "status": inc.status.value,
        "sector": inc.sector_id, "n_sources": inc.n_sources,
        "source": inc.attributes.get("source", ""),
        "rule": v.rule if v else "", "violation": v.category.value if v else ""}
    if public:  # to the 0.1 degree cell, no zone (a hub zone is not for the public)
        row |= {"lat": round(inc.location.lat, 1), "lon": round(inc.location.lon, 1)}
    else:
        row |= {"zones": sorted(inc.zone_ids),
                "lat": round(inc.location.lat, 5), "lon": round(inc.location.lon, 5),
                "uncertainty_m": round(inc.location.uncertainty_m, 1),
                "observation_ids": sorted(inc.observation_ids),
                "explanation": v.explanation if v else ""}
    return row


@dataclass
class _Row:
    id: str
    time_start: datetime
    status: str
    sha256: str


@dataclass
class _State:
    """What the store holds, read once per tick: each incident's digest (cheap); an
    incident is decoded only for a product whose inputs changed."""

    store: ClockStore
    rows: list[_Row]
    products: list[dict[str, Any]]
    decoded: dict[str, Incident] = field(default_factory=dict)
    violations: dict[str, Violation] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)  # names another clock published first

    @classmethod
    def of(cls, store: ClockStore) -> _State:
        rows = [_Row(i, datetime.fromisoformat(t).astimezone(UTC), st, sha)
                for i, t, st, sha in store.incident_digests()]
        return cls(store, sorted(rows, key=lambda r: (r.time_start, r.id)),
                   store.products())

    def between(self, start: datetime, end: datetime, right_closed: bool = False
                ) -> list[_Row]:
        if right_closed:
            return [r for r in self.rows if start < r.time_start <= end]
        return [r for r in self.rows if start <= r.time_start < end]

    @staticmethod
    def fingerprint(rows: list[_Row]) -> str:
        return hashlib.sha256("\n".join(f"{r.id}|{r.status}|{r.sha256}" for r in rows)
                              .encode()).hexdigest()

    def incidents(self, rows: list[_Row]) -> list[Incident]:
        missing = [r.id for r in rows if r.id not in self.decoded]
        for k in missing:
            self.decoded[k] = self.store.incident(k)
        for v in self.store.violations_of(missing) if missing else []:
            self.violations.setdefault(v.incident_id, v)
        return [self.decoded[r.id] for r in rows]


def list_content(state: _State, rows: list[_Row], day: date) -> dict[str, Any]:
    start = datetime.combine(day, time(0), UTC)
    shown = state.incidents(rows)
    return {"period": {"from": _iso(start), "to": _iso(start + timedelta(days=1))},
            "incidents": [_incident(i, state.violations.get(i.id), False) for i in shown],
            "by_status": dict(sorted(Counter(i.status.value for i in shown).items())),
            "candidate_violations": sum(i.id in state.violations for i in shown)}


def daily_content(state: _State, rows: list[_Row], schedule: Schedule, day: date,
                  public: bool) -> dict[str, Any]:
    start, end = schedule.cut(day - timedelta(days=1)), schedule.cut(day)
    shown = state.incidents(rows)
    verified = [i for i in shown if i.status is Status.VERIFIED]
    listed = verified if public else [i for i in shown if i.status in REVIEWED]
    return {
        "period": {"from": _iso(start), "to": _iso(end),
                   "cut": f"{schedule.bulletin_at:%H:%M} {schedule.timezone}"},
        "verified_violations": sum(i.id in state.violations for i in verified),
        "incidents": [_incident(i, state.violations.get(i.id), public) for i in listed],
        "by_status": dict(sorted(Counter(i.status.value for i in shown).items())),
        "awaiting_review": sum(i.status not in REVIEWED for i in shown)}


def _latest(state: _State, family: str) -> tuple[int, dict[str, Any]] | None:
    """The latest published revision of ``family`` (``list-D-6h``) and its product row."""
    mine = [(f[3], p) for p in state.products
            if (f := family_of(str(p["name"]))) is not None
            and f"{f[0]}-{f[1].isoformat()}-{f[2]}" == family]
    return max(mine, key=lambda x: x[0]) if mine else None


def _published_doc(store: EvidenceStore, product: dict[str, Any]) -> dict[str, Any] | None:
    try:
        raw = unpack(store.raw_input(str(product["sha256"])), str(product["name"]))
        doc = json.loads(raw)
    except (ValueError, TrucewatchError):
        return None
    return doc if isinstance(doc, dict) else None


def _write(state: _State, out_dir: Path, family: str, kind: str, day: date,
           audience: str, header: dict[str, Any], rows: list[_Row],
           content_of: Callable[[], dict[str, Any]], now: datetime,
           actor: str) -> Published | None:
    """Publish the content as the next revision of ``family`` unless its latest
    revision already says it (None then). The content is built only when the
    incidents it rests on changed since (``source_sha256``)."""
    store = state.store
    source = state.fingerprint(rows)
    latest = _latest(state, family)
    revision, revises, reason = 1, None, "first publication"
    old = None
    if latest is not None:
        old = _published_doc(store, latest[1])
        if old is not None and old.get("source_sha256") == source:
            return None  # nothing it rests on changed
    content = content_of()
    digest = hashlib.sha256(_canon(content).encode()).hexdigest()
    if latest is not None:
        if old is not None and old.get("content_sha256") == digest:
            return None  # changed, but not in what the product says
        revision, revises = latest[0] + 1, str(latest[1]["name"])
        reason = _why(old, content)
    name = f"{family}.json" if revision == 1 else f"{family}.rev{revision}.json"
    doc = {"schema": SCHEMA, "product": kind, **header, "day": day.isoformat(),
           "audience": audience, "revision": revision, "revises": revises,
           "reason": reason, "cut_at": _iso(now), "content_sha256": digest,
           "source_sha256": source, "content": content}
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = out_dir / f".{name}.{os.getpid()}.{id(doc):x}.tmp"
    scratch.write_text(json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=True)
                       + "\n", encoding="utf-8")
    if not _claim(state, scratch, out_dir / name, "json", day, audience, actor):
        return None
    return Published(name, family, day, revision, reason)


def _claim(state: _State, scratch: Path, path: Path, kind: str, day: date, audience: str,
           actor: str) -> bool:
    """Publish the product written to ``scratch`` under ``path``'s name, then move it
    there. The store's product name is unique: when another clock on the same store
    published that name first, its product stands, this one's scratch file is dropped
    and False returned (a no-op, logged), so a published file is never overwritten."""
    store = state.store
    try:
        if not store.publish_product(scratch, kind, day, audience, actor=actor,
                                     recorded_path=path):
            log.info("products clock: %s was published meanwhile by another clock on "
                     "this store; this clock's copy is dropped (no-op)", path.name)
            state.lost.append(path.name)
            return False
        scratch.replace(path)
    finally:
        scratch.unlink(missing_ok=True)
    archive_product(store, path, actor=actor)
    state.products = store.products()
    return True


def _why(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    if old is None:
        return "the previous revision could not be read back; published again"
    before = {r["id"]: r for r in (old.get("content") or {}).get("incidents", [])}
    after = {r["id"]: r for r in new.get("incidents", [])}
    added = sorted(set(after) - set(before))
    gone = sorted(set(before) - set(after))
    changed = sorted(k for k in set(after) & set(before) if after[k] != before[k])
    parts = []
    if added:
        parts.append(f"{len(added)} incident(s) added (late data or a later review)")
    if gone:
        parts.append(f"{len(gone)} incident(s) no longer in it")
    if changed:
        parts.append(f"{len(changed)} incident(s) changed (review state, fusion)")
    return "; ".join(parts) or "figures changed since the previous revision"


class Clock(StrEnum):
    """What time the products clock runs at: ``wall`` (the machine's clock: a live
    mission), or ``data`` (the end of the latest UTC day the store holds data for,
    never after the wall clock: a replay of past data, a restored store, a demo, whose
    products are cut as that day's data pass, not when the calendar does)."""

    WALL = "wall"
    DATA = "data"


def data_day(store: ClockStore, rows: list[_Row] | None = None) -> date | None:
    """The latest UTC day the store holds data for: the processing worker's report day
    (the day of the latest stored input, ``worker``/``worker_pass``) or the latest
    incident's day, whichever is later; None when it holds neither."""
    days = []
    last = store.last_record("worker", "worker_pass")
    if last and last.get("report_day"):
        with contextlib.suppress(ValueError):  # a malformed entry names no day
            days.append(date.fromisoformat(str(last["report_day"])))
    starts = [r.time_start for r in rows] if rows is not None else [
        datetime.fromisoformat(t) for _, t, _, _ in store.incident_digests()]
    if starts:
        days.append(max(starts).astimezone(UTC).date())
    return max(days) if days else None


def clock_time(store: ClockStore, clock: Clock, wall: datetime) -> datetime:
    """The tick's time under ``clock`` (see :class:`Clock`); ``wall`` when the store
    holds no data yet."""
    if clock is Clock.WALL:
        return wall
    day = data_day(store)
    if day is None:
        return wall
    return min(wall, datetime.combine(day + timedelta(days=1), time(0), UTC))


def _days(state: _State, schedule: Schedule, now: datetime, catch_up_days: int
          ) -> tuple[set[date], set[date], set[date], date]:
    """The UTC days with a list to consider, the local days with a bulletin, the days
    left out (with nothing published yet and more than ``catch_up_days`` before the
    latest incident, or now when there is none), and the window's first local day.

    Products are named by their data's day: besides the days holding incidents, the
    quiet list and bulletin the clock publishes are those of the latest day the store
    holds data for (:func:`data_day`), not the wall clock's day on an old store (a
    replay, a restored store); on a live store that is today; a store without data
    has none."""
    seen_rows = [r for r in state.rows if r.time_start <= now]
    lists = {r.time_start.date() for r in seen_rows}
    latest_cut = schedule.latest_cut_day(now)
    daily = {schedule.bulletin_day(r.time_start) for r in seen_rows}
    got = data_day(state.store, state.rows)  # capped by the clock below
    if got is not None:  # a store with no data yet has no day to name a product by
        current = min(now.astimezone(UTC).date(), got)
        lists.add(current)
        start = datetime.combine(current, time(0), UTC)
        daily.add(min(latest_cut, schedule.bulletin_day(start)))
    started: dict[str, set[date]] = {LIST: set(), DAILY: set()}
    for p in state.products:
        f = family_of(str(p["name"]))
        if f is not None:
            started[f[0]].add(f[1])
    # counted back from the latest incident (now when none): a live store's is today; a
    # replayed or restored one's last days of data are published, not skipped
    seen = [r.time_start for r in seen_rows]
    last = max(seen) if seen else now
    oldest_list = last.astimezone(UTC).date() - timedelta(days=catch_up_days)
    oldest_daily = min(latest_cut, schedule.bulletin_day(last)) - timedelta(
        days=catch_up_days)
    left = {d for d in lists if d < oldest_list} | {d for d in daily if d < oldest_daily}
    lists = {d for d in lists if d >= oldest_list} | started[LIST]
    daily = {d for d in daily if d >= oldest_daily} | started[DAILY]
    left -= lists | daily
    return lists, {d for d in daily if d <= latest_cut}, left, oldest_daily


def tick(store: ClockStore, now: datetime, out_dir: Path,
         schedule: Schedule | None = None, actor: str = "products-clock",
         catch_up_days: int = DEFAULT_CATCH_UP_DAYS,
         bulletins: BulletinMaker | None = None) -> TickResult:
    """Publish every product due at ``now`` whose content is not published yet (see the
    module's docstring); safe to run as often as wanted, and again after a crash, and
    by two clocks on one store (the second one's attempt at a name is a no-op).

    ``catch_up_days``: a day with no product yet is published only if it is at most
    this many days before the store's latest incident (``now`` when there is none;
    default 7), so that a clock's first start on a store
    with a long history does not publish every old day at once; the days left out are
    in the result (``skipped_days``) and logged. Days already published keep being
    revised on late data. ``bulletins``: renders the daily bulletin's HTML/PDF/JSON
    (``bulletin-L-{public,restricted}.*``) at the cut; without one, or when it cannot,
    the daily bulletin is the ``daily-L-*.json`` product only."""
    if now.tzinfo is None:
        raise ConfigError(f"clock time {now.isoformat()} has no UTC offset",
                          fix="give the time as ...Z or +00:00")
    if catch_up_days < 0:
        raise ConfigError(f"catch-up of {catch_up_days} days", fix="give 0 or more days")
    schedule = schedule or Schedule()
    state = _State.of(store)
    result = TickResult(now)
    list_days, daily_days, left, window = _days(state, schedule, now, catch_up_days)
    result.skipped_days = sorted(left)
    if left:
        log.info("products clock: %d day(s) from %s to %s have no product and are older "
                 "than the catch-up window (%d days): not published (--catch-up-days N "
                 "to publish them)", len(left), min(left), max(left), catch_up_days)
    for day in sorted(list_days):
        tier = schedule.live_tier(day, now)
        if tier is None:
            continue
        family = f"{LIST}-{day.isoformat()}-{tier.name}"
        header = {"tier": tier.name, "due_at": _iso(schedule.tier_due(tier, day)),
                  "schedule": schedule.describe()}
        start = datetime.combine(day, time(0), UTC)
        rows = state.between(start, start + timedelta(days=1))
        _count(result, _write(state, out_dir, family, LIST, day, "restricted", header,
                              rows, partial(list_content, state, rows, day), now, actor))
    for day in sorted(daily_days):
        rows = state.between(schedule.cut(day - timedelta(days=1)), schedule.cut(day),
                             right_closed=True)
        revised = False
        for variant in ("public", "restricted"):
            family = f"{DAILY}-{day.isoformat()}-{variant}"
            header = {"tier": DAILY, "due_at": _iso(schedule.cut(day)),
                      "schedule": schedule.describe()}
            done = _write(state, out_dir, family, DAILY, day, variant, header, rows,
                          partial(daily_content, state, rows, schedule, day,
                                  variant == "public"), now, actor)
            revised |= done is not None
            _count(result, done)
        # rendered within the window, and beyond it when its period's JSON just changed
        # (late data about an old day): a tick does not re-examine every old bulletin
        if bulletins is not None and (day >= window or revised):
            _bulletin(state, out_dir, day, schedule.cut(day), bulletins, result, actor)
    result.lost = list(state.lost)
    return result


def _bulletin(state: _State, out_dir: Path, day: date, cutoff: datetime,
              maker: BulletinMaker, result: TickResult, actor: str) -> None:
    """The day's rendered bulletin: the maker renders into a scratch folder holding the
    day's published bulletin JSONs; what it writes that is not published yet is
    published (a revision when the published one says something else)."""
    prefix = f"bulletin-{day.isoformat()}-"
    staging = Path(tempfile.mkdtemp(prefix=".bulletin-", dir=_mkdir(out_dir)))
    try:
        for p in state.products:
            name = str(p["name"])
            if name.startswith(prefix) and name.endswith(".json"):
                try:
                    raw = unpack(state.store.raw_input(str(p["sha256"])), name)
                except TrucewatchError:
                    continue
                (staging / name).write_bytes(raw)
        got = maker(state.store, day, cutoff, staging)
        if isinstance(got, str):
            result.not_rendered[day] = got
            return
        published = {str(p["name"]) for p in state.products}
        for path, kind, audience in got:
            if path.name in published:
                continue
            scratch = out_dir / f".{path.name}.{os.getpid()}.tmp"
            shutil.copyfile(path, scratch)
            if _claim(state, scratch, out_dir / path.name, kind, day, audience, actor):
                rev = revision_of(path.name)
                result.published.append(Published(
                    path.name, f"bulletin-{day.isoformat()}", day, rev,
                    "first publication" if rev == 1 else
                    "the store's state as of the cut changed since the last revision"))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _count(result: TickResult, done: Published | None) -> None:
    if done is None:
        result.unchanged += 1
    else:
        result.published.append(done)


def tier_of(name: str) -> str | None:
    """The tier a product belongs to: a list's tier, ``daily``, or ``bulletin`` for the
    cycle's bulletins (None for anything else)."""
    f = family_of(name)
    if f is not None:
        return f[2] if f[0] == LIST else DAILY
    return "bulletin" if name.startswith(("bulletin-", "incidents-", "coverage-")) else None
