"""The products clock (reports.tiers) with a fake clock: ``now`` is passed explicitly,
nothing sleeps. Which products are due when, immutability, revisions on late data,
listing at /api/v1/products and rendering from the store alone."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trucewatch.errors import ConfigError
from trucewatch.model.enums import Category, Status
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.observation import Location
from trucewatch.reports.archive import restore
from trucewatch.reports.tiers import Schedule, family_of, tick
from trucewatch.storage import SqliteStore

DAY = datetime(2026, 5, 30, tzinfo=UTC)


def _incident(k: int, at: datetime, status: Status = Status.AUTOMATIC,
              violation: bool = True) -> tuple[Incident, list[Violation]]:
    inc = Incident(f"inc-{k}", Category.EXPLOSION_IMPACT, at, at + timedelta(minutes=1),
                   Location(48.0 + k / 100, 37.8, 500.0), [f"o-{k}"], status=status,
                   sector_id="S1")
    vio = [Violation(f"v-{k}", inc.id, "agr", "no_fire_in_buffer", "fire in the buffer",
                     Category.EXPLOSION_IMPACT, at)] if violation else []
    return inc, vio


def _add(store: SqliteStore, k: int, at: datetime, status: Status = Status.AUTOMATIC
         ) -> None:
    inc, vio = _incident(k, at, status)
    store.save_incidents([inc], vio, replace_automatic=False)


def _names(store: SqliteStore) -> set[str]:
    return {str(p["name"]) for p in store.products()}


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(tmp_path / "tw.db")
    yield s
    s.close()


def test_which_products_are_due_when(store: SqliteStore, tmp_path: Path) -> None:
    out = tmp_path / "products"
    _add(store, 1, DAY + timedelta(hours=10))
    # during the day: the automatic list of the day, no bulletin before its cut
    r = tick(store, DAY + timedelta(hours=10, minutes=2), out)
    assert [p.name for p in r.published] == ["list-2026-05-30-automatic.json",
                                             "daily-2026-05-29-public.json",
                                             "daily-2026-05-29-restricted.json"]
    # 19:30 Kyiv (EEST, UTC+3) is 16:30 UTC: due at the cut, not a minute before
    assert not tick(store, DAY + timedelta(hours=16, minutes=29), out).published
    r = tick(store, DAY + timedelta(hours=16, minutes=30), out)
    assert {p.name for p in r.published} == {"daily-2026-05-30-public.json",
                                             "daily-2026-05-30-restricted.json"}
    # the 6 h tier: 6 h after the day's end; the 24 h tier: 24 h after. The next day
    # has no list while the store holds no data of it (products are named by their
    # data's day), then its own automatic list once an input of it is stored (the
    # worker's pass names the day of the latest input), even an empty one
    assert not tick(store, DAY + timedelta(hours=29, minutes=58), out).published
    store.record("worker", "worker_pass", "watermark", {"watermark": 0,
                                                        "report_day": "2026-05-31"})
    r = tick(store, DAY + timedelta(hours=29, minutes=59), out)
    assert [p.name for p in r.published] == ["list-2026-05-31-automatic.json"]
    r = tick(store, DAY + timedelta(hours=30), out)
    assert [p.name for p in r.published] == ["list-2026-05-30-6h.json"]
    r = tick(store, DAY + timedelta(hours=48), out)
    assert "list-2026-05-30-24h.json" in {p.name for p in r.published}
    # nothing changed: ticking again publishes nothing
    again = tick(store, DAY + timedelta(hours=49), out)
    assert not [p for p in again.published if p.day == DAY.date()]


def test_the_automatic_list_follows_the_data(store: SqliteStore, tmp_path: Path) -> None:
    out = tmp_path / "p"
    _add(store, 1, DAY + timedelta(hours=3))
    tick(store, DAY + timedelta(hours=3, minutes=1), out)
    _add(store, 2, DAY + timedelta(hours=4))
    r = tick(store, DAY + timedelta(hours=4, minutes=1), out)
    rev = [p for p in r.published if p.family == "list-2026-05-30-automatic"]
    assert [p.name for p in rev] == ["list-2026-05-30-automatic.rev2.json"]
    assert "1 incident(s) added" in rev[0].reason
    doc = json.loads((out / rev[0].name).read_text())
    assert [i["id"] for i in doc["content"]["incidents"]] == ["inc-1", "inc-2"]
    assert doc["revises"] == "list-2026-05-30-automatic.json"


def test_late_data_go_into_a_revision_never_into_the_published(store: SqliteStore,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "p"
    _add(store, 1, DAY + timedelta(hours=3))
    tick(store, DAY + timedelta(hours=30), out)  # the 6h list is live
    first = store.product("list-2026-05-30-6h.json")
    assert first is not None
    before = (out / "list-2026-05-30-6h.json").read_bytes()
    _add(store, 2, DAY + timedelta(hours=5))  # late: older than the published list
    r = tick(store, DAY + timedelta(hours=31), out)
    assert "list-2026-05-30-6h.rev2.json" in {p.name for p in r.published}
    # the published product is untouched, in the folder and in the store's record
    assert (out / "list-2026-05-30-6h.json").read_bytes() == before
    assert store.product("list-2026-05-30-6h.json") == first
    assert hashlib.sha256(before).hexdigest() == first["sha256"]
    old = json.loads(before)
    assert [i["id"] for i in old["content"]["incidents"]] == ["inc-1"]
    # the daily bulletin of the 30th (published at its cut) was revised too: the late
    # incident is in its period
    assert "daily-2026-05-30-restricted.rev2.json" in {p.name for p in r.published}


def test_a_clock_that_was_down_publishes_only_the_latest_tier(store: SqliteStore,
                                                              tmp_path: Path) -> None:
    _add(store, 1, DAY + timedelta(hours=3))
    r = tick(store, DAY + timedelta(days=3), tmp_path / "p")
    lists = sorted(p.name for p in r.published if p.name.startswith("list-2026-05-30"))
    assert lists == ["list-2026-05-30-24h.json"]


def test_daily_bulletin_from_the_reviewed_state(store: SqliteStore, tmp_path: Path) -> None:
    out = tmp_path / "p"
    # the period of the 30th: after 29th 19:30 Kyiv (16:30 UTC) up to 30th 19:30
    _add(store, 1, DAY + timedelta(hours=8), Status.VERIFIED)
    _add(store, 2, DAY + timedelta(hours=9))  # automatic: counted, not listed
    _add(store, 3, DAY + timedelta(hours=17))  # after the cut: the 31st's bulletin
    _add(store, 4, DAY - timedelta(hours=7), Status.VERIFIED)  # 29th 17:00 UTC: in it
    tick(store, DAY + timedelta(hours=16, minutes=31), out)
    pub = json.loads((out / "daily-2026-05-30-public.json").read_text())
    res = json.loads((out / "daily-2026-05-30-restricted.json").read_text())
    assert [i["id"] for i in pub["content"]["incidents"]] == ["inc-4", "inc-1"]
    assert pub["content"]["awaiting_review"] == 1
    assert pub["content"]["verified_violations"] == 2
    assert pub["content"]["by_status"] == {"automatic": 1, "verified": 2}
    assert "observation_ids" not in pub["content"]["incidents"][0]
    assert "zones" not in pub["content"]["incidents"][0]
    assert pub["content"]["incidents"][0]["lat"] == round(48.04, 1)
    assert res["content"]["incidents"][0]["observation_ids"] == ["o-4"]
    assert pub["audience"] == "public" and res["audience"] == "restricted"
    assert {str(p["audience"]) for p in store.products()
            if str(p["name"]).startswith("list-")} == {"restricted"}
    # the pending incident verified later: a revision, the first publication stays
    store.close()
    s2 = SqliteStore(tmp_path / "tw.db")
    try:
        t = s2._t("incidents")
        with s2._transaction():
            s2._x(t.update().where(t.c.id == "inc-2").values(status="verified"))
        r = tick(s2, DAY + timedelta(hours=18), out)
        assert "daily-2026-05-30-public.rev2.json" in {p.name for p in r.published}
        assert (out / "daily-2026-05-30-public.json").read_bytes() == \
            (json.dumps(pub, indent=1, ensure_ascii=False, sort_keys=True) + "\n").encode()
    finally:
        s2.close()


def test_configured_schedule(store: SqliteStore, tmp_path: Path) -> None:
    s = Schedule.parse("auto=10m,late=2h", "07:00", "UTC")
    _add(store, 1, DAY + timedelta(hours=1))
    r = tick(store, DAY + timedelta(minutes=9), tmp_path / "p", s)
    assert not [p for p in r.published if p.name.startswith("list-")]
    r = tick(store, DAY + timedelta(minutes=10), tmp_path / "p", s)
    assert "list-2026-05-30-auto.json" in {p.name for p in r.published}
    r = tick(store, DAY + timedelta(hours=26), tmp_path / "p", s)
    assert "list-2026-05-30-late.json" in {p.name for p in r.published}
    assert "daily-2026-05-30-public.json" in {p.name for p in r.published}  # 07:00 UTC
    assert "daily-2026-05-31-public.json" not in {p.name for p in r.published}


@pytest.mark.parametrize(("tiers", "at", "tz", "why"), [
    ("a=5x", None, None, "duration"), ("a=0m,b=6h,c=1h", None, None, "increasing"),
    ("a=0m,a=1h", None, None, "twice"), (None, "25:99", None, "HH:MM"),
    (None, None, "Mars/Olympus", "time zone"), ("a/b=1h", None, None, "plain word"),
    ("a", None, None, "no delay")])
def test_bad_schedules_are_clear_errors(tiers: str | None, at: str | None, tz: str | None,
                                        why: str) -> None:
    with pytest.raises(ConfigError) as e:
        Schedule.parse(tiers, at, tz)
    assert why in str(e.value) and e.value.fix


def test_naive_now_is_refused(store: SqliteStore, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="UTC offset"):
        tick(store, datetime(2026, 5, 30, 12), tmp_path)


def test_products_render_from_the_store_alone(store: SqliteStore, tmp_path: Path) -> None:
    out = tmp_path / "p"
    _add(store, 1, DAY + timedelta(hours=3))
    tick(store, DAY + timedelta(hours=4), out)
    _add(store, 2, DAY + timedelta(hours=5))
    tick(store, DAY + timedelta(hours=6), out)
    for f in out.iterdir():
        f.unlink()  # the folder is gone: the store alone renders them
    done = restore(store, DAY.date(), tmp_path / "again")
    names = {r.path.name for r in done}
    # each product's latest revision: the list's rev2 beside the daily bulletins' rev1
    assert "list-2026-05-30-automatic.rev2.json" in names
    assert "list-2026-05-30-automatic.json" not in names
    assert all(r.from_store for r in done)


def test_cli_tick_and_api_listing(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from trucewatch.api import create_app
    from trucewatch.cli.app import app

    db = tmp_path / "tw.db"
    s = SqliteStore(db)
    _add(s, 1, DAY + timedelta(hours=3))
    token = s.add_token("root", "admin", actor="test")
    s.close()
    r = CliRunner().invoke(app, ["products", "tick", "--store", str(db), "--now",
                                 "2026-05-31T07:00:00Z"])
    assert r.exit_code == 0, r.output
    assert "list-2026-05-30-6h.json" in r.output
    assert (tmp_path / "tw.db.products" / "list-2026-05-30-6h.json").is_file()
    bad = CliRunner().invoke(app, ["products", "tick", "--store", str(db), "--now",
                                   "2026-05-31 07:00"])
    assert bad.exit_code != 0 and isinstance(bad.exception, ConfigError)
    assert "UTC offset" in str(bad.exception)
    client = TestClient(create_app(db))
    got = client.get("/api/v1/products", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200, got.text
    rows = {p["name"]: p for p in got.json()["products"]}
    assert rows["list-2026-05-30-6h.json"]["tier"] == "6h"
    assert rows["daily-2026-05-30-public.json"]["tier"] == "daily"
    # served from the store once the file is gone
    (tmp_path / "tw.db.products" / "list-2026-05-30-6h.json").unlink()
    body = client.get("/api/v1/bulletins/list-2026-05-30-6h.json",
                      headers={"Authorization": f"Bearer {token}"})
    assert body.status_code == 200 and body.json()["tier"] == "6h"


def test_family_of_names() -> None:
    assert family_of("list-2026-05-30-6h.rev3.json")[2:] == ("6h", 3)
    assert family_of("bulletin-2026-05-30-public.json") is None


# ------------------------------------------------------------- backlog at first start
def test_first_tick_on_a_long_history_is_bounded(store: SqliteStore, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "p"
    for k in range(30):  # one incident a day for 30 days before DAY
        _add(store, k, DAY - timedelta(days=29 - k, hours=-3))
    now = DAY + timedelta(hours=17)
    with caplog.at_level("INFO", logger="trucewatch.products"):
        r = tick(store, now, out)  # the default window: 7 days
    days = {p.day for p in r.published}
    assert min(days) == (now - timedelta(days=7)).date()
    assert r.skipped_days and max(r.skipped_days) < min(days)
    assert r.skipped_days[0] == (DAY - timedelta(days=29)).date()
    assert "older than the catch-up window (7 days)" in caplog.text
    assert not [n for n in _names(store) if family_of(n) and family_of(n)[1] < min(days)]
    # explicit: a wider window publishes the older days, once
    wide = tick(store, now + timedelta(minutes=1), out, catch_up_days=40)
    assert {p.day for p in wide.published} == set(r.skipped_days)
    assert not wide.skipped_days
    # a day already published keeps being revised on late data, window or not
    old = DAY - timedelta(days=20)
    _add(store, 99, old + timedelta(hours=9))
    late = tick(store, now + timedelta(minutes=2), out, catch_up_days=0)
    assert {p.name for p in late.published if p.day == old.date()} >= {
        f"list-{old.date()}-24h.rev2.json"}
    with pytest.raises(ConfigError, match="catch-up"):
        tick(store, now, out, catch_up_days=-1)


def test_catch_up_counts_back_from_the_latest_data(store: SqliteStore, tmp_path: Path
                                                   ) -> None:
    """A replayed or restored store whose data are months old: its last days are
    published, not all skipped as older than a week before the wall clock."""
    for k in range(20):
        _add(store, k, DAY - timedelta(days=19 - k, hours=-3))
    r = tick(store, DAY + timedelta(days=120), tmp_path / "p", catch_up_days=2)
    lists = {p.day for p in r.published if p.name.startswith("list-")}
    assert {DAY.date() - timedelta(days=d) for d in range(3)} <= lists
    assert DAY.date() - timedelta(days=3) not in lists
    assert len(r.skipped_days) == 17


def test_an_old_store_names_its_products_by_its_data_day(store: SqliteStore,
                                                         tmp_path: Path) -> None:
    """A store whose data end months before the wall clock (a replay, a restored
    store): no list or bulletin is named by the wall clock's day; the quiet products
    the clock adds are those of the data's last day."""
    _add(store, 1, DAY + timedelta(hours=3))  # 2026-05-30, 06:00 Kyiv
    wall = DAY + timedelta(days=187, hours=9)  # 2026-12-03
    r = tick(store, wall, tmp_path / "p")
    days = {p.day for p in r.published}
    assert wall.date() not in days and wall.date() - timedelta(days=1) not in days
    assert max(days) == DAY.date()
    assert {p.name for p in r.published} == {
        "list-2026-05-30-24h.json", "daily-2026-05-30-public.json",
        "daily-2026-05-30-restricted.json"}
    # the worker's pass says the data reach the 31st (an input of it, no incident): the
    # 31st gets its list and bulletins, still nothing of December
    store.record("worker", "worker_pass", "watermark", {"watermark": 0,
                                                        "report_day": "2026-05-31"})
    r = tick(store, wall + timedelta(minutes=1), tmp_path / "p")
    assert {p.name for p in r.published} == {
        "list-2026-05-31-24h.json", "daily-2026-05-31-public.json",
        "daily-2026-05-31-restricted.json"}


