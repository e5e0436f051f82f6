"""A long or hostile allegation text is read within bounded work (the hostile test: a
long free text held dateparser and spaCy for 10-48 s): dateparser is called a bounded
number of times on a bounded text, the extraction says it read only part, and the
whole text is kept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dateparser
import dateparser.search
import pytest

from allegation_text_bounds import FRAGMENTS, hostile_text
from trucewatch.ingest import extraction
from trucewatch.ingest.extraction import MAX_CHARS, MAX_TIMES, Extractor, date_sentences

WHEN = datetime(2026, 5, 31, 8, 0, tzinfo=UTC)


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Every dateparser call extraction makes, by the length of the text it was given."""
    seen: dict[str, list[int]] = {"search_dates": [], "parse": []}
    for mod, name in ((dateparser.search, "search_dates"), (dateparser, "parse")):
        real = getattr(mod, name)

        def wrapped(text: str, *a: Any, _real: Any = real, _n: str = name, **k: Any) -> Any:
            seen[_n].append(len(text))
            return _real(text, *a, **k)

        monkeypatch.setattr(mod, name, wrapped)
    return seen


def test_a_hostile_200kb_text_is_read_in_bounded_dateparser_calls(
        calls: dict[str, list[int]]) -> None:
    text = hostile_text(200)
    assert len(text) == 200 * 1024 and all(f.strip()[:6] in text for f in FRAGMENTS)
    ex = Extractor(use_spacy=False).extract(text, WHEN, "en")
    assert len(calls["search_dates"]) == 1 and calls["search_dates"][0] <= MAX_CHARS
    assert len(calls["parse"]) <= MAX_TIMES
    assert all(n <= MAX_CHARS for n in calls["parse"])
    assert ex.truncated and ex.chars == len(text) and 0 < ex.chars_read <= MAX_CHARS
    assert ex.to_dict()["truncated"] is True
    assert ex.times, "the dates in the part read are still found"
    assert ex.places, "places come from the gazetteer over the whole text"


def test_spacy_reads_a_bounded_text(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[int] = []
    real = extraction._french()

    def nlp(text: str) -> Any:
        read.append(len(text))
        return real(text)

    monkeypatch.setattr(extraction, "_french", lambda: nlp)
    ex = Extractor().extract(hostile_text(50), WHEN, "fr")
    assert read == [MAX_CHARS] and ex.truncated


def test_a_short_text_is_read_whole_and_not_marked(calls: dict[str, list[int]]) -> None:
    text = "Le 30 mai vers 22h15, plusieurs obus sont tombés près d'Avdiïvka."
    ex = Extractor(use_spacy=False).extract(text, WHEN)
    assert calls["search_dates"] == [len(text)]
    assert not ex.truncated and ex.chars == ex.chars_read == len(text)
    assert ex.best_time() is not None and "30 mai" in ex.best_time().text  # type: ignore[union-attr]


def test_only_dated_sentences_are_searched_and_in_order() -> None:
    filler = "Rien à signaler dans ce secteur. " * 400  # no digit, no relative day
    text = filler + "Le 30 mai à 22h15 des obus. " + filler + "Hier à 04:12 un tir."
    got = date_sentences(text)
    assert got == "Le 30 mai à 22h15 des obus.\nHier à 04:12 un tir."
    one_run_on = "3" * (3 * MAX_CHARS)  # one 'sentence' longer than the bound
    assert len(date_sentences(one_run_on)) == MAX_CHARS
