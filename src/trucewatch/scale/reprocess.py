"""Reprocessing years of FIRMS archive on a Dask cluster, identical to one process.

The classifier (:mod:`trucewatch.satellite.war_fires`) is local in space and time: a
cell-day's class depends only on cell-days within the confirmation and wildfire radii,
over a bounded window before it (history, confirmation, carry-over) and, in the revision
tier, a few days after. So the work splits into **tiles × blocks of days** (a tile is a
square of 0.1° cells; a sector of the front is one or more tiles), each sent with a halo
of the cells and days it can reach, classified on a Dask worker, and trimmed back to its
core. Every row belongs to exactly one core, and each part is given the whole input's
reach latitude, so the result is the single-process result row for row (a test holds
it on the built-in scenario and on a real FIRMS year).

Dask's own scheduler does the work (a ``LocalCluster`` by default, or a real cluster at
``tcp://…``): no home-made engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from trucewatch.errors import ConfigError
from trucewatch.extras import require
from trucewatch.geo.grid import cell_indices
from trucewatch.satellite.baseline import Baseline
from trucewatch.satellite.war_fires import (  # Halo: kept importable from here
    Halo,
    WarFireRules,
    classify,
    reach_latitude,
)

ROW = "_reprocess_row"


@dataclass(frozen=True)
class Partitioning:
    """How the archive splits: ``tile_cells`` × ``tile_cells`` cells of 0.1° per tile and
    ``block_days`` days per block."""

    tile_cells: int = 20
    block_days: int = 366

    def __post_init__(self) -> None:
        if self.tile_cells < 1 or self.block_days < 1:
            raise ConfigError(f"tiles of {self.tile_cells} cells and blocks of "
                              f"{self.block_days} days: both must be at least 1",
                              fix="give --tile-cells and --block-days of 1 or more")


@dataclass(frozen=True)
class Part:
    """One unit of work: the core it answers for and the rows it needs (core + halo)."""

    tile_i: int
    tile_j: int
    block: int
    rows: NDArray[np.int64]  # indices into the input, halo included
    core: NDArray[np.bool_]  # which of ``rows`` it answers for


def plan(records: pl.DataFrame, partitioning: Partitioning, halo: Halo) -> list[Part]:
    """The parts, each with the rows of its core and halo. Rows are grouped by tile
    (with halo) first, then by block within the tile, so each step is a sort and a
    search over one tile's rows, never a pass over every row per part."""
    if records.height == 0:
        return []
    i32, j32 = cell_indices(records["latitude"].to_numpy(), records["longitude"].to_numpy())
    i, j = i32.astype(np.int64), j32.astype(np.int64)
    day = records["acq_date"].cast(pl.Int32).to_numpy().astype(np.int64)
    t, b = partitioning.tile_cells, partitioning.block_days
    ti, tj, tb = i // t, j // t, day // b
    parts: list[Part] = []
    for tile_i in np.unique(ti):
        in_i = np.flatnonzero((i >= tile_i * t - halo.cells_i)
                              & (i < (tile_i + 1) * t + halo.cells_i))
        if in_i.size == 0:
            continue
        for tile_j in np.unique(tj[in_i[ti[in_i] == tile_i]]):
            sel = in_i[(j[in_i] >= tile_j * t - halo.cells_j)
                       & (j[in_i] < (tile_j + 1) * t + halo.cells_j)]
            own_tile = (ti[sel] == tile_i) & (tj[sel] == tile_j)
            if not own_tile.any():
                continue
            order = np.argsort(day[sel], kind="stable")
            sel, own_tile = sel[order], own_tile[order]
            sdays = day[sel]
            for block in np.unique(tb[sel[own_tile]]):
                lo = np.searchsorted(sdays, block * b - halo.days_before, "left")
                hi = np.searchsorted(sdays, (block + 1) * b - 1 + halo.days_after, "right")
                rows = sel[lo:hi]
                core = own_tile[lo:hi] & (tb[rows] == block)
                if core.any():
                    parts.append(Part(int(tile_i), int(tile_j), int(block), rows, core))
    return parts


def classify_part(records: pl.DataFrame, core: NDArray[np.bool_], baseline: Baseline,
                  rules: WarFireRules, reach_lat: float) -> pl.DataFrame:
    """One part on a worker: classify core + halo as the whole would, keep the core."""
    out = classify(records.drop(ROW), baseline, rules, reach_lat=reach_lat)
    return out.with_columns(records[ROW]).filter(pl.Series(core))


@dataclass(frozen=True)
class Reprocessor:
    """The partitioned classifier: one configured object (the rules, the partitioning,
    and where Dask runs: ``scheduler`` ``None`` starts a ``LocalCluster`` of ``workers``
    processes)."""

    rules: WarFireRules = field(default_factory=WarFireRules)
    partitioning: Partitioning = field(default_factory=Partitioning)
    scheduler: str | None = None
    workers: int = 2

    def __post_init__(self) -> None:
        if self.rules.surplus_only:
            raise ConfigError("surplus-only counting uses the median surplus of the whole "
                              "input, which a partitioned run does not see",
                              fix="reprocess without surplus_only, or classify in one "
                                  "process (trucewatch satellite classify)")

    def classify(self, records: pl.DataFrame, baseline: Baseline,
                 progress: Callable[[str, int, int], None] | None = None) -> pl.DataFrame:
        """:func:`~trucewatch.satellite.war_fires.classify` of ``records``, computed part by
        part on the cluster; the same rows, in input order, with the same values."""
        reach_lat = reach_latitude(records, baseline)
        halo = Halo.of(self.rules, reach_lat)
        indexed = records.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))
        parts = plan(records, self.partitioning, halo)
        if not parts:
            return classify(records, baseline, self.rules, reach_lat=reach_lat)
        results: list[pl.DataFrame] = []
        with self._client() as client:
            from dask.distributed import as_completed

            base = client.scatter(baseline, broadcast=True)
            futures = [client.submit(classify_part, indexed[pl.Series(p.rows)], p.core, base,
                                     self.rules, reach_lat, pure=False) for p in parts]
            for k, fut in enumerate(as_completed(futures)):  # type: ignore[no-untyped-call]
                results.append(fut.result())
                if progress:
                    progress("reprocess", k + 1, len(parts))
        out = pl.concat(results).sort(ROW)
        if out.height != records.height or out[ROW].n_unique() != records.height:
            raise AssertionError(f"partitioned run covered {out.height} of {records.height} "
                                 "rows: a bug in the partitioning")
        return out.drop(ROW)

    def _client(self) -> Any:
        distributed = require("dask.distributed", "scale", "reprocessing on Dask")
        if self.scheduler:
            return distributed.Client(self.scheduler)
        return _LocalClient(distributed, self.workers)


class _LocalClient:
    """A ``LocalCluster`` and its client, closed together."""

    def __init__(self, distributed: Any, workers: int) -> None:
        self.cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                                processes=True, dashboard_address=None)
        self.client = distributed.Client(self.cluster)

    def __enter__(self) -> Any:
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.cluster.close()


def parts_summary(parts: list[Part]) -> Iterator[str]:
    """One line per part, for ``--plan``."""
    for p in parts:
        yield (f"tile ({p.tile_i}, {p.tile_j}) block {p.block}: {int(p.core.sum()):,} rows, "
               f"{p.rows.size - int(p.core.sum()):,} halo")
