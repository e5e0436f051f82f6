"""Station heartbeats: posted signed by the network's key through the one intake, kept
verbatim; an unknown station, a clock jump (far in the future or past) or a repeat is
quarantined with its reason; up and down intervals follow from the accepted ones (down
after a configurable silence) and feed coverage and the health sentences."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from trucewatch.adjudication.allegations import Coverage
from trucewatch.errors import ConfigError, InputFileError
from trucewatch.ingest.heartbeats import parse_heartbeats
from trucewatch.intake import receive
from trucewatch.intake.sources import (
    StationSource,
    adapters,
    network_uptime,
    stored_heartbeats,
)
from trucewatch.integrity.envelope import sign_submission
from trucewatch.integrity.keys import KeyRecord, KeyRegistry, new_keypair
from trucewatch.sensors.uptime import uptime
from trucewatch.storage import SqliteStore

MAY = datetime(2026, 5, 1, tzinfo=UTC)
T0 = datetime(2026, 5, 30, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
STATIONS = ("id,latitude,longitude,elevation_m,kind\n"
            + "".join(f"S{k:02d},{48.0 + 0.05 * (k % 3)},{37.5 + 0.05 * (k // 3)},100,"
                      "acoustic\n" for k in range(6))).encode()


def _beats(rows: list[tuple[str, str]], extra: bool = False) -> bytes:
    head = "station,time,battery_v\n" if extra else "station,time\n"
    return (head + "".join(f"{s},{t}{',12.1' if extra else ''}\n" for s, t in rows)).encode()


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Keys:
    def __init__(self) -> None:
        self.priv: dict[str, object] = {}
        recs = []
        for key_id, source, speaks in (("net", "sensors:net-A", ("S*",)),
                                       ("other", "sensors:net-B", ("T*",)),
                                       ("drone", "drone:UA-07", ())):
            priv, pub = new_keypair()
            self.priv[key_id] = priv
            recs.append(KeyRecord(key_id, source, pub, MAY, speaks_for=speaks))
        self.registry = KeyRegistry(recs)
        self.n = 0

    def sign(self, payload: bytes, key_id: str = "net",
             at: datetime = NOW - timedelta(minutes=1)) -> bytes:
        self.n += 1
        return sign_submission(payload, self.priv[key_id], key_id,  # type: ignore[arg-type]
                               at, f"hb-{self.n}")


@pytest.fixture
def keys() -> _Keys:
    return _Keys()


@pytest.fixture
def store(tmp_path: Path, keys: _Keys) -> SqliteStore:
    s = SqliteStore(tmp_path / "tw.db")
    o = receive(s, keys.sign(STATIONS), "stations.csv", StationSource(),
                registry=keys.registry, now=NOW)
    assert o.accepted and not o.quarantined
    yield s
    s.close()


def _post(store: SqliteStore, keys: _Keys, raw: bytes, key: str | None = "net",
          name: str = "hb.csv") -> object:
    body = keys.sign(raw, key) if key else raw
    return receive(store, body, name, adapters(store)["heartbeats"], registry=keys.registry,
                   now=NOW)


def test_signed_heartbeats_are_kept_verbatim(store: SqliteStore, keys: _Keys) -> None:
    raw = _beats([("S00", _iso(T0)), ("S01", _iso(T0))], extra=True)
    body = keys.sign(raw)
    o = receive(store, body, "hb.csv", adapters(store)["heartbeats"],
                registry=keys.registry, now=NOW)
    assert o.accepted and not o.quarantined and o.signed_by == "net"
    batch = store.inputs("heartbeats")[0]
    assert store.raw_input(str(batch["raw_sha256"])) == body  # as received, envelope too
    assert sorted(s for s, _ in stored_heartbeats(store)) == ["S00", "S01"]


def test_bad_heartbeats_are_quarantined_with_a_reason(store: SqliteStore,
                                                      keys: _Keys) -> None:
    raw = _beats([("S00", _iso(T0)),
                  ("S99", _iso(T0)),  # not in the inventory (the key speaks for S*)
                  ("S01", _iso(NOW + timedelta(days=2))),  # clock jumped ahead
                  ("S02", _iso(NOW - timedelta(days=30))),  # clock jumped back
                  ("S03", "2026-05-30T10:00:00"),  # no offset
                  ("S00", _iso(T0)),  # repeat of line 2
                  ("S04", _iso(T0 + timedelta(minutes=5)))])
    o = _post(store, keys, raw)
    reasons = {q.row: q.reason for q in o.quarantined}  # type: ignore[attr-defined]
    assert set(reasons) == {3, 4, 5, 6, 7}
    assert "unknown station 'S99'" in reasons[3]
    assert "clock jump" in reasons[4] and "after its receipt" in reasons[4]
    assert "clock jump" in reasons[5] and "before its receipt" in reasons[5]
    assert "UTC offset" in reasons[6]
    assert "duplicate heartbeat" in reasons[7] and "line 2" in reasons[7]
    assert [q.raw for q in o.quarantined if q.row == 3] == [f"S99,{_iso(T0)}"]  # type: ignore[attr-defined]
    # nothing lost: the valid rows go on, the quarantined are in the store
    assert len(store.quarantine()) == 5
    u = network_uptime(store, NOW)
    assert u is not None
    assert sorted({s for s, iv in u.up.items() if iv}) == ["S00", "S04"]


def test_heartbeats_after_their_signature_are_quarantined(store: SqliteStore,
                                                          keys: _Keys) -> None:
    """A signature cannot come before the heartbeat it vouches for: a heartbeat later
    than the envelope's signed_at (beyond the 5-min clock skew) is quarantined with the
    reason, though it is within the receipt's slack; the others go on."""
    signed_at = NOW - timedelta(minutes=30)
    raw = _beats([("S00", _iso(T0)),
                  ("S01", _iso(signed_at + timedelta(minutes=4))),  # within the skew
                  ("S02", _iso(NOW - timedelta(minutes=10))),  # 20 min after signing
                  ("S03", _iso(NOW + timedelta(minutes=2)))])  # within receipt's slack
    body = keys.sign(raw, at=signed_at)
    o = receive(store, body, "hb.csv", adapters(store)["heartbeats"],
                registry=keys.registry, now=NOW)
    assert o.accepted
    reasons = {q.row: q.reason for q in o.quarantined}
    assert set(reasons) == {4, 5}
    assert all("backdated signature" in r for r in reasons.values())
    assert "20 min before this heartbeat's time" in reasons[4]
    assert [q.raw for q in o.quarantined if q.row == 4] == [
        f"S02,{_iso(NOW - timedelta(minutes=10))}"]
    assert len(store.quarantine()) == 2  # kept, nothing lost
    u = network_uptime(store, NOW)
    assert u is not None
    assert sorted(s for s, iv in u.up.items() if iv) == ["S00", "S01"]
    # an envelope signed after its heartbeats: none of this
    later = keys.sign(_beats([("S02", _iso(NOW - timedelta(minutes=10)))]))
    o = receive(store, later, "hb2.csv", adapters(store)["heartbeats"],
                registry=keys.registry, now=NOW)
    assert o.accepted and not o.quarantined


