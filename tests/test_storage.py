"""The storage suite, run against both backends: SQLite (embedded) and PostgreSQL +
PostGIS (a throwaway cluster the tests start themselves; skipped with the reason when
PostgreSQL is not installed)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from trucewatch.demo import ScenarioFiles
from trucewatch.errors import InvalidInputError, SchemaVersionError, StorageError
from trucewatch.ingest.base import Batch
from trucewatch.ingest.firms import parse_firms, read_firms
from trucewatch.model import contract
from trucewatch.model.enums import Category, SourceKind, Status
from trucewatch.model.incident import Incident
from trucewatch.model.observation import Location
from trucewatch.storage import SqliteStore, open_store

HEADER = b"latitude,longitude,acq_date,sensor_guess\n"
Opener = Callable[..., SqliteStore]


@pytest.fixture(params=["sqlite", "postgis"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives: a SQLite file, or a fresh PostGIS database."""
    if request.param == "postgis":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "s.db")


@pytest.fixture()
def opened(where: str) -> Iterator[Opener]:
    stores: list[SqliteStore] = []

    def open_(**kw: object) -> SqliteStore:
        if kw:
            from trucewatch.storage.postgis import PostgisStore, postgres_url

            url = postgres_url(where)
            s = PostgisStore(url, **kw) if url else SqliteStore(where, **kw)  # type: ignore[arg-type]
        else:
            s = open_store(where)
        stores.append(s)
        return s

    yield open_
    for s in stores:
        s.close()


def test_same_file_twice_changes_nothing(opened: Opener, scenario: ScenarioFiles) -> None:
    store = opened()
    first = store.ingest(read_firms(scenario.current[1]))
    before = store.counts()
    again = store.ingest(read_firms(scenario.current[1]))
    assert again.already_ingested and again.new == 0
    assert store.counts() == before
    assert first.quarantined == 3 and before["quarantine"] == 3


def test_overlapping_downloads_deduplicated(opened: Opener, scenario: ScenarioFiles) -> None:
    store = opened()
    a = store.ingest(read_firms(scenario.current[0]))
    b = store.ingest(read_firms(scenario.current[1]))
    import json

    truth = json.loads(scenario.truth.read_text())
    assert b.duplicates == truth["overlap_duplicates"] > 0
    assert store.counts()["observations"] == a.new + b.new
    assert a.new + b.new + b.duplicates + b.quarantined == a.rows + b.rows


def test_raw_input_kept_verbatim_and_logged(opened: Opener, scenario: ScenarioFiles) -> None:
    store = opened()
    r = store.ingest(read_firms(scenario.current[1]))
    raw = scenario.current[1].read_bytes()
    assert store.raw_input(r.raw_sha256) == raw
    assert hashlib.sha256(raw).hexdigest() == r.raw_sha256
    assert [e.action for e in store.audit_log()] == ["ingest"]
    assert store.verify() == []


def test_crash_mid_batch_leaves_no_half_batch(opened: Opener, scenario: ScenarioFiles) -> None:
    ok = opened()
    ok.ingest(read_firms(scenario.reference[0]))
    before = ok.counts()
    crashing = opened(fail_after_rows=1)
    with pytest.raises(StorageError, match="simulated crash"):
        crashing.ingest(read_firms(scenario.reference[1]))
    assert opened().counts() == before  # nothing of the failed batch, nothing lost


def test_spatial_index(opened: Opener) -> None:
    store = opened()
    store.ingest(parse_firms(HEADER + b"48.1,37.1,2021-07-01,MODIS\n50.5,30.5,2021-07-01,MODIS\n",
                             "x.csv"))
    assert len(store.observations_in_bbox(37.0, 48.0, 37.2, 48.2)) == 1
    assert len(store.observations_in_bbox(30.0, 48.0, 38.0, 51.0)) == 2
    assert store.observations_in_bbox(20.0, 40.0, 21.0, 41.0) == []


def test_evidence_and_log_are_append_only(opened: Opener, scenario: ScenarioFiles) -> None:
    store = opened()
    store.ingest(read_firms(scenario.current[1]))
    for sql in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log",
                "UPDATE raw_inputs SET name = 'x'", "DELETE FROM raw_inputs"):
        with pytest.raises(Exception, match=r"append-only|evidentiary"):
            store.db.execute(sql)
    assert store.verify() == []


