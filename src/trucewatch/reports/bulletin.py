"""Assemble and render the daily verification bulletin.

Two variants: ``restricted`` (exact locations, observation ids, reasons) and
``public`` (locations rounded to the 0.1 degree cell, no observation ids). Each is
written as HTML and PDF (WeasyPrint), with ``bulletin-<variant>.json`` and
``incidents-<variant>.geojson`` beside them.

A published bulletin never changes: when ``bulletin-<date>-public.json`` exists and a
re-run for the same date would say something else (late data for that date, a review),
the new one is written as a revision ``bulletin-<date>-<variant>.rev<N>.<ext>`` (and
``incidents-<date>-<variant>.rev<N>.geojson``) whose ``revision`` says why; when it
would say the same, nothing is written and the published files are returned.

Languages (see docs/bulletin.md, "Languages and revisions"): the first publication of a
date fixes its *original* language, whose files keep the stable names above. The same
bulletin in another language is a *translation*, not a revision: it is written beside
it as ``bulletin-<date>-<variant>[.rev<N>].<lang>.<ext>`` (the same content: the
language is not part of what a revision compares). When a re-run changes the content,
every language the date was published in is revised together, and the requested one
with them: ``.rev<N>`` in the original language and ``.rev<N>.<lang>`` for each
translation, each with the revision notice in its own language (``revision.code`` and
``revision.changes`` are what the templates translate; ``reason`` stays in English).
The incidents and coverage GeoJSON hold no language and are written once per revision.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment, PackageLoader, select_autoescape

from trucewatch import __version__
from trucewatch.adjudication.ceasefire import CeasefireView
from trucewatch.geo.gazetteer import Gazetteer, PlaceRef
from trucewatch.model.serialization import to_dict
from trucewatch.reports.coverage import Coverage
from trucewatch.reports.figures import coverage_svg, map_svg, trend_svg
from trucewatch.reports.i18n import (
    CATEGORY_GROUPS,
    CATEGORY_LABELS,
    CHANNELS,
    DAY_STATES,
    LANGUAGES,
    RULING_LABELS,
    SATELLITE_STATES,
    STATUS_LABELS,
    Formatter,
    category_group,
    check_language,
)

VARIANTS = ("public", "restricted")
BULLETIN_VERSION = 1


@dataclass(frozen=True)
class BulletinFiles:
    html: Path
    pdf: Path | None
    json: Path
    geojson: Path
    coverage: Path | None = None  # coverage-DATE-restricted.geojson (restricted only)
    # the other languages' files this render wrote (a revision revises them all)
    others: tuple[Path, ...] = ()


def _incident_row(inc: Any, public: bool, near: PlaceRef | None = None) -> dict[str, Any]:
    lat, lon = inc.location.lat, inc.location.lon
    return {
        "id": inc.id, "date": inc.time_start.date().isoformat(),
        "time": inc.time_start.strftime("%H:%M"), "category": inc.category.value,
        "status": inc.status.value, "sector": inc.sector_id or "-",
        "zones": ", ".join(inc.zone_ids), "detections": inc.attributes.get("detections", 0),
        "rule": inc.attributes.get("rule", ""),
        "source": inc.attributes.get("source", "satellite"),
        "lat": round(lat, 1) if public else round(lat, 5),
        "lon": round(lon, 1) if public else round(lon, 5),
        "place": near.text() if near else "",
        "near": near.to_dict() if near else None,
        "reason": "" if public else inc.reason,
        "observation_ids": [] if public else inc.observation_ids,
    }


# the public location is the 0.1 degree cell: its place is named to 5 km, not to 1 km
PUBLIC_PLACE_KM = 5.0


def places(incidents: list[Any], public: bool) -> dict[str, PlaceRef]:
    """Each incident's "X km DIR of PLACE" (from the public, rounded location when public)."""
    if not incidents:
        return {}
    lats = [round(i.location.lat, 1) if public else i.location.lat for i in incidents]
    lons = [round(i.location.lon, 1) if public else i.location.lon for i in incidents]
    refs = Gazetteer.load().describe_many(lats, lons, PUBLIC_PLACE_KM if public else 1.0)
    return {i.id: r for i, r in zip(incidents, refs, strict=True)}


