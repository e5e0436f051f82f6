"""kill -9 the server during batch ingest; restart; every acknowledged observation is
there exactly once (issue 5). benchmarks/crash_recovery.py runs 20 trials."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.crash import trial


@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 2, 3])
def test_kill_9_loses_and_duplicates_nothing(tmp_path: Path, n: int) -> None:
    r = trial(tmp_path, n, rows=400)
    assert r.acknowledged > 0, "the client never got an answer before the kill"
    assert r.ok, r.problems
    assert r.rows_found == r.rows_expected and r.duplicates == 0 and r.partial_batches == 0


@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 2])
def test_kill_9_on_postgis_loses_and_duplicates_nothing(tmp_path: Path, n: int,
                                                        pg_url: str) -> None:
    """The same trial with the production store: PostgreSQL + PostGIS (issue 11)."""
    r = trial(tmp_path, n, rows=400, store_url=pg_url)
    assert r.acknowledged > 0, "the client never got an answer before the kill"
    assert r.ok, r.problems
    assert r.rows_found == r.rows_expected and r.duplicates == 0 and r.partial_batches == 0
