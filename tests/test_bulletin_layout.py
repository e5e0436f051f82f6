"""Bulletins made for reading (issue 15): nothing cut, nothing off the page, every id,
reason and figure of the JSON export in the PDF's text, places as "X km DIR of PLACE",
the OSCE-style summary, and the four languages with complete catalogues."""

from __future__ import annotations

import html as htmllib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from markupsafe import escape

from trucewatch.errors import ConfigError
from trucewatch.reports.bulletin import render_html
from trucewatch.reports.i18n import (
    DIRECTION_CONTEXT,
    LANGUAGES,
    Formatter,
    catalogue_path,
    extract_messages,
)

PLACE = re.compile(r"^(in .+|\d+ km (N|NE|E|SE|S|SW|W|NW) of .+)$")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _svgs(html: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", html, flags=re.S)


def _layout(html: str) -> tuple[Any, bytes]:
    from weasyprint import HTML

    doc = HTML(string=html).render()
    buf = io.BytesIO()
    doc.write_pdf(buf)
    return doc, buf.getvalue()


def _outside(doc: Any) -> list[str]:
    """Text boxes that leave their page, the page's content area (margin boxes aside) or
    their table cell."""
    from weasyprint.formatting_structure import boxes

    bad: list[str] = []
    for n, page in enumerate(doc.pages, 1):
        pb = page._page_box
        left, right = pb.margin_left, page.width - pb.margin_right
        top, bottom = pb.margin_top, page.height - pb.margin_bottom

        def walk(box: Any, cell: Any, margin: bool, n: int = n, left: float = left,
                 right: float = right, top: float = top, bottom: float = bottom,
                 width: float = page.width, height: float = page.height) -> None:
            if isinstance(box, boxes.MarginBox):
                margin = True
            if isinstance(box, boxes.TableCellBox):
                cell = box
            if isinstance(box, boxes.TextBox) and box.text.strip():
                x0, y0 = box.position_x, box.position_y
                x1, y1 = x0 + box.width, y0 + box.height
                where = f"page {n}: {box.text[:30]!r}"
                if x0 < -0.5 or y0 < -0.5 or x1 > width + 0.5 or y1 > height + 0.5:
                    bad.append(f"{where} off the page")
                elif not margin and (x0 < left - 0.5 or x1 > right + 0.5
                                     or y0 < top - 0.5 or y1 > bottom + 0.5):
                    bad.append(f"{where} outside the content area")
                elif cell is not None:
                    cx0 = cell.border_box_x()
                    if x0 < cx0 - 0.5 or x1 > cx0 + cell.border_width() + 0.5:
                        bad.append(f"{where} outside its table cell")
            for child in getattr(box, "children", []):
                walk(child, cell, margin)

        walk(pb, None, False)
    return bad


@pytest.fixture(scope="module")
def bulletins(built_cycle: Path) -> dict[str, tuple[dict[str, Any], str]]:
    out = {}
    for variant in ("public", "restricted"):
        (js,) = built_cycle.glob(f"bulletin-*-{variant}.json")
        out[variant] = (json.loads(js.read_text(encoding="utf-8")),
                        js.with_suffix(".html").read_text(encoding="utf-8"))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["restricted", "public"])
def test_the_pdf_holds_everything_the_json_holds_and_nothing_leaves_the_page(
        bulletins: dict[str, tuple[dict[str, Any], str]], variant: str) -> None:
    import pypdf

    ctx, html = bulletins[variant]
    doc, pdf = _layout(html)
    assert _outside(doc) == []
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = _squash(" ".join(p.extract_text() for p in reader.pages))
    assert ctx["incidents"], "the built-in scenario has incidents"
    for inc in ctx["incidents"]:
        assert _squash(inc["id"]) in text, inc["id"]
        assert _squash(inc["place"]) in text, inc["place"]
        if inc["reason"]:
            assert _squash(htmllib.unescape(inc["reason"])) in text, inc["id"]
        for obs in inc["observation_ids"]:
            assert obs in text
    for v in ctx["verified_violations"]:
        assert _squash(v["explanation"]) in text
    for r in ctx["rulings"]:
        assert _squash(r["reason"]) in text
    fmt = Formatter("en")
    # every figure of the sector tables, in row order
    for s in ctx["sectors"]:
        row = [s["name"] if s["id"] != "-" else "outside the sectors", *(
            fmt.number(s[k], 1) for k in (
            "war_per_day_before", "war_per_day_after", "detections_per_day_after",
            "expected_per_day")), fmt.number(s["incidents_since_t0"]),
            fmt.number(s["incidents_today"])]
        assert _squash("".join(row)) in text, row
    for s in ctx["summary"]["sectors"]:
        if s["sector"] == "-":
            continue
        row = [s["name"], *(f"{s['counts'][g]['today']}({s['counts'][g]['previous']})"
                            for g in ctx["summary"]["groups"]),
               f"{s['total']['today']}({s['total']['previous']})",
               str(s["war_fires"]["today"]), str(s["war_fires"]["previous"]),
               fmt.number(s["war_fires"]["baseline_per_day"], 1)]
        assert _squash("".join(row)) in text, row
    h = ctx["headline"]
    assert f"sinceentryintoforce{h['incidents_since_entry_into_force']}" in text
    # the annex is landscape, the summary portrait and on one page
    sizes = [(float(p.mediabox.width), float(p.mediabox.height)) for p in reader.pages]
    assert sizes[0][0] < sizes[0][1] and sizes[-1][0] > sizes[-1][1]
    first = _squash(reader.pages[0].extract_text())
    assert "Incidentdetail" in first and "Map" not in first[:40]


