"""The coverage maps reach the bulletin (HTML with the hatched maps, PDF text, JSON)
and the coverage GeoJSON, from the built-in cycle."""

from __future__ import annotations

import io
import json
from pathlib import Path

from trucewatch.demo.builtin import ScenarioFiles
from trucewatch.reports.bulletin import render_html


def _ctx(built: Path, variant: str) -> dict:
    return json.loads((built / f"bulletin-2026-05-31-{variant}.json").read_text())


def test_bulletin_json_holds_coverage_per_sector_and_day(built_cycle: Path) -> None:
    cm = _ctx(built_cycle, "restricted")["coverage_maps"]
    assert cm["capability"]["probability"] == 0.9 and cm["capability"]["min_stations"] >= 3
    days = {d["date"]: d for d in cm["days"]}
    assert days["2026-05-31"]["sectors"] and "2026-05-30" in days
    # the sensor network reported on the 30th: some sector heard something, with a charge
    sensed = [r for r in days["2026-05-30"]["sectors"] if r["sensor_observed_share"] > 0]
    assert sensed and all(r["median_charge_kg"] > 0 for r in sensed)
    # the public bulletin keeps no sensor figure
    pub = _ctx(built_cycle, "public")["coverage_maps"]
    row = pub["days"][-1]["sectors"][0]
    assert "median_charge_kg" not in row and "sensor_observed_share" not in row
    assert "observed_share" in row


def test_coverage_geojson_and_hatched_maps(built_cycle: Path) -> None:
    geo = json.loads((built_cycle / "coverage-2026-05-31-restricted.geojson").read_text())
    layers = {f["properties"]["layer"] for f in geo["features"]}
    assert {"satellite", "capability", "patrol_swath", "not_heard"} <= layers
    assert not (built_cycle / "coverage-2026-05-31-public.geojson").exists()
    html = (built_cycle / "bulletin-2026-05-31-restricted.html").read_text()
    assert 'id="coverage-sectors"' in html and "not-observed-sensors-0" in html
    assert "not-observed-satellite" in html or "not-observed-drones-0" in html
    public = (built_cycle / "bulletin-2026-05-31-public.html").read_text()
    assert 'id="coverage-sectors"' in public and "not-observed-sensors" not in public


def test_coverage_section_in_the_pdf_in_every_language(built_cycle: Path,
                                                       scenario: ScenarioFiles) -> None:
    from pypdf import PdfReader
    from weasyprint import HTML

    from trucewatch.agreement.loader import load_agreement
    from trucewatch.reports.figures import coverage_svg

    ctx = _ctx(built_cycle, "restricted")
    geo = json.loads((built_cycle / "coverage-2026-05-31-restricted.geojson").read_text())
    agreement = load_agreement(scenario.agreement)
    heads = {"en": "Coverage by sector on", "fr": "Couverture par secteur le",
             "uk": "Покриття за секторами на", "ru": "Покрытие по секторам на"}
    for lang, head in heads.items():
        svg = coverage_svg(agreement, geo["features"], "2026-05-30")
        assert svg.count("not-observed-") >= 2  # hatched on the panels
        html = render_html(ctx, lang, coverage_svg=svg)
        text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(
            HTML(string=html).write_pdf())).pages)
        text = " ".join(text.split())
        assert head in text, lang
        for r in ctx["coverage_maps"]["days"][-1]["sectors"]:
            assert r["name"].split(" (")[0] in text, (lang, r["name"])
