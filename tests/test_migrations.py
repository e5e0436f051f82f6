"""A store written by the release before Alembic (commit 91e88fa, schema version 8) opens
and migrates on both backends: the old code itself, taken from git history, builds the
store in a subprocess; the new code migrates it, finds the data, verifies the chain and
the bound state, and ingests more. A migrated store has the same tables, columns and
indexes as a new one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from trucewatch.demo import ScenarioFiles
from trucewatch.ingest.firms import detections, parse_firms, read_firms
from trucewatch.model import contract
from trucewatch.model.enums import SourceKind
from trucewatch.storage import migrations, open_store
from trucewatch.storage.database import Database

OLD_RELEASE = "91e88fa"  # the last commit whose stores have no alembic_version
ROOT = Path(__file__).resolve().parents[1]

OLD_SCRIPT = r"""
import json, sys
from pathlib import Path
import trucewatch
assert trucewatch.__file__.startswith(sys.argv[1]), trucewatch.__file__
from trucewatch.pipeline import run_cycle
from trucewatch.storage import open_store
args = json.loads(sys.argv[2])
run_cycle(agreement_path=Path(args["agreement"]), firms_files=[Path(f) for f in args["firms"]],
          reference_years=[2023, 2024, 2025], out_dir=Path(args["out"]), pdf=False,
          store_path=Path(args["where"]) if "://" not in args["where"] else args["where"])
s = open_store(args["where"])
token = s.add_token("old-analyst", "analyst")
inc = s.incidents()[0]
from trucewatch.model.enums import Status
s.set_status(inc.id, Status.PENDING_VERIFICATION, "analyst1", "checked imagery")
print(json.dumps({"token": token, "counts": s.counts(), "version": s.schema_version(),
                  "incidents": sorted(i.id for i in s.incidents()),
                  "reviewed": inc.id, "problems": s.verify()}))
s.close()
"""



def _old_source(commit: str, tmp_path_factory: pytest.TempPathFactory, label: str) -> Path:
    """``src/`` as it stood at ``commit`` (git archive), in a fresh folder; skips, with the
    reason, where the git history is not available."""
    try:
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"],
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"git history with commit {commit} is not available here ({err})")
    dest = tmp_path_factory.mktemp(label)
    with tarfile.open(fileobj=BytesIO(tar)) as t:
        t.extractall(dest, filter="data")
    return dest

@pytest.fixture(scope="module")
def old_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The source tree of the release before this change, from git history."""
    try:
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_RELEASE, "src"],
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"git history with commit {OLD_RELEASE} is not available here "
                    f"({err}): the old release cannot be run to write a store")
    dest = tmp_path_factory.mktemp("old-release")
    with tarfile.open(fileobj=BytesIO(tar)) as t:
        t.extractall(dest, filter="data")
    return dest / "src"