def test_every_location_carries_a_place(built_cycle: Path,
                                        bulletins: dict[str, tuple[dict[str, Any], str]]
                                        ) -> None:
    for variant, (ctx, _html) in bulletins.items():
        for inc in ctx["incidents"]:
            assert PLACE.match(inc["place"]), inc["place"]
            if variant == "public":
                assert inc["near"]["distance_km"] % 5 == 0
        (geo,) = built_cycle.glob(f"incidents-*-{variant}.geojson")
        feats = json.loads(geo.read_text(encoding="utf-8"))["features"]
        assert feats
        assert all(PLACE.match(f["properties"]["place"]) for f in feats)
    # the allegations' rulings too (restricted: the public has no place column): placed
    # "X km DIR of PLACE" from the gazetteer at the point each resolved to, never the
    # word "coordinates" for how it was found
    ctx, html = bulletins["restricted"]
    assert ctx["rulings"], "the built-in scenario has allegations"
    for r in ctx["rulings"]:
        assert PLACE.match(r["place"]) and r["near"]["text"] == r["place"], r
    assert ">coordinates<" not in html
    assert all(f"<td>{escape(r['place'])}</td>" in html for r in ctx["rulings"])
    # the annex writes coordinates with a fixed number of digits: 4 as located, the
    # 0.1 degree cell (1 digit) when public; never 5 digits, never a lost trailing zero
    for variant, (ctx, html) in bulletins.items():
        digits = 1 if variant == "public" else 4
        shown = re.findall(r"\((\d+\.\d+)° [NS], (\d+\.\d+)° [EW]\)", html)
        assert len(shown) == len(ctx["incidents"]), variant
        assert all(len(x.split(".")[1]) == digits for pair in shown for x in pair), shown


def test_the_summary_counts_by_type_sector_and_day(
        bulletins: dict[str, tuple[dict[str, Any], str]]) -> None:
    ctx, _html = bulletins["restricted"]
    summ = ctx["summary"]
    for key, day in (("today", summ["report_date"]), ("previous", summ["previous_date"])):
        want = sum(1 for i in ctx["incidents"] if i["date"] == day)
        assert summ["total"][key] == want
        for s in summ["sectors"]:
            assert sum(c[key] for c in s["counts"].values()) == s["total"][key]
    assert summ["total"]["today"] == ctx["headline"]["incidents_today"]
    before = {s["id"]: s["war_per_day_before"] for s in ctx["sectors"]}
    for s in summ["sectors"]:
        if s["sector"] in before:
            assert s["war_fires"]["baseline_per_day"] == pytest.approx(before[s["sector"]],
                                                                      abs=0.051)


def _catalogue(language: str) -> Any:
    with catalogue_path(language).open("rb") as f:
        return read_po(f, locale=language)


def _visible(html: str) -> str:
    """The bulletin's own words: no styles, figures, or reasons (the rule book's reasons
    are evidence, quoted in English in every language)."""
    html = re.sub(r"<style.*?</style>|<svg.*?</svg>|<(div|td) class=\"reason\">.*?</\1>", " ",
                  html, flags=re.S)
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", html))


def _fixed_fragments(msgid: str) -> list[str]:
    """The literal parts of a message long enough to be recognisably English."""
    return [f.strip() for f in re.split(r"%\([a-z_]+\)s|%%", msgid)
            if len(f.strip()) >= 12 and re.search(r"[a-z]{4}", f)]


@pytest.mark.parametrize("language", ["uk", "ru", "fr"])
def test_a_translated_bulletin_has_no_english_left(
        bulletins: dict[str, tuple[dict[str, Any], str]], language: str) -> None:
    cat = _catalogue(language)
    for variant in ("restricted", "public"):
        ctx, html = bulletins[variant]
        out = render_html(ctx, language, *_svgs(html)[:2])
        assert f'<html lang="{language}">' in out
        text = _visible(out)
        for m in cat:
            if not m.id or m.id == m.string:
                continue
            for frag in _fixed_fragments(str(m.id)):
                assert frag not in text, (language, frag)
        translated = cat.get("Ceasefire verification bulletin, %(day)s")
        assert translated is not None
        assert str(translated.string).split(",")[0] in text
    if language == "uk":
        assert "травня" in text  # Babel's Ukrainian date (31 травня 2026 р.)


