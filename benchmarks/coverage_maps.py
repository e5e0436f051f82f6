"""Time of the coverage maps (adjudication/coverage_maps.py) on the built-in scenario's
agreement and station inventory: the sensor network reporting 04:00-10:00 on 30 May,
one station in five going silent at 06:00, maps for the report day (31 May) alone and
for the seven days up to it.

    PYTHONPATH=src:benchmarks python benchmarks/coverage_maps.py [SCENARIO_DIR]
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path


def main(scenario: Path | None = None) -> None:
    from trucewatch.adjudication.allegations import Coverage
    from trucewatch.adjudication.coverage_maps import CoverageMaps
    from trucewatch.agreement.loader import load_agreement
    from trucewatch.demo import generate
    from trucewatch.ingest.sensors import read_stations

    root = scenario or generate(Path(tempfile.mkdtemp(prefix="tw-cov-"))).root
    ag = load_agreement(root / "agreement.yaml")
    st = read_stations(root / "sensors" / "stations.csv")
    cov = Coverage(stations=list(zip(st["latitude"], st["longitude"], strict=True)),
                   station_ids=list(st["id"]),
                   sensor_periods=[(datetime(2026, 5, 30, 4, tzinfo=UTC),
                                    datetime(2026, 5, 30, 10, tzinfo=UTC))])
    cov.outages = [(k, datetime(2026, 5, 30, 6, tzinfo=UTC), None)
                   for k in range(0, len(st), 5)]
    for days in (1, 7):
        t = time.perf_counter()
        doc = CoverageMaps(days=days).build(cov, ag, date(2026, 5, 31))
        print(f"days={days} stations={len(st)} grid_km={doc['grid_km']} "
              f"features={len(doc['features'])} seconds={time.perf_counter() - t:.2f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
