"""schemathesis against the service's own OpenAPI document, on loopback, over the built
cycle's store (incidents, rulings, published bulletins, the agreement): zero failures
(issue 5), with positive and negative data (``--mode all``), and no server error
(issue 11). ``positive_data_acceptance`` is left out on purpose: the service refuses
schema-valid requests for reasons no schema can express (a place not in the gazetteer,
an illegal review transition, the two-person rule), and says why in the error. The
larger run is ``benchmarks/hostile_inputs.py``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from lab.server import Server, free_port
from trucewatch.demo import ScenarioFiles
from trucewatch.storage import SqliteStore


def run_schemathesis(url: str, token: str, examples: int, folder: Path,
                     seed: int = 20260420) -> subprocess.CompletedProcess[str]:
    st = Path(sys.executable).with_name("st")
    return subprocess.run(
        [str(st), "run", f"{url}/openapi.json", "-H", f"Authorization: Bearer {token}",
         "--mode", "all", "--max-examples", str(examples), "--workers", "1",
         "--seed", str(seed), "--request-timeout", "60",
         "--exclude-checks", "positive_data_acceptance"],
        capture_output=True, text=True, timeout=1800, cwd=folder)


def tried(stdout: str) -> tuple[int, int]:
    """(test cases generated, those that failed) from schemathesis's summary."""
    m = re.search(r"(\d+) generated, (?:(\d+) found \d+ unique failures?|\d+ passed)", stdout)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else (0, 0)


@pytest.mark.slow
def test_schemathesis_finds_nothing(built_cycle: Path, scenario: ScenarioFiles,
                                    tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    shutil.copy(built_cycle / "trucewatch.db", db)
    store = SqliteStore(db)
    token = store.add_token("st-admin", "admin")
    store.close()
    server = Server(db, free_port(), extra=(
        "--agreement", str(scenario.agreement), "--bulletins", str(built_cycle),
        "--keys", str(scenario.keys))).start()
    try:
        spec = httpx.get(f"{server.url}/openapi.json").json()
        n_ops = sum(len(v) for v in spec["paths"].values())
        proc = run_schemathesis(server.url, token, 15, tmp_path)
    finally:
        server.stop()
    log = server.log.read_text(errors="replace")
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert f"Selected: {n_ops}/{n_ops}" in proc.stdout  # every operation was tested
    assert " passed" in proc.stdout and "failed" not in proc.stdout.split("SUMMARY")[-1]
    assert tried(proc.stdout)[0] > 500
    assert "Traceback" not in log and "unhandled error" not in log, log[-3000:]
