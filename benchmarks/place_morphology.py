"""Inflected Ukrainian and Russian place names, resolved with and without morphology
(pymorphy3): how many of the forms in ``tests/test_places.py``'s INFLECTED list reach
the right place, near the line (48.3 N, 37.5 E).

    PYTHONPATH=src:benchmarks:tests python benchmarks/place_morphology.py
"""

from __future__ import annotations

import trucewatch.geo.gazetteer as gz
from test_places import INFLECTED


def score() -> tuple[int, list[str]]:
    g = gz.Gazetteer.load()
    rows, right = [], 0
    for form, language, place in INFLECTED:
        r = g.resolve(form, near=(48.3, 37.5), language=language)
        got = f"{r.place.name} ({r.how}, {r.confidence})" if r else "-"
        right += bool(r and r.place.name == place)
        rows.append(f"  {form:16} {language or '?':2}  {place:14} {got}")
    return right, rows


def main() -> None:
    with_morph, rows = score()
    print(f"with pymorphy3: {with_morph}/{len(INFLECTED)} right")
    print("\n".join(rows))
    gz._analyzer.cache_clear()
    gz._lemma_keys.cache_clear()
    real = gz._analyzer
    gz._analyzer = lambda lang: None  # type: ignore[assignment]
    try:
        stem_only, rows = score()
    finally:
        gz._analyzer = real
    print(f"stem only: {stem_only}/{len(INFLECTED)} right")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
