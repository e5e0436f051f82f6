"""Tamper trials (issue 11, "State proven by the log"): whoever holds the store file (or
the database) edits it with raw SQL, past the triggers; `verify` must find every edit and
name the first bad row, on SQLite and on PostgreSQL + PostGIS.

The store is built by the built-in cycle (FIRMS, located explosions, signed drone
reports, allegations and their rulings, refusals, quarantined rows, the scripted review,
published bulletins), then API tokens made and one revoked, and a checkpoint signed."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from trucewatch.demo import ScenarioFiles
from trucewatch.integrity import checkpoint as cp
from trucewatch.integrity.chain import entry_hash
from trucewatch.integrity.keys import KeyRecord, KeyRegistry, new_keypair
from trucewatch.storage import SqliteStore, binding, open_store
from trucewatch.storage.postgis import postgres_url

_SQLITE_TRIGGERS = ("audit_log_append_only_u", "audit_log_append_only_d",
                    "raw_inputs_evidentiary_u", "raw_inputs_evidentiary_d")


def _cycle(scenario: ScenarioFiles, out: Path, store: str) -> None:
    from lab.cycle import builtin_cycle

    builtin_cycle(scenario, out, store)
    s = open_store(store)
    s.add_token("liaison-a", "liaison", party="A")
    s.add_token("sensor-net", "sensor")
    s.revoke_token("sensor-net")
    s.publish_checkpoint(out, _day(out))
    s.close()


def _day(out: Path) -> Any:
    from datetime import date

    names = sorted(out.glob("bulletin-*-public.json"))
    return date.fromisoformat(names[-1].name.split("-", 1)[1][:10])


@dataclass
class Built:
    """One test's own copy of the built store (a file, or a database cloned from a
    template) and the cycle's out folder (its checkpoint and mission key registry)."""

    where: str
    out: Path

    @property
    def pg(self) -> str | None:
        return postgres_url(self.where)

    def open(self) -> SqliteStore:
        return open_store(self.where)

    def attack(self, *statements: str) -> None:
        """Raw SQL as the file's holder runs it: triggers and foreign keys out of the way."""
        if self.pg:
            import psycopg

            with psycopg.connect(self.pg, autocommit=True) as conn:
                conn.execute("SET session_replication_role = replica")
                for s in statements:
                    conn.execute(s)
            return
        db = sqlite3.connect(self.where)
        # a careful holder puts the triggers back afterwards (verify names missing ones)
        saved = [sql for (sql,) in db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name IN ("
            + ",".join("?" * len(_SQLITE_TRIGGERS)) + ")", _SQLITE_TRIGGERS)]
        for t in _SQLITE_TRIGGERS:
            db.execute(f"DROP TRIGGER IF EXISTS {t}")
        for s in statements:
            db.execute(s)
        for sql in saved:
            db.execute(sql)
        db.commit()
        db.close()

    def problems(self) -> list[str]:
        s = self.open()
        try:
            return s.verify()
        finally:
            s.close()

    @property
    def checkpoint(self) -> Path:
        return sorted(self.out.glob("checkpoint-*.json"))[-1]


