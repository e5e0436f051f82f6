"""The observation contract (model.contract): every built-in adapter emits it, a table
that does not conform is refused naming its column, and storage builds its rows from
the contract alone (a third party's kind of source stores like a built-in one)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from trucewatch.errors import ContractError, TrucewatchError
from trucewatch.ingest.base import Batch, sha256
from trucewatch.ingest.drones import DroneSource
from trucewatch.ingest.firms import parse_firms
from trucewatch.model import contract
from trucewatch.model.enums import SourceKind
from trucewatch.sensors.events import observation_records, observations
from trucewatch.storage import binding, open_store

VIIRS = (b"latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,confidence,"
         b"version,bright_ti5,frp,daynight\n")
T0 = datetime(2026, 5, 30, 8, 15, tzinfo=UTC)


def _firms(n: int, lat0: float = 47.0) -> bytes:
    lines = [f"{lat0 + k * 1e-4:.5f},37.00000,330.1,0.4,0.4,2026-05-30,{k % 1440 // 60:02d}"
             f"{k % 60:02d},N20,nominal,2.0NRT,300.1,2.1,D" for k in range(n)]
    return VIIRS + ("\n".join(lines) + "\n").encode()


def _table(n: int = 2, kind: SourceKind = SourceKind.ANALYST) -> pl.DataFrame:
    return pl.DataFrame({
        "id": [f"o-x{k}" for k in range(n)], "source_kind": [kind.value] * n,
        "source_id": ["acme:unit-1"] * n, "time_start": [T0 + timedelta(minutes=k)
                                                         for k in range(n)],
        "time_end": [T0 + timedelta(minutes=k) for k in range(n)],
        "lat": [47.5 + k * 0.01 for k in range(n)], "lon": [37.5] * n,
        "uncertainty_m": [250.0] * n,
        "attributes": [json.dumps({"k": k}) for k in range(n)],
        "raw_sha256": ["0" * 64] * n, "raw_row": list(range(1, n + 1)),
    })


def _check(df: pl.DataFrame) -> None:
    assert df.schema == contract.SCHEMA
    assert contract.conform(df).equals(df)


def test_firms_emits_the_contract() -> None:
    b = parse_firms(_firms(3) + b"91.0,37.0,330.1,0.4,0.4,2026-05-30,0001,N20,nominal,2.0NRT,"
                    b"300.1,2.1,D\n", "f.csv")
    obs = b.observations
    _check(obs)
    assert obs.height == b.records.height == 3 and len(b.quarantine) == 1
    assert set(obs["source_kind"]) == {"satellite_fire"} and set(obs["klass"]) == {"fire"}
    assert obs["time_start"].to_list()[1] == datetime(2026, 5, 30, 0, 1, tzinfo=UTC)
    assert json.loads(obs["attributes"][0])["confidence"] == "nominal"


def test_drones_emit_the_contract() -> None:
    doc = {"format": "trucewatch-drone/1", "reports": [{
        "report_id": "r1", "platform_id": "UA-07", "time": "2026-05-30T08:15:00Z",
        "class": "crater", "confidence": 0.8,
        "platform": {"lat": 47.6, "lon": 37.6, "alt_m": 300.0},
        "target": {"lat": 47.61, "lon": 37.61}}]}
    b = DroneSource().parse(json.dumps(doc).encode(), "d.json",
                            now=datetime(2026, 5, 31, tzinfo=UTC))
    assert not b.quarantine, b.quarantine
    _check(b.observations)
    row = b.observations.row(0, named=True)
    assert (row["klass"], row["reliability"], row["source_id"]) == ("crater", 0.8,
                                                                     "drone:UA-07")
    assert row["time_start"] == T0


def test_explosions_emit_the_contract() -> None:
    events = pl.DataFrame({
        "event_id": ["e1"], "time": [datetime(2026, 5, 30, 8, 15, 1, 234567, tzinfo=UTC)],
        "latitude": [47.7], "longitude": [37.7], "major_m": [900.0], "minor_m": [400.0],
        "azimuth_deg": [30.0], "status": ["located"], "n_defining": [5], "n_stations": [4],
        "rms_s": [0.2]})
    obs = observations(observation_records(events), "a" * 64)
    _check(obs)
    row = obs.row(0, named=True)
    assert row["time_start"] == datetime(2026, 5, 30, 8, 15, 1, 234000, tzinfo=UTC)
    assert row["klass"] == "explosion" and json.loads(row["attributes"])["n_defining"] == 5


@pytest.mark.parametrize(("change", "column", "words"), [
    (lambda d: d.drop("lat"), "lat", "is missing"),
    (lambda d: d.with_columns(pl.lit("north").alias("lat")), "lat", "cannot be read"),
    (lambda d: d.with_columns(pl.lit(95.0).alias("lat")), "lat", "outside -90..90"),
    (lambda d: d.with_columns(pl.lit(float("nan")).alias("lon")), "lon", "not finite"),
    (lambda d: d.with_columns(pl.lit("comet").alias("source_kind")), "source_kind",
     "cannot be read"),
    (lambda d: d.with_columns(pl.lit(None, pl.String).alias("id")), "id", "is null"),
    (lambda d: d.with_columns(pl.lit(float("nan")).alias("uncertainty_m")), "uncertainty_m",
     "is null"),
    (lambda d: d.with_columns(pl.col("time_start") + timedelta(hours=1)), "time_end",
     "before time_start"),
    (lambda d: d.with_columns(pl.lit(1.5).alias("reliability")), "reliability",
     "outside 0..1"),
    (lambda d: d.with_columns(pl.lit(3).alias("frp")), "frp", "not part of the contract"),
])
def test_a_table_that_does_not_conform_is_refused_naming_its_column(
        change: object, column: str, words: str) -> None:
    bad = change(_table())  # type: ignore[operator]
    with pytest.raises(ContractError) as err:
        contract.conform(bad, "acme.csv")
    assert err.value.column == column and words in err.value.message
    assert "acme.csv" in err.value.message and err.value.fix
    assert isinstance(err.value, TrucewatchError)


def test_storage_stores_any_source_from_the_contract(tmp_path: Path) -> None:
    """A kind of source storage has no code for stores and reads back like FIRMS."""
    obs = contract.conform(_table(3))
    raw = b"acme feed"
    b = Batch(source="acme", kind=SourceKind.ANALYST, layout="acme/1", name="acme.json",
              raw=raw, sha256=sha256(raw), n_rows=3, records=pl.DataFrame(),
              observations=obs)
    store = open_store(tmp_path / "s.db")
    rep = store.ingest(b)
    assert (rep.new, rep.duplicates) == (3, 0)
    got = store.observations(SourceKind.ANALYST)
    assert got["id"].to_list() == ["o-x0", "o-x1", "o-x2"]
    assert got["time_start"].to_list()[1] == "2026-05-30T08:16:00Z"
    assert json.loads(got["attributes"][2]) == {"k": 2}
    assert store.verify() == []
    store.close()


def test_a_bad_table_from_an_adapter_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    raw = b"acme feed"
    b = Batch(source="acme", kind=SourceKind.ANALYST, layout="acme/1", name="acme.json",
              raw=raw, sha256=sha256(raw), n_rows=2, records=pl.DataFrame(),
              observations=_table().drop("raw_row"))
    store = open_store(tmp_path / "s.db")
    with pytest.raises(ContractError, match="raw_row"):
        store.ingest(b)
    assert store.counts()["observations"] == 0 and store.counts()["batches"] == 0
    store.close()


def test_bound_as_written_equals_bound_as_read(tmp_path: Path) -> None:
    """A large batch is bound from the rows as written (no read-back); the digest is the
    one a read of the stored rows gives, and a batch overlapping stored rows (read back)
    verifies too."""
    n = binding.LIST_MAX + 500
    store = open_store(tmp_path / "s.db")
    first = store.ingest(parse_firms(_firms(n), "a.csv"))
    assert first.new == n
    entry = store.audit_log()[-1]
    logged = json.loads(entry.details)["batches"]["observations"][first.batch_id]
    conn = store._db.conn
    bt = binding.BY_NAME["observations"]
    stored = [h for _, h, _ in binding._hashed(conn.execute(
        binding.select(conn, bt).where(binding._table(conn, "observations").c.batch_id
                                       == first.batch_id)), bt)]
    assert logged == {"rows": n, "sha256": binding.digest(stored)}
    # half of these are already stored: the batch is read back, and still verifies
    second = store.ingest(parse_firms(_firms(2 * n, lat0=47.0), "b.csv"))
    assert (second.new, second.duplicates) == (n, n)
    assert store.verify() == []
    store.close()


def test_the_store_reads_the_contract_back_as_it_was_written(tmp_path: Path) -> None:
    """contract_observations: what an adapter emitted, klass and reliability included,
    comes back as the contract (the stages read this); ``before`` compares times, not
    the stored text (a batch in seconds and one in milliseconds)."""
    obs = contract.conform(_table(3).with_columns(
        pl.Series("klass", ["explosion", None, "heavy_weapon"]),
        pl.Series("reliability", [0.25, None, 1.0])))
    raw = b"acme feed"
    store = open_store(tmp_path / "s.db")
    store.ingest(Batch(source="acme", kind=SourceKind.ANALYST, layout="acme/1",
                       name="acme.json", raw=raw, sha256=sha256(raw), n_rows=3,
                       records=pl.DataFrame(), observations=obs))
    ms = obs.head(1).with_columns(pl.lit("o-ms").alias("id"),
                                  pl.col("time_start", "time_end") + timedelta(seconds=59,
                                                                               milliseconds=500))
    raw2 = b"acme feed, later"
    store.ingest(Batch(source="acme", kind=SourceKind.ANALYST, layout="acme/1",
                       name="acme2.json", raw=raw2, sha256=sha256(raw2), n_rows=1,
                       records=pl.DataFrame(), observations=ms))
    got = store.contract_observations([SourceKind.ANALYST])
    assert got.schema == contract.SCHEMA
    assert got["id"].to_list() == ["o-x0", "o-ms", "o-x1", "o-x2"]
    assert got.filter(pl.col("id") != "o-ms").equals(obs)
    # 08:15:59.500 is before 08:16:00, though its stored text sorts after "08:16:00Z"'s
    cut = got.filter(pl.col("id") == "o-ms")["time_start"][0] + timedelta(milliseconds=1)
    assert store.contract_observations(before=cut)["id"].to_list() == ["o-x0", "o-ms"]
    assert store.contract_observations([SourceKind.DRONE]).is_empty()
    assert store.verify() == []
    store.close()


def test_located_explosions_carry_the_networks_reliability() -> None:
    """The sensor adapter gives a located event a reliability growing with its defining
    stations (0.3..1) and a not-locatable one 0, which fusion takes as no evidence."""
    from trucewatch.fusion.evidence import explosion_evidence
    from trucewatch.sensors.events import reliability

    recs = pl.DataFrame({"status": ["located", "located", "located", "not_locatable"],
                         "n_defining": [4, 8, 1, 6]})
    assert recs.select(reliability(recs).alias("r"))["r"].to_list() == [0.5, 1.0, 0.3, 0.0]
    obs = contract.conform(_table(4, SourceKind.SENSOR_NETWORK).with_columns(
        pl.lit("explosion").alias("klass"),
        recs.select(reliability(recs).alias("reliability"))["reliability"]))
    ev = explosion_evidence(obs)
    assert ev["id"].to_list() == ["o-x0", "o-x1", "o-x2"]
    assert ev["reliability"].to_list() == [0.5, 1.0, 0.3]
    assert ev["t_start"].to_list()[0] == T0.timestamp()
