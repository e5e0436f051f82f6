from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trucewatch.scenario import ScenarioFiles, generate

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATA = Path(__file__).parent / "data"


def shared(rel: str) -> Path:
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{rel} (real data, not in the repository; "
                    "present in CI)")
    return path


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> ScenarioFiles:
    return generate(tmp_path_factory.mktemp("scenario"))


@pytest.fixture(scope="session")
def built_cycle(scenario: ScenarioFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in cycle with drones, allegations and the scripted review, run once (no
    PDFs): its out folder holds the store and the bulletins."""
    from trucewatch.pipeline import FieldInputs, SensorInputs, run_cycle
    from trucewatch.scenario.multisource import apply_review

    out = tmp_path_factory.mktemp("built-cycle")
    assert scenario.stations and scenario.detections
    run_cycle(agreement_path=scenario.agreement,
              firms_files=[*scenario.reference, *scenario.current],
              reference_years=[2023, 2024, 2025], out_dir=out, cloud_path=scenario.coverage,
              pdf=False, sensors=SensorInputs(scenario.stations, [scenario.detections]),
              field_inputs=FieldInputs(scenario.drones, scenario.allegations, scenario.keys),
              review=apply_review)
    return out


def _pg_binaries() -> Path | None:
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        version = bindir.parent.name
        if (bindir / "initdb").exists() and Path(
                f"/usr/share/postgresql/{version}/extension/postgis.control").exists():
            return bindir
    return None


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway PostgreSQL + PostGIS cluster on 127.0.0.1 (or $TRUCEWATCH_TEST_PG_URL).
    Skips with the reason when neither is available."""
    import os
    import shutil
    import subprocess

    from trucewatch.testing.server import free_port

    if os.environ.get("TRUCEWATCH_TEST_PG_URL"):
        yield os.environ["TRUCEWATCH_TEST_PG_URL"]
        return
    bindir = _pg_binaries()
    if bindir is None:
        pytest.skip("needs PostgreSQL with PostGIS (apt-get install postgresql-15-postgis-3; "
                    ".ci/run installs it) or TRUCEWATCH_TEST_PG_URL")
    root = tmp_path_factory.mktemp("pg")
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: hand the cluster to the postgres user
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser: cannot start PostgreSQL")
        run_as = ["runuser", "-u", "postgres", "--"]
        for p in [root, *root.parents]:
            if str(p) == "/":
                break
            p.chmod(p.stat().st_mode | 0o011)  # let postgres reach its folder
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(root / "data"), "-U", "tw",
                    "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"], check=True,
                   capture_output=True)
    subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(root / "data"), "-l",
                    str(root / "pg.log"), "-o",
                    f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off", "-w",
                    "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://tw@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m",
                        "immediate", "stop"], capture_output=True)


@pytest.fixture()
def pg_url(pg_server: str) -> str:
    """A fresh, empty database on the throwaway cluster."""
    import uuid

    import psycopg

    name = f"tw_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg_server.rsplit("/", 1)[0] + "/" + name
