"""The daily bulletin rendered from the store: the render basis derived where no cycle
kept one (a store the worker processes), and the products clock's bulletin maker.

:func:`derive_basis` runs the cycle's own functions on the stored rows: the monitored
FIRMS detections up to the day, classified against the worker's baseline artifact
(``<store>.baseline.npz``, :mod:`trucewatch.pipeline.worker`), the satellite view
(:func:`~trucewatch.adjudication.ceasefire.build_view`) and the days' coverage. What it
cannot restore is said in ``derived``: the ground network's figures (the locate stage's,
not stored) and, unless the store's latest coverage holds them, the coverage maps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from trucewatch.adjudication.ceasefire import build_view
from trucewatch.errors import NotFoundError, TrucewatchError
from trucewatch.ingest.firms import FirmsFilter
from trucewatch.model.agreement import Agreement
from trucewatch.model.enums import SourceKind
from trucewatch.pipeline.config import plan_cycle
from trucewatch.pipeline.stages import classify_with, stored_fires
from trucewatch.reports.basis import (
    SOURCE,
    RenderBasis,
    allegations_before,
    day_end,
    load_basis,
    render_from_store,
    source_fingerprint,
    stored_agreement,
)
from trucewatch.reports.coverage import coverage
from trucewatch.satellite.baseline import Baseline
from trucewatch.storage.protocols import BulletinStore, ObservationStore, SourcesStore

log = logging.getLogger("trucewatch.products")


def baseline_beside(store: ObservationStore | Path | str) -> Path | None:
    """The worker's baseline artifact beside a SQLite store (None for PostgreSQL)."""
    where = str(getattr(store, "path", store))
    return None if "://" in where else Path(where + ".baseline.npz")


def derive_basis(store: SourcesStore, day: date, agreement: Agreement | None = None,
                 baseline: Path | None = None, cutoff: datetime | None = None
                 ) -> RenderBasis:
    """``day``'s render basis from the stored rows and the baseline artifact."""
    agreement = agreement or stored_agreement(store)
    if agreement is None:
        raise NotFoundError("the store holds no agreement to derive the bulletin with",
                            fix="give --agreement A")
    path = baseline or baseline_beside(store)
    if path is None or not path.is_file():
        raise NotFoundError(
            f"no baseline artifact at {path} to classify the stored fires with",
            fix="let the worker process the store once (`trucewatch worker --store S "
                "--agreement A --once`), or give the artifact's path")
    years: list[int] | None = None
    meta = path.with_suffix(".json")
    if meta.is_file():
        years = [int(y) for y in json.loads(meta.read_text(encoding="utf-8"))["years"]]
    t0 = agreement.entry_into_force.date()
    plan = plan_cycle(store.fire_summary(), t0, years, None)
    flt = FirmsFilter()
    detections = flt.apply(stored_fires(store, end=day))
    classified = classify_with(Baseline.load(path), detections, plan.reference_years,
                               agreement)
    view = build_view(classified.full, agreement, classified.baseline)
    current = classified.current
    if current.is_empty():
        raise NotFoundError(f"no monitored FIRMS detection stored up to {day}",
                            fix="a bulletin needs the satellite channel: ingest FIRMS")
    first: date = current["acq_date"].min()  # type: ignore[assignment]
    cover = coverage(current["acq_date"], first, day)
    # the coverage maps are the cycle's (rule stage), built from the ground network's
    # inventory and outages as located; the worker does not keep them
    missing = ["the ground network's figures", "the coverage maps"]
    end = cutoff or day_end(day)
    as_of = {"report_date": day.isoformat(), "cutoff": f"{end:%Y-%m-%dT%H:%M}Z",
             "reference_years": plan.reference_years, "firms_filter": flt.describe(),
             "used": {"fire_detections": current.height,
                      "reference_detections": detections.height - current.height,
                      "explosions": store.count_observations(
                          [SourceKind.SENSOR_NETWORK], before=end),
                      "drone_reports": store.count_observations([SourceKind.DRONE],
                                                                before=end),
                      "allegations": len(allegations_before(store, end))},
             "fire_classes": dict(classified.full.group_by("fire_class").len().iter_rows()),
             "derived_from_store": True}
    return RenderBasis(day, end, view.daily, cover, None, None, as_of,
                       ["satellite"], None, [], False,
                       "derived from the stored rows; not restored: " + ", ".join(missing))


