"""The offline basemap and the bulletin map drawn on it (issue 15, maps with context)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from trucewatch.agreement import load_agreement
from trucewatch.reports.basemap import load_basemap
from trucewatch.reports.figures import map_svg
from trucewatch.reports.i18n import Formatter

DONBAS = (36.0, 47.0, 40.2, 49.8)
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.shared_data
def test_the_data_share_gives_oblasts_outline_and_places() -> None:
    if not (DATA / "reference-boundaries").is_dir():
        pytest.skip("needs ../shared/data (reference-boundaries and covariates)")
    bm = load_basemap(DONBAS, DATA)
    assert bm.missing == []
    names = {a.name for a in bm.admin1}
    assert {"Donetsk", "Luhansk", "Zaporizhzhia", "Kharkiv"} <= names
    donetsk = next(a for a in bm.admin1 if a.name == "Donetsk")
    # one oblast is a few polygons, not thousands of grid cells
    assert len(getattr(donetsk.geometry, "geoms", [donetsk.geometry])) < 10
    assert 20_000 < donetsk.geometry.area * 111 * 74 < 35_000  # km², about 26,500
    assert bm.country is not None and bm.country.intersects(donetsk.geometry)
    pops = [p.population for p in bm.places]
    assert pops == sorted(pops, reverse=True)
    shown = bm.labelled(max_labels=12)
    assert shown[0].name == "Donetsk" and len(shown) == 12
    feats = bm.geojson()["features"]
    assert {f["properties"]["layer"] for f in feats} == {"country", "admin1", "place"}


def test_without_the_data_share_the_map_says_what_it_lacks(tmp_path: Path) -> None:
    bm = load_basemap(DONBAS, tmp_path)
    assert bm.country is None and bm.admin1 == []
    assert len(bm.missing) == 2 and bm.places  # places come with the package


def test_the_map_has_labels_scale_north_and_a_legend_by_category_and_status(
        scenario: object) -> None:
    from trucewatch.model.enums import Category, Status
    from trucewatch.model.incident import Incident
    from trucewatch.model.observation import Location

    agreement = load_agreement(scenario.agreement)  # type: ignore[attr-defined]
    t = datetime(2026, 5, 30, 4, 0, tzinfo=UTC)
    incs = [Incident(id="inc-a", category=Category.EXPLOSION_IMPACT, status=Status.VERIFIED,
                     time_start=t, time_end=t, location=Location(48.0, 37.8, 50.0),
                     observation_ids=["o-1"]),
            Incident(id="inc-b", category=Category.FIRE, status=Status.AUTOMATIC,
                     time_start=t, time_end=t, location=Location(48.2, 37.9, 50.0),
                     observation_ids=["o-2"])]
    svg = map_svg(agreement, incs, public=False, report_date=date(2026, 5, 30))
    comments = set(re.findall(r"<!-- (.*?) -->", svg))
    # populated places, labelled (drawn as haloed paths, one group per place)
    assert 'id="place-709717"' in svg and 'id="place-704508"' in svg  # Donetsk, Kramatorsk
    assert {"explosions", "fires", "verified", "automatic", "line of contact"} <= comments
    assert 'id="scale-bar' in svg and 'id="north-arrow' in svg
    assert any(re.fullmatch(r"\d+ km", c) for c in comments)
    uk = map_svg(agreement, incs, public=True, gettext=Formatter("uk").gettext)
    uk_comments = set(re.findall(r"<!-- (.*?) -->", uk))
    assert {"вибухи", "пожежі", "лінія зіткнення"} <= uk_comments
    assert "line of contact" not in uk_comments
