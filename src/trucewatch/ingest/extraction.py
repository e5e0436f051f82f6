"""What a free-text allegation says: language, places, times, category.

* language: declared, else from the script (Cyrillic: Ukrainian letters і ї є ґ vs
  Russian ы э ъ ё) and function words (French vs English);
* places: gazetteer matching of capitalized 1-3 word spans (Latin and Cyrillic
  variants; inflected Ukrainian and Russian forms by morphology, pymorphy3 in the
  text's language, else by stem), see :mod:`trucewatch.geo.gazetteer`;
  for French the spaCy ``fr_core_news_sm`` model also names location entities, and
  those the gazetteer does not know are reported as unresolved;
* times: ``dateparser`` search in the text's language, relative to when the
  allegation was received, in Kyiv local time, cleaned of trailing numbers and merged
  when a date and a time of day are found apart;
* category: a small per-language lexicon of ceasefire-violation words.

Every extraction keeps the span of text it came from and a confidence, so an
analyst can see why.

The work is bounded (a long or hostile text cannot hold a CPU for long): dateparser is
given at most :data:`MAX_CHARS` characters, taken from the sentences that hold a digit or
a relative day word (the only ones a time mention is kept from), and at most
:data:`MAX_TIMES` of its mentions are considered; spaCy reads the first
:data:`MAX_CHARS` characters. When a text is longer than that, the extraction says so
(``truncated``, ``chars_read`` of ``chars``); the stored allegation keeps the whole text.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from trucewatch.geo.gazetteer import Gazetteer

LANGUAGES = ("fr", "en", "uk", "ru")
MAX_CHARS = 5000  # characters handed to dateparser and to spaCy, at most
MAX_TIMES = 40  # dateparser's mentions considered, at most
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_DIGIT = re.compile(r"\d")
LOCAL_TZ = ZoneInfo("Europe/Kyiv")
_WORD = re.compile(r"[^\W\d_][\w'’ʼ-]*")
_TIME_OF_DAY = re.compile(r"\b\d{1,2}\s*[:h]\s*\d{2}\b|\d\s*(am|pm)\b", re.IGNORECASE)
# a date: day.month, a year, or a word (month name, weekday, "yesterday")
_DATE_LIKE = re.compile(r"\d{1,2}[./-]\d{1,2}|\d{4}|[^\W\d_]{3,}")
_RELATIVE = re.compile(r"hier|yesterday|today|aujourd|вчора|сьогодні|вчера|сегодня|tonight|"
                       r"cette nuit|last night|уночі|ночью", re.IGNORECASE)
_FR = {"le", "la", "les", "des", "du", "et", "à", "dans", "vers", "sur", "une", "un", "près"}
_EN = {"the", "and", "of", "in", "at", "on", "near", "was", "were", "a", "an", "by"}

LEXICON: dict[str, tuple[str, ...]] = {
    "explosion": ("explosion", "tir", "bombard", "obus", "frappe", "roquette", "mortier",
                  "shell", "strike", "rocket", "mortar", "blast", "artillery fire", "drone attack",
                  "обстріл", "вибух", "удар", "снаряд", "ракет", "міномет", "обстрел", "взрыв",
                  "миномет", "прильот", "прилет"),
    "fire": ("incendie", "brûl", "fire", "burning", "blaze", "пожеж", "горить", "пожар",
             "горит"),
    "heavy_weapon": ("char ", "chars", "blindé", "pièces d'artillerie", "lance-roquettes",
                     "tank", "howitzer", "heavy weapon", "mlrs", "armoured", "танк", "гармат",
                     "сау", "рсзв", "гаубиц", "рсзо", "бронетехн"),
}


@dataclass
class PlaceMention:
    text: str
    start: int
    end: int
    name: str = ""
    geonameid: int = 0
    lat: float = 0.0
    lon: float = 0.0
    population: int = 0
    confidence: float = 0.0
    candidates: int = 0
    # exact, morph (a dictionary form of the words), stem; outside (a known city beyond
    # the mission's countries, e.g. Paris);
    # unresolved (a location entity the gazetteer does not know)
    how: str = ""


@dataclass
class TimeMention:
    text: str
    start: str  # ISO UTC window
    end: str
    confidence: float
    has_time_of_day: bool


@dataclass
class Extraction:
    language: str
    language_declared: bool
    places: list[PlaceMention] = field(default_factory=list)
    times: list[TimeMention] = field(default_factory=list)
    category: str = ""
    category_words: list[str] = field(default_factory=list)
    # a long text: only chars_read of its chars were searched for dates (and spaCy,
    # French, reads the first MAX_CHARS); places from the gazetteer: the whole text
    truncated: bool = False
    chars: int = 0
    chars_read: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def best_place(self) -> PlaceMention | None:
        found = [p for p in self.places if p.how in ("exact", "morph", "stem")]
        return max(found, key=lambda p: (p.confidence, -p.start)) if found else None

    def best_time(self) -> TimeMention | None:
        return max(self.times, key=lambda t: (t.confidence, t.has_time_of_day)
                   ) if self.times else None


def detect_language(text: str) -> str:
    low = text.lower()
    if re.search(r"[\u0400-\u04FF]", low):
        uk = len(re.findall(r"[іїєґ]", low))
        ru = len(re.findall(r"[ыэъё]", low))
        return "uk" if uk > 0 and uk >= ru else "ru"
    words = re.findall(r"[a-zà-ÿ]+", low)
    fr = sum(w in _FR for w in words)
    en = sum(w in _EN for w in words)
    return "fr" if fr > en else "en"


@lru_cache(maxsize=1)
def _french() -> Any:
    import spacy

    return spacy.load("fr_core_news_sm", exclude=["parser", "lemmatizer"])


class Extractor:
    """Configured extraction: the gazetteer and the mission's area for disambiguation."""

    def __init__(self, gazetteer: Gazetteer | None = None,
                 area: tuple[float, float] | None = (48.3, 37.5), use_spacy: bool = True
                 ) -> None:
        self.gazetteer = gazetteer or Gazetteer.load()
        self.area = area
        self.use_spacy = use_spacy

    def extract(self, text: str, received_at: datetime, language: str | None = None
                ) -> Extraction:
        lang = language if language in LANGUAGES else detect_language(text)
        ex = Extraction(lang, language in LANGUAGES)
        ex.places = self._places(text, lang)
        dated = date_sentences(text)
        ex.times = _times(dated, lang, received_at)
        ex.category, ex.category_words = _category(text)
        ex.chars = len(text)
        ex.chars_read = len(dated) if len(text) > MAX_CHARS else len(text)
        ex.truncated = len(text) > MAX_CHARS
        return ex

    def _places(self, text: str, lang: str) -> list[PlaceMention]:
        tokens = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]
        out: list[PlaceMention] = []
        i = 0
        while i < len(tokens):
            hit = None
            for n in (3, 2, 1):
                span = tokens[i:i + n]
                if len(span) < n or not span[0][0][:1].isupper():
                    continue
                s, e = span[0][1], span[-1][2]
                phrase = text[s:e]
                # French elision: l'Ukraine, d'Avdiïvka
                phrase = re.sub(r"^[ldLD]['’]", "", phrase)
                r = self.gazetteer.resolve(phrase, near=self.area, language=lang)
                if r is not None and r.outside:
                    hit = (n, PlaceMention(text[s:e], s, e, r.place.name, r.place.geonameid,
                                           r.place.lat, r.place.lon, r.place.population,
                                           r.confidence, r.candidates, "outside"))
                    break
                if r is not None:
                    p = r.place
                    hit = (n, PlaceMention(text[s:e], s, e, p.name, p.geonameid, p.lat, p.lon,
                                           p.population, r.confidence, r.candidates, r.how))
                    break
            if hit:
                out.append(hit[1])
                i += hit[0]
            else:
                i += 1
        if lang == "fr" and self.use_spacy:
            covered = [(p.start, p.end) for p in out]
            for ent in _french()(text[:MAX_CHARS]).ents:
                if ent.label_ == "LOC" and not any(s < ent.end_char and ent.start_char < e
                                                   for s, e in covered):
                    out.append(PlaceMention(ent.text, ent.start_char, ent.end_char,
                                            how="unresolved"))
        return sorted(out, key=lambda p: p.start)