@dataclass
class StoreBulletins:
    """The products clock's bulletin maker (:class:`trucewatch.reports.tiers.
    BulletinMaker`): renders HTML, PDF and JSON, public and restricted, from the store
    (the basis the cycle kept for the day, else one derived), only when what the
    bulletin rests on changed since the last render (the fingerprint)."""

    agreement: Agreement | None = None
    baseline: Path | None = None
    pdf: bool = True
    language: str = "en"
    _seen: dict[date, str] = field(default_factory=dict)  # the fingerprint rendered
    _quick: dict[date, str] = field(default_factory=dict)  # the inputs' key then
    _last: dict[date, list[tuple[Path, str, str]] | str] = field(default_factory=dict)

    def _inputs_key(self, store: BulletinStore, day: date, cutoff: datetime) -> str:
        """A cheap key of what the basis and the bulletin rest on (the incidents before
        the cut, the rulings, the stored fires, the kept bases, the baseline artifact):
        the same key, the same outcome as last time, without deriving anything."""
        h = hashlib.sha256()
        for i, t, st, sha in sorted(store.incident_digests()):
            if datetime.fromisoformat(t).astimezone(UTC) < cutoff:
                h.update(f"{i}|{st}|{sha}\n".encode())
        h.update(json.dumps(store.rulings(), sort_keys=True, default=str).encode())
        fires = store.fire_summary()  # the satellite rows a basis of ``day`` reads
        h.update(fires.filter(pl.col("acq_date") <= day).sort(pl.all()).write_csv()
                 .encode())
        h.update(str(len(store.inputs(SOURCE))).encode())
        art = self.baseline or baseline_beside(store)
        if art is not None and art.is_file():
            h.update(f"{art.stat().st_mtime_ns}|{art.stat().st_size}".encode())
        return f"{day}|{h.hexdigest()}"

    def __call__(self, store: BulletinStore, day: date, cutoff: datetime, staging: Path
                 ) -> list[tuple[Path, str, str]] | str:
        t0 = time.monotonic()
        quick = self._inputs_key(store, day, cutoff)
        if self._quick.get(day) == quick:
            return self._last.get(day, [])  # nothing it rests on changed since the last call
        try:
            basis = load_basis(store, day) or derive_basis(store, day, self.agreement,
                                                           self.baseline, cutoff)
        except (TrucewatchError, pl.exceptions.PolarsError) as err:
            self._quick[day], self._last[day] = quick, f"no render basis: {err}"
            return self._last[day]
        source = source_fingerprint(store, basis, cutoff)
        if self._seen.get(day) == source or _published_source(staging, day) == source:
            self._seen[day], self._quick[day], self._last[day] = source, quick, []
            return []
        try:
            files = render_from_store(
                store, day, staging, basis=basis, agreement=self.agreement, cutoff=cutoff,
                pdf=self.pdf, language=self.language, source=source,
                progress=lambda what: log.info("products clock: bulletin %s: %s", day,
                                               what))
        except (TrucewatchError, OSError) as err:
            self._quick[day], self._last[day] = quick, f"rendering failed: {err}"
            return self._last[day]
        except Exception as err:  # a bug: logged in full; the clock's other products go on
            log.exception("products clock: bulletin %s: rendering failed", day)
            self._quick[day] = quick
            self._last[day] = f"rendering failed ({type(err).__name__}: {err})"[:500]
            return self._last[day]
        self._seen[day], self._quick[day], self._last[day] = source, quick, []
        log.info("products clock: bulletin %s rendered in %.1f s", day,
                 time.monotonic() - t0)
        out: list[tuple[Path, str, str]] = []
        for variant, f in files.items():
            for kind, p in (("html", f.html), ("pdf", f.pdf), ("json", f.json),
                            ("geojson", f.geojson), ("geojson", f.coverage)):
                if p is not None and p.is_file():
                    out.append((p, kind, variant))
            # a revision revises every language the day was published in: those too
            out += [(p, p.suffix.lstrip("."), variant) for p in f.others if p.is_file()]
        return out


def _published_source(staging: Path, day: date) -> str | None:
    """The fingerprint the latest published public bulletin of ``day`` rests on."""
    revs = sorted(staging.glob(f"bulletin-{day.isoformat()}-public*.json"),
                  key=lambda p: int(p.name.split(".rev")[1].split(".")[0])
                  if ".rev" in p.name else 1)
    if not revs:
        return None
    try:
        doc = json.loads(revs[-1].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc.get("source_sha256") if isinstance(doc, dict) else None
