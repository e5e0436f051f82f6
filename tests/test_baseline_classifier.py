from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trucewatch.errors import BaselineError, InputFileError
from trucewatch.satellite.baseline import Baseline, BaselineParams
from trucewatch.satellite.covariates import LAND_CLASSES, CellCovariates, load_covariates
from trucewatch.satellite.war_fires import WarFireRules, classify

PARAMS = BaselineParams(min_rows_per_year=10, learner_iterations=30)
SENSOR = "VIIRS_NOAA20_NRT"
# the synthetic farmland: 47-49 N, 36-38 E; its western half (lon < 37) is cropland
HARVEST = (date(2000, 7, 15).timetuple().tm_yday, date(2000, 8, 20).timetuple().tm_yday)


def _background(years: list[int], sensor: str = SENSOR, seed: int = 1,
                harvest: bool = True) -> pl.DataFrame:
    """About 1 detection per day over a 2 x 2 degree area, every year, and in the harvest
    weeks 3 more a day on the cropland half."""
    rng = np.random.default_rng(seed)
    rows = []
    for y in years:
        d = date(y, 1, 1)
        while d.year == y:
            for _ in range(rng.poisson(1.0)):
                rows.append((47.0 + rng.uniform(0, 2), 36.0 + rng.uniform(0, 2), d, sensor))
            if harvest and HARVEST[0] <= d.timetuple().tm_yday <= HARVEST[1]:
                for _ in range(rng.poisson(3.0)):
                    rows.append((47.0 + rng.uniform(0, 2), 36.0 + rng.uniform(0, 1), d,
                                 sensor))
            d += timedelta(days=1)
    return pl.DataFrame(rows, schema=["latitude", "longitude", "acq_date", "sensor"],
                        orient="row")


