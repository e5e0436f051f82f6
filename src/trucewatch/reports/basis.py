"""What the bulletin's renderer needs beyond the store's incidents, kept in the store, so
that a bulletin (HTML, PDF, JSON; public and restricted) renders from the store alone:
``trucewatch report --store S --date D`` and the products clock's daily bulletin.

The renderer (:func:`trucewatch.reports.bulletin.render`) reads the store's incidents,
violations, rulings, review figures, refused inputs and audit state, all of which the
store holds, and a **render basis** it does not: the satellite channel's daily view
(detections, war-related fires and the normal-year expectation per day, sector and
zone group), the coverage (days without data, cloud), the coverage maps, the ground
network's figures and the as-of record of the inputs used.

* The batch cycle saves its basis for its report day when it renders
  (:func:`save_basis`, called by the publish stage): ``basis-D.json``, kept through the
  intake as a configuration input of source ``render-basis`` (content-addressed,
  compressed, in the hash-chained log), like the products themselves.
* Where no cycle ran (a store fed through the API, processed by the worker), the basis
  is derived from the stored rows and the worker's baseline artifact
  (:func:`trucewatch.pipeline.bulletins.derive_basis`): the same classification, view
  and coverage functions the cycle runs, on the same stored detections. It carries no
  ground-network figures and no coverage maps unless the store's coverage holds them,
  and says so (``derived``).

:func:`render_from_store` then renders the day's bulletin as of a cutoff (default: the
day's end, as the cycle does; the clock gives its 19:30 cut) from the store's state at
render time, so a later review shows in a re-render, never in the published files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from trucewatch.adjudication.ceasefire import CeasefireView
from trucewatch.agreement import load_agreement
from trucewatch.errors import NotFoundError, TrucewatchError
from trucewatch.ingest.base import unpack
from trucewatch.intake import receive
from trucewatch.intake.sources import ConfigSource
from trucewatch.integrity.envelope import is_envelope, open_envelope
from trucewatch.model.agreement import Agreement
from trucewatch.model.enums import SourceName
from trucewatch.reports.bulletin import BulletinFiles, render
from trucewatch.reports.coverage import Coverage
from trucewatch.review.workflow import ReviewService
from trucewatch.storage.protocols import (
    DecidedStore,
    EvidenceStore,
    ReviewDeskStore,
    ReviewStore,
)

SOURCE = "render-basis"
SCHEMA = "trucewatch/render-basis"
VERSION = 1
_DAILY = {"acq_date": pl.Date, "sector": pl.String, "zone_group": pl.String,
          "detections": pl.Int64, "war_related": pl.Int64, "expected": pl.Float64}


class RenderError(TrucewatchError):
    code = "render_error"


def _d(x: date) -> str:
    return x.isoformat()


@dataclass
class RenderBasis:
    """What a bulletin for ``report_date`` needs that the store's rows do not say."""

    report_date: date
    cutoff: datetime
    daily: pl.DataFrame  # acq_date, sector, zone_group, detections, war_related, expected
    coverage: Coverage
    coverage_maps: dict[str, Any] | None = None
    sensors: dict[str, Any] | None = None
    as_of: dict[str, Any] | None = None
    evidence_sources: list[str] = field(default_factory=list)
    fused: dict[str, Any] | None = None
    ingest: list[dict[str, Any]] = field(default_factory=list)
    review_scripted: bool = False
    derived: str = "cycle"  # "cycle", or what a derivation could not restore
    # the agreement applied, with the files it names (its YAML alone does not load)
    agreement: dict[str, Any] | None = None

    def to_doc(self) -> dict[str, Any]:
        c = self.coverage
        return {
            "schema": SCHEMA, "version": VERSION, "report_date": _d(self.report_date),
            "cutoff": self.cutoff.astimezone(UTC).isoformat(),
            "daily": self.daily.cast(_DAILY).with_columns(  # type: ignore[arg-type]
                pl.col("acq_date").dt.to_string("%Y-%m-%d")).to_dicts(),
            "coverage": {"start": _d(c.start), "end": _d(c.end),
                         "days_without_data": [_d(x) for x in c.days_without_data],
                         "days_without_detections": [_d(x)
                                                     for x in c.days_without_detections],
                         "cloudy_days": [[_d(x), v] for x, v in c.cloudy_days],
                         "cloud_known": c.cloud_known},
            "coverage_maps": self.coverage_maps, "sensors": self.sensors,
            "as_of": self.as_of, "evidence_sources": self.evidence_sources,
            "fused": self.fused, "ingest": self.ingest,
            "review_scripted": self.review_scripted, "derived": self.derived,
            "agreement": self.agreement}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> RenderBasis:
        if doc.get("schema") != SCHEMA or int(doc.get("version", 0)) > VERSION:
            raise RenderError(f"not a render basis this version reads ({doc.get('schema')} "
                              f"v{doc.get('version')})", fix="upgrade trucewatch")
        c = doc["coverage"]
        daily = pl.DataFrame(doc["daily"] or [], schema={**_DAILY, "acq_date": pl.String}
                             ).with_columns(pl.col("acq_date").str.to_date("%Y-%m-%d"))
        cover = Coverage(date.fromisoformat(c["start"]), date.fromisoformat(c["end"]),
                         [date.fromisoformat(x) for x in c["days_without_data"]],
                         [date.fromisoformat(x) for x in c["days_without_detections"]],
                         [(date.fromisoformat(x), float(v)) for x, v in c["cloudy_days"]],
                         bool(c["cloud_known"]))
        return cls(date.fromisoformat(doc["report_date"]),
                   datetime.fromisoformat(doc["cutoff"]), daily, cover,
                   doc.get("coverage_maps"), doc.get("sensors"), doc.get("as_of"),
                   list(doc.get("evidence_sources") or []), doc.get("fused"),
                   list(doc.get("ingest") or []), bool(doc.get("review_scripted")),
                   str(doc.get("derived") or "cycle"), doc.get("agreement"))

    def load_agreement(self) -> Agreement | None:
        """The agreement kept with the basis (None: none kept)."""
        bundle = self.agreement
        if not bundle or not bundle.get("files"):
            return None
        with tempfile.TemporaryDirectory(prefix="trucewatch-agreement-") as tmp:
            for name, text in bundle["files"].items():
                target = Path(tmp) / name
                if target.resolve().parent != Path(tmp).resolve():
                    raise RenderError(f"agreement bundle names {name!r} outside its "
                                      "folder", fix="re-run the cycle for that day")
                target.write_text(text, encoding="utf-8")
            return load_agreement(Path(tmp) / str(bundle["file"]))

    def sha256(self) -> str:
        return hashlib.sha256(_canon(self.to_doc()).encode()).hexdigest()