def _day_state(coverage: Coverage, day: date) -> dict[str, Any]:
    """The report day's observation state as a code the template translates."""
    if day in coverage.days_without_data:
        return {"code": "no_data"}
    if day in coverage.days_without_detections:
        return {"code": "no_detections"}
    cloud = dict(coverage.cloudy_days).get(day)
    if cloud is not None:
        return {"code": "cloudy", "cloud_cover": cloud}
    return {"code": "observed" if coverage.cloud_known else "cloud_unknown"}


def _outside(d: pl.DataFrame) -> pl.DataFrame:
    """The daily rows of fires outside every sector (sector "")."""
    return d.filter((pl.col("sector") == "") & (pl.col("detections") > 0))


def _summary(view: CeasefireView, d: pl.DataFrame, incidents: list[Any], report_date: date,
             t0: date, n_before: int) -> dict[str, Any]:
    """Typed counts per sector, the OSCE way: the report day against the day before, and
    the satellite channel's war-related fires against the pre-ceasefire daily mean (the
    only type observed before entry into force: incidents are judged from it on)."""
    prev = report_date - timedelta(days=1)
    groups = sorted({category_group(i.category.value) for i in incidents} | {"explosion",
                                                                            "fire"},
                    key=lambda g: list(CATEGORY_GROUPS).index(g)
                    if g in CATEGORY_GROUPS else 99)
    war = (d.filter(pl.col("acq_date").is_in([report_date, prev]))
           .group_by("sector", "acq_date").agg(pl.col("war_related").sum()))
    war_at = {(r["sector"], r["acq_date"]): int(r["war_related"])
              for r in war.iter_rows(named=True)}
    before = (d.filter(pl.col("acq_date") < t0).group_by("sector")
              .agg(pl.col("war_related").sum()))
    base = {r["sector"]: int(r["war_related"]) / n_before for r in before.iter_rows(named=True)}
    rows: list[dict[str, Any]] = []
    ids = [(s.id, s.name) for s in view.agreement.sectors]
    # "-": outside every sector, for incidents there and for the satellites' fires there
    # (the daily frame's sector ""), so that the rows add up to the headline's figures
    if any(i.sector_id is None for i in incidents) or _outside(d).height:
        ids.append(("-", "-"))
    for sid, name in ids:
        key = "" if sid == "-" else sid
        mine = [i for i in incidents if (i.sector_id or "-") == sid]

        def count(day: date, group: str | None, mine: list[Any] = mine) -> int:
            return sum(1 for i in mine if i.time_start.date() == day and (
                group is None or category_group(i.category.value) == group))
        rows.append({
            "sector": sid, "name": name,
            "counts": {g: {"today": count(report_date, g), "previous": count(prev, g)}
                       for g in groups},
            "total": {"today": count(report_date, None), "previous": count(prev, None),
                      "since_entry_into_force": len(mine)},
            "war_fires": {"today": war_at.get((key, report_date), 0),
                          "previous": war_at.get((key, prev), 0),
                          "baseline_per_day": round(base.get(key, 0.0), 1)}})
    total = {"today": sum(r["total"]["today"] for r in rows),
             "previous": sum(r["total"]["previous"] for r in rows),
             "since_entry_into_force": sum(r["total"]["since_entry_into_force"]
                                           for r in rows)}
    return {"report_date": report_date.isoformat(), "previous_date": prev.isoformat(),
            "groups": groups, "sectors": rows, "total": total,
            "war_fires": {k: (round(sum(r["war_fires"][k] for r in rows), 1))
                          for k in ("today", "previous", "baseline_per_day")}}


