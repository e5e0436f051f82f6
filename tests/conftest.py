from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from trucewatch.demo import ScenarioFiles, generate

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATA = Path(__file__).parent / "data"


def shared(rel: str) -> Path:
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{rel} (real data, not in the repository; "
                    "present in CI)")
    return path


@pytest.fixture(scope="session", autouse=True)
def mission_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tests' mission key, where an operator would say (never the user's
    ~/.config/trucewatch): $TRUCEWATCH_MISSION_KEY, inherited by the commands tests run."""
    import os

    key = tmp_path_factory.mktemp("mission-key") / "mission-key.pem"
    before = os.environ.get("TRUCEWATCH_MISSION_KEY")
    os.environ["TRUCEWATCH_MISSION_KEY"] = str(key)
    yield key
    if before is None:
        os.environ.pop("TRUCEWATCH_MISSION_KEY", None)
    else:
        os.environ["TRUCEWATCH_MISSION_KEY"] = before


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> ScenarioFiles:
    return generate(tmp_path_factory.mktemp("scenario"))


@pytest.fixture(scope="session")
def built_cycle(scenario: ScenarioFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in cycle with drones, allegations and the scripted review, run once (no
    PDFs): its out folder holds the store and the bulletins."""
    from lab.cycle import builtin_cycle

    out = tmp_path_factory.mktemp("built-cycle")
    builtin_cycle(scenario, out)
    return out


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A throwaway PostgreSQL + PostGIS cluster on 127.0.0.1 (or $TRUCEWATCH_TEST_PG_URL).
    Skips with the reason when neither is available."""
    import os
    import shutil
    import tempfile

    from lab.postgres import TemporaryPostgis, unavailable

    if os.environ.get("TRUCEWATCH_TEST_PG_URL"):
        yield os.environ["TRUCEWATCH_TEST_PG_URL"]
        return
    why = unavailable()
    if why:
        pytest.skip(why)
    # not under pytest's basetemp: another pytest run starting on this machine resets
    # /tmp/pytest-of-USER to 0700, and the cluster's owner (postgres, when run as root)
    # then loses its data folder mid-run (seen: "PANIC: could not open pg_control")
    folder = Path(tempfile.mkdtemp(prefix="trucewatch-pg-"))
    try:
        with TemporaryPostgis(folder) as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture()
def pg_url(pg_server: str) -> str:
    """A fresh, empty database on the throwaway cluster."""
    from lab.postgres import new_database

    return new_database(pg_server)


@pytest.fixture(scope="session")
def built_cycle_pg(pg_server: str, scenario: ScenarioFiles,
                   tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The same built-in cycle as ``built_cycle``, run once into a PostGIS database: the
    database's name (a template that each test clones) and the cycle's out folder."""
    import uuid

    import psycopg

    from lab.cycle import builtin_cycle

    name = f"tw_cycle_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    out = tmp_path_factory.mktemp("built-cycle-pg")
    url = pg_server.rsplit("/", 1)[0] + "/" + name
    builtin_cycle(scenario, out, url)
    return name, out


@dataclass(frozen=True)
class BuiltStore:
    """One test's own copy of the built cycle's store: ``where`` is a SQLite file or a
    PostgreSQL URL (a database cloned from the cycle's), ``out`` the cycle's out folder
    (its bulletins), ``backend`` "sqlite" or "postgis"."""

    where: str
    out: Path
    backend: str

    def open(self) -> object:
        from trucewatch.storage import open_store

        return open_store(self.where)


def clone_database(server: str, template: str) -> str:
    """A new database on ``server`` copied from ``template``; its URL."""
    import uuid

    import psycopg

    name = f"tw_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    return server.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgis"])
def built_store(request: pytest.FixtureRequest, tmp_path: Path) -> BuiltStore:
    """The built cycle's store on each backend (PostGIS skips, with the reason, only
    where a cluster cannot be started)."""
    import shutil

    if request.param == "sqlite":
        src: Path = request.getfixturevalue("built_cycle")
        db = tmp_path / "s.db"
        shutil.copy(src / "trucewatch.db", db)
        return BuiltStore(str(db), src, "sqlite")
    template, out = request.getfixturevalue("built_cycle_pg")
    return BuiltStore(clone_database(request.getfixturevalue("pg_server"), template), out,
                      "postgis")
