"""How long the API's interchange work takes: describing incident locations ("X km DIR of
PLACE"), rounding them for the public, and writing CSV, KML and GeoPackage exports.

    PYTHONPATH=src:benchmarks python benchmarks/api_exports.py [N]

N synthetic incidents (default 10,000) spread over the built-in scenario's area; times
are the median of 3 runs after a warm-up (the gazetteer's load is timed apart).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _timed(fn: Callable[[], Any], runs: int = 3) -> float:
    fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main(n: int = 10_000) -> None:
    from trucewatch.api import exports
    from trucewatch.api.geo import PUBLIC_PRECISION_KM, gazetteer, located

    t = time.perf_counter()
    gazetteer()
    load_s = time.perf_counter() - t
    rng = np.random.default_rng(7)
    lat, lon = rng.uniform(47.5, 49.0, n), rng.uniform(36.5, 39.0, n)
    raw = [{"id": f"inc-{k:06d}", "category": "explosion", "status": "verified",
            "time_start": "2026-05-31T04:00:00Z", "time_end": "2026-05-31T04:05:00Z",
            "sector_id": "north", "zone_ids": ["buffer:left"], "n_sources": 2,
            "reason": "explosion_in_buffer_zone: ...", "observation_ids": ["o-1", "o-2"],
            "attributes": {"confidence": 0.8},
            "location": {"lat": float(lat[k]), "lon": float(lon[k]), "uncertainty_m": 400.0}}
           for k in range(n)]
    items = [located(i) for i in raw]
    rows = [("gazetteer load (once a process)", load_s),
            ("place + precision, per incident", _timed(lambda: [located(i) for i in raw]) / n),
            ("public rounding + place, per incident",
             _timed(lambda: [located(i, PUBLIC_PRECISION_KM) for i in raw]) / n)]
    sizes = {}
    for kind in ("csv", "kml", "gpkg"):
        sizes[kind] = len(exports.incidents_file(items, kind))
        rows.append((f"incidents.{kind}, {n:,} incidents",
                     _timed(lambda kind=kind: exports.incidents_file(items, kind))))
    print("| step | seconds | file size |\n|---|---:|---:|")
    for name, s in rows:
        kind = name.split(",")[0].split(".")[-1]
        size = f"{sizes[kind] / 2**20:.1f} MiB" if kind in sizes else ""
        print(f"| {name} | {s:.6f} | {size} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