def test_a_store_without_data_publishes_nothing(store: SqliteStore, tmp_path: Path) -> None:
    """No data, no day to name a product by: an empty store's first tick (a service's
    first start) publishes no list or bulletin named by the wall clock."""
    assert not tick(store, DAY + timedelta(hours=20), tmp_path / "p").published


def test_the_data_clock_cuts_when_the_data_pass(store: SqliteStore) -> None:
    """``--products-clock data``: the tick's time is the end of the latest data day,
    never after the wall clock; the wall clock on a store without data."""
    from trucewatch.reports.tiers import Clock, clock_time

    wall = DAY + timedelta(days=187)
    assert clock_time(store, Clock.DATA, wall) == wall  # no data yet
    _add(store, 1, DAY + timedelta(hours=3))
    assert clock_time(store, Clock.DATA, wall) == DAY + timedelta(days=1)
    assert clock_time(store, Clock.WALL, wall) == wall
    early = DAY + timedelta(hours=5)  # a clock behind the data: the wall clock wins
    assert clock_time(store, Clock.DATA, early) == early


# ------------------------------------------------------- two clocks on one store
class _Racing:
    """The store as one clock sees it, while a second clock on the same store file
    publishes everything between this one's decision and its first publication."""

    def __init__(self, inner: SqliteStore, rival: SqliteStore, out: Path, at: datetime
                 ) -> None:
        self.inner, self.rival, self.out, self.at = inner, rival, out, at
        self.rival_result: object = None

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def publish_product(self, *args: object, **kw: object) -> bool:
        if self.rival_result is None:
            self.rival_result = tick(self.rival, self.at + timedelta(seconds=1), self.out)
        return self.inner.publish_product(*args, **kw)  # type: ignore[arg-type]


