"""Reprocessing on Dask equals the single-process classifier, row for row (issue 13 item 7)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conftest import shared
from trucewatch.demo import ScenarioFiles
from trucewatch.errors import ConfigError
from trucewatch.ingest.firms import read_firms
from trucewatch.satellite.baseline import Baseline, fit_baseline
from trucewatch.satellite.war_fires import WarFireRules, classify, reach_latitude
from trucewatch.scale.reprocess import Halo, Partitioning, Reprocessor, plan

distributed = pytest.importorskip("dask.distributed", reason="needs the [scale] extra (Dask)")


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One LocalCluster for the module (starting one costs seconds); its address."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as lc:
        yield lc.scheduler_address


@pytest.fixture(scope="module")
def scenario_fires(scenario: ScenarioFiles) -> tuple[pl.DataFrame, Baseline]:
    recs = pl.concat([read_firms(f, keep_raw=False).records
                      for f in scenario.reference + scenario.current])
    years = sorted(set(recs["acq_date"].dt.year().to_list()))
    base, _ = fit_baseline(recs, years[:-1], None, None)
    return recs.filter(pl.col("acq_date").dt.year() == years[-1]), base


def test_every_row_is_in_exactly_one_core(scenario_fires: tuple[pl.DataFrame, Baseline]
                                          ) -> None:
    current, base = scenario_fires
    halo = Halo.of(WarFireRules(), reach_latitude(current, base))
    parts = plan(current, Partitioning(tile_cells=3, block_days=7), halo)
    assert len(parts) > 10
    cores = np.concatenate([p.rows[p.core] for p in parts])
    assert np.array_equal(np.sort(cores), np.arange(current.height))
    assert any((~p.core).any() for p in parts), "no part carries a halo"


@pytest.mark.parametrize("rules", [WarFireRules(), WarFireRules(lookahead_days=5),
                                   WarFireRules(carry_days=30, confirm_radius_km=25.0)])
def test_dask_equals_one_process_on_the_builtin_scenario(
        scenario_fires: tuple[pl.DataFrame, Baseline], cluster: str,
        rules: WarFireRules) -> None:
    current, base = scenario_fires
    one = classify(current, base, rules)
    many = Reprocessor(rules, Partitioning(tile_cells=4, block_days=10),
                       scheduler=cluster).classify(current, base)
    assert int(one["war_related"].sum()) > 0
    assert many.equals(one)


def test_small_tiles_without_the_halo_would_differ(
        scenario_fires: tuple[pl.DataFrame, Baseline]) -> None:
    """The halo is needed: cut at the tiles' edges, the classes change (so the equality
    above is not an accident of a local-only classifier)."""
    current, base = scenario_fires
    lat = reach_latitude(current, base)
    parts = plan(current, Partitioning(tile_cells=2, block_days=5), Halo(0, 0, 0, 0))
    pieces = [classify(current[pl.Series(p.rows)], base, reach_lat=lat)
              .with_columns(pl.Series("_r", p.rows)) for p in parts]
    cut = pl.concat(pieces).sort("_r").drop("_r")
    assert not cut.equals(classify(current, base))


def test_surplus_only_is_refused() -> None:
    with pytest.raises(ConfigError, match="median surplus"):
        Reprocessor(WarFireRules(surplus_only=True))


@pytest.mark.shared_data
@pytest.mark.slow
def test_dask_equals_one_process_on_real_firms_years(cluster: str) -> None:
    """Two real years of the Donbas (VIIRS S-NPP), classified against 2016-2019."""
    path = shared("firms-ukraine-2000-2022/firms_ukraine_2000_2022.csv.gz")
    recs = read_firms(path, keep_raw=False).records.filter(
        pl.col("latitude").is_between(47.0, 49.5) & pl.col("longitude").is_between(36.5, 40.0)
        & pl.col("acq_date").dt.year().is_between(2016, 2021)
        & (pl.col("sensor") == "VIIRS_SNPP_SP"))
    assert recs.height > 10_000
    base, _ = fit_baseline(recs, [2016, 2017, 2018, 2019], None, None)
    current = recs.filter(pl.col("acq_date").dt.year() >= 2020)
    one = classify(current, base)
    many = Reprocessor(partitioning=Partitioning(tile_cells=10, block_days=120),
                       scheduler=cluster).classify(current, base)
    assert many.equals(one)


def test_the_cli_reprocess_equals_satellite_classify(scenario: ScenarioFiles, cluster: str,
                                                     tmp_path: Path) -> None:
    files = [str(f) for f in scenario.reference + scenario.current]
    cli = [sys.executable, "-m", "trucewatch"]
    fit = subprocess.run([*cli, "satellite", "fit-baseline", *files, "--years",
                          "2023,2024,2025", "--no-covariates", "--out", str(tmp_path / "b.npz")],
                         capture_output=True, text=True, timeout=300)
    assert fit.returncode == 0, fit.stderr
    one = subprocess.run([*cli, "satellite", "classify", *files, "--baseline",
                          str(tmp_path / "b.npz"), "--out", str(tmp_path / "one.csv")],
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    many = subprocess.run([*cli, "reprocess", *files, "--baseline", str(tmp_path / "b.npz"),
                           "--classify-years", "2023,2024,2025,2026", "--scheduler", cluster,
                           "--tile-cells", "5", "--block-days", "30",
                           "--out", str(tmp_path / "many.csv")],
                          capture_output=True, text=True, timeout=300)
    assert many.returncode == 0, many.stderr
    assert "classified on Dask" in many.stdout
    assert (tmp_path / "many.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
