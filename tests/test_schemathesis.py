"""schemathesis against the service's own OpenAPI document, on loopback: zero failures
(issue 5). ``positive_data_acceptance`` is left out on purpose: the service refuses
schema-valid requests for reasons no schema can express (a place not in the gazetteer,
an illegal review transition, the two-person rule), and says why in the error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from trucewatch.storage import SqliteStore
from trucewatch.testing.server import Server, free_port


@pytest.mark.slow
def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    token = store.add_token("admin", "admin")
    store.close()
    server = Server(db, free_port()).start()
    try:
        spec = httpx.get(f"{server.url}/openapi.json").json()
        n_ops = sum(len(v) for v in spec["paths"].values())
        st = Path(sys.executable).with_name("st")
        proc = subprocess.run(
            [str(st), "run", f"{server.url}/openapi.json", "-H",
             f"Authorization: Bearer {token}", "--max-examples", "15", "--workers", "1",
             "--seed", "20260420", "--exclude-checks", "positive_data_acceptance"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert f"{n_ops} selected / {n_ops} total" in proc.stdout  # every operation was tested
    assert " passed" in proc.stdout and "failed" not in proc.stdout.split("SUMMARY")[-1]
