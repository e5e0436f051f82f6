from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conftest import DATA, shared
from trucewatch.errors import InputFileError, UnknownLayoutError
from trucewatch.ingest.firms import parse_firms, read_firms

HEADER = b"latitude,longitude,acq_date,sensor_guess\n"


def test_minimal_layout_with_sensor_guess() -> None:
    b = parse_firms(HEADER + b"48.2113,38.2567,2021-07-01,MODIS\n"
                    b"48.123456,37.1,2021-07-01,VIIRS_6dec\n", "m.csv")
    assert b.layout == "minimal"
    assert b.records["sensor"].to_list() == ["MODIS", "VIIRS_SNPP_SP"]
    assert b.records["row"].to_list() == [2, 3]


def test_minimal_layout_infers_sensor_from_decimals() -> None:
    b = parse_firms(b"latitude,longitude,acq_date\n48.123456,37.123456,2021-07-01\n"
                    b"48.12345,37.1,2021-07-01\n48.1234,37.1234,2021-07-01\n", "m.csv")
    assert b.records["sensor"].to_list() == ["VIIRS_SNPP_SP", "VIIRS_NRT", "MODIS"]


def test_area_api_layout() -> None:
    b = read_firms(DATA / "firms_api_viirs_noaa20_nrt.csv")
    assert b.layout == "viirs" and not b.quarantine
    assert set(b.records["sensor"]) == {"VIIRS_NOAA20_NRT"}
    assert b.records["acq_minute"].to_list() == [45, 45, 45, 10 * 60 + 42]
    assert b.records["confidence"].to_list() == ["nominal", "nominal", "high", "low"]


def test_modis_archive_quarantines_bad_confidence() -> None:
    b = read_firms(DATA / "modis_archive.csv")
    assert b.layout == "modis"
    assert b.records.height == 2
    assert [(q.row, q.reason) for q in b.quarantine] == [(4, "confidence is not a number in 0-100")]


def test_real_nrt_sample() -> None:
    b = read_firms(shared(
        "firms-nrt-format-sample/viirs_noaa20_nrt_ukraine_2025-08-11_first_rows.csv"))
    assert b.n_rows == 35 and b.records.height == 35
    assert set(b.records["sensor"]) == {"VIIRS_NOAA20_NRT"}


def test_invalid_rows_quarantined_with_row_and_reason_nothing_lost() -> None:
    raw = (HEADER + b"48.1,37.1,2021-07-01,MODIS\n"
           b"not-a-lat,37.1,2021-07-01,MODIS\n"
           b"\n"
           b"95.0,37.1,2021-07-01,MODIS\n"
           b"48.1,37.1,2021-02-30,MODIS\n"
           b"48.1,37.1\n"
           b"48.1,37.1,2099-01-01,MODIS\n"
           b"48.1,37.1,2021-07-01,LANDSAT\n")
    b = parse_firms(raw, "bad.csv", today=datetime(2026, 1, 1, tzinfo=UTC))
    reasons = {q.row: q.reason for q in b.quarantine}
    assert reasons[3] == "latitude is not a number"
    assert reasons[5] == "latitude out of range [-90, 90]"
    assert reasons[6] == "acq_date is not a YYYY-MM-DD date"
    assert reasons[7].startswith("expected 4 fields, found 2")
    assert reasons[8] == "acq_date is in the future"
    assert "sensor_guess" in reasons[9]
    assert b.records.height + len(b.quarantine) == b.n_rows == 7  # the blank line is no row
    assert reasons[7] and b.quarantine[3].raw == "48.1,37.1"


def test_unknown_layout_names_the_fix() -> None:
    with pytest.raises(UnknownLayoutError) as e:
        parse_firms(b"lat;lon;date\n1;2;3\n", "odd.csv")
    assert "unknown layout" in e.value.message and "latitude,longitude,acq_date" in e.value.fix


def test_missing_file() -> None:
    with pytest.raises(InputFileError, match="no such file"):
        read_firms(DATA / "nope.csv")


def test_gzip_and_real_archive() -> None:
    path = shared("firms-ukraine-2000-2022/firms_ukraine_2000_2022.csv.gz")
    b = read_firms(path, keep_raw=False)
    assert b.n_rows == 1_165_364
    assert b.records.height + len(b.quarantine) == b.n_rows
    counts = dict(b.records.group_by("sensor").len().iter_rows())
    assert set(counts) == {"MODIS", "VIIRS_SNPP_SP", "VIIRS_NRT"}


def test_every_layout_says_when_the_satellite_saw_it() -> None:
    """seen_start/seen_end (UTC, inclusive) and time_basis on every layout; the details are
    in tests/test_as_of.py."""
    import polars as pl

    for b in (read_firms(DATA / "firms_api_viirs_noaa20_nrt.csv"),
              read_firms(DATA / "modis_archive.csv"),
              parse_firms(HEADER + b"48.2113,38.2567,2021-07-01,MODIS\n", "m.csv")):
        r = b.records
        assert r.schema["seen_start"] == pl.Datetime("ms", "UTC"), b.name
        assert (r["seen_start"] <= r["seen_end"]).all()
        assert (r["seen_start"].dt.date() == r["acq_date"]).all()
        assert (r["seen_end"].dt.date() == r["acq_date"]).all()
        exact = r["acq_minute"].is_not_null()
        assert (r.filter(exact)["time_basis"] == "acq_time (that minute)").all()
        assert r.filter(~exact)["time_basis"].str.starts_with("overpass windows").all()
