"""What could not be seen: days without data and cloud cover, so that "no violation
observed" is never confused with "no violation"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from trucewatch.errors import InputFileError

CLOUDY = 0.5


@dataclass
class Coverage:
    start: date
    end: date
    days_without_data: list[date] = field(default_factory=list)
    days_without_detections: list[date] = field(default_factory=list)
    cloudy_days: list[tuple[date, float]] = field(default_factory=list)
    cloud_known: bool = False

    def observed(self, day: date) -> str:
        if day in self.days_without_data:
            return "not observed (no satellite data)"
        if day in self.days_without_detections:
            return "no fire detected (data availability not confirmed)"
        cloud = dict(self.cloudy_days).get(day)
        if cloud is not None:
            return f"partly observed (cloud cover {cloud:.0%})"
        return "observed" if self.cloud_known else "observed (cloud cover unknown)"


def read_cloud(path: Path) -> tuple[dict[date, float], set[date]]:
    """Cloud cover per day, and the days the file marks ``data_available = 0``."""
    try:
        df = pl.read_csv(path, try_parse_dates=True)
    except (OSError, pl.exceptions.PolarsError) as err:
        raise InputFileError(f"{path}: cannot read cloud cover ({err})", path=str(path),
                             fix="give a CSV with columns date,cloud_cover (0-1)") from err
    if not {"date", "cloud_cover"} <= set(df.columns):
        raise InputFileError(f"{path}: needs columns date,cloud_cover", path=str(path),
                             fix="rename the columns to date,cloud_cover")
    gaps: set[date] = set()
    if "data_available" in df.columns:
        gaps = set(df.filter(pl.col("data_available") == 0)["date"].to_list())
    cloud = df.filter(pl.col("cloud_cover").is_not_null())
    return dict(zip(cloud["date"].to_list(), cloud["cloud_cover"].to_list(), strict=True)), gaps


def coverage(detection_dates: pl.Series, start: date, end: date,
             cloud: dict[date, float] | None = None,
             gaps: set[date] | None = None) -> Coverage:
    seen = set(detection_dates.unique().to_list())
    cov = Coverage(start, end, cloud_known=cloud is not None)
    d = start
    while d <= end:
        if gaps and d in gaps:
            cov.days_without_data.append(d)
        elif d not in seen:
            # zero detections may be a quiet day or missing data: say we do not know
            cov.days_without_detections.append(d)
        elif cloud and cloud.get(d, 0.0) >= CLOUDY:
            cov.cloudy_days.append((d, float(cloud[d])))
        d += timedelta(days=1)
    return cov