def test_english_renders_and_the_catalogues_are_complete() -> None:
    wanted = {(str(m.id), m.context) for m in extract_messages() if m.id}
    assert len(wanted) > 100
    assert ("SE", DIRECTION_CONTEXT) in wanted
    for lang in LANGUAGES[1:]:
        cat = _catalogue(lang)
        have = {(str(m.id), m.context): m for m in cat if m.id}
        assert set(have) == wanted, (lang, set(have) ^ wanted)
        for key, m in have.items():
            assert m.string and not m.fuzzy, (lang, key)
        # placeholders of python-format messages match (Babel's own check)
        problems = [(m.id, errs) for m, errs in cat.check()]
        assert problems == [], (lang, problems)


def test_places_and_numbers_are_formatted_per_language() -> None:
    ref = {"name": "Zolote", "distance_km": 2.0, "direction": "SE"}
    assert Formatter("en").place(ref) == "2 km SE of Zolote"
    assert Formatter("uk").place(ref) == "2 км на південний схід від Zolote"
    assert Formatter("ru").place(ref) == "2 км к юго-востоку от Zolote"
    assert Formatter("fr").place(ref) == "à 2 km au sud-est de Zolote"
    assert Formatter("fr").number(1234.5, 1) == "1\u202f234,5"
    assert Formatter("en").place({**ref, "direction": ""}) == "in Zolote"
    with pytest.raises(ConfigError) as e:
        Formatter("de")
    assert "en, uk, ru, fr" in e.value.fix


def test_an_unknown_language_is_refused_before_any_work(tmp_path: Path) -> None:
    from trucewatch.pipeline import run_cycle

    with pytest.raises(ConfigError, match="unknown bulletin language 'xx'"):
        run_cycle(agreement_path=tmp_path / "none.yaml", firms_files=[],
                  out_dir=tmp_path / "out", language="xx")
    assert not (tmp_path / "out").exists()


def test_fires_outside_every_sector_have_their_row_so_the_tables_add_up() -> None:
    """A real agreement's sectors need not cover every cell the satellites see (the 2020
    replay's sectors leave Crimea out): the fires there count in the headline's "per day,
    before / after", so both sector tables carry an "outside the sectors" row and their
    rows add up to the headline."""
    from datetime import date

    import polars as pl

    from test_coverage_maps import _agreement
    from trucewatch.adjudication.ceasefire import CeasefireView
    from trucewatch.reports.bulletin import build_context
    from trucewatch.reports.coverage import Coverage

    days = [date(2026, 4, 29), date(2026, 4, 30), date(2026, 5, 2), date(2026, 5, 3)]
    daily = pl.DataFrame([
        {"acq_date": d, "sector": sec, "zone_group": "outside", "detections": det,
         "war_related": war, "expected": 1.0}
        for d in days for sec, det, war in (("west", 10, 1), ("east", 5, 0), ("", 20, 4))])
    view = CeasefireView(_agreement(), pl.DataFrame(), daily, [], [])
    ctx = build_context(view, Coverage(days[0], days[-1]), days[-1], "restricted", 0, [])
    per = ctx["periods"]
    assert sum(s["war_per_day_before"] for s in ctx["sectors"]) == pytest.approx(
        per["before"]["war_related"] / per["before"]["days"])
    assert sum(s["war_per_day_after"] for s in ctx["sectors"]) == pytest.approx(
        per["after"]["war_related"] / per["after"]["days"])
    assert [s["id"] for s in ctx["sectors"]] == ["west", "east", "-"]
    summ = ctx["summary"]
    assert summ["sectors"][-1]["sector"] == "-"
    assert summ["war_fires"]["baseline_per_day"] == pytest.approx(
        per["before"]["war_related"] / per["before"]["days"])
    assert summ["war_fires"]["today"] == 5  # 1 in the west, 4 outside
    html = render_html(ctx, "en")
    assert html.count("outside the sectors") >= 3  # summary line, summary and sector table
    # with every fire in a sector there is no such row
    inside = CeasefireView(_agreement(), pl.DataFrame(),
                           daily.filter(pl.col("sector") != ""), [], [])
    ctx = build_context(inside, Coverage(days[0], days[-1]), days[-1], "restricted", 0, [])
    assert [s["id"] for s in ctx["sectors"]] == ["west", "east"]
    assert all(s["sector"] != "-" for s in ctx["summary"]["sectors"])
