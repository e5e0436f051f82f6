"""Wall time and dateparser calls to extract place/time from a hostile 200 kB allegation
text (date-like fragments repeated in four scripts/languages), and from a normal one.

    PYTHONPATH=src:benchmarks python benchmarks/allegation_text_bounds.py [--kb 200]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import dateparser
import dateparser.search

from trucewatch.ingest.extraction import Extractor

FRAGMENTS = ("Le 30 mai à 22h15 obus tombés près de Avdiïvka, 12.05 et 13/05/2026. ",
             "On 30 May 2026 at 10:30 shelling near Bakhmut, 31.05, yesterday 04:12. ",
             "30 травня о 22:10 обстріл біля Авдіївки, 12.05.2026, вчора о 04:00. ",
             "30 мая в 22:10 обстрел возле Авдеевки, 13.05.2026, вчера в 05:00. ")
NORMAL = "Le 30 mai vers 22h15, plusieurs obus sont tombés près d'Avdiïvka."


def hostile_text(kb: int = 200) -> str:
    block = "".join(FRAGMENTS)
    return (block * (kb * 1024 // len(block) + 1))[: kb * 1024]


def count_calls() -> dict[str, int]:
    """Wrap dateparser's entry points (as extraction imports them) to count calls."""
    calls = {"search_dates": 0, "parse": 0}
    for mod, name in ((dateparser.search, "search_dates"), (dateparser, "parse")):
        real = getattr(mod, name)

        def wrapped(*a: object, _real: object = real, _n: str = name, **k: object) -> object:
            calls[_n] += 1
            return _real(*a, **k)  # type: ignore[operator]

        setattr(mod, name, wrapped)
    return calls


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", type=int, default=200)
    args = ap.parse_args()
    calls = count_calls()
    ex = Extractor()
    when = datetime(2026, 5, 31, 8, 0, tzinfo=UTC)
    ex.extract(NORMAL, when)  # warm up: gazetteer, dateparser and spaCy models loaded
    for label, text, lang in (("normal", NORMAL, None), ("hostile", hostile_text(args.kb), None),
                              ("hostile-fr", hostile_text(args.kb), "fr")):
        for k in calls:
            calls[k] = 0
        t0 = time.perf_counter()
        out = ex.extract(text, when, lang)
        dt = time.perf_counter() - t0
        d = out.to_dict()
        print(f"{label:11s} {len(text):7d} chars  {dt:7.2f} s  search_dates={calls['search_dates']}"
              f" parse={calls['parse']}  times={len(out.times)} places={len(out.places)}"
              f"  truncated={d.get('truncated', 'n/a')}")


if __name__ == "__main__":
    main()