@pytest.fixture(scope="module")
def sqlite_built(scenario: ScenarioFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tamper-sqlite")
    _cycle(scenario, out, str(out / "trucewatch.db"))
    return out


@pytest.fixture(scope="module")
def pg_built(pg_server: str, scenario: ScenarioFiles,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    import psycopg

    name = f"tw_tamper_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_server.rsplit("/", 1)[0] + "/" + name
    out = tmp_path_factory.mktemp("tamper-pg")
    _cycle(scenario, out, url)
    return name, out


@pytest.fixture(params=["sqlite", "postgis"])
def built(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Built]:
    if request.param == "sqlite":
        src: Path = request.getfixturevalue("sqlite_built")
        shutil.copy(src / "trucewatch.db", tmp_path / "trucewatch.db")
        yield Built(str(tmp_path / "trucewatch.db"), src)
        return
    import psycopg

    template, out = request.getfixturevalue("pg_built")
    server: str = request.getfixturevalue("pg_server")
    name = f"tw_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    yield Built(server.rsplit("/", 1)[0] + "/" + name, out)


def _writer(b: Built, table: str, key: str) -> int:
    """The seq of the last log entry that bound ``table`` row ``key`` (read from the log
    itself, not from verify)."""
    s = b.open()
    seq = 0
    for e in s.audit_log():
        if key in (json.loads(e.details).get("state") or {}).get(table, {}):
            seq = e.seq
    s.close()
    return seq


def _one(b: Built, sql: str) -> Any:
    s = b.open()
    row = s.db.execute(sql).fetchone()
    s.close()
    return row[0]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trucewatch", "verify", *args],
                          capture_output=True, text=True)


# ------------------------------------------------------------------ no false alarms
def test_clean_cycle_verifies_with_its_checkpoint(built: Built) -> None:
    assert built.problems() == []
    s = built.open()
    log = s.audit_log()
    actions = {e.action for e in log}
    assert {"ingest", "refuse", "adjudicate", "rule_allegations", "coverage", "publish",
            "token_created", "token_revoked", "decide:verified"} <= actions
    # every bound table has rows, bound both ways: observations by row and by digest
    counts = s.counts()
    assert counts["quarantine"] and counts["refused"] and counts["rulings"]
    digests = [e for e in log if "batches" in json.loads(e.details)]
    assert digests, "the large FIRMS batches are bound by digest"
    s.close()
    registry, where = cp.trusted_registry(log)  # the key the store pinned in its log
    assert where.startswith("the key pinned at log entry ")
    assert cp.check(cp.Checkpoint.load(built.checkpoint), log, registry) == []
    bulletin = json.loads(sorted(built.out.glob("bulletin-*-restricted.json"))[-1]
                          .read_text())
    assert "integrity" in json.dumps(bulletin)
    if not built.pg:
        ok = _cli("--store", built.where, "--checkpoint", str(built.checkpoint))
        assert ok.returncode == 0, ok.stderr
        assert "audit chain OK" in ok.stdout and "holds" in ok.stdout


def test_mission_key_is_private_and_its_public_half_published(sqlite_built: Path) -> None:
    key = Path(os.environ[cp.KEY_ENV])  # where the operator said (tests/conftest.py)
    assert key.exists() and key.stat().st_mode & 0o777 == 0o600
    # the private key is nowhere in the store's folder, which holds the checkpoints
    assert not list(sqlite_built.rglob("*.pem"))
    doc = json.loads((sqlite_built / cp.REGISTRY_FILE).read_text())
    c = json.loads(sorted(sqlite_built.glob("checkpoint-*.json"))[-1].read_text())
    assert [k["key_id"] for k in doc["keys"]] == [c["key_id"]]
    assert c["format"] == cp.FORMAT and c["seq"] > 40 and len(c["head"]) == 64
    # and pinned in the store's log once, before the first head it signed
    log = SqliteStore(sqlite_built / "trucewatch.db").audit_log()
    pins = [e for e in log if e.action == cp.PIN_ACTION]
    assert len(pins) == 1 and pins[0].subject == c["key_id"] and pins[0].seq < c["seq"]


# ------------------------------------------------------------------ the six findings
def test_forged_verified_incidents_and_rewritten_violation_are_named(built: Built) -> None:
    first = _one(built, "SELECT min(id) FROM incidents WHERE status != 'verified'")
    vid = _one(built, "SELECT min(id) FROM violations")
    built.attack("UPDATE incidents SET status = 'verified'",
                 f"UPDATE violations SET doc = replace(doc, 'a', 'o') WHERE id = '{vid}'")
    problems = built.problems()
    assert problems, "forged statuses went unnoticed"
    changed = [p for p in problems if p.startswith("incidents row ")]
    assert changed and all("differs from the row logged at entry" in p for p in changed)
    assert any(p.startswith(f"incidents row {first} differs from the row logged at entry "
                            f"{_writer(built, 'incidents', first)}") for p in problems)
    assert (f"violations row {vid} differs from the row logged at entry "
            f"{_writer(built, 'violations', vid)}") in problems
    # the first problem names the earliest entry's row
    assert problems[0].startswith(("incidents row ", "violations row "))


def test_sensor_locations_moved_5_km_are_named(built: Built) -> None:
    # located explosions are the sensor stream's derived events (revision 0009)
    oid = _one(built, "SELECT min(id) FROM derived_events WHERE source_kind = 'sensor_network'")
    built.attack("UPDATE derived_events SET lat = lat + 0.045 "
                 "WHERE source_kind = 'sensor_network'")
    problems = built.problems()
    seq = _writer(built, "derived_events", oid)
    assert seq and problems[0] == (f"derived_events row {oid} differs from the row logged "
                                   f"at entry {seq}")
    assert len([p for p in problems if p.startswith("derived_events row")]) == binding.CAP


def test_a_detections_batch_dropped_from_the_stream_is_named(built: Built) -> None:
    """The stream's record of what it took is bound: a batch removed from it (so that the
    next step would locate its detections again, twice) is named."""
    bid = _one(built, "SELECT min(batch_id) FROM stream_inputs")
    built.attack(f"DELETE FROM stream_inputs WHERE batch_id = '{bid}'")
    problems = built.problems()
    assert any(p.startswith(f"stream_inputs row {bid} logged at entry") and
               p.endswith("is missing") for p in problems), problems


def test_satellite_detection_moved_in_a_large_batch_is_named_by_batch(built: Built) -> None:
    bid = _one(built, "SELECT id FROM batches WHERE name LIKE 'viirs%2024%'")
    built.attack("UPDATE observations SET lon = lon + 0.07 WHERE id = (SELECT min(id) FROM "
                 f"observations WHERE batch_id = '{bid}')")
    problems = built.problems()
    assert problems[0].startswith(f"observations of batch {bid} (viirs_noaa20_nrt_2024.csv) "
                                  "differ from the ")
    assert problems[0].endswith("rows found, some changed")
    # SQLite: the R*Tree box stayed where the row was (PostGIS regenerates geom)
    assert len(problems) == (1 if built.pg else 2), problems
    assert built.pg or "elsewhere than its point" in problems[1]


def test_changed_ruling_is_named(built: Built) -> None:
    aid, ruling = (_one(built, "SELECT min(allegation_id) FROM rulings"),
                   _one(built, "SELECT ruling FROM rulings ORDER BY allegation_id LIMIT 1"))
    forged = "no_violation" if ruling != "no_violation" else "violation_confirmed"
    built.attack(f"UPDATE rulings SET ruling = '{forged}' WHERE allegation_id = '{aid}'")
    assert built.problems() == [f"rulings row {aid} differs from the row logged at entry "
                                f"{_writer(built, 'rulings', aid)}"]


def test_emptied_quarantine_refusals_and_nonces_are_named(built: Built) -> None:
    q = _one(built, "SELECT min(id) FROM quarantine")
    built.attack("DELETE FROM quarantine", "DELETE FROM refused", "DELETE FROM submissions")
    problems = built.problems()
    for table in ("quarantine", "refused", "submissions"):
        assert any(p.startswith(f"{table} row ") and p.endswith(" is missing")
                   for p in problems), table
    assert (f"quarantine row {q} logged at entry {_writer(built, 'quarantine', str(q))} "
            "is missing") in problems
    assert problems[0].endswith("is missing")


def test_deleted_evidentiary_copies_are_found_from_the_log(built: Built) -> None:
    s = built.open()
    logged: dict[str, int] = {}
    for e in s.audit_log():
        sha = json.loads(e.details).get("raw_sha256")
        if sha:
            logged.setdefault(sha, e.seq)
    s.close()
    first, seq = next(iter(logged.items()))
    built.attack("DELETE FROM raw_inputs")
    problems = built.problems()
    assert problems[0].startswith(f"evidentiary copy {first[:16]} (")
    assert problems[0].endswith(f"logged at entry {seq} is missing from raw_inputs")
    assert len([p for p in problems if p.startswith("evidentiary copy")]) == len(logged)
    assert any(p.startswith("raw_inputs row ") and p.endswith("is missing") for p in problems)


def test_deleted_last_entry_is_found(built: Built) -> None:
    last = _one(built, "SELECT max(seq) FROM audit_log")
    built.attack(f"DELETE FROM audit_log WHERE seq = {last}")
    problems = built.problems()
    # the entry revoked a token: the token row now shows a change no entry logged
    assert problems and problems[0].startswith("api_tokens row ")
    # and the signed checkpoint names the truncation, in one line
    s = built.open()
    registry, _ = cp.trusted_registry(s.audit_log())
    assert cp.check(cp.Checkpoint.load(built.checkpoint), s.audit_log(), registry) == [
        f"log truncated behind the checkpoint: it signed {last} entries (head "
        f"{cp.Checkpoint.load(built.checkpoint).head[:16]}), the store has {last - 1}"]
    s.close()


# ------------------------------------------------------------------ replays, rollbacks
def test_replayed_entry_is_found(built: Built) -> None:
    """An entry appended again at the end, re-chained as the file's holder can (the
    chain has no secret): the replay and the row it re-writes are named."""
    s = built.open()
    log = s.audit_log()
    old = next(e for e in log if e.action == "rule_allegations")
    head = log[-1]
    body = {"seq": head.seq + 1, "at": old.at, "actor": old.actor, "action": old.action,
            "subject": old.subject, "details": old.details, "prev_hash": head.hash}
    mark = "%s" if built.pg else "?"  # the DB-API connection's own parameter style
    s.db.execute(f"INSERT INTO audit_log VALUES ({','.join([mark] * 8)})",
                 (*body.values(), entry_hash(body)))
    s.close()
    problems = built.problems()
    assert problems[0].startswith(f"entry {head.seq + 1} (rule_allegations allegations) "
                                  f"repeats entry {old.seq}: a replayed entry")
    assert any(p.startswith(f"entry {head.seq + 1} (rule_allegations allegations) found "
                            "rulings row ") for p in problems)
    # a verbatim copy under the next number breaks the chain
    built.attack("INSERT INTO audit_log SELECT seq + 1, at, actor, action, subject, details, "
                 "prev_hash, hash FROM audit_log WHERE seq = (SELECT max(seq) FROM "
                 "audit_log)")
    assert built.problems()[0].startswith(f"audit chain BROKEN at entry {head.seq + 2}")


def test_rollback_behind_a_checkpoint_fails(built: Built, tmp_path: Path) -> None:
    older = built.open()
    before = older.audit_log()
    older.close()
    registry, _ = cp.trusted_registry(before)
    # the store moves on and a later checkpoint is signed
    s = built.open()
    s.add_token("analyst-late", "analyst")
    s.publish_checkpoint(tmp_path / "later", _day(built.out))
    later = cp.Checkpoint.load(sorted((tmp_path / "later").glob("checkpoint-*"))[-1])
    s.close()
    # the holder restores the older state: every entry after it dropped, with its rows
    built.attack(f"DELETE FROM audit_log WHERE seq > {before[-1].seq}",
                 "DELETE FROM api_tokens WHERE principal_id IN (SELECT id FROM principals "
                 "WHERE name = 'analyst-late')", "DELETE FROM principals WHERE name = "
                 "'analyst-late'")
    s = built.open()
    assert s.verify() == []  # consistent in itself: only the checkpoint shows the rollback
    assert cp.check(later, s.audit_log(), registry) == [
        f"log truncated behind the checkpoint: it signed {later.seq} entries (head "
        f"{later.head[:16]}), the store has {before[-1].seq}"]
    s.close()


def test_rewritten_log_behind_a_checkpoint_fails(built: Built) -> None:
    """An early entry changed and the whole chain recomputed: it verifies in itself,
    the checkpoint does not hold."""
    s = built.open()
    log = s.audit_log()
    s.close()
    target = next(e for e in log if e.action == "decide:verified")
    stmts, prev = [], log[target.seq - 2].hash
    for e in log[target.seq - 1:]:
        body = e.body() | {"prev_hash": prev}
        if e.seq == target.seq:
            body["actor"] = "someone-else"
        prev = entry_hash(body)
        actor = body["actor"].replace("'", "''")
        stmts.append(f"UPDATE audit_log SET actor = '{actor}', prev_hash = "
                     f"'{body['prev_hash']}', hash = '{prev}' WHERE seq = {e.seq}")
    built.attack(*stmts)
    assert built.problems() == []
    if built.pg:
        s = built.open()
        registry, _ = cp.trusted_registry(s.audit_log())
        c = cp.Checkpoint.load(built.checkpoint)
        [line] = cp.check(c, s.audit_log(), registry)
        s.close()
        assert line.startswith(f"log rewritten behind the checkpoint: entry {c.seq} has hash ")
        return
    bad = _cli("--store", built.where, "--checkpoint", str(built.checkpoint))
    assert bad.returncode == 1
    assert bad.stderr.splitlines()[0].startswith(
        f"problem: log rewritten behind checkpoint {built.checkpoint.name}: entry ")


def test_checkpoint_signature_and_key_are_checked(sqlite_built: Path, tmp_path: Path) -> None:
    store = str(sqlite_built / "trucewatch.db")
    shutil.copy(store, tmp_path / "s.db")
    good = sorted(sqlite_built.glob("checkpoint-*.json"))[-1]
    doc = json.loads(good.read_text())
    registry = sqlite_built / cp.REGISTRY_FILE
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "altered": (doc | {"seq": doc["seq"] - 1}, "bad signature by mission/"),
        "swapped key": (doc | {"public_key": json.loads(registry.read_text())["keys"][0]
                               ["public_key"][:-4] + "AAA="}, "carries a public key other"),
    }
    # an attacker's own key and registry beside the checkpoint: the pinned registry fails it
    priv, pub = new_keypair()
    forged = cp.sign(SqliteStore(tmp_path / "s.db").audit_log(), priv)
    cases["forged"] = (forged.to_dict(), "not signed by a mission key in the registry")
    for name, (content, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '-')}.json"
        path.write_text(json.dumps(content))
        r = _cli("--store", str(tmp_path / "s.db"), "--checkpoint", str(path), "--keys",
                 str(registry))
        assert r.returncode == 1, name
        assert message in r.stderr.splitlines()[0], (name, r.stderr)
    # hostile finding: the forger's registry written beside the forged checkpoint (whoever
    # can write the store's folder can) is not trusted: the store's pinned key fails it
    forger = KeyRegistry([KeyRecord(cp.key_id_of(pub), cp.SOURCE, pub,
                                    datetime(2020, 1, 1, tzinfo=UTC))])
    forger.save(tmp_path / cp.REGISTRY_FILE)
    beside = _cli("--store", str(tmp_path / "s.db"), "--checkpoint",
                  str(tmp_path / "forged.json"))
    assert beside.returncode == 1
    assert "not signed by a mission key in the registry" in beside.stderr.splitlines()[0]
    assert "not signed by a mission key" in _cli(
        "--store", str(tmp_path / "s.db"), "--checkpoint", str(tmp_path / "forged.json"),
        "--keys", str(registry)).stderr
    # trusting the forger's key takes saying so, explicitly
    assert _cli("--store", str(tmp_path / "s.db"), "--checkpoint",
                str(tmp_path / "forged.json"), "--keys",
                str(tmp_path / cp.REGISTRY_FILE)).returncode == 0


