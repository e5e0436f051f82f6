"""A published bulletin in several languages (issue 15): a translation is not a
revision, and a revision revises every language the day was published in together,
each labelled in its own language; the published files never change."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

from trucewatch.reports.archive import family, revision_of
from trucewatch.reports.basis import render_from_store
from trucewatch.storage import SqliteStore

# the revision notice's opening word in each language (bulletin.html.j2, the catalogues)
NOTICE = {"en": "REVISION 2", "uk": "РЕДАКЦІЯ 2", "ru": "РЕДАКЦИЯ 2", "fr": "RÉVISION 2"}
# the reason "judged again" in each language (reports/i18n.py REVISION_REASONS)
JUDGED = {"en": "the same data, judged again", "uk": "ті самі дані, оцінені знову",
          "ru": "те же данные, оценённые заново", "fr": "les mêmes données, jugées à nouveau"}


def _render(db: Path, day: date, out: Path, language: str) -> Any:
    store = SqliteStore(db)
    try:
        return render_from_store(store, day, out, pdf=False, language=language)
    finally:
        store.close()


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir()}


def test_translations_and_revisions_of_a_published_bulletin(built_cycle: Path,
                                                            tmp_path: Path) -> None:
    db = tmp_path / "copy.db"
    shutil.copy(built_cycle / "trucewatch.db", db)
    (first,) = sorted(built_cycle.glob("bulletin-*-public.json"))[:1]
    day = date.fromisoformat(first.name.split("-public")[0][len("bulletin-"):])
    d, out = day.isoformat(), tmp_path / "out"

    # first publication, in English: the stable names
    en = _render(db, day, out, "en")
    assert en["public"].json.name == f"bulletin-{d}-public.json"
    published = _snapshot(out)

    # the same content in Ukrainian: a translation beside it, not a revision
    uk = _render(db, day, out, "uk")
    assert uk["public"].json.name == f"bulletin-{d}-public.uk.json"
    assert uk["restricted"].html.name == f"bulletin-{d}-restricted.uk.html"
    assert not list(out.glob("*.rev*"))
    assert {k: v for k, v in _snapshot(out).items() if k in published} == published
    doc = json.loads(uk["public"].json.read_text(encoding="utf-8"))
    assert doc["language"] == "uk" and doc["revision"] is None
    assert uk["public"].geojson.name == f"incidents-{d}-public.geojson"  # no language
    assert family(uk["public"].json.name) == uk["public"].json.name
    # asked again: nothing written
    before = _snapshot(out)
    again = _render(db, day, out, "uk")
    assert again["public"].json == uk["public"].json and _snapshot(out) == before

    # the store's rulings change, and a re-run asks for French: every language the day
    # was published in is revised together (English, Ukrainian), and French with them
    store = SqliteStore(db)
    rulings = store.rulings()
    assert rulings, "the built-in scenario has rulings"
    store.save_rulings([{**rulings[0], "reason": rulings[0]["reason"] + " (re-judged)"}])
    store.close()
    fr = _render(db, day, out, "fr")
    assert fr["public"].json.name == f"bulletin-{d}-public.rev2.fr.json"
    for variant in ("public", "restricted"):
        for name in (f"bulletin-{d}-{variant}.rev2.json", f"bulletin-{d}-{variant}.rev2.html",
                     f"bulletin-{d}-{variant}.rev2.uk.json",
                     f"bulletin-{d}-{variant}.rev2.uk.html",
                     f"incidents-{d}-{variant}.rev2.geojson"):
            assert (out / name).is_file(), name
        # the clock publishes the other languages' revisions too
        assert {p.name for p in fr[variant].others} == {
            f"bulletin-{d}-{variant}.rev2.json", f"bulletin-{d}-{variant}.rev2.html",
            f"bulletin-{d}-{variant}.rev2.uk.json", f"bulletin-{d}-{variant}.rev2.uk.html"}
    assert not list(out.glob(f"bulletin-{d}-*.rev2.ru.*"))  # never published in Russian
    # what was published stays byte-identical, translations included
    assert {k: v for k, v in _snapshot(out).items() if k in before} == before
    for lang, tag in (("en", ""), ("uk", ".uk"), ("fr", ".fr")):
        name = f"bulletin-{d}-public.rev2{tag}"
        doc = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
        rec = doc["revision"]
        assert doc["language"] == lang and rec["number"] == 2, lang
        assert rec["code"] == "judged_again" and rec["reason"].startswith(JUDGED["en"])
        # each revises its own language's published file where there is one
        want = {"en": f"bulletin-{d}-public.json", "uk": f"bulletin-{d}-public.uk.json",
                "fr": f"bulletin-{d}-public.json"}[lang]
        assert rec["revises"] == want, lang
        html = (out / f"{name}.html").read_text(encoding="utf-8")
        assert NOTICE[lang] in html and JUDGED[lang] in html, lang
        if lang != "en":
            assert JUDGED["en"] not in html, lang
        assert revision_of(f"{name}.pdf") == 2
        assert family(f"{name}.pdf") == f"bulletin-{d}-public{tag}.pdf"
    # the content is the same in every language: only the language differs
    def substance(name: str) -> dict[str, Any]:
        doc = json.loads((out / name).read_text(encoding="utf-8"))
        return {k: v for k, v in doc.items() if k not in ("language", "revision",
                                                          "generated_at")}
    assert substance(f"bulletin-{d}-restricted.rev2.json") == \
        substance(f"bulletin-{d}-restricted.rev2.uk.json") == \
        substance(f"bulletin-{d}-restricted.rev2.fr.json")

    # Russian asked for later, nothing else changed: the translation of revision 2,
    # with its notice in Russian; no revision 3
    ru = _render(db, day, out, "ru")
    assert ru["public"].json.name == f"bulletin-{d}-public.rev2.ru.json"
    assert not list(out.glob("*.rev3*"))
    doc = json.loads(ru["public"].json.read_text(encoding="utf-8"))
    assert doc["revision"]["number"] == 2 and doc["language"] == "ru"
    html = ru["public"].html.read_text(encoding="utf-8")
    assert NOTICE["ru"] in html and JUDGED["ru"] in html
    # and English again: the published revision, nothing written
    before = _snapshot(out)
    last = _render(db, day, out, "en")
    assert last["public"].json.name == f"bulletin-{d}-public.rev2.json"
    assert _snapshot(out) == before


def test_the_dashboards_languages_have_the_same_messages_and_label_every_category() -> None:
    """Each of the dashboard's catalogues (web/static/i18n) has every message the others
    have, and every incident category and status has a label in each (the English
    legend showed codes such as 'explosion.impact')."""
    from trucewatch.model.enums import Category, Status

    folder = Path(__file__).resolve().parents[1] / "src/trucewatch/web/static/i18n"
    books = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")}
    assert set(books) == {"en", "fr", "ru", "uk"}
    keys = set().union(*books.values())
    assert {lang: sorted(keys - set(b)) for lang, b in books.items()} == {
        lang: [] for lang in books}
    codes = {f"cat:{c.value}" for c in (*Category, *Status)}
    for lang, book in books.items():
        assert codes <= set(book), (lang, sorted(codes - set(book)))
        assert all(book[c] != c.removeprefix("cat:") or lang == "en" for c in codes)
