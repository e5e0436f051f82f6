"""Hostile finding: the mission's private key lay beside the store, and ``verify``
trusted a ``mission-keys.json`` lying beside the checkpoint, so whoever could write the
store's folder could re-sign. The key now lives where the operator says (default
outside the store's folder), the store pins its public half in the log, and verify
trusts only ``--keys`` or that pin."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from trucewatch.errors import ConfigError
from trucewatch.integrity import checkpoint as cp
from trucewatch.integrity.keys import KeyRegistry, new_keypair
from trucewatch.storage import SqliteStore

DAY = date(2026, 5, 31)


def _store(path: Path) -> SqliteStore:
    s = SqliteStore(path)
    s.log("test", "note", "one", {"n": 1})
    return s


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trucewatch", "verify", *args],
                          capture_output=True, text=True)


def test_default_key_is_outside_the_store_folder(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cp.KEY_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    s = _store(tmp_path / "store" / "s.db")
    c = s.publish_checkpoint(tmp_path / "store" / "out", DAY)
    key = tmp_path / "config" / "trucewatch" / cp.KEY_FILE
    assert key.is_file() and key.stat().st_mode & 0o777 == 0o600
    assert not list((tmp_path / "store").rglob("*.pem")), "no private key beside the store"
    # the public half is published beside the checkpoint, and pinned in the log
    log = s.audit_log()
    s.close()
    [pin] = [e for e in log if e.action == cp.PIN_ACTION]
    signed = cp.Checkpoint.load(c)
    assert pin.subject == signed.key_id and pin.seq == signed.seq
    registry, where = cp.trusted_registry(log)
    assert where == f"the key pinned at log entry {pin.seq}"
    assert cp.check(signed, log, registry) == []
    ok = _verify("--store", str(tmp_path / "store" / "s.db"), "--checkpoint", str(c))
    assert ok.returncode == 0, ok.stderr


def test_explicit_key_is_used_and_a_second_key_refused(tmp_path: Path) -> None:
    s = _store(tmp_path / "s.db")
    given = tmp_path / "hsm" / "mission.pem"
    c = cp.Checkpoint.load(s.publish_checkpoint(tmp_path / "out", DAY, given))
    assert given.is_file()
    assert c.key_id == KeyRegistry.load(tmp_path / "hsm" / "mission.pub.json").records()[0].key_id
    # another key (a forger's, or a mistake) cannot sign for a store that pinned one
    with pytest.raises(ConfigError, match="this store pinned mission key") as e:
        s.publish_checkpoint(tmp_path / "out", DAY, tmp_path / "other.pem")
    assert e.value.fix and "--mission-key" in e.value.fix
    s.close()


@pytest.mark.parametrize("where", ["store", "out"])
def test_key_at_the_old_place_is_refused_with_the_move(tmp_path: Path, where: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cp.KEY_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    s = _store(tmp_path / "s.db")
    old = (tmp_path if where == "store" else tmp_path / "out") / cp.KEY_FILE
    cp.mission_key(old)  # as the old code made it
    with pytest.raises(ConfigError, match="the mission key lies beside the store") as e:
        s.publish_checkpoint(tmp_path / "out", DAY)
    assert f"mv {old}" in (e.value.fix or "")
    assert not [x for x in s.audit_log() if x.action == cp.PIN_ACTION], "nothing signed"
    s.close()


def test_unpinned_store_needs_an_explicit_registry(tmp_path: Path) -> None:
    """A store whose log pins no key (written before pinning): verify refuses, in one
    line with its reason, rather than trust the registry lying beside the checkpoint."""
    s = _store(tmp_path / "s.db")
    priv, pub = new_keypair()
    signed = cp.sign(s.audit_log(), priv)
    s.close()
    (tmp_path / "out").mkdir()
    path = tmp_path / "out" / "checkpoint-2026-05-31.json"
    path.write_text(json.dumps(signed.to_dict()))
    from datetime import UTC, datetime

    from trucewatch.integrity.keys import KeyRecord

    beside = KeyRegistry([KeyRecord(cp.key_id_of(pub), cp.SOURCE, pub,
                                    datetime(2020, 1, 1, tzinfo=UTC))])
    beside.save(tmp_path / "out" / cp.REGISTRY_FILE)
    r = _verify("--store", str(tmp_path / "s.db"), "--checkpoint", str(path))
    assert r.returncode == 1
    [line] = r.stderr.splitlines()
    assert "no trusted mission key" in line and "pins none" in line and "--keys" in line
    held = tmp_path / "held-apart.json"
    beside.save(held)
    ok = _verify("--store", str(tmp_path / "s.db"), "--checkpoint", str(path), "--keys",
                 str(held))
    assert ok.returncode == 0, ok.stderr


def test_forged_pin_is_named(tmp_path: Path) -> None:
    s = _store(tmp_path / "s.db")
    s.log("mission", cp.PIN_ACTION, "mission/0000000000000000",
          {"key_id": "mission/0000000000000000", "public_key": "AAAA", "valid_from": "x"})
    with pytest.raises(ConfigError, match="pinned at log entry 2"):
        cp.trusted_registry(s.audit_log())
    s.close()
