"""Signed submissions, the key registry, refusals, and the hash-chained log (issue 4)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from trucewatch.errors import SignatureError
from trucewatch.ingest.drones import DroneSource
from trucewatch.intake import receive
from trucewatch.integrity.chain import LogEntry, verify_chain
from trucewatch.integrity.envelope import SourcePolicy, open_envelope, sign_submission
from trucewatch.integrity.keys import KeyRecord, KeyRegistry, new_keypair
from trucewatch.storage import SqliteStore

NOW = datetime(2026, 5, 30, 12, 0, tzinfo=UTC)
MAY = datetime(2026, 5, 1, tzinfo=UTC)


def _doc(n: int = 1) -> bytes:
    return json.dumps({"format": "trucewatch-drone/1", "reports": [
        {"report_id": f"r{k}", "platform_id": "UA-07", "time": "2026-05-30T04:12:00Z",
         "platform": {"lat": 48.0, "lon": 37.5}, "target": {"lat": 48.01, "lon": 37.52},
         "class": "explosion", "confidence": 0.8} for k in range(n)]}).encode()


@pytest.fixture()
def keys() -> tuple[KeyRegistry, dict[str, object]]:
    priv, pub = new_keypair()
    other, other_pub = new_keypair()
    reg = KeyRegistry([KeyRecord("ua07", "drone:UA-07", pub, MAY),
                       KeyRecord("other", "drone:EU-12", other_pub, MAY)])
    return reg, {"ua07": priv, "other": other}


def test_signature_verifies_and_every_alteration_is_caught(keys: tuple) -> None:  # type: ignore[type-arg]
    reg, priv = keys
    env = sign_submission(_doc(), priv["ua07"], "ua07", NOW, "n1")
    assert open_envelope(env).verify(reg, NOW) == "drone:UA-07"
    doc = json.loads(env)

    def variant(**change: str) -> bytes:
        return json.dumps(doc | change).encode()

    import base64
    import hashlib
    altered = _doc(2)
    cases = {
        "payload": (variant(payload=base64.b64encode(altered).decode()),
                    "altered after signing"),
        "payload+hash": (variant(payload=base64.b64encode(altered).decode(),
                                 payload_sha256=hashlib.sha256(altered).hexdigest()),
                         "bad signature"),
        "nonce": (variant(nonce="n2"), "bad signature"),
        "time": (variant(signed_at="2026-05-30T11:00:00Z"), "bad signature"),
        "key swap": (variant(key_id="other"), "bad signature"),
        "unknown key": (variant(key_id="nobody"), "unknown key"),
        "future": (sign_submission(_doc(), priv["ua07"], "ua07", NOW + timedelta(hours=2),
                                   "n3"), "in the future"),
    }
    for raw, message in cases.values():
        with pytest.raises(SignatureError, match=message):
            open_envelope(raw).verify(reg, NOW)
    with pytest.raises(SignatureError, match="malformed signed envelope"):
        open_envelope(b'{"format": "trucewatch-signed/1", "key_id": 3}')


def test_rotation_and_revocation(keys: tuple) -> None:  # type: ignore[type-arg]
    reg, priv = keys
    new_priv, new_pub = new_keypair()
    reg.rotate("ua07", KeyRecord("ua07-b", "drone:UA-07", new_pub,
                                 datetime(2026, 5, 20, tzinfo=UTC)))
    old_before = sign_submission(_doc(), priv["ua07"], "ua07",
                                 datetime(2026, 5, 19, tzinfo=UTC), "a")
    old_after = sign_submission(_doc(), priv["ua07"], "ua07", NOW, "b")
    new_after = sign_submission(_doc(), new_priv, "ua07-b", NOW, "c")
    assert open_envelope(old_before).verify(reg, NOW)
    assert open_envelope(new_after).verify(reg, NOW)
    with pytest.raises(SignatureError, match="rotated out"):
        open_envelope(old_after).verify(reg, NOW)
    with pytest.raises(SignatureError, match="not valid yet"):
        open_envelope(sign_submission(_doc(), new_priv, "ua07-b",
                                      datetime(2026, 5, 10, tzinfo=UTC), "d")).verify(reg, NOW)
    reg.revoke("ua07-b", datetime(2026, 5, 29, tzinfo=UTC), "lost over the line")
    with pytest.raises(SignatureError, match=r"revoked .*lost over the line"):
        open_envelope(new_after).verify(reg, NOW)
    # the registry survives a round trip through its file
    path = Path("/tmp") / f"reg-{id(reg)}.json"
    reg.save(path)
    back = KeyRegistry.load(path)
    assert back.get("ua07-b").revoked_reason == "lost over the line"
    assert back.get("ua07").valid_until == datetime(2026, 5, 20, tzinfo=UTC)


def test_refusals_are_recorded_and_nothing_is_lost(keys: tuple) -> None:  # type: ignore[type-arg]
    reg, priv = keys
    store = SqliteStore()
    src = DroneSource()
    env = sign_submission(_doc(), priv["ua07"], "ua07", NOW, "n1")
    ok = receive(store, env, "good.json", src, registry=reg, now=NOW)
    assert ok.accepted and ok.signed_by == "ua07" and ok.report and ok.report.new == 1
    # the same bytes again: recognised, nothing changes
    again = receive(store, env, "good.json", src, registry=reg, now=NOW)
    assert again.report and again.report.already_ingested
    # re-encoded with the same nonce: a replay
    replay = json.dumps(json.loads(env)).encode()
    r = receive(store, replay, "replay.json", src, registry=reg, now=NOW)
    assert not r.accepted and "replayed submission: nonce n1" in r.refused
    # unsigned where the policy requires a signature; tampered; unreadable
    u = receive(store, _doc(), "unsigned.json", src, registry=reg, now=NOW)
    assert "requires an Ed25519 signature" in u.refused
    bad = json.loads(env)
    bad["signature"] = bad["signature"][:-4] + "AAA="
    t = receive(store, json.dumps(bad).encode(), "tampered.json", src, registry=reg, now=NOW)
    assert "bad signature" in t.refused
    g = receive(store, b"\xff\xfe not json", "garbage.json", src, registry=reg, now=NOW,
                policy=SourcePolicy.OPTIONAL)
    assert "not valid UTF-8 JSON" in g.refused
    refused = {x["name"]: x for x in store.refused()}
    assert set(refused) == {"replay.json", "unsigned.json", "tampered.json", "garbage.json"}
    for name, raw in (("replay.json", replay), ("unsigned.json", _doc()),
                      ("garbage.json", b"\xff\xfe not json")):
        assert store.raw_input(str(refused[name]["raw_sha256"])) == raw
    actions = [e.action for e in store.audit_log()]
    assert actions.count("refuse") == 4 and actions.count("ingest") == 1
    assert store.verify() == []
    # quarantine policy: kept, nothing enters the observations
    q = receive(store, _doc(3), "q.json", src, registry=reg,
                policy=SourcePolicy.QUARANTINE, now=NOW)
    assert q.accepted and q.report and q.report.new == 0 and len(q.quarantined) == 1
    assert "quarantined by the drone source policy" in q.quarantined[0].reason


def _store_with_history(path: Path) -> SqliteStore:
    store = SqliteStore(path)
    for k in range(5):
        store.log("tester", "note", f"subject-{k}", {"k": k, "text": f"marker-{k:03d}"})
    receive(store, _doc(), "plain.json", DroneSource(), policy=SourcePolicy.OPTIONAL,
            now=NOW)
    return store


def test_chain_detects_a_single_changed_byte(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = _store_with_history(path)
    assert store.verify() == []
    store.close()
    # flip one byte of entry 3's details in the database file itself
    data = bytearray(path.read_bytes())
    at = data.find(b"marker-002")
    assert at > 0
    data[at + 7] = ord("9")
    path.write_bytes(bytes(data))
    problems = SqliteStore(path).verify()
    assert problems and problems[0].startswith("audit chain BROKEN at entry 3")
    assert "altered after it was written" in problems[0]


def test_chain_detects_altered_evidence_and_forbids_edits(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = _store_with_history(path)
    for sql in ("UPDATE audit_log SET actor = 'x' WHERE seq = 1", "DELETE FROM audit_log",
                "UPDATE raw_inputs SET name = 'x'", "DELETE FROM raw_inputs"):
        with pytest.raises(sqlite3.IntegrityError, match=r"append-only|evidentiary"):
            store.db.execute(sql)
    store.close()
    # someone with file access drops the trigger and rewrites the evidence
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER raw_inputs_evidentiary_u")
    import zlib
    db.execute("UPDATE raw_inputs SET content = ?", (zlib.compress(_doc(2)),))
    db.commit()
    db.close()
    problems = SqliteStore(path).verify()
    assert any("does not match its SHA-256" in p for p in problems)


def test_verify_chain_names_removed_and_reordered_entries(tmp_path: Path) -> None:
    store = _store_with_history(tmp_path / "s.db")
    log = store.audit_log()
    assert verify_chain(log).ok
    assert verify_chain(log[:2] + log[3:]).first_broken == 4
    swapped = [log[0], log[2], log[1], *log[3:]]
    assert not verify_chain(swapped).ok
    forged = LogEntry(**(log[1].__dict__ | {"actor": "mallory"}))
    r = verify_chain([log[0], forged, *log[2:]])
    assert r.first_broken == 2 and "altered" in r.problem


def test_verify_cli_exit_status(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "s.db"
    _store_with_history(path).close()
    ok = subprocess.run([sys.executable, "-m", "trucewatch", "verify", "--store", str(path)],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "audit chain OK" in ok.stdout
    data = bytearray(path.read_bytes())
    at = data.find(b"marker-004")
    data[at] = ord("M")
    path.write_bytes(bytes(data))
    bad = subprocess.run([sys.executable, "-m", "trucewatch", "verify", "--store", str(path)],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "BROKEN at entry 5" in bad.stderr


def test_a_nonce_is_unique_per_key_not_across_keys(keys: tuple) -> None:  # type: ignore[type-arg]
    """Another key holder spending a victim's guessable nonce first does not make the
    victim's real submission a replay; the same key reusing a nonce still is one."""
    reg, priv = keys
    store = SqliteStore()
    src = DroneSource()
    eu12 = json.dumps({"format": "trucewatch-drone/1", "reports": [
        {"report_id": "e1", "platform_id": "EU-12", "time": "2026-05-30T04:20:00Z",
         "platform": {"lat": 48.1, "lon": 37.6}, "target": {"lat": 48.11, "lon": 37.62},
         "class": "explosion", "confidence": 0.7}]}).encode()
    first = receive(store, sign_submission(eu12, priv["other"], "other", NOW, "0001"),
                    "other.json", src, registry=reg, now=NOW)
    assert first.accepted
    victim = receive(store, sign_submission(_doc(), priv["ua07"], "ua07", NOW, "0001"),
                     "victim.json", src, registry=reg, now=NOW)
    assert victim.accepted and victim.report and victim.report.new == 1, victim.refused
    # the same key, the same nonce, other content: a replay, refused and kept
    again = receive(store, sign_submission(_doc(2), priv["ua07"], "ua07", NOW, "0001"),
                    "again.json", src, registry=reg, now=NOW)
    assert not again.accepted and "replayed submission: nonce 0001 was first" in again.refused
    assert [x["name"] for x in store.refused()] == ["again.json"]
    assert store.verify() == []
    store.close()