def test_time_forms_read_alike() -> None:
    """The vectorised time reading takes every ISO 8601 form with an offset that
    ``datetime.fromisoformat`` takes (fractions, offsets, a lower-case z, a space), and
    quarantines the rest, row by row, with the line's text."""
    rows = [("S00", "2026-05-30T10:00:00Z"), ("S01", "2026-05-30T12:00:00+02:00"),
            ("S02", "2026-05-30T10:00:00.250z"), ("S03", "2026-05-30 10:00:00+00:00"),
            ("S04", "2026-05-30T10:00:00"), ("S05", "2026-02-30T10:00:00Z"),
            ("S00", "2026-05-30T10:00:00.000Z")]
    b = parse_heartbeats(_beats(rows), "x.csv", {f"S0{k}" for k in range(6)}, now=NOW)
    got = dict(zip(b.records["station"], b.records["time"], strict=True))
    assert got == {"S00": T0, "S01": T0, "S02": T0 + timedelta(milliseconds=250),
                   "S03": T0}
    reasons = {q.row: q.reason for q in b.quarantine}
    assert set(reasons) == {6, 7, 8}
    assert "UTC offset" in reasons[6] and "UTC offset" in reasons[7]
    assert "duplicate heartbeat" in reasons[8] and "line 2" in reasons[8]
    assert [q.raw for q in b.quarantine if q.row == 7] == ["S05,2026-02-30T10:00:00Z"]


