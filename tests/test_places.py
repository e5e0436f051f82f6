"""Place names: "X km DIR of PLACE" for a location, and name resolution that prefers the
mission's area (issue 15: "Оріхова" was Orikhove in Crimea, at 0.85)."""

from __future__ import annotations

import pytest

from trucewatch.geo.gazetteer import Gazetteer, PlaceRef


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer.load()


def test_describe_gives_distance_direction_and_place(gaz: Gazetteer) -> None:
    # Zolote is at 48.695 N 38.515 E; 1.7 km south and 1.1 km east of it
    assert gaz.describe(48.68, 38.53) == "2 km SE of Zolote"
    assert gaz.describe(48.6952, 38.5151) == "in Zolote"
    # due north of Zolote, 5.6 km
    north = gaz.describe_many([48.745], [38.5151])[0]
    assert isinstance(north, PlaceRef)
    assert north.direction in {"N", "NE", "NW"} or north.place.name != "Zolote"
    assert north.to_dict()["text"] == north.text()


def test_describe_many_matches_one_by_one_and_rounds_to_precision(gaz: Gazetteer) -> None:
    lats, lons = [48.68, 47.60, 48.0], [38.53, 35.80, 37.8]
    many = gaz.describe_many(lats, lons)
    assert [r.text() for r in many] == [gaz.describe(a, b) for a, b in zip(lats, lons,
                                                                          strict=True)]
    coarse = gaz.describe_many(lats, lons, precision_km=5)
    assert all(r.distance_km % 5 == 0 for r in coarse)
    assert gaz.describe_many([], []) == []


def test_inflected_name_prefers_the_place_near_the_line(gaz: Gazetteer) -> None:
    r = gaz.resolve("Оріхова", near=(48.3, 37.5))  # genitive of Оріхів (Orikhiv)
    assert r is not None and r.place.name == "Orikhiv"
    assert r.candidates >= 2  # Orikhove in Crimea was considered and ranked lower


def test_a_far_match_has_low_confidence(gaz: Gazetteer) -> None:
    far = gaz.resolve("Оріхове", near=(48.3, 37.5))  # only the Crimean village has this name
    assert far is not None and far.place.admin1 == "11"
    assert far.confidence < 0.5
    near = gaz.resolve("Zolote", near=(48.3, 37.5))
    assert near is not None and near.confidence >= 0.9
