from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trucewatch.errors import BaselineError
from trucewatch.fusion.baseline import Baseline, BaselineParams
from trucewatch.fusion.war_fires import WarFireRules, classify

PARAMS = BaselineParams(min_rows_per_year=10)


def _background(years: list[int], sensor: str = "VIIRS_NOAA20_NRT", seed: int = 1) -> pl.DataFrame:
    """About 1 detection per day spread over a 2 x 2 degree farmland, every year."""
    rng = np.random.default_rng(seed)
    rows = []
    for y in years:
        d = date(y, 1, 1)
        while d.year == y:
            for _ in range(rng.poisson(1.0)):
                rows.append((47.0 + rng.uniform(0, 2), 36.0 + rng.uniform(0, 2), d, sensor))
            d += timedelta(days=1)
    return pl.DataFrame(rows, schema=["latitude", "longitude", "acq_date", "sensor"],
                        orient="row")


def _burst(lat: float, lon: float, day: date, n: int, sensor: str = "VIIRS_NOAA20_NRT"
           ) -> pl.DataFrame:
    return pl.DataFrame({"latitude": [lat + 0.001 * k for k in range(n)],
                         "longitude": [lon] * n, "acq_date": [day] * n, "sensor": [sensor] * n})


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return Baseline.fit(_background([2019, 2020, 2021]), [2019, 2020, 2021], PARAMS)


def test_expected_matches_the_generating_rate(baseline: Baseline) -> None:
    exp = baseline.sensors["VIIRS_NOAA20_NRT"].expected
    # 1 detection/day over 20 x 20 cells = 0.0025 per cell-day, inside the farmland
    inner = exp[baseline.params.margin_cells + 3: -baseline.params.margin_cells - 3,
                baseline.params.margin_cells + 3: -baseline.params.margin_cells - 3]
    assert 0.0015 < float(np.median(inner)) < 0.0040


def test_p_normal_decreases_with_count(baseline: Baseline) -> None:
    m = np.full(5, 0.01)
    p = baseline.p_at_least("VIIRS_NOAA20_NRT", np.array([0, 1, 2, 5, 20]), m)
    assert p[0] == 1.0 and np.all(np.diff(p) < 0) and p[-1] < 1e-6


def test_persistent_excess_is_war_related_isolated_burst_is_not(baseline: Baseline) -> None:
    front = [_burst(47.55, 36.55 + 0.1 * (k % 3), date(2022, 3, 1) + timedelta(days=2 * k), 6)
             for k in range(30)]
    lone = _burst(48.75, 37.75, date(2022, 3, 20), 8)
    data = pl.concat([_background([2022], seed=7), *front, lone])
    out = classify(data, baseline)
    assert out.height == data.height  # one row per input row
    war = out.filter(pl.col("war_related") == 1)
    front_cells = {"475_365", "475_366", "475_367"}
    assert set(war["cell"].unique()) <= front_cells | set(
        out.filter(pl.col("reason").str.starts_with("carry-over"))["cell"])
    # bursts at the ends of the 60-day run have fewer than 20 confirmations in reach
    assert war.filter(pl.col("cell").is_in(list(front_cells))).height >= 100
    lone_rows = out.filter((pl.col("cell") == "487_377")
                           & (pl.col("acq_date") == date(2022, 3, 20)))
    assert lone_rows["war_related"].sum() == 0
    assert lone_rows["reason"][0].startswith("not war-related: excess not confirmed")
    assert war["reason"].str.starts_with("excess: ").any()


def test_carry_over_and_reset(baseline: Baseline) -> None:
    front = [_burst(47.55, 36.55, date(2022, 3, 1) + timedelta(days=2 * k), 6) for k in range(25)]
    after = _burst(47.551, 36.551, date(2022, 3, 1) + timedelta(days=50), 1)
    data = pl.concat([*front, after])
    out = classify(data, baseline, WarFireRules(min_confirmations=5))
    last = out.tail(1)
    assert last["war_related"][0] == 1 and last["reason"][0].startswith("carry-over")
    reset = date(2022, 3, 1) + timedelta(days=49)
    out2 = classify(data, baseline, WarFireRules(min_confirmations=5, reset_at=reset))
    assert out2.tail(1)["war_related"][0] == 0


def test_sensor_fallback_is_said(baseline: Baseline) -> None:
    data = _burst(47.5, 36.5, date(2022, 5, 1), 2, sensor="VIIRS_SNPP_NRT")
    out = classify(data, baseline)
    assert "baseline of VIIRS_NOAA20_NRT used for VIIRS_SNPP_NRT" in out["reason"][0]


def test_baseline_for_another_instrument_refused(baseline: Baseline) -> None:
    with pytest.raises(BaselineError, match="no MODIS sensor"):
        classify(_burst(47.5, 36.5, date(2022, 5, 1), 2, sensor="MODIS"), baseline)


def test_no_reference_years_in_data() -> None:
    with pytest.raises(BaselineError, match="no detections in the reference years") as e:
        Baseline.fit(_background([2019]), [2005], PARAMS)
    assert e.value.fix == "choose years present in the input: [2019]"


def test_save_load_roundtrip(tmp_path: Path, baseline: Baseline) -> None:
    baseline.save(tmp_path / "b.npz")
    back = Baseline.load(tmp_path / "b.npz")
    assert back.shape == baseline.shape and back.params == baseline.params
    for s, sb in baseline.sensors.items():
        assert np.array_equal(back.sensors[s].expected, sb.expected)
        assert back.sensors[s].dispersion == sb.dispersion


def test_not_a_baseline_file(tmp_path: Path) -> None:
    p = tmp_path / "x.npz"
    p.write_bytes(b"hello")
    with pytest.raises(BaselineError, match="not a readable baseline"):
        Baseline.load(p)
