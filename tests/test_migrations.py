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

import pytest
import sqlalchemy as sa

from trucewatch.demo import ScenarioFiles
from trucewatch.ingest.firms import parse_firms, read_firms
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
        assert store.counts() == old["counts"]
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
        fires = s.fire_detections()
        assert fires.columns == ["id", "latitude", "longitude", "acq_date", "sensor",
                                 "time_start", "time_end", "time_basis"]
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

    try:
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE_0003, "src"],
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"git history with commit {BEFORE_0003} is not available here ({err})")
    dest = tmp_path_factory.mktemp("before-0003")
    with tarfile.open(fileobj=BytesIO(tar)) as t:
        t.extractall(dest, filter="data")
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