def build_context(view: CeasefireView, coverage: Coverage, report_date: date, variant: str,
                  quarantined: int, ingest_summary: list[dict[str, Any]],
                  sensors: dict[str, Any] | None = None,
                  extra: dict[str, Any] | None = None, language: str = "en"
                  ) -> dict[str, Any]:
    public = variant == "public"
    a = view.agreement
    t0 = a.entry_into_force.date()
    incidents = [i for i in view.incidents if i.time_start.date() <= report_date]
    today = [i for i in incidents if i.time_start.date() == report_date]
    week = [i for i in incidents if i.time_start.date() > report_date - timedelta(days=7)]
    d = view.daily.filter(pl.col("acq_date") <= report_date)

    def period(df: pl.DataFrame) -> dict[str, float]:
        return {"detections": int(df["detections"].sum()),
                "war_related": int(df["war_related"].sum())}

    before = d.filter(pl.col("acq_date") < t0)
    after = d.filter(pl.col("acq_date") >= t0)
    n_before = max(1, before["acq_date"].n_unique())
    n_after = max(1, after["acq_date"].n_unique())
    sectors = []
    # outside every sector ("-"): the fires there count in the periods' figures too
    ids = [(s.id, s.name) for s in a.sectors] + ([("-", "-")] if _outside(d).height else [])
    for sid, name in ids:
        sd = d.filter(pl.col("sector") == ("" if sid == "-" else sid))
        b, af = sd.filter(pl.col("acq_date") < t0), sd.filter(pl.col("acq_date") >= t0)
        exp = sd.unique(["acq_date", "sector"])
        sectors.append({
            "id": sid, "name": name,
            "war_per_day_before": round(int(b["war_related"].sum()) / n_before, 1),
            "war_per_day_after": round(int(af["war_related"].sum()) / n_after, 1),
            "detections_per_day_after": round(int(af["detections"].sum()) / n_after, 1),
            "expected_per_day": round(float(exp["expected"].mean() or 0.0), 1),  # type: ignore[arg-type]
            "incidents_since_t0": sum(1 for i in incidents if (i.sector_id or "-") == sid),
            "incidents_today": sum(1 for i in today if (i.sector_id or "-") == sid),
        })
    zone_rows = (d.filter(pl.col("acq_date") >= t0).group_by("zone_group")
                 .agg(pl.col("detections").sum(), pl.col("war_related").sum())
                 .sort("zone_group").to_dicts())
    by_category = Counter(i.category.value for i in incidents)
    near = places(incidents, public)
    return {
        "version": BULLETIN_VERSION, "trucewatch_version": __version__, "variant": variant,
        "public": public, "report_date": report_date.isoformat(), "language": language,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "agreement": {"id": a.id, "name": a.name,
                      "entry_into_force": a.entry_into_force.strftime("%Y-%m-%d %H:%M UTC"),
                      "zones": [{"id": z.id, "kind": z.kind.value, "area_km2": z.area_km2}
                                for z in a.zones]},
        "headline": {"incidents_today": len(today), "incidents_last_7_days": len(week),
                     "incidents_since_entry_into_force": len(incidents),
                     "by_category": dict(sorted(by_category.items())),
                     "by_status": dict(Counter(i.status.value for i in incidents))},
        "periods": {"before": {**period(before), "days": n_before},
                    "after": {**period(after), "days": n_after}},
        "sectors": sectors, "zones": zone_rows,
        "summary": _summary(view, d, incidents, report_date, t0, n_before),
        "incidents": [_incident_row(i, public, near.get(i.id)) for i in incidents],
        "coverage": {
            "start": coverage.start.isoformat(), "end": coverage.end.isoformat(),
            "days_without_data": [x.isoformat() for x in coverage.days_without_data],
            "days_without_detections": [x.isoformat()
                                        for x in coverage.days_without_detections],
            "cloudy_days": [{"date": x.isoformat(), "cloud_cover": c}
                            for x, c in coverage.cloudy_days],
            "cloud_known": coverage.cloud_known,
            "report_day": coverage.observed(report_date),
            "report_day_state": _day_state(coverage, report_date),
        },
        "quarantined_rows": quarantined,
        "ingest": ingest_summary if not public else [],
        "sensors": sensors,
        "coverage_maps": coverage_maps_context((extra or {}).get("coverage_maps"), public),
        # who covered which sector by which asset, and the gaps (agreement/coalition.py)
        "coalition": None if public else (extra or {}).get("coalition"),
        "as_of": (extra or {}).get("as_of"),
        # what a bulletin rendered from the store rests on (reports/basis.py)
        **({"source_sha256": (extra or {})["source"]} if (extra or {}).get("source")
           else {}),
        **_field_context(view, extra or {}, public, near),
    }