def _canon(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)


def agreement_bundle(path: Path) -> dict[str, Any]:
    """The agreement file and the files beside it that it names (``geojson: FILE``), as
    text, so that it loads again without the folder it came from."""
    import yaml

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    files = {path.name: text}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "geojson" and isinstance(v, str):
                    f = path.parent / v
                    if f.is_file() and f.resolve().parent == path.parent.resolve():
                        files[f.name] = f.read_text(encoding="utf-8")
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    with contextlib.suppress(yaml.YAMLError):  # the loader accepted it: the YAML alone
        walk(yaml.safe_load(text))
    return {"file": path.name, "files": files}


def day_end(day: date) -> datetime:
    """The cycle's cutoff for ``day``: the next day's 00:00Z."""
    return datetime.combine(day + timedelta(days=1), time(0), UTC)


def basis_name(day: date) -> str:
    return f"basis-{day.isoformat()}.json"


def save_basis(store: EvidenceStore, basis: RenderBasis, actor: str = "pipeline") -> None:
    """Keep ``basis`` in the store (idempotent: the same bytes are kept once)."""
    raw = _canon(basis.to_doc()).encode()
    receive(store, raw, basis_name(basis.report_date), ConfigSource(SOURCE), actor=actor)


def load_basis(store: EvidenceStore, day: date) -> RenderBasis | None:
    """The latest basis saved for ``day`` (None: none)."""
    mine = [b for b in store.inputs(SOURCE) if str(b["name"]) == basis_name(day)]
    if not mine:
        return None
    b = mine[-1]
    doc = json.loads(unpack(store.raw_input(str(b["raw_sha256"])), str(b["name"])))
    return RenderBasis.from_doc(doc)


def stored_agreement(store: EvidenceStore) -> Agreement | None:
    """The agreement the store's latest cycle applied: the one kept with its latest
    render basis (with the files it names), else the agreement input kept as evidence
    if it loads on its own; None when neither does."""
    bases = store.inputs(SOURCE)
    if bases:
        b = bases[-1]
        doc = json.loads(unpack(store.raw_input(str(b["raw_sha256"])), str(b["name"])))
        got = RenderBasis.from_doc(doc).load_agreement()
        if got is not None:
            return got
    kept = store.inputs(SourceName.AGREEMENT)
    if not kept:
        return None
    b = kept[-1]
    raw = unpack(store.raw_input(str(b["raw_sha256"])), str(b["name"]))
    if is_envelope(raw):
        raw = unpack(open_envelope(raw).payload, str(b["name"]))
    with tempfile.TemporaryDirectory(prefix="trucewatch-agreement-") as tmp:
        path = Path(tmp) / Path(str(b["name"])).name
        path.write_bytes(raw)
        try:
            return load_agreement(path)
        except TrucewatchError:  # it names files beside it that the store does not keep
            return None