def test_cli_names_the_first_difference_and_exits_1(sqlite_built: Path,
                                                    tmp_path: Path) -> None:
    b = Built(str(tmp_path / "s.db"), sqlite_built)
    shutil.copy(sqlite_built / "trucewatch.db", b.where)
    aid = _one(b, "SELECT min(allegation_id) FROM rulings")
    b.attack(f"UPDATE rulings SET basis = 'reviewed' WHERE allegation_id = '{aid}'")
    r = _cli("--store", b.where)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.splitlines()[0] == (f"problem: rulings row {aid} differs from the row "
                                        f"logged at entry {_writer(b, 'rulings', aid)}")
    missing = _cli("--store", str(tmp_path / "nowhere.db"))
    assert missing.returncode == 1 and "no store at" in missing.stderr
    assert not (tmp_path / "nowhere.db").exists()


def test_single_changed_byte_in_a_state_row_is_found(sqlite_built: Path,
                                                     tmp_path: Path) -> None:
    """The docs' promise: one byte of the database file, here inside a violation's text."""
    path = tmp_path / "s.db"
    shutil.copy(sqlite_built / "trucewatch.db", path)
    s = SqliteStore(path)
    vid, doc = s.db.execute("SELECT id, doc FROM violations ORDER BY id LIMIT 1").fetchone()
    s.close()
    data = bytearray(path.read_bytes())
    at = data.find(doc.encode())
    assert at > 0
    while at >= 0:  # every copy (a stale one may sit in a free page): the live one too
        k = at + len(doc) // 2
        data[k] = ord("x") if data[k] != ord("x") else ord("y")
        at = data.find(doc.encode(), at + 1)
    path.write_bytes(bytes(data))
    problems = SqliteStore(path).verify()
    assert any(p.startswith(f"violations row {vid} differs") for p in problems)