def test_newer_schema_refused(where: str) -> None:
    open_store(where).close()
    from trucewatch.storage.postgis import postgres_url

    url = postgres_url(where)
    if url:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE tw_meta SET v = '99' WHERE k = 'schema_version'")
    else:
        db = sqlite3.connect(where)
        db.execute("PRAGMA user_version = 99")
        db.close()
    with pytest.raises(SchemaVersionError, match="newer"):
        open_store(where)


def test_review_state_and_queries(opened: Opener, where: str, tmp_path: Path,
                                  scenario: ScenarioFiles) -> None:
    """The cycle writes into either store; statuses, versions, locks, rulings, tokens and
    incident queries behave the same."""
    from datetime import UTC, datetime, timedelta

    from trucewatch.errors import TransitionError
    from trucewatch.pipeline import run_cycle

    res = run_cycle(agreement_path=scenario.agreement,
                    firms_files=[*scenario.reference, *scenario.current],
                    reference_years=[2023, 2024, 2025], out_dir=tmp_path / "o", pdf=False,
                    store_path=Path(where))
    store = opened()
    inc = store.incidents()[0]
    store.set_status(inc.id, Status.PENDING_VERIFICATION, "analyst1", "checked imagery")
    store.set_status(inc.id, Status.VERIFIED, "reviewer2", "agreed")
    with pytest.raises(TransitionError, match="from verified to automatic"):
        store.set_status(inc.id, Status.AUTOMATIC, "a", "x")
    assert store.incidents(Status.VERIFIED)[0].id == inc.id
    assert [h["who"] for h in store.incident_history(inc.id)] == [
        "pipeline", "analyst1", "reviewer2"]
    # a re-run keeps the reviewed (here verified) incident and its status
    store.save_incidents(res.view.incidents, res.view.violations)
    assert store.incidents(Status.VERIFIED)[0].id == inc.id
    # locks
    until = datetime.now(UTC) + timedelta(minutes=5)
    assert store.claim(inc.id, "anna", until) is None
    assert "anna" in (store.claim(inc.id, "ben", until) or "")
    store.release(inc.id, "anna")
    assert store.claim(inc.id, "ben", until) is None
    # queries: bbox through the spatial index, status, pagination
    allv, total = store.query_incidents(limit=1000)
    assert total == len(allv) > 0
    lat, lon = allv[0].location.lat, allv[0].location.lon
    box, n = store.query_incidents(bbox=(lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01))
    assert allv[0].id in [i.id for i in box] and n < total
    ver, _ = store.query_incidents(statuses=["verified"], raw=True)
    assert [i["id"] for i in ver] == [inc.id]
    # tokens
    token = store.add_token("t1", "analyst")
    owner = store.token_owner(token)
    assert owner is not None and owner[:3] == ("t1", "analyst", None)
    assert store.principal(owner.id).name == "t1"  # the token's principal
    store.revoke_token("t1")
    assert store.token_owner(token) is None
    assert store.verify() == []


def test_row_hashes_from_polars_are_the_python_ones() -> None:
    """binding.hash_frame (JSON written by polars) gives the hashes of binding.hash_rows
    (Python's encoder, what a third party recomputes) on awkward values; where polars
    cannot write a value as Python does, it falls back, with the same result."""
    import numpy as np
    import polars as pl

    from trucewatch.storage import binding

    rng = np.random.default_rng(7)
    n = 4000
    floats = np.concatenate([rng.uniform(-180, 180, n - 20), np.round(rng.uniform(34, 50, 10), 5),
                             [0.0, -0.0, 1.0, 330.0, 1e15, 1e16, 1.5e16, 1e22, 1e-4,
                              123456789012345.6]])
    words = ['plain', 'a "quoted" word', 'back\\slash', 'é✓ Київ', '{"k":"v\\"w"}', '',
             '\u2028 and \x7f']
    df = pl.DataFrame({
        "id": [f"o-{k}" for k in range(n)],
        "sensor": [None if k % 5 == 0 else words[k % len(words)] for k in range(n)],
        "lat": floats, "lon": -floats[::-1],
        "uncertainty_m": [None if k % 7 == 0 else float(k) / 3 for k in range(n)],
        "raw_row": [None if k % 11 == 0 else k - 2000 for k in range(n)],
        "batch_id": ["b-1"] * n})
    assert binding._json_text(df, df.columns) is not None  # the vectorised path is taken
    want = binding.hash_rows("observations", df.columns, df.rows())
    assert binding.hash_frame("observations", df) == want
    assert want[1] == (("o-1",), binding.row_hash(df.columns, df.row(1)))
    # values polars would write otherwise: the Python path, the same hashes
    for col, value in (("sensor", "line\nbreak"), ("sensor", "tab\tand\x01"),
                       ("lat", 1e-05), ("lat", float("nan")), ("uncertainty_m", float("inf"))):
        odd = df.with_columns(pl.when(pl.col("id") == "o-3").then(pl.lit(value))
                              .otherwise(pl.col(col)).alias(col))
        assert binding._json_text(odd, odd.columns) is None, (col, value)
        assert binding.hash_frame("observations", odd) == binding.hash_rows(
            "observations", odd.columns, odd.rows()), (col, value)


