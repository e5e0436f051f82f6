"""What comparing stored times as instants costs, against comparing their text, on both
backends: the same store methods, run once as they are (``julianday`` on SQLite,
``CAST(... AS timestamptz)`` on PostgreSQL: storage.dialect) and once with the
comparisons and the ordering swapped for the stored text (wrong across precisions and
offsets, which is why the store does not do it, but the fastest the index allows).

    PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/time_order.py \\
        [--rows 200000] [--batch 100000] [--queries 20] [--pg-temp] [--only sqlite]

The store is filled with storage_load.py's synthetic FIRMS year (times to the minute,
stored to the second). The queries, each ``--queries`` times with random bounds:

* ``bbox+day``: a 0.2 degree box and a one-day window, limit 100, by time
  (``observations_in``, the map view; storage_load.py's query);
* ``day``: a one-day window, no box, limit 100, by time (``observations_in``);
* ``page``: ``/observations``' first page of 100 of a kind, by time, with its total
  (``observations_page``: every row of the kind is ordered);
* ``page, read all``: what the route did before (every row of the kind read, ordered,
  then sliced; its "text" figure is the old route's);
* ``page+day``: ``page`` with a one-day window;
* ``count``: the observations since a cutoff (``count_observations``, the as-of block);
* ``span``: the first and last start (``observation_span``, the worker's plan).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from storage_load import DAYS, backend_cpu, firms_batch
from trucewatch.model.enums import SourceKind
from trucewatch.model.times import query_time
from trucewatch.storage import open_store
from trucewatch.storage.repositories import observations as repo

FIRST = datetime(2025, 6, 1, tzinfo=UTC)
FIRE = SourceKind.SATELLITE_FIRE


def _text(t: datetime | str) -> str:
    t = query_time(t)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{t.microsecond // 1000:03d}Z"
                                               if t.microsecond else "Z")


@contextlib.contextmanager
def as_text() -> Iterator[None]:
    """The repository's time comparisons and ordering on the stored text instead."""
    saved = repo.as_time, repo.time_at_or_after, repo.time_before
    repo.as_time = lambda _d, c: c  # type: ignore[assignment]
    repo.time_at_or_after = lambda _d, c, t: c >= _text(t)  # type: ignore[assignment]
    repo.time_before = lambda _d, c, t: c < _text(t)  # type: ignore[assignment]
    try:
        yield
    finally:
        repo.as_time, repo.time_at_or_after, repo.time_before = saved


def _queries(store: Any, rng: random.Random) -> dict[str, Callable[[], object]]:
    la, lo = rng.uniform(46.5, 49.8), rng.uniform(34.0, 39.3)
    day = FIRST + timedelta(days=rng.randrange(DAYS))
    box = (lo, la, lo + 0.2, la + 0.2)
    cut = FIRST + timedelta(days=rng.uniform(0, DAYS))
    return {
        "bbox+day": lambda: store.observations_in(box=box, start=day,
                                                  end=day + timedelta(days=1), limit=100),
        "day": lambda: store.observations_in(start=day, end=day + timedelta(days=1),
                                             limit=100),
        "page": lambda: store.observations_page(FIRE, limit=100),
        # what the route did before stop 24: every row of the kind read, then sliced
        "page, read all": lambda: store.observations(FIRE).slice(0, 100),
        "page+day": lambda: store.observations_page(FIRE, start=day,
                                                    end=day + timedelta(days=1), limit=100),
        "count": lambda: store.count_observations([FIRE], since=cut),
        "span": lambda: store.observation_span([FIRE]),
    }


def run(where: str, rows: int, batch: int, queries: int) -> dict[str, dict[str, float]]:
    store = open_store(where)
    done, k = 0, 0
    while done < rows:
        done += store.ingest(firms_batch(k, min(batch, rows - done))).new
        k += 1
    if "://" in where:
        store.db.execute("ANALYZE observations")  # what autovacuum does in service
    ms: dict[str, dict[str, list[float]]] = {}
    cpu: dict[str, dict[str, float]] = {}
    for mode in ("instant", "text", "instant "):  # instant twice: warm, then compare
        rng = random.Random(7)
        for _ in range(queries):
            for name, q in _queries(store, rng).items():
                with as_text() if mode == "text" else contextlib.nullcontext():
                    t, c, b = time.perf_counter(), time.process_time(), backend_cpu(store)
                    q()
                    ms.setdefault(name, {}).setdefault(mode.strip(), []).append(
                        1000 * (time.perf_counter() - t))
                    # CPU of this process and of its PostgreSQL backend (clock ticks:
                    # summed over the queries, then divided): what a query costs on a
                    # shared machine, not how long it waited for a core
                    by = cpu.setdefault(name, {})
                    by[mode] = by.get(mode, 0.0) + 1000 * (
                        time.process_time() - c + backend_cpu(store) - b)
    store.close()
    out: dict[str, dict[str, float]] = {}
    for name, got in ms.items():
        inst = sorted(got["instant"][-queries:])  # the second, warm pass
        text = sorted(got["text"])
        p99 = max(0, int(queries * 0.99) - 1)
        out[name] = {"instant_p50": statistics.median(inst), "instant_p99": inst[p99],
                     "text_p50": statistics.median(text), "text_p99": text[p99],
                     "instant_cpu": cpu[name]["instant "] / queries,
                     "text_cpu": cpu[name]["text"] / queries}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--pg-temp", action="store_true", help="also PostGIS, a throwaway cluster")
    ap.add_argument("--only", choices=["sqlite", "postgis"], default=None)
    args = ap.parse_args()
    results: list[tuple[str, dict[str, dict[str, float]]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "postgis":
            results.append(("sqlite", run(str(Path(tmp) / "t.db"), args.rows, args.batch,
                                          args.queries)))
        if args.only != "sqlite" and args.pg_temp:
            from lab.postgres import TemporaryPostgis, new_database

            with TemporaryPostgis(Path(tmp) / "pg") as server:
                results.append(("postgis", run(new_database(server), args.rows, args.batch,
                                               args.queries)))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}; {args.rows:,} observations, "
          f"{args.queries} queries each")
    print("| backend | query | instant p50 ms | instant p99 ms | text p50 ms | text p99 ms "
          "| instant CPU ms | text CPU ms | CPU instant/text |")
    print("|---|---|---|---|---|---|---|---|---|")
    for b, by in results:
        for name, r in by.items():
            print(f"| {b} | {name} | {r['instant_p50']:.2f} | {r['instant_p99']:.2f} | "
                  f"{r['text_p50']:.2f} | {r['text_p99']:.2f} | {r['instant_cpu']:.2f} | "
                  f"{r['text_cpu']:.2f} | "
                  f"{r['instant_cpu'] / max(r['text_cpu'], 1e-9):.2f} |")


if __name__ == "__main__":
    main()
