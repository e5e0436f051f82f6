"""The stored coverage document: what the mechanism could see (``Coverage.geojson()``)
with its maps (:class:`~trucewatch.adjudication.coverage_maps.CoverageMaps`: per day and
sector, the satellite state, the sensor capability, the patrol swaths and what nothing
observed). The batch cycle's rule stage and the processing worker store the same
document, so ``/coverage``, ``/coverage/capability``, ``/coalition``, the exports and
the bulletins read the same shape whoever wrote it last.

The worker keeps the coverage inputs of the document it last stored
(:class:`CoverageKeeper`): a pass whose inputs did not change builds and stores nothing
(the maps cost ~0.3-0.6 s, and every stored document is an append-only row).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

from trucewatch.adjudication.allegations import Coverage
from trucewatch.adjudication.coverage_maps import CoverageMaps
from trucewatch.agreement.coalition import FORMAT, Coalition, parse_coalition
from trucewatch.errors import ConfigError
from trucewatch.model.agreement import Agreement


def build_maps(cov: Coverage, agreement: Agreement, day: date, maps: CoverageMaps,
               coalition: Coalition | None = None, refused: str = "") -> dict[str, Any]:
    """The maps ending on ``day`` (``refused``: why a coalition registry was refused;
    the maps then credit no one and say why)."""
    built = maps.build(cov, agreement, day, coalition)
    if refused:
        built["coalition"] = {"refused": refused}
    return built


def with_maps(cov: Coverage, built: dict[str, Any]) -> dict[str, Any]:
    """The stored document: the coverage's GeoJSON, the maps' features added, and the
    maps' figures under ``maps``."""
    doc = cov.geojson()
    doc["features"] += built["features"]
    doc["maps"] = {k: v for k, v in built.items() if k not in ("type", "features")}
    return doc


def stored_coalition(doc: dict[str, Any] | None, agreement: Agreement) -> Coalition | None:
    """The coalition registry a stored coverage document credits: the registry the cycle
    accepted (its signature was checked at intake, ``intake.coalition``), parsed again
    against the agreement's sectors. None when the document holds none (or a refusal)."""
    reg = ((doc or {}).get("maps") or {}).get("coalition") or {}
    reg = reg.get("registry")
    if not isinstance(reg, dict):
        return None
    try:
        got = parse_coalition(json.dumps({"format": FORMAT, **reg}), "stored coverage",
                              [s.id for s in agreement.sectors])
    except ConfigError:
        return None  # another mission's registry: credit no one rather than guess
    return replace(got, signed_by=str(reg.get("signed_by", "")))


def stored_cloud(doc: dict[str, Any] | None) -> tuple[dict[date, float | None], set[date]]:
    """The cloud record (day -> cloud fraction, and the days without data) a stored
    coverage document holds (``satellite_days``); empty when it holds none."""
    days: dict[date, float | None] = {}
    gaps: set[date] = set()
    for d in (doc or {}).get("satellite_days") or []:
        try:
            day = date.fromisoformat(str(d["date"]))
        except (KeyError, ValueError):
            continue
        cloud = d.get("cloud_cover")
        days[day] = float(cloud) if isinstance(cloud, int | float) else None
        if d.get("data") is False:
            gaps.add(day)
    return days, gaps


def inputs_key(cov: Coverage, day: date, coalition: Coalition | None) -> str:
    """A digest of everything the document is made of: equal keys, equal
    documents."""
    parts = (cov.stations, cov.station_ids, cov.sensor_periods, cov.station_up,
             sorted(cov.satellite_days.items()), sorted(cov.satellite_gaps), cov.patrols,
             cov.patrol_platforms, cov.outages, cov.min_stations, cov.station_reach_km,
             cov.max_cloud, day, coalition.to_dict() if coalition else None)
    return hashlib.sha256(repr(parts).encode()).hexdigest()


class CoverageKeeper:
    """The worker's coverage document: built again only when its inputs changed.
    :meth:`document` gives the document to store (None: the one stored already is
    it); :meth:`stored` is called once that document's transaction committed."""

    def __init__(self, maps: CoverageMaps | None = None) -> None:
        self.maps = maps or CoverageMaps()
        self._key: str | None = None  # the inputs of the document last stored

    def document(self, latest: Callable[[], dict[str, Any] | None], cov: Coverage,
                 agreement: Agreement, day: date, coalition: Coalition | None
                 ) -> tuple[str, dict[str, Any] | None]:
        """(the inputs' key, the document to store or None). ``latest`` reads the stored
        document, compared when this process has not stored this one yet (a restarted
        worker stores nothing new when nothing changed)."""
        key = inputs_key(cov, day, coalition)
        if key == self._key:
            return key, None
        doc = with_maps(cov, build_maps(cov, agreement, day, self.maps, coalition))
        if json.dumps(latest()) == json.dumps(doc):
            self._key = key
            return key, None
        return key, doc

    def stored(self, key: str) -> None:
        self._key = key

    def forget(self) -> None:
        """Another writer may have stored a coverage document: compare again."""
        self._key = None