# what the public bulletin keeps of each sector's coverage: no sensor figure (the
# network's reach hints at where its stations are)
_PUBLIC_SECTOR = ("id", "name", "satellite", "satellite_clear", "observed_share",
                  "not_observed_km2")


def coverage_maps_context(maps: dict[str, Any] | None, public: bool) -> dict[str, Any] | None:
    """The per-day and per-sector coverage (adjudication/coverage_maps.py) as the
    bulletin's JSON holds it: the days' figures, without the geometry (in the coverage
    GeoJSON); the public variant keeps satellite and observed shares only."""
    if not maps:
        return None
    out = {k: v for k, v in maps.items() if k not in ("type", "features")}
    if public:
        out = {k: out[k] for k in ("days", "grid_km", "satellite_resolution") if k in out}
        out["days"] = [{"date": d["date"], "satellite": d["satellite"],
                        "observed_share": d["observed_share"],
                        "sectors": [{k: r[k] for k in _PUBLIC_SECTOR if k in r}
                                    for r in d["sectors"]]} for d in out.get("days", [])]
    return out


# what a re-run may change without changing what the bulletin says
_BOOKKEEPING = ("generated_at", "trucewatch_version", "ingest", "quarantined_rows",
                "integrity", "review", "review_scripted", "refused_submissions",
                "refused_count", "revision", "as_of", "source_sha256",
                # a translation says the same: the language is not what a revision compares
                "language")


def _substance(ctx: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in ctx.items() if k not in _BOOKKEEPING},
                      sort_keys=True, ensure_ascii=False, default=str)


def _revision(out_dir: Path, report_date: date, ctxs: dict[str, dict[str, Any]]
              ) -> tuple[str, dict[str, Any] | None, bool]:
    """(file suffix, revision record, write?) for a bulletin about to be written."""
    day = report_date.isoformat()
    first = out_dir / f"bulletin-{day}-public.json"
    if not first.exists():
        return "", None, True
    # the original language's revisions (``.rev2.json``; ``.rev2.uk.json`` translates one)
    revs = sorted((int(p.name.rsplit(".rev", 1)[1].split(".")[0]), p) for p in
                  out_dir.glob(f"bulletin-{day}-public.rev*.json")
                  if p.name.rsplit(".rev", 1)[1].removesuffix(".json").isdigit())
    number, latest = revs[-1] if revs else (1, first)
    suffix = f".rev{number}" if number > 1 else ""
    same = True
    for variant, ctx in ctxs.items():
        path = out_dir / f"bulletin-{day}-{variant}{suffix}.json"
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            same = False
            break
        same &= _substance(old) == _substance(ctx)
    if same:
        return suffix, None, False
    published = json.loads(first.read_text(encoding="utf-8"))
    before = json.loads(latest.read_text(encoding="utf-8"))
    new = ctxs["public"]
    used_then = (before.get("as_of") or {}).get("used") or {}
    used_now = (new.get("as_of") or {}).get("used") or {}
    grown = {k: int(used_now.get(k, 0)) - int(used_then.get(k, 0)) for k in used_now
             if k in used_then and int(used_now.get(k, 0)) != int(used_then.get(k, 0))}
    if grown:
        code = "new_data"
        why = ("new data received after the first publication: " + ", ".join(
            f"{n:+d} {k.replace('_', ' ')}" for k, n in grown.items())
               + f" observed up to {day}")
    elif used_then:
        code = "judged_again"
        why = ("the same data, judged again: the store's incidents, reviews or rulings "
               "changed after the first publication")
    else:
        code = "content_changed"
        why = "content changed after the first publication (it does not record its inputs)"
    record = {"number": number + 1, "revises": latest.name,
              "published": published.get("generated_at", ""),
              "first_publication": first.name, "reason": why, "code": code,
              "changes": grown}
    return f".rev{number + 1}", record, True


