"""Bulletin languages: gettext message catalogues (Babel), dates and numbers per locale.

The catalogues are ``reports/locale/<lang>/LC_MESSAGES/trucewatch.po``; they are read
with Babel and compiled in memory when a bulletin is made (no build step, no compiled
file to go stale). ``python -m trucewatch.reports.i18n`` re-extracts the messages
of the bulletin template and the report modules and merges them into every catalogue
(new messages get an empty translation, which the catalogue test refuses).

What the catalogues translate are the bulletin's fixed strings and the names of
categories, statuses and rulings. Data keeps its own words: sector names come from the
agreement, place names from the gazetteer (GeoNames' primary, Latin spelling), and the
rule book's reasons are in English in every language (they are evidence and are quoted
as written).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from datetime import date
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

from trucewatch.errors import ConfigError

LANGUAGES = ("en", "uk", "ru", "fr")
DOMAIN = "trucewatch"
LOCALE_DIR = Path(__file__).parent / "locale"
TEMPLATES = Path(__file__).parent / "templates"
SOURCES = ("bulletin.py", "figures.py", "i18n.py", "basemap.py")


def N_(message: str) -> str:  # noqa: N802  (the gettext convention for "mark, translate later")
    return message


# enum values as the bulletin names them (msgids; translated at render time)
CATEGORY_GROUPS: dict[str, str] = {
    "explosion": N_("explosions"), "fire": N_("fires"),
    "heavy_weapon": N_("heavy weapons"), "vehicle_movement": N_("movements"),
    "strike_on_protected_site": N_("strikes on protected sites"),
    "restriction_of_monitors": N_("restrictions of monitors"),
}
CATEGORY_LABELS: dict[str, str] = {
    "explosion.impact": N_("explosion (impact)"),
    "explosion.airburst": N_("explosion (airburst)"),
    "explosion.undetermined": N_("explosion (undetermined)"),
    "fire": N_("fire"),
    "heavy_weapon_in_restricted_zone": N_("heavy weapon in a restricted zone"),
    "heavy_weapon": N_("heavy weapon"),
    "vehicle_movement": N_("vehicle movement"),
    "strike_on_protected_site": N_("strike on a protected site"),
    "restriction_of_monitors": N_("restriction of monitors"),
}
STATUS_LABELS: dict[str, str] = {
    "automatic": N_("automatic"), "pending_verification": N_("awaiting a second reviewer"),
    "verified": N_("verified"), "unverifiable": N_("unverifiable"),
    "inaccurate": N_("inaccurate"), "duplicate": N_("duplicate"), "rejected": N_("rejected"),
}
RULING_LABELS: dict[str, str] = {
    "violation": N_("violation"), "no_violation": N_("not a violation"),
    "not_observable": N_("not observable"),
    "insufficient_evidence": N_("insufficient evidence"), "pending": N_("pending"),
}
DAY_STATES: dict[str, str] = {
    "no_data": N_("not observed (no satellite data)"),
    "no_detections": N_("no fire detected (data availability not confirmed)"),
    "cloudy": N_("partly observed (cloud cover %(pct)s)"),
    "observed": N_("observed"),
    "cloud_unknown": N_("observed (cloud cover unknown)"),
}
# what a revision's new data were (the as-of figures' keys), and why it was made
REVISION_INPUTS: dict[str, str] = {
    "fire_detections": N_("fire detections"), "explosions": N_("located explosions"),
    "drone_reports": N_("drone reports"), "allegations": N_("allegations"),
}
REVISION_REASONS: dict[str, str] = {
    "new_data": N_("new data received after the first publication: %(changes)s observed "
                   "up to %(day)s"),
    "judged_again": N_("the same data, judged again: the store's incidents, reviews or "
                       "rulings changed after the first publication"),
    "content_changed": N_("content changed after the first publication (it does not "
                          "record its inputs)"),
}
# the satellite channel's state of a day (adjudication/coverage_maps.py)
SATELLITE_STATES: dict[str, str] = {
    "clear": N_("clear sky"), "cloudy": N_("cloudy"), "no_data": N_("no satellite data"),
    "cloud_unknown": N_("cloud cover unknown"),
}
# the channels a coalition asset observes with (agreement/coalition.py)
CHANNELS: dict[str, str] = {"sensors": N_("sensors"), "drone": N_("drones"),
                            "satellite": N_("satellite")}
# compass points of "X km DIR of PLACE", translated in the context "direction" (a language
# may need a whole phrase: "au sud-est", "к юго-востоку")
DIRECTIONS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
DIRECTION_CONTEXT = "direction"


def category_group(category: str) -> str:
    """The summary's column of a category: explosions, fires, heavy weapons, ..."""
    head = category.split(".", 1)[0]
    return "heavy_weapon" if head.startswith("heavy_weapon") else head


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ConfigError(f"unknown bulletin language {language!r}",
                          fix=f"use one of {', '.join(LANGUAGES)}")
    return language


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=8)
def translations(language: str) -> NullTranslations:
    """The language's translations (English: the msgids themselves)."""
    check_language(language)
    if language == "en":
        return NullTranslations()
    po = catalogue_path(language)
    with po.open("rb") as f:
        catalog = read_po(f, locale=language, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


class Formatter:
    """Dates, numbers and labels for one language."""

    def __init__(self, language: str) -> None:
        self.language = check_language(language)
        self.locale = Locale.parse(language)
        t = translations(language)
        self.gettext: Callable[[str], str] = t.gettext
        self.ngettext: Callable[[str, str, int], str] = t.ngettext
        self.pgettext: Callable[[str, str], object] = t.pgettext

    def date(self, d: date | str, fmt: str = "long") -> str:
        day = date.fromisoformat(d) if isinstance(d, str) else d
        return format_date(day, fmt, locale=self.locale)

    def number(self, x: float | int, decimals: int = 0) -> str:
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
        return format_decimal(x, pattern, locale=self.locale)

    @staticmethod
    def coords(lat: float, lon: float, public: bool = False) -> str:
        """``48.0733° N, 37.5281° E``: 4 decimals (about 10 m) as located, 1 decimal (the
        0.1° cell) when public; always a decimal point and the same number of digits,
        as the dashboard writes them (a decimal comma would clash with the separator)."""
        nd = 1 if public else 4
        return (f"{abs(lat):.{nd}f}° {'N' if lat >= 0 else 'S'}, "
                f"{abs(lon):.{nd}f}° {'E' if lon >= 0 else 'W'}")

    def revision_reason(self, record: dict[str, object], day: str) -> str:
        """Why a revision was made, in this language (its ``code`` and ``changes``); a
        record written before codes keeps its English ``reason``."""
        code = str(record.get("code") or "")
        if code not in REVISION_REASONS:
            return str(record.get("reason") or "")
        changes = record.get("changes") or {}
        listed = ", ".join(
            f"{int(n):+d} {self.label(REVISION_INPUTS, str(k))}"
            for k, n in (changes.items() if isinstance(changes, dict) else ())
            if isinstance(n, int | float))
        return self.gettext(REVISION_REASONS[code]) % {"changes": listed, "day": day}

    def label(self, table: dict[str, str], value: str) -> str:
        msg = table.get(value)
        return self.gettext(msg) if msg else value

    @staticmethod
    def css_string(text: str) -> str:
        """``text`` for the inside of a CSS string ("..." in ``content:``)."""
        return str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")

    def pages_css(self) -> str:
        """The page footer's ``content`` value: "page 3 of 9" with CSS page counters."""
        text = self.css_string(self.gettext("page %(page)s of %(pages)s"))
        return text % {"page": '" counter(page) "', "pages": '" counter(pages) "'}

    def place(self, ref: dict[str, object] | None) -> str:
        """ "2 km SE of Zolote" in this language (the place keeps its gazetteer name)."""
        if not ref:
            return ""
        if not ref.get("direction"):
            return self.gettext("in %(place)s") % {"place": ref["name"]}
        km = ref["distance_km"]
        return self.gettext("%(km)s km %(dir)s of %(place)s") % {
            "km": self.number(float(km) if isinstance(km, int | float) else 0.0),
            "dir": str(self.pgettext(DIRECTION_CONTEXT, str(ref["direction"]))),
            "place": ref["name"]}


def extract_messages() -> Catalog:
    """Every message of the template and the report modules."""
    from babel.messages.extract import extract_from_file

    cat = Catalog(domain=DOMAIN)
    for path in sorted(TEMPLATES.glob("*.j2")):
        for lineno, msg, _comments, _ctx in extract_from_file(
                "jinja2", path, options={"extensions": "jinja2.ext.i18n"}):
            cat.add(msg, locations=[(path.name, lineno)])
    for name in SOURCES:
        path = Path(__file__).parent / name
        for lineno, msg, _comments, _ctx in extract_from_file("python", path):
            cat.add(msg, locations=[(name, lineno)])
    for code in DIRECTIONS:
        cat.add(code, locations=[("i18n.py", 0)], context=DIRECTION_CONTEXT)
    return cat


def update_catalogues(languages: Iterable[str] = LANGUAGES[1:]) -> dict[str, list[str]]:
    """Merge the extracted messages into each catalogue; returns the untranslated ones."""
    template = extract_messages()
    missing: dict[str, list[str]] = {}
    for lang in languages:
        po = catalogue_path(lang)
        po.parent.mkdir(parents=True, exist_ok=True)
        if po.is_file():
            with po.open("rb") as f:
                cat = read_po(f, locale=lang, domain=DOMAIN)
        else:
            cat = Catalog(locale=lang, domain=DOMAIN, project="trucewatch")
        cat.update(template, no_fuzzy_matching=True)
        cat.obsolete.clear()
        with po.open("wb") as f:
            write_po(f, cat, width=100, omit_header=False, sort_output=True)
        missing[lang] = [str(m.id) for m in cat if m.id and not m.string]
    return missing


if __name__ == "__main__":
    for lang, ids in update_catalogues().items():
        print(f"{lang}: {len(ids)} untranslated")
