"""FIRMS near-real-time polling against recorded area-API responses served on 127.0.0.1
(tests/data/firms-api/): the watermark in the store, backfill after an outage, 500 and
garbage answers, a clock jump, and nothing ingested twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import DATA
from trucewatch.errors import ConfigError
from trucewatch.ingest.firms_api import FirmsClient
from trucewatch.intake import firms_poll
from trucewatch.intake.firms_poll import FirmsPoller, parse_bbox
from trucewatch.model.enums import SourceKind
from trucewatch.storage import SqliteStore

RECORDED = DATA / "firms-api"
NIGHT = (RECORDED / "VIIRS_NOAA20_NRT_2025-08-11_pass-0045.csv").read_bytes()
DAY = (RECORDED / "VIIRS_NOAA20_NRT_2025-08-11_pass-1032.csv").read_bytes()
HEADER, _, _ = NIGHT.partition(b"\n")
BBOX = (22.0, 44.0, 40.5, 52.5)


@dataclass
class Firms:
    """What the fake FIRMS has published, and how it answers."""

    passes: dict[date, list[bytes]] = field(default_factory=dict)
    mode: str = "ok"  # ok, 500, garbage
    seen: list[str] = field(default_factory=list)

    def answer(self, path: str) -> tuple[int, bytes]:
        self.seen.append(path)
        if self.mode == "500":
            return 500, b"Internal Server Error"
        if self.mode == "garbage":
            return 200, b"<html><body>maintenance</body></html>"
        parts = path.strip("/").split("/")  # api area csv KEY SOURCE bbox RANGE DATE
        days, first = int(parts[6]), date.fromisoformat(parts[7])
        body = [HEADER]
        for k in range(days):
            for p in self.passes.get(first + timedelta(days=k), []):
                body += p.split(b"\n")[1:]
        return 200, b"\n".join(line for line in body if line) + b"\n"


@pytest.fixture()
def firms() -> Iterator[tuple[Firms, str]]:
    state = Firms()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code, body = state.answer(self.path)
            self.send_response(code)
            self.send_header("Content-Type", "text/csv")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def _poller(store: SqliteStore, url: str, clock: Clock, **kw: object) -> FirmsPoller:
    return FirmsPoller(store, FirmsClient("KEY123", base_url=url), BBOX, clock=clock,
                       **kw)  # type: ignore[arg-type]


def _ids(store: SqliteStore) -> list[str]:
    return store.contract_observations([SourceKind.SATELLITE_FIRE])["id"].to_list()


def test_outage_backfill_and_nothing_twice(firms: tuple[Firms, str], tmp_path: Path) -> None:
    state, url = firms
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    clock = Clock(datetime(2025, 8, 11, 3, 0, tzinfo=UTC))
    state.passes = {date(2025, 8, 11): [NIGHT]}
    poller = _poller(store, url, clock)
    assert poller.watermark("VIIRS_NOAA20_NRT") is None
    (r,) = poller.poll_once()
    assert r.ok and r.new == 25 and (r.start, r.days) == (date(2025, 8, 11), 1)
    assert state.seen[-1] == ("/api/area/csv/KEY123/VIIRS_NOAA20_NRT/"
                              "22.0,44.0,40.5,52.5/1/2025-08-11")
    assert poller.watermark("VIIRS_NOAA20_NRT") == date(2025, 8, 11)

    # outage: FIRMS answers 500, then garbage; nothing is lost, the watermark stays
    state.mode, clock.t = "500", datetime(2025, 8, 11, 12, tzinfo=UTC)
    (r,) = poller.poll_once()
    assert not r.ok and "HTTP 500" in r.error
    state.mode, clock.t = "garbage", datetime(2025, 8, 13, 6, tzinfo=UTC)
    (r,) = poller.poll_once()
    assert not r.ok and "refused" in r.error
    assert any("unknown layout" in str(x["reason"]) for x in store.refused())
    assert poller.watermark("VIIRS_NOAA20_NRT") == date(2025, 8, 11)
    store.close()

    # FIRMS back, the day pass published meanwhile; a restarted poller (new process:
    # new store connection) backfills from the stored watermark through today
    state.mode, state.passes = "ok", {date(2025, 8, 11): [NIGHT, DAY]}
    clock.t = datetime(2025, 8, 13, 9, tzinfo=UTC)
    store = SqliteStore(db)
    poller = _poller(store, url, clock)
    (r,) = poller.poll_once()
    assert (r.start, r.days) == (date(2025, 8, 11), 3)
    assert r.ok and r.rows == 35 and r.new == 10 and r.duplicates == 25
    assert poller.watermark("VIIRS_NOAA20_NRT") == date(2025, 8, 13)
    ids = _ids(store)
    assert len(ids) == len(set(ids)) == 35
    # polling again (same day, nothing new) stores nothing more
    clock.t = datetime(2025, 8, 13, 10, tzinfo=UTC)
    (r,) = poller.poll_once()
    assert r.ok and r.new == 0 and (r.start, r.days) == (date(2025, 8, 13), 1)
    assert len(_ids(store)) == 35
    # every answer is in the audit log, and the chain holds
    actions = [e.action for e in store.audit_log() if e.action.startswith("firms_poll")]
    assert actions == ["firms_poll", "firms_poll_failed", "firms_poll_failed",
                       "firms_poll", "firms_poll"]
    assert store.verify() == []
    store.close()


def test_long_outage_is_chunked_and_the_gap_recorded(firms: tuple[Firms, str],
                                                     tmp_path: Path) -> None:
    state, url = firms
    store = SqliteStore(tmp_path / "s.db")
    clock = Clock(datetime(2025, 8, 11, 23, tzinfo=UTC))
    state.passes = {date(2025, 8, 11): [NIGHT, DAY]}
    poller = _poller(store, url, clock, max_backfill_days=25)
    assert poller.poll_once()[0].new == 35
    clock.t = datetime(2025, 10, 1, 8, tzinfo=UTC)  # 51 days later
    results = poller.poll_once()
    assert [(r.start, r.days) for r in results] == [
        (date(2025, 9, 7), 10), (date(2025, 9, 17), 10), (date(2025, 9, 27), 5)]
    assert all(r.ok and r.new == 0 for r in results)
    (gap,) = [e for e in store.audit_log() if e.action == firms_poll.GAP]
    assert '"missing_from":"2025-08-11"' in gap.details.replace(" ", "")
    assert poller.watermark("VIIRS_NOAA20_NRT") == date(2025, 10, 1)
    # the clock jumps back: the poll asks for "today" only, never a day not reached
    clock.t = datetime(2025, 9, 1, tzinfo=UTC)
    (r,) = poller.poll_once()
    assert (r.start, r.days) == (date(2025, 9, 1), 1) and r.ok
    assert len(_ids(store)) == 35
    store.close()


def test_scheduled_run_stops(firms: tuple[Firms, str], tmp_path: Path) -> None:
    state, url = firms
    store = SqliteStore(tmp_path / "s.db")
    state.passes = {date(2025, 8, 11): [NIGHT]}
    poller = _poller(store, url, Clock(datetime(2025, 8, 11, 3, tzinfo=UTC)))
    seen: list[int] = []
    assert poller.run(0.01, polls=3, on_poll=lambda rs: seen.append(sum(r.new for r in rs))
                      ) == 3
    assert seen == [25, 0, 0] and len(state.seen) == 3
    store.close()


def test_bad_configuration(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    with pytest.raises(ConfigError, match="unknown FIRMS source"):
        FirmsPoller(store, FirmsClient("K"), BBOX, sources=("NOPE",))
    with pytest.raises(ConfigError, match="positive"):
        FirmsPoller(store, FirmsClient("K"), BBOX).run(0)
    with pytest.raises(ConfigError, match="west,south"):
        parse_bbox("1,2,3")
    with pytest.raises(ConfigError, match="out of range"):
        parse_bbox("40,44,22,52")
    assert parse_bbox("22,44,40.5,52.5") == BBOX
    store.close()


def test_poll_command_once(firms: tuple[Firms, str], tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from trucewatch.cli.app import app

    state, url = firms
    today = datetime.now(UTC).date()  # the command polls by the real clock: the recorded
    # night pass is served as today's (its rows re-dated, nothing else changed)
    state.passes = {today: [NIGHT.replace(b"2025-08-11", today.isoformat().encode())]}
    monkeypatch.setenv("FIRMS_MAP_KEY", "ENVKEY")
    db = tmp_path / "s.db"
    args = ["satellite", "poll", "--store", str(db), "--bbox", "22,44,40.5,52.5", "--once",
            "--base-url", url]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "25 rows, 25 new" in r.output and "/ENVKEY/" in state.seen[-1]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0 and "25 rows, 0 new, 25 already stored" in r.output
    store = SqliteStore(db)
    assert store.contract_observations([SourceKind.SATELLITE_FIRE]).height == 25
    store.close()