# ------------------------------------------------------------------ no false alarms
def test_reruns_reviews_tokens_and_an_older_store_verify_clean(
        scenario: ScenarioFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from trucewatch.model.enums import Status
    from trucewatch.storage import sqlite as sq

    # a store written before rows were bound (schema 7, entries without state), upgraded:
    # bound from then on. Written without bindings, then given schema 7's shape and
    # marker (no Alembic yet; not the indexes that 8 and revision 0002 add, nor the
    # columns of 0008).
    monkeypatch.setattr(binding.Pending, "details", lambda self, db: {})
    out = tmp_path / "out"
    _cycle(scenario, out, str(out / "trucewatch.db"))
    monkeypatch.undo()
    db = sqlite3.connect(out / "trucewatch.db")
    for ix in ("observations_batch", "quarantine_batch", "allegations_batch",
               "observations_kind"):
        db.execute(f"DROP INDEX {ix}")
    for col in ("klass", "reliability"):  # revision 0008's columns
        db.execute(f"ALTER TABLE observations DROP COLUMN {col}")
    db.execute("DROP TABLE alembic_version")
    db.execute("PRAGMA user_version = 7")
    db.commit()
    db.close()
    s = SqliteStore(out / "trucewatch.db")
    assert s.schema_version() == sq.SCHEMA_VERSION
    adopted = [e for e in s.audit_log() if e.action == "bind_state"]
    assert len(adopted) == 1 and s.verify() == []
    s.close()
    # a re-run of the cycle (automatic incidents replaced, rulings re-made)
    _cycle_again(scenario, out)
    s = SqliteStore(out / "trucewatch.db")
    assert s.verify() == []
    # review actions, tokens made, reissued, revoked
    inc = next(i for i in s.incidents() if i.status == Status.AUTOMATIC)
    until = datetime.now(UTC) + timedelta(minutes=5)
    assert s.claim(inc.id, "anna", until) is None
    s.set_status(inc.id, Status.INACCURATE, "anna", "smoke from a barbecue")
    s.release(inc.id, "anna")
    s.add_token("late-analyst", "analyst")
    s.add_token("late-analyst", "reviewer", reissue=True)
    s.revoke_token("late-analyst", disable=True)
    assert s.verify() == []
    # after the upgrade, tampering with a row written before it is still found
    s.close()
    b = Built(str(out / "trucewatch.db"), out)
    rid = _one(b, "SELECT min(id) FROM refused")
    b.attack(f"UPDATE refused SET reason = 'fine' WHERE id = {rid}")
    assert b.problems()[0].startswith(f"refused row {rid} differs from the row logged at "
                                      "entry ")


def _cycle_again(scenario: ScenarioFiles, out: Path) -> None:
    from trucewatch.pipeline import FieldInputs, run_cycle

    run_cycle(agreement_path=scenario.agreement,
              firms_files=[*scenario.reference, *scenario.current],
              reference_years=[2023, 2024, 2025], out_dir=out, cloud_path=scenario.coverage,
              pdf=False, field_inputs=FieldInputs(scenario.drones, scenario.allegations,
                                                  scenario.keys),
              store_path=out / "trucewatch.db")


def test_bulk_batches_bound_by_digest_or_by_row(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from trucewatch.ingest.firms import parse_firms

    header = b"latitude,longitude,acq_date,sensor_guess\n"
    lines = [f"48.{k:04d},37.1,2021-07-01,MODIS\n".encode() for k in range(30)]
    monkeypatch.setattr(binding, "LIST_MAX", 10)
    s = SqliteStore(tmp_path / "s.db")
    s.ingest(parse_firms(header + b"".join(lines), "big.csv"))
    s.ingest(parse_firms(header + b"".join(lines[:5]), "small.csv"))  # duplicates only
    s.ingest(parse_firms(header + b"49.5,36.0,2021-07-02,MODIS\n", "one.csv"))
    e = [json.loads(x.details) for x in s.audit_log()]
    assert e[0]["batches"]["observations"] and "state" in e[2]
    assert "observations" in e[2]["state"] and "observations" not in e[1].get("state", {})
    assert s.verify() == []
    s.db.execute("DELETE FROM observations WHERE rowid = (SELECT min(rowid) FROM "
                 "observations)")
    [p, box] = s.verify()
    assert p.startswith("observations of batch ") and "(big.csv) differ from the 30 rows " in p
    assert p.endswith("29 rows found")
    assert box.startswith("spatial index observations_rtree has a box (rid 1) for no ")


# ------------------------------------------------------------------ what the log does not
# bind row by row (hostile finding: verify did not look at these): storage.checks
def test_spatial_index_edits_are_found(sqlite_built: Path, tmp_path: Path) -> None:
    b = Built(str(tmp_path / "s.db"), sqlite_built)
    shutil.copy(sqlite_built / "trucewatch.db", b.where)
    assert b.problems() == []
    moved = _one(b, "SELECT id FROM observations WHERE rowid = (SELECT min(rid) FROM "
                    "observations_rtree)")
    dropped = _one(b, "SELECT id FROM incidents WHERE rowid = (SELECT min(rid) FROM "
                      "incidents_rtree)")
    b.attack("UPDATE observations_rtree SET min_lon = min_lon + 1, max_lon = max_lon + 1 "
             "WHERE rid = (SELECT min(rid) FROM observations_rtree)",
             "DELETE FROM incidents_rtree WHERE rid = (SELECT min(rid) FROM incidents_rtree)",
             "INSERT INTO observations_rtree VALUES (987654321, 30, 30, 45, 45)")
    problems = b.problems()
    assert any(p.startswith(f"spatial index observations_rtree puts observations row "
                            f"{moved} elsewhere than its point") for p in problems), problems
    assert (f"spatial index incidents_rtree has no box for incidents row {dropped}: box "
            "queries miss it") in problems
    assert ("spatial index observations_rtree has a box (rid 987654321) for no "
            "observations row") in problems
    assert len(problems) == 3, problems


def test_forged_review_locks_are_found(sqlite_built: Path, tmp_path: Path) -> None:
    b = Built(str(tmp_path / "s.db"), sqlite_built)
    shutil.copy(sqlite_built / "trucewatch.db", b.where)
    s = b.open()
    claimed = [e for e in s.audit_log() if e.action == "claim"]
    s.close()
    assert claimed, "the scripted review claims incidents"
    last = claimed[-1]
    subjects = ",".join(f"'{e.subject}'" for e in claimed)
    never = _one(b, f"SELECT min(id) FROM incidents WHERE id NOT IN ({subjects})")
    b.attack("DELETE FROM review_locks",
             f"INSERT INTO review_locks VALUES ('{last.subject}', 'intruder', "
             "'2026-05-31T06:00:00Z', '2099-01-01T00:00:00Z')",
             f"INSERT INTO review_locks VALUES ('{never}', 'intruder', "
             "'2026-05-31T06:00:00Z', '2099-01-01T00:00:00Z')")
    problems = b.problems()
    assert any(p.startswith(f"review_locks row {last.subject} (held by intruder until "
                            f"2099-01-01T00:00:00Z) differs from the claim logged at entry "
                            f"{last.seq}") for p in problems), problems
    assert (f"review_locks row {never} (held by intruder) has no claim in the audit log: "
            "a lock written outside the application") in problems
    assert len(problems) == 2, problems


@pytest.mark.parametrize(("attack", "named"), [
    ("PRAGMA user_version = 3", "schema version older releases read is 3, not "),
    ("INSERT INTO alembic_version VALUES ('0001')", "alembic_version was edited"),
    ("DROP TABLE review_locks", "table review_locks is missing from the schema"),
    ("ALTER TABLE products DROP COLUMN path", "table products lacks column(s) path"),
    ("DROP TABLE incidents_rtree", "spatial index incidents_rtree is missing"),
])
def test_schema_edits_are_found(sqlite_built: Path, tmp_path: Path, attack: str,
                                named: str) -> None:
    b = Built(str(tmp_path / "s.db"), sqlite_built)
    shutil.copy(sqlite_built / "trucewatch.db", b.where)
    b.attack(attack)
    problems = b.problems()
    assert any(named in p for p in problems), problems


def test_published_product_files_are_checked(tmp_path: Path) -> None:
    from datetime import date

    from trucewatch.reports.archive import archive_product

    s = SqliteStore(tmp_path / "s.db")
    files = {n: tmp_path / f"bulletin-2026-05-31-{n}.html" for n in ("public", "restricted")}
    for n, f in files.items():
        f.write_text(f"<p>{n}</p>", encoding="utf-8")
        s.publish_product(f, "html", date(2026, 5, 31), n)
    archive_product(s, files["restricted"])
    assert s.verify() == []
    files["public"].write_text("<p>public, edited</p>", encoding="utf-8")
    assert s.verify() == [f"published product {files['public'].name} at {files['public']} "
                          "does not match its published SHA-256: the file was altered "
                          "after publication"]
    files["public"].unlink()
    assert s.verify() == [f"published product {files['public'].name}: the file "
                          f"{files['public']} is gone and the store holds no archived copy "
                          "with its SHA-256"]
    files["restricted"].unlink()  # archived in the store: the file may go
    assert len(s.verify()) == 1
    s.close()


@pytest.mark.parametrize(("attack", "named"), [
    ("DROP TRIGGER audit_log_append_only_d",
     "append-only trigger audit_log_append_only_d on audit_log is gone"),
    ("DROP TRIGGER raw_inputs_evidentiary_u",
     "append-only trigger raw_inputs_evidentiary_u on raw_inputs is gone"),
    # the same name, a body that lets every delete through
    ("DROP TRIGGER raw_inputs_evidentiary_d; CREATE TRIGGER raw_inputs_evidentiary_d "
     "BEFORE DELETE ON raw_inputs WHEN 0 BEGIN SELECT RAISE(ABORT, 'never'); END",
     "append-only trigger raw_inputs_evidentiary_d on raw_inputs was changed"),
])
def test_a_missing_or_changed_append_only_trigger_is_named(tmp_path: Path, attack: str,
                                                          named: str) -> None:
    """verify checks that the evidence stays append-only: a dropped trigger (after which
    audit_log or raw_inputs can be rewritten without an error) is named, and so is one
    replaced under its own name by one that never fires."""
    db = tmp_path / "s.db"
    s = SqliteStore(db)
    s.add_token("anna", "analyst")
    assert s.verify() == []
    s.close()
    with sqlite3.connect(db) as conn:
        conn.executescript(attack)
    s = SqliteStore(db)
    try:
        problems = s.verify()
    finally:
        s.close()
    assert [p for p in problems if p.startswith(named)] and len(problems) == 1, problems


def test_a_disabled_or_dropped_postgres_trigger_is_named(pg_url: str) -> None:
    import psycopg

    s = open_store(pg_url)
    assert s.verify() == []
    s.close()
    dsn = postgres_url(pg_url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute("DROP TRIGGER raw_inputs_evidentiary ON raw_inputs")
    s = open_store(pg_url)
    try:
        problems = s.verify()
    finally:
        s.close()
    assert any(p.startswith("append-only trigger audit_log_append_only on audit_log is "
                            "disabled") for p in problems), problems
    assert any(p.startswith("append-only trigger raw_inputs_evidentiary on raw_inputs is "
                            "gone") for p in problems), problems
