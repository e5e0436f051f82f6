"""A store that cannot be opened for a moment (SQLite's "disk I/O error" or "database is
locked" while other processes write the same WAL store under heavy load: restart trial 16
of stop 24 lost its run to a 500 from it) is opened again after short pauses, and when it
stays busy the service answers 503 with Retry-After, which ``trucewatch replay --retry``
sends again; a lasting fault (a bad path) stays a StorageError."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from trucewatch.api import create_app
from trucewatch.errors import StorageError, StorageUnavailableError
from trucewatch.storage import SqliteStore, database

REAL_CONNECT = sqlite3.connect


def _failing(times: int, message: str) -> tuple[Callable[..., Any], list[int]]:
    calls = [0]

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        calls[0] += 1
        if calls[0] <= times:
            raise sqlite3.OperationalError(message)
        return REAL_CONNECT(*args, **kwargs)
    return connect, calls


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(database, "OPEN_RETRY_S", (0.0, 0.0, 0.0))
    return monkeypatch


@pytest.mark.parametrize("message", ["disk I/O error", "database is locked"])
def test_a_passing_error_on_open_is_retried(tmp_path: Path, quick: pytest.MonkeyPatch,
                                            message: str) -> None:
    SqliteStore(tmp_path / "s.db").close()
    connect, calls = _failing(2, message)
    quick.setattr(database.sqlite3, "connect", connect)
    store = SqliteStore(tmp_path / "s.db")
    try:
        assert store.verify() is not None  # open, and usable
    finally:
        store.close()
    assert calls[0] >= 3  # two failures, then the open that worked


def test_a_store_that_stays_busy_is_a_503(tmp_path: Path, quick: pytest.MonkeyPatch) -> None:
    SqliteStore(tmp_path / "s.db").close()
    connect, calls = _failing(10**6, "disk I/O error")
    quick.setattr(database.sqlite3, "connect", connect)
    with pytest.raises(StorageUnavailableError) as err:
        SqliteStore(tmp_path / "s.db")
    assert err.value.status == 503 and "send the request again" in err.value.fix
    assert calls[0] == 4  # the first try and the three retries


def test_a_lasting_fault_is_not_retried(tmp_path: Path, quick: pytest.MonkeyPatch) -> None:
    connect, calls = _failing(10**6, "unable to open database file")
    quick.setattr(database.sqlite3, "connect", connect)
    with pytest.raises(StorageError) as err:
        SqliteStore(tmp_path / "s.db")
    assert not isinstance(err.value, StorageUnavailableError) and err.value.status == 500
    assert calls[0] == 1


def test_the_service_answers_503_with_retry_after(tmp_path: Path,
                                                  quick: pytest.MonkeyPatch) -> None:
    SqliteStore(tmp_path / "s.db").close()
    client = TestClient(create_app(tmp_path / "s.db"), raise_server_exceptions=False)
    connect, _ = _failing(10**6, "disk I/O error")
    quick.setattr(database.sqlite3, "connect", connect)
    r = client.get("/api/v1/incidents", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 503, r.text
    assert r.headers.get("retry-after") == "1"
    body = r.json()
    assert body["error"] == "storage_unavailable" and body["fix"]