def date_sentences(text: str, limit: int = MAX_CHARS) -> str:
    """What dateparser reads: the text itself when short; else its sentences with a digit
    or a relative day word, in order, up to ``limit`` characters in all."""
    if len(text) <= limit:
        return text
    out: list[str] = []
    used = 0
    for part in _SENTENCE_END.split(text):
        sent = part.strip()
        if not sent or not (_DIGIT.search(sent) or _RELATIVE.search(sent)):
            continue
        sent = sent[:limit - used]
        out.append(sent)
        used += len(sent) + 1
        if used >= limit:
            break
    return "\n".join(out)[:limit]


def _times(text: str, lang: str, received_at: datetime) -> list[TimeMention]:
    from dateparser import parse
    from dateparser.search import search_dates

    base = received_at.astimezone(LOCAL_TZ).replace(tzinfo=None)
    settings: Any = {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past",
                     "RETURN_AS_TIMEZONE_AWARE": False}
    found = (search_dates(text, languages=[lang], settings=settings) or [])[:MAX_TIMES]
    mentions: list[tuple[str, datetime, bool, bool]] = []  # text, value, time of day, date
    for raw, value in found:
        cleaned = re.sub(r"[,;]\s*\d{1,3}\s*$", "", raw).strip()  # "..., 12 rounds"
        if cleaned != raw and cleaned:
            value = parse(cleaned, languages=[lang], settings=settings) or value
        if not re.search(r"\d", cleaned) and not _RELATIVE.search(cleaned):
            continue  # "maintenant", "Friday" alone: too vague to place an event
        if re.fullmatch(r"\d{1,4}", cleaned):
            continue  # a bare number or year
        has_date = bool(_DATE_LIKE.search(cleaned) or _RELATIVE.search(cleaned))
        mentions.append((cleaned, value, bool(_TIME_OF_DAY.search(cleaned)), has_date))
    # a date and a time of day mentioned apart ("at 10:30 ... on 30 May") are one moment
    dates = [m for m in mentions if m[3] and not m[2]]
    clocks = [m for m in mentions if m[2] and not m[3]]
    if dates and clocks:
        d, c = dates[0], clocks[0]
        merged = (f"{d[0]} … {c[0]}", datetime.combine(d[1].date(), c[1].time()), True, True)
        mentions = [merged] + [m for m in mentions if m is not d and m is not c]
    out = []
    for cleaned, value, has_tod, has_date in mentions:
        local = value.replace(tzinfo=LOCAL_TZ)
        if has_tod:
            start, end = local - timedelta(hours=1), local + timedelta(hours=1)
            conf = 0.8 if has_date else 0.4  # a time of day alone: the day is a guess
        else:
            day = local.replace(hour=0, minute=0, second=0, microsecond=0)
            start, end, conf = day, day + timedelta(days=1), 0.6
        if _RELATIVE.search(cleaned):
            conf -= 0.1
        out.append(TimeMention(cleaned, _iso(start), _iso(end), round(conf, 2), has_tod))
    return out


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _category(text: str) -> tuple[str, list[str]]:
    low = text.lower()
    hits = {cat: [w for w in words if w in low] for cat, words in LEXICON.items()}
    best = max(hits, key=lambda c: (len(hits[c]), c == "explosion"))
    return (best, hits[best]) if hits[best] else ("", [])
