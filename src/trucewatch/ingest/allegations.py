"""Allegations from the parties, monitors and the public (``trucewatch-allegations/1``).

A document holds ``allegations``; each has an id, a claimant and its kind (party,
monitor, public), when it was received, and either structured fields (time window,
place name or coordinates, category) or free text in French, English, Ukrainian or
Russian, or both. The original text is always kept; what was extracted from it is
stored beside it with its spans and confidences (:mod:`trucewatch.ingest.extraction`).

Quarantined, with the reason: malformed entries, a place the gazetteer does not know
and no coordinates, no time at all, times in the future, duplicate ids.

Who filed an allegation (``filed_by``, the principal id that "my allegations" follows)
is the service's to say, never the document's: an adapter made for a submitting
principal (:meth:`AllegationSource.filed_by`) writes that principal's id into every
entry it stores, and one made for none (a cycle's configured files, an operator's
ingest without a token) drops any ``filed_by`` the document carries, so that nobody
can file into another principal's list.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trucewatch.errors import InputFileError
from trucewatch.ingest.base import Batch, QuarantineEntry, sha256
from trucewatch.ingest.drones import _reason
from trucewatch.ingest.extraction import LANGUAGES, Extractor
from trucewatch.model.enums import AllegationCategory, ClaimantKind, SourceKind, SourceName
from trucewatch.model.serialization import format_time
from trucewatch.model.times import time_problem

FORMAT = "trucewatch-allegations/1"
CATEGORIES = tuple(c.value for c in AllegationCategory)


class AllegationIn(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    allegation_id: str = Field(min_length=1, max_length=200)
    claimant: str = Field(min_length=1, max_length=200)
    claimant_kind: ClaimantKind
    received_at: datetime
    text: str = Field(default="", max_length=20000)
    language: str | None = None
    time_start: datetime | None = None
    time_end: datetime | None = None
    place: str | None = Field(default=None, max_length=200)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    category: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AllegationIn:
        for name in ("received_at", "time_start", "time_end"):
            t = getattr(self, name)
            if t is not None and t.tzinfo is None:
                raise ValueError(f"{name} has no UTC offset; write it like "
                                 "2026-05-30T04:12:00Z")
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        if self.time_start and self.time_end and self.time_end < self.time_start:
            raise ValueError("time_end is before time_start")
        if self.language is not None and self.language not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
        if self.category is not None and self.category not in CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(CATEGORIES)}")
        if not self.text and self.place is None and self.lat is None:
            raise ValueError("an allegation needs a text, a place or coordinates")
        return self


def place_radius_m(population: int) -> float:
    """1-sigma radius of 'somewhere in this town': ~1 km for a village, ~6 km for a city."""
    return 1000.0 * (1.0 + 1.2 * math.log10(max(population, 0) / 1000 + 1))


RECORD_SCHEMA = {"id": pl.String, "received_at": pl.String, "claimant": pl.String,
                 "doc": pl.String}


class AllegationSource:
    name: str = SourceName.ALLEGATIONS
    kind = SourceKind.ALLEGATION

    def __init__(self, extractor: Extractor | None = None, filer: str | None = None) -> None:
        self._extractor = extractor
        self.filer = filer  # the submitting principal's id, or None (see the module doc)

    def filed_by(self, principal_id: str | None) -> AllegationSource:
        """This source for one submitting principal: the same extractor (loaded once),
        every stored entry's ``filed_by`` that principal's id."""
        return AllegationSource(self.extractor, principal_id or None)

    @property
    def extractor(self) -> Extractor:
        if self._extractor is None:
            self._extractor = Extractor()
        return self._extractor

    def sniff(self, header: list[str]) -> bool:
        return bool(header) and header[0] == "{" + FORMAT

    def speakers(self, batch: Batch, payload: bytes) -> set[str]:
        """A signed allegations document speaks for its claimants."""
        return {str(c) for c in batch.records["claimant"].to_list()}

    def parse(self, raw: bytes, name: str, now: datetime | None = None) -> Batch:
        now = now or datetime.now(UTC)
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputFileError(f"{name}: not valid UTF-8 JSON ({err})", path=name,
                                 fix=f"send a {FORMAT} document, see docs/allegations.md"
                                 ) from err
        except RecursionError as err:
            raise InputFileError(f"{name}: JSON nested too deeply", path=name,
                                 fix=f"send a {FORMAT} document, see docs/allegations.md"
                                 ) from err
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise InputFileError(f"{name}: not an allegations document", path=name,
                                 fix=f"set \"format\": \"{FORMAT}\"")
        items = doc.get("allegations") or []
        if not isinstance(items, list):
            raise InputFileError(f"{name}: 'allegations' must be a list (got "
                                 f"{type(items).__name__})", path=name,
                                 fix='give "allegations": [...], see docs/allegations.md')
        records, quarantine, seen = [], [], set()
        for k, item in enumerate(items, start=1):
            text = json.dumps(item, ensure_ascii=False, sort_keys=True)
            try:
                a = AllegationIn.model_validate(item)
                if a.allegation_id in seen:
                    raise ValueError(f"duplicate allegation_id {a.allegation_id}")
                records.append(self._resolve(a, now, item))
                seen.add(a.allegation_id)
            except ValidationError as err:
                quarantine.append(QuarantineEntry(k, _reason(err), text))
            except ValueError as err:
                quarantine.append(QuarantineEntry(k, str(err), text))
        return Batch(source=self.name, kind=self.kind, layout=FORMAT, name=name, raw=raw,
                     sha256=sha256(raw), n_rows=len(items),
                     records=pl.DataFrame(records, schema=RECORD_SCHEMA), quarantine=quarantine)

    def _resolve(self, a: AllegationIn, now: datetime, item: dict[str, Any]) -> dict[str, Any]:
        for what in ("received_at", "time_start", "time_end"):
            t = getattr(a, what)
            why = time_problem(t, now, what) if t is not None else None
            if why:
                raise ValueError(why)
        ex = self.extractor.extract(a.text, a.received_at, a.language) if a.text else None
        # where: coordinates, else the named place, else the text's best place
        if a.lat is not None and a.lon is not None:
            lat, lon, unc, where = a.lat, a.lon, 500.0, "coordinates"
        elif a.place:
            r = self.extractor.gazetteer.resolve(a.place, near=self.extractor.area)
            if r is None or r.outside:
                raise ValueError(f"unknown place {a.place!r}: not in the gazetteer of the "
                                 "mission area; give lat and lon")
            lat, lon = r.place.lat, r.place.lon
            unc, where = place_radius_m(r.place.population), f"place:{r.place.name}"
        else:
            best = ex.best_place() if ex else None
            if best is None:
                raise ValueError("no known place in the text and no place or coordinates "
                                 "given; give place or lat/lon")
            lat, lon = best.lat, best.lon
            unc, where = place_radius_m(best.population), f"text:{best.name}"
        # when: the window given, else the text's best time
        if a.time_start is not None:
            t0, t1 = a.time_start, a.time_end or a.time_start + timedelta(hours=1)
            when = "structured"
        else:
            bt = ex.best_time() if ex else None
            if bt is None:
                raise ValueError("no time: give time_start/time_end or mention a date "
                                 "in the text")
            t0 = datetime.fromisoformat(bt.start.replace("Z", "+00:00"))
            t1 = datetime.fromisoformat(bt.end.replace("Z", "+00:00"))
            when = f"text:{bt.text}"
            if t0 > now:
                raise ValueError(f"time in text {bt.text!r} is in the future")
            why = time_problem(t0, now, f"time in text {bt.text!r}")
            if why or t1 < t0:
                raise ValueError(why or f"time in text {bt.text!r} ends before it starts")
        category = a.category or (ex.category if ex and ex.category else "other")
        # the filer is the service's to say (module doc): never taken from the document
        filed = {k: v for k, v in item.items() if k != "filed_by"}
        if self.filer:
            filed["filed_by"] = self.filer
        doc = {**filed, "allegation_id": a.allegation_id, "claimant": a.claimant,
               "claimant_kind": a.claimant_kind.value, "received_at": format_time(a.received_at),
               "text": a.text,
               "resolved": {"lat": lat, "lon": lon, "uncertainty_m": round(unc, 1),
                            "where": where, "time_start": format_time(t0),
                            "time_end": format_time(t1), "when": when,
                            "category": category},
               "extraction": ex.to_dict() if ex else None}
        return {"id": a.allegation_id, "received_at": format_time(a.received_at),
                "claimant": a.claimant, "doc": json.dumps(doc, ensure_ascii=False)}