def test_stored_heartbeats_are_read_once(store: SqliteStore, keys: _Keys,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Uptime reads each stored heartbeats file once: a second request parses nothing,
    a file received later is read, and the result is the same as reading all afresh."""
    import trucewatch.intake.sources as sources

    _post(store, keys, _beats([("S00", _iso(T0)), ("S01", _iso(T0))]))
    first = network_uptime(store, NOW)
    calls: list[str] = []
    parse = sources.parse_heartbeats

    def counted(raw: bytes, name: str, *a: object) -> object:
        calls.append(name)
        return parse(raw, name, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(sources, "parse_heartbeats", counted)
    again = network_uptime(store, NOW)
    assert calls == [] and again is not None and first is not None
    assert again.to_dict() == first.to_dict()
    _post(store, keys, _beats([("S02", _iso(T0 + timedelta(minutes=5)))]), name="b.csv")
    calls.clear()  # the receipt's own parse
    grown = network_uptime(store, NOW)
    assert calls == ["b.csv"] and grown is not None
    assert sorted(s for s, iv in grown.up.items() if iv) == ["S00", "S01", "S02"]
    monkeypatch.setattr(sources, "_read_back", type(sources._read_back)())
    afresh = network_uptime(store, NOW)
    assert afresh is not None and afresh.to_dict() == grown.to_dict()
    assert len(calls) == 3  # both files read again once the reads are forgotten


def test_unsigned_and_misbound_heartbeats(store: SqliteStore, keys: _Keys) -> None:
    raw = _beats([("S00", _iso(T0))])
    unsigned = _post(store, keys, raw, key=None)
    assert unsigned.accepted and "source policy" in unsigned.quarantined[0].reason  # type: ignore[attr-defined]
    assert network_uptime(store, NOW) is None  # quarantined whole: no heartbeat counts
    other = _post(store, keys, _beats([("S01", _iso(T0))]), key="other", name="b.csv")
    assert "does not speak for S01" in other.refused  # type: ignore[attr-defined]
    drone = _post(store, keys, _beats([("S01", _iso(T0))]), key="drone", name="c.csv")
    assert "may not sign a heartbeats input" in drone.refused  # type: ignore[attr-defined]


def test_heartbeats_need_an_inventory(tmp_path: Path, keys: _Keys) -> None:
    s = SqliteStore(tmp_path / "empty.db")
    try:
        o = _post(s, keys, _beats([("S00", _iso(T0))]))
        assert "no accepted station inventory" in o.refused  # type: ignore[attr-defined]
    finally:
        s.close()


def test_unreadable_heartbeats_are_clear_errors() -> None:
    with pytest.raises(InputFileError, match="lack columns"):
        parse_heartbeats(b"station,when\nS00,x\n", "x.csv", {"S00"})
    with pytest.raises(InputFileError, match="list of heartbeats"):
        parse_heartbeats(b'{"heartbeats": 3}', "x.json", {"S00"})
    b = parse_heartbeats(json.dumps([{"station": "S00", "time": _iso(T0)}, "junk"]).encode(),
                         "x.json", {"S00"}, now=NOW)
    assert b.records.height == 1 and b.quarantine[0].row == 2


def test_up_and_down_after_a_silence() -> None:
    beats = [("A", T0 + timedelta(minutes=m)) for m in (0, 5, 10, 40, 45)]
    beats += [("B", T0 + timedelta(minutes=m)) for m in range(0, 60, 5)]
    u = uptime(["A", "B", "C"], beats, T0 + timedelta(hours=1), timedelta(minutes=10))
    assert u.up["A"] == [(T0, T0 + timedelta(minutes=20)),
                         (T0 + timedelta(minutes=40), T0 + timedelta(minutes=55))]
    assert u.down("A") == [(T0 + timedelta(minutes=20), T0 + timedelta(minutes=40)),
                           (T0 + timedelta(minutes=55), T0 + timedelta(hours=1))]
    assert u.down("C") == [(T0, T0 + timedelta(hours=1))]
    assert not u.is_up("A", T0 + timedelta(minutes=25), T0 + timedelta(minutes=26))
    assert u.is_up("A", T0 + timedelta(minutes=41), T0 + timedelta(minutes=42))
    steps = u.steps()
    assert steps[0] == (T0, T0 + timedelta(minutes=20), 2)
    assert (T0 + timedelta(minutes=20), T0 + timedelta(minutes=40), 1) in steps
    lines = u.lines()
    assert any("Station A down" in x and "10:20Z" in x for x in lines)
    assert any("Station C sent no heartbeat" in x for x in lines)
    assert any(x.startswith("Network: 1 of 3 stations up at its lowest") for x in lines)
    # a longer silence: A stays up through its 30-minute gap
    assert len(uptime(["A"], beats, T0 + timedelta(hours=1), timedelta(minutes=31)).up["A"]) \
        == 1
    with pytest.raises(ConfigError, match="positive"):
        uptime(["A"], beats, T0, timedelta(0))


def test_station_up_feeds_coverage() -> None:
    stations = [(48.0 + 0.01 * k, 37.5) for k in range(4)]
    period = [(T0, T0 + timedelta(hours=2))]
    cov = Coverage(stations=stations, sensor_periods=period)
    t0, t1 = T0 + timedelta(minutes=30), T0 + timedelta(minutes=31)
    assert cov.sensors(48.0, 37.5, t0, t1)
    up = [(T0, T0 + timedelta(hours=2))]
    cov.station_up = [up, up, up, [(T0, T0 + timedelta(minutes=20))]]  # one went down
    assert not cov.sensors(48.0, 37.5, t0, t1)  # 3 of the 4 needed
    assert cov.sensors(48.0, 37.5, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))


def test_api_heartbeats_and_uptime(tmp_path: Path, keys: _Keys) -> None:
    from fastapi.testclient import TestClient

    from trucewatch.api import create_app

    db = tmp_path / "api.db"
    s = SqliteStore(db)
    sensor = s.add_token("net-a", "sensor", actor="test")
    admin = s.add_token("root", "admin", actor="test")
    s.close()
    reg = tmp_path / "keys.json"
    keys.registry.save(reg)
    client = TestClient(create_app(db, keys_path=reg))
    auth = {"Authorization": f"Bearer {sensor}"}
    r = client.post("/api/v1/ingest/stations", content=keys.sign(STATIONS), headers=auth)
    assert r.status_code == 200, r.text
    now = datetime.now(UTC).replace(microsecond=0)
    beats = _beats([("S00", _iso(now - timedelta(minutes=2))), ("S01", _iso(now)),
                    ("S99", _iso(now)), ("S02", _iso(now + timedelta(days=1)))])
    r = client.post("/api/v1/ingest/heartbeats", content=keys.sign(beats, at=now),
                    headers=auth)  # signed after the heartbeats it vouches for
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["signed_by"] == "net" and body["rows"] == 4
    assert {q["row"] for q in body["quarantined"]} == {4, 5}
    got = client.get("/api/v1/stations/uptime",
                     headers={"Authorization": f"Bearer {admin}"})
    assert got.status_code == 200, got.text
    doc = got.json()
    assert doc["stations"]["S00"]["up"] and not doc["stations"]["S03"]["up"]
    assert any("S03 sent no heartbeat" in x for x in doc["lines"])
    bad = client.get("/api/v1/stations/uptime?silence_s=0",
                     headers={"Authorization": f"Bearer {admin}"})
    assert bad.status_code == 422