def test_a_large_batch_is_bound_and_found_in_any_order(opened: Opener) -> None:
    """A batch above binding.LIST_MAX rows, written in Hilbert order and bound by the
    digest of hashes computed before the write, verifies; a second batch overlapping it
    (read back to bind) too; the box query finds exactly the rows inside."""
    import numpy as np

    rng = np.random.default_rng(3)
    lat, lon = rng.uniform(47, 49, 3000), rng.uniform(36, 39, 3000)

    def csv(k0: int, k1: int) -> bytes:
        return HEADER + b"".join(f"{lat[k]:.5f},{lon[k]:.5f},2026-05-{1 + k % 28:02d},MODIS\n"
                                 .encode() for k in range(k0, k1))

    s = opened()
    first = s.ingest(parse_firms(csv(0, 2500), "a.csv"))
    second = s.ingest(parse_firms(csv(2000, 3000), "b.csv"))
    assert (first.new, second.new, second.duplicates) == (2500, 500, 500)
    assert s.verify() == []
    box = (36.5, 47.5, 37.5, 48.5)
    la, lo = np.round(lat, 5), np.round(lon, 5)
    inside = (lo >= box[0]) & (lo <= box[2]) & (la >= box[1]) & (la <= box[3])
    assert len(s.observations_in_bbox(*box)) == int(inside.sum()) > 100


