from __future__ import annotations

from collections.abc import Iterator
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
