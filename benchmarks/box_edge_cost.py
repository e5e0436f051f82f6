"""What the box-edge fix of stop 24 costs: storage_load.py's map query (0.2 degree box,
one day, limit 100) on 100,000 observations, alternating the old ``within_box`` (R*Tree
containment on SQLite, ``ST_Intersects`` on PostGIS) and the new one (the index's
overlap, then the row's lon/lat, edges included), 200 queries each, on both backends.

    PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/box_edge_cost.py
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from storage_load import DAYS, backend_cpu, firms_batch
from trucewatch.storage import dialect, open_store
from trucewatch.storage.repositories import observations as repo
from trucewatch.storage.schema import SRID, rtree

NEW = dialect.within_box


def old(d: str, stmt: Any, table: sa.Table, box: dialect.Box) -> Any:
    """within_box before stop 24 (it missed points on the box's edge)."""
    if d == "postgresql":
        return stmt.where(sa.func.ST_Intersects(table.c.geom,
                                                sa.func.ST_MakeEnvelope(*box, SRID)))
    r = rtree(table.name)
    a, b, c, e = box
    return stmt.join_from(table, r, r.c.rid == sa.literal_column(f"{table.name}.rowid")
                          ).where(r.c.min_lon >= a, r.c.max_lon <= c, r.c.min_lat >= b,
                                  r.c.max_lat <= e)


def run(where: str, queries: int = 200) -> None:
    s = open_store(where)
    s.ingest(firms_batch(0, 100_000))
    if "://" in where:
        s.db.execute("ANALYZE observations")
    wall: dict[str, list[float]] = {"old": [], "new": []}
    cpu = {"old": 0.0, "new": 0.0}
    rng = random.Random(1)
    for i in range(queries):
        la, lo = rng.uniform(46.5, 49.8), rng.uniform(34.0, 39.3)
        day = np.datetime64("2025-06-01") + rng.randrange(DAYS)
        pair = [("old", old), ("new", NEW)]
        for name, f in pair if i % 2 else pair[::-1]:  # alternate which goes first
            repo.within_box = f  # type: ignore[assignment]
            t, c, b = time.perf_counter(), time.process_time(), backend_cpu(s)
            s.observations_in(box=(lo, la, lo + 0.2, la + 0.2), start=f"{day}T00:00:00Z",
                              end=f"{day + 1}T00:00:00Z", limit=100)
            wall[name].append(1000 * (time.perf_counter() - t))
            cpu[name] += 1000 * (time.process_time() - c + backend_cpu(s) - b)
    repo.within_box = NEW  # type: ignore[assignment]
    s.close()
    for k, v in wall.items():
        v.sort()
        print(f"| {'postgis' if '://' in where else 'sqlite'} | {k} | {v[len(v) // 2]:.2f} | "
              f"{v[int(len(v) * 0.99) - 1]:.2f} | {cpu[k] / queries:.2f} |")


def main() -> None:
    print("| backend | within_box | p50 ms | p99 ms | CPU ms per query |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        run(str(Path(tmp) / "b.db"))
        from lab.postgres import TemporaryPostgis, new_database

        with TemporaryPostgis(Path(tmp) / "pg") as server:
            run(new_database(server))


if __name__ == "__main__":
    main()