def _published_languages(out_dir: Path, day: str) -> tuple[str | None, set[str]]:
    """(the original language of ``day``'s bulletin, every language it was published
    in, at any revision), from the public JSON files there; (None, set()) before the
    first publication."""
    first = out_dir / f"bulletin-{day}-public.json"
    try:
        original = str(json.loads(first.read_text(encoding="utf-8")).get("language")
                       or "en")
    except (OSError, ValueError):
        return None, set()
    langs = {original}
    for path in out_dir.glob(f"bulletin-{day}-public*.json"):
        tag = path.name[len(f"bulletin-{day}-public"):-len(".json")].split(".")
        if len(tag) >= 2 and tag[-1] in LANGUAGES:  # ".uk" or ".rev2.uk"
            langs.add(tag[-1])
    return original, langs


def _lang_tag(language: str, original: str) -> str:
    return "" if language == original else f".{language}"


def _field_context(view: CeasefireView, extra: dict[str, Any], public: bool,
                   near: dict[str, PlaceRef] | None = None) -> dict[str, Any]:
    """Verified violations with their evidence, allegation rulings, review figures,
    refused submissions and the audit chain's state."""
    vio_by_incident = {v.incident_id: v for v in view.violations}
    verified = []
    for inc in view.incidents:
        v = vio_by_incident.get(inc.id)
        if v is None or inc.status.value != "verified":
            continue
        verified.append({
            "incident": inc.id, "rule": v.rule, "category": v.category.value,
            "time": inc.time_start.strftime("%Y-%m-%d %H:%M"), "sector": inc.sector_id or "-",
            "zones": ", ".join(inc.zone_ids), "sources": inc.attributes.get("source", ""),
            "place": near[inc.id].text() if near and inc.id in near else "",
            "near": near[inc.id].to_dict() if near and inc.id in near else None,
            "confidence": inc.attributes.get("confidence", 0),
            "explanation": v.explanation if not public else v.explanation.split(":")[0],
            "evidence": [] if public else inc.observation_ids})
    rulings = [{k: r.get(k) for k in ("allegation_id", "ruling", "reason", "claimant_kind",
                                      "category", "time_start", "time_end")}
               | ({"claimant": r.get("claimant"), "place": r.get("place"),
                   "near": r.get("near"), "evidence": r.get("evidence")}
                  if not public else {})
               for r in extra.get("rulings", [])]
    refused = [] if public else extra.get("refused", [])
    integrity = extra.get("integrity", {})
    return {"verified_violations": verified, "rulings": rulings,
            "rulings_by_kind": dict(Counter(r["ruling"] for r in rulings)),
            "review": extra.get("review"), "review_scripted": extra.get("review_scripted", False),
            "refused_submissions": refused,
            "refused_count": len(extra.get("refused", [])),
            "integrity": {"ok": integrity.get("ok"), "entries": integrity.get("entries"),
                          "head": integrity.get("head", "")},
            "fusion": extra.get("fused"), "evidence_sources": extra.get("evidence_sources", [])}


