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
