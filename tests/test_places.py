"""Place names: "X km DIR of PLACE" for a location, and name resolution that prefers the
mission's area (issue 15: "Оріхова" was Orikhove in Crimea, at 0.85)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trucewatch.geo.gazetteer import Gazetteer, PlaceRef, lemma_keys, morph_available
from trucewatch.ingest.extraction import Extractor


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


needs_morph = pytest.mark.skipif(not morph_available(), reason="needs pymorphy3 with "
                                 "pymorphy3-dicts-uk and -ru (pip install 'trucewatch[nlp]')")

# inflected forms (locative, genitive, instrumental, dative) and the place they name;
# without morphology the stem fallback resolves none of the first six
INFLECTED = [("Мар'їнці", "uk", "Mar'yinka"), ("Мар’їнці", None, "Mar'yinka"),
             ("Авдіївці", "uk", "Avdiyivka"), ("Горлівці", "uk", "Horlivka"),
             ("Ясиноватой", "ru", "Yasynuvata"), ("Новій Каховці", "uk", "Nova Kakhovka"),
             ("Новой Каховке", "ru", "Nova Kakhovka"), ("Горловкой", "ru", "Horlivka"),
             ("Марьинке", "ru", "Mar'yinka"), ("Донецке", "ru", "Donetsk"),
             ("Торецьку", "uk", "Toretsk"), ("Оріхова", "uk", "Orikhiv"),
             ("Оріхова", None, "Orikhiv")]


@needs_morph
@pytest.mark.parametrize(("form", "language", "place"), INFLECTED)
def test_inflected_forms_resolve_by_morphology(gaz: Gazetteer, form: str,
                                               language: str | None, place: str) -> None:
    r = gaz.resolve(form, near=(48.3, 37.5), language=language)
    assert r is not None, form
    assert (r.place.name, r.how) == (place, "morph")


@needs_morph
def test_morphology_gives_dictionary_forms() -> None:
    assert "марінка" in lemma_keys("Мар'їнці", "uk")  # normalized: ї is stored as і
    assert "нова каховка" in lemma_keys("Новій Каховці", "uk")
    assert "новая каховка" in lemma_keys("Новой Каховке", "ru")
    assert lemma_keys("Zolote") == []
    # a word that names no place stays unresolved, in any case
    assert gaz_none("Вибухами")


def gaz_none(word: str) -> bool:
    return Gazetteer.load().resolve(word, near=(48.3, 37.5)) is None


@needs_morph
def test_places_in_free_text_by_morphology() -> None:
    ex = Extractor(use_spacy=False)
    cases = [("Вночі обстріл у Мар'їнці, 30 травня о 03:00", "Mar'yinka", "Мар'їнці"),
             ("Вчера под Горловкой был сильный взрыв", "Horlivka", "Горловкой"),
             ("Обстріл біля Оріхова 29 травня", "Orikhiv", "Оріхова"),
             ("Стрельба в Новой Каховке 28 мая", "Nova Kakhovka", "Новой Каховке")]
    for text, place, span in cases:
        e = ex.extract(text, datetime(2026, 5, 31, tzinfo=UTC))
        best = e.best_place()
        assert best is not None, text
        assert (best.name, best.text, best.how) == (place, span, "morph"), text
        assert text[best.start:best.end] == span