def _burst(lat: float, lon: float, day: date, n: int, sensor: str = SENSOR,
           spread: float = 0.001) -> pl.DataFrame:
    return pl.DataFrame({"latitude": [lat + spread * (k % 10) for k in range(n)],
                         "longitude": [lon + spread * (k // 10) for k in range(n)],
                         "acq_date": [day] * n, "sensor": [sensor] * n})


def _covariates(base_i0: int, base_j0: int, shape: tuple[int, int]) -> CellCovariates:
    """Cropland west of 37 E, open land (trees) east of it."""
    fr = np.zeros((len(LAND_CLASSES), *shape), np.float32)
    lon = (np.arange(shape[1]) + base_j0) / 10
    crops = (lon < 37.0)[None, :].repeat(shape[0], axis=0)
    fr[LAND_CLASSES.index("crops")] = crops
    fr[LAND_CLASSES.index("trees")] = ~crops
    return CellCovariates(fr, np.full(shape, 20.0, np.float32), "synthetic")


@pytest.fixture(scope="module")
def reference() -> pl.DataFrame:
    return _background([2019, 2020, 2021])


@pytest.fixture(scope="module")
def baseline(reference: pl.DataFrame) -> Baseline:
    plain = Baseline.fit(reference, [2019, 2020, 2021], PARAMS)
    cov = _covariates(plain.i0, plain.j0, plain.shape)
    return Baseline.fit(reference, [2019, 2020, 2021], PARAMS, covariates=cov)


def _front(start: date, days: int, lat: float = 47.55, lon: float = 37.55) -> list[pl.DataFrame]:
    """A front: bursts of 6 every other day in three neighbouring cells."""
    return [_burst(lat, lon + 0.1 * (k % 3), start + timedelta(days=2 * k), 6)
            for k in range(days // 2)]


def test_expected_matches_the_generating_rate(baseline: Baseline) -> None:
    exp = baseline.sensors[SENSOR].expected
    m = baseline.params.margin_cells + 3
    inner = exp[m:-m, m:-m, 30:150]  # outside the harvest weeks
    # 1 detection/day over 20 x 20 cells = 0.0025 per cell-day
    assert 0.0015 < float(np.median(inner)) < 0.0045


def test_crop_season_is_learned_from_the_data(baseline: Baseline) -> None:
    ls = baseline.landscape
    assert ls is not None and ls.crops_from == "land use (synthetic)"
    season = np.flatnonzero(ls.crop_season)
    assert season.size > 0
    assert HARVEST[0] - 10 <= season.min() and season.max() <= HARVEST[1] + 10
    assert not ls.crop_season[:150].any()


def test_p_normal_decreases_with_count(baseline: Baseline) -> None:
    m = np.full(5, 0.01)
    p = baseline.p_at_least(SENSOR, np.array([0, 1, 2, 5, 20]), m)
    assert p[0] == 1.0 and np.all(np.diff(p) < 0) and p[-1] < 1e-6


def test_persistent_excess_is_war_related_isolated_burst_is_not(baseline: Baseline) -> None:
    front = _front(date(2022, 3, 1), 60)
    lone = _burst(48.75, 37.75, date(2022, 3, 20), 8)
    data = pl.concat([_background([2022], seed=7, harvest=False), *front, lone])
    out = classify(data, baseline)
    assert out.height == data.height  # one row per input row
    war = out.filter(pl.col("war_related") == 1)
    front_cells = {"475_375", "475_376", "475_377"}
    assert set(war["cell"].unique()) <= front_cells
    assert war.height >= 60
    assert set(war["fire_class"].unique()) == {"war_related"}
    lone_rows = out.filter((pl.col("cell") == "487_377")
                           & (pl.col("acq_date") == date(2022, 3, 20)))
    assert lone_rows["war_related"].sum() == 0
    assert lone_rows["reason"][0].startswith("normal: excess not confirmed")
    excess = war.filter(~pl.col("reason").str.contains("carry-over"))
    assert excess.height > 0
    assert excess["reason"].str.contains("not agricultural because").all()


def test_classification_is_causal(baseline: Baseline) -> None:
    """A detection's class never depends on what is seen after its day."""
    data = pl.concat([_background([2022], seed=3), *_front(date(2022, 3, 1), 80)])
    cut = date(2022, 4, 10)
    full = classify(data, baseline)
    early = classify(data.filter(pl.col("acq_date") <= cut), baseline)
    mask = (data["acq_date"] <= cut).to_numpy()
    a = full.filter(pl.Series(mask)).select("cell", "war_related", "fire_class", "reason")
    assert a.equals(early.select("cell", "war_related", "fire_class", "reason"))
    # and the front's start is not war-related yet on its first day (nothing before it)
    first = full.filter((pl.col("acq_date") == date(2022, 3, 1))
                        & pl.col("cell").is_in(["475_375"]))
    assert first["war_related"].sum() == 0


def test_revision_tier_looks_ahead(baseline: Baseline) -> None:
    """The look-ahead tier confirms the first days of a front by what followed; the
    default (causal) cannot, and says why."""
    data = pl.concat([_background([2022], seed=3), *_front(date(2022, 3, 1), 80)])
    first = (pl.col("acq_date") == date(2022, 3, 1)) & (pl.col("cell") == "475_375")
    causal = classify(data, baseline).filter(first)
    ahead = classify(data, baseline, WarFireRules(lookahead_days=30)).filter(first)
    assert causal["war_related"].sum() == 0
    assert causal["reason"][0].startswith("normal: excess not confirmed")
    assert (ahead["war_related"] == 1).all()


def test_harvest_burst_is_agricultural_wildfire_burst_is_wildfire(baseline: Baseline) -> None:
    day = date(2022, 8, 1)  # in the learned crop-fire season
    crop = [_burst(47.45, 36.45 + 0.1 * k, day + timedelta(days=k), 12) for k in range(12)]
    april = date(2022, 4, 20)  # outside it, on the wooded half
    wild = [_burst(48.35 + 0.02 * k, 37.65, april + timedelta(days=k // 3), 30, spread=0.003)
            for k in range(9)]
    data = pl.concat([_background([2022], seed=5, harvest=False), *crop, *wild])
    out = classify(data, baseline)
    c = out.filter(pl.col("cell").str.starts_with("474_36")
                   & (pl.col("acq_date") >= day) & pl.col("excess"))
    assert c.height > 0
    assert (c["fire_class"] == "agricultural").all() and c["war_related"].sum() == 0
    assert c["reason"][0].startswith("agricultural: farmland share 1.0 (from land use (synthetic))")
    w = out.filter(pl.col("cell").str.starts_with("48") & (pl.col("acq_date") >= april)
                   & (pl.col("acq_date") <= april + timedelta(days=3)) & pl.col("excess"))
    assert w.height > 0
    assert (w["fire_class"] == "wildfire").mean() > 0.5 and w["war_related"].sum() == 0


def test_fighting_before_the_season_is_not_farming(baseline: Baseline) -> None:
    """The same harvest-time burst on cropland that burned for months before is war."""
    front = _front(date(2022, 4, 1), 130, lat=47.45, lon=36.45)
    data = pl.concat([_background([2022], seed=9, harvest=False), *front])
    out = classify(data, baseline)
    summer = out.filter((pl.col("acq_date") >= date(2022, 7, 20)) & pl.col("excess"))
    assert summer.height > 0
    assert (summer["fire_class"] == "war_related").all()
    assert summer["reason"].str.contains("fighting before the season").all()


def test_industrial_cell(reference: pl.DataFrame) -> None:
    days = pl.date_range(date(2019, 1, 1), date(2021, 12, 31), eager=True)
    works = pl.DataFrame({"latitude": 48.05, "longitude": 36.95, "acq_date": days,
                          "sensor": SENSOR})
    ref = pl.concat([reference, works])
    plain = Baseline.fit(ref, [2019, 2020, 2021], PARAMS)
    base = Baseline.fit(ref, [2019, 2020, 2021], PARAMS,
                        covariates=_covariates(plain.i0, plain.j0, plain.shape))
    out = classify(works.with_columns(pl.col("acq_date").dt.offset_by("3y")), base)
    assert (out["fire_class"] == "industrial").all()
    assert out["reason"][0].startswith("industrial/persistent: this cell burned on 100")


def test_carry_over_and_reset(baseline: Baseline) -> None:
    front = [_burst(47.55, 37.55, date(2022, 3, 1) + timedelta(days=2 * k), 6)
             for k in range(25)]
    after = _burst(47.551, 37.551, date(2022, 3, 1) + timedelta(days=50), 1)
    data = pl.concat([*front, after])
    out = classify(data, baseline, WarFireRules(min_confirmations=5))
    last = out.tail(1)
    assert last["war_related"][0] == 1 and "carry-over" in last["reason"][0]
    reset = date(2022, 3, 1) + timedelta(days=49)
    out2 = classify(data, baseline, WarFireRules(min_confirmations=5, reset_at=reset))
    assert out2.tail(1)["war_related"][0] == 0


def test_sensor_fallback_is_said(baseline: Baseline) -> None:
    data = _burst(47.5, 36.5, date(2022, 5, 1), 2, sensor="VIIRS_SNPP_NRT")
    out = classify(data, baseline)
    assert f"baseline of {SENSOR} used for VIIRS_SNPP_NRT" in out["reason"][0]


def test_baseline_for_another_instrument_leaves_the_rows_unclassified(
        baseline: Baseline) -> None:
    """Issue 11: a sensor the baseline lacks is no error (one such row in a store made every
    run fail); its rows are unclassified, with the reason. tests/test_one_bad_row.py has
    the mixed case."""
    out = classify(_burst(47.5, 36.5, date(2022, 5, 1), 2, sensor="MODIS"), baseline)
    assert out["fire_class"].to_list() == ["unclassified"] * 2
    assert out["war_related"].to_list() == [0, 0]
    assert "the baseline has no MODIS reference" in out["reason"][0]


def test_baseline_for_another_area_refused(baseline: Baseline) -> None:
    with pytest.raises(BaselineError, match="outside the baseline's grid") as e:
        classify(_burst(60.5, 10.5, date(2022, 5, 1), 5), baseline)
    assert "fit a baseline" in e.value.fix


def test_no_reference_years_in_data() -> None:
    with pytest.raises(BaselineError, match="no detections in the reference years") as e:
        Baseline.fit(_background([2019]), [2005], PARAMS)
    assert e.value.fix == "choose years present in the input: [2019]"


def test_covariates_that_do_not_cover_the_area_refused(tmp_path: Path) -> None:
    (tmp_path / "land_use_2022_0p1deg.csv").write_text(
        "LONGITUDE,LATITUDE,LAND_USE_CLASS_0,LAND_USE_CLASS_1,LAND_USE_CLASS_2,"
        "LAND_USE_CLASS_3,LAND_USE_CLASS_4\n10.0,60.0,0,0,0,1,0\n10.1,60.0,0,0,0,1,0\t\n")
    with pytest.raises(BaselineError, match=r"cover only 0% of the cells"):
        Baseline.fit(_background([2019]), [2019], PARAMS, covariates=tmp_path)
    with pytest.raises(InputFileError, match=r"no land_use_2022_0p1deg\.csv"):
        load_covariates(tmp_path / "missing", 0, 0, (2, 2))


def test_save_load_roundtrip(tmp_path: Path, baseline: Baseline) -> None:
    baseline.save(tmp_path / "b.npz")
    back = Baseline.load(tmp_path / "b.npz")
    assert back.shape == baseline.shape and back.params == baseline.params
    for s, sb in baseline.sensors.items():
        assert np.array_equal(back.sensors[s].expected, sb.expected)
        assert back.sensors[s].dispersion == sb.dispersion
        assert back.sensors[s].learned == sb.learned
    assert back.landscape is not None and baseline.landscape is not None
    assert np.array_equal(back.landscape.crop_season, baseline.landscape.crop_season)
    data = pl.concat(_front(date(2022, 3, 1), 40))
    assert classify(data, back).equals(classify(data, baseline))


def test_not_a_baseline_file(tmp_path: Path) -> None:
    p = tmp_path / "x.npz"
    p.write_bytes(b"hello")
    with pytest.raises(BaselineError, match="not a readable baseline"):
        Baseline.load(p)