def test_two_clocks_on_one_store_never_duplicate_or_overwrite(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db, out = tmp_path / "tw.db", tmp_path / "p"
    a = SqliteStore(db)
    _add(a, 1, DAY + timedelta(hours=3))
    _add(a, 2, DAY + timedelta(hours=12))
    b = SqliteStore(db)
    now = DAY + timedelta(hours=17)
    racing = _Racing(a, b, out, now)
    with caplog.at_level("INFO", logger="trucewatch.products"):
        mine = tick(racing, now, out)  # type: ignore[arg-type]
    theirs = racing.rival_result
    assert theirs is not None and theirs.published  # type: ignore[attr-defined]
    # every name this clock tried was the rival's already: a no-op each, logged
    assert mine.lost and not mine.published
    assert set(mine.lost) <= {p.name for p in theirs.published}  # type: ignore[attr-defined]
    assert "published meanwhile by another clock" in caplog.text
    products = a.products()
    assert len(products) == len({p["name"] for p in products})  # no duplicate
    for p in products:  # each file on disk is the one published (never overwritten)
        assert hashlib.sha256((out / str(p["name"])).read_bytes()).hexdigest() == p["sha256"]
    assert not [f for f in out.iterdir() if f.name.endswith(".tmp")]  # no scratch left
    assert a.verify() == []
    b.close()
    a.close()


# ------------------------------------------------ the rendered bulletin at the cut
class _Maker:
    """A bulletin maker writing small files (the real one is tested in
    test_bulletin_from_store.py): what the clock does with what it renders."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[str]]] = []
        self.text = "v1"

    def __call__(self, store: SqliteStore, day: object, cutoff: datetime, staging: Path
                 ) -> list[tuple[Path, str, str]] | str:
        self.calls.append((str(day), cutoff.isoformat(), sorted(p.name for p in
                                                                  staging.iterdir())))
        if str(day) != "2026-05-30":
            return "no render basis: test"
        rev = "" if self.text == "v1" else ".rev2"
        got = []
        for variant in ("public", "restricted"):
            for ext in ("html", "pdf", "json"):
                p = staging / f"bulletin-{day}-{variant}{rev}.{ext}"
                p.write_text(f"{variant} {self.text}")
                got.append((p, ext, variant))
        return got


def test_the_clock_publishes_the_rendered_bulletin_at_the_cut(store: SqliteStore,
                                                             tmp_path: Path) -> None:
    out, maker = tmp_path / "p", _Maker()
    _add(store, 1, DAY + timedelta(hours=3))
    _add(store, 2, DAY - timedelta(hours=12))  # in the 29th's bulletin period
    r = tick(store, DAY + timedelta(hours=16, minutes=31), out, bulletins=maker)
    names = {p.name for p in r.published}
    want = {f"bulletin-2026-05-30-{v}.{e}" for v in ("public", "restricted")
            for e in ("html", "pdf", "json")}
    assert want <= names
    # a day the maker cannot render: its JSON product only, and why
    assert r.not_rendered == {DAY.date() - timedelta(days=1): "no render basis: test"}
    assert "daily-2026-05-29-public.json" in names
    cut = next(c for c in maker.calls if c[0] == "2026-05-30")
    assert cut[1] == "2026-05-30T16:30:00+00:00"  # 19:30 Kyiv
    for n in want:
        assert (out / n).read_text().endswith("v1")
    # the next tick: the maker sees the published JSONs (its revision rule), and what
    # it returns that is published already is left as it was
    again = tick(store, DAY + timedelta(hours=16, minutes=40), out, bulletins=maker)
    assert not [p for p in again.published if p.name.startswith("bulletin-")]
    assert [c for c in maker.calls if c[0] == "2026-05-30"][-1][2] == [
        "bulletin-2026-05-30-public.json", "bulletin-2026-05-30-restricted.json"]
    maker.text = "v2"  # a later review: a revision beside the published one
    rev = tick(store, DAY + timedelta(hours=16, minutes=50), out, bulletins=maker)
    assert {p.name for p in rev.published if p.name.startswith("bulletin-")} == {
        n.replace(".", ".rev2.", 1) for n in want}
    assert (out / "bulletin-2026-05-30-public.html").read_text() == "public v1"
    done = {x.path.name for x in restore(store, DAY.date(), tmp_path / "again")}
    assert "bulletin-2026-05-30-public.rev2.pdf" in done