def allegations_before(store: ReviewStore, cutoff: datetime) -> set[str]:
    """The ids of the allegations received before ``cutoff`` (the cycle's as-of rule)."""
    out = set()
    for a in store.allegations():
        got = a.get("received_at")
        if got:
            t = datetime.fromisoformat(str(got).replace("Z", "+00:00"))
            if (t if t.tzinfo else t.replace(tzinfo=UTC)) >= cutoff:
                continue
        out.add(str(a.get("allegation_id") or a.get("id") or ""))
    return out


def source_fingerprint(store: DecidedStore, basis: RenderBasis, cutoff: datetime) -> str:
    """What a bulletin as of ``cutoff`` rests on: the incidents before it (id, review
    state, content digest), the rulings and the basis. Equal fingerprints give equal
    bulletins, so the clock renders again only when this changes."""
    rows = sorted((i, st, sha) for i, t, st, sha in store.incident_digests()
                  if datetime.fromisoformat(t).astimezone(UTC) < cutoff)
    h = hashlib.sha256()
    for r in rows:
        h.update("|".join(r).encode() + b"\n")
    h.update(_canon(store.rulings()).encode())
    h.update(basis.sha256().encode())
    return h.hexdigest()


def _integrity(store: EvidenceStore) -> dict[str, Any]:
    problems = store.verify()
    log = store.audit_log()
    return {"ok": not problems, "entries": len(log), "head": log[-1].hash if log else "",
            "problems": problems}


def render_from_store(store: ReviewDeskStore, day: date, out_dir: Path, *,
                      basis: RenderBasis | None = None, agreement: Agreement | None = None,
                      cutoff: datetime | None = None, pdf: bool = True,
                      language: str = "en",
                      progress: Callable[[str], None] = lambda _: None,
                      source: str | None = None) -> dict[str, BulletinFiles]:
    """Render ``day``'s bulletin (both variants) from the store: its incidents before
    ``cutoff`` (default the basis's, the cycle's end of day) in their current review
    state, the rulings on the allegations received before it, and ``basis`` (default:
    the one saved for ``day``). ``render``'s revision rule applies in ``out_dir``."""
    if basis is None:
        basis = load_basis(store, day)
    if basis is None:
        raise NotFoundError(f"the store holds no render basis for {day.isoformat()}",
                            fix="run the cycle for that day (`trucewatch run --store S "
                                "--report-date D`), or let the worker process the store "
                                "first (its baseline artifact lets the basis be derived)")
    if agreement is None:
        agreement = basis.load_agreement() or stored_agreement(store)
    if agreement is None:
        raise NotFoundError("the store holds no agreement that loads on its own (its "
                            "zones' files are not kept) to render against",
                            fix="give --agreement A")
    cutoff = cutoff or basis.cutoff
    progress("reading the store's incidents")
    incidents = [i for i in store.incidents() if i.time_start < cutoff]
    shown = {i.id for i in incidents}
    violations = [v for v in store.violations() if v.incident_id in shown]
    view = CeasefireView(agreement, pl.DataFrame(), basis.daily, incidents, violations)
    asked = allegations_before(store, cutoff)
    maps = basis.coverage_maps or {}
    extra = {"review": ReviewService(store).figures().to_dict(), "as_of": basis.as_of,
             "rulings": [r for r in store.rulings()
                         if str(r.get("allegation_id", "")) in asked],
             "review_scripted": basis.review_scripted, "refused": store.refused(),
             "integrity": _integrity(store), "evidence_sources": basis.evidence_sources,
             "coverage_maps": basis.coverage_maps, "coalition": maps.get("coalition"),
             "fused": {**(basis.fused or {}), "stored": len(incidents)},
             "source": source}
    progress(f"rendering {day.isoformat()} ({'HTML and PDF' if pdf else 'HTML'}, "
             "public and restricted)")
    return render(view, basis.coverage, day, out_dir, len(store.quarantine()),
                  basis.ingest, pdf=pdf, sensors=basis.sensors, extra=extra,
                  language=language, progress=progress)