@lru_cache(maxsize=8)
def environment(language: str = "en") -> Environment:
    """The bulletin's jinja2 environment in ``language`` (gettext catalogues, Babel
    formats as ``fmt``)."""
    fmt = Formatter(language)
    env = Environment(loader=PackageLoader("trucewatch.reports", "templates"),
                      autoescape=select_autoescape(["html", "j2"]),
                      extensions=["jinja2.ext.i18n"])
    env.install_gettext_callables(fmt.gettext, fmt.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(fmt=fmt, CATEGORY_LABELS=CATEGORY_LABELS, STATUS_LABELS=STATUS_LABELS,
                       RULING_LABELS=RULING_LABELS, CATEGORY_GROUPS=CATEGORY_GROUPS,
                       DAY_STATES=DAY_STATES, SATELLITE_STATES=SATELLITE_STATES,
                       CHANNELS=CHANNELS)
    return env


def render_html(ctx: dict[str, Any], language: str | None = None, map_svg: str = "",
                trend_svg: str = "", coverage_svg: str = "") -> str:
    """The bulletin's HTML from its context (what ``bulletin-*.json`` holds), in
    ``language`` (default: the context's own)."""
    lang = language or str(ctx.get("language") or "en")
    return environment(lang).get_template("bulletin.html.j2").render(
        **{**ctx, "language": lang}, map_svg=map_svg, trend_svg=trend_svg,
        coverage_svg=coverage_svg)


def render(view: CeasefireView, coverage: Coverage, report_date: date, out_dir: Path,
           quarantined: int = 0, ingest_summary: list[dict[str, Any]] | None = None,
           pdf: bool = True, sensors: dict[str, Any] | None = None,
           extra: dict[str, Any] | None = None, language: str = "en",
           progress: Callable[[str], None] | None = None
           ) -> dict[str, BulletinFiles]:
    """Write both variants in ``language`` (en, uk, ru or fr); see the module's doc for
    revisions and translations. Returns the files in ``language``; a revision's other
    languages are in each one's ``others``. ``progress``: told each step (a PDF takes
    seconds)."""
    check_language(language)
    say = progress or (lambda _: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    day = report_date.isoformat()
    ctxs = {v: build_context(view, coverage, report_date, v, quarantined,
                             ingest_summary or [], sensors, extra, language)
            for v in VARIANTS}
    suffix, revision, write = _revision(out_dir, report_date, ctxs)
    original, published = _published_languages(out_dir, day)
    original = original or language
    if write:  # a first publication, or a revision of every language published so far
        langs = [language, *sorted(published - {language})]
    elif (out_dir / f"bulletin-{day}-public{suffix}{_lang_tag(language, original)}.json"
          ).exists():
        langs = []  # the published bulletin already says this, in this language
    else:  # the same content in a language not published yet: its translation
        langs = [language]
        revision = _stored_revision(out_dir / f"bulletin-{day}-public{suffix}.json")
    incidents = [i for i in view.incidents if i.time_start.date() <= report_date]
    features = ((extra or {}).get("coverage_maps") or {}).get("features") or []
    written: dict[tuple[str, str], BulletinFiles] = {}
    for lang in langs:
        tag = _lang_tag(lang, original)
        gettext = Formatter(lang).gettext
        trend = trend_svg(view.daily.filter(pl.col("acq_date") <= report_date),
                          view.agreement.entry_into_force.date(), gettext)
        for variant in VARIANTS:
            public = variant == "public"
            stem = f"bulletin-{day}-{variant}{suffix}{tag}"
            ctx = {**ctxs[variant], "language": lang,
                   "revision": _revision_for(revision, out_dir, tag)}
            cover_svg = "" if public or not features else coverage_svg(
                view.agreement, features, day, gettext)
            say(f"{variant} ({lang}): HTML (maps and figures)")
            html = render_html(ctx, lang, map_svg(view.agreement, incidents, public, gettext,
                                                  report_date), trend, cover_svg)
            html_path = out_dir / f"{stem}.html"
            html_path.write_text(html, encoding="utf-8")
            pdf_path = None
            if pdf:
                from weasyprint import HTML

                pdf_path = out_dir / f"{stem}.pdf"
                say(f"{variant} ({lang}): PDF (WeasyPrint)")
                HTML(string=html, base_url=str(out_dir)).write_pdf(pdf_path)
            json_path = out_dir / f"{stem}.json"
            json_path.write_text(json.dumps(ctx, indent=2, ensure_ascii=False),
                                 encoding="utf-8")
            # no language in these: once per revision (a translation finds them there)
            geo_path = out_dir / f"incidents-{day}-{variant}{suffix}.geojson"
            cov_path = out_dir / f"coverage-{day}-{variant}{suffix}.geojson"
            if write and lang == language:
                geo_path.write_text(json.dumps(incidents_geojson(view, report_date, public),
                                               indent=1, ensure_ascii=False),
                                    encoding="utf-8")
                if features and not public:  # the coverage maps' geometry, for GIS
                    cov_path.write_text(json.dumps({"type": "FeatureCollection",
                                                    "features": features},
                                                   ensure_ascii=False), encoding="utf-8")
            written[(lang, variant)] = BulletinFiles(
                html_path, pdf_path, json_path, geo_path,
                cov_path if cov_path.exists() else None)
    files = {}
    for variant in VARIANTS:
        mine = written.get((language, variant)) or _existing(
            out_dir, f"bulletin-{day}-{variant}{suffix}{_lang_tag(language, original)}",
            f"{day}-{variant}{suffix}")
        others = tuple(q for (lang, v), f in written.items() if v == variant
                       and lang != language
                       for q in (f.html, f.pdf, f.json) if q is not None)
        files[variant] = BulletinFiles(mine.html, mine.pdf, mine.json, mine.geojson,
                                       mine.coverage, others)
    return files


def _existing(out_dir: Path, stem: str, rest: str) -> BulletinFiles:
    """The files already published under ``stem`` (what a re-run that has nothing new
    to say returns)."""
    pdf_old = out_dir / f"{stem}.pdf"
    cov_old = out_dir / f"coverage-{rest}.geojson"
    return BulletinFiles(out_dir / f"{stem}.html", pdf_old if pdf_old.exists() else None,
                         out_dir / f"{stem}.json", out_dir / f"incidents-{rest}.geojson",
                         cov_old if cov_old.exists() else None)


def _stored_revision(path: Path) -> dict[str, Any] | None:
    """The revision record a published JSON carries (None: a first publication)."""
    try:
        rec = json.loads(path.read_text(encoding="utf-8")).get("revision")
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def _revision_for(record: dict[str, Any] | None, out_dir: Path, tag: str
                  ) -> dict[str, Any] | None:
    """A revision record as one language's files carry it: it revises that language's
    previous file where there is one (else the original language's)."""
    if record is None or not tag:
        return record
    own = str(record["revises"]).removesuffix(".json") + f"{tag}.json"
    return {**record, "revises": own} if (out_dir / own).exists() else dict(record)


def incidents_geojson(view: CeasefireView, report_date: date, public: bool) -> dict[str, Any]:
    """The incidents up to ``report_date``; the public file holds verified ones only (an
    unreviewed incident, its place and its rule are not for the public). Every feature
    carries ``place``: "X km DIR of PLACE" (to 5 km from the rounded location when public)."""
    shown = [i for i in view.incidents if i.time_start.date() <= report_date
             and not (public and i.status.value != "verified")]
    near = places(shown, public)
    feats = []
    for inc in shown:
        row = _incident_row(inc, public, near.get(inc.id))
        props = {**to_dict(inc), "place": row["place"], "near": row["near"]} if not public \
            else {k: row[k] for k in ("id", "date", "category", "status", "sector", "zones",
                                      "detections", "rule", "place")}
        feats.append({"type": "Feature", "properties": props,
                      "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]}})
    return {"type": "FeatureCollection", "features": feats}
