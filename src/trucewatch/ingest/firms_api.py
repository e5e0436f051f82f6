"""Client for the NASA FIRMS area API (https://firms.modaps.eosdis.nasa.gov/api/area/).

``GET {base}/api/area/csv/{MAP_KEY}/{SOURCE}/{west},{south},{east},{north}/{DAY_RANGE}[/{DATE}]``
returns a FIRMS CSV, which goes through the same reader as a downloaded file.
The MAP_KEY comes from the argument, else the ``FIRMS_MAP_KEY`` environment variable.
"""

from __future__ import annotations

import os
from datetime import date

import httpx

from trucewatch.errors import ConfigError, FirmsApiError
from trucewatch.ingest.base import Batch
from trucewatch.ingest.firms import parse_firms

SOURCES = ("VIIRS_SNPP_NRT", "VIIRS_NOAA20_NRT", "VIIRS_NOAA21_NRT", "VIIRS_SNPP_SP",
           "MODIS_NRT", "MODIS_SP", "LANDSAT_NRT")
DEFAULT_BASE = "https://firms.modaps.eosdis.nasa.gov"


class FirmsClient:
    def __init__(self, map_key: str | None = None, base_url: str = DEFAULT_BASE,
                 timeout_s: float = 60.0) -> None:
        key = map_key or os.environ.get("FIRMS_MAP_KEY", "")
        if not key:
            raise ConfigError("no FIRMS MAP_KEY",
                              fix="set FIRMS_MAP_KEY (get one at "
                                  "https://firms.modaps.eosdis.nasa.gov/api/map_key/)")
        self.map_key = key
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def area_url(self, source: str, bbox: tuple[float, float, float, float], day_range: int,
                 day: date | None = None) -> str:
        if source not in SOURCES:
            raise ConfigError(f"unknown FIRMS source {source!r}", fix=f"use one of {SOURCES}")
        if not 1 <= day_range <= 10:
            raise ConfigError(f"day_range {day_range} out of 1-10",
                              fix="FIRMS serves 1 to 10 days per request; split the period")
        w, s, e, n = bbox
        url = f"{self.base_url}/api/area/csv/{self.map_key}/{source}/{w},{s},{e},{n}/{day_range}"
        return f"{url}/{day.isoformat()}" if day else url

    def area(self, source: str, bbox: tuple[float, float, float, float], day_range: int = 1,
             day: date | None = None) -> Batch:
        body = self.fetch(source, bbox, day_range, day)
        name = f"firms-api_{source}_{day or 'today'}_{day_range}d.csv"
        return parse_firms(body, name)

    def fetch(self, source: str, bbox: tuple[float, float, float, float], day_range: int = 1,
              day: date | None = None) -> bytes:
        """The response body as received (for the intake, which keeps it as evidence);
        FirmsApiError when FIRMS is unreachable or refuses the request."""
        url = self.area_url(source, bbox, day_range, day)
        try:
            resp = httpx.get(url, timeout=self.timeout_s)
        except httpx.HTTPError as err:
            raise FirmsApiError(f"FIRMS API unreachable ({err.__class__.__name__})",
                                fix="check the network, or download the CSV by hand and "
                                    "use `trucewatch ingest`") from err
        body = resp.content
        text = body[:200].decode("utf-8", errors="replace").strip()
        if resp.status_code != 200 or text.lower().startswith("invalid"):
            raise FirmsApiError(f"FIRMS API refused the request: HTTP {resp.status_code}: "
                                f"{text[:120]}",
                                fix="check FIRMS_MAP_KEY and the request limits (5000 per "
                                    "10 minutes)")
        return body
