from __future__ import annotations

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