@pytest.fixture(params=["sqlite", "postgis"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgis":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "old.db")


def _write_with_old_code(old_src: Path, where: str, scenario: ScenarioFiles,
                         out: Path) -> dict[str, object]:
    args = {"agreement": str(scenario.agreement), "where": where, "out": str(out),
            "firms": [str(f) for f in (*scenario.reference, *scenario.current)]}
    done = subprocess.run([sys.executable, "-c", OLD_SCRIPT, str(old_src), json.dumps(args)],
                          capture_output=True, text=True,
                          env=os.environ | {"PYTHONPATH": str(old_src)}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _shape(where: str) -> dict[str, tuple[list[str], list[str]]]:
    """Each table's columns and index names (what a migration must leave as a new store
    has them)."""
    db = Database(where)
    try:
        ins = sa.inspect(db.conn)
        names = set(ins.get_table_names()) - {"spatial_ref_sys"}
        sql = ("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
               if db.dialect == "sqlite" else
               "SELECT indexname FROM pg_indexes WHERE tablename = :t")
        return {t: (sorted(c["name"] for c in ins.get_columns(t)),
                    sorted(r[0] for r in db.conn.execute(sa.text(sql), {"t": t})))
                for t in sorted(names)}
    finally:
        db.close()


def test_a_store_of_the_old_release_migrates(old_code: Path, where: str, tmp_path: Path,
                                             scenario: ScenarioFiles) -> None:
    old = _write_with_old_code(old_code, where, scenario, tmp_path / "out")
    assert old["version"] == 8 and old["problems"] == []

    store = open_store(where)  # migrates: baseline stamps the old schema, then 0002
    try:
        assert store.schema_revision() == migrations.head()
        assert store.schema_version() == migrations.GUARD  # an older release refuses it
        # revision 0008 fills the FIRMS rows' klass and logs it in one entry
        backfill = [e for e in store.audit_log() if e.action == "backfill"]
        assert len(backfill) == 1 and backfill[0].actor == "migration"
        want = dict(old["counts"])  # type: ignore[call-overload]
        assert store.counts() == want | {"audit_log": want["audit_log"] + 1}
        fires = store.contract_observations([SourceKind.SATELLITE_FIRE])
        assert fires.height == want["observations"]
        assert fires["klass"].cast(pl.String).unique().to_list() == ["fire"]
        assert sorted(i.id for i in store.incidents()) == old["incidents"]
        assert [h["who"] for h in store.incident_history(str(old["reviewed"]))] == [
            "pipeline", "analyst1"]
        owner = store.token_owner(str(old["token"]))
        assert owner is not None and owner.name == "old-analyst"
        assert store.verify() == []
        # the spatial index of the migrated store answers (R*Tree / PostGIS geometry)
        inc = store.incidents()[0]
        lat, lon = inc.location.lat, inc.location.lon
        box, _ = store.query_incidents(bbox=(lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01))
        assert inc.id in [i.id for i in box]
        # and it takes new data, proven by the log like the old
        before = store.counts()["observations"]
        rep = store.ingest(parse_firms(b"latitude,longitude,acq_date,sensor_guess\n"
                                       b"48.1,37.1,2026-06-01,MODIS\n", "new.csv"))
        assert rep.new == 1 and store.counts()["observations"] == before + 1
        assert rep.batch_id in {b["id"] for b in store.batches()}
        assert store.observations_in_bbox(37.0, 48.0, 37.2, 48.2)
        assert store.verify() == []
    finally:
        store.close()
    # opened again: nothing more to migrate, still verifies
    again = open_store(where)
    assert again.verify() == [] and again.schema_revision() == migrations.head()
    again.close()


def test_a_migrated_store_has_the_new_schema(old_code: Path, where: str, tmp_path: Path,
                                             scenario: ScenarioFiles) -> None:
    """Migrating the old release's store gives the tables, columns and indexes that the
    specification creates for a new store (PostGIS: geom + GiST, no box tables)."""
    _write_with_old_code(old_code, where, scenario, tmp_path / "out")
    open_store(where).close()
    migrated = _shape(where)
    if "://" in where:
        from lab.postgres import new_database

        fresh_where = new_database(where.rsplit("/", 1)[0] + "/postgres")
    else:
        fresh_where = str(tmp_path / "fresh.db")
    open_store(fresh_where).close()
    fresh = _shape(fresh_where)
    assert migrated == fresh
    if "://" in where:
        assert "observations_rtree" not in fresh and "geom" in fresh["observations"][0]
        assert "observations_geom" in fresh["observations"][1]
    else:
        assert "observations_rtree" in fresh


def test_a_new_store_is_at_head_and_a_newer_one_is_refused(where: str) -> None:
    from trucewatch.errors import SchemaVersionError

    s = open_store(where)
    assert s.schema_revision() == migrations.head()
    s.close()
    db = Database(where)
    db.conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    db.close()
    with pytest.raises(SchemaVersionError, match="newer"):
        open_store(where)


def test_ingest_and_read_back_on_both(where: str, scenario: ScenarioFiles) -> None:
    """The observation contract on both backends: what the satellite classifier reads."""
    s = open_store(where)
    try:
        s.ingest(read_firms(scenario.current[0]))
        fires = detections(s.contract_observations([SourceKind.SATELLITE_FIRE]))
        assert fires.columns == [*contract.SCHEMA, "latitude", "longitude", "acq_date",
                                 "time_basis"]
        assert fires.height == s.counts()["observations"] > 0
        lat, lon = fires["latitude"][0], fires["longitude"][0]
        near = s.observations_in(near=(lon, lat, 1000.0))
        assert fires["id"][0] in near["id"].to_list()
        far = s.observations_in(near=(lon + 1.0, lat, 1000.0))
        assert fires["id"][0] not in far["id"].to_list()
    finally:
        s.close()


BEFORE_0003 = "76bd754"  # the last commit whose submissions are keyed by nonce alone
SIGNED_SCRIPT = r"""
import json, sys
from datetime import UTC, datetime
from pathlib import Path
import trucewatch
assert trucewatch.__file__.startswith(sys.argv[1]), trucewatch.__file__
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization
from trucewatch.ingest.drones import DroneSource
from trucewatch.intake import receive
from trucewatch.integrity.envelope import sign_submission
from trucewatch.integrity.keys import KeyRecord, KeyRegistry
from trucewatch.storage import open_store
args = json.loads(sys.argv[2])
now = datetime(2026, 5, 30, 12, tzinfo=UTC)
priv = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(args["seed"]))
pub = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
reg = KeyRegistry([KeyRecord("ua07", "drone:UA-07", pub, datetime(2026, 5, 1, tzinfo=UTC))])
s = open_store(args["where"])
for k, nonce in enumerate(("n1", "n2")):
    doc = json.dumps({"format": "trucewatch-drone/1", "reports": [
        {"report_id": f"r{k}", "platform_id": "UA-07", "time": "2026-05-30T04:12:00Z",
         "platform": {"lat": 48.0, "lon": 37.5}, "target": {"lat": 48.01, "lon": 37.52},
         "class": "explosion", "confidence": 0.8}]}).encode()
    o = receive(s, sign_submission(doc, priv, "ua07", now, nonce), f"{nonce}.json",
                DroneSource(), registry=reg, now=now)
    assert o.accepted, o.refused
print(json.dumps({"problems": s.verify(), "revision": s.schema_revision()}))
s.close()
"""


def test_signed_submissions_of_revision_0002_are_rekeyed_per_key(
        where: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A store with signed submissions, written by the code before revision 0003 (nonces
    one global namespace), migrates: its rows are kept, verify holds (the rekey entry),
    another key may use the same nonce and the same key still may not."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from trucewatch.ingest.drones import DroneSource
    from trucewatch.intake import receive
    from trucewatch.integrity.envelope import sign_submission
    from trucewatch.integrity.keys import KeyRecord, KeyRegistry

    dest = _old_source(BEFORE_0003, tmp_path_factory, "before-0003")
    seed = os.urandom(32)
    done = subprocess.run([sys.executable, "-c", SIGNED_SCRIPT, str(dest / "src"),
                           json.dumps({"where": where, "seed": seed.hex()})],
                          capture_output=True, text=True, timeout=600,
                          env=os.environ | {"PYTHONPATH": str(dest / "src")})
    assert done.returncode == 0, done.stderr[-3000:]
    old = json.loads(done.stdout.strip().splitlines()[-1])
    assert old == {"problems": [], "revision": "0002"}

    store = open_store(where)
    try:
        assert store.schema_revision() == migrations.head()
        assert store.verify() == []
        rekey = [e for e in store.audit_log() if e.action == "rekey"]
        assert len(rekey) == 1
        moved = json.loads(rekey[0].details)["state"]["submissions"]
        assert set(moved) == {"n1", "n2", "n1#ua07", "n2#ua07"}
        assert moved["n1"][0] == moved["n1#ua07"][1] and moved["n1"][1] is None
        now = datetime(2026, 5, 30, 12, tzinfo=UTC)
        ua07 = Ed25519PrivateKey.from_private_bytes(seed)
        other = Ed25519PrivateKey.generate()

        def raw(k: Ed25519PrivateKey) -> bytes:
            return k.public_key().public_bytes(serialization.Encoding.Raw,
                                               serialization.PublicFormat.Raw)

        may = datetime(2026, 5, 1, tzinfo=UTC)
        reg = KeyRegistry([KeyRecord("ua07", "drone:UA-07", raw(ua07), may),
                           KeyRecord("eu12", "drone:EU-12", raw(other), may)])

        def doc(platform: str, rid: str) -> bytes:
            return json.dumps({"format": "trucewatch-drone/1", "reports": [
                {"report_id": rid, "platform_id": platform, "time": "2026-05-30T05:00:00Z",
                 "platform": {"lat": 48.0, "lon": 37.5}, "target": {"lat": 48.02, "lon": 37.5},
                 "class": "explosion", "confidence": 0.8}]}).encode()

        theirs = receive(store, sign_submission(doc("EU-12", "x"), other, "eu12", now, "n1"),
                         "eu12-n1.json", DroneSource(), registry=reg, now=now)
        assert theirs.accepted, theirs.refused
        mine = receive(store, sign_submission(doc("UA-07", "y"), ua07, "ua07", now, "n2"),
                       "ua07-n2.json", DroneSource(), registry=reg, now=now)
        assert not mine.accepted and "replayed submission: nonce n2 was first" in mine.refused
        assert store.verify() == []
    finally:
        store.close()


BEFORE_0008 = "97e7412"  # the last commit whose observations have no klass, reliability
CONTRACT_SCRIPT = r"""
import json, sys
from datetime import UTC, datetime
import trucewatch
assert trucewatch.__file__.startswith(sys.argv[1]), trucewatch.__file__
from trucewatch.storage import open_store
sys.path.insert(0, sys.argv[3])
from contract_inputs import batches
args = json.loads(sys.argv[2])
s = open_store(args["where"])
for b in batches():
    s.ingest(b)
print(json.dumps({"problems": s.verify(), "revision": s.schema_revision()}))
s.close()
"""
# the same inputs for the old code (in its subprocess) and the new: a FIRMS file bound by
# one digest (more than binding.LIST_MAX rows), a small one listed row by row, drone
# reports, and located / not-locatable explosions built as the sensor adapter does
CONTRACT_INPUTS = r"""
import hashlib, json
from datetime import UTC, datetime
import polars as pl
from trucewatch.ingest.base import Batch
from trucewatch.ingest.drones import DroneSource
from trucewatch.ingest.firms import parse_firms
from trucewatch.model import contract
from trucewatch.model.enums import SourceKind, SourceName

NOW = datetime(2026, 5, 30, 12, tzinfo=UTC)

def firms(n, lat0, name):
    rows = "".join(f"{lat0 + k * 0.0001:.4f},37.1,2026-05-29,MODIS\n" for k in range(n))
    return parse_firms(("latitude,longitude,acq_date,sensor_guess\n" + rows).encode(), name)

def drones():
    reports = [{"report_id": f"r{k}", "platform_id": "UA-07", "time": "2026-05-30T04:12:00Z",
                "platform": {"lat": 48.0, "lon": 37.5},
                "target": {"lat": 48.01 + k / 1000, "lon": 37.52},
                "class": cls, "confidence": conf, **extra}
               for k, (cls, conf, extra) in enumerate([
                   ("explosion", 0.8, {}),
                   ("heavy_weapon", 0.65, {"weapon_class": "artillery", "count": 3}),
                   ("vehicle_movement", 0.9, {"count": 2})])]
    doc = json.dumps({"format": "trucewatch-drone/1", "reports": reports}).encode()
    return DroneSource().parse(doc, "drones.json", now=NOW)

EVENTS = [("located", 5), ("located", 12), ("located", 2), ("not_locatable", 3)]

def explosions(reliability=None):
    raw = b"detections file"
    sha = hashlib.sha256(raw).hexdigest()
    t = datetime(2026, 5, 30, 3, 0, 1, 250000, tzinfo=UTC)
    rec = pl.DataFrame({
        "id": [f"o-ex{k}" for k in range(len(EVENTS))],
        "source_kind": [SourceKind.SENSOR_NETWORK.value] * len(EVENTS),
        "source_id": ["sensors:network"] * len(EVENTS),
        "sensor": [SourceKind.SENSOR_NETWORK.value] * len(EVENTS),
        "time_start": [t] * len(EVENTS), "time_end": [t] * len(EVENTS),
        "lat": [48.2 + k / 100 for k in range(len(EVENTS))], "lon": [37.3] * len(EVENTS),
        "uncertainty_m": [150.0, 90.0, 400.0, 5000.0], "klass": ["explosion"] * len(EVENTS),
        "attributes": [json.dumps({"event_id": k, "status": st, "n_defining": n})
                       for k, (st, n) in enumerate(EVENTS)],
        "raw_sha256": [sha] * len(EVENTS), "raw_row": [0] * len(EVENTS)})
    if reliability is not None:
        rec = rec.with_columns(reliability)
    obs = contract.conform(rec, "explosions")
    return Batch(source=SourceName.SENSOR_EVENTS, kind=SourceKind.SENSOR_NETWORK,
                 layout="explosions", name="detections.csv", raw=raw, sha256=sha,
                 n_rows=obs.height, records=obs, quarantine=[], observations=obs)

def batches(reliability=None):
    return [firms(2100, 48.0, "big.csv"), firms(5, 49.0, "small.csv"), drones(),
            explosions(reliability)]
"""


@pytest.fixture(scope="module")
def code_before_0008(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _old_source_with_inputs(BEFORE_0008, tmp_path_factory, "before-0008")


def _old_source_with_inputs(commit: str, factory: pytest.TempPathFactory, name: str
                            ) -> Path:
    """The old code (:func:`_old_source`) with the script that writes the contract's
    inputs through it."""
    dest = _old_source(commit, factory, name)
    (dest / "inputs").mkdir()
    (dest / "inputs" / "contract_inputs.py").write_text(CONTRACT_INPUTS)
    return dest


def _write_before_0008(code: Path, where: str, revision: str = "0003") -> None:
    done = subprocess.run([sys.executable, "-c", CONTRACT_SCRIPT, str(code / "src"),
                           json.dumps({"where": where}), str(code / "inputs")],
                          capture_output=True, text=True, timeout=600,
                          env=os.environ | {"PYTHONPATH": str(code / "src")})
    assert done.returncode == 0, done.stderr[-3000:]
    old = json.loads(done.stdout.strip().splitlines()[-1])
    assert old == {"problems": [], "revision": revision}


def _fresh(where: str, tmp_path: Path) -> str:
    if "://" in where:
        from lab.postgres import new_database

        return str(new_database(where.rsplit("/", 1)[0] + "/postgres"))
    return str(tmp_path / "fresh.db")


def test_observations_of_revision_0003_get_the_contracts_klass_and_reliability(
        code_before_0008: Path, where: str, tmp_path: Path) -> None:
    """A store written before revision 0008 (no klass, reliability) migrates: its rows
    read back as the contract exactly as a new store's given the same inputs by the new
    adapters (the explosions' reliability from sensors.events), and verify holds: the
    listed rows moved [old, new] and the digest-bound batch rebound, in one entry."""
    import importlib.util

    from trucewatch.sensors.events import reliability

    _write_before_0008(code_before_0008, where)
    spec = importlib.util.spec_from_file_location(
        "contract_inputs", code_before_0008 / "inputs" / "contract_inputs.py")
    assert spec and spec.loader
    inputs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(inputs)
    events = pl.DataFrame({"status": [st for st, _ in inputs.EVENTS],
                           "n_defining": [n for _, n in inputs.EVENTS]})
    trust = events.select(reliability(events).alias("reliability"))["reliability"]
    assert trust.to_list() == [0.625, 1.0, 0.3, 0.0]

    fresh = open_store(_fresh(where, tmp_path))
    store = open_store(where)
    try:
        for b in inputs.batches(trust):
            fresh.ingest(b)
        assert store.schema_revision() == migrations.head()
        assert store.verify() == []
        backfill = [e for e in store.audit_log() if e.action == "backfill"]
        assert len(backfill) == 1
        details = json.loads(backfill[0].details)
        # 5 small FIRMS rows + 3 drone reports + 4 explosions listed; the big file rebound
        assert len(details["state"]["observations"]) == 5 + 3 + 4
        (rebound,) = details["rebound"]["observations"].values()
        assert rebound["rows"] == 2100 and rebound["before"] != rebound["sha256"]
        got = store.contract_observations().sort("id")
        want = fresh.contract_observations().sort("id")
        assert got.height == want.height == 2100 + 5 + 3 + 4
        assert got.equals(want)
        drones = got.filter(pl.col("source_kind") == "drone").sort("lat")
        assert drones["klass"].cast(pl.String).to_list() == [
            "explosion", "heavy_weapon", "vehicle_movement"]
        assert drones["reliability"].to_list() == [0.8, 0.65, 0.9]
        # the rows are proven by the log from here on, as any other
        store.db.cursor().execute("UPDATE observations SET reliability = 0.99 "
                                  "WHERE id = 'o-ex3'")
        store.db.commit()
        assert any("o-ex3" in p for p in store.verify())
    finally:
        store.close()
        fresh.close()


def test_a_row_changed_before_revision_0008_still_shows_after_it(
        code_before_0008: Path, where: str) -> None:
    """The backfill logs the hash it found: a row altered outside the log before the
    migration (one listed row by row, one in a digest-bound batch) is still named."""
    _write_before_0008(code_before_0008, where)
    db = Database(where)
    try:
        db.conn.exec_driver_sql("UPDATE observations SET lat = lat + 0.5 WHERE id IN "
                                "(SELECT id FROM observations WHERE source_kind = 'drone' "
                                "ORDER BY id LIMIT 1)")
        db.conn.exec_driver_sql("UPDATE observations SET lon = lon + 0.5 WHERE id IN "
                                "(SELECT id FROM observations WHERE lat < 48.5 AND "
                                "source_kind = 'satellite_fire' ORDER BY id LIMIT 1)")
    finally:
        db.close()
    store = open_store(where)
    try:
        assert store.schema_revision() == migrations.head()
        problems = store.verify()
        assert any("rebinds batch" in p for p in problems), problems
        assert any("observations row" in p and "changed since" in p for p in problems), \
            problems
    finally:
        store.close()


BEFORE_0009 = "2fc1923"  # the last commit whose located explosions are one batch's rows


@pytest.fixture(scope="module")
def code_before_0009(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _old_source_with_inputs(BEFORE_0009, tmp_path_factory, "before-0009")


def test_revision_0009_adds_the_sensor_stream_tables_and_keeps_what_was_located(
        code_before_0009: Path, where: str, tmp_path: Path) -> None:
    """A store of revision 0008 (explosions located per file, stored as that batch's
    observations) migrates on either dialect: the stream's three tables are there and
    empty, the old explosions still read as explosions, verify holds; new detections are
    then located into derived events beside them, bound like any other row."""
    from trucewatch.intake import receive
    from trucewatch.intake.sources import adapters, stored_stations
    from trucewatch.intake.stream import advance
    from trucewatch.integrity.envelope import SourcePolicy

    _write_before_0008(code_before_0009, where, revision="0008")  # the same inputs
    store = open_store(where)
    try:
        assert store.schema_revision() == migrations.head() and "0009" in migrations.revisions()
        assert store.verify() == []
        assert store.derived_events().is_empty() and store.stream_inputs() == []
        assert store.stream_state("inventory") is None
        old = store.explosions()
        assert sorted(old["id"].to_list()) == [f"o-ex{k}" for k in range(4)]
        stations = b"id,latitude,longitude,elevation_m,kind\n" + b"".join(
            f"S{k},{48.0 + (k // 3) * 0.05:.3f},{37.0 + (k % 3) * 0.07:.3f},100,acoustic\n"
            .encode() for k in range(9))
        assert receive(store, stations, "stations.csv", adapters(store)["stations"],
                       policy=SourcePolicy.OPTIONAL).usable
        det = b"detection_id,station,time,phase\nd1,S0,2026-05-30T03:00:00Z,acoustic\n"
        o = receive(store, det, "det.csv", adapters(store)["detections"],
                    policy=SourcePolicy.OPTIONAL)
        assert o.accepted and store.explosions().height == 4  # stored, not located
        step = advance(store, stored_stations(store))
        assert step.mode == "full" and step.inputs == [o.report.batch_id]  # type: ignore[union-attr]
        # the old per-file batch (sensor_events) is not taken again
        assert [r["batch_id"] for r in store.stream_inputs()] == step.inputs
        assert store.verify() == []
    finally:
        store.close()