def test_a_large_sqlite_batch_gets_a_larger_cache_and_gives_it_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a batch of at least dialect.BULK_ROWS rows is written, SQLite's page cache is
    dialect.BULK_CACHE_KIB; after it, and after a batch that failed, it is what it was
    (and a small batch leaves it alone)."""
    from trucewatch.storage import dialect

    monkeypatch.setattr(dialect, "BULK_ROWS", 3)
    store = SqliteStore(str(tmp_path / "s.db"))
    raw = store.db
    normal = raw.execute("PRAGMA cache_size").fetchone()[0]
    seen: list[int] = []

    def batch(name: str, rows: int) -> Batch:
        return parse_firms(HEADER + b"".join(f"48.{k:05d},37.1,2026-05-01,MODIS\n".encode()
                                             for k in range(rows)), name)

    def watch(_: int) -> None:
        seen.append(raw.execute("PRAGMA cache_size").fetchone()[0])

    store.ingest(batch("big.csv", 5), on_progress=watch)
    store.ingest(batch("small.csv", 2), on_progress=watch)
    assert seen == [-dialect.BULK_CACHE_KIB, normal] and normal != seen[0]
    assert raw.execute("PRAGMA cache_size").fetchone()[0] == normal
    store._fail_after_rows = 1
    with pytest.raises(StorageError, match="simulated crash"):
        store.ingest(batch("crash.csv", 6))
    assert raw.execute("PRAGMA cache_size").fetchone()[0] == normal
    assert store.verify() == []
    store.close()


def test_postgis_copy_meets_a_writer_that_took_a_key_meanwhile(pg_url: str) -> None:
    """PostGIS COPYs a batch straight into observations when none of its ids is stored.
    Another writer that inserts one of those ids meanwhile (after the check, before the
    COPY commits) makes the COPY wait for it, then fail; the rows then go the long way
    (ON CONFLICT DO NOTHING) and the batch stores the others."""
    import threading
    import time

    import psycopg

    from trucewatch.storage.repositories.rows import COLUMNS, observation_frame

    s = open_store(pg_url)
    s.ingest(parse_firms(HEADER + b"48.0,37.0,2026-05-01,MODIS\n", "seed.csv"))
    batch = parse_firms(HEADER + b"".join(f"48.{k:03d},37.5,2026-05-02,MODIS\n".encode()
                                          for k in range(50)), "b.csv")
    frame = observation_frame(batch.observations, "b-other")
    taken = frame.row(7)
    other = psycopg.connect(pg_url)  # a second writer, holding one of the batch's ids
    with other.cursor() as cur:
        cur.execute("SELECT batch_id FROM observations LIMIT 1")
        seed_batch = cur.fetchone()[0]  # type: ignore[index]
        cur.execute(f"INSERT INTO observations ({', '.join(COLUMNS)}) VALUES "
                    f"({', '.join(['%s'] * len(COLUMNS))})",
                    [seed_batch if c == "batch_id" else v for c, v in zip(COLUMNS, taken,
                                                                         strict=True)])
    done: dict[str, object] = {}
    t = threading.Thread(target=lambda: done.setdefault("report", s.ingest(batch)))
    t.start()
    watch = psycopg.connect(pg_url, autocommit=True)
    deadline = time.monotonic() + 120
    while not watch.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                            "'Lock' AND datname = current_database()").fetchone()[0]:  # type: ignore[index]
        assert t.is_alive() and time.monotonic() < deadline, done
        time.sleep(0.05)
    other.commit()  # the ingest's COPY now fails on that id, and it takes the long way
    t.join(120)
    rep = done["report"]
    assert (rep.new, rep.duplicates) == (49, 1), rep  # type: ignore[attr-defined]
    assert len(s.observations_in_bbox(37.4, 47.9, 37.6, 48.1)) == 50
    other.close()
    watch.close()
    s.close()


# ---------------------------------------------------------------- times compared as times
T10 = datetime(2026, 5, 30, 10, 0, tzinfo=UTC)


def _instant_batch(oid: str, t: datetime, raw: bytes) -> Batch:
    """One analyst observation at the instant ``t`` (a batch whose times have a fraction
    of a second is stored to the millisecond, one without to the second)."""
    obs = contract.conform(pl.DataFrame({
        "id": [oid], "source_kind": [SourceKind.ANALYST.value], "source_id": ["acme:1"],
        "time_start": [t], "time_end": [t], "lat": [47.5], "lon": [37.5],
        "uncertainty_m": [250.0], "raw_sha256": ["0" * 64], "raw_row": [1]}))
    return Batch(source="acme", kind=SourceKind.ANALYST, layout="acme/1", name=f"{oid}.json",
                 raw=raw, sha256=hashlib.sha256(raw).hexdigest(), n_rows=1,
                 records=pl.DataFrame(), observations=obs)


def test_observations_in_compares_times_not_text(opened: Opener) -> None:
    """"…T10:00:00Z" (a batch to the second) sorts after "…T10:00:00.500Z" (one to the
    millisecond) as text, and "…T13:00:00.25+03:00" after both: the store compares the
    instants, on both backends."""
    store = opened()
    store.ingest(_instant_batch("o-sec", T10, b"seconds"))
    store.ingest(_instant_batch("o-ms", T10 + timedelta(milliseconds=500), b"millis"))

    def ids(**kw: object) -> list[str]:
        return store.observations_in(**kw)["id"].to_list()  # type: ignore[arg-type]

    mid = T10 + timedelta(milliseconds=250)
    assert ids() == ["o-sec", "o-ms"]
    assert ids(start="2026-05-30T10:00:00.250Z") == ["o-ms"]
    assert ids(end="2026-05-30T10:00:00.250Z") == ["o-sec"]
    assert ids(start="2026-05-30T13:00:00.250+03:00") == ["o-ms"]  # the same instant
    assert ids(end="2026-05-30T06:00:00.250-04:00") == ["o-sec"]
    assert ids(start=mid, end=mid + timedelta(seconds=1)) == ["o-ms"]
    assert ids(start=mid.astimezone(timezone(timedelta(hours=5, minutes=30)))) == ["o-ms"]
    assert ids(start=T10) == ["o-sec", "o-ms"] and ids(end=T10) == []  # [start, end)
    assert ids(start=T10 + timedelta(microseconds=1)) == ["o-ms"]  # a fraction of a ms
    assert ids(start=T10 + timedelta(days=1)) == []
    with pytest.raises(InvalidInputError, match="no UTC offset"):
        store.observations_in(start="2026-05-30T10:00:00")
    with pytest.raises(InvalidInputError, match="not an ISO-8601 time"):
        store.observations_in(end="yesterday")


def test_contract_observations_since_and_before_compare_times(opened: Opener) -> None:
    store = opened()
    store.ingest(_instant_batch("o-sec", T10, b"seconds"))
    store.ingest(_instant_batch("o-ms", T10 + timedelta(milliseconds=500), b"millis"))
    mid = T10 + timedelta(milliseconds=250)
    assert store.contract_observations(since=mid)["id"].to_list() == ["o-ms"]
    assert store.contract_observations(before=mid)["id"].to_list() == ["o-sec"]
    assert store.contract_observations(since=T10, before=T10 + timedelta(seconds=1)
                                       )["id"].to_list() == ["o-sec", "o-ms"]


def _incident(iid: str, t: datetime) -> Incident:
    return Incident(id=iid, category=Category.FIRE, time_start=t, time_end=t,
                    location=Location(47.5, 37.5, 190.0), observation_ids=[f"o-{iid}"])


def test_query_incidents_compares_times_not_text(opened: Opener) -> None:
    """Incidents keep ``isoformat()`` text ("…T10:00:00+00:00", "…T10:00:00.500000+00:00");
    a bound with another offset or format of the same instant selects the same ones."""
    store = opened()
    store.save_incidents([_incident("i-sec", T10),
                          _incident("i-ms", T10 + timedelta(milliseconds=500))], [])

    def ids(**kw: object) -> list[str]:
        got, total = store.query_incidents(**kw)  # type: ignore[arg-type]
        assert total == len(got)
        return [i.id for i in got]

    assert ids(start="2026-05-30T13:00:00.250+03:00") == ["i-ms"]
    assert ids(end="2026-05-30T10:00:00.25Z") == ["i-sec"]
    assert ids(start=T10 + timedelta(milliseconds=250)) == ["i-ms"]
    assert ids(start=T10, end=T10 + timedelta(seconds=1)) == ["i-sec", "i-ms"]


def test_count_observations_compares_times_not_text(opened: Opener) -> None:
    """The as-of block's "used" (before the cutoff) and "stored after the cutoff" counts:
    as text, "…T10:00:00Z" is at or after a cutoff of "…T10:00:00.250Z" and
    "…T10:00:00.500Z" is not after "…T13:00:00.250+03:00"; as instants, the reverse."""
    store = opened()
    store.ingest(_instant_batch("o-sec", T10, b"seconds"))
    store.ingest(_instant_batch("o-ms", T10 + timedelta(milliseconds=500), b"millis"))
    kinds = [SourceKind.ANALYST]

    def count(**kw: object) -> int:
        return store.count_observations(kinds, **kw)  # type: ignore[arg-type]

    for cut in (T10 + timedelta(milliseconds=250), "2026-05-30T10:00:00.250Z",
                "2026-05-30T13:00:00.250+03:00", "2026-05-30T06:00:00.25-04:00"):
        assert (count(before=cut), count(since=cut)) == (1, 1), cut
    assert (count(before=T10), count(since=T10)) == (0, 2)  # [since, before)
    assert count(since=T10, before=T10 + timedelta(seconds=1)) == 2
    assert store.count_observations([SourceKind.DRONE]) == 0
    with pytest.raises(InvalidInputError, match="no UTC offset"):
        count(since="2026-05-30T10:00:00")


def test_observation_span_is_of_instants_not_text(opened: Opener) -> None:
    """The worker's plan reads the last located explosion or drone report (the sensor
    period, the first and last explosion): as text the second-precision row is the last
    ("Z" sorts after "."), and the millisecond one the first."""
    store = opened()
    assert store.observation_span([SourceKind.ANALYST]) is None
    store.ingest(_instant_batch("o-sec", T10, b"seconds"))
    store.ingest(_instant_batch("o-ms", T10 + timedelta(milliseconds=500), b"millis"))
    assert store.observation_span([SourceKind.ANALYST]) == (
        T10, T10 + timedelta(milliseconds=500))
    store.ingest(_instant_batch("o-before", T10 - timedelta(milliseconds=1), b"earlier"))
    store.ingest(_instant_batch("o-next-day", T10 + timedelta(days=1), b"next day"))
    assert store.observation_span([SourceKind.ANALYST, SourceKind.DRONE]) == (
        T10 - timedelta(milliseconds=1), T10 + timedelta(days=1))
    assert store.observation_span([SourceKind.DRONE]) is None


def test_observations_page_orders_and_filters_instants(opened: Opener) -> None:
    """The API's ``/observations`` read: ordered by the instant (as text "…T10:00:00.500Z"
    comes first), filtered by a bound of any offset or precision, paged and counted in
    the database."""
    store = opened()
    store.ingest(_instant_batch("o-ms", T10 + timedelta(milliseconds=500), b"millis"))
    store.ingest(_instant_batch("o-sec", T10, b"seconds"))

    def ids(**kw: object) -> tuple[list[str], int]:
        df, total = store.observations_page(SourceKind.ANALYST, **kw)  # type: ignore[arg-type]
        assert set(df.columns) >= {"attributes", "source_id", "latitude"}
        return df["id"].to_list(), total

    assert ids() == (["o-sec", "o-ms"], 2)
    assert ids(limit=1) == (["o-sec"], 2) and ids(offset=1) == (["o-ms"], 2)
    assert ids(start="2026-05-30T13:00:00.250+03:00") == (["o-ms"], 1)
    assert ids(end="2026-05-30T10:00:00.25Z") == (["o-sec"], 1)
    assert ids(start=T10, end=T10 + timedelta(seconds=1)) == (["o-sec", "o-ms"], 2)
    assert ids(box=(37.0, 47.0, 38.0, 48.0)) == (["o-sec", "o-ms"], 2)
    assert ids(box=(38.0, 47.0, 39.0, 48.0)) == ([], 0)
    assert store.observations_page(SourceKind.DRONE)[1] == 0
    with pytest.raises(InvalidInputError, match="not an ISO-8601 time"):
        store.observations_page(SourceKind.ANALYST, start="soon")


def test_explosions_and_observations_ordered_by_instant(opened: Opener) -> None:
    store = opened()
    store.ingest(_instant_batch("o-ms", T10 + timedelta(milliseconds=500), b"millis"))
    store.ingest(_instant_batch("o-sec", T10, b"seconds"))
    assert store.observations(SourceKind.ANALYST)["id"].to_list() == ["o-sec", "o-ms"]


def test_a_point_on_the_box_edge_is_inside(opened: Opener) -> None:
    """Edges included, to the stored float: SQLite's R*Tree rounds a point's box outwards
    to 32-bit floats, so a box whose edge is the point's own coordinate used to miss it
    (found by the /observations bbox test once the route filtered in the database)."""
    store = opened()
    lat, lon = 47.123456789012, 37.987654321098  # no 32-bit float
    obs = contract.conform(pl.DataFrame({
        "id": ["edge"], "source_kind": [SourceKind.ANALYST.value], "source_id": ["acme:1"],
        "time_start": [T10], "time_end": [T10], "lat": [lat], "lon": [lon],
        "uncertainty_m": [250.0], "raw_sha256": ["0" * 64], "raw_row": [1]}))
    store.ingest(Batch(source="acme", kind=SourceKind.ANALYST, layout="acme/1",
                       name="edge.json", raw=b"edge", sha256=hashlib.sha256(b"edge").hexdigest(),
                       n_rows=1, records=pl.DataFrame(), observations=obs))
    for box in ((lon, lat, lon + 1, lat + 1), (lon - 1, lat - 1, lon, lat),
                (lon, lat, lon, lat)):
        assert store.observations_in_bbox(*box) == ["edge"], box
        assert store.observations_in(box=box)["id"].to_list() == ["edge"], box
    eps = 1e-9
    assert store.observations_in_bbox(lon + eps, lat, lon + 1, lat + 1) == []
    assert store.observations_in_bbox(lon - 1, lat - 1, lon, lat - eps) == []


def test_a_page_by_instant_is_the_whole_order_sliced(opened: Opener) -> None:
    """observations_page and observations_in(limit=) bound the rows they order by the
    instant to those that can be among the first ``limit + offset`` (the text order's
    first ones, plus the text slack): every page is the full instant order's slice,
    across precisions, within a second and across days."""
    store = opened()
    times = [T10 + timedelta(milliseconds=ms) for ms in (0, 500, 999, 1000, 1500)]
    times += [T10 + timedelta(days=d, milliseconds=ms) for d in (1, 2) for ms in (0, 250)]
    for k, t in enumerate(times):
        store.ingest(_instant_batch(f"o-{k}", t, f"raw {k}".encode()))
    whole = [f"o-{k}" for k in sorted(range(len(times)), key=lambda k: (times[k], f"o-{k}"))]
    assert store.observations_page(SourceKind.ANALYST, limit=100)[0]["id"].to_list() == whole
    for limit in (1, 2, 3, 4):
        for offset in range(len(times)):
            df, total = store.observations_page(SourceKind.ANALYST, limit=limit,
                                                offset=offset)
            assert (df["id"].to_list(), total) == (whole[offset:offset + limit],
                                                   len(times)), (limit, offset)
        assert store.observations_in(kind=SourceKind.ANALYST, limit=limit)["id"].to_list() \
            == whole[:limit]
